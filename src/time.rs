//! Time as an input.
//!
//! The library never reads the wall clock: timeouts, certificate validity checks and
//! correlation windows all use packet and host-event timestamps, handed in by the caller
//! (the smoltcp `poll(timestamp, ..)` model).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in time: nanoseconds since the Unix epoch (UTC).
///
/// `u64` nanoseconds reach the year 2554, enough for any capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The epoch itself.
    pub const ZERO: Timestamp = Timestamp(0);

    /// From whole seconds and a nanosecond remainder (saturating).
    pub fn from_secs_nanos(secs: u64, nanos: u32) -> Timestamp {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(u64::from(nanos)),
        )
    }

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(ns: u64) -> Timestamp {
        Timestamp(ns)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch.
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    /// Nanoseconds past the whole second.
    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }

    /// Seconds since the epoch as a float (for rates and display only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// `self - earlier` in nanoseconds, or 0 when `earlier` is later.
    pub const fn saturating_sub(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + ns` (saturating).
    pub const fn saturating_add_nanos(self, ns: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ns))
    }

    /// Absolute distance between two instants in nanoseconds.
    pub const fn abs_diff(self, other: Timestamp) -> u64 {
        self.0.abs_diff(other.0)
    }

    /// Parse an RFC 3339 / ISO 8601 UTC timestamp such as `2026-11-22T10:00:00.123456Z`
    /// (a fraction of any length up to 9 digits; `Z`, `+hh:mm` or no zone, taken as UTC).
    /// Returns `None` when the text is not such a timestamp.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let s = s.trim();
        let b = s.as_bytes();
        if b.len() < 19 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u64> {
            let part = s.get(r)?;
            if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let year = num(0..4)?;
        let month = num(5..7)?;
        let day = num(8..10)?;
        let sep = *b.get(10)?;
        if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(sep == b'T' || sep == b' ') {
            return None;
        }
        let hour = num(11..13)?;
        let min = num(14..16)?;
        let sec = num(17..19)?;
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || min > 59
            || sec > 60
        {
            return None;
        }
        let mut idx = 19;
        let mut nanos: u64 = 0;
        if b.get(idx) == Some(&b'.') {
            idx += 1;
            let mut digits = 0;
            while let Some(c) = b.get(idx).filter(|c| c.is_ascii_digit()) {
                if digits < 9 {
                    nanos = nanos * 10 + u64::from(c - b'0');
                    digits += 1;
                }
                idx += 1;
            }
            for _ in digits..9 {
                nanos *= 10;
            }
        }
        let mut offset_secs: i64 = 0;
        match b.get(idx) {
            None | Some(b'Z') | Some(b'z') => {}
            Some(&sign @ (b'+' | b'-')) => {
                let oh = num(idx + 1..idx + 3)? as i64;
                let om_start = if b.get(idx + 3) == Some(&b':') {
                    idx + 4
                } else {
                    idx + 3
                };
                let om = num(om_start..om_start + 2).unwrap_or(0) as i64;
                offset_secs = (oh * 3600 + om * 60) * if sign == b'+' { 1 } else { -1 };
            }
            _ => return None,
        }
        let days = days_from_civil(year as i64, month as u32, day as u32);
        let secs = days * 86_400 + (hour * 3600 + min * 60 + sec) as i64 - offset_secs;
        if secs < 0 {
            return None;
        }
        Some(Timestamp::from_secs_nanos(secs as u64, nanos as u32))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Length of the RFC 3339 text of a timestamp in years 1970..=9999.
const RFC3339_LEN: usize = 27;

impl Timestamp {
    /// The RFC 3339 text written digit by digit into `buf` (no formatting machinery: the
    /// EVE writer formats three per flow record). `None` outside the years 0..=9999, which
    /// nanoseconds in a `u64` never reach (they end in 2554); [`fmt::Display`] would still
    /// write them.
    fn rfc3339_fast(self, buf: &mut [u8; RFC3339_LEN]) -> Option<&str> {
        self.rfc3339_digits(buf)?;
        std::str::from_utf8(buf).ok()
    }

    /// Appends the timestamp as a JSON string (`"…Z"`) to `out`: the bytes serde_json
    /// writes for it (the text is ASCII digits and `-T:.Z`, nothing to escape), without
    /// serde's escaping scan. The EVE byte writer calls it three times per flow record.
    pub(crate) fn write_json(self, out: &mut Vec<u8>) {
        let mut buf = [0u8; RFC3339_LEN];
        if self.rfc3339_digits(&mut buf).is_some() {
            out.push(b'"');
            out.extend_from_slice(&buf);
            out.push(b'"');
        } else {
            // Years past 9999 (never reached by u64 nanoseconds): the general path.
            let _ = serde_json::to_writer(&mut *out, &self);
        }
    }

    /// Writes the RFC 3339 digits into `buf`; `None` outside the years 0..=9999.
    fn rfc3339_digits(self, buf: &mut [u8; RFC3339_LEN]) -> Option<()> {
        let secs = i64::try_from(self.secs()).ok()?;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        if !(0..=9999).contains(&y) {
            return None;
        }
        let rem = secs.rem_euclid(86_400);
        let micros = u64::from(self.subsec_nanos() / 1000);
        let mut put = |at: usize, width: usize, mut v: u64| {
            for i in (at..at + width).rev() {
                if let Some(b) = buf.get_mut(i) {
                    *b = b'0' + (v % 10) as u8;
                }
                v /= 10;
            }
        };
        put(0, 4, y as u64);
        put(5, 2, u64::from(m));
        put(8, 2, u64::from(d));
        put(11, 2, (rem / 3600) as u64);
        put(14, 2, ((rem / 60) % 60) as u64);
        put(17, 2, (rem % 60) as u64);
        put(20, 6, micros);
        for (i, c) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ] {
            if let Some(b) = buf.get_mut(i) {
                *b = c;
            }
        }
        Some(())
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with microseconds, as Suricata's EVE writes it but with `Z`:
    /// `2026-11-22T10:00:00.123456Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; RFC3339_LEN];
        if let Some(s) = self.rfc3339_fast(&mut buf) {
            return f.write_str(s);
        }
        let secs = self.secs() as i64;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60,
            self.subsec_nanos() / 1000
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; RFC3339_LEN];
        match self.rfc3339_fast(&mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    /// Accepts an RFC 3339 string (`"2026-11-22T10:00:00.123456Z"`) or an integer of
    /// nanoseconds since the epoch.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<'a> {
            Nanos(u64),
            #[serde(borrow)]
            Text(std::borrow::Cow<'a, str>),
        }
        match Raw::deserialize(d)? {
            Raw::Nanos(n) => Ok(Timestamp(n)),
            Raw::Text(s) => Timestamp::parse_rfc3339(&s).ok_or_else(|| {
                serde::de::Error::custom(format!("invalid RFC 3339 timestamp {s:?}"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_by_digit_text_equals_the_formatted_text() {
        let slow = |t: Timestamp| {
            let secs = t.secs() as i64;
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let rem = secs.rem_euclid(86_400);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
                rem / 3600,
                (rem / 60) % 60,
                rem % 60,
                t.subsec_nanos() / 1000
            )
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut cases = vec![
            0,
            999,
            1_000,
            86_399_999_999_999,
            951_782_400_000_000_000, // 2000-02-29
            u64::MAX,                // 2554-07-21T23:34:33.709551Z
        ];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(x % 4_102_444_800_000_000_000); // up to 2100
        }
        for n in cases {
            let t = Timestamp(n);
            assert_eq!(t.to_string(), slow(t), "{n}");
            assert_eq!(
                serde_json::to_string(&t).ok(),
                Some(format!("\"{}\"", slow(t)))
            );
            let mut direct = b"x".to_vec();
            t.write_json(&mut direct);
            assert_eq!(direct, format!("x\"{}\"", slow(t)).into_bytes(), "{n}");
        }
    }

    #[test]
    fn display_round_trips_through_parse() {
        let t = Timestamp::from_secs_nanos(1_795_000_000, 123_456_000);
        let s = t.to_string();
        assert_eq!(Timestamp::parse_rfc3339(&s), Some(t));
    }

    #[test]
    fn parse_handles_seven_digit_fractions_and_offsets() {
        let a = Timestamp::parse_rfc3339("2020-09-04T16:09:40.1234567Z").unwrap();
        assert_eq!(a.subsec_nanos(), 123_456_700);
        let b = Timestamp::parse_rfc3339("2020-09-04T18:09:40.1234567+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:00Z"),
            Some(Timestamp::ZERO)
        );
        assert_eq!(Timestamp::parse_rfc3339("not a time"), None);
        assert_eq!(Timestamp::parse_rfc3339("2020-13-04T18:09:40Z"), None);
    }

    #[test]
    fn epoch_day_conversions_agree() {
        for days in [-1000_i64, 0, 1, 59, 365, 10_957, 20_000, 200_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

//! Bounded IPv4/IPv6 fragment reassembly.
//!
//! Fragments are copied into one buffer per datagram (the only copy on the decode path).
//! Every resource is capped ([`DefragConfig`]): datagrams in progress, bytes per datagram
//! (65 535, the IP limit), bytes in all buffers, ranges per datagram, and age. When a cap is
//! hit the oldest datagram is dropped and counted, never the process's memory.
//!
//! Overlap policy: **first copy wins** — bytes already received are kept and a later
//! fragment only fills holes (the BSD-style choice; a sensor must pick one policy, and this
//! one makes a later overlapping fragment unable to rewrite what inspectors may see).

use super::{DecodeError, DecodeErrorKind, FragmentView, Layer};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// Fragment reassembly limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefragConfig {
    /// Datagrams being reassembled at once (default 4096).
    pub max_datagrams: usize,
    /// Bytes buffered over all datagrams (default 16 MiB).
    pub max_total_bytes: usize,
    /// Seconds a datagram may wait for its missing fragments (default 30, as Linux's
    /// `ipfrag_time`).
    pub timeout_secs: u64,
    /// Disjoint byte ranges tracked per datagram before it is dropped (default 64; a
    /// datagram needing more is an attack, not a network).
    pub max_ranges: usize,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_datagrams: 4096,
            max_total_bytes: 16 << 20,
            timeout_secs: 30,
            max_ranges: 64,
        }
    }
}

/// Counters of the reassembler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DefragStats {
    /// Fragments received.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams dropped when they timed out.
    pub timeouts: u64,
    /// Datagrams dropped to respect a cap.
    pub evicted: u64,
    /// Fragments rejected as malformed (bad offset, conflicting end, too many ranges).
    pub malformed: u64,
    /// Fragment bytes ignored because they overlapped bytes already received.
    pub overlap_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

struct Pending {
    buf: Vec<u8>,
    /// Disjoint, sorted [start, end) ranges received.
    ranges: Vec<(u32, u32)>,
    /// Total payload length, once the last fragment (MF = 0) is seen.
    end: Option<u32>,
    first_seen: Timestamp,
    fragments: u32,
    tunnel_depth: u8,
}

/// A datagram put back together. Hand `data` back with [`Defragmenter::recycle`] when done
/// so its buffer is reused.
#[derive(Debug)]
pub struct Reassembled {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol of the payload.
    pub proto: u8,
    /// The reassembled IP payload.
    pub data: Vec<u8>,
    /// How many fragments made it.
    pub fragments: u32,
    /// Tunnel depth of the fragments.
    pub tunnel_depth: u8,
}

/// The fragment reassembler. Time comes from packet timestamps.
pub struct Defragmenter {
    cfg: DefragConfig,
    pending: HashMap<FragKey, Pending, foldhash::fast::RandomState>,
    total_bytes: usize,
    pool: Vec<Vec<u8>>,
    stats: DefragStats,
}

const MAX_DATAGRAM: u32 = 65_535;
const POOL_CAP: usize = 64;

impl Defragmenter {
    /// A reassembler with these limits.
    pub fn new(cfg: DefragConfig) -> Self {
        Defragmenter {
            cfg,
            pending: HashMap::default(),
            total_bytes: 0,
            pool: Vec::new(),
            stats: DefragStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> DefragStats {
        self.stats
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.pending.len()
    }

    /// Return a finished datagram's buffer for reuse.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < POOL_CAP && buf.capacity() <= MAX_DATAGRAM as usize {
            buf.clear();
            self.pool.push(buf);
        }
    }

    /// Add one fragment. Returns the datagram when this fragment completed it.
    ///
    /// # Errors
    /// `bad_fragment` when the fragment contradicts what was received (its datagram is
    /// dropped) or cannot be tracked within the caps.
    pub fn push(
        &mut self,
        ts: Timestamp,
        f: &FragmentView<'_>,
    ) -> Result<Option<Reassembled>, DecodeError> {
        self.stats.fragments += 1;
        let bad = DecodeError::new(DecodeErrorKind::BadFragment, Layer::Ip, 0);
        let start = u32::from(f.offset);
        let len = u32::try_from(f.payload.len()).map_err(|_| bad)?;
        let end = match fragment_end(f.offset, len, f.more) {
            FragmentEnd::End(end) => end,
            FragmentEnd::TooLong => return Err(bad),
            FragmentEnd::Misaligned => {
                self.stats.malformed += 1;
                return Err(bad);
            }
        };
        let key = FragKey {
            src: f.src,
            dst: f.dst,
            proto: f.proto,
            id: f.id,
        };
        if !self.pending.contains_key(&key) {
            self.make_room(ts, len as usize);
            let buf = self.pool.pop().unwrap_or_default();
            self.pending.insert(
                key,
                Pending {
                    buf,
                    ranges: Vec::new(),
                    end: None,
                    first_seen: ts,
                    fragments: 0,
                    tunnel_depth: f.tunnel_depth,
                },
            );
        }
        let Some(p) = self.pending.get_mut(&key) else {
            return Err(bad);
        };
        // The last fragment fixes the length; anything beyond it, or a second different
        // end, is a contradiction.
        if conflicts(p.end, &p.ranges, end, f.more) || p.ranges.len() >= self.cfg.max_ranges {
            self.stats.malformed += 1;
            self.drop_key(&key);
            return Err(bad);
        }
        if !f.more {
            p.end = Some(end);
        }
        let grow = (end as usize).saturating_sub(p.buf.len());
        if self.total_bytes + grow > self.cfg.max_total_bytes {
            self.stats.evicted += 1;
            self.drop_key(&key);
            return Err(bad);
        }
        if p.buf.len() < end as usize {
            p.buf.resize(end as usize, 0);
            self.total_bytes += grow;
        }
        p.fragments += 1;
        // First copy wins: copy only the parts of [start, end) no range covers yet.
        let mut cursor = start;
        let mut idx = 0;
        let mut overlap = 0u64;
        while cursor < end {
            let next_range = p.ranges.get(idx).copied();
            match next_range {
                Some((_, re)) if re <= cursor => idx += 1,
                Some((rs, re)) if rs <= cursor => {
                    let skip_to = re.min(end);
                    overlap += u64::from(skip_to - cursor);
                    cursor = skip_to;
                    idx += 1;
                }
                other => {
                    let fill_end = other.map_or(end, |(rs, _)| rs.min(end));
                    let src = f
                        .payload
                        .get((cursor - start) as usize..(fill_end - start) as usize)
                        .ok_or(bad)?;
                    let dst = p
                        .buf
                        .get_mut(cursor as usize..fill_end as usize)
                        .ok_or(bad)?;
                    dst.copy_from_slice(src);
                    cursor = fill_end;
                }
            }
        }
        self.stats.overlap_bytes += overlap;
        insert_range(&mut p.ranges, start, end);
        if !is_complete(p.end, &p.ranges, len) {
            return Ok(None);
        }
        let Some(done) = self.pending.remove(&key) else {
            return Err(bad);
        };
        self.total_bytes = self.total_bytes.saturating_sub(done.buf.len());
        self.stats.reassembled += 1;
        Ok(Some(Reassembled {
            src: key.src,
            dst: key.dst,
            proto: key.proto,
            data: done.buf,
            fragments: done.fragments,
            tunnel_depth: done.tunnel_depth,
        }))
    }

    /// Drop datagrams older than the timeout.
    pub fn expire(&mut self, now: Timestamp) {
        let timeout = self.cfg.timeout_secs.saturating_mul(1_000_000_000);
        let before = self.pending.len();
        let mut freed = 0usize;
        let mut recycled = Vec::new();
        self.pending.retain(|_, p| {
            let keep = now.saturating_sub(p.first_seen) <= timeout;
            if !keep {
                freed += p.buf.len();
                recycled.push(std::mem::take(&mut p.buf));
            }
            keep
        });
        self.total_bytes = self.total_bytes.saturating_sub(freed);
        self.stats.timeouts += (before - self.pending.len()) as u64;
        for b in recycled {
            self.recycle(b);
        }
    }

    fn drop_key(&mut self, key: &FragKey) {
        if let Some(p) = self.pending.remove(key) {
            self.total_bytes = self.total_bytes.saturating_sub(p.buf.len());
            self.recycle(p.buf);
        }
    }

    /// Make room for one more datagram of about `need` bytes: expire, then evict oldest.
    fn make_room(&mut self, now: Timestamp, need: usize) {
        if self.pending.len() < self.cfg.max_datagrams
            && self.total_bytes + need <= self.cfg.max_total_bytes
        {
            return;
        }
        self.expire(now);
        while self.pending.len() >= self.cfg.max_datagrams.max(1)
            || (self.total_bytes + need > self.cfg.max_total_bytes && !self.pending.is_empty())
        {
            let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.first_seen)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.stats.evicted += 1;
            self.drop_key(&oldest);
        }
    }
}

/// What a fragment's offset, length and MF flag say before any datagram state is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FragmentEnd {
    /// The end of its data in the datagram's payload.
    End(u32),
    /// It would end beyond the 65 535-byte IP limit: refused.
    TooLong,
    /// More fragments follow but its length is not a multiple of 8 (RFC 791, RFC 8200
    /// §4.5): refused as malformed.
    Misaligned,
}

/// The reassembler's first check of a fragment (shared with the pipeline's dispatcher,
/// which tracks datagrams by the same rules without their bytes).
pub(crate) fn fragment_end(offset: u16, len: u32, more: bool) -> FragmentEnd {
    match u32::from(offset).checked_add(len) {
        Some(end) if end <= MAX_DATAGRAM => {
            if more && !len.is_multiple_of(8) {
                FragmentEnd::Misaligned
            } else {
                FragmentEnd::End(end)
            }
        }
        _ => FragmentEnd::TooLong,
    }
}

/// Whether a fragment ending at `end` contradicts what its datagram received: the last
/// fragment fixes the length; anything beyond it, or a second different end, is a
/// contradiction (the datagram is dropped).
pub(crate) fn conflicts(
    known_end: Option<u32>,
    ranges: &[(u32, u32)],
    end: u32,
    more: bool,
) -> bool {
    match (known_end, more) {
        (Some(e), _) if end > e => true,
        (Some(e), false) => e != end,
        (None, false) => ranges.last().is_some_and(|&(_, re)| re > end),
        _ => false,
    }
}

/// Whether a datagram is complete once a fragment of `len` bytes was added to `ranges`.
pub(crate) fn is_complete(end: Option<u32>, ranges: &[(u32, u32)], len: u32) -> bool {
    end.is_some_and(|e| ranges == [(0, e)]) || (end == Some(0) && len == 0)
}

/// Insert [s, e) into sorted disjoint ranges, merging neighbours that touch or overlap.
pub(crate) fn insert_range(ranges: &mut Vec<(u32, u32)>, s: u32, e: u32) {
    if s >= e {
        return;
    }
    let mut ns = s;
    let mut ne = e;
    ranges.retain(|&(rs, re)| {
        if re < ns || rs > ne {
            true
        } else {
            ns = ns.min(rs);
            ne = ne.max(re);
            false
        }
    });
    let pos = ranges.partition_point(|&(rs, _)| rs < ns);
    ranges.insert(pos, (ns, ne));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(id: u32, offset: u16, more: bool, payload: &[u8]) -> FragmentView<'_> {
        FragmentView {
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            proto: 17,
            id,
            offset,
            more,
            payload,
            tunnel_depth: 0,
        }
    }

    #[test]
    fn out_of_order_fragments_reassemble() {
        let mut d = Defragmenter::new(DefragConfig::default());
        let data: Vec<u8> = (0..40u8).collect();
        assert!(
            d.push(Timestamp(1), &frag(7, 24, false, &data[24..]))
                .unwrap()
                .is_none()
        );
        assert!(
            d.push(Timestamp(2), &frag(7, 0, true, &data[..16]))
                .unwrap()
                .is_none()
        );
        let r = d
            .push(Timestamp(3), &frag(7, 16, true, &data[16..24]))
            .unwrap()
            .unwrap();
        assert_eq!(r.data, data);
        assert_eq!(r.fragments, 3);
        assert_eq!(d.in_progress(), 0);
    }

    #[test]
    fn overlapping_fragment_keeps_first_copy() {
        let mut d = Defragmenter::new(DefragConfig::default());
        d.push(Timestamp(1), &frag(1, 0, true, &[1u8; 16])).unwrap();
        d.push(Timestamp(1), &frag(1, 8, true, &[2u8; 16])).unwrap();
        let r = d
            .push(Timestamp(1), &frag(1, 24, false, &[3u8; 4]))
            .unwrap()
            .unwrap();
        assert_eq!(&r.data[..16], &[1u8; 16]);
        assert_eq!(&r.data[16..24], &[2u8; 8]);
        assert_eq!(d.stats().overlap_bytes, 8);
    }

    #[test]
    fn conflicting_end_drops_the_datagram() {
        let mut d = Defragmenter::new(DefragConfig::default());
        assert!(
            d.push(Timestamp(1), &frag(1, 8, false, &[0u8; 8]))
                .unwrap()
                .is_none()
        );
        assert!(d.push(Timestamp(1), &frag(1, 16, true, &[0u8; 8])).is_err());
        assert_eq!(d.in_progress(), 0);
    }

    #[test]
    fn garbage_fragments_stay_within_caps() {
        let cfg = DefragConfig {
            max_datagrams: 8,
            max_total_bytes: 4096,
            ..DefragConfig::default()
        };
        let mut d = Defragmenter::new(cfg);
        for id in 0..10_000u32 {
            let _ = d.push(
                Timestamp(u64::from(id)),
                &frag(id, (id % 500) as u16 * 8, true, &[0u8; 64]),
            );
            assert!(d.in_progress() <= 8);
            assert!(d.total_bytes <= 4096);
        }
        assert!(d.stats().evicted > 0);
    }

    #[test]
    fn timeout_frees_incomplete_datagrams() {
        let mut d = Defragmenter::new(DefragConfig::default());
        d.push(Timestamp(0), &frag(1, 0, true, &[0u8; 8])).unwrap();
        d.expire(Timestamp(31_000_000_000));
        assert_eq!(d.in_progress(), 0);
        assert_eq!(d.stats().timeouts, 1);
    }
}

//! The bidirectional flow key.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// A flow's identity, the same for both directions: addresses and ports are stored in a
/// canonical order (lower endpoint first), so a packet and its reply map to one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    /// The lower (address, port) endpoint.
    pub lo_ip: IpAddr,
    /// The higher (address, port) endpoint.
    pub hi_ip: IpAddr,
    /// Port of the lower endpoint (0 for protocols without ports).
    pub lo_port: u16,
    /// Port of the higher endpoint.
    pub hi_port: u16,
    /// IP protocol number.
    pub proto: u8,
}

impl FlowKey {
    /// The key of a packet from `src:sport` to `dst:dport`, and whether the sender is the
    /// lower endpoint.
    pub fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, proto: u8) -> (FlowKey, bool) {
        // `(src, sport) <= (dst, dport)` in `IpAddr`'s order (IPv4 before IPv6, then the
        // octets), on integers: comparing the octet arrays calls memcmp, once per packet.
        if (order_bits(src), sport) <= (order_bits(dst), dport) {
            (
                FlowKey {
                    lo_ip: src,
                    hi_ip: dst,
                    lo_port: sport,
                    hi_port: dport,
                    proto,
                },
                true,
            )
        } else {
            (
                FlowKey {
                    lo_ip: dst,
                    hi_ip: src,
                    lo_port: dport,
                    hi_port: sport,
                    proto,
                },
                false,
            )
        }
    }

    /// A deterministic hash that is the same for both directions (the key is canonical),
    /// stable across runs and machines: for sharding flows across workers and for
    /// `flow_id`. FNV-1a over the key's bytes, finished with a 64-bit mixer.
    pub fn symmetric_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for ip in [self.lo_ip, self.hi_ip] {
            match ip {
                IpAddr::V4(a) => eat(&a.octets()),
                IpAddr::V6(a) => eat(&a.octets()),
            }
        }
        eat(&self.lo_port.to_be_bytes());
        eat(&self.hi_port.to_be_bytes());
        eat(&[self.proto]);
        mix64(h)
    }
}

/// Whole words rather than field by field: the derived impl hashed each address's
/// discriminant and length-prefixed octets, six to eight hasher rounds per lookup on the
/// per-packet path; this is two for IPv4 and five for IPv6. Equal keys have equal fields,
/// so they hash alike (the `Eq` contract).
impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let tail = (u64::from(self.lo_port) << 32)
            | (u64::from(self.hi_port) << 16)
            | u64::from(self.proto);
        match (self.lo_ip, self.hi_ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                state.write_u64((u64::from(a.to_bits()) << 32) | u64::from(b.to_bits()));
                state.write_u64(tail);
            }
            (a, b) => {
                state.write_u128(v6_bits(a));
                state.write_u128(v6_bits(b));
                // Tagged, so that an IPv6 key never feeds the IPv4 word pattern.
                state.write_u64(tail | (1 << 63));
            }
        }
    }
}

/// An address as an integer that sorts as `IpAddr` does: every IPv4 address (bit 128
/// clear) before every IPv6 one, each family by its octets read big-endian.
#[inline]
fn order_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(a.to_bits())),
        IpAddr::V6(a) => (true, a.to_bits()),
    }
}

/// An address as 128 bits (IPv4 as its IPv4-mapped IPv6 form).
#[inline]
fn v6_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    }
}

/// A 64-bit finaliser (splitmix64's), so nearby keys land far apart.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_share_one_key_and_hash() {
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let (k1, lo1) = FlowKey::new(a, 5000, b, 443, 6);
        let (k2, lo2) = FlowKey::new(b, 443, a, 5000, 6);
        assert_eq!(k1, k2);
        assert_ne!(lo1, lo2);
        assert_eq!(k1.symmetric_hash(), k2.symmetric_hash());
    }

    #[test]
    fn endpoint_order_is_ipaddr_order() {
        let addrs: Vec<IpAddr> = vec![
            IpAddr::from([0, 0, 0, 0]),
            IpAddr::from([10, 0, 0, 1]),
            IpAddr::from([10, 0, 0, 2]),
            IpAddr::from([10, 0, 1, 0]),
            IpAddr::from([192, 168, 1, 1]),
            IpAddr::from([255, 255, 255, 255]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 0]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0xffff, 0x0a00, 1]),
            IpAddr::from([0xfe80u16, 0, 0, 0, 0, 0, 0, 1]),
            IpAddr::from([0xfe80u16, 0, 0, 0, 0, 0, 1, 0]),
            IpAddr::from([0xffffu16; 8]),
        ];
        for &a in &addrs {
            for &b in &addrs {
                for (pa, pb) in [(1, 2), (2, 1), (7, 7)] {
                    let (_, lower) = FlowKey::new(a, pa, b, pb, 6);
                    assert_eq!(lower, (a, pa) <= (b, pb), "{a}:{pa} {b}:{pb}");
                }
            }
        }
    }

    #[test]
    fn equal_keys_hash_alike_and_keys_differing_in_one_field_hash_apart() {
        use std::hash::BuildHasher;
        let s = foldhash::fast::FixedState::with_seed(7);
        let v4 = |a: u8, p: u16, proto: u8| {
            FlowKey::new(
                IpAddr::from([10, 0, 0, a]),
                p,
                IpAddr::from([10, 0, 0, 9]),
                53,
                proto,
            )
            .0
        };
        let v6 = |a: u16, p: u16| {
            let x = IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, a]);
            let y = IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, 0x99]);
            FlowKey::new(x, p, y, 443, 6).0
        };
        assert_eq!(s.hash_one(v4(1, 5000, 17)), s.hash_one(v4(1, 5000, 17)));
        assert_eq!(s.hash_one(v6(1, 5000)), s.hash_one(v6(1, 5000)));
        let distinct = [
            s.hash_one(v4(1, 5000, 17)),
            s.hash_one(v4(2, 5000, 17)),
            s.hash_one(v4(1, 5001, 17)),
            s.hash_one(v4(1, 5000, 6)),
            s.hash_one(v6(1, 5000)),
            s.hash_one(v6(2, 5000)),
            s.hash_one(v6(1, 5001)),
        ];
        for (i, a) in distinct.iter().enumerate() {
            for b in &distinct[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}

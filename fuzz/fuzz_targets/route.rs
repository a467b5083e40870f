//! Fuzzes `decode::route_key`, the dispatcher's routing shortcut: it must never panic and
//! must give exactly what the full decoder gives (`route_key_decoded`) for every frame.
//!
//! Input layout: byte 0 picks the link type; the rest is the frame.
#![no_main]

use entrospect::capture::LinkType;
use entrospect::decode::route::{route_key, route_key_decoded};
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 14] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::PPP,
    LinkType::NFLOG,
    LinkType::IEEE802_11_RADIOTAP,
    LinkType::RAW_ALT12,
    LinkType::RAW_ALT14,
    LinkType(147),
];

fuzz_target!(|data: &[u8]| {
    let Some((&l, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(l) % LINKS.len()];
    assert_eq!(route_key(link, frame), route_key_decoded(link, frame));
});

//! Arbitrary bytes as a capture file: sniffing and iterating every packet must never panic,
//! never yield a second error, and never resume after the end.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut packets) = entrospect::capture::packets_from_slice(data) else {
        return;
    };
    let mut errors = 0u32;
    let mut bytes = 0usize;
    for item in packets.by_ref() {
        match item {
            Ok(p) => {
                assert_eq!(errors, 0, "packet after an error");
                bytes += p.data.len();
            }
            Err(e) => {
                errors += 1;
                // Every iteration error names where it happened.
                assert!(e.offset().is_some() && e.packet_index().is_some(), "{e}");
            }
        }
    }
    assert!(errors <= 1);
    assert!(packets.next().is_none());
    assert!(bytes <= data.len());
    assert_eq!(packets.stats().bytes, bytes as u64);
});

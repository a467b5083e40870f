//! X.509 summary over arbitrary DER: must never panic, always yield a summary.
#![no_main]

use entrospect::inspect::tls::cert::summarize_cert;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = summarize_cert(data);
    assert_eq!(s.der_len, data.len());
});

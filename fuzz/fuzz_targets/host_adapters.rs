//! Fuzz the text host adapters: every line-oriented format and the Elastic document
//! reader over the same bytes, plus format detection. No input may panic, and every
//! adapter must end.
#![no_main]

use entrospect::host::adapters::{HostFormat, detect_format, open_reader};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let _ = detect_format(data, Some("fuzz.log"));
    // The first byte picks a format, the rest is the file.
    let Some((&sel, body)) = data.split_first() else { return };
    let text_formats = [
        HostFormat::Jsonl,
        HostFormat::SysmonXml,
        HostFormat::SysmonJson,
        HostFormat::Auditd,
        HostFormat::Auoms,
        HostFormat::Tetragon,
        HostFormat::Eslogger,
        HostFormat::ElasticEndpoint,
        HostFormat::Lsof,
        HostFormat::Esxcli,
        HostFormat::EsxiSyslog,
    ];
    let format = text_formats[usize::from(sel) % text_formats.len()];
    if let Ok(adapter) = open_reader(Cursor::new(body.to_vec()), format, Some("fuzz")) {
        for item in adapter.take(1 << 16) {
            if let Ok(ev) = item {
                let _ = serde_json::to_string(&ev);
            }
        }
    }
});

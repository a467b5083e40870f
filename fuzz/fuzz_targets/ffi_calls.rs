//! The C ABI: arbitrary sequences of calls on one or two engines, with arbitrary lengths,
//! NULLs, enum numbers, strings and callback verdicts. No call may crash or panic through
//! the boundary (a caught panic is reported as `ENTROSPECT_STATUS_PANIC`, which this
//! target treats as a bug); statuses must be among the published ones.
#![no_main]

use arbitrary::Arbitrary;
use entrospect::ffi::*;
use libfuzzer_sys::fuzz_target;
use std::ffi::{CString, c_char, c_int, c_void};
use std::ptr::{null, null_mut};

#[derive(Arbitrary, Debug)]
enum Call {
    Packet {
        engine: bool,
        ts: u64,
        link_type: u32,
        data: Vec<u8>,
        null_data: bool,
    },
    Captured {
        engine: bool,
        ts: u64,
        link_type: u32,
        data: Vec<u8>,
        orig_len: u32,
    },
    HostJson {
        engine: bool,
        json: Vec<u8>,
    },
    HostStruct {
        engine: bool,
        ev: HostFields,
    },
    Flush {
        engine: bool,
        now: u64,
    },
    Finish {
        engine: bool,
    },
    Poll {
        engine: bool,
    },
    Stats {
        engine: bool,
        len: u16,
        null_buf: bool,
    },
    Callback {
        engine: bool,
        set: bool,
        reject_every: u8,
    },
    LastError {
        len: u8,
    },
    NullEngine,
}

#[derive(Arbitrary, Debug)]
struct HostFields {
    struct_size_delta: i8,
    timestamp_ns: u64,
    host: Option<Vec<u8>>,
    platform: u32,
    kind: u32,
    pid: u32,
    ppid: i64,
    image: Option<Vec<u8>>,
    module: Option<Vec<u8>>,
    proto: u32,
    src_addr: [u8; 16],
    src_family: u32,
    src_port: i32,
    dst_addr: [u8; 16],
    dst_family: u32,
    dst_port: u16,
    direction: u32,
}

struct Verdicts {
    seen: u64,
    reject_every: u8,
}

unsafe extern "C" fn on_event(userdata: *mut c_void, ev: *const entrospect_event) -> c_int {
    // SAFETY: userdata is the `Verdicts` this target registered; it outlives the engine.
    let v = unsafe { &mut *userdata.cast::<Verdicts>() };
    // SAFETY: the library passes a valid event for the duration of the call.
    let ev = unsafe { &*ev };
    // SAFETY: json/json_len describe a readable buffer for the call.
    let json = unsafe { std::slice::from_raw_parts(ev.json.cast::<u8>(), ev.json_len) };
    assert!(
        json.starts_with(b"{") && json.ends_with(b"}"),
        "event json is one object"
    );
    // SAFETY: the library NUL-terminates `json`.
    assert_eq!(
        unsafe { ev.json.add(ev.json_len).read() },
        0,
        "json is NUL-terminated"
    );
    v.seen += 1;
    c_int::from(v.reject_every != 0 && v.seen % u64::from(v.reject_every) == 0)
}

/// NUL-terminated copy of arbitrary bytes (cut at the first NUL).
fn cstring(b: &[u8]) -> CString {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    CString::new(&b[..end]).unwrap_or_default()
}

fn check(st: entrospect_status) {
    assert_ne!(
        st,
        entrospect_status::Panic,
        "a panic reached the c boundary"
    );
    assert!((st as u32) <= 11, "unpublished status {}", st as u32);
}

fuzz_target!(|calls: Vec<Call>| {
    let mut engines = [null_mut(), null_mut()];
    for e in &mut engines {
        // SAFETY: NULL config; out is a local.
        check(unsafe { entrospect_engine_new(null(), e) });
    }
    // Only ever reached through these raw pointers (the engines keep copies as userdata).
    let verdicts = [(); 2].map(|()| {
        Box::into_raw(Box::new(Verdicts {
            seen: 0,
            reject_every: 0,
        }))
    });
    for call in calls.iter().take(256) {
        let pick = |b: bool| usize::from(b);
        // SAFETY (all calls below): engines are live handles from entrospect_engine_new,
        // buffers are valid for the lengths passed, strings are NUL-terminated.
        unsafe {
            let st = match call {
                Call::Packet {
                    engine,
                    ts,
                    link_type,
                    data,
                    null_data,
                } => {
                    let p = if *null_data { null() } else { data.as_ptr() };
                    entrospect_engine_process_packet(
                        engines[pick(*engine)],
                        *ts,
                        *link_type,
                        p,
                        data.len(),
                    )
                }
                Call::Captured {
                    engine,
                    ts,
                    link_type,
                    data,
                    orig_len,
                } => entrospect_engine_process_captured_packet(
                    engines[pick(*engine)],
                    *ts,
                    *link_type,
                    data.as_ptr(),
                    data.len(),
                    *orig_len,
                ),
                Call::HostJson { engine, json } => entrospect_engine_process_host_event_json(
                    engines[pick(*engine)],
                    json.as_ptr().cast(),
                    json.len(),
                ),
                Call::HostStruct { engine, ev } => {
                    let host = ev.host.as_deref().map(cstring);
                    let image = ev.image.as_deref().map(cstring);
                    let module = ev.module.as_deref().map(cstring);
                    let ptr = |s: &Option<CString>| s.as_ref().map_or(null(), |c| c.as_ptr());
                    let size = size_of::<entrospect_host_event>()
                        .saturating_add_signed(isize::from(ev.struct_size_delta.min(0)));
                    let he = entrospect_host_event {
                        struct_size: size,
                        timestamp_ns: ev.timestamp_ns,
                        host: ptr(&host),
                        platform: ev.platform,
                        kind: ev.kind,
                        pid: ev.pid,
                        ppid: ev.ppid,
                        image: ptr(&image),
                        cmdline: null::<c_char>(),
                        user: null(),
                        process_guid: null(),
                        parent_image: null(),
                        parent_guid: null(),
                        module: ptr(&module),
                        proto: ev.proto,
                        src_addr: ev.src_addr,
                        src_family: ev.src_family,
                        src_port: ev.src_port,
                        dst_addr: ev.dst_addr,
                        dst_family: ev.dst_family,
                        dst_port: ev.dst_port,
                        direction: ev.direction,
                    };
                    entrospect_engine_process_host_event(engines[pick(*engine)], &he)
                }
                Call::Flush { engine, now } => {
                    entrospect_engine_flush(engines[pick(*engine)], *now)
                }
                Call::Finish { engine } => entrospect_engine_finish(engines[pick(*engine)]),
                Call::Poll { engine } => entrospect_engine_poll(engines[pick(*engine)]),
                Call::Stats {
                    engine,
                    len,
                    null_buf,
                } => {
                    let mut buf = vec![0 as c_char; usize::from(*len)];
                    let mut n = 0usize;
                    let (p, l) = if *null_buf {
                        (null_mut(), 0)
                    } else {
                        (buf.as_mut_ptr(), buf.len())
                    };
                    entrospect_engine_stats_json(engines[pick(*engine)], p, l, &mut n)
                }
                Call::Callback {
                    engine,
                    set,
                    reject_every,
                } => {
                    let i = pick(*engine);
                    (*verdicts[i]).reject_every = *reject_every;
                    let ud = verdicts[i].cast::<c_void>();
                    let cb: entrospect_event_callback = if *set { Some(on_event) } else { None };
                    entrospect_engine_set_callback(engines[i], cb, ud)
                }
                Call::LastError { len } => {
                    let mut buf = vec![0 as c_char; usize::from(*len)];
                    let mut n = 0usize;
                    entrospect_last_error(buf.as_mut_ptr(), buf.len(), &mut n)
                }
                Call::NullEngine => entrospect_engine_finish(null_mut()),
            };
            check(st);
        }
    }
    for e in engines {
        // SAFETY: each engine is freed once.
        unsafe { entrospect_engine_free(e) };
    }
    for v in verdicts {
        // SAFETY: from Box::into_raw above; the engines using it are freed.
        drop(unsafe { Box::from_raw(v) });
    }
});

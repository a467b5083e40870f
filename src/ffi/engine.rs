//! The engine handle and the entry points that feed it and deliver its events.

use super::boundary::{bytes_in, cstr_in, fail, set_last_error, text_out};
use super::event::{EventScratch, entrospect_event};
use super::handle;
use super::host::{entrospect_host_event, host_event_in};
use super::status::entrospect_status;
use super::verdict::{VerdictSink, entrospect_verdict_callback};
use crate::capture::{LinkType, Packet};
use crate::engine::MAX_WIRE_LEN;
use crate::host::HostEvent;
use crate::output::Event;
use crate::{Config, Engine, Error, Timestamp};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void};

/// The ABI version: raised on any incompatible change to the C ABI.
pub const ENTROSPECT_ABI_VERSION: u32 = 1;

/// Events kept for delivery per engine; beyond this the oldest are dropped and counted.
const MAX_PENDING_EVENTS: usize = 1 << 16;

/// Longest configuration text accepted, in bytes.
const MAX_CONFIG_LEN: usize = 1 << 20;

/// Longest host-event JSON text accepted, in bytes.
const MAX_HOST_JSON_LEN: usize = 1 << 20;

/// The event callback: `userdata` as given to `entrospect_engine_set_callback`, then the
/// event, borrowed for the duration of the call. Return 0 to go on; any other value stops
/// delivery and makes the feeding call return `ENTROSPECT_STATUS_CALLBACK_ERROR`, with the
/// rejected event and all later ones kept queued for the next feeding call.
///
/// The callback must not unwind (no C++ exception or Rust panic may leave it) and must not
/// call functions on the engine that is delivering to it.
pub type entrospect_event_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const entrospect_event) -> c_int>;

/// An engine: decoder, flow table, inspectors, host index and detection, for one thread at
/// a time. Opaque: create it with `entrospect_engine_new`, release it with
/// `entrospect_engine_free`.
pub struct entrospect_engine {
    /// `handle::ENGINE_MAGIC` while alive.
    pub(super) magic: u64,
    /// Set when a panic escaped a call on this engine: its state may be half-updated.
    poisoned: Cell<bool>,
    /// Borrowed mutably for the length of each call; a second borrow is re-entry.
    inner: RefCell<Inner>,
}

impl entrospect_engine {
    /// Whether a call on this engine is running (so we are inside its callback).
    pub(super) fn is_busy(&self) -> bool {
        self.inner.try_borrow_mut().is_err()
    }
}

struct Inner {
    engine: Engine,
    callback: entrospect_event_callback,
    userdata: *mut c_void,
    pending: VecDeque<Event>,
    dropped: u64,
    scratch: EventScratch,
    /// Test hook: panic inside the next call, as a bug in the engine would.
    #[cfg(test)]
    panic_next: bool,
}

impl Inner {
    /// Move the engine's new events to the queue and deliver the queue to the callback.
    fn deliver(&mut self) -> entrospect_status {
        for ev in self.engine.drain_events() {
            if self.pending.len() >= MAX_PENDING_EVENTS {
                self.pending.pop_front();
                self.dropped = self.dropped.saturating_add(1);
            }
            self.pending.push_back(ev);
        }
        let Some(cb) = self.callback else {
            return entrospect_status::Ok;
        };
        while let Some(ev) = self.pending.front() {
            let c_ev = match self.scratch.describe(ev) {
                Ok(c) => c,
                Err(e) => {
                    // Not expected for our types; the event cannot be shown, so it is
                    // dropped and counted rather than blocking the queue forever.
                    set_last_error(&format!("event: cannot serialize to json: {e}"));
                    self.pending.pop_front();
                    self.dropped = self.dropped.saturating_add(1);
                    continue;
                }
            };
            // SAFETY: `cb` was given by the caller as a valid function of this type, with
            // `userdata` as its argument; `c_ev` and the scratch buffers it points into
            // live until after the call returns.
            let rc = unsafe { cb(self.userdata, &c_ev) };
            if rc != 0 {
                return fail(
                    entrospect_status::CallbackError,
                    &format!(
                        "callback returned {rc}; {} event(s) stay queued",
                        self.pending.len()
                    ),
                );
            }
            self.pending.pop_front();
        }
        entrospect_status::Ok
    }
}

/// Undo nothing, but mark the engine poisoned when a panic unwinds through the call.
struct PoisonOnUnwind<'a>(&'a Cell<bool>);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.set(true);
        }
    }
}

/// Run `f` on the engine behind `ptr` with the handle checks of every engine call.
///
/// # Safety
/// `ptr` satisfies the contract of `handle::borrow`.
unsafe fn with_engine(
    ptr: *mut entrospect_engine,
    f: impl FnOnce(&mut Inner) -> entrospect_status,
) -> entrospect_status {
    // SAFETY: the caller's contract is the one `handle::borrow` needs.
    let h = match unsafe { handle::borrow(ptr) } {
        Ok(h) => h,
        Err(st) => return st,
    };
    if h.poisoned.get() {
        return fail(
            entrospect_status::Panic,
            "engine: poisoned by an earlier panic; free it and make a new one",
        );
    }
    let Ok(mut inner) = h.inner.try_borrow_mut() else {
        return fail(
            entrospect_status::Reentrant,
            "engine: called from its own callback",
        );
    };
    let _guard = PoisonOnUnwind(&h.poisoned);
    #[cfg(test)]
    if std::mem::take(&mut inner.panic_next) {
        panic!("test hook: panic inside an engine call");
    }
    f(&mut inner)
}

/// Create an engine from a TOML configuration (NULL: the defaults) into `*out`.
///
/// Returns `ENTROSPECT_STATUS_INVALID_CONFIG` when the TOML does not parse or fails
/// validation (the message names the key), `ENTROSPECT_STATUS_ENGINE_ERROR` when the
/// machine lacks what it asks for.
///
/// Thread-safety: any thread; the new engine is then used by one thread at a time.
///
/// # Safety
/// `config_toml` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_new(
    config_toml: *const c_char,
    out: *mut *mut entrospect_engine,
) -> entrospect_status {
    ffi_boundary!({
        if out.is_null() {
            return fail(entrospect_status::NullParameter, "engine_new: out is null");
        }
        // SAFETY: the caller guarantees a NUL-terminated string or NULL.
        let text = match unsafe { cstr_in(config_toml, MAX_CONFIG_LEN, "config") } {
            Ok(t) => t,
            Err(st) => return st,
        };
        let cfg = match text.map(Config::from_toml).transpose() {
            Ok(c) => c.unwrap_or_default(),
            Err(e) => return fail(entrospect_status::InvalidConfig, &format!("config: {e}")),
        };
        let engine = match Engine::new(cfg) {
            Ok(e) => e,
            Err(Error::Config(e)) => {
                return fail(entrospect_status::InvalidConfig, &format!("config: {e}"));
            }
            Err(e) => return fail(entrospect_status::EngineError, &format!("engine_new: {e}")),
        };
        let h = Box::new(entrospect_engine {
            magic: handle::ENGINE_MAGIC,
            poisoned: Cell::new(false),
            inner: RefCell::new(Inner {
                engine,
                callback: None,
                userdata: std::ptr::null_mut(),
                pending: VecDeque::new(),
                dropped: 0,
                scratch: EventScratch::default(),
                #[cfg(test)]
                panic_next: false,
            }),
        });
        // SAFETY: `out` is not NULL (checked above) and the caller guarantees it writable.
        unsafe { out.write(handle::into_raw(h)) };
        entrospect_status::Ok
    })
}

/// Release an engine and every event still queued in it. NULL is a no-op.
///
/// A handle that fails the magic-tag check (already freed, best effort) and a call from
/// the engine's own callback are ignored; `entrospect_last_error` then says why.
///
/// Thread-safety: not concurrently with any other call on the same engine.
///
/// # Safety
/// `engine` is NULL or was returned by `entrospect_engine_new` and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_free(engine: *mut entrospect_engine) {
    ffi_boundary!((), {
        // SAFETY: the caller's contract is the one `handle::free` needs.
        let _ = unsafe { handle::free(engine) };
    })
}

/// Set (or, with `cb == NULL`, unset) the callback that receives each output event, with
/// `userdata` passed back as its first argument. Events already queued are delivered by
/// the next feeding call (or `entrospect_engine_poll`).
///
/// Thread-safety: not concurrently with any other call on the same engine.
///
/// # Safety
/// `engine` as for `entrospect_engine_free`; `cb` is NULL or a function of the callback
/// type that may be called with `userdata` until the callback is replaced or the engine
/// freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_set_callback(
    engine: *mut entrospect_engine,
    cb: entrospect_event_callback,
    userdata: *mut c_void,
) -> entrospect_status {
    ffi_boundary!({
        // SAFETY: the caller's contract on `engine` is `with_engine`'s.
        unsafe {
            with_engine(engine, |inner| {
                inner.callback = cb;
                inner.userdata = userdata;
                entrospect_status::Ok
            })
        }
    })
}

/// Set (or, with `cb == NULL`, unset) the callback that receives each inline flow verdict
/// (`entrospect_verdict`), with `userdata` passed back as its first argument. See
/// `entrospect_verdict_callback` for when it is called; verdicts decided while no verdict
/// callback is set are not kept.
///
/// Thread-safety: not concurrently with any other call on the same engine. The callback is
/// called on whichever thread makes the feeding call, so `cb` and `userdata` must be usable
/// from every thread that feeds this engine.
///
/// # Safety
/// `engine` as for `entrospect_engine_free`; `cb` is NULL or a function of the callback
/// type that may be called with `userdata` until the verdict callback is replaced or the
/// engine freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_set_verdict_callback(
    engine: *mut entrospect_engine,
    cb: entrospect_verdict_callback,
    userdata: *mut c_void,
) -> entrospect_status {
    ffi_boundary!({
        // SAFETY: the caller's contract on `engine` is `with_engine`'s.
        unsafe {
            with_engine(engine, |inner| {
                match cb {
                    Some(f) => {
                        let mut sink = VerdictSink::new(f, userdata);
                        inner.engine.set_verdict_handler(move |v| sink.deliver(v));
                    }
                    None => inner.engine.clear_verdict_handler(),
                }
                entrospect_status::Ok
            })
        }
    })
}

/// Process one frame of `link_type` (a tcpdump `LINKTYPE_` number, e.g. 1 for Ethernet;
/// libpcap's `DLT_RAW` values 12 and 14 are also taken) seen at `ts_ns`, whose length on
/// the wire is `len`. Then deliver the events (see the module conventions).
///
/// A frame the decoder cannot read (an unknown link type, truncated headers) is counted
/// in the stats under `capture.decode_errors` and is not an error of the call. `len` above
/// 262 144 bytes is `ENTROSPECT_STATUS_INVALID_PARAMETER`. The bytes are only read during
/// the call.
///
/// Thread-safety: not concurrently with any other call on the same engine.
///
/// # Safety
/// `engine` as for `entrospect_engine_free`; `data` is NULL with `len == 0` or valid for
/// reads of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_process_packet(
    engine: *mut entrospect_engine,
    ts_ns: u64,
    link_type: u32,
    data: *const u8,
    len: usize,
) -> entrospect_status {
    ffi_boundary!({
        // SAFETY: the caller guarantees `len` readable bytes at a non-NULL `data`.
        let bytes = match unsafe { bytes_in(data, len, MAX_WIRE_LEN as usize, "packet data") } {
            Ok(b) => b,
            Err(st) => return st,
        };
        // SAFETY: the caller's contract on `engine` is `with_engine`'s.
        unsafe {
            with_engine(engine, |inner| {
                inner.engine.process_packet(
                    Timestamp::from_nanos(ts_ns),
                    LinkType(link_type),
                    bytes,
                );
                inner.deliver()
            })
        }
    })
}

/// As `entrospect_engine_process_packet`, for a capture that may have cut the frame:
/// `caplen` bytes were captured of a frame of `orig_len` bytes on the wire (libpcap's
/// `pcap_pkthdr.caplen` and `.len`). Byte counters count `orig_len`; an `orig_len` below
/// `caplen` or above 262 144 is impossible and `caplen` is counted instead.
///
/// Thread-safety: not concurrently with any other call on the same engine.
///
/// # Safety
/// As for `entrospect_engine_process_packet`, with `caplen` the length of `data`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_process_captured_packet(
    engine: *mut entrospect_engine,
    ts_ns: u64,
    link_type: u32,
    data: *const u8,
    caplen: usize,
    orig_len: u32,
) -> entrospect_status {
    ffi_boundary!({
        // SAFETY: the caller guarantees `caplen` readable bytes at a non-NULL `data`.
        let bytes = match unsafe { bytes_in(data, caplen, MAX_WIRE_LEN as usize, "packet data") } {
            Ok(b) => b,
            Err(st) => return st,
        };
        // SAFETY: the caller's contract on `engine` is `with_engine`'s.
        unsafe {
            with_engine(engine, |inner| {
                inner.engine.process(&Packet {
                    ts: Timestamp::from_nanos(ts_ns),
                    link_type: LinkType(link_type),
                    data: bytes,
                    orig_len,
                });
                inner.deliver()
            })
        }
    })
}

/// Ingest one host event (see `entrospect_host_event`), then deliver the events.
///
/// Thread-safety: not concurrently with any other call on the same engine.
///
/// # Safety
/// `engine` as for `entrospect_engine_free`; `event` is NULL or points at an
/// `entrospect_host_event` of at least `struct_size` bytes whose strings are NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_process_host_event(
    engine: *mut entrospect_engine,
    event: *const entrospect_host_event,
) -> entrospect_status {
    ffi_boundary!({
        // SAFETY: the caller guarantees the struct and its strings as `host_event_in` needs.
        let ev = match unsafe { host_event_in(event) } {
            Ok(e) => e,
            Err(st) => return st,
        };
        // SAFETY: the caller's contract on `engine` is `with_engine`'s.
        unsafe {
            with_engine(engine, |inner| {
                inner.engine.process_host_event(ev);
                inner.deliver()
            })
        }
    })
}

/// Ingest one host event given as one JSON object (`json`, `len` bytes, no NUL needed;
/// surrounding whitespace and a trailing newline are fine), in the JSON-lines form of
/// the replay tools:
///
/// ```json
/// {"timestamp":"2026-11-22T10:00:00.123456Z","host":"ws-17","platform":"linux","event":"process_start","pid":4242,"ppid":1,"image":"/usr/bin/python3","cmdline":"python3 beacon.py"}
/// ```
///
/// `event` is `process_start`, `module_load`, `network_connect` or `process_exit`. Then
/// deliver the events. Invalid UTF-8 is `ENTROSPECT_STATUS_INVALID_UTF8`; text that is not
/// such an object is `ENTROSPECT_STATUS_INVALID_JSON` (the message gives line and column);
/// over 1 MiB is `ENTROSPECT_STATUS_INVALID_PARAMETER`.
///
/// Thread-safety: not concurrently with any other call on the same engine.
///
/// # Safety
/// `engine` as for `entrospect_engine_free`; `json` is NULL with `len == 0` or valid for
/// reads of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_process_host_event_json(
    engine: *mut entrospect_engine,
    json: *const c_char,
    len: usize,
) -> entrospect_status {
    ffi_boundary!({
        // SAFETY: the caller guarantees `len` readable bytes at a non-NULL `json`.
        let bytes =
            match unsafe { bytes_in(json.cast(), len, MAX_HOST_JSON_LEN, "host event json") } {
                Ok(b) => b,
                Err(st) => return st,
            };
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                return fail(
                    entrospect_status::InvalidUtf8,
                    &format!("host event json: invalid utf-8 at byte {}", e.valid_up_to()),
                );
            }
        };
        let ev: HostEvent = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                return fail(
                    entrospect_status::InvalidJson,
                    &format!("host event json: {e}"),
                );
            }
        };
        // SAFETY: the caller's contract on `engine` is `with_engine`'s.
        unsafe {
            with_engine(engine, |inner| {
                inner.engine.process_host_event(ev);
                inner.deliver()
            })
        }
    })
}

/// Expire flows, fragments and host state idle at `now_ns` (call it periodically on live
/// traffic when packets are sparse), then deliver the events.
///
/// Thread-safety: not concurrently with any other call on the same engine.
///
/// # Safety
/// `engine` as for `entrospect_engine_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_flush(
    engine: *mut entrospect_engine,
    now_ns: u64,
) -> entrospect_status {
    ffi_boundary!({
        // SAFETY: the caller's contract on `engine` is `with_engine`'s.
        unsafe {
            with_engine(engine, |inner| {
                inner.engine.flush(Timestamp::from_nanos(now_ns));
                inner.deliver()
            })
        }
    })
}

/// End every flow (the input ended) and emit a `stats` event, then deliver the events.
/// The engine stays usable.
///
/// Thread-safety: not concurrently with any other call on the same engine.
///
/// # Safety
/// `engine` as for `entrospect_engine_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_finish(
    engine: *mut entrospect_engine,
) -> entrospect_status {
    ffi_boundary!({
        // SAFETY: the caller's contract on `engine` is `with_engine`'s.
        unsafe {
            with_engine(engine, |inner| {
                inner.engine.finish();
                inner.deliver()
            })
        }
    })
}

/// Deliver the queued events without feeding anything (after setting a callback, or to
/// retry after `ENTROSPECT_STATUS_CALLBACK_ERROR`).
///
/// Thread-safety: not concurrently with any other call on the same engine.
///
/// # Safety
/// `engine` as for `entrospect_engine_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_poll(
    engine: *mut entrospect_engine,
) -> entrospect_status {
    ffi_boundary!({
        // SAFETY: the caller's contract on `engine` is `with_engine`'s.
        unsafe { with_engine(engine, Inner::deliver) }
    })
}

/// Copy the engine's counters as one JSON object into `buf` (the `stats` object of the
/// `stats` event, plus `ffi{queued_events, dropped_events}`), following the output-buffer
/// convention: NUL written, `*out_n` = length without it, `buf == NULL && len == 0` asks
/// for the length.
///
/// Thread-safety: not concurrently with any other call on the same engine.
///
/// # Safety
/// `engine` as for `entrospect_engine_free`; `buf` is NULL or valid for writes of `len`
/// bytes; `out_n` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_engine_stats_json(
    engine: *mut entrospect_engine,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> entrospect_status {
    ffi_boundary!({
        let copy_out = |inner: &mut Inner| {
            let mut v = match serde_json::to_value(inner.engine.stats()) {
                Ok(v) => v,
                Err(e) => {
                    return fail(
                        entrospect_status::EngineError,
                        &format!("stats: cannot serialize: {e}"),
                    );
                }
            };
            if let Some(obj) = v.as_object_mut() {
                obj.insert(
                    "ffi".to_owned(),
                    serde_json::json!({
                        "queued_events": inner.pending.len(),
                        "dropped_events": inner.dropped,
                    }),
                );
            }
            let text = v.to_string();
            // SAFETY: the caller guarantees `buf`/`len` and `out_n` as `text_out` needs.
            unsafe { text_out(text.as_bytes(), buf, len, out_n, "stats json") }
        };
        // SAFETY: the caller's contract on `engine` is `with_engine`'s.
        unsafe { with_engine(engine, copy_out) }
    })
}

/// The library version (`"0.1.0"`), a static NUL-terminated string.
///
/// Thread-safety: any thread, any time.
#[unsafe(no_mangle)]
pub extern "C" fn entrospect_version() -> *const c_char {
    ffi_boundary!(c"".as_ptr(), {
        const V: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
            concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
        ) {
            Ok(v) => v,
            Err(_) => c"",
        };
        V.as_ptr()
    })
}

/// The ABI version (`ENTROSPECT_ABI_VERSION` of the library actually loaded); compare it
/// with the header's to detect a mismatched shared library.
///
/// Thread-safety: any thread, any time.
#[unsafe(no_mangle)]
pub extern "C" fn entrospect_abi_version() -> u32 {
    ffi_boundary!(ENTROSPECT_ABI_VERSION, { ENTROSPECT_ABI_VERSION })
}

#[cfg(test)]
#[allow(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    reason = "tests call the C entry points with local buffers; each call says why it is sound"
)]
mod tests {
    use super::*;
    use std::ptr::{null, null_mut};

    fn new_engine() -> *mut entrospect_engine {
        let mut e = null_mut();
        // SAFETY: NULL config, out is a local.
        assert_eq!(
            unsafe { entrospect_engine_new(null(), &mut e) },
            entrospect_status::Ok
        );
        e
    }

    struct Seen {
        types: Vec<String>,
        reject_after: usize,
    }

    unsafe extern "C" fn collect(userdata: *mut c_void, ev: *const entrospect_event) -> c_int {
        // SAFETY: the tests pass a `Seen` as userdata and the library a live event.
        let seen = unsafe { &mut *userdata.cast::<Seen>() };
        // SAFETY: the library passes a valid event for the call.
        let ev = unsafe { &*ev };
        // SAFETY: json/json_len describe the event's JSON for the call.
        let json = unsafe { std::slice::from_raw_parts(ev.json.cast::<u8>(), ev.json_len) };
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        if seen.types.len() >= seen.reject_after {
            return 1;
        }
        seen.types
            .push(v["event_type"].as_str().unwrap().to_owned());
        0
    }

    #[test]
    fn bad_config_is_invalid_config_and_writes_nothing() {
        let sentinel = std::ptr::NonNull::<entrospect_engine>::dangling().as_ptr();
        let mut e = sentinel;
        let cfg = c"this is = = not toml";
        // SAFETY: valid string and out.
        assert_eq!(
            unsafe { entrospect_engine_new(cfg.as_ptr(), &mut e) },
            entrospect_status::InvalidConfig
        );
        assert_eq!(e, sentinel);
        // SAFETY: NULL out is checked.
        assert_eq!(
            unsafe { entrospect_engine_new(null(), null_mut()) },
            entrospect_status::NullParameter
        );
    }

    #[test]
    fn rejected_event_stays_queued_and_is_offered_again() {
        let e = new_engine();
        let mut seen = Seen {
            types: vec![],
            reject_after: 0,
        };
        // SAFETY: e is live; seen outlives every call that may deliver to it.
        unsafe {
            assert_eq!(
                entrospect_engine_set_callback(e, Some(collect), (&raw mut seen).cast()),
                entrospect_status::Ok
            );
        }
        // SAFETY: e is live.
        assert_eq!(
            unsafe { entrospect_engine_finish(e) },
            entrospect_status::CallbackError
        );
        seen.reject_after = usize::MAX;
        // SAFETY: e is live.
        assert_eq!(unsafe { entrospect_engine_poll(e) }, entrospect_status::Ok);
        assert_eq!(seen.types, ["stats"]);
        // SAFETY: e is live; freed once.
        unsafe { entrospect_engine_free(e) };
    }

    #[test]
    fn panic_inside_engine_call_is_caught_and_poisons_the_engine() {
        let e = new_engine();
        // SAFETY: e is live and no call on it is running.
        let h = unsafe { handle::borrow(e) }.unwrap();
        h.inner.borrow_mut().panic_next = true;
        // SAFETY: e is live.
        assert_eq!(
            unsafe { entrospect_engine_flush(e, 1) },
            entrospect_status::Panic
        );
        // SAFETY: e is live (poisoned, not freed).
        assert_eq!(
            unsafe { entrospect_engine_finish(e) },
            entrospect_status::Panic
        );
        // SAFETY: freeing a poisoned engine is allowed, once.
        unsafe { entrospect_engine_free(e) };
    }

    #[test]
    fn null_engine_and_null_data_with_length_are_null_parameter() {
        // SAFETY: NULL handles are checked first.
        unsafe {
            assert_eq!(
                entrospect_engine_finish(null_mut()),
                entrospect_status::NullParameter
            );
            assert_eq!(
                entrospect_engine_process_packet(null_mut(), 0, 1, null(), 0),
                entrospect_status::NullParameter
            );
            entrospect_engine_free(null_mut());
        }
        let e = new_engine();
        // SAFETY: e is live; NULL data with a length is rejected before any read.
        unsafe {
            assert_eq!(
                entrospect_engine_process_packet(e, 0, 1, null(), 20),
                entrospect_status::NullParameter
            );
            assert_eq!(
                entrospect_engine_process_packet(e, 0, 1, null(), 0),
                entrospect_status::Ok
            );
            let big = vec![0u8; MAX_WIRE_LEN as usize + 1];
            assert_eq!(
                entrospect_engine_process_packet(e, 0, 1, big.as_ptr(), big.len()),
                entrospect_status::InvalidParameter
            );
            entrospect_engine_free(e);
        }
    }

    #[test]
    fn host_event_json_errors_are_told_apart() {
        let e = new_engine();
        let bad_utf8 = b"{\"host\":\"\xff\"}";
        let not_event = b"{\"host\":\"x\"}";
        let good = br#"{"timestamp":"2026-11-22T10:00:03Z","host":"ws-17","platform":"linux","event":"process_exit","pid":4242}
"#;
        // SAFETY: e is live; each buffer is valid for its length.
        unsafe {
            let f =
                |b: &[u8]| entrospect_engine_process_host_event_json(e, b.as_ptr().cast(), b.len());
            assert_eq!(f(bad_utf8), entrospect_status::InvalidUtf8);
            assert_eq!(f(not_event), entrospect_status::InvalidJson);
            assert_eq!(f(b""), entrospect_status::InvalidJson);
            assert_eq!(f(good), entrospect_status::Ok);
            let mut n = 0usize;
            assert_eq!(
                entrospect_engine_stats_json(e, null_mut(), 0, &mut n),
                entrospect_status::Ok
            );
            let mut buf = vec![0 as c_char; n + 1];
            let mut m = 0usize;
            assert_eq!(
                entrospect_engine_stats_json(e, buf.as_mut_ptr(), buf.len(), &mut m),
                entrospect_status::Ok
            );
            assert_eq!(m, n);
            let text: Vec<u8> = buf[..m].iter().map(|&c| c as u8).collect();
            let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(v["ffi"]["queued_events"], 0);
            entrospect_engine_free(e);
        }
    }

    #[test]
    fn version_strings_are_static_and_match_the_crate() {
        // SAFETY: entrospect_version returns a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(entrospect_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        assert_eq!(entrospect_abi_version(), ENTROSPECT_ABI_VERSION);
    }
}

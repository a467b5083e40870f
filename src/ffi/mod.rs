//! The C ABI over [`Engine`](crate::Engine), for IDS and EDR products written in C or C++.
//!
//! This module owns the `extern "C"` entry points (all named `entrospect_*`), the C mirror
//! types they take and give, and the conversions between them and the Rust API. It holds no
//! engine logic: every function checks its arguments, converts them, calls the Rust API
//! and converts the result back. `include/entrospect.h` is generated from this module by
//! cbindgen and checked against it by `tests/c_header.rs`.
//!
//! # Conventions
//!
//! - **Status codes.** Every fallible function returns [`entrospect_status`]
//!   (`ENTROSPECT_STATUS_OK` is 0). The numbers are explicit and never reused. After a
//!   non-OK status, [`entrospect_last_error`] copies a lowercase message saying what was
//!   wrong and where; the message belongs to the calling thread and stays until the next
//!   failure on that thread (a successful call does not clear it).
//! - **Out-parameters** come last and are written only when the call returns
//!   `ENTROSPECT_STATUS_OK`. A buffer pointer is followed by its length. Functions that copy
//!   text into a caller's buffer (`entrospect_engine_stats_json`, `entrospect_last_error`)
//!   write a terminating NUL and set `*out_n` to the text's length without it; with
//!   `buf == NULL` and `len == 0` they only report the length needed (excluding the NUL),
//!   and with a buffer shorter than that plus one they return
//!   `ENTROSPECT_STATUS_BUFFER_TOO_SMALL` and write nothing.
//! - **NULL and lengths.** A NULL where a pointer is required returns
//!   `ENTROSPECT_STATUS_NULL_PARAMETER`; a length over its cap or an unknown enum number
//!   returns `ENTROSPECT_STATUS_INVALID_PARAMETER`. A `(NULL, 0)` byte buffer is an empty
//!   one. Strings are NUL-terminated UTF-8 (at most 64 KiB, or 1 MiB for a configuration),
//!   otherwise `ENTROSPECT_STATUS_INVALID_UTF8` / `_INVALID_PARAMETER`.
//! - **Panics never cross the boundary.** Every entry point runs inside one
//!   `ffi_boundary!` (`catch_unwind`): a Rust panic becomes `ENTROSPECT_STATUS_PANIC` (or a
//!   documented default for functions without a status). An engine a panic escaped from is
//!   *poisoned*: its state may be half-updated, so every later call on it returns
//!   `ENTROSPECT_STATUS_PANIC`; only `entrospect_engine_free` still works. The library is
//!   never built with `panic = "abort"`.
//! - **Handles** are opaque (`typedef struct entrospect_engine entrospect_engine;`),
//!   created by `entrospect_engine_new` and released by `entrospect_engine_free`;
//!   `entrospect_engine_free(NULL)` is a no-op. All pointer ↔ `Box` conversion is in
//!   `ffi/handle.rs`. Each handle carries a magic tag, checked on every call and
//!   overwritten when the handle is freed, so that a double free or a call on a freed
//!   engine usually returns `ENTROSPECT_STATUS_INVALID_HANDLE` instead of corrupting
//!   memory. **Limits of that check:** it reads memory the allocator may have reused; if
//!   the freed block was handed to a new engine, the stale pointer *is* that new engine;
//!   if it was reused for other data that happens to hold the tag, the check passes. It is
//!   a debugging aid against common mistakes, not a guarantee: a freed handle must not be
//!   used (memory checkers such as valgrind report the read as invalid).
//! - **Callbacks** take `void *userdata` first. Everything handed to a callback
//!   (the `entrospect_event` and every pointer in it) is borrowed for the duration of the
//!   call only: copy what you keep. A callback must not unwind (C++ exceptions, Rust
//!   panics): the callback type is `extern "C"`, so an unwind out of it aborts the process.
//!   A callback may not call functions on the engine that is delivering to it (they return
//!   `ENTROSPECT_STATUS_REENTRANT`; `entrospect_engine_free` on it is ignored); it may use
//!   other engines.
//! - **Structs the caller fills in** start with `size_t struct_size`, which the caller
//!   sets to `sizeof` the struct as its header declares it. Fields are only ever appended,
//!   so a library newer than the header reads only the fields the caller knows; a
//!   `struct_size` smaller than the first published version is
//!   `ENTROSPECT_STATUS_INVALID_PARAMETER`. Structs the library hands out
//!   (`entrospect_event`) start with `struct_size` too: read a field only when
//!   `struct_size` covers it. Enum-valued fields of caller-filled structs are `uint32_t`
//!   (a C enum may hold any number), checked on entry.
//! - **Threads.** An engine is used by one thread at a time: calls on one engine must not
//!   overlap (serialize them with your own lock when several threads share one). Distinct
//!   engines are independent and may run on distinct threads at once. An engine may move
//!   between threads between calls. `entrospect_version`, `entrospect_abi_version` and
//!   `entrospect_last_error` may be called from any thread at any time.
//! - **Verdicts.** `entrospect_engine_set_verdict_callback` sets a second, optional
//!   callback that receives inline flow verdicts (`entrospect_verdict`: allow, alert,
//!   block suggested). Verdicts are not queued: each is handed to the callback from inside
//!   the feeding call whose packet decided it, on the calling thread, and is lost when no
//!   verdict callback is set. The verdict callback returns nothing and cannot stop
//!   delivery.
//! - **Events.** After each feeding call (`_process_*`, `_flush`, `_finish`, `_poll`) the
//!   engine's new events are appended to the handle's queue (at most 65 536 events; beyond
//!   that the oldest are dropped and counted in the stats JSON under `ffi.dropped_events`)
//!   and the queue is delivered to the callback in order. When the callback returns
//!   non-zero, delivery stops, the call returns `ENTROSPECT_STATUS_CALLBACK_ERROR`, and the
//!   rejected event stays at the head of the queue together with every later one: the next
//!   feeding call (or `entrospect_engine_poll`) offers it again first. Without a callback
//!   events stay queued until one is set and a feeding call is made.
//! - **Time** is an input: timestamps are nanoseconds since the Unix epoch, as the packets
//!   and host events say; the library never reads the clock.

#![allow(
    unsafe_code,
    reason = "the C ABI: raw pointers and #[unsafe(no_mangle)] symbols"
)]
#![allow(
    non_camel_case_types,
    reason = "C type names follow the header's entrospect_<object> spelling"
)]

#[macro_use]
mod boundary;
mod engine;
mod event;
mod handle;
mod host;
mod status;
mod verdict;

pub use boundary::entrospect_last_error;
pub use engine::{
    ENTROSPECT_ABI_VERSION, entrospect_abi_version, entrospect_engine, entrospect_engine_finish,
    entrospect_engine_flush, entrospect_engine_free, entrospect_engine_new, entrospect_engine_poll,
    entrospect_engine_process_captured_packet, entrospect_engine_process_host_event,
    entrospect_engine_process_host_event_json, entrospect_engine_process_packet,
    entrospect_engine_set_callback, entrospect_engine_set_verdict_callback,
    entrospect_engine_stats_json, entrospect_event_callback, entrospect_version,
};
pub use event::{
    entrospect_addr_family, entrospect_event, entrospect_event_type, entrospect_severity,
};
pub use host::{
    entrospect_conn_direction, entrospect_host_event, entrospect_host_event_kind,
    entrospect_host_proto, entrospect_platform,
};
pub use status::entrospect_status;
pub use verdict::{entrospect_verdict, entrospect_verdict_callback, entrospect_verdict_kind};

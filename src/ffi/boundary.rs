//! The panic boundary, the per-thread last error, and the checked conversions of C
//! arguments (byte buffers, strings, output buffers).

use super::status::entrospect_status;
use std::any::Any;
use std::cell::RefCell;
use std::ffi::c_char;

/// Longest message kept by [`set_last_error`], in bytes.
const MAX_ERROR_LEN: usize = 4096;

/// Longest NUL-terminated string read from C by [`cstr_in`], by default.
pub(crate) const MAX_CSTR_LEN: usize = 64 * 1024;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Run `$body` (a block) so that no panic leaves it: a panic is recorded as this thread's
/// last error and the macro evaluates to `$default` (`ENTROSPECT_STATUS_PANIC` when not
/// given). Every `extern "C"` entry point wraps its whole body in one of these.
macro_rules! ffi_boundary {
    ($default:expr, $body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(payload) => {
                $crate::ffi::boundary::record_panic(payload.as_ref());
                $default
            }
        }
    };
    ($body:block) => {
        ffi_boundary!($crate::ffi::entrospect_status::Panic, $body)
    };
}

/// Record a caught panic as this thread's last error.
pub(crate) fn record_panic(payload: &(dyn Any + Send)) {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown payload");
    set_last_error(&format!(
        "panic inside entrospect (caught at the c boundary): {what}"
    ));
}

/// Replace this thread's last error message (capped at 4 KiB on a char boundary).
pub(crate) fn set_last_error(msg: &str) {
    let mut end = msg.len().min(MAX_ERROR_LEN);
    while !msg.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let kept = msg.get(..end).unwrap_or_default();
    // A thread being torn down has no storage left; the message is then lost, not a panic.
    let _ = LAST_ERROR.try_with(|e| {
        if let Ok(mut e) = e.try_borrow_mut() {
            e.clear();
            e.push_str(kept);
        }
    });
}

/// Record `msg` for `status` and return the status: `return fail(S::NullParameter, "...")`.
pub(crate) fn fail(status: entrospect_status, msg: &str) -> entrospect_status {
    set_last_error(msg);
    status
}

/// Copy this thread's last error message into `buf`.
///
/// `buf`/`len` follow the output-buffer convention of the module docs: the message and a
/// NUL are written, `*out_n` is the message length; `buf == NULL && len == 0` reports the
/// length only. With no error recorded on this thread, the message is empty.
///
/// Thread-safety: any thread, any time; each thread sees its own last error.
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes; `out_n` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrospect_last_error(
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> entrospect_status {
    ffi_boundary!({
        let msg = LAST_ERROR
            .try_with(|e| e.try_borrow().map(|s| s.clone()).unwrap_or_default())
            .unwrap_or_default();
        // SAFETY: the caller's contract on `buf`, `len` and `out_n` is the one `text_out`
        // requires; its NULL and length checks do the rest.
        unsafe { text_out(msg.as_bytes(), buf, len, out_n, "last error") }
    })
}

/// A byte buffer from C: `(NULL, 0)` is empty.
///
/// # Errors
/// `NullParameter` for NULL with a non-zero length, `InvalidParameter` over `cap`.
///
/// # Safety
/// When `ptr` is not NULL it is valid for reads of `len` bytes, which nobody writes during
/// the returned lifetime.
pub(crate) unsafe fn bytes_in<'a>(
    ptr: *const u8,
    len: usize,
    cap: usize,
    what: &str,
) -> Result<&'a [u8], entrospect_status> {
    if len > cap {
        return Err(fail(
            entrospect_status::InvalidParameter,
            &format!("{what}: length {len} is over the cap of {cap} bytes"),
        ));
    }
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(fail(
            entrospect_status::NullParameter,
            &format!("{what}: pointer is null but length is {len}"),
        ));
    }
    // SAFETY: `ptr` is not NULL (checked above), `len` is at most `cap`, which every caller
    // keeps below isize::MAX, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A NUL-terminated UTF-8 string from C, at most `cap` bytes before the NUL; `Ok(None)` for
/// NULL. The scan stops at `cap`, so a missing NUL is an error, not an overrun of the cap.
///
/// # Errors
/// `InvalidParameter` when no NUL comes within `cap` bytes, `InvalidUtf8` for bad UTF-8.
///
/// # Safety
/// When `ptr` is not NULL it points at a NUL-terminated string (or at least `cap` readable
/// bytes) that nobody writes during the returned lifetime.
pub(crate) unsafe fn cstr_in<'a>(
    ptr: *const c_char,
    cap: usize,
    what: &str,
) -> Result<Option<&'a str>, entrospect_status> {
    if ptr.is_null() {
        return Ok(None);
    }
    let bytes = ptr.cast::<u8>();
    let mut n = 0usize;
    loop {
        if n > cap {
            return Err(fail(
                entrospect_status::InvalidParameter,
                &format!("{what}: no terminating nul within {cap} bytes"),
            ));
        }
        let at = bytes.wrapping_add(n);
        // SAFETY: bytes 0..n were not NUL, so the string continues at least to byte n,
        // which the caller guarantees is readable (n <= cap bounds the scan).
        let b = unsafe { at.read() };
        if b == 0 {
            break;
        }
        n += 1;
    }
    // SAFETY: the loop above read bytes 0..n from `ptr`, so they are readable.
    let raw = unsafe { std::slice::from_raw_parts(bytes, n) };
    std::str::from_utf8(raw).map(Some).map_err(|e| {
        fail(
            entrospect_status::InvalidUtf8,
            &format!("{what}: invalid utf-8 at byte {}", e.valid_up_to()),
        )
    })
}

/// Copy `text` and a NUL into the caller's `buf` of `len` bytes and store the text length
/// in `*out_n` (see the output-buffer convention in the module docs).
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes; `out_n` is NULL or valid for a write.
pub(crate) unsafe fn text_out(
    text: &[u8],
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
    what: &str,
) -> entrospect_status {
    if out_n.is_null() {
        return fail(
            entrospect_status::NullParameter,
            &format!("{what}: out_n is null"),
        );
    }
    if buf.is_null() {
        if len != 0 {
            return fail(
                entrospect_status::NullParameter,
                &format!("{what}: buf is null but len is {len}"),
            );
        }
        // SAFETY: `out_n` is not NULL (checked above) and the caller guarantees it writable.
        unsafe { out_n.write(text.len()) };
        return entrospect_status::Ok;
    }
    let needed = text.len().saturating_add(1);
    if len < needed {
        return fail(
            entrospect_status::BufferTooSmall,
            &format!("{what}: buffer of {len} bytes is too small, {needed} needed"),
        );
    }
    let dst = buf.cast::<u8>();
    // SAFETY: `len >= text.len() + 1` (checked above) and the caller guarantees `len`
    // writable bytes at `buf`, which cannot overlap `text` (library memory).
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), dst, text.len()) };
    let end = dst.wrapping_add(text.len());
    // SAFETY: `text.len() < len` (checked above), so the NUL lands inside the buffer.
    unsafe { end.write(0) };
    // SAFETY: `out_n` is not NULL (checked above) and the caller guarantees it writable.
    unsafe { out_n.write(text.len()) };
    entrospect_status::Ok
}

#[cfg(test)]
#[allow(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    reason = "tests call the C entry points with local buffers; each call says why it is sound"
)]
mod tests {
    use super::*;
    use crate::ffi::entrospect_status as S;

    /// An entry point whose body panics on purpose, as a bug inside the library would.
    extern "C" fn panicking_entry_point() -> S {
        ffi_boundary!({
            let v: Vec<u8> = Vec::new();
            if v.is_empty() {
                panic!("deliberate test panic");
            }
            S::Ok
        })
    }

    fn last_error() -> String {
        let mut buf = [0 as c_char; 512];
        let mut n = 0usize;
        // SAFETY: buf is 512 writable bytes and n a local.
        let st = unsafe { entrospect_last_error(buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(st, S::Ok);
        let bytes: Vec<u8> = buf[..n].iter().map(|&c| c as u8).collect();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn panic_inside_entry_point_becomes_panic_status_and_message() {
        assert_eq!(panicking_entry_point(), S::Panic);
        let msg = last_error();
        assert!(msg.contains("deliberate test panic"), "{msg}");
    }

    #[test]
    fn text_out_size_query_then_exact_buffer() {
        let mut n = 99usize;
        // SAFETY: NULL buffer with length 0 is the size query; n is a local.
        let st = unsafe { text_out(b"hello", std::ptr::null_mut(), 0, &mut n, "t") };
        assert_eq!((st, n), (S::Ok, 5));
        let mut small = [1 as c_char; 5];
        let mut m = 77usize;
        // SAFETY: small is 5 writable bytes.
        let st = unsafe { text_out(b"hello", small.as_mut_ptr(), 5, &mut m, "t") };
        assert_eq!(
            (st, m),
            (S::BufferTooSmall, 77),
            "out_n untouched on failure"
        );
        assert!(small.iter().all(|&c| c == 1), "buffer untouched on failure");
        let mut ok = [1 as c_char; 6];
        // SAFETY: ok is 6 writable bytes.
        let st = unsafe { text_out(b"hello", ok.as_mut_ptr(), 6, &mut m, "t") };
        assert_eq!((st, m, ok[5]), (S::Ok, 5, 0));
    }

    #[test]
    fn cstr_without_nul_within_cap_is_rejected() {
        let bytes = *b"abcdefgh";
        // SAFETY: 8 readable bytes and the cap (4) stops the scan inside them.
        let r = unsafe { cstr_in(bytes.as_ptr().cast(), 4, "s") };
        assert_eq!(r, Err(S::InvalidParameter));
        let bad = [0xffu8, 0];
        // SAFETY: NUL-terminated.
        let r = unsafe { cstr_in(bad.as_ptr().cast(), 4, "s") };
        assert_eq!(r, Err(S::InvalidUtf8));
    }

    #[test]
    fn null_bytes_with_length_is_null_parameter_and_empty_is_fine() {
        // SAFETY: NULL is checked before any read.
        let r = unsafe { bytes_in(std::ptr::null(), 3, 10, "d") };
        assert_eq!(r, Err(S::NullParameter));
        // SAFETY: a zero length reads nothing.
        let r = unsafe { bytes_in(std::ptr::null(), 0, 10, "d") };
        assert_eq!(r, Ok(&[][..]));
        // SAFETY: over the cap is rejected before any read.
        let r = unsafe { bytes_in(std::ptr::null(), 11, 10, "d") };
        assert_eq!(r, Err(S::InvalidParameter));
    }
}

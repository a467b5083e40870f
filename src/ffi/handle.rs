//! All conversion between raw handle pointers and `Box`es, and the magic-tag check.
//!
//! The whole soundness argument for handles is here: a handle pointer is created only by
//! [`into_raw`] from a `Box`, read only through [`borrow`] (which checks the magic tag and
//! hands out a shared reference; mutation goes through the handle's `RefCell`), and turned
//! back into a `Box` only by [`free`], which refuses while a call on the handle is running
//! (a callback freeing its own engine) and overwrites the tag before the memory goes back
//! to the allocator. The tag check on a freed pointer is best effort (see the module docs
//! of `ffi`).

use super::boundary::fail;
use super::engine::entrospect_engine;
use super::status::entrospect_status;

/// The tag of a live engine handle ("entrospe" in ASCII).
pub(crate) const ENGINE_MAGIC: u64 = 0x6570_736f_7274_6e65;
/// What a freed handle's tag is overwritten with.
const FREED_MAGIC: u64 = 0xdead_f4ee_dead_f4ee;

/// Give a new engine handle to C.
pub(crate) fn into_raw(handle: Box<entrospect_engine>) -> *mut entrospect_engine {
    Box::into_raw(handle)
}

/// Borrow the engine behind a C handle.
///
/// # Errors
/// `NullParameter` for NULL, `InvalidHandle` when the magic tag is wrong.
///
/// # Safety
/// `ptr` is NULL or was returned by `entrospect_engine_new` and not yet freed. (A freed
/// pointer is usually caught by the tag check, which is then a read of freed memory; see
/// the module docs for the limits.) No other thread uses the engine during the borrow.
pub(crate) unsafe fn borrow<'a>(
    ptr: *const entrospect_engine,
) -> Result<&'a entrospect_engine, entrospect_status> {
    if ptr.is_null() {
        return Err(fail(
            entrospect_status::NullParameter,
            "engine: handle is null",
        ));
    }
    // SAFETY: `ptr` is not NULL (checked above) and, by the caller's contract, came from
    // `into_raw` on a Box, so the field's address is in bounds (no reference is made).
    let tag = unsafe { &raw const (*ptr).magic };
    // SAFETY: `tag` is aligned and inside the handle's allocation (see above); volatile,
    // since a freed handle's tag was written just before deallocation.
    let magic = unsafe { tag.read_volatile() };
    if magic != ENGINE_MAGIC {
        return Err(fail(
            entrospect_status::InvalidHandle,
            "engine: handle is not a live engine (freed, or not created by entrospect_engine_new)",
        ));
    }
    // SAFETY: the tag matches, so by the caller's contract this is a live handle from
    // `into_raw`; only shared references are ever made from it.
    Ok(unsafe { &*ptr })
}

/// Release the engine behind a C handle. NULL is a no-op.
///
/// # Errors
/// `InvalidHandle` when the tag is wrong (double free), `Reentrant` when a call on this
/// engine is still running (a callback freeing its own engine); nothing is freed then.
///
/// # Safety
/// As for [`borrow`]; after `Ok`, the pointer is dangling.
pub(crate) unsafe fn free(ptr: *mut entrospect_engine) -> Result<(), entrospect_status> {
    if ptr.is_null() {
        return Ok(());
    }
    // SAFETY: the caller's contract is the one `borrow` needs.
    let busy = unsafe { borrow(ptr) }?.is_busy();
    if busy {
        return Err(fail(
            entrospect_status::Reentrant,
            "engine: free called while a call on the same engine is running (from its callback); not freed",
        ));
    }
    // SAFETY: the tag matched, so `ptr` came from `Box::into_raw` in `into_raw` and was not
    // freed (free overwrites the tag); no call on it is running (checked above), so no
    // reference into it is alive.
    let mut boxed = unsafe { Box::from_raw(ptr) };
    let tag: *mut u64 = &mut boxed.magic;
    // SAFETY: `tag` points at a field of the Box we own; the volatile write keeps the
    // compiler from dropping this store before deallocation.
    unsafe { tag.write_volatile(FREED_MAGIC) };
    drop(boxed);
    Ok(())
}

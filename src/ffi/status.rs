//! `entrospect_status`: what every fallible C entry point returns.

/// The outcome of a C ABI call.
///
/// The numbers are part of the ABI: they are explicit, never renumbered and never reused.
/// A retired status stays here as a comment with its number. After any status other than
/// `ENTROSPECT_STATUS_OK`, `entrospect_last_error` returns a message saying what and where.
#[allow(non_camel_case_types, reason = "C type name, as the header spells it")]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum entrospect_status {
    /// Success: out-parameters were written.
    Ok = 0,
    /// A pointer parameter that must not be NULL was NULL.
    NullParameter = 1,
    /// A parameter had an impossible value (a length over its cap, an unknown enum
    /// number, a `struct_size` smaller than the first version of the struct).
    InvalidParameter = 2,
    /// The configuration TOML did not parse or failed validation.
    InvalidConfig = 3,
    /// Rust code panicked inside the call; the panic was caught at the boundary. The
    /// engine involved (if any) is poisoned: every later call on it returns this status.
    Panic = 4,
    /// The event callback returned non-zero; delivery stopped (see
    /// `entrospect_engine_set_callback` for what stays queued).
    CallbackError = 5,
    /// The output buffer was too small; nothing was written.
    BufferTooSmall = 6,
    /// A string was not valid UTF-8.
    InvalidUtf8 = 7,
    /// A JSON text did not parse as what the function expects.
    InvalidJson = 8,
    /// The handle is not a live engine: freed, never created, or of another type (a
    /// best-effort check of the handle's magic tag; see the module docs for its limits).
    InvalidHandle = 9,
    /// The engine could not be created for a reason other than its configuration.
    EngineError = 10,
    /// The call was made on an engine from inside that engine's own callback.
    Reentrant = 11,
}

impl entrospect_status {
    /// The stable lowercase name of the status (the C enumerator without its prefix).
    pub const fn as_str(self) -> &'static str {
        match self {
            entrospect_status::Ok => "ok",
            entrospect_status::NullParameter => "null_parameter",
            entrospect_status::InvalidParameter => "invalid_parameter",
            entrospect_status::InvalidConfig => "invalid_config",
            entrospect_status::Panic => "panic",
            entrospect_status::CallbackError => "callback_error",
            entrospect_status::BufferTooSmall => "buffer_too_small",
            entrospect_status::InvalidUtf8 => "invalid_utf8",
            entrospect_status::InvalidJson => "invalid_json",
            entrospect_status::InvalidHandle => "invalid_handle",
            entrospect_status::EngineError => "engine_error",
            entrospect_status::Reentrant => "reentrant",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::entrospect_status as S;

    #[test]
    fn status_numbers_are_the_published_ones() {
        let published = [
            (S::Ok, 0),
            (S::NullParameter, 1),
            (S::InvalidParameter, 2),
            (S::InvalidConfig, 3),
            (S::Panic, 4),
            (S::CallbackError, 5),
            (S::BufferTooSmall, 6),
            (S::InvalidUtf8, 7),
            (S::InvalidJson, 8),
            (S::InvalidHandle, 9),
            (S::EngineError, 10),
            (S::Reentrant, 11),
        ];
        let mut names = std::collections::HashSet::new();
        for (s, n) in published {
            assert_eq!(s as u32, n, "{}", s.as_str());
            assert!(names.insert(s.as_str()));
        }
    }
}

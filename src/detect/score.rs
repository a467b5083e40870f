//! Shared scoring and matching helpers of the correlation analytics.
//!
//! Scores are in `0.0..=1.0` and combine by noisy-or (`1 - Π(1 - s)`), so independent
//! evidence raises a score without ever passing 1. Image and library allowlists are
//! case-insensitive globs (`*` matches any run of characters) over the file name, or
//! over the whole path when the pattern holds a `/` or `\`.

/// Noisy-or of scores, each clamped to `0..=1`; NaN counts as 0.
pub(crate) fn noisy_or(scores: &[f32]) -> f32 {
    let keep = scores.iter().fold(1.0f32, |k, s| {
        let s = if s.is_nan() { 0.0 } else { s.clamp(0.0, 1.0) };
        k * (1.0 - s)
    });
    (1.0 - keep).clamp(0.0, 1.0)
}

/// The last component of a Windows or Unix path.
pub(crate) fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Case-insensitive glob match of `pattern` against `text` (`*` only).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    // Iterative matcher with one backtrack point (linear in practice, no recursion).
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi = pi.saturating_add(1);
            }
            Some(c) if Some(c) == t.get(ti) => {
                pi = pi.saturating_add(1);
                ti = ti.saturating_add(1);
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp.saturating_add(1);
                    ti = st.saturating_add(1);
                    star = Some((sp, ti));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// Whether `path` matches any pattern of `list` (file name, or whole path for patterns
/// with a separator). Returns the pattern that matched.
pub(crate) fn matches_any<'a>(list: &'a [String], path: &str) -> Option<&'a str> {
    let name = basename(path);
    list.iter()
        .find(|p| {
            if p.contains(['/', '\\']) {
                glob_match(p, path)
            } else {
                glob_match(p, name)
            }
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_versioned_sonames_and_rejects_others() {
        assert!(glob_match("libcrypto.so*", "libcrypto.so.3"));
        assert!(glob_match("*.EXE", "chrome.exe"));
        assert!(glob_match("/system/*", "/System/Library/x"));
        assert!(!glob_match("libssl.so*", "libcrypto.so.3"));
        assert!(!glob_match("curl", "curl2"));
    }

    #[test]
    fn allowlist_matches_file_name_of_windows_path() {
        let list = vec!["chrome.exe".to_owned()];
        assert_eq!(
            matches_any(
                &list,
                r"C:\Program Files\Google\Chrome\Application\chrome.exe"
            ),
            Some("chrome.exe")
        );
        assert_eq!(
            matches_any(&list, r"C:\Windows\System32\rundll32.exe"),
            None
        );
    }

    #[test]
    fn noisy_or_never_exceeds_one_and_grows_with_evidence() {
        let a = noisy_or(&[0.5]);
        let b = noisy_or(&[0.5, 0.5]);
        assert!(b > a && b <= 1.0);
        assert_eq!(noisy_or(&[f32::NAN]), 0.0);
    }
}

//! The crypto-library table: which loaded modules are cryptographic libraries, what kind
//! of cryptography they provide, and how much a load of each says.
//!
//! A module is matched **case-insensitively on its file name** (the part after the last
//! `/` or `\`), so `C:\Windows\System32\RSAENH.DLL`, `rsaenh.dll` and a versioned soname
//! such as `/usr/lib/x86_64-linux-gnu/libssl.so.1.1` all match their rule. Rules whose
//! pattern ends in `.framework` (macOS bundles) match any path component instead, since
//! the loaded file of `Security.framework` is `.../Security.framework/Versions/A/Security`.
//!
//! Patterns are globs where `*` matches any run of characters (`libcrypto.so*`,
//! `libmbedcrypto*`); everything else matches literally.
//!
//! # Weights
//!
//! The [`EvidenceWeight`] of a rule says how unusual a load of that library is *in
//! itself*; whether the loading image normally does cryptography is the analytic's call
//! (`allowed_crypto_processes`, `trusted_crypto_libs`). The built-in weights:
//!
//! - `bcryptprimitives.dll`: **very weak**. Nearly every modern Windows process loads it
//!   (Rust std, Go and BoringSSL get their randomness through `ProcessPrng`).
//!   `libcommonCrypto.dylib` and `libcorecrypto.dylib` are re-exported by macOS's
//!   `libSystem` and so are mapped into every process: very weak too.
//! - `bcrypt.dll`, `cryptsp.dll`, `Security.framework`, `libboringssl.dylib`: **weak**
//!   (loaded by much of the OS on behalf of the process).
//! - Linux/Unix general-purpose libraries (`libcrypto`, `libssl`, `libgnutls`, ...):
//!   **medium**: any OpenSSL-linked tool maps them, an unexpected interpreter or shell
//!   mapping them is what AN0401 looks for.
//! - `rsaenh.dll`, `dssenh.dll`, `schannel.dll`, `ncryptsslp.dll`, `crypt32.dll`,
//!   `ncrypt.dll`, `aes.dll`, `libsodium`: **strong** in an image that normally lacks them.
//!
//! Users extend the table with [`CryptoLibConfig::extra`]; extra rules are tried before
//! the built-in ones, so they can also re-weight a built-in library.
//!
//! # Bounds
//!
//! Names longer than [`MAX_NAME_LEN`] bytes are never matched (no crypto library has such
//! a name), which keeps matching cost bounded on hostile input.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Longest module file name (in bytes) the table looks at.
pub const MAX_NAME_LEN: usize = 512;

/// Longest user-supplied pattern (in bytes); longer ones are ignored by [`CryptoLibTable::new`].
pub const MAX_PATTERN_LEN: usize = 256;

/// Most user-supplied rules kept by [`CryptoLibTable::new`].
pub const MAX_EXTRA_RULES: usize = 1024;

/// What kind of cryptography a library provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CryptoClass {
    /// Symmetric ciphers (AES, RC4, ChaCha20 ...).
    Symmetric,
    /// Asymmetric cryptography, key exchange, certificates.
    Asymmetric,
    /// A TLS/SSL implementation.
    Tls,
    /// Random-number generation.
    Random,
}

impl CryptoClass {
    /// All classes, in bit order.
    pub const ALL: [CryptoClass; 4] = [
        CryptoClass::Symmetric,
        CryptoClass::Asymmetric,
        CryptoClass::Tls,
        CryptoClass::Random,
    ];

    /// The stable name (`symmetric`, `asymmetric`, `tls`, `random`).
    pub const fn as_str(self) -> &'static str {
        match self {
            CryptoClass::Symmetric => "symmetric",
            CryptoClass::Asymmetric => "asymmetric",
            CryptoClass::Tls => "tls",
            CryptoClass::Random => "random",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            CryptoClass::Symmetric => 1,
            CryptoClass::Asymmetric => 2,
            CryptoClass::Tls => 4,
            CryptoClass::Random => 8,
        }
    }
}

/// A set of [`CryptoClass`]es (a module can provide several). Serialized as a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "Vec<CryptoClass>", into = "Vec<CryptoClass>")]
pub struct CryptoClassSet(u8);

impl CryptoClassSet {
    /// The empty set.
    pub const EMPTY: CryptoClassSet = CryptoClassSet(0);

    /// A set of the given classes.
    pub const fn of(classes: &[CryptoClass]) -> CryptoClassSet {
        let mut bits = 0;
        let mut i = 0;
        while i < classes.len() {
            bits |= classes[i].bit();
            i += 1;
        }
        CryptoClassSet(bits)
    }

    /// Whether `class` is in the set.
    pub const fn contains(self, class: CryptoClass) -> bool {
        self.0 & class.bit() != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of two sets.
    pub const fn union(self, other: CryptoClassSet) -> CryptoClassSet {
        CryptoClassSet(self.0 | other.0)
    }

    /// The classes in the set, in [`CryptoClass::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = CryptoClass> {
        CryptoClass::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl From<Vec<CryptoClass>> for CryptoClassSet {
    fn from(v: Vec<CryptoClass>) -> Self {
        CryptoClassSet::of(&v)
    }
}

impl From<CryptoClassSet> for Vec<CryptoClass> {
    fn from(s: CryptoClassSet) -> Self {
        s.iter().collect()
    }
}

/// How strong a load of a library is as evidence of deliberate cryptography.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceWeight {
    /// Loaded by nearly every process of the platform.
    VeryWeak,
    /// Loaded by much of the OS on behalf of many processes.
    Weak,
    /// A general-purpose library that many, but not most, programs load.
    Medium,
    /// Unusual unless the image is known to do cryptography.
    Strong,
}

impl EvidenceWeight {
    /// The stable name (`very_weak`, `weak`, `medium`, `strong`).
    pub const fn as_str(self) -> &'static str {
        match self {
            EvidenceWeight::VeryWeak => "very_weak",
            EvidenceWeight::Weak => "weak",
            EvidenceWeight::Medium => "medium",
            EvidenceWeight::Strong => "strong",
        }
    }

    /// A score in `0.0..=1.0` for combining evidence (0.05, 0.2, 0.5, 0.9).
    pub const fn score(self) -> f32 {
        match self {
            EvidenceWeight::VeryWeak => 0.05,
            EvidenceWeight::Weak => 0.2,
            EvidenceWeight::Medium => 0.5,
            EvidenceWeight::Strong => 0.9,
        }
    }
}

/// One user rule: a file-name glob, the classes it provides and its weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoLibRule {
    /// Case-insensitive glob on the module file name (`*` = any run of characters);
    /// a pattern ending in `.framework` matches any path component.
    pub pattern: String,
    /// What the library provides.
    pub classes: CryptoClassSet,
    /// How strong a load is as evidence.
    pub weight: EvidenceWeight,
}

/// User extensions of the crypto-library table (config key `crypto_libs`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CryptoLibConfig {
    /// Extra rules, tried before the built-in ones (default: none).
    pub extra: Vec<CryptoLibRule>,
}

/// The classification of one module.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct CryptoLib {
    /// The rule's pattern, lowercase (e.g. `libcrypto.so*`): a stable library name.
    pub name: Cow<'static, str>,
    /// What the library provides.
    pub classes: CryptoClassSet,
    /// How strong a load is as evidence.
    pub weight: EvidenceWeight,
}

struct Builtin {
    pattern: &'static str,
    classes: CryptoClassSet,
    weight: EvidenceWeight,
}

const SYM: CryptoClass = CryptoClass::Symmetric;
const ASYM: CryptoClass = CryptoClass::Asymmetric;
const TLS: CryptoClass = CryptoClass::Tls;
const RNG: CryptoClass = CryptoClass::Random;

const fn rule(pattern: &'static str, classes: &[CryptoClass], weight: EvidenceWeight) -> Builtin {
    Builtin {
        pattern,
        classes: CryptoClassSet::of(classes),
        weight,
    }
}

use EvidenceWeight::{Medium, Strong, VeryWeak, Weak};

/// The built-in rules (lowercase patterns).
const BUILTIN: &[Builtin] = &[
    // Windows CNG / CryptoAPI / SChannel.
    rule("bcryptprimitives.dll", &[SYM, ASYM, RNG], VeryWeak),
    rule("bcrypt.dll", &[SYM, ASYM, RNG], Weak),
    rule("cryptsp.dll", &[SYM, ASYM], Weak),
    rule("rsaenh.dll", &[SYM, ASYM], Strong),
    rule("dssenh.dll", &[SYM, ASYM], Strong),
    rule("schannel.dll", &[TLS], Strong),
    rule("ncryptsslp.dll", &[TLS], Strong),
    rule("crypt32.dll", &[ASYM], Strong),
    rule("ncrypt.dll", &[ASYM], Strong),
    rule("aes.dll", &[SYM], Strong),
    // OpenSSL built for Windows (libcrypto-1_1-x64.dll, libssl-3-x64.dll, ...).
    rule("libcrypto-*.dll", &[SYM, ASYM, RNG], Medium),
    rule("libssl-*.dll", &[TLS], Medium),
    // Linux / BSD shared objects (versioned sonames).
    rule("libcrypto.so*", &[SYM, ASYM, RNG], Medium),
    rule("libssl.so*", &[TLS], Medium),
    rule("libgcrypt.so*", &[SYM, ASYM, RNG], Medium),
    rule("libsodium.so*", &[SYM, ASYM, RNG], Strong),
    rule("libnettle.so*", &[SYM], Medium),
    rule("libhogweed.so*", &[ASYM], Medium),
    rule("libgnutls.so*", &[TLS], Medium),
    rule("libmbedcrypto*", &[SYM, ASYM, RNG], Medium),
    rule("libmbedtls*", &[TLS], Medium),
    rule("libwolfssl*", &[TLS, SYM, ASYM], Medium),
    rule("libnss3.so*", &[TLS], Medium),
    rule("libsoftokn3.so*", &[SYM, ASYM], Medium),
    // macOS.
    rule("security.framework", &[SYM, ASYM, TLS], Weak),
    rule("libcommoncrypto.dylib", &[SYM, RNG], VeryWeak),
    rule("libcorecrypto.dylib", &[SYM, ASYM, RNG], VeryWeak),
    rule("libboringssl.dylib", &[TLS], Weak),
    rule("libcrypto*.dylib", &[SYM, ASYM, RNG], Medium),
    rule("libssl*.dylib", &[TLS], Medium),
    rule("libsodium*.dylib", &[SYM, ASYM, RNG], Strong),
];

struct ExtraRule {
    pattern: String,
    classes: CryptoClassSet,
    weight: EvidenceWeight,
}

/// The crypto-library table: built-in rules plus the user's.
pub struct CryptoLibTable {
    extra: Vec<ExtraRule>,
}

impl Default for CryptoLibTable {
    fn default() -> Self {
        CryptoLibTable::new(&CryptoLibConfig::default())
    }
}

impl std::fmt::Debug for CryptoLibTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoLibTable")
            .field("builtin_rules", &BUILTIN.len())
            .field("extra_rules", &self.extra.len())
            .finish()
    }
}

impl CryptoLibTable {
    /// The built-in table extended by `config.extra`. Empty patterns, patterns longer
    /// than [`MAX_PATTERN_LEN`] and rules past [`MAX_EXTRA_RULES`] are ignored.
    pub fn new(config: &CryptoLibConfig) -> CryptoLibTable {
        let extra = config
            .extra
            .iter()
            .filter(|r| !r.pattern.is_empty() && r.pattern.len() <= MAX_PATTERN_LEN)
            .take(MAX_EXTRA_RULES)
            .map(|r| ExtraRule {
                pattern: r.pattern.to_ascii_lowercase(),
                classes: r.classes,
                weight: r.weight,
            })
            .collect();
        CryptoLibTable { extra }
    }

    /// Classify a module path or name; `None` when it is not a known crypto library.
    ///
    /// Never panics; names longer than [`MAX_NAME_LEN`] are not matched.
    pub fn classify(&self, module_path: &str) -> Option<CryptoLib> {
        let path = module_path.trim();
        let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
        if file.is_empty() || file.len() > MAX_NAME_LEN {
            return None;
        }
        let file = file.to_ascii_lowercase();
        for r in &self.extra {
            if rule_matches(&r.pattern, &file, path) {
                return Some(CryptoLib {
                    name: Cow::Owned(r.pattern.clone()),
                    classes: r.classes,
                    weight: r.weight,
                });
            }
        }
        BUILTIN
            .iter()
            .find(|r| rule_matches(r.pattern, &file, path))
            .map(|r| CryptoLib {
                name: Cow::Borrowed(r.pattern),
                classes: r.classes,
                weight: r.weight,
            })
    }
}

/// Whether a lowercase `pattern` matches the lowercase file name, or (for a `.framework`
/// pattern) any component of `path`.
fn rule_matches(pattern: &str, file_lower: &str, path: &str) -> bool {
    if pattern.ends_with(".framework") {
        return path
            .split(['/', '\\'])
            .filter(|c| c.len() <= MAX_NAME_LEN)
            .any(|c| glob_match(pattern.as_bytes(), c.to_ascii_lowercase().as_bytes()));
    }
    glob_match(pattern.as_bytes(), file_lower.as_bytes())
}

/// Glob match where `*` matches any run of bytes; linear backtracking to the last star
/// (the classic two-pointer algorithm), O(len(pattern) × len(text)) worst case.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match (pattern.get(p), text.get(t)) {
            (Some(b'*'), _) => {
                star = Some((p, t));
                p += 1;
            }
            (Some(pc), Some(tc)) if pc == tc => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> CryptoLibTable {
        CryptoLibTable::default()
    }

    #[test]
    fn windows_path_with_backslashes_matches_case_insensitively() {
        let lib = table().classify(r"C:\Windows\System32\RSAENH.DLL").unwrap();
        assert_eq!(lib.name, "rsaenh.dll");
        assert_eq!(lib.weight, EvidenceWeight::Strong);
        assert!(lib.classes.contains(CryptoClass::Asymmetric));
    }

    #[test]
    fn bcryptprimitives_is_very_weak_and_bcrypt_is_weak() {
        let t = table();
        let p = t
            .classify(r"C:\Windows\System32\bcryptPrimitives.dll")
            .unwrap();
        assert_eq!(p.weight, EvidenceWeight::VeryWeak);
        assert!(p.classes.contains(CryptoClass::Random));
        let b = t.classify(r"C:\Windows\System32\bcrypt.dll").unwrap();
        assert_eq!(b.weight, EvidenceWeight::Weak);
        assert_eq!(b.name, "bcrypt.dll");
    }

    #[test]
    fn strong_windows_libraries_are_strong() {
        let t = table();
        for name in [
            "schannel.dll",
            "ncryptsslp.dll",
            "crypt32.dll",
            "ncrypt.dll",
            "dssenh.dll",
            "aes.dll",
        ] {
            let lib = t.classify(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(lib.weight, EvidenceWeight::Strong, "{name}");
        }
        assert!(
            t.classify("schannel.dll")
                .unwrap()
                .classes
                .contains(CryptoClass::Tls)
        );
    }

    #[test]
    fn versioned_sonames_match() {
        let t = table();
        for path in [
            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
            "/usr/lib/x86_64-linux-gnu/libssl.so.1.1",
            "/lib64/libgcrypt.so.20.4.1",
            "/usr/lib/libsodium.so.23",
            "/usr/lib/libnettle.so.8",
            "/usr/lib/libgnutls.so.30",
            "/usr/lib/libmbedcrypto.so.7",
            "/usr/lib/libwolfssl.so.35",
            "/usr/lib64/libnss3.so",
            "/usr/lib64/libsoftokn3.so",
            "libcrypto.so",
        ] {
            assert!(t.classify(path).is_some(), "{path}");
        }
        assert!(
            t.classify("/usr/lib/libssl.so.3")
                .unwrap()
                .classes
                .contains(CryptoClass::Tls)
        );
    }

    #[test]
    fn openssl_dll_names_on_windows_match() {
        let t = table();
        assert_eq!(
            t.classify(r"C:\Python\DLLs\libcrypto-1_1.dll")
                .unwrap()
                .name,
            "libcrypto-*.dll"
        );
        assert_eq!(
            t.classify(r"C:\Python\DLLs\libssl-1_1-x64.dll")
                .unwrap()
                .name,
            "libssl-*.dll"
        );
    }

    #[test]
    fn macos_framework_matches_on_path_component() {
        let t = table();
        let lib = t
            .classify("/System/Library/Frameworks/Security.framework/Versions/A/Security")
            .unwrap();
        assert_eq!(lib.name, "security.framework");
        assert_eq!(
            t.classify("/usr/lib/system/libcommonCrypto.dylib")
                .unwrap()
                .weight,
            EvidenceWeight::VeryWeak
        );
        assert!(t.classify("/usr/lib/system/libcorecrypto.dylib").is_some());
        assert!(t.classify("/usr/lib/libboringssl.dylib").is_some());
    }

    #[test]
    fn ordinary_modules_are_not_crypto() {
        let t = table();
        for path in [
            r"C:\Windows\System32\kernel32.dll",
            r"C:\Windows\System32\ntdll.dll",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libcryptsetup.so.12",
            "/usr/lib/libssh.so.4",
            "",
            "/",
            "\\",
        ] {
            assert!(t.classify(path).is_none(), "{path:?}");
        }
    }

    #[test]
    fn extra_rule_extends_and_overrides_builtin() {
        let config: CryptoLibConfig = serde_json::from_str(
            r#"{"extra":[
                {"pattern":"MyCipher*.DLL","classes":["symmetric"],"weight":"strong"},
                {"pattern":"bcrypt.dll","classes":["symmetric","random"],"weight":"very_weak"}
            ]}"#,
        )
        .unwrap();
        let t = CryptoLibTable::new(&config);
        let lib = t.classify(r"D:\app\mycipher_v2.dll").unwrap();
        assert_eq!(lib.name, "mycipher*.dll");
        assert_eq!(lib.weight, EvidenceWeight::Strong);
        assert_eq!(
            lib.classes.iter().collect::<Vec<_>>(),
            vec![CryptoClass::Symmetric]
        );
        assert_eq!(
            t.classify("bcrypt.dll").unwrap().weight,
            EvidenceWeight::VeryWeak
        );
    }

    #[test]
    fn overlong_name_is_not_matched() {
        let name = format!("libcrypto.so{}", "1".repeat(MAX_NAME_LEN));
        assert!(table().classify(&name).is_none());
    }

    #[test]
    fn glob_handles_stars_anywhere() {
        assert!(glob_match(b"a*c", b"abbbc"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a**", b"a"));
        assert!(!glob_match(b"a*c", b"abbbd"));
        assert!(glob_match(b"*x*y", b"zzxzzy"));
        assert!(!glob_match(b"abc", b"ab"));
        assert!(!glob_match(b"ab", b"abc"));
    }

    #[test]
    fn class_set_serializes_as_list() {
        let s = CryptoClassSet::of(&[CryptoClass::Tls, CryptoClass::Symmetric]);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["symmetric","tls"]"#);
    }
}

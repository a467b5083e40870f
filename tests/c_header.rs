//! `include/entrospect.h` is what cbindgen makes of `src/ffi`, and
//! `include/entrospect.symbols` lists exactly the `entrospect_*` functions it declares.
//!
//! Refresh both after changing the C ABI: `ENTROSPECT_BLESS=1 cargo test --test c_header`,
//! then review the diff (a removed or changed function breaks C callers).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bless() -> bool {
    std::env::var_os("ENTROSPECT_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

fn generate() -> String {
    let root = root();
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        // Only src/ffi (and its submodules) is parsed: the header must not pick up the
        // crate's other public types. The CLI equivalent:
        // `cbindgen --config cbindgen.toml --output include/entrospect.h src/ffi/mod.rs`.
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen generates the header from src/ffi");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("header is utf-8")
}

/// Function names declared in a C header: an identifier starting with `entrospect_`
/// directly followed by `(`.
fn declared_functions(header: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in header.match_indices("entrospect_") {
        let before = header[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &header[i..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if rest[end..].starts_with('(') {
            names.insert(rest[..end].to_owned());
        }
    }
    names
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn committed_header_matches_cbindgen_output() {
    let path = root().join("include/entrospect.h");
    let fresh = generate();
    if bless() {
        std::fs::write(&path, &fresh).expect("write include/entrospect.h");
        return;
    }
    let committed = read(&path);
    if committed != fresh {
        let line = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "at the end".to_owned(),
                |n| format!("first at line {}", n + 1),
            );
        panic!(
            "include/entrospect.h differs from what cbindgen generates from src/ffi ({line}); \
             refresh it with `ENTROSPECT_BLESS=1 cargo test --test c_header` and review the diff"
        );
    }
}

#[test]
fn symbol_list_matches_functions_in_header() {
    let path = root().join("include/entrospect.symbols");
    let declared = declared_functions(&generate());
    assert!(
        declared.contains("entrospect_engine_new"),
        "parser found {declared:?}"
    );
    if bless() {
        let text: String = declared.iter().map(|n| format!("{n}\n")).collect();
        std::fs::write(&path, text).expect("write include/entrospect.symbols");
        return;
    }
    let listed: BTreeSet<String> = read(&path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let removed: Vec<_> = listed.difference(&declared).collect();
    let added: Vec<_> = declared.difference(&listed).collect();
    assert!(
        removed.is_empty() && added.is_empty(),
        "include/entrospect.symbols and the header disagree: missing from the header {removed:?} \
         (a removed function breaks C callers), not listed {added:?}; refresh with \
         `ENTROSPECT_BLESS=1 cargo test --test c_header`"
    );
}

#[test]
fn header_abi_version_is_the_librarys() {
    let want = format!(
        "#define ENTROSPECT_ABI_VERSION {}",
        entrospect::ffi::ENTROSPECT_ABI_VERSION
    );
    assert!(
        generate().contains(&want),
        "cbindgen.toml's after_includes must say `{want}`"
    );
}

#[test]
fn function_parser_finds_declarations_only() {
    let h = "int entrospect_a(void);\n/* see entrospect_b */\ntypedef int (*entrospect_cb)(void*);\nx_entrospect_c(1);";
    let got: Vec<_> = declared_functions(h).into_iter().collect();
    assert_eq!(got, ["entrospect_a"]);
}

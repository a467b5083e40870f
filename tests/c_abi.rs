//! The C ABI from C: builds `examples/c/replay.c` and `examples/c/abuse.c` against the static
//! library, checks that the C replay prints exactly the events the Rust engine produces for
//! the demo capture and host events, runs both under valgrind when it is installed, and
//! checks every status code `abuse.c` provokes.
//!
//! Skips with a message when `cc` or the libpcap headers are missing (`.ci/run` installs
//! `gcc`, `libpcap-dev` and `valgrind`).

use entrospect::capture::CaptureFile;
use entrospect::host::HostEvent;
use entrospect::{Config, Engine};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the C programs are built; created here, since tests run in any order.
fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_abi");
    std::fs::create_dir_all(&dir).expect("create the C build directory");
    dir
}

/// Whether `cc` can compile a file including `header`.
fn cc_has(header: &str) -> bool {
    let dir = out_dir();
    let _ = std::fs::create_dir_all(&dir);
    let probe = dir.join(format!("probe_{}.c", header.replace(['/', '.'], "_")));
    if std::fs::write(
        &probe,
        format!("#include <{header}>\nint main(void) {{ return 0; }}\n"),
    )
    .is_err()
    {
        return false;
    }
    Command::new("cc")
        .arg("-fsyntax-only")
        .arg(&probe)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Build the library with cargo (current sources) and return the static library's path.
///
/// The build uses a target directory of its own: `cargo build --lib` unifies dependency
/// features without the dev-dependencies, so in the shared target directory it would leave
/// a second build of some dependencies (e.g. `serde_core`) beside the test build's, and the
/// doctests that run afterwards could not tell them apart.
fn static_lib() -> &'static Option<PathBuf> {
    static LIB: OnceLock<Option<PathBuf>> = OnceLock::new();
    LIB.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_abi_target");
        let out = Command::new(cargo)
            .current_dir(root())
            .arg("build")
            .arg("--target-dir")
            .arg(&target_dir)
            .args(["--lib", "--message-format=json-render-diagnostics"])
            .output()
            .expect("run cargo build --lib");
        assert!(
            out.status.success(),
            "cargo build --lib failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "entrospect")
            .flat_map(|v| {
                v["filenames"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|f| f.as_str().map(PathBuf::from))
            })
            .find(|p| p.extension().is_some_and(|e| e == "a"))
    })
}

/// Compile `examples/c/<name>.c` statically against libentrospect; `None` (after a printed
/// reason) when the tools are missing.
fn build_c(name: &str, extra_libs: &[&str], exe_name: &str) -> Option<PathBuf> {
    if Command::new("cc").arg("--version").output().is_err() {
        eprintln!("skipping: no C compiler `cc` on PATH (install gcc)");
        return None;
    }
    if extra_libs.contains(&"-lpcap") && !cc_has("pcap/pcap.h") {
        eprintln!("skipping: libpcap headers missing (install libpcap-dev)");
        return None;
    }
    let lib = static_lib()
        .as_ref()
        .expect("cargo build --lib made no libentrospect.a");
    // Each test builds its own executable: tests run in parallel and a file being written
    // cannot be executed ("text file busy").
    let exe = out_dir().join(exe_name);
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"])
        .arg("-I")
        .arg(root().join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(root().join(format!("examples/c/{name}.c")))
        .arg(lib)
        .args(extra_libs)
        .args(["-lpthread", "-ldl", "-lm"])
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc {name}.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(exe)
}

fn have_valgrind() -> bool {
    let ok = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("valgrind not installed: skipping the valgrind runs");
    }
    ok
}

fn valgrind(exe: &Path, args: &[&Path]) -> Output {
    Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--error-exitcode=1",
            "--errors-for-leak-kinds=definite,indirect",
            "-q",
        ])
        .arg(exe)
        .args(args)
        .output()
        .expect("run valgrind")
}

fn demo() -> (PathBuf, PathBuf) {
    let d = root().join("examples/data");
    (d.join("demo.pcapng"), d.join("demo.hostevents.jsonl"))
}

/// An event as the C side sees it: its JSON text, parsed back (serde_json's default float
/// parsing may differ from the in-memory value in the last bit, so both sides go through
/// text).
fn through_text(ev: &entrospect::Event) -> serde_json::Value {
    let text = serde_json::to_string(ev).expect("event serializes");
    serde_json::from_str(&text).expect("event json parses")
}

/// What the Rust engine emits for the inputs, merged exactly as replay.c merges them; `None`
/// when the capture does not read to its end.
fn rust_events_checked(pcap: &Path, hostevents: Option<&Path>) -> Option<Vec<String>> {
    let text = hostevents.map_or_else(String::new, |p| {
        std::fs::read_to_string(p).expect("read host events")
    });
    let host: Vec<HostEvent> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("demo host event parses"))
        .collect();
    let mut next = 0;
    let mut engine = Engine::new(Config::default()).expect("default engine");
    let file = CaptureFile::open(pcap).ok()?;
    let mut out = Vec::new();
    for pkt in file.packets() {
        let pkt = pkt.ok()?;
        while let Some(h) = host.get(next).filter(|h| h.timestamp <= pkt.ts) {
            engine.process_host_event(h.clone());
            next += 1;
        }
        engine.process(&pkt);
        out.extend(engine.drain_events().map(|e| through_text(&e)));
    }
    for h in host.get(next..).unwrap_or_default() {
        engine.process_host_event(h.clone());
    }
    engine.finish();
    out.extend(engine.drain_events().map(|e| through_text(&e)));
    Some(normalized(out))
}

/// The `VERDICT ...` lines replay.c prints, as the Rust engine's verdict handler sees the
/// demo (host events merged as replay.c merges them), in order.
fn rust_verdict_lines(pcap: &Path, hostevents: &Path) -> Vec<String> {
    use entrospect::detect::verdict::Verdict;
    use std::sync::{Arc, Mutex};
    let host: Vec<HostEvent> = std::fs::read_to_string(hostevents)
        .expect("read host events")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("demo host event parses"))
        .collect();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut engine = Engine::new(Config::default()).expect("default engine");
    let sink = Arc::clone(&lines);
    engine.set_verdict_handler(move |v| {
        let severity = match v.severity {
            None => 0,
            Some(s) => s as u32 + 1,
        };
        let analytics = if v.verdict == Verdict::Allow {
            "-".to_owned()
        } else {
            v.analytics.join(",")
        };
        sink.lock().expect("not poisoned").push(format!(
            "VERDICT flow_id={} verdict={} analytics={analytics} severity={severity} \
             payload_packets={} packets={} latency_ns={} at_flow_end={}",
            v.flow_id,
            v.verdict.as_str(),
            v.payload_packets,
            v.packets,
            v.latency_ns,
            u8::from(v.at_flow_end)
        ));
    });
    let file = CaptureFile::open(pcap).expect("demo opens");
    let mut next = 0;
    for pkt in file.packets() {
        let pkt = pkt.expect("demo reads");
        while let Some(h) = host.get(next).filter(|h| h.timestamp <= pkt.ts) {
            engine.process_host_event(h.clone());
            next += 1;
        }
        engine.process(&pkt);
    }
    for h in host.get(next..).unwrap_or_default() {
        engine.process_host_event(h.clone());
    }
    engine.finish();
    drop(engine);
    lines.lock().expect("not poisoned").clone()
}

#[test]
fn c_replay_reports_the_rust_engines_verdicts_for_the_demo() {
    let Some(exe) = build_c("replay", &["-lpcap"], "replay_verdicts") else {
        return;
    };
    let (pcap, hostevents) = demo();
    let out = Command::new(&exe)
        .arg(&pcap)
        .arg(&hostevents)
        .output()
        .expect("run replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replay failed: {stderr}");
    let c: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("VERDICT "))
        .collect();
    let rust = rust_verdict_lines(&pcap, &hostevents);
    assert!(
        rust.iter().any(|l| l.contains("verdict=block_suggested")),
        "{rust:#?}"
    );
    assert_eq!(
        c, rust,
        "C verdict callback and Rust verdict handler disagree"
    );
    eprintln!("c replay: {} verdicts equal to the rust engine's", c.len());
}

fn rust_events(pcap: &Path, hostevents: &Path) -> Vec<String> {
    rust_events_checked(pcap, Some(hostevents)).expect("demo capture reads to its end")
}

/// `v` with every non-integer number rounded to 12 significant digits. The static library
/// is built with the `dev` profile and this test with `test` (opt-level 1); the engine's
/// floating-point features differ between the two in the last bit.
fn rounded(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .and_then(|f| format!("{f:.11e}").parse::<f64>().ok())
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| v.clone(), Value::Number),
        Value::Array(a) => Value::Array(a.iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), rounded(x))).collect()),
        _ => v.clone(),
    }
}

/// Canonical, sorted text of each event (keys sorted by serde_json's map).
fn normalized(events: Vec<serde_json::Value>) -> Vec<String> {
    let mut v: Vec<String> = events.iter().map(|e| rounded(e).to_string()).collect();
    v.sort();
    v
}

#[test]
fn c_replay_prints_the_rust_engines_events_for_the_demo() {
    let Some(exe) = build_c("replay", &["-lpcap"], "replay_compare") else {
        return;
    };
    let (pcap, hostevents) = demo();
    let out = Command::new(&exe)
        .arg(&pcap)
        .arg(&hostevents)
        .output()
        .expect("run replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replay failed: {stderr}");
    let c: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("replay printed non-JSON {l:?}: {e}"))
        })
        .collect();
    let c = normalized(c);
    let rust = rust_events(&pcap, &hostevents);
    assert!(
        rust.iter().any(|e| e.contains(r#""event_type":"flow""#)),
        "demo has flows"
    );
    assert_eq!(
        c.len(),
        rust.len(),
        "event counts differ; replay stderr: {stderr}"
    );
    for (a, b) in c.iter().zip(&rust) {
        assert_eq!(a, b, "C replay and Rust engine disagree");
    }
    let alerts = rust
        .iter()
        .filter(|e| e.contains(r#""event_type":"alert""#))
        .count();
    assert_eq!(
        stderr.matches("ALERT ").count(),
        alerts,
        "one human line per alert"
    );
    eprintln!(
        "c replay: {} events equal to the rust engine's ({alerts} alerts)",
        c.len()
    );
}

#[test]
fn c_replay_is_clean_under_valgrind() {
    let Some(exe) = build_c("replay", &["-lpcap"], "replay_valgrind") else {
        return;
    };
    if !have_valgrind() {
        return;
    }
    let (pcap, hostevents) = demo();
    let out = valgrind(&exe, &[&pcap, &hostevents]);
    assert!(
        out.status.success(),
        "valgrind reports errors in replay:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn c_abuse_gets_the_documented_status_for_every_misuse() {
    let Some(exe) = build_c("abuse", &[], "abuse_native") else {
        return;
    };
    let out = Command::new(&exe).output().expect("run abuse");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "abuse.c checks failed:\n{stdout}");
    assert!(stdout.contains("ok   use after free"), "{stdout}");
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count() > 60,
        "{stdout}"
    );
}

#[test]
fn c_abuse_is_clean_under_valgrind_without_use_after_free() {
    let Some(exe) = build_c("abuse", &[], "abuse_valgrind") else {
        return;
    };
    if !have_valgrind() {
        return;
    }
    let out = valgrind(&exe, &[Path::new("--no-use-after-free")]);
    assert!(
        out.status.success(),
        "valgrind reports errors in abuse:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn c_replay_matches_rust_engine_on_the_corpus() {
    let dir = root().join("../shared/corpus/pcap");
    if !dir.is_dir() {
        eprintln!("skipping: corpus not found at {}", dir.display());
        return;
    }
    let Some(exe) = build_c("replay", &["-lpcap"], "replay_corpus") else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    // Captures where libpcap and our reader legitimately read different packets, not a
    // difference of the C ABI: (file, why).
    const READERS_DIFFER: &[(&str, &str)] = &[(
        "ndpi__fuzz-2021-06-07-c6c72a0a56.pcap",
        "fuzzed ts_usec 4293562680 (over 10^6): our reader carries it into the seconds, \
         libpcap's nanosecond conversion does not",
    )];
    files.retain(|f| {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        !READERS_DIFFER.iter().any(|(n, _)| *n == name)
    });
    let (mut equal, mut unreadable) = (0, Vec::new());
    let mut differ = Vec::new();
    for f in &files {
        let out = Command::new(&exe).arg(f).output().expect("run replay");
        let rust = rust_events_checked(f, None);
        let (true, Some(rust)) = (out.status.success(), rust) else {
            // libpcap or our reader stops early on a damaged file: outputs are not comparable.
            unreadable.push(
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            continue;
        };
        let c: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if normalized(c) == rust {
            equal += 1;
        } else {
            differ.push(
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    eprintln!(
        "corpus: {equal} of {} captures give equal events through C and Rust; {} not read to the end by one reader: {unreadable:?}",
        files.len(),
        unreadable.len()
    );
    assert!(
        differ.is_empty(),
        "C replay and Rust engine disagree on {differ:?}"
    );
    assert!(equal > files.len() / 2, "too few comparable captures");
}

//! Host adapters over the real telemetry in `../shared/corpus/host` (see its MANIFEST.md).
//!
//! Prints event counts per kind for every file and asserts the facts the MANIFEST lists
//! for each. Skips with a message when the corpus is absent.

use entrospect::host::adapters::{AdapterStats, HostFormat, open_host_file};
use entrospect::host::{ConnDirection, HostEvent, HostEventKind, Platform};
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/host");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("host corpus not found at {}: skipping", dir.display());
        None
    }
}

fn read(dir: &Path, rel: &str) -> (Vec<HostEvent>, AdapterStats) {
    read_as(dir, rel, None)
}

fn read_as(dir: &Path, rel: &str, format: Option<HostFormat>) -> (Vec<HostEvent>, AdapterStats) {
    let path = dir.join(rel);
    let mut adapter = open_host_file(&path, format, Some("corpus-host"))
        .unwrap_or_else(|e| panic!("{rel}: cannot open: {e}"));
    let events: Vec<HostEvent> = adapter.by_ref().filter_map(Result::ok).collect();
    let stats = adapter.stats().clone();
    eprintln!(
        "{rel}: {:?} ignored={} skipped={} {:?}",
        stats.events_by_kind, stats.records_ignored, stats.lines_skipped, stats.skip_reasons
    );
    (events, stats)
}

fn base(path: &str) -> String {
    path.rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
        .to_ascii_lowercase()
}

/// Connections from an image (by file name) to `ip:port`, as `(src, timestamp, guid)`.
fn connects<'a>(evs: &'a [HostEvent], image_name: &str, ip: &str, port: u16) -> Vec<&'a HostEvent> {
    evs.iter()
        .filter(|e| match &e.kind {
            HostEventKind::NetworkConnect {
                image,
                dest_ip,
                dest_port,
                ..
            } => {
                image.as_deref().map(base).as_deref() == Some(image_name)
                    && dest_ip.to_string() == ip
                    && *dest_port == port
            }
            _ => false,
        })
        .collect()
}

/// Module names (lowercase file names) loaded by an image.
fn modules(evs: &[HostEvent], image_name: &str) -> Vec<String> {
    evs.iter()
        .filter_map(|e| match &e.kind {
            HostEventKind::ModuleLoad { image, module, .. }
                if image.as_deref().map(base).as_deref() == Some(image_name) =>
            {
                Some(base(module))
            }
            _ => None,
        })
        .collect()
}

fn has_all(mods: &[String], wanted: &[&str]) -> bool {
    wanted.iter().all(|w| mods.iter().any(|m| m == w))
}

fn src_of(e: &HostEvent) -> Option<String> {
    match &e.kind {
        HostEventKind::NetworkConnect {
            src_ip, src_port, ..
        } => Some(format!("{}:{}", (*src_ip)?, (*src_port)?)),
        _ => None,
    }
}

fn guid_of(e: &HostEvent) -> Option<&str> {
    match &e.kind {
        HostEventKind::ProcessStart { process_guid, .. }
        | HostEventKind::ModuleLoad { process_guid, .. }
        | HostEventKind::NetworkConnect { process_guid, .. }
        | HostEventKind::ProcessExit { process_guid, .. } => process_guid.as_deref(),
    }
}

#[test]
fn empire_vbs_powershell_loads_crypto_then_connects_to_listener() {
    let Some(dir) = corpus() else { return };
    let (evs, stats) = read(&dir, "windows/empire_launcher_vbs_2020-09-04160940.json");
    assert_eq!(stats.lines_skipped, 0);
    let mods = modules(&evs, "powershell.exe");
    assert!(has_all(
        &mods,
        &[
            "bcrypt.dll",
            "bcryptprimitives.dll",
            "rsaenh.dll",
            "crypt32.dll"
        ]
    ));
    let c = connects(&evs, "powershell.exe", "10.10.10.5", 80);
    let sysmon: Vec<_> = c.iter().filter(|e| guid_of(e).is_some()).collect();
    assert!(!sysmon.is_empty());
    assert_eq!(src_of(sysmon[0]).as_deref(), Some("172.18.39.5:50699"));
    // Also seen by WFP 5156 (no guid, \device\ path).
    assert!(c.iter().any(|e| guid_of(e).is_none()));
    // The crypto loads come before the connection.
    let first_load = evs
        .iter()
        .filter(|e| matches!(&e.kind, HostEventKind::ModuleLoad { module, .. } if base(module) == "rsaenh.dll"))
        .map(|e| e.timestamp)
        .min()
        .unwrap();
    assert!(first_load < sysmon[0].timestamp);
    assert_eq!(sysmon[0].host, "WORKSTATION5.theshire.local");
}

#[test]
fn covenant_psremoting_takes_pid_from_message_not_sysmon_service() {
    let Some(dir) = corpus() else { return };
    let (evs, _) = read(
        &dir,
        "windows/covenant_psremoting_grunt_2019-12-05014931.json",
    );
    let c = connects(&evs, "powershell.exe", "172.18.39.8", 80);
    let sysmon = c
        .iter()
        .find(|e| guid_of(e).is_some())
        .expect("sysmon EID 3");
    assert_eq!(src_of(sysmon).as_deref(), Some("172.18.39.106:50738"));
    // pid 3140 is the Sysmon service (top-level ProcessID); the grunt is another pid.
    assert_ne!(sysmon.kind.pid(), 3140);
    let start = evs
        .iter()
        .find(|e| {
            matches!(e.kind, HostEventKind::ProcessStart { .. }) && guid_of(e) == guid_of(sysmon)
        })
        .expect("process start of the grunt");
    assert_eq!(start.kind.pid(), sysmon.kind.pid());
    assert!(has_all(
        &modules(&evs, "powershell.exe"),
        &["bcrypt.dll", "rsaenh.dll"]
    ));
    // Sysmon EID 3 of the service pid never leaks into events.
    assert!(!evs.iter().any(|e| guid_of(e).is_some()
        && e.kind.pid() == 3140
        && matches!(e.kind, HostEventKind::ModuleLoad { .. })));
}

#[test]
fn covenant_installutil_module_loads_without_processid_keep_guid() {
    let Some(dir) = corpus() else { return };
    let (evs, stats) = read(&dir, "windows/covenant_installutil_2020-09-19211702.json");
    assert_eq!(stats.lines_skipped, 0);
    assert!(has_all(
        &modules(&evs, "installutil.exe"),
        &[
            "bcrypt.dll",
            "bcryptprimitives.dll",
            "crypt32.dll",
            "rsaenh.dll"
        ]
    ));
    let c = connects(&evs, "installutil.exe", "10.10.10.5", 80);
    assert!(
        c.iter()
            .any(|e| src_of(e).as_deref() == Some("172.18.39.5:63102"))
    );
    let sysmon = c
        .iter()
        .find(|e| guid_of(e).is_some())
        .expect("sysmon EID 3");
    assert_eq!(
        guid_of(sysmon),
        Some("b34bc01c-add5-5f66-2210-000000000400")
    );
    // WFP gives the real pid; Sysmon here carries none.
    assert!(
        c.iter()
            .any(|e| guid_of(e).is_none() && e.kind.pid() == 4232)
    );
}

#[test]
fn zipped_mordor_files_give_their_c2_connections() {
    let Some(dir) = corpus() else { return };
    let (evs, _) = read(&dir, "windows/covenant_sharpwmi_create_dcerpc_wmi.zip");
    let c = connects(&evs, "grunthttp2.exe", "10.10.10.5", 80);
    assert!(
        c.iter()
            .any(|e| src_of(e).as_deref() == Some("172.18.39.6:52548"))
    );
    assert!(evs.iter().any(
        |e| matches!(&e.kind, HostEventKind::ProcessStart { image, parent_image: Some(p), .. }
        if base(image) == "grunthttp2.exe" && base(p) == "wmiprvse.exe")
    ));

    let (evs, _) = read(&dir, "windows/empire_launcher_sct_regsvr32.zip");
    assert!(!connects(&evs, "regsvr32.exe", "10.10.10.5", 8444).is_empty());
    let beacons = connects(&evs, "powershell.exe", "10.10.10.5", 80);
    let ports: std::collections::BTreeSet<_> = beacons.iter().filter_map(|e| src_of(e)).collect();
    assert!(
        ports.len() >= 5,
        "beacons use a new source port each time: {ports:?}"
    );
    assert!(!modules(&evs, "regsvr32.exe").is_empty());
}

#[test]
fn meterpreter_payload_loads_schannel_and_sysmon_eid3_is_33h_early() {
    let Some(dir) = corpus() else { return };
    // The zip also holds a __MACOSX AppleDouble member that must be skipped.
    let (evs, _) = read(
        &dir,
        "windows/psh_disable_eventlog_service_startuptype_modification.zip",
    );
    assert!(has_all(
        &modules(&evs, "payload.exe"),
        &[
            "bcrypt.dll",
            "bcryptprimitives.dll",
            "crypt32.dll",
            "ncrypt.dll",
            "ncryptsslp.dll",
            "rsaenh.dll",
            "schannel.dll"
        ]
    ));
    let c = connects(&evs, "payload.exe", "192.168.56.40", 8443);
    let sysmon = c
        .iter()
        .find(|e| guid_of(e).is_some())
        .expect("sysmon EID 3");
    assert_eq!(
        src_of(sysmon)
            .as_deref()
            .map(|s| s.starts_with("192.168.56.43:")),
        Some(true)
    );
    let start = evs
        .iter()
        .find(|e| {
            matches!(e.kind, HostEventKind::ProcessStart { .. }) && guid_of(e) == guid_of(sysmon)
        })
        .expect("EID 1 of payload.exe");
    let skew_h = start.timestamp.saturating_sub(sysmon.timestamp) as f64 / 3.6e12;
    assert!((30.0..36.0).contains(&skew_h), "skew {skew_h} h");
}

#[test]
fn aptsimulator_uses_utctime_not_mislabelled_collector_time() {
    let Some(dir) = corpus() else { return };
    let (evs, _) = read(&dir, "windows/aptsimulator_cobaltstrike.zip");
    let ping = evs
        .iter()
        .find(|e| {
            matches!(&e.kind, HostEventKind::ProcessStart { image, process_guid: Some(g), .. }
            if base(image) == "ping.exe" && g == "e2c04bb9-08c3-60c4-1c17-400100000000")
        })
        .expect("PING.EXE start");
    // UtcTime 2021-06-12 01:07:15.633; TimeCreated says 2021-06-11T09:07:15.635Z.
    assert_eq!(ping.timestamp.to_string(), "2021-06-12T01:07:15.633000Z");
    // Only two Sysmon EID 3, both SMB over link-local IPv6, no C2 egress.
    let sysmon_conns: Vec<_> = evs
        .iter()
        .filter(|e| matches!(e.kind, HostEventKind::NetworkConnect { .. }) && guid_of(e).is_some())
        .collect();
    assert_eq!(sysmon_conns.len(), 2);
    for e in sysmon_conns {
        let HostEventKind::NetworkConnect {
            dest_ip, dest_port, ..
        } = &e.kind
        else {
            unreachable!()
        };
        assert_eq!(*dest_port, 445);
        assert_eq!(dest_ip.to_string(), "fe80::5d54:ed5a:760f:c4ff");
    }
    assert!(
        has_all(&modules(&evs, "curl.exe"), &["bcrypt.dll"])
            || !modules(&evs, "curl.exe").is_empty()
    );
}

#[test]
fn python_webserver_loads_openssl_dlls_and_has_no_outbound_python_connection() {
    let Some(dir) = corpus() else { return };
    let (evs, _) = read(&dir, "windows/psh_python_webserver.zip");
    assert!(has_all(
        &modules(&evs, "python.exe"),
        &["libcrypto-1_1.dll", "libssl-1_1.dll"]
    ));
    assert!(!evs.iter().any(|e| matches!(&e.kind, HostEventKind::NetworkConnect { image: Some(i), direction: ConnDirection::Outbound, process_guid: Some(_), .. } if base(i) == "python.exe")));
}

#[test]
fn mshta_cradle_connects_to_fastly_over_tls() {
    let Some(dir) = corpus() else { return };
    let (evs, _) = read(&dir, "windows/psh_mshta_html_application_execution.zip");
    assert!(!connects(&evs, "powershell.exe", "151.101.208.133", 443).is_empty());
    assert!(has_all(
        &modules(&evs, "powershell.exe"),
        &["ncrypt.dll", "ncryptsslp.dll", "schannel.dll"]
    ));
}

#[test]
fn lsass_campaign_payload_connects_to_4433() {
    let Some(dir) = corpus() else { return };
    let (evs, stats) = read(&dir, "windows/metasploit_procdump_lsass_memory_dump.zip");
    assert!(stats.count("module_load") > 5000);
    let c = connects(&evs, "winx64_payload.exe", "10.0.5.13", 4433);
    let srcs: std::collections::BTreeSet<_> = c.iter().filter_map(|e| src_of(e)).collect();
    assert!(
        srcs.contains("192.168.1.43:51745") && srcs.contains("192.168.1.43:51746"),
        "{srcs:?}"
    );
    assert!(has_all(
        &modules(&evs, "winx64_payload.exe"),
        &["schannel.dll", "rsaenh.dll"]
    ));
}

#[test]
fn evtx_files_give_tunnel_and_c2_connections() {
    let Some(dir) = corpus() else { return };
    let (evs, stats) = read(&dir, "windows/DE_sysmon-3-rdp-tun.evtx");
    assert_eq!(stats.lines_skipped, 0);
    assert!(!connects(&evs, "plink.exe", "10.0.2.18", 80).is_empty());
    assert!(!connects(&evs, "plink.exe", "127.0.0.2", 3389).is_empty());
    // svchost accepting the tunnelled RDP: Initiated=false → inbound, dest is the listener.
    assert!(evs.iter().any(|e| matches!(&e.kind, HostEventKind::NetworkConnect { image: Some(i), direction: ConnDirection::Inbound, dest_port: 3389, .. } if base(i) == "svchost.exe")));

    let (evs, _) = read(&dir, "windows/DE_RDP_Tunnel_5156.evtx");
    assert!(evs.iter().any(|e| matches!(&e.kind, HostEventKind::NetworkConnect { image: Some(i), .. } if i.starts_with("\\device\\harddiskvolume"))));
    assert!(
        evs.iter()
            .any(|e| matches!(e.kind, HostEventKind::ProcessStart { .. }))
    );

    let (evs, _) = read(&dir, "windows/tunna_iis_rdp_smb_tunneling_sysmon_3.evtx");
    assert!(!connects(&evs, "w3wp.exe", "127.0.0.1", 3389).is_empty());
    assert!(!connects(&evs, "w3wp.exe", "127.0.0.1", 445).is_empty());

    let (evs, stats) = read(
        &dir,
        "windows/Sysmon_meterpreter_ReflectivePEInjection_to_notepad_.evtx",
    );
    assert!(!connects(&evs, "rundll32.exe", "10.0.2.18", 8181).is_empty());
    assert_eq!(stats.count("module_load"), 0, "no EID 7 in this file");

    let (evs, _) = read(&dir, "windows/LM_sysmon_psexec_smb_meterpreter.evtx");
    assert!(!connects(&evs, "powershell.exe", "10.0.2.19", 4444).is_empty());

    let (evs, stats) = read(&dir, "windows/Sysmon_UACME_64.evtx");
    assert!(stats.count("module_load") > 400);
    let mods: Vec<String> = ["consent.exe", "akagi64.exe", "ieinstal.exe"]
        .iter()
        .flat_map(|i| modules(&evs, i))
        .collect();
    assert!(has_all(
        &mods,
        &[
            "bcrypt.dll",
            "bcryptprimitives.dll",
            "rsaenh.dll",
            "crypt32.dll"
        ]
    ));

    let (evs, _) = read(&dir, "windows/PanacheSysmon_vs_AtomicRedTeam01.evtx");
    assert!(evs.iter().any(|e| matches!(&e.kind, HostEventKind::NetworkConnect { dest_port: 443, dest_ip, .. } if dest_ip.to_string() == "151.101.0.133")));
}

#[test]
fn sysmon_for_linux_log4shell_java_and_bash_egress() {
    let Some(dir) = corpus() else { return };
    let (evs, stats) = read(
        &dir,
        "linux/syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json",
    );
    assert!(
        evs.iter()
            .all(|e| e.platform == Platform::Linux && e.host == "UBUNTU5")
    );
    let to = |pid: u32, port: u16| {
        evs.iter().any(|e| {
            matches!(&e.kind, HostEventKind::NetworkConnect { pid: p, dest_ip, dest_port, .. }
            if *p == pid && *dest_port == port && dest_ip.to_string() == "192.168.2.6")
        })
    };
    assert!(to(1340, 1389) && to(1340, 8888) && to(17806, 443));
    assert!(evs.iter().any(|e| e.kind.pid() == 17806
        && matches!(
            &e.kind,
            HostEventKind::NetworkConnect {
                src_port: Some(39634),
                ..
            }
        )));
    // The 0.0.0.0:0 -> 0.0.0.0:0 EID 3 is reported, not emitted.
    assert_eq!(stats.skip_reasons.get("no_endpoint"), Some(&1));
    assert!(evs.iter().any(|e| matches!(&e.kind, HostEventKind::ProcessStart { cmdline: Some(c), .. } if c.contains("{base64,-d}"))));
}

#[test]
fn auoms_and_tetragon_give_process_starts() {
    let Some(dir) = corpus() else { return };
    let (evs, _) = read(
        &dir,
        "linux/syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json",
    );
    assert!(evs.iter().any(|e| matches!(&e.kind, HostEventKind::ProcessStart { pid: 17790, ppid: Some(1340), image, cmdline: Some(c), .. }
        if image == "/bin/bash" && c.starts_with("bash -c \"{echo,"))));
    let (evs, stats) = read(&dir, "linux/tetragon_events.json");
    assert_eq!(stats.count("process_start"), 3);
    assert!(evs.iter().all(|e| guid_of(e).is_some()));
    assert!(evs.iter().any(|e| matches!(&e.kind, HostEventKind::ProcessStart { pid: 68790, image, .. } if image == "/usr/bin/netserver")));
}

#[test]
fn vm_insights_rows_give_bash_reverse_shell_connection() {
    let Some(dir) = corpus() else { return };
    let (evs, stats) = read(
        &dir,
        "linux/vminsights_vmconnection_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json",
    );
    assert_eq!(stats.count("network_connect"), 5);
    assert!(!connects(&evs, "bash", "192.168.2.6", 443).is_empty());
    assert!(!connects(&evs, "java", "192.168.2.6", 1389).is_empty());
    assert!(evs.iter().any(|e| matches!(
        e.kind,
        HostEventKind::NetworkConnect {
            direction: ConnDirection::Inbound,
            ..
        }
    )));
}

#[test]
fn auditd_files_give_connects_and_execs() {
    let Some(dir) = corpus() else { return };
    let (evs, _) = read(&dir, "linux/record-connect.txt");
    let dests: Vec<String> = evs
        .iter()
        .filter_map(|e| match &e.kind {
            HostEventKind::NetworkConnect {
                dest_ip,
                dest_port,
                src_ip: None,
                ..
            } => Some(format!("{dest_ip}:{dest_port}")),
            _ => None,
        })
        .collect();
    assert_eq!(dests, vec!["127.0.0.1:11211", "::1:11211"]);

    // Same records in and out of order: the same events.
    let (a, _) = read(&dir, "linux/normal.log");
    let (mut b, _) = read(&dir, "linux/out_of_order.log");
    let mut a = a;
    let key = |e: &HostEvent| serde_json::to_string(e).unwrap();
    a.sort_by_key(key);
    b.sort_by_key(key);
    assert_eq!(a, b);
    assert!(a.iter().any(|e| matches!(&e.kind, HostEventKind::NetworkConnect { dest_port: 80, dest_ip, .. } if dest_ip.to_string() == "169.254.169.254")));
    assert!(a.iter().any(
        |e| matches!(&e.kind, HostEventKind::ProcessStart { image, .. } if image == "/usr/bin/grep")
    ));

    let (evs, _) = read(&dir, "linux/record-execve-long.txt");
    let HostEventKind::ProcessStart {
        cmdline: Some(c), ..
    } = &evs[0].kind
    else {
        panic!("no exec")
    };
    // a1_len=16384 hex digits in three a1[i] fragments: 8192 bytes, after "/bin/echo ".
    assert_eq!(
        c.len(),
        "/bin/echo ".len() + 8192,
        "split argument rejoined"
    );
    assert!(c.starts_with("/bin/echo baaaa"));

    let (evs, _) = read(&dir, "linux/record-weblogic.txt");
    assert!(evs.iter().any(|e| matches!(&e.kind, HostEventKind::ProcessStart { cmdline: Some(c), .. } if c.split(' ').count() >= 14)));

    let (evs, _) = read(&dir, "linux/shell-proc-trace.txt");
    let pids: Vec<u32> = evs
        .iter()
        .filter(|e| matches!(e.kind, HostEventKind::ProcessStart { .. }))
        .map(|e| e.kind.pid())
        .collect();
    for p in [71505, 71507, 71508, 71509] {
        assert!(pids.contains(&p), "exec of {p} in {pids:?}");
    }
    for f in [
        "linux/sh_arp_cache_2020-11-10074812.log",
        "linux/sh_binary_padding_dd_2020-11-10081941.log",
    ] {
        let (_, stats) = read(&dir, f);
        assert!(stats.events() > 0, "{f}");
    }
}

/// `audit-rhel7.log` is go-libaudit's record-type catalogue: one example line of each of
/// ~40 record types, taken from different events (47 serials over 49 lines). No event in
/// it is complete: the connect `SYSCALL` (pid 1170, EINPROGRESS) has no `SOCKADDR`, the
/// `SOCKADDR` of 169.254.169.254:80 and the AF_UNIX/nscd ones have no `SYSCALL`, the
/// `EXECVE` records (auditctl, cat, grep, jq) have no `SYSCALL` and so no pid, and the two
/// other `SYSCALL`s are finit_module and kill. The USER_*/CRED_*/DAEMON_* records are
/// logins and daemon state, which have no normalized event. So 0 events is right, and
/// every record is counted as ignored rather than dropped silently.
#[test]
fn audit_rhel7_catalogue_has_no_complete_event_and_yields_none() {
    let Some(dir) = corpus() else { return };
    let (evs, stats) = read(&dir, "linux/audit-rhel7.log");
    assert!(evs.is_empty(), "{evs:?}");
    // Every serial (47) is accounted for as a group without a usable event (49: records
    // of one serial that lie far apart in the file close as separate groups); the one
    // line with no `msg=audit(..)` header, `type=UNKNOWN[1329] msg=?`, is skipped.
    assert!(stats.records_ignored >= 47, "{stats:?}");
    assert_eq!(stats.lines_skipped, 1, "{stats:?}");
    assert_eq!(stats.skip_reasons.get("bad_audit_record"), Some(&1));
}

#[test]
fn macos_elastic_documents_strict_and_lenient() {
    let Some(dir) = corpus() else { return };
    let (evs, _) = read(&dir, "macos/lateral_movement_execution_reverse_shell.json");
    assert!(evs.iter().any(
        |e| matches!(&e.kind, HostEventKind::ProcessStart { pid: 4465, image, cmdline: Some(c), .. }
        if image == "/bin/sh" && c.contains("/dev/tcp/192.168.178.60/4444"))
    ));
    assert!(evs.iter().all(|e| e.platform == Platform::Macos));

    let (evs, _) = read(
        &dir,
        "macos/persistence_execution_hidden_launchd_childproc.json",
    );
    assert!(evs.iter().any(
        |e| matches!(&e.kind, HostEventKind::ProcessStart { image, parent_image: Some(p), .. }
        if image.contains(".xpcproxy") && p == "/sbin/launchd")
    ));

    let (evs, stats) = read(&dir, "macos/execution_scripting_python.json");
    assert_eq!(stats.lines_skipped, 0);
    assert!(evs.iter().any(|e| matches!(&e.kind, HostEventKind::ProcessStart { cmdline: Some(c), .. } if c.contains("base64"))));

    for f in [
        "macos/lateral_movement_ssh_from_python_procexec.json",
        "macos/execution_automator_workflow_template_jxa.json",
        "macos/lateral_movement_vpn_connection_cmdline.json",
        "macos/evasion_credaccess_set_webproxy_to_localhost.json",
        "macos/evasion_install_root_trust_certificate.json",
    ] {
        let (evs, stats) = read(&dir, f);
        assert!(!evs.is_empty() && stats.lines_skipped == 0, "{f}");
    }
}

#[test]
fn esxi_plaso_log_gives_daemon_context() {
    let Some(dir) = corpus() else { return };
    let (evs, _) = read(&dir, "esxi/plaso_esxi.log");
    assert!(evs.iter().all(|e| e.platform == Platform::Esxi));
    assert!(evs.iter().any(|e| matches!(&e.kind, HostEventKind::ProcessStart { pid: 526501, image, user: Some(u), .. } if image == "hostd" && u == "root")));
    assert!(
        evs.iter()
            .any(|e| e.host == "esxi.example" && e.kind.pid() == 111111)
    );
    assert!(
        evs.iter().any(
            |e| matches!(&e.kind, HostEventKind::ProcessStart { image, .. } if image == "vpxa")
        )
    );
}

#[test]
fn every_host_file_is_detected_or_refused_cleanly() {
    let Some(dir) = corpus() else { return };
    for sub in ["windows", "linux", "macos", "esxi"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Large files are covered by their own tests above.
            if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) > 4 << 20
                || name.contains("lsass_memory_dump.zip")
            {
                continue;
            }
            match open_host_file(&path, None, None) {
                Ok(mut a) => {
                    let n = a.by_ref().count();
                    eprintln!("{sub}/{name}: {n} items, {:?}", a.stats().events_by_kind);
                }
                Err(e) => {
                    eprintln!("{sub}/{name}: not host telemetry: {e}");
                    assert!(
                        name.ends_with(".pcap") || name.contains("zeek"),
                        "{name}: {e}"
                    );
                }
            }
        }
    }
}

/// An EVTX file inside a zip (how the public datasets ship them) gives the same events as
/// the file itself, stored and deflated: the member is spilled to a temporary file for
/// the seeking EVTX parser instead of being held in memory.
#[test]
fn evtx_inside_a_zip_gives_the_same_events_as_the_file() {
    use std::io::Write;
    let Some(dir) = corpus() else { return };
    let rel = "windows/Sysmon_UACME_64.evtx";
    let (direct, _) = read(&dir, rel);
    assert!(!direct.is_empty(), "{rel} gave no events");
    let bytes = std::fs::read(dir.join(rel)).expect("read evtx");
    let tmp = tempfile::tempdir().expect("tempdir");
    for method in [
        zip::CompressionMethod::Deflated,
        zip::CompressionMethod::Stored,
    ] {
        let path = tmp.path().join(format!("uacme-{method:?}.zip"));
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).expect("create zip"));
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.start_file("Sysmon_UACME_64.evtx", opts)
            .expect("zip entry");
        zip.write_all(&bytes).expect("zip data");
        zip.finish().expect("zip finish");
        let mut adapter = open_host_file(&path, None, Some("corpus-host"))
            .unwrap_or_else(|e| panic!("{method:?}: cannot open: {e}"));
        let zipped: Vec<HostEvent> = adapter.by_ref().filter_map(Result::ok).collect();
        assert_eq!(zipped.len(), direct.len(), "{method:?}");
        assert_eq!(zipped, direct, "{method:?}");
    }
}

/// A stored zip member whose bytes were damaged after zipping fails its CRC-32 check at
/// its end: the reader says so instead of passing the damage on silently.
#[test]
fn damaged_zip_member_reports_its_crc_failure() {
    use std::io::Write;
    let line = serde_json::json!({
        "timestamp": "2026-06-01T00:00:00Z", "host": "ws-1", "platform": "linux",
        "event": "process_start", "pid": 42, "ppid": 1, "image": "/usr/bin/python3",
        "cmdline": "python3 beacon.py"
    })
    .to_string();
    let body = format!("{line}\n{line}\n");
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("damaged.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).expect("create zip"));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("events.jsonl", stored).expect("zip entry");
    zip.write_all(body.as_bytes()).expect("zip data");
    zip.finish().expect("zip finish");
    // Intact, it reads both events.
    let ok: Vec<_> = open_host_file(&path, None, None).expect("open").collect();
    assert_eq!(ok.iter().filter(|r| r.is_ok()).count(), 2, "{ok:?}");
    // Change one byte of the member's data (inside "beacon.py" of its second line).
    let mut bytes = std::fs::read(&path).expect("read zip");
    let at = bytes
        .windows(9)
        .rposition(|w| w == b"beacon.py")
        .expect("member data");
    bytes[at] = b'd';
    std::fs::write(&path, &bytes).expect("write zip");
    let damaged: Vec<_> = match open_host_file(&path, None, None) {
        Ok(adapter) => adapter.collect(),
        Err(e) => vec![Err(e)],
    };
    let errors: Vec<String> = damaged
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("CRC")),
        "no CRC error in {damaged:?}"
    );
}

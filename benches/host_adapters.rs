//! Events per second of each text host adapter, on generated input.

use criterion::{Criterion, Throughput, criterion_main};
use entrospect::host::adapters::{HostFormat, open_reader};
use std::hint::black_box;
use std::io::Cursor;

const N: usize = 2000;

fn sysmon_json() -> String {
    (0..N)
        .map(|i| {
            format!(
                r#"{{"EventID":3,"Channel":"Microsoft-Windows-Sysmon/Operational","SourceName":"Microsoft-Windows-Sysmon","Hostname":"ws-{h}","UtcTime":"2020-09-04 16:09:{s:02}.123","ProcessGuid":"{{B34BC01C-ADD5-5F66-2010-0000000004{g:02X}}}","ProcessId":"{pid}","Image":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","Protocol":"tcp","Initiated":"true","SourceIp":"172.18.39.5","SourcePort":"{sp}","DestinationIp":"10.10.10.5","DestinationPort":"80","Message":"Network connection detected:\r\nRuleName: \r\nProcessId: {pid}"}}"#,
                h = i % 7,
                s = i % 60,
                g = i % 256,
                pid = 1000 + i,
                sp = 50000 + (i % 10000)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sysmon_xml() -> String {
    (0..N)
        .map(|i| {
            format!(
                "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Sysmon'/><EventID>7</EventID><TimeCreated SystemTime='2020-09-04T16:09:40.1234567Z'/><Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>ws-1</Computer></System><EventData><Data Name='UtcTime'>2020-09-04 16:09:40.123</Data><Data Name='ProcessGuid'>{{b34bc01c-add5-5f66-2010-000000000400}}</Data><Data Name='ProcessId'>{}</Data><Data Name='Image'>C:\\Windows\\System32\\wscript.exe</Data><Data Name='ImageLoaded'>C:\\Windows\\System32\\bcrypt.dll</Data></EventData></Event>",
                1000 + i
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn auditd() -> String {
    let mut s = String::new();
    for i in 0..N {
        let serial = 1000 + i;
        s.push_str(&format!(
            "type=SYSCALL msg=audit(1604990501.{ms:03}:{serial}): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=1 pid={pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm=\"python3\" exe=\"/usr/bin/python3.11\" key=(null)\ntype=EXECVE msg=audit(1604990501.{ms:03}:{serial}): argc=2 a0=\"python3\" a1=\"beacon.py\"\ntype=PROCTITLE msg=audit(1604990501.{ms:03}:{serial}): proctitle=707974686F6E3300626561636F6E2E7079\ntype=EOE msg=audit(1604990501.{ms:03}:{serial}): \n",
            ms = i % 1000,
            pid = 4000 + i
        ));
    }
    s
}

fn lsof() -> String {
    let mut s =
        String::from("COMMAND     PID  USER   FD   TYPE             DEVICE SIZE/OFF NODE NAME\n");
    for i in 0..N {
        s.push_str(&format!(
            "curl      {} alice    5u  IPv4 0x8b7c9d2e3f4a5b6c      0t0  TCP 10.0.0.5:{}->203.0.113.9:443 (ESTABLISHED)\n",
            4000 + i,
            40000 + (i % 20000)
        ));
    }
    s
}

fn esxcli() -> String {
    let mut s = String::from(
        "Proto  Recv Q  Send Q  Local Address  Foreign Address  State  World ID  CC Algo  World Name\n",
    );
    for i in 0..N {
        s.push_str(&format!(
            "tcp         0       0  10.0.0.10:{}    198.51.100.20:443   ESTABLISHED   {}  newreno  vpxa-worker\n",
            30000 + (i % 30000),
            2_100_000 + i
        ));
    }
    s
}

fn eslogger() -> String {
    (0..N)
        .map(|i| {
            format!(
                r#"{{"event_type":9,"time":"2023-03-01T12:00:00.{i:06}Z","process":{{"audit_token":{{"pid":{p},"pidversion":3,"euid":501}},"executable":{{"path":"/bin/zsh"}},"ppid":1}},"event":{{"exec":{{"target":{{"audit_token":{{"pid":{p},"pidversion":4,"euid":501}},"executable":{{"path":"/usr/bin/curl"}},"ppid":1}},"args":["curl","-s","https://example.net"]}}}}}}"#,
                p = 500 + i
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn bench(c: &mut Criterion) {
    let inputs = [
        (HostFormat::SysmonJson, sysmon_json()),
        (HostFormat::SysmonXml, sysmon_xml()),
        (HostFormat::Auditd, auditd()),
        (HostFormat::Lsof, lsof()),
        (HostFormat::Esxcli, esxcli()),
        (HostFormat::Eslogger, eslogger()),
    ];
    let mut g = c.benchmark_group("host_adapters");
    g.throughput(Throughput::Elements(N as u64));
    for (format, text) in inputs {
        let bytes = text.into_bytes();
        g.bench_function(format.as_str(), |b| {
            b.iter(|| {
                let a = open_reader(Cursor::new(bytes.clone()), format, Some("bench")).ok();
                let n = a.map(|a| a.filter(Result::is_ok).count()).unwrap_or(0);
                assert_eq!(n, N);
                black_box(n)
            })
        });
    }
    g.finish();
}

#[allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);

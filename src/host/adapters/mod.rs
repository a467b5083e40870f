//! Host adapters: native telemetry files into normalized [`HostEvent`]s.
//!
//! Owns the readers for Windows Sysmon and Security auditing (EVTX, rendered XML, SIEM
//! JSON-lines exports, zip archives of those), Linux auditd (raw `audit.log`, AUOMS,
//! Tetragon, Sysmon for Linux), macOS (Endpoint Security `eslogger` JSON, Elastic
//! Endpoint process documents, `lsof -i -n -P` output) and ESXi (`esxcli network ip
//! connection list`, hostd/vpxa/shell syslog). Must not know about packets.
//!
//! Contracts:
//! - Every adapter is an [`Iterator`] of `Result<HostEvent, HostError>` (the [`HostAdapter`]
//!   trait adds per-file [`AdapterStats`]). A malformed line or record is one
//!   [`HostError::Parse`] carrying its line number, and iteration goes on; only I/O errors
//!   end the stream. Records that are well formed but carry nothing the engine uses (a
//!   Sysmon registry event, a failed `execve`) are counted in
//!   [`AdapterStats::records_ignored`], not reported.
//! - Bounded memory: lines are read with a cap ([`MAX_LINE_BYTES`]), auditd keeps a capped
//!   number of open event groups, EVTX is read one 64 KiB chunk at a time, a stored or
//!   deflated zip member is decompressed as it is read. The only whole reads are an EVTX
//!   file inside a zip or a zip member of another compression method (capped by
//!   [`MAX_ZIP_MEMBER_BYTES`]) and pretty-printed Elastic documents (capped by
//!   [`MAX_DOCUMENT_BYTES`]).
//! - Never panics on input. Time comes from the telemetry itself, never the wall clock.
//!
//! Connections are written canonically: `src` is the side that initiated the
//! connection and `dest` the side that accepted it, with [`ConnDirection`] saying whether
//! the local process was the initiator (`outbound`) or the acceptor (`inbound`).
//!
//! The `jsonl` (normalized JSON lines) and `linux_proc` adapters are written by another
//! engineer and are declared here by the merge; until then [`HostFormat::Jsonl`] uses a
//! small private fallback.

use super::crypto_libs::CryptoLibConfig;
use super::{ConnDirection, HostError, HostEvent, HostEventKind};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::Path;

pub mod auditd;
pub mod esxi;
pub mod jsonl;
pub mod linux_proc;
pub mod lsof;
pub mod macos_es;
#[cfg(target_os = "linux")]
pub mod sock_diag;
pub mod sysmon;

/// Longest line any line-based adapter accepts (4 MiB); longer lines are skipped with
/// a `line_too_long` error. PowerShell script-block events in SIEM exports reach a few
/// hundred KiB.
pub const MAX_LINE_BYTES: usize = 4 << 20;
/// Largest zip member that [`open_host_file`] decompresses (512 MiB): into memory when it
/// is neither stored nor deflated, into an anonymous temporary file when it is an EVTX
/// file (the EVTX parser needs to seek).
pub const MAX_ZIP_MEMBER_BYTES: u64 = 512 << 20;
/// Largest pretty-printed JSON document file (Elastic exports) read whole (64 MiB).
pub const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

/// The telemetry formats the adapters read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HostFormat {
    /// Normalized host events, one JSON object a line (DESIGN.md).
    Jsonl,
    /// Windows EVTX file (Sysmon, Security).
    SysmonEvtx,
    /// Rendered event XML (`<Event><System>..<EventData>`), Windows or Sysmon for Linux.
    SysmonXml,
    /// SIEM JSON-lines exports of Windows events (Mordor/OTRF, Winlogbeat, nxlog, Azure
    /// Syslog carrying Sysmon-for-Linux XML).
    SysmonJson,
    /// Raw Linux `audit.log` lines.
    Auditd,
    /// Azure Syslog JSON lines carrying AUOMS (`type=AUOMS_EXECVE ...`) records.
    Auoms,
    /// Tetragon JSON export (`process_exec`, `process_exit`).
    Tetragon,
    /// Azure VM Insights `VMConnection` rows (aggregated per-process connections).
    VmConnection,
    /// macOS Endpoint Security JSON as `eslogger` writes it.
    Eslogger,
    /// Elastic Endpoint (ECS) process documents, strict or Kibana-style JSON.
    ElasticEndpoint,
    /// `lsof -i -n -P` output.
    Lsof,
    /// `esxcli network ip connection list` output.
    Esxcli,
    /// ESXi hostd/vpxa/shell syslog lines.
    EsxiSyslog,
}

impl HostFormat {
    /// Every format, in declaration order.
    pub const ALL: [HostFormat; 13] = [
        HostFormat::Jsonl,
        HostFormat::SysmonEvtx,
        HostFormat::SysmonXml,
        HostFormat::SysmonJson,
        HostFormat::Auditd,
        HostFormat::Auoms,
        HostFormat::Tetragon,
        HostFormat::VmConnection,
        HostFormat::Eslogger,
        HostFormat::ElasticEndpoint,
        HostFormat::Lsof,
        HostFormat::Esxcli,
        HostFormat::EsxiSyslog,
    ];

    /// The stable name (`sysmon-evtx`, `auditd`, ...), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            HostFormat::Jsonl => "jsonl",
            HostFormat::SysmonEvtx => "sysmon-evtx",
            HostFormat::SysmonXml => "sysmon-xml",
            HostFormat::SysmonJson => "sysmon-json",
            HostFormat::Auditd => "auditd",
            HostFormat::Auoms => "auoms",
            HostFormat::Tetragon => "tetragon",
            HostFormat::VmConnection => "vm-connection",
            HostFormat::Eslogger => "eslogger",
            HostFormat::ElasticEndpoint => "elastic-endpoint",
            HostFormat::Lsof => "lsof",
            HostFormat::Esxcli => "esxcli",
            HostFormat::EsxiSyslog => "esxi-syslog",
        }
    }

    /// The format of a stable name; `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<HostFormat> {
        HostFormat::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl std::fmt::Display for HostFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one adapter saw in one file.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AdapterStats {
    /// Events produced, by kind (`process_start`, ...).
    pub events_by_kind: BTreeMap<String, u64>,
    /// Well-formed records that carry nothing the engine uses (other event ids, failed
    /// exec attempts, listening sockets ...).
    pub records_ignored: u64,
    /// Lines or records skipped because they could not be used.
    pub lines_skipped: u64,
    /// Skipped lines by reason category ([`HostError::skip_reason`]).
    pub skip_reasons: BTreeMap<String, u64>,
}

impl AdapterStats {
    /// Count one item an adapter yielded.
    pub fn record(&mut self, item: &Result<HostEvent, HostError>) {
        match item {
            Ok(ev) => {
                *self
                    .events_by_kind
                    .entry(ev.kind.as_str().to_owned())
                    .or_insert(0) += 1;
            }
            Err(e) => {
                self.lines_skipped = self.lines_skipped.saturating_add(1);
                *self
                    .skip_reasons
                    .entry(e.skip_reason().to_owned())
                    .or_insert(0) += 1;
            }
        }
    }

    /// Total events produced.
    pub fn events(&self) -> u64 {
        self.events_by_kind.values().sum()
    }

    /// Events of one kind (`"module_load"` ...).
    pub fn count(&self, kind: &str) -> u64 {
        self.events_by_kind.get(kind).copied().unwrap_or(0)
    }
}

/// A host telemetry reader: an iterator of events that also counts what it saw.
pub trait HostAdapter: Iterator<Item = Result<HostEvent, HostError>> {
    /// What the adapter has yielded and ignored so far.
    fn stats(&self) -> &AdapterStats;
}

/// Where a line-oriented parser puts what it produced.
#[derive(Debug, Default)]
pub struct Pending {
    queue: VecDeque<Result<HostEvent, HostError>>,
    ignored: u64,
}

impl Pending {
    /// Queue an event.
    pub fn event(&mut self, ev: HostEvent) {
        self.queue.push_back(Ok(ev));
    }
    /// Queue a skipped-record error: `category` is a short stable name, `detail` says
    /// what was wrong.
    pub fn skip(&mut self, line: u64, category: &str, detail: impl std::fmt::Display) {
        self.queue.push_back(Err(HostError::Parse {
            line,
            reason: format!("{category}: {detail}"),
        }));
    }
    /// Count a well-formed record that yields no event.
    pub fn ignore(&mut self) {
        self.ignored = self.ignored.saturating_add(1);
    }
    /// Apply a single-record outcome.
    pub(crate) fn outcome(&mut self, line: u64, outcome: Outcome) {
        match outcome {
            Outcome::Event(ev) => self.event(ev),
            Outcome::Ignored => self.ignore(),
            Outcome::Malformed(category, detail) => self.skip(line, category, detail),
        }
    }
}

/// What one record turned into.
#[derive(Debug)]
pub(crate) enum Outcome {
    Event(HostEvent),
    Ignored,
    Malformed(&'static str, String),
}

/// A parser of one line-oriented format, driven by [`LineAdapter`].
pub trait LineParser {
    /// Parse one line (without its line terminator); `line` is 1-based.
    fn parse_line(&mut self, text: &str, line: u64, out: &mut Pending);
    /// End of input: emit what is still buffered.
    fn finish(&mut self, _out: &mut Pending) {}
}

/// Drives a [`LineParser`] over a reader with a per-line cap, counting what it yields.
pub struct LineAdapter<R, P> {
    reader: R,
    parser: P,
    buf: Vec<u8>,
    line: u64,
    done: bool,
    pending: Pending,
    stats: AdapterStats,
}

impl<R: BufRead, P: LineParser> LineAdapter<R, P> {
    /// Wrap a reader and a parser.
    pub fn new(reader: R, parser: P) -> Self {
        LineAdapter {
            reader,
            parser,
            buf: Vec::new(),
            line: 0,
            done: false,
            pending: Pending::default(),
            stats: AdapterStats::default(),
        }
    }

    /// The parser (for format-specific state).
    pub fn parser(&self) -> &P {
        &self.parser
    }
}

impl<R: BufRead, P: LineParser> Iterator for LineAdapter<R, P> {
    type Item = Result<HostEvent, HostError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.queue.pop_front() {
                self.stats.record(&item);
                return Some(item);
            }
            self.stats.records_ignored = self.pending.ignored;
            if self.done {
                return None;
            }
            self.line = self.line.saturating_add(1);
            match read_line_capped(&mut self.reader, &mut self.buf, MAX_LINE_BYTES) {
                Err(e) => {
                    self.done = true;
                    self.pending
                        .queue
                        .push_back(Err(HostError::Io { source: e }));
                }
                Ok(LineRead::Eof) => {
                    self.done = true;
                    self.parser.finish(&mut self.pending);
                }
                Ok(LineRead::TooLong) => {
                    self.pending.skip(
                        self.line,
                        "line_too_long",
                        format_args!("over {MAX_LINE_BYTES} bytes"),
                    );
                }
                Ok(LineRead::Line) => {
                    let text = String::from_utf8_lossy(&self.buf);
                    let text = text.trim_end_matches(['\r', '\n']);
                    self.parser.parse_line(text, self.line, &mut self.pending);
                }
            }
        }
    }
}

impl<R: BufRead, P: LineParser> HostAdapter for LineAdapter<R, P> {
    fn stats(&self) -> &AdapterStats {
        &self.stats
    }
}

enum LineRead {
    Eof,
    Line,
    TooLong,
}

/// Read one line into `buf` (cleared first), keeping at most `cap` bytes; a longer line
/// is consumed to its end and reported as `TooLong`.
fn read_line_capped<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<LineRead> {
    buf.clear();
    let mut any = false;
    let mut too_long = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            break;
        }
        any = true;
        let (chunk, used, end) = match memchr::memchr(b'\n', avail) {
            Some(i) => (avail.get(..i).unwrap_or(&[]), i.saturating_add(1), true),
            None => (avail, avail.len(), false),
        };
        if !too_long {
            if buf.len().saturating_add(chunk.len()) > cap {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        r.consume(used);
        if end {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => LineRead::Eof,
        (true, true) => LineRead::TooLong,
        (true, false) => LineRead::Line,
    })
}

/// A boxed adapter of any format.
pub type BoxedAdapter = Box<dyn HostAdapter>;

/// Guess a file's format from its first bytes (a few KiB is plenty) and, as a tiebreak,
/// its name. Returns `None` when nothing matches.
///
/// A zip archive is reported by [`open_host_file`] through its member; this function
/// returns `None` for the zip magic itself (see [`is_zip`]).
pub fn detect_format(first_bytes: &[u8], file_name: Option<&str>) -> Option<HostFormat> {
    if first_bytes.starts_with(b"ElfFile\0") {
        return Some(HostFormat::SysmonEvtx);
    }
    if is_zip(first_bytes) {
        return None;
    }
    let head = String::from_utf8_lossy(first_bytes);
    let text = head.trim_start_matches('\u{feff}').trim_start();
    let name = file_name.unwrap_or("").to_ascii_lowercase();
    if text.starts_with('{') || text.starts_with('[') {
        let first_line = text.lines().next().unwrap_or("");
        if text.contains("AUOMS_") {
            return Some(HostFormat::Auoms);
        }
        if [
            "{\"process_exec\"",
            "{\"process_exit\"",
            "{\"process_kprobe\"",
        ]
        .iter()
        .any(|k| first_line.replace(' ', "").starts_with(k))
        {
            return Some(HostFormat::Tetragon);
        }
        if first_line.contains("\"VMConnection\"") {
            return Some(HostFormat::VmConnection);
        }
        if text.contains("\"event_type\"") && text.contains("\"audit_token\"") {
            return Some(HostFormat::Eslogger);
        }
        if text.contains("\"_source\"")
            || text.contains("\"hits\"")
            || text.contains("\"entity_id\"")
        {
            return Some(HostFormat::ElasticEndpoint);
        }
        if text.contains("\"EventID\"")
            || text.contains("\"winlog\"")
            || text.contains("\"SyslogMessage\"")
            || text.contains("\"event_id\"")
            || text.contains("\"EventData\"")
        {
            return Some(HostFormat::SysmonJson);
        }
        if first_line.contains("\"platform\"") && first_line.contains("\"event\"") {
            return Some(HostFormat::Jsonl);
        }
        if name.ends_with(".jsonl") {
            return Some(HostFormat::Jsonl);
        }
        return None;
    }
    if text.starts_with("<Event") || text.starts_with("<?xml") {
        return Some(HostFormat::SysmonXml);
    }
    let first_real = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    if first_real.contains("msg=audit(")
        && (first_real.starts_with("type=") || first_real.starts_with("node="))
    {
        return Some(HostFormat::Auditd);
    }
    if first_real.starts_with("COMMAND ")
        && first_real.contains(" PID ")
        && first_real.contains("NAME")
    {
        return Some(HostFormat::Lsof);
    }
    if first_real.starts_with("Proto") && first_real.contains("World") {
        return Some(HostFormat::Esxcli);
    }
    if esxi::looks_like_esxi_syslog(first_real) {
        return Some(HostFormat::EsxiSyslog);
    }
    if name.ends_with(".evtx") {
        return Some(HostFormat::SysmonEvtx);
    }
    None
}

/// Whether the bytes start with a zip local-file header.
pub fn is_zip(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(b"PK\x03\x04")
}

/// Open a host telemetry file as an adapter.
///
/// `format` forces a format; `None` detects it from the content ([`detect_format`]). A
/// zip archive is opened and its first member that is not an AppleDouble (`__MACOSX/`,
/// `._*`) entry is read: streamed when stored or deflated (size and CRC-32 checked at
/// its end), else read whole up to [`MAX_ZIP_MEMBER_BYTES`]. `default_host` names the host
/// for formats that carry no host name (auditd without `node=`, lsof, esxcli).
///
/// # Errors
/// [`HostError::Io`] when the file cannot be read, [`HostError::UnsupportedFormat`] when
/// no format matches, [`HostError::Container`] for a damaged zip or EVTX file,
/// [`HostError::TooLarge`] for a zip member or document over its cap.
pub fn open_host_file(
    path: &Path,
    format: Option<HostFormat>,
    default_host: Option<&str>,
) -> Result<BoxedAdapter, HostError> {
    open_file_inner(
        path,
        &OpenOptions {
            format,
            default_host: default_host.map(str::to_owned),
            snapshot_time: crate::time::Timestamp::ZERO,
            crypto_libs: CryptoLibConfig::default(),
        },
    )
}

fn open_file_inner(path: &Path, opts: &OpenOptions) -> Result<BoxedAdapter, HostError> {
    let format = opts.format;
    let default_host = opts.default_host.as_deref();
    let mut file = File::open(path)?;
    let mut head = vec![0u8; 8192];
    let n = read_up_to(&mut file, &mut head)?;
    head.truncate(n);
    file.seek(SeekFrom::Start(0))?;
    let name = path.file_name().and_then(|n| n.to_str());
    if is_zip(&head) {
        return open_zip(file, opts);
    }
    let fmt = match format {
        Some(f) => f,
        None => detect_format(&head, name)
            .ok_or_else(|| HostError::UnsupportedFormat(format!("{}", path.display())))?,
    };
    if fmt == HostFormat::SysmonEvtx {
        return Ok(Box::new(sysmon::EvtxReader::new(file, default_host)?));
    }
    open_reader_opts(BufReader::with_capacity(64 << 10, file), fmt, opts)
}

/// How to open a host telemetry file (see [`open_host_file_with`]).
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Force a format; `None` detects it from the content.
    pub format: Option<HostFormat>,
    /// Host name for formats that carry none (auditd without `node=`, eslogger, lsof,
    /// esxcli).
    pub default_host: Option<String>,
    /// When a snapshot without timestamps (lsof, esxcli) was taken; the epoch if unset.
    pub snapshot_time: crate::time::Timestamp,
    /// Extensions of the crypto-library table (the engine's `crypto_libs` config), for
    /// the formats that report only crypto-library file opens as `module_load` (auditd,
    /// eslogger). Default: none, the built-in table of [`crate::host::crypto_libs`].
    pub crypto_libs: CryptoLibConfig,
}

/// [`open_host_file`] with all options.
///
/// # Errors
/// As [`open_host_file`].
pub fn open_host_file_with(path: &Path, opts: &OpenOptions) -> Result<BoxedAdapter, HostError> {
    open_file_inner(path, opts)
}

/// Open an adapter of a known format over any seekable reader.
///
/// # Errors
/// As [`open_host_file`].
pub fn open_reader<R: BufRead + Seek + Send + 'static>(
    reader: R,
    format: HostFormat,
    default_host: Option<&str>,
) -> Result<BoxedAdapter, HostError> {
    open_reader_at(reader, format, default_host, crate::time::Timestamp::ZERO)
}

/// [`open_reader`] with the time of a snapshot format (lsof, esxcli).
///
/// # Errors
/// As [`open_host_file`].
pub fn open_reader_at<R: BufRead + Seek + Send + 'static>(
    reader: R,
    format: HostFormat,
    default_host: Option<&str>,
    snapshot_time: crate::time::Timestamp,
) -> Result<BoxedAdapter, HostError> {
    open_reader_opts(
        reader,
        format,
        &OpenOptions {
            format: Some(format),
            default_host: default_host.map(str::to_owned),
            snapshot_time,
            crypto_libs: CryptoLibConfig::default(),
        },
    )
}

fn open_reader_opts<R: BufRead + Seek + Send + 'static>(
    reader: R,
    format: HostFormat,
    opts: &OpenOptions,
) -> Result<BoxedAdapter, HostError> {
    if format == HostFormat::SysmonEvtx {
        return Ok(Box::new(sysmon::EvtxReader::new(
            reader,
            opts.default_host.as_deref(),
        )?));
    }
    open_stream_opts(reader, format, opts)
}

/// Every format but EVTX (which seeks) over a forward-only reader.
fn open_stream_opts<R: BufRead + Send + 'static>(
    reader: R,
    format: HostFormat,
    opts: &OpenOptions,
) -> Result<BoxedAdapter, HostError> {
    let default_host = opts.default_host.as_deref();
    let snapshot_time = opts.snapshot_time;
    let host = opts.default_host.clone();
    Ok(match format {
        HostFormat::Jsonl => Box::new(JsonlAdapter::new(reader)),
        HostFormat::SysmonEvtx => {
            return Err(HostError::UnsupportedFormat(
                "EVTX needs a seekable reader".to_owned(),
            ));
        }
        HostFormat::SysmonXml => Box::new(sysmon::sysmon_xml_reader(reader, default_host)),
        HostFormat::SysmonJson => Box::new(sysmon::sysmon_json_reader(reader, default_host)),
        HostFormat::Auditd => Box::new(auditd::auditd_reader_with(
            reader,
            default_host,
            &opts.crypto_libs,
        )),
        HostFormat::Auoms => Box::new(auditd::auoms_reader(reader, default_host)),
        HostFormat::Tetragon => Box::new(auditd::tetragon_reader(reader, default_host)),
        HostFormat::VmConnection => Box::new(auditd::vm_connection_reader(reader, default_host)),
        HostFormat::Eslogger => Box::new(macos_es::eslogger_reader_with(
            reader,
            default_host,
            &opts.crypto_libs,
        )),
        HostFormat::ElasticEndpoint => {
            Box::new(macos_es::ElasticReader::new(reader, default_host)?)
        }
        HostFormat::Lsof => Box::new(lsof::lsof_reader(reader, host.as_deref(), snapshot_time)),
        HostFormat::Esxcli => Box::new(esxi::esxcli_reader(reader, host.as_deref(), snapshot_time)),
        HostFormat::EsxiSyslog => Box::new(esxi::esxi_syslog_reader(reader, default_host)),
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n = n.saturating_add(k),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Open the first real member of a zip archive (skipping AppleDouble `__MACOSX/` and
/// `._*` entries and directories) as an adapter.
///
/// A stored or deflated member (what zip tools write) is **streamed** from the archive
/// file: memory stays at a decoder's window plus the adapter's line buffer, whatever the
/// member's size, and its CRC-32 and size are checked when its end is reached (a
/// mismatch ends the stream with an I/O error). Members of other methods, and EVTX
/// members (the EVTX reader seeks), are read whole up to [`MAX_ZIP_MEMBER_BYTES`].
fn open_zip(file: File, opts: &OpenOptions) -> Result<BoxedAdapter, HostError> {
    let zerr = |e: zip::result::ZipError| HostError::Container {
        container: "zip",
        reason: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(file).map_err(zerr)?;
    let mut chosen = None;
    for i in 0..archive.len() {
        let member = archive.by_index_raw(i).map_err(zerr)?;
        let name = member.name().map_err(zerr)?.into_owned();
        let base = name.rsplit('/').next().unwrap_or(&name);
        if member.is_dir() || name.starts_with("__MACOSX/") || base.starts_with("._") {
            continue;
        }
        if member.size() > MAX_ZIP_MEMBER_BYTES {
            return Err(HostError::TooLarge {
                what: "zip member",
                cap: MAX_ZIP_MEMBER_BYTES,
            });
        }
        let method = member.compression();
        let streamable = !member.encrypted()
            && matches!(
                method,
                zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated
            );
        let span = member
            .data_start()
            .filter(|_| streamable)
            .map(|start| ZipSpan {
                start,
                compressed: member.compressed_size(),
                size: member.size(),
                crc32: member.crc32(),
                deflated: method == zip::CompressionMethod::Deflated,
            });
        chosen = Some((i, name, span));
        break;
    }
    let Some((index, name, span)) = chosen else {
        return Err(HostError::Container {
            container: "zip",
            reason: "no member other than AppleDouble entries".to_owned(),
        });
    };
    let Some(span) = span else {
        let data = read_member_whole(&mut archive, index)?;
        return open_member_bytes(data, &name, opts);
    };
    let mut file = archive.into_inner();
    file.seek(SeekFrom::Start(span.start))?;
    let raw = file.take(span.compressed);
    let body: Box<dyn Read + Send> = if span.deflated {
        Box::new(flate2::read::DeflateDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut member = CheckedMember {
        inner: flate2::CrcReader::new(body),
        size: span.size,
        crc32: span.crc32,
        read: 0,
    };
    let mut head = vec![0u8; 8192];
    let n = read_up_to(&mut member, &mut head)?;
    head.truncate(n);
    let fmt = match opts.format {
        Some(f) => f,
        None => detect_format(&head, Some(&name))
            .ok_or_else(|| HostError::UnsupportedFormat(format!("zip member {name}")))?,
    };
    let stream = std::io::Cursor::new(head).chain(member);
    if fmt == HostFormat::SysmonEvtx {
        // The EVTX parser seeks, a zip member cannot: spill the member to an anonymous
        // temporary file (removed when closed) so memory stays bounded whatever its size.
        let mut spill = tempfile::tempfile()?;
        let copied = std::io::copy(
            &mut stream.take(MAX_ZIP_MEMBER_BYTES.saturating_add(1)),
            &mut spill,
        )?;
        if copied > MAX_ZIP_MEMBER_BYTES {
            return Err(HostError::TooLarge {
                what: "zip member",
                cap: MAX_ZIP_MEMBER_BYTES,
            });
        }
        spill.seek(SeekFrom::Start(0))?;
        return open_reader_opts(BufReader::with_capacity(64 << 10, spill), fmt, opts);
    }
    open_stream_opts(BufReader::with_capacity(64 << 10, stream), fmt, opts)
}

/// Where a stored or deflated zip member's bytes lie, and what they must add up to.
struct ZipSpan {
    start: u64,
    compressed: u64,
    size: u64,
    crc32: u32,
    deflated: bool,
}

/// A streamed zip member: checks at its end that it produced the size and CRC-32 its
/// header declares, and never yields more than the declared size.
struct CheckedMember {
    inner: flate2::CrcReader<Box<dyn Read + Send>>,
    size: u64,
    crc32: u32,
    read: u64,
}

impl Read for CheckedMember {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.size.saturating_sub(self.read);
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let Some(window) = buf.get_mut(..want) else {
            return Ok(0);
        };
        let n = if window.is_empty() {
            // At the declared size: the member must end here.
            let mut probe = [0u8; 1];
            if !buf.is_empty() && self.inner.read(&mut probe)? > 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("zip member longer than its declared {} bytes", self.size),
                ));
            }
            0
        } else {
            self.inner.read(window)?
        };
        self.read = self.read.saturating_add(n as u64);
        if n == 0 && !buf.is_empty() {
            if self.read != self.size {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "zip member ends after {} of its declared {} bytes",
                        self.read, self.size
                    ),
                ));
            }
            if self.inner.crc().sum() != self.crc32 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "zip member fails its CRC-32 check",
                ));
            }
        }
        Ok(n)
    }
}

/// A zip member read whole (the zip crate checks its CRC), up to [`MAX_ZIP_MEMBER_BYTES`].
fn read_member_whole(
    archive: &mut zip::ZipArchive<File>,
    index: usize,
) -> Result<Vec<u8>, HostError> {
    let mut member = archive.by_index(index).map_err(|e| HostError::Container {
        container: "zip",
        reason: e.to_string(),
    })?;
    let mut data = Vec::new();
    (&mut member)
        .take(MAX_ZIP_MEMBER_BYTES.saturating_add(1))
        .read_to_end(&mut data)?;
    Ok(data)
}

/// Open a zip member held in memory.
fn open_member_bytes(
    data: Vec<u8>,
    name: &str,
    opts: &OpenOptions,
) -> Result<BoxedAdapter, HostError> {
    if data.len() as u64 > MAX_ZIP_MEMBER_BYTES {
        return Err(HostError::TooLarge {
            what: "zip member",
            cap: MAX_ZIP_MEMBER_BYTES,
        });
    }
    let fmt = match opts.format {
        Some(f) => f,
        None => {
            let head = data.get(..data.len().min(8192)).unwrap_or(&[]);
            detect_format(head, Some(name))
                .ok_or_else(|| HostError::UnsupportedFormat(format!("zip member {name}")))?
        }
    };
    open_reader_opts(std::io::Cursor::new(data), fmt, opts)
}

/// Normalized JSON lines ([`jsonl::JsonlReader`]) with per-file stats.
struct JsonlAdapter<R: BufRead> {
    inner: jsonl::JsonlReader<R>,
    stats: AdapterStats,
}

impl<R: BufRead> JsonlAdapter<R> {
    fn new(reader: R) -> Self {
        JsonlAdapter {
            inner: jsonl::JsonlReader::new(reader),
            stats: AdapterStats::default(),
        }
    }
}

impl<R: BufRead> Iterator for JsonlAdapter<R> {
    type Item = Result<HostEvent, HostError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        self.stats.record(&item);
        Some(item)
    }
}

impl<R: BufRead> HostAdapter for JsonlAdapter<R> {
    fn stats(&self) -> &AdapterStats {
        &self.stats
    }
}

// ---- helpers shared by the adapters ----

/// Sysmon-style GUID to canonical form: braces stripped, lowercase; `None` when empty.
pub(crate) fn normalize_guid(s: &str) -> Option<String> {
    let t = s
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim();
    if t.is_empty() || t == "-" {
        None
    } else {
        Some(t.to_ascii_lowercase())
    }
}

/// An IP address as telemetry writes it: IPv6 uncompressed or bracketed, with a zone
/// (`%eth0`) or an IPv4-mapped form; `None` when it is not an address.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let t = s.trim().trim_start_matches('[').trim_end_matches(']');
    let t = t.split('%').next().unwrap_or(t);
    t.parse::<IpAddr>().ok()
}

/// A port number, tolerating surrounding spaces and quotes.
pub(crate) fn parse_port(s: &str) -> Option<u16> {
    s.trim().trim_matches('"').parse().ok()
}

/// A process id written in decimal or as `0x` hex (Windows Security events).
pub(crate) fn parse_pid(s: &str) -> Option<u32> {
    let t = s.trim().trim_matches('"');
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else {
        t.parse().ok()
    }
}

/// Decode the HTML/XML character references some exporters leave in strings
/// (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#NN;`, `&#xNN;`).
pub(crate) fn html_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(rest.get(..pos).unwrap_or(""));
        let after = rest.get(pos..).unwrap_or("");
        let end = after.get(..after.len().min(12)).and_then(|w| w.find(";"));
        let decoded = end.and_then(|e| {
            let ent = after.get(1..e)?;
            let ch = match ent {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let num = ent.strip_prefix('#')?;
                    let code = match num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
                        Some(h) => u32::from_str_radix(h, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((ch, e))
        });
        match decoded {
            Some((ch, e)) => {
                out.push(ch);
                rest = after.get(e.saturating_add(1)..).unwrap_or("");
            }
            None => {
                out.push('&');
                rest = after.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out
}

/// Build a canonical connection from the local and remote endpoints.
pub(crate) struct Endpoints {
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub direction: ConnDirection,
}

impl Endpoints {
    /// `(src_ip, src_port, dest_ip, dest_port)` with `src` the initiator.
    pub fn canonical(&self) -> (IpAddr, u16, IpAddr, u16) {
        match self.direction {
            ConnDirection::Outbound => (self.local.0, self.local.1, self.remote.0, self.remote.1),
            ConnDirection::Inbound => (self.remote.0, self.remote.1, self.local.0, self.local.1),
        }
    }
}

/// The `HostEventKind::NetworkConnect` of canonical endpoints.
pub(crate) fn connect_kind(
    pid: u32,
    image: Option<String>,
    proto: super::HostProto,
    ep: &Endpoints,
    process_guid: Option<String>,
) -> HostEventKind {
    let (sip, sport, dip, dport) = ep.canonical();
    HostEventKind::NetworkConnect {
        pid,
        image,
        proto,
        src_ip: Some(sip),
        src_port: Some(sport),
        dest_ip: dip,
        dest_port: dport,
        direction: ep.direction,
        process_guid,
    }
}

/// Split `addr:port` (IPv4, `[v6]:port` or bare `v6:port`, as netstat-like tools print).
pub(crate) fn split_host_port(s: &str) -> Option<(IpAddr, u16)> {
    let s = s.trim();
    let (addr, port) = s.rsplit_once(':')?;
    let port = if port == "*" { 0 } else { port.parse().ok()? };
    Some((parse_ip(addr)?, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_format_recognises_each_magic() {
        assert_eq!(
            detect_format(b"ElfFile\0rest", None),
            Some(HostFormat::SysmonEvtx)
        );
        assert_eq!(detect_format(b"PK\x03\x04zz", None), None);
        assert!(is_zip(b"PK\x03\x04zz"));
        assert_eq!(
            detect_format(b"<Event xmlns='x'><System>", None),
            Some(HostFormat::SysmonXml)
        );
        assert_eq!(
            detect_format(b"type=SYSCALL msg=audit(1.2:3): syscall=59", None),
            Some(HostFormat::Auditd)
        );
        assert_eq!(
            detect_format(br#"{"EventID":1,"Image":"C:\\a.exe"}"#, None),
            Some(HostFormat::SysmonJson)
        );
        assert_eq!(
            detect_format(br#"{"timestamp":"2026-11-22T10:00:00Z","host":"h","platform":"linux","event":"process_exit","pid":1}"#, None),
            Some(HostFormat::Jsonl)
        );
        assert_eq!(
            detect_format(
                b"COMMAND   PID USER   FD   TYPE DEVICE SIZE/OFF NODE NAME\n",
                None
            ),
            Some(HostFormat::Lsof)
        );
        assert_eq!(detect_format(b"hello world", None), None);
    }

    #[test]
    fn format_names_round_trip() {
        for f in HostFormat::ALL {
            assert_eq!(HostFormat::from_name(f.as_str()), Some(f));
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.as_str()));
        }
    }

    #[test]
    fn capped_reader_skips_overlong_line_and_keeps_going() {
        let data = format!("short\n{}\nafter\n", "x".repeat(100));
        let mut r = std::io::Cursor::new(data.into_bytes());
        let mut buf = Vec::new();
        assert!(matches!(
            read_line_capped(&mut r, &mut buf, 10).unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf, b"short");
        assert!(matches!(
            read_line_capped(&mut r, &mut buf, 10).unwrap(),
            LineRead::TooLong
        ));
        assert!(matches!(
            read_line_capped(&mut r, &mut buf, 10).unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf, b"after");
        assert!(matches!(
            read_line_capped(&mut r, &mut buf, 10).unwrap(),
            LineRead::Eof
        ));
    }

    #[test]
    fn helpers_normalize_guid_ip_pid_and_entities() {
        assert_eq!(
            normalize_guid("{D14E8C55-47AF-5DE8-0000-0010EB030000}").as_deref(),
            Some("d14e8c55-47af-5de8-0000-0010eb030000")
        );
        assert_eq!(normalize_guid("-"), None);
        assert_eq!(
            parse_ip("fe80:0:0:0:5d54:ed5a:760f:c4ff"),
            "fe80::5d54:ed5a:760f:c4ff".parse().ok()
        );
        assert_eq!(parse_ip("[::1]"), "::1".parse().ok());
        assert_eq!(parse_ip("nope"), None);
        assert_eq!(parse_pid("0x131c"), Some(0x131c));
        assert_eq!(parse_pid("4892"), Some(4892));
        assert_eq!(parse_pid("-1"), None);
        assert_eq!(
            html_unescape("a &amp; b &lt;c&gt; &#65;&#x42; &bogus"),
            "a & b <c> AB &bogus"
        );
        assert_eq!(
            split_host_port("[::1]:443"),
            Some(("::1".parse().unwrap(), 443))
        );
        assert_eq!(
            split_host_port("10.0.0.5:50514"),
            Some(("10.0.0.5".parse().unwrap(), 50514))
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Arbitrary bytes, and seeds with bytes flipped, never panic any text adapter
        /// and every adapter ends.
        #[test]
        fn arbitrary_input_never_panics_a_text_adapter(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 0..16),
        ) {
            let seeds: [&[u8]; 4] = [
                b"type=SYSCALL msg=audit(1.2:3): arch=c000003e syscall=42 success=yes pid=7 exe=\"/x\"\ntype=SOCKADDR msg=audit(1.2:3): saddr=0A000016000000000000000000000000000000000000000100000000\n",
                br#"{"EventID":3,"Channel":"Sysmon","Hostname":"h","UtcTime":"2020-09-04 16:09:40.123","ProcessId":"1","Protocol":"tcp","Initiated":"false","SourceIp":"::1","SourcePort":"5","DestinationIp":"10.0.0.2","DestinationPort":"80"}"#,
                b"<Event><System><EventID>1</EventID><Channel>Sysmon</Channel></System><EventData><Data Name='ProcessId'>4</Data><Data Name='Image'>&amp;&#x41;&#99999999;</Data></EventData></Event>",
                br#"{"_source":{"@timestamp":"2021-01-09T19:13:43Z","event":{"action":"exec"},"process":{"pid":1,"command_line":"""a "b" c""",},}},"#,
            ];
            for input in std::iter::once(noise.clone()).chain(seeds.iter().map(|s| {
                let mut v = s.to_vec();
                for (at, b) in &flips {
                    if let Some(slot) = v.get_mut(at % s.len().max(1)) {
                        *slot = *b;
                    }
                }
                v
            })) {
                let _ = detect_format(&input, None);
                for format in HostFormat::ALL {
                    if format == HostFormat::SysmonEvtx {
                        continue;
                    }
                    if let Ok(a) = open_reader(std::io::Cursor::new(input.clone()), format, None) {
                        proptest::prop_assert!(a.take(100_000).count() < 100_000);
                    }
                }
            }
        }
    }

    /// Two normalized events as a zip member written by the zip crate, in a temp file.
    fn zipped_jsonl(method: zip::CompressionMethod) -> (tempfile::TempDir, std::path::PathBuf) {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.zip");
        let mut w = zip::ZipWriter::new(File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        w.start_file("__MACOSX/._events.jsonl", opts).unwrap();
        w.write_all(b"\0\x05\x16\x07AppleDouble").unwrap();
        w.start_file("events.jsonl", opts).unwrap();
        for pid in [7, 8] {
            writeln!(w, "{{\"timestamp\":\"2026-11-22T10:00:03Z\",\"host\":\"h\",\"platform\":\"linux\",\"event\":\"process_exit\",\"pid\":{pid}}}").unwrap();
        }
        w.finish().unwrap();
        (dir, path)
    }

    #[test]
    fn zip_members_stream_whether_stored_or_deflated() {
        for method in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ] {
            let (_dir, path) = zipped_jsonl(method);
            let items: Vec<_> = open_host_file(&path, None, None).unwrap().collect();
            assert_eq!(items.len(), 2, "{method:?}: {items:?}");
            assert!(items.iter().all(Result::is_ok), "{method:?}");
        }
    }

    #[test]
    fn jsonl_adapter_counts_bad_lines_and_continues() {
        let data = "{\"timestamp\":\"2026-11-22T10:00:03Z\",\"host\":\"h\",\"platform\":\"linux\",\"event\":\"process_exit\",\"pid\":7}\nnot json\n\n{\"timestamp\":\"2026-11-22T10:00:04Z\",\"host\":\"h\",\"platform\":\"linux\",\"event\":\"process_exit\",\"pid\":8}\n";
        let mut a = JsonlAdapter::new(std::io::Cursor::new(data));
        let items: Vec<_> = a.by_ref().collect();
        assert_eq!(items.len(), 3);
        assert!(matches!(items[1], Err(HostError::Parse { line: 2, .. })));
        assert_eq!(a.stats().count("process_exit"), 2);
        assert_eq!(a.stats().lines_skipped, 1);
    }
}

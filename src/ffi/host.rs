//! `entrospect_host_event`: the C mirror of [`HostEvent`], and its checked conversion.

use super::boundary::{MAX_CSTR_LEN, cstr_in, fail};
use super::status::entrospect_status;
use crate::host::{ConnDirection, HostEvent, HostEventKind, HostProto, Platform};
use crate::time::Timestamp;
use std::ffi::c_char;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The platform a host event came from (the `platform` field of `entrospect_host_event`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum entrospect_platform {
    /// Microsoft Windows.
    Windows = 1,
    /// Linux.
    Linux = 2,
    /// macOS.
    Macos = 3,
    /// VMware ESXi.
    Esxi = 4,
}

/// What a host event reports (the `kind` field of `entrospect_host_event`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum entrospect_host_event_kind {
    /// A process started: `pid`, `image` (required), `ppid`, `cmdline`, `user`,
    /// `process_guid`, `parent_image`, `parent_guid`.
    ProcessStart = 1,
    /// A process loaded a library: `pid`, `module` (required), `image`, `process_guid`.
    ModuleLoad = 2,
    /// A process opened or accepted a connection: `pid`, `proto`, `dst_addr`/`dst_family`
    /// and `dst_port` (required), `src_addr`/`src_family`, `src_port`, `direction`,
    /// `image`, `process_guid`.
    NetworkConnect = 3,
    /// A process exited: `pid`, `process_guid`.
    ProcessExit = 4,
}

/// Transport protocol of a host-observed connection (IP protocol numbers).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum entrospect_host_proto {
    /// TCP.
    Tcp = 6,
    /// UDP.
    Udp = 17,
}

/// Which side opened a host-observed connection.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum entrospect_conn_direction {
    /// The local process initiated it (`src` is local).
    Outbound = 0,
    /// A remote peer initiated it (`dst` is local).
    Inbound = 1,
}

/// One normalized host event, filled in by the caller for
/// `entrospect_engine_process_host_event`. Mirrors the JSON form documented for
/// `entrospect_engine_process_host_event_json`.
///
/// Set `struct_size = sizeof(entrospect_host_event)` and zero the struct first
/// (`memset` or `= {0}`), then fill the fields the `kind` uses (see
/// `entrospect_host_event_kind`); the others are ignored. Strings are NUL-terminated UTF-8
/// of at most 64 KiB, NULL when absent; they are only read during the call. Enum-valued
/// fields are `uint32_t` holding the numbers of the enum named in their documentation.
#[repr(C)]
#[derive(Debug)]
pub struct entrospect_host_event {
    /// `sizeof(entrospect_host_event)` as the caller's header declares it.
    pub struct_size: usize,
    /// When the host says it happened, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Host name (required).
    pub host: *const c_char,
    /// An `entrospect_platform`.
    pub platform: u32,
    /// An `entrospect_host_event_kind`.
    pub kind: u32,
    /// Process id.
    pub pid: u32,
    /// Parent process id, or a negative number when unknown.
    pub ppid: i64,
    /// Executable path (required for process start).
    pub image: *const c_char,
    /// Command line.
    pub cmdline: *const c_char,
    /// User name.
    pub user: *const c_char,
    /// Unique process identity (Sysmon ProcessGuid or equivalent).
    pub process_guid: *const c_char,
    /// Parent's executable path.
    pub parent_image: *const c_char,
    /// Parent's unique identity.
    pub parent_guid: *const c_char,
    /// Loaded module path (required for module load).
    pub module: *const c_char,
    /// An `entrospect_host_proto` (network connect).
    pub proto: u32,
    /// Local address of an outbound connection (IPv4 in the first 4 bytes).
    pub src_addr: [u8; 16],
    /// An `entrospect_addr_family`; `ENTROSPECT_ADDR_FAMILY_NONE` when unknown.
    pub src_family: u32,
    /// Local port, or a negative number when unknown.
    pub src_port: i32,
    /// Remote address of an outbound connection (required for network connect).
    pub dst_addr: [u8; 16],
    /// An `entrospect_addr_family` (4 or 6; required for network connect).
    pub dst_family: u32,
    /// Remote port.
    pub dst_port: u16,
    /// An `entrospect_conn_direction`.
    pub direction: u32,
}

/// The size of the first published version of [`entrospect_host_event`].
const HOST_EVENT_V1_SIZE: usize = size_of::<entrospect_host_event>();

fn bad(what: &str) -> entrospect_status {
    fail(
        entrospect_status::InvalidParameter,
        &format!("host event: {what}"),
    )
}

fn addr(bytes: [u8; 16], family: u32, what: &str) -> Result<Option<IpAddr>, entrospect_status> {
    match family {
        0 => Ok(None),
        4 => {
            let [a, b, c, d, ..] = bytes;
            Ok(Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d))))
        }
        6 => Ok(Some(IpAddr::V6(Ipv6Addr::from(bytes)))),
        n => Err(bad(&format!("{what}: unknown address family {n}"))),
    }
}

/// Read and convert a caller-filled host event.
///
/// # Errors
/// `NullParameter` for a NULL event or a missing required string, `InvalidParameter` for a
/// short `struct_size`, an unknown enum number or an out-of-range number, `InvalidUtf8`.
///
/// # Safety
/// `ptr` is NULL or points at an `entrospect_host_event` of at least `struct_size` bytes
/// whose string fields are NULL or NUL-terminated strings.
pub(crate) unsafe fn host_event_in(
    ptr: *const entrospect_host_event,
) -> Result<HostEvent, entrospect_status> {
    if ptr.is_null() {
        return Err(fail(
            entrospect_status::NullParameter,
            "host event: pointer is null",
        ));
    }
    // SAFETY: `ptr` is not NULL (checked above) and, by the caller's contract, points at a
    // struct that starts with `size_t struct_size`.
    let size = unsafe { ptr.cast::<usize>().read() };
    if size < HOST_EVENT_V1_SIZE {
        return Err(bad(&format!(
            "struct_size {size} is smaller than the {HOST_EVENT_V1_SIZE} bytes of version 1"
        )));
    }
    // SAFETY: the caller's struct is at least as large as ours (checked above), so every
    // field we read is inside it.
    let e = unsafe { &*ptr };
    let owned = |p: *const c_char, what: &str| -> Result<Option<String>, entrospect_status> {
        // SAFETY: the caller guarantees that every string field is NULL or NUL-terminated.
        let s = unsafe { cstr_in(p, MAX_CSTR_LEN, what) }?;
        Ok(s.map(str::to_owned))
    };
    let required = |p: *const c_char, what: &str| -> Result<String, entrospect_status> {
        owned(p, what)?.ok_or_else(|| {
            fail(
                entrospect_status::NullParameter,
                &format!("host event: {what} is null"),
            )
        })
    };
    let platform = match e.platform {
        1 => Platform::Windows,
        2 => Platform::Linux,
        3 => Platform::Macos,
        4 => Platform::Esxi,
        n => return Err(bad(&format!("unknown platform {n}"))),
    };
    let host = required(e.host, "host")?;
    let kind = match e.kind {
        1 => HostEventKind::ProcessStart {
            pid: e.pid,
            ppid: match e.ppid {
                n if n < 0 => None,
                n => Some(u32::try_from(n).map_err(|_| bad(&format!("ppid {n} is over 2^32")))?),
            },
            image: required(e.image, "image")?,
            cmdline: owned(e.cmdline, "cmdline")?,
            user: owned(e.user, "user")?,
            process_guid: owned(e.process_guid, "process_guid")?,
            parent_image: owned(e.parent_image, "parent_image")?,
            parent_guid: owned(e.parent_guid, "parent_guid")?,
        },
        2 => HostEventKind::ModuleLoad {
            pid: e.pid,
            image: owned(e.image, "image")?,
            module: required(e.module, "module")?,
            process_guid: owned(e.process_guid, "process_guid")?,
        },
        3 => HostEventKind::NetworkConnect {
            pid: e.pid,
            image: owned(e.image, "image")?,
            proto: match e.proto {
                6 => HostProto::Tcp,
                17 => HostProto::Udp,
                n => return Err(bad(&format!("unknown proto {n}"))),
            },
            src_ip: addr(e.src_addr, e.src_family, "src")?,
            src_port: match e.src_port {
                n if n < 0 => None,
                n => Some(
                    u16::try_from(n).map_err(|_| bad(&format!("src_port {n} is over 65535")))?,
                ),
            },
            dest_ip: addr(e.dst_addr, e.dst_family, "dst")?
                .ok_or_else(|| bad("dst_family is none for a network connect"))?,
            dest_port: e.dst_port,
            direction: match e.direction {
                0 => ConnDirection::Outbound,
                1 => ConnDirection::Inbound,
                n => return Err(bad(&format!("unknown direction {n}"))),
            },
            process_guid: owned(e.process_guid, "process_guid")?,
        },
        4 => HostEventKind::ProcessExit {
            pid: e.pid,
            process_guid: owned(e.process_guid, "process_guid")?,
        },
        n => return Err(bad(&format!("unknown kind {n}"))),
    };
    Ok(HostEvent {
        timestamp: Timestamp::from_nanos(e.timestamp_ns),
        host,
        platform,
        kind,
    })
}

#[cfg(test)]
#[allow(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    reason = "tests call the C entry points with local buffers; each call says why it is sound"
)]
mod tests {
    use super::*;
    use std::ffi::CString;

    fn zeroed() -> entrospect_host_event {
        entrospect_host_event {
            struct_size: size_of::<entrospect_host_event>(),
            timestamp_ns: 1_700_000_000_000_000_000,
            host: std::ptr::null(),
            platform: 2,
            kind: 3,
            pid: 4242,
            ppid: -1,
            image: std::ptr::null(),
            cmdline: std::ptr::null(),
            user: std::ptr::null(),
            process_guid: std::ptr::null(),
            parent_image: std::ptr::null(),
            parent_guid: std::ptr::null(),
            module: std::ptr::null(),
            proto: 6,
            src_addr: [0; 16],
            src_family: 0,
            src_port: -1,
            dst_addr: [203, 0, 113, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            dst_family: 4,
            dst_port: 4444,
            direction: 0,
        }
    }

    #[test]
    fn network_connect_converts_to_the_same_event_as_its_json() {
        let host = CString::new("ws-17").unwrap();
        let image = CString::new("/usr/bin/python3").unwrap();
        let mut e = zeroed();
        e.host = host.as_ptr();
        e.image = image.as_ptr();
        // SAFETY: `e` is a complete struct with valid strings.
        let got = unsafe { host_event_in(&e) }.unwrap();
        let want: HostEvent = serde_json::from_str(
            r#"{"timestamp":"2023-11-14T22:13:20Z","host":"ws-17","platform":"linux","event":"network_connect","pid":4242,"image":"/usr/bin/python3","proto":"tcp","dest_ip":"203.0.113.9","dest_port":4444}"#,
        )
        .unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn short_struct_size_and_unknown_numbers_are_invalid_parameters() {
        let host = CString::new("h").unwrap();
        let mut e = zeroed();
        e.host = host.as_ptr();
        e.struct_size = 8;
        // SAFETY: a complete struct; only its struct_size lies.
        assert_eq!(
            unsafe { host_event_in(&e) },
            Err(entrospect_status::InvalidParameter)
        );
        for (field, v) in [
            ("platform", 9u32),
            ("kind", 0),
            ("proto", 1),
            ("dst_family", 5),
        ] {
            let mut e = zeroed();
            e.host = host.as_ptr();
            match field {
                "platform" => e.platform = v,
                "kind" => e.kind = v,
                "proto" => e.proto = v,
                _ => e.dst_family = v,
            }
            // SAFETY: a complete struct with valid strings.
            let r = unsafe { host_event_in(&e) };
            assert_eq!(r, Err(entrospect_status::InvalidParameter), "{field}");
        }
    }

    #[test]
    fn missing_required_string_is_null_parameter() {
        let mut e = zeroed();
        e.kind = 1;
        let host = CString::new("h").unwrap();
        // SAFETY: a complete struct; host is NULL.
        assert_eq!(
            unsafe { host_event_in(&e) },
            Err(entrospect_status::NullParameter)
        );
        e.host = host.as_ptr();
        // SAFETY: a complete struct; image is NULL for a process start.
        assert_eq!(
            unsafe { host_event_in(&e) },
            Err(entrospect_status::NullParameter)
        );
    }
}

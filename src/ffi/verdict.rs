//! `entrospect_verdict`: one inline flow verdict as the verdict callback sees it.

use super::event::{addr, entrospect_addr_family, entrospect_severity, severity};
use crate::detect::verdict::{FlowVerdict, Verdict};
use std::ffi::{c_char, c_float, c_void};

/// What a product may do with a flow (see `entrospect::detect::verdict`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum entrospect_verdict_kind {
    /// `allow`: nothing fired by the end of the opening exchange; release the flow.
    Allow = 1,
    /// `alert`: an analytic fired; report it.
    Alert = 2,
    /// `block_suggested`: an analytic fired with enough weight to suggest cutting the flow.
    BlockSuggested = 3,
}

/// One inline flow verdict, handed to the callback set by
/// `entrospect_engine_set_verdict_callback`.
///
/// **Lifetime:** the struct and the strings it points at (`analytic`, `analytics`) are
/// borrowed for the duration of the callback call only; copy what you keep. Read a field
/// only when `struct_size` covers it (fields are only ever appended).
///
/// A flow gets at most one `ALLOW` and at most one `ALERT` or `BLOCK_SUGGESTED`; an alert
/// may follow an allow when later evidence makes an analytic fire.
#[repr(C)]
#[derive(Debug)]
pub struct entrospect_verdict {
    /// `sizeof(entrospect_verdict)` of the library that filled it in.
    pub struct_size: usize,
    /// The verdict.
    pub verdict: entrospect_verdict_kind,
    /// The flow's id, as in the `flow_id` of its events.
    pub flow_id: u64,
    /// Client (initiator) address.
    pub src_addr: [u8; 16],
    /// Family of `src_addr`.
    pub src_family: entrospect_addr_family,
    /// Server (responder) address.
    pub dst_addr: [u8; 16],
    /// Family of `dst_addr`.
    pub dst_family: entrospect_addr_family,
    /// Client port.
    pub src_port: u16,
    /// Server port.
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, ...).
    pub ip_proto: u8,
    /// Whether an alert was joined to the process that opened the flow.
    pub process_joined: bool,
    /// The flow ended before (or when) the verdict was decided.
    pub at_flow_end: bool,
    /// Strongest analytic that fired (`"AN0404"`), NUL-terminated; NULL for `ALLOW`.
    pub analytic: *const c_char,
    /// Every analytic that fired, strongest first, comma-separated (`"AN0404,AN1496"`),
    /// NUL-terminated; NULL for `ALLOW`.
    pub analytics: *const c_char,
    /// Highest severity among them; `ENTROSPECT_SEVERITY_NONE` for `ALLOW`.
    pub severity: entrospect_severity,
    /// Highest score among them in [0, 1]; 0 for `ALLOW`.
    pub score: c_float,
    /// Packets of the flow so far, both directions, the deciding one included.
    pub packets: u64,
    /// Payload-carrying packets so far: the verdict was decided on this one (0 when the
    /// flow carried no payload).
    pub payload_packets: u64,
    /// Packet time of the decision, nanoseconds since the Unix epoch.
    pub decided_ns: u64,
    /// Packet time of the flow's first payload byte; 0 when it carried none.
    pub first_payload_ns: u64,
    /// `decided_ns - first_payload_ns` (0 without payload).
    pub latency_ns: u64,
}

/// The verdict callback: `userdata` as given to `entrospect_engine_set_verdict_callback`,
/// then the verdict, borrowed for the duration of the call. It is called from inside the
/// feeding call that decided the verdict (usually `entrospect_engine_process_*`), on the
/// thread making that call: keep it short.
///
/// The callback must not unwind and must not call functions on the engine that is
/// delivering to it (they return `ENTROSPECT_STATUS_REENTRANT`).
pub type entrospect_verdict_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, verdict: *const entrospect_verdict)>;

/// The C callback with its userdata and the buffers a verdict's strings live in.
pub(crate) struct VerdictSink {
    cb: unsafe extern "C" fn(userdata: *mut c_void, verdict: *const entrospect_verdict),
    userdata: *mut c_void,
    analytic: Vec<u8>,
    analytics: Vec<u8>,
}

// SAFETY: the sink only passes `userdata` back to the caller's callback. The C ABI lets an
// engine move between threads between calls (ffi conventions, "Threads"), and
// `entrospect_engine_set_verdict_callback` documents that the callback may then be called
// with `userdata` on whichever thread feeds the engine; calls never overlap because the
// engine is used by one thread at a time.
unsafe impl Send for VerdictSink {}

impl VerdictSink {
    pub(crate) fn new(
        cb: unsafe extern "C" fn(userdata: *mut c_void, verdict: *const entrospect_verdict),
        userdata: *mut c_void,
    ) -> VerdictSink {
        VerdictSink {
            cb,
            userdata,
            analytic: Vec::new(),
            analytics: Vec::new(),
        }
    }

    /// Describe `v` for C and call the callback.
    pub(crate) fn deliver(&mut self, v: &FlowVerdict) {
        let (src_addr, src_family) = addr(v.client_ip);
        let (dst_addr, dst_family) = addr(v.server_ip);
        let alerting = v.verdict != Verdict::Allow;
        self.analytic.clear();
        self.analytics.clear();
        if alerting {
            self.analytic
                .extend_from_slice(v.analytics.first().copied().unwrap_or("").as_bytes());
            self.analytic.push(0);
            for (i, a) in v.analytics.iter().enumerate() {
                if i > 0 {
                    self.analytics.push(b',');
                }
                self.analytics.extend_from_slice(a.as_bytes());
            }
            self.analytics.push(0);
        }
        let c = entrospect_verdict {
            struct_size: size_of::<entrospect_verdict>(),
            verdict: match v.verdict {
                Verdict::Allow => entrospect_verdict_kind::Allow,
                Verdict::Alert => entrospect_verdict_kind::Alert,
                Verdict::BlockSuggested => entrospect_verdict_kind::BlockSuggested,
            },
            flow_id: v.flow_id,
            src_addr,
            src_family,
            dst_addr,
            dst_family,
            src_port: v.client_port,
            dst_port: v.server_port,
            ip_proto: v.proto,
            process_joined: v.process_joined,
            at_flow_end: v.at_flow_end,
            analytic: if alerting {
                self.analytic.as_ptr().cast()
            } else {
                std::ptr::null()
            },
            analytics: if alerting {
                self.analytics.as_ptr().cast()
            } else {
                std::ptr::null()
            },
            severity: v
                .severity
                .map_or(entrospect_severity::None, |s| severity(s.as_str())),
            score: v.score,
            packets: v.packets,
            payload_packets: v.payload_packets,
            decided_ns: v.decided_at.as_nanos(),
            first_payload_ns: v.first_payload.map_or(0, |t| t.as_nanos()),
            latency_ns: v.latency_ns,
        };
        // SAFETY: `cb` was given by the caller as a valid function of this type, to be
        // called with `userdata` until replaced; `c` and the buffers its strings point
        // into live until after the call returns.
        unsafe { (self.cb)(self.userdata, &c) };
    }
}

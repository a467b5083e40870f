//! The flow record written straight to bytes.
//!
//! A flow record is most of what the engine writes (one per flow, ~1.4 KB with its two
//! entropy objects), and serde's derived path spends most of its time on the generic map
//! machinery: every key is escaped at run time, the flattened header and the internally
//! tagged enum go through `serialize_map`. Here the keys are byte literals, integers go
//! through `itoa`, and everything whose text serde_json decides (floats, escaped strings,
//! enum names) is still written by serde_json itself, so the bytes are the same by
//! construction. `tests` compares the two writers on every flow record of real captures.

use super::eve::{
    EntropySection, EventHeader, FlowEvent, FlowSection, ProtocolSection, TcpSection,
};
use crate::inspect::entropy::Randomness;
use crate::time::Timestamp;
use std::io;
use std::net::IpAddr;

/// Append `ev` as serde_json would write `Event::Flow(ev)` (without the newline).
pub(super) fn write_flow(out: &mut Vec<u8>, ev: &FlowEvent) -> io::Result<()> {
    out.extend_from_slice(br#"{"event_type":"flow""#);
    header(out, &ev.header)?;
    out.extend_from_slice(br#","flow":"#);
    flow(out, &ev.flow)?;
    if let Some(t) = &ev.tcp {
        out.extend_from_slice(br#","tcp":"#);
        tcp(out, t)?;
    }
    out.extend_from_slice(br#","entropy":"#);
    entropy(out, &ev.entropy)?;
    if let Some(p) = &ev.protocol {
        out.extend_from_slice(br#","protocol":"#);
        protocol(out, p)?;
    }
    out.push(b'}');
    Ok(())
}

fn header(out: &mut Vec<u8>, h: &EventHeader) -> io::Result<()> {
    out.extend_from_slice(br#","timestamp":"#);
    timestamp(out, h.timestamp)?;
    out.extend_from_slice(br#","flow_id":"#);
    int(out, h.flow_id);
    out.extend_from_slice(br#","src_ip":"#);
    ip(out, h.src_ip)?;
    out.extend_from_slice(br#","src_port":"#);
    int(out, h.src_port);
    out.extend_from_slice(br#","dest_ip":"#);
    ip(out, h.dest_ip)?;
    out.extend_from_slice(br#","dest_port":"#);
    int(out, h.dest_port);
    out.extend_from_slice(br#","proto":"#);
    string(out, h.proto)?;
    if let Some(a) = h.app_proto {
        out.extend_from_slice(br#","app_proto":"#);
        string(out, a)?;
    }
    Ok(())
}

fn flow(out: &mut Vec<u8>, f: &FlowSection) -> io::Result<()> {
    out.extend_from_slice(br#"{"pkts_toserver":"#);
    int(out, f.pkts_toserver);
    out.extend_from_slice(br#","pkts_toclient":"#);
    int(out, f.pkts_toclient);
    out.extend_from_slice(br#","bytes_toserver":"#);
    int(out, f.bytes_toserver);
    out.extend_from_slice(br#","bytes_toclient":"#);
    int(out, f.bytes_toclient);
    out.extend_from_slice(br#","start":"#);
    timestamp(out, f.start)?;
    out.extend_from_slice(br#","end":"#);
    timestamp(out, f.end)?;
    out.extend_from_slice(br#","age":"#);
    int(out, f.age);
    out.extend_from_slice(br#","state":"#);
    string(out, f.state)?;
    out.extend_from_slice(br#","reason":"#);
    string(out, f.reason)?;
    out.extend_from_slice(br#","alerted":"#);
    boolean(out, f.alerted);
    out.extend_from_slice(br#","payload_bytes_toserver":"#);
    int(out, f.payload_bytes_toserver);
    out.extend_from_slice(br#","payload_bytes_toclient":"#);
    int(out, f.payload_bytes_toclient);
    if f.gap_bytes != 0 {
        out.extend_from_slice(br#","gap_bytes":"#);
        int(out, f.gap_bytes);
    }
    out.push(b'}');
    Ok(())
}

fn tcp(out: &mut Vec<u8>, t: &TcpSection) -> io::Result<()> {
    out.extend_from_slice(br#"{"tcp_flags":"#);
    string(out, &t.tcp_flags)?;
    out.extend_from_slice(br#","tcp_flags_ts":"#);
    string(out, &t.tcp_flags_ts)?;
    out.extend_from_slice(br#","tcp_flags_tc":"#);
    string(out, &t.tcp_flags_tc)?;
    out.extend_from_slice(br#","syn":"#);
    boolean(out, t.syn);
    out.extend_from_slice(br#","fin":"#);
    boolean(out, t.fin);
    out.extend_from_slice(br#","rst":"#);
    boolean(out, t.rst);
    out.extend_from_slice(br#","psh":"#);
    boolean(out, t.psh);
    out.extend_from_slice(br#","ack":"#);
    boolean(out, t.ack);
    out.extend_from_slice(br#","state":"#);
    serde_json::to_writer(&mut *out, &t.state).map_err(io::Error::other)?;
    out.push(b'}');
    Ok(())
}

fn entropy(out: &mut Vec<u8>, e: &EntropySection) -> io::Result<()> {
    out.push(b'{');
    if let Some(r) = &e.toserver {
        out.extend_from_slice(br#""toserver":"#);
        randomness(out, r)?;
    }
    if let Some(r) = &e.toclient {
        if e.toserver.is_some() {
            out.push(b',');
        }
        out.extend_from_slice(br#""toclient":"#);
        randomness(out, r)?;
    }
    out.push(b'}');
    Ok(())
}

fn randomness(out: &mut Vec<u8>, r: &Randomness) -> io::Result<()> {
    out.extend_from_slice(br#"{"bits_per_byte":"#);
    float(out, r.bits_per_byte)?;
    out.extend_from_slice(br#","sample_len":"#);
    int(out, r.sample_len);
    out.extend_from_slice(br#","expected_random":"#);
    float(out, r.expected_random)?;
    out.extend_from_slice(br#","score":"#);
    float(out, r.score)?;
    out.extend_from_slice(br#","z_score":"#);
    float(out, r.z_score)?;
    out.extend_from_slice(br#","p_value":"#);
    float(out, r.p_value)?;
    out.extend_from_slice(br#","printable_ratio":"#);
    float(out, r.printable_ratio)?;
    out.extend_from_slice(br#","popcount_mean":"#);
    float(out, r.popcount_mean)?;
    out.extend_from_slice(br#","chi_square":"#);
    float(out, r.chi_square)?;
    out.extend_from_slice(br#","longest_printable_run":"#);
    int(out, r.longest_printable_run);
    out.extend_from_slice(br#","first_bytes_printable":"#);
    boolean(out, r.first_bytes_printable);
    out.push(b'}');
    Ok(())
}

fn protocol(out: &mut Vec<u8>, p: &ProtocolSection) -> io::Result<()> {
    out.extend_from_slice(br#"{"name":"#);
    string(out, p.name)?;
    out.extend_from_slice(br#","evidence":"#);
    string(out, &p.evidence)?;
    out.extend_from_slice(br#","encrypted":"#);
    boolean(out, p.encrypted);
    out.push(b'}');
    Ok(())
}

fn int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn boolean(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// serde_json's own float text (shortest round trip; `null` for NaN and infinities).
fn float(out: &mut Vec<u8>, v: f64) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &v).map_err(io::Error::other)
}

/// A JSON string: written as is when nothing in it needs escaping, else by serde_json.
fn string(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, s).map_err(io::Error::other)
    }
}

fn timestamp(out: &mut Vec<u8>, t: Timestamp) -> io::Result<()> {
    t.write_json(out);
    Ok(())
}

fn ip(out: &mut Vec<u8>, a: IpAddr) -> io::Result<()> {
    match a {
        IpAddr::V4(v4) => {
            out.push(b'"');
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                int(out, o);
            }
            out.push(b'"');
            Ok(())
        }
        IpAddr::V6(_) => serde_json::to_writer(&mut *out, &a).map_err(io::Error::other),
    }
}

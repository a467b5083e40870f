//! Output: the events the engine emits and their EVE-style JSON form.
//!
//! One JSON object per line, with the field names and meanings of Suricata's EVE format
//! where EVE has the field (`timestamp`, `flow_id`, `event_type`, `src_ip`, `src_port`,
//! `dest_ip`, `dest_port`, `proto`, `app_proto`, `flow{...}`, `tls{...}`, `alert{...}`), so
//! that pipelines that ingest Suricata's `eve.json` take it unchanged; fields EVE lacks
//! (`entropy`, `protocol`, `alert.analytic`, `alert.reasons` ...) are added under their own
//! names. `src` is always the flow's client and `dest` its server.

mod eve;
mod fast;
pub mod stats;

pub use eve::{
    AlertEvent, AlertProcess, AlertSection, EntropySection, Event, EventHeader, FlowEvent,
    FlowSection, ProtocolSection, Severity, TcpSection, TlsEvent, eve_severity, proto_name,
};
pub use stats::StatsEvent;

use std::io::{self, Write};

/// Something that receives events.
pub trait Sink {
    /// One event.
    fn event(&mut self, ev: &Event);
}

impl Sink for Vec<Event> {
    fn event(&mut self, ev: &Event) {
        self.push(ev.clone());
    }
}

impl<F: FnMut(&Event)> Sink for F {
    fn event(&mut self, ev: &Event) {
        self(ev)
    }
}

/// Writes events as JSON lines; remembers the first I/O error instead of panicking.
pub struct EveWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    error: Option<io::Error>,
    written: u64,
}

impl<W: Write> EveWriter<W> {
    /// A writer over `out` (buffer it: `BufWriter`).
    pub fn new(out: W) -> Self {
        EveWriter {
            out,
            buf: Vec::with_capacity(1024),
            error: None,
            written: 0,
        }
    }

    /// Write one event as a line.
    ///
    /// # Errors
    /// The I/O error of the underlying writer.
    pub fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        self.buf.clear();
        match ev {
            // Most of the output: written without serde's map machinery, same bytes.
            Event::Flow(f) => fast::write_flow(&mut self.buf, f)?,
            _ => serde_json::to_writer(&mut self.buf, ev).map_err(io::Error::other)?,
        }
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)?;
        self.written += 1;
        Ok(())
    }

    /// Lines written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flush and return the first error met by [`Sink::event`], if any.
    ///
    /// # Errors
    /// The first I/O error.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Sink for EveWriter<W> {
    fn event(&mut self, ev: &Event) {
        if self.error.is_none()
            && let Err(e) = self.write_event(ev)
        {
            self.error = Some(e);
        }
    }
}

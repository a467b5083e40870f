//! The capture buffer: a read-only memory map of a capture file, or an owned `Vec<u8>`.
//!
//! This file holds the project's one memory-map call. Regular, non-empty files are mapped
//! (zero copy, the kernel pages them in as the iterator walks forward); pipes, character
//! devices such as `/dev/stdin`, empty files (mapping 0 bytes fails) and files whose mapping
//! fails are read into memory instead, up to [`MAX_READ_BYTES`].
#![allow(unsafe_code)] // the one `Mmap::map` call of the project; see the SAFETY note below

use std::fs::File;
use std::io::{self, Read};
use std::ops::Deref;
use std::path::Path;

/// The most bytes read into memory from a source that is not mapped (a pipe, a device).
pub const MAX_READ_BYTES: u64 = 4 << 30;

/// Bytes of a capture: a read-only memory map or an owned vector. Derefs to `&[u8]`.
#[derive(Debug)]
pub struct CaptureBuffer {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl CaptureBuffer {
    /// Map `path` when it is a regular non-empty file, else read it (bounded by
    /// [`MAX_READ_BYTES`]).
    ///
    /// The map is of a file that another process must not truncate while it is open (see
    /// the SAFETY note in the source): use [`CaptureBuffer::read`] for a file that is still
    /// being written.
    ///
    /// # Errors
    /// Any I/O error from opening, mapping-then-reading, or reading; `InvalidData` when an
    /// unmapped source exceeds [`MAX_READ_BYTES`].
    pub fn open(path: impl AsRef<Path>) -> io::Result<CaptureBuffer> {
        let file = File::open(path.as_ref())?;
        let meta = file.metadata()?;
        if meta.is_file() && meta.len() > 0 {
            // Why the mapping below is sound: `Mmap::map` is unsafe because the mapped
            // file may change under us. The map is read-only and private to this process; the checks that make the
            // use sound in practice are (1) `meta.is_file()` above, so this is a finished
            // regular file and not a device or pipe whose contents are produced on read,
            // and (2) the parsers read each length field once into a local and bound every
            // slice by `len()` of this mapping, so a concurrent *modification* yields wrong
            // bytes, never an out-of-bounds access. A concurrent *truncation* by another
            // process makes the kernel raise SIGBUS on the next access to a page past the
            // new end of file, which kills the process: we accept that for capture files,
            // which analysts replay after the capture is closed, and document it on `open`;
            // callers that replay a file still being written use `CaptureBuffer::read`,
            // which copies the bytes and cannot fault.
            // SAFETY: `meta.is_file()` was checked above; the map is read-only and private,
            // and every slice taken from it is bounded by its `len()` (reasons above).
            let map = unsafe { memmap2::Mmap::map(&file) };
            if let Ok(map) = map {
                #[cfg(unix)]
                {
                    // Advice only: a failure changes nothing but read-ahead.
                    let _ = map.advise(memmap2::Advice::Sequential);
                }
                return Ok(CaptureBuffer {
                    inner: Inner::Mapped(map),
                });
            }
        }
        read_bounded(file).map(CaptureBuffer::from_vec)
    }

    /// Read `path` into memory (bounded by [`MAX_READ_BYTES`]), never mapping it.
    ///
    /// # Errors
    /// Any I/O error; `InvalidData` when the file exceeds [`MAX_READ_BYTES`].
    pub fn read(path: impl AsRef<Path>) -> io::Result<CaptureBuffer> {
        let file = File::open(path.as_ref())?;
        read_bounded(file).map(CaptureBuffer::from_vec)
    }

    /// Wrap bytes already in memory.
    pub fn from_vec(bytes: Vec<u8>) -> CaptureBuffer {
        CaptureBuffer {
            inner: Inner::Owned(bytes),
        }
    }

    /// Whether the bytes are a memory map of the file (rather than a copy).
    pub fn is_mapped(&self) -> bool {
        matches!(self.inner, Inner::Mapped(_))
    }
}

fn read_bounded(file: File) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    // One byte past the cap tells "exactly the cap" from "more than the cap".
    file.take(MAX_READ_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_READ_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("capture source exceeds the {MAX_READ_BYTES}-byte read cap"),
        ));
    }
    Ok(bytes)
}

impl Deref for CaptureBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            Inner::Mapped(map) => map,
            Inner::Owned(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for CaptureBuffer {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("entrospect-mmap-{}-{name}", std::process::id()))
    }

    #[test]
    fn regular_file_is_mapped_and_reads_back() {
        let path = temp_path("regular");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"0123456789").unwrap();
        drop(f);
        let buf = CaptureBuffer::open(&path).unwrap();
        assert!(buf.is_mapped());
        assert_eq!(&buf[..], b"0123456789");
        let copy = CaptureBuffer::read(&path).unwrap();
        assert!(!copy.is_mapped());
        assert_eq!(&copy[..], b"0123456789");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn empty_file_falls_back_to_read() {
        let path = temp_path("empty");
        File::create(&path).unwrap();
        let buf = CaptureBuffer::open(&path).unwrap();
        assert!(!buf.is_mapped());
        assert!(buf.is_empty());
        std::fs::remove_file(&path).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn non_regular_file_is_read_not_mapped() {
        // /dev/null is a character device: mapping is skipped, reading gives 0 bytes.
        let buf = CaptureBuffer::open("/dev/null").unwrap();
        assert!(!buf.is_mapped());
        assert!(buf.is_empty());
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err = CaptureBuffer::open(temp_path("does-not-exist")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}

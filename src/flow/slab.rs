//! Flow slots in fixed-size chunks.
//!
//! A `Vec` of slots doubles its capacity when it grows: at 20 000 flows it holds room for
//! 32 768, and each doubling copies every flow. Chunks of [`CHUNK`] slots grow one chunk at
//! a time, never move a flow, and leave at most one partly used chunk.

/// Slots per chunk.
const CHUNK: usize = 256;

/// Slots addressed by a `u32` index, each empty or holding a `T`.
pub(super) struct Slab<T> {
    chunks: Vec<Box<[Option<T>]>>,
    len: usize,
}

impl<T> Slab<T> {
    /// No slots.
    pub(super) fn new() -> Self {
        Slab {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Slots handed out so far (empty ones included).
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The slot at `idx`, if it was handed out.
    pub(super) fn get(&self, idx: u32) -> Option<&Option<T>> {
        let i = idx as usize;
        if i >= self.len {
            return None;
        }
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    /// The slot at `idx` for writing, if it was handed out.
    pub(super) fn get_mut(&mut self, idx: u32) -> Option<&mut Option<T>> {
        let i = idx as usize;
        if i >= self.len {
            return None;
        }
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// A new slot holding `value`; its index.
    pub(super) fn push(&mut self, value: T) -> u32 {
        let i = self.len;
        if i.is_multiple_of(CHUNK) && i / CHUNK >= self.chunks.len() {
            self.chunks
                .push(std::iter::repeat_with(|| None).take(CHUNK).collect());
        }
        if let Some(s) = self
            .chunks
            .get_mut(i / CHUNK)
            .and_then(|c| c.get_mut(i % CHUNK))
        {
            *s = Some(value);
        }
        self.len += 1;
        i as u32
    }

    /// Every slot handed out, with its index.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &Option<T>)> {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .take(self.len)
            .enumerate()
            .map(|(i, s)| (i as u32, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_their_index_across_chunk_boundaries() {
        let mut s = Slab::new();
        for v in 0..(3 * CHUNK + 7) {
            assert_eq!(s.push(v) as usize, v);
        }
        assert_eq!(s.len(), 3 * CHUNK + 7);
        assert_eq!(s.chunks.len(), 4, "one partly used chunk at most");
        for v in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 1, 3 * CHUNK + 6] {
            assert_eq!(s.get(v as u32), Some(&Some(v)));
        }
        assert_eq!(s.get((3 * CHUNK + 7) as u32), None, "past the end");
        if let Some(slot) = s.get_mut(CHUNK as u32) {
            *slot = None;
        }
        assert_eq!(s.get(CHUNK as u32), Some(&None));
        let seen: Vec<u32> = s.iter().filter_map(|(i, v)| v.map(|_| i)).collect();
        assert_eq!(seen.len(), 3 * CHUNK + 6);
        assert!(!seen.contains(&(CHUNK as u32)));
    }
}

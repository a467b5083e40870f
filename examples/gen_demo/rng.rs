//! Deterministic pseudo-randomness for the generator: a ChaCha20 keystream keyed by a label.
//!
//! Everything random in the demo (ISNs, payload bytes, rustls client/server randoms, the
//! X25519 ephemeral keys, certificate keys) comes from one of these, so that
//! `cargo run --example gen_demo` writes the same bytes every time.

use chacha20::cipher::StreamCipher;
use chacha20::{ChaCha20, Key, KeyIvInit, Nonce};

/// A reproducible byte stream: the ChaCha20 keystream under a key derived from a label.
pub struct Keystream {
    cipher: ChaCha20,
}

impl Keystream {
    /// A stream keyed by `label` (distinct labels give unrelated streams).
    pub fn new(label: &str) -> Keystream {
        let mut key = [0u8; 32];
        // Spread the label over the key; the salt keeps short labels apart from zeros.
        for (i, b) in label.bytes().enumerate() {
            if let Some(slot) = key.get_mut(i % 32) {
                *slot = slot.rotate_left(3) ^ b;
            }
        }
        for (slot, salt) in key.iter_mut().zip(b"entrospect demo capture generator") {
            *slot ^= salt;
        }
        let nonce = [0u8; 12];
        Keystream {
            cipher: ChaCha20::new(&Key::from(key), &Nonce::from(nonce)),
        }
    }

    /// Fills `buf` with the next keystream bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(0);
        self.cipher.apply_keystream(buf);
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }

    /// The next 32-bit value.
    pub fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_be_bytes(b)
    }

    /// A value in `lo..=hi` (slightly biased; fine for a demo).
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        let span = hi.saturating_sub(lo).saturating_add(1);
        lo.saturating_add(self.next_u32() % span.max(1))
    }
}

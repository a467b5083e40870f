//! Arbitrary bytes, window and split points: every kernel gives the reference's
//! histogram and randomness, and an accumulator fed in pieces equals one-shot
//! measurement of the bytes its window admitted.
#![no_main]

use entrospect::inspect::entropy::{EntropyAccumulator, Kernel, Randomness};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, Vec<u16>, &[u8])| {
    let (window, splits, bytes) = input;
    let want = Kernel::reference().histogram(bytes);
    let want_r = Randomness::of_with(Kernel::reference(), bytes);
    for k in Kernel::available() {
        assert_eq!(k.histogram(bytes), want, "kernel {}", k.name());
        assert_eq!(Randomness::of_with(k, bytes), want_r, "kernel {}", k.name());

        let mut cuts: Vec<usize> = splits.iter().map(|&s| usize::from(s) % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        let mut acc = EntropyAccumulator::new(usize::from(window));
        let mut start = 0;
        let mut taken = 0;
        for c in cuts {
            taken += acc.update_with(k, &bytes[start..c]);
            start = c;
        }
        let admitted = bytes.len().min(usize::from(window));
        assert_eq!(taken, admitted);
        assert_eq!(acc.randomness(), Randomness::of_with(Kernel::reference(), &bytes[..admitted]));
    }
});

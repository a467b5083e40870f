//! Zero allocation per packet in steady state: a counting global allocator shows that
//! allocations grow with the number of flows, not with the number of packets.

#![allow(unsafe_code)] // a counting global allocator must implement the unsafe GlobalAlloc trait (test only)
use entrospect::capture::LinkType;
use entrospect::{Config, Engine, Timestamp};
use etherparse::PacketBuilder;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `flows` TCP connections of `segs` data segments each, interleaved.
fn traffic(flows: u16, segs: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let payload = [0x5au8; 1000];
    let build = |sp: u16, seq: u32, syn: bool, p: &[u8]| {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(sp, 80, seq, 1000);
        let b = if syn { b.syn() } else { b.ack(1) };
        let mut v = Vec::new();
        b.write(&mut v, p).expect("build");
        v
    };
    for f in 0..flows {
        out.push(build(1000 + f, 0, true, &[]));
    }
    for s in 0..segs {
        for f in 0..flows {
            out.push(build(1000 + f, 1 + s * 1000, false, &payload));
        }
    }
    out
}

fn allocs_for(frames: &[Vec<u8>]) -> u64 {
    let mut e = Engine::new(Config::default()).expect("valid config");
    let before = ALLOCS.load(Ordering::Relaxed);
    for (i, f) in frames.iter().enumerate() {
        e.process_packet(Timestamp(i as u64), LinkType::ETHERNET, f);
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    drop(e);
    after - before
}

#[test]
fn allocations_grow_with_flows_not_packets() {
    // Same flows, 10x the packets: the allocation count must not grow with packets.
    let few = traffic(50, 20);
    let many = traffic(50, 200);
    let a_few = allocs_for(&few);
    let a_many = allocs_for(&many);
    eprintln!(
        "allocations: {a_few} for {} packets, {a_many} for {} packets (50 flows)",
        few.len(),
        many.len()
    );
    assert!(
        a_many <= a_few + 16,
        "allocations grew with packets: {a_few} -> {a_many}"
    );
    // Twice the flows: allocations may grow, roughly in proportion.
    let more_flows = allocs_for(&traffic(100, 20));
    assert!(
        more_flows > a_few,
        "a flow that allocates nothing is suspicious: {a_few} vs {more_flows}"
    );
}

//! Issue 23, the probe's method as a regression test: one file of a study changed per run (byte
//! flips, insertions, overwritten lengths), thousands of runs. Every run must end in a volume or
//! a coded defect — no panic, no abort — and allocate at most a bounded amount however the
//! headers lie (this binary counts every allocation).
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use spinescreen_ingest::{build_volume, IngestLimits, SourceFile};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A small deterministic generator (xorshift64*), so a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `file`, in the header (the first 1,500 bytes) where lengths live.
fn mutate(file: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = file.to_vec();
    let header = out.len().min(1_500);
    for _ in 0..1 + rng.below(4) {
        let at = 128 + rng.below(header - 128);
        match rng.below(5) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = 0xFF,
            2 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            3 => {
                // A lying length: 0xFFFFFFF0, or undefined.
                let v = if rng.below(2) == 0 {
                    0xFFFF_FFF0u32
                } else {
                    u32::MAX
                };
                let end = (at + 4).min(out.len());
                out.splice(at..end, v.to_le_bytes());
            }
            _ => {
                out.drain(at..(at + 1 + rng.below(16)).min(out.len()));
            }
        }
    }
    out
}

#[test]
fn two_thousand_mutated_studies_end_in_a_result_within_bounded_memory() {
    let spec = SeriesSpec {
        slices: 10,
        ..SeriesSpec::default()
    };
    let files = spec.files();
    let limits = IngestLimits {
        min_slices: 8,
        ..IngestLimits::default()
    };
    let study_bytes: usize = files.iter().map(|f| f.bytes.len()).sum();
    let mut rng = Rng(0x5EED_2323);
    let (mut volumes, mut defects) = (0, 0);
    for run in 0..2_000 {
        let victim = rng.below(files.len());
        let mut study: Vec<SourceFile> = files.clone();
        study[victim].bytes = Bytes::from(mutate(&files[victim].bytes, &mut rng));
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let outcome = std::panic::catch_unwind(|| build_volume(&study, &limits));
        let peak = PEAK.load(Ordering::Relaxed) - before;
        match outcome {
            Ok(Ok(_)) => volumes += 1,
            Ok(Err(reason)) => {
                assert!(!reason.code.is_empty(), "run {run}: uncoded defect");
                defects += 1;
            }
            Err(_) => panic!("run {run}: build_volume panicked"),
        }
        // The study is ~{study_bytes} bytes; the probe saw 4 GB from such headers.
        assert!(
            peak < 32 * study_bytes.max(1 << 20),
            "run {run}: {peak} bytes allocated for a {study_bytes}-byte study"
        );
    }
    assert!(
        volumes > 0 && defects > 0,
        "{volumes} volumes, {defects} defects"
    );
}

//! Freed memory handed back to the system at once, for the long-running worker processes.
//!
//! glibc serves an allocation of 128 KiB or more with its own `mmap`, returned to the system
//! when freed, but raises that threshold to the size of each such block freed (up to 32 MiB).
//! In a long-running worker the working buffers (received files, ≈ 0.5 MiB each at 512²; the
//! detector's scratch planes and profiles, up to tens of MiB) then come from the heap arenas,
//! one per thread that allocated, and each arena keeps what is freed. Measured on 512² × 400
//! studies: ingest's second study peaks at 453 MiB with the dynamic threshold and 242 MiB with
//! it fixed (`spinescreen-ingest`'s `examples/ingest_peak.rs`); the inference worker of the
//! fleet run (`scripts/fleet-measure.sh`, 12 studies) peaked at 690 MiB and still held 435 MiB
//! when idle with the dynamic threshold, against a 316 MiB peak of the detection itself
//! (`spinescreen-inference`'s `examples/detect_memory.rs`).

/// glibc's default mmap threshold.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Fix glibc's mmap threshold at its default, 128 KiB, which also stops its dynamic
/// adjustment (`mallopt(M_MMAP_THRESHOLD)`, as `MALLOC_MMAP_THRESHOLD_` would). Process-wide;
/// `true` when applied, `false` on other C libraries (nothing to do).
pub fn fix_mmap_threshold() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters (under glibc's arena locks); it
        // takes no pointers and may be called at any time.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = MMAP_THRESHOLD;
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_threshold() {
        assert!(super::fix_mmap_threshold());
    }
}

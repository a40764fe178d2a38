//! Developer aid: peak resident memory of one detection on a full-size phantom.
//!
//! `detect_memory [SEED]` generates the 512² × 400 phantom, resets the kernel's high-water mark
//! (`/proc/self/clear_refs`), detects, and prints the peak RSS during detection next to the
//! volume's own size (Linux only).
use spinescreen_inference::{ClassicalDetector, Detector};
use spinescreen_phantom::{generate, PhantomSpec};

/// Resident memory (`VmRSS`) and its peak (`VmHWM`) now, MiB.
fn memory_mib() -> anyhow::Result<(f64, f64)> {
    let (rss, hwm) = spinescreen_runtime::process_memory::read_own()
        .ok_or_else(|| anyhow::anyhow!("/proc/self/status unreadable"))?;
    Ok((rss as f64 / 1048576.0, hwm as f64 / 1048576.0))
}

fn main() -> anyhow::Result<()> {
    let seed = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let volume = generate(&PhantomSpec {
        seed,
        ..Default::default()
    })?
    .volume;
    let volume_mib = (volume.voxels.len() * 2) as f64 / (1024.0 * 1024.0);
    std::fs::write("/proc/self/clear_refs", "5")?;
    let before = memory_mib()?.0;
    let t = std::time::Instant::now();
    let detection = ClassicalDetector::default().detect(&volume);
    let elapsed = t.elapsed();
    let peak = memory_mib()?.1;
    println!(
        "seed {seed}: volume {volume_mib:.0} MiB, RSS before {before:.0} MiB, peak during detection {peak:.0} MiB (+{:.0}), {} vertebrae, {:.2} s",
        peak - before,
        detection.vertebrae.len(),
        elapsed.as_secs_f64()
    );
    // Repeated on fresh threads (as a worker's blocking pool does): what stays resident.
    let volume = std::sync::Arc::new(volume);
    for round in 0..4 {
        let v = volume.clone();
        std::thread::spawn(move || ClassicalDetector::default().detect(&v))
            .join()
            .map_err(|_| anyhow::anyhow!("detection thread panicked"))?;
        println!(
            "round {round}: RSS after {:.0} MiB, peak {:.0} MiB",
            memory_mib()?.0,
            memory_mib()?.1
        );
    }
    Ok(())
}

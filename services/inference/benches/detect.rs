//! Detection time on a full-size chest CT phantom (512² × 400 slices of 1 mm), one thread.
// Test and tool code: a failed unwrap is the failure report (rust-clippy #11119: helpers
// outside `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]
use criterion::{criterion_group, criterion_main, Criterion};
use spinescreen_inference::{ring_correction::RingCorrection, ClassicalDetector, Detector};
use spinescreen_phantom::{generate, PhantomSpec};

fn bench(c: &mut Criterion) {
    let ph = generate(&PhantomSpec {
        seed: 5,
        ..Default::default()
    })
    .expect("phantom");
    let det = ClassicalDetector::default();
    let mut g = c.benchmark_group("detect");
    g.sample_size(10);
    g.bench_function("classical_512x512x400", |b| {
        b.iter(|| det.detect(&ph.volume))
    });
    // The part of it that looks for ring artefacts (every study pays it).
    g.bench_function("ring_estimate_512x512x400", |b| {
        b.iter(|| RingCorrection::estimate(&ph.volume, det.config().ring_correction_min_hu))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

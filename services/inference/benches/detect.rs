//! Detection time on a full-size chest CT phantom (512² × 400 slices of 1 mm), one thread.
use criterion::{criterion_group, criterion_main, Criterion};
use spinescreen_inference::{ClassicalDetector, Detector};
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
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Full-size phantom: 512² × 400 slices (T1–L2 at 1 mm), generation on one core and on all
//! cores, and generation plus writing the DICOM series; a `--population` study of the same size.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]
use criterion::{criterion_group, criterion_main, Criterion};
use spinescreen_phantom::{generate, write_dicom_series, PhantomSpec};
use std::hint::black_box;

fn full_size() -> PhantomSpec {
    PhantomSpec {
        seed: 42,
        fractures: vec!["L1:wedge:0.35".parse().expect("valid fracture")],
        ..PhantomSpec::default()
    }
}

fn bench(c: &mut Criterion) {
    let spec = full_size();
    let mut g = c.benchmark_group("phantom_512x512x400");
    g.sample_size(10);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    g.bench_function("generate_1_thread", |b| {
        b.iter(|| one.install(|| black_box(generate(&spec).expect("generates"))))
    });
    g.bench_function("generate_all_threads", |b| {
        b.iter(|| black_box(generate(&spec).expect("generates")))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    g.bench_function("generate_and_write_all_threads", |b| {
        b.iter(|| {
            let ph = generate(&spec).expect("generates");
            black_box(write_dicom_series(&ph, dir.path()).expect("writes"))
        })
    });
    g.finish();

    // A population study of the same size (seed 42's patient, 400 slices of 1 mm) and, for the
    // thick-slice cost, 100 slices of 5 mm (each the average of 4 sub-slices).
    let mut g = c.benchmark_group("population_512x512");
    g.sample_size(10);
    for (thickness, slices) in [(1.0, 400), (5.0, 100)] {
        let mut spec = spinescreen_phantom::population::draw(42);
        spec.slices = slices;
        spec.slice_thickness_mm = thickness;
        if let Some(p) = spec.population.as_mut() {
            p.slices_from_fov = false;
        }
        g.bench_function(
            format!("generate_{slices}x{thickness}mm_all_threads"),
            |b| b.iter(|| black_box(generate(&spec).expect("generates"))),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

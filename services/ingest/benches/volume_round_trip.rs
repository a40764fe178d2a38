//! The volume round trip (write to the store + read back into the array) of a 512 × 512 × 400
//! phantom CT, volume format 2 (zstd frames along z, streamed, [`write_volume`] / [`read_volume`])
//! against format 1 (raw `volume.i16`: one buffer written, one buffer read, then converted).
//!
//! Prints, for each format, the bytes stored against the raw size, and the best of five write and
//! read times. The store is a local directory, or an S3 bucket when
//! `SPINESCREEN_BENCH_S3_ENDPOINT` is set (with `SPINESCREEN_BENCH_S3_BUCKET`, `…_ACCESS_KEY`,
//! `…_SECRET_KEY`; e.g. an s3s-fs on 127.0.0.1).
//!
//! Run: `cargo bench -p spinescreen-ingest --bench volume_round_trip`.
//! `SPINESCREEN_BENCH_SLICES` overrides the slice count (default 400).
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spinescreen_phantom::{generate, PhantomSpec};
use spinescreen_proto::{HuVolume, StudyUid};
use spinescreen_runtime::volumes::{read_volume, write_volume};
use spinescreen_runtime::{StoreConfig, StudyStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn store(dir: &std::path::Path) -> StudyStore {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let config = match std::env::var("SPINESCREEN_BENCH_S3_ENDPOINT") {
        Ok(endpoint) => StoreConfig::S3 {
            endpoint,
            bucket: env("SPINESCREEN_BENCH_S3_BUCKET"),
            region: "us-east-1".into(),
            access_key: env("SPINESCREEN_BENCH_S3_ACCESS_KEY"),
            secret_key: env("SPINESCREEN_BENCH_S3_SECRET_KEY"),
            allow_http: true,
            unsigned_payload: false,
        },
        Err(_) => StoreConfig::Local {
            root: dir.to_path_buf(),
        },
    };
    StudyStore::from_config(&config).expect("store")
}

fn best(v: &[Duration]) -> f64 {
    v.iter().min().copied().unwrap_or_default().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let slices: usize = std::env::var("SPINESCREEN_BENCH_SLICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    eprintln!("generating a 512 × 512 × {slices} phantom…");
    let spec = PhantomSpec {
        seed: 3,
        matrix: 512,
        slices,
        slice_thickness_mm: 400.0 / slices as f64,
        ..Default::default()
    };
    let volume: Arc<HuVolume> = Arc::new(generate(&spec).expect("phantom").volume);
    let raw = volume.voxels.len() * 2;
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = store(tmp.path());
    let keys = StudyUid::new("1.2.826.0.1.3680043.10.1.7")
        .expect("uid")
        .keys();

    let (mut w2, mut r2, mut w1, mut r1) = (vec![], vec![], vec![], vec![]);
    let mut stored2 = 0;
    for _ in 0..5 {
        let t = Instant::now();
        write_volume(&store, &keys, volume.clone())
            .await
            .expect("write format 2");
        w2.push(t.elapsed());
        stored2 = store.get(&keys.volume_frames()).await.expect("get").len();
        let t = Instant::now();
        let back = read_volume(&store, &keys).await.expect("read format 2");
        r2.push(t.elapsed());
        assert!(back == *volume, "format 2 round trip changed the volume");
        drop(back);
        store
            .delete(&keys.volume_frames())
            .await
            .expect("delete frames");

        let t = Instant::now();
        store
            .put(&keys.volume_voxels(), volume.voxel_bytes())
            .await
            .expect("put");
        store
            .put(&keys.volume_header(), volume.header_bytes())
            .await
            .expect("put");
        w1.push(t.elapsed());
        let t = Instant::now();
        let header = store.get(&keys.volume_header()).await.expect("get");
        let voxels = store.get(&keys.volume_voxels()).await.expect("get");
        let back = HuVolume::from_bytes(&header, &voxels).expect("format 1");
        r1.push(t.elapsed());
        assert!(back == *volume, "format 1 round trip changed the volume");
        store.delete(&keys.volume_voxels()).await.expect("delete");
    }
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!("raw volume 512x512x{slices}: {:.1} MiB", mib(raw));
    println!(
        "format 2 (zstd frames): stored {:.1} MiB ({:.2} of raw); write {:.3} s, read {:.3} s, round trip {:.3} s ({:.0} MiB/s of raw)",
        mib(stored2),
        stored2 as f64 / raw as f64,
        best(&w2),
        best(&r2),
        best(&w2) + best(&r2),
        mib(raw) / (best(&w2) + best(&r2))
    );
    println!(
        "format 1 (raw i16):     stored {:.1} MiB (1.00 of raw); write {:.3} s, read {:.3} s, round trip {:.3} s ({:.0} MiB/s of raw)",
        mib(raw),
        best(&w1),
        best(&r1),
        best(&w1) + best(&r1),
        mib(raw) / (best(&w1) + best(&r1))
    );
}

//! `--population` (issue 18): over seeds 1–12 the drawn patients and studies span the screened
//! population, the truth records the draw, the anatomy carries air and normal wedging, and the
//! same seed gives the same bytes. Studies are drawn at 128² (the statistics come from the
//! truth, which does not depend on the matrix) to stay fast in a debug build.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use clap::Parser;
use sha2::{Digest, Sha256};
use spinescreen_phantom::cli::PhantomArgs;
use spinescreen_phantom::{generate, write_dicom_series, Phantom, PhantomSpec, Truth};
use std::collections::BTreeSet;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: PhantomArgs,
}

fn args(extra: &[&str]) -> PhantomArgs {
    let base = ["phantom", "--out", "/tmp/unused", "--population"];
    Cli::try_parse_from(base.iter().chain(extra.iter()).copied())
        .expect("arguments parse")
        .args
}

fn spec(seed: u64, extra: &[&str]) -> PhantomSpec {
    let s = seed.to_string();
    let mut all = vec!["--seed", s.as_str()];
    if !extra.contains(&"--matrix") {
        all.extend_from_slice(&["--matrix", "128"]);
    }
    all.extend_from_slice(extra);
    args(&all).spec()
}

fn studies() -> Vec<Phantom> {
    (1..=12)
        .map(|seed| generate(&spec(seed, &[])).expect("population phantom generates"))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn median_trabecular(t: &Truth) -> f64 {
    median(t.vertebrae.iter().map(|v| v.trabecular_hu).collect())
}

#[test]
fn seeds_1_to_12_span_the_screened_population() {
    let all = studies();
    let truths: Vec<&Truth> = all.iter().map(|p| &p.truth).collect();

    // Ages span ≥ 30 years, both sexes appear.
    let ages: Vec<u32> = truths.iter().map(|t| t.patient_age).collect();
    let span = ages.iter().max().unwrap() - ages.iter().min().unwrap();
    assert!(span >= 30, "ages {ages:?} span {span} < 30 years");
    assert!(ages.iter().all(|a| (40..=95).contains(a)), "{ages:?}");
    let sexes: BTreeSet<&str> = truths.iter().map(|t| t.patient_sex.as_str()).collect();
    assert_eq!(sexes.len(), 2, "one sex only: {sexes:?}");

    // Median trabecular HU of the studies spans below 110 to above 170 and falls with age.
    let meds: Vec<f64> = truths.iter().map(|t| median_trabecular(t)).collect();
    for (i, t) in truths.iter().enumerate() {
        let p = t
            .options
            .population
            .as_ref()
            .expect("population options recorded");
        eprintln!(
            "seed {:2}: {} {} y, L1 {:5.1}, median trabecular {:5.1} HU, view {:?}, reported {}..{}, {} mm {:?}, fractures {:?}",
            i + 1,
            t.patient_sex,
            t.patient_age,
            p.l1_trabecular_hu,
            meds[i],
            t.levels_in_view,
            t.vertebrae[0].label,
            t.vertebrae.last().map_or("", |v| v.label.as_str()),
            t.slice_thickness_mm.unwrap_or(0.0),
            p.kernel,
            t.options.fractures.iter().map(|f| f.to_string()).collect::<Vec<_>>()
        );
    }
    let (lo, hi) = (
        meds.iter().cloned().fold(f64::INFINITY, f64::min),
        meds.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    assert!(
        lo < 110.0 && hi > 170.0,
        "median trabecular HU {lo:.0}..{hi:.0}: {meds:?}"
    );
    let n = ages.len() as f64;
    let ma = ages.iter().map(|&a| a as f64).sum::<f64>() / n;
    let mh = meds.iter().sum::<f64>() / n;
    let cov: f64 = ages
        .iter()
        .zip(&meds)
        .map(|(&a, h)| (a as f64 - ma) * (h - mh))
        .sum();
    let var: f64 = ages.iter().map(|&a| (a as f64 - ma).powi(2)).sum();
    let slope = cov / var;
    assert!(
        slope < -1.0,
        "trabecular HU vs age slope {slope:.2} HU/year does not fall"
    );

    // Fields of view start and end at ≥ 3 different levels each.
    let starts: BTreeSet<String> = truths
        .iter()
        .map(|t| {
            t.levels_in_view
                .clone()
                .expect("population truth has levels in view")[0]
                .clone()
        })
        .collect();
    let ends: BTreeSet<String> = truths
        .iter()
        .map(|t| t.levels_in_view.clone().expect("levels in view")[1].clone())
        .collect();
    assert!(starts.len() >= 3, "fields of view start at {starts:?}");
    assert!(ends.len() >= 3, "fields of view end at {ends:?}");
    let first_reported: BTreeSet<&str> = truths
        .iter()
        .map(|t| t.vertebrae[0].label.as_str())
        .collect();
    let last_reported: BTreeSet<&str> = truths
        .iter()
        .map(|t| t.vertebrae.last().unwrap().label.as_str())
        .collect();
    assert!(
        first_reported.len() >= 3 && last_reported.len() >= 3,
        "reported vertebrae start {first_reported:?}, end {last_reported:?}"
    );

    // Slice thickness takes ≥ 3 values, one ≥ 2.5 mm; the volume's spacing matches the truth.
    let mut thick = BTreeSet::new();
    for p in &all {
        let t = p
            .truth
            .slice_thickness_mm
            .expect("population truth records slice thickness");
        assert_eq!(t, p.volume.header.spacing_mm[2]);
        assert_eq!(t, p.truth.options.slice_thickness_mm);
        thick.insert((t * 1000.0).round() as i64);
    }
    assert!(thick.len() >= 3, "slice thicknesses {thick:?} µm");
    assert!(
        thick.iter().any(|&t| t >= 2500),
        "no slice ≥ 2.5 mm: {thick:?} µm"
    );

    // Normal T6–T9 bodies are wedged: mean Ha/Hp < 0.97, each Genant 0 and flagged.
    let mut ratios = Vec::new();
    for t in &truths {
        for v in &t.vertebrae {
            if ["T6", "T7", "T8", "T9"].contains(&v.label.as_str()) && v.fracture.is_none() {
                let r = v.heights_mm.anterior / v.heights_mm.posterior;
                ratios.push(r);
                assert_eq!(v.genant_grade as u8, 0, "{} normal wedge graded", v.label);
                assert!(
                    v.flags.iter().any(|f| f == "physiological_wedge"),
                    "{} r {r:.3}",
                    v.label
                );
            }
        }
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    eprintln!(
        "ages {:?}..{:?}, trabecular-vs-age slope {slope:.2} HU/year, starts {starts:?}, ends {ends:?}, thicknesses {thick:?} µm, T6–T9 Ha/Hp mean {mean:.3} over {}",
        ages.iter().min(),
        ages.iter().max(),
        ratios.len()
    );
    assert!(
        ratios.len() >= 24,
        "only {} normal T6–T9 bodies",
        ratios.len()
    );
    assert!(mean < 0.97, "T6–T9 normal Ha/Hp mean {mean:.3} ≥ 0.97");
}

/// Air (trachea, oesophagus) lies in front of the upper thoracic bodies in every study.
#[test]
fn air_lies_in_front_of_the_upper_thoracic_bodies() {
    for seed in 1..=12u64 {
        // Thin slices at 1.4 mm pixels: small airways are not lost to partial volume.
        let ph = generate(&spec(
            seed,
            &["--matrix", "256", "--slice-thickness", "1.25"],
        ))
        .expect("generates");
        let mut found = Vec::new();
        // The two most cranial thoracic bodies wholly in view (T1–T5: the view starts C5–T4).
        let upper = ph
            .truth
            .vertebrae
            .iter()
            .filter(|v| ["T1", "T2", "T3", "T4", "T5"].contains(&v.label.as_str()))
            .take(2);
        for v in upper {
            let mut min_hu = f64::INFINITY;
            // Along the anterior direction from the anterior wall, up to 45 mm, ±6 mm laterally.
            for step in 1..=45 {
                for lat in [-6.0, -3.0, 0.0, 3.0, 6.0] {
                    let d = v.depth_mm / 2.0 + step as f64;
                    let p = [
                        v.center_mm[0] + v.anterior_dir[0] * d + lat,
                        v.center_mm[1] + v.anterior_dir[1] * d,
                        v.center_mm[2] + v.anterior_dir[2] * d,
                    ];
                    if let Some(hu) = ph.volume.sample_patient(p) {
                        min_hu = min_hu.min(hu as f64);
                    }
                }
            }
            found.push((v.label.clone(), min_hu));
        }
        assert!(!found.is_empty(), "seed {seed}: no T1–T5 in view");
        for (label, hu) in &found {
            assert!(
                *hu < -500.0,
                "seed {seed}: no air in front of {label} (min {hu:.0} HU)"
            );
        }
    }
}

#[test]
fn same_seed_gives_the_same_bytes_and_flags_override_the_draw() {
    let digest = |s: &PhantomSpec| {
        let dir = tempfile::tempdir().unwrap();
        let ph = generate(s).unwrap();
        let files = write_dicom_series(&ph, dir.path()).unwrap();
        let mut h = Sha256::new();
        for f in files
            .iter()
            .chain(std::iter::once(&dir.path().join("truth.json")))
        {
            h.update(std::fs::read(f).unwrap());
        }
        hex::encode(h.finalize())
    };
    let small = |seed: u64| spec(seed, &["--matrix", "96", "--slice-thickness", "5"]);
    assert_eq!(digest(&small(3)), digest(&small(3)));
    assert_ne!(digest(&small(3)), digest(&small(4)));

    // Flags override one choice each; the rest of the draw stays.
    let drawn = spec(5, &[]);
    let over = spec(
        5,
        &[
            "--slice-thickness",
            "3",
            "--no-fracture",
            "--kyphosis",
            "50",
        ],
    );
    assert_eq!(over.slice_thickness_mm, 3.0);
    assert!(over.fractures.is_empty());
    assert_eq!(over.kyphosis_deg, Some(50.0));
    let (a, b) = (drawn.population.unwrap(), over.population.unwrap());
    assert_eq!(
        (a.age, a.sex.clone(), a.l1_trabecular_hu),
        (b.age, b.sex.clone(), b.l1_trabecular_hu)
    );
    // --slices fixes the slice count; --to ends the view below that body.
    let ph = generate(&spec(5, &["--slices", "120", "--slice-thickness", "2.5"])).unwrap();
    assert_eq!(ph.volume.header.dims[2], 120);
    let ph = generate(&spec(
        5,
        &["--to", "L5", "--slice-thickness", "5", "--no-fracture"],
    ))
    .unwrap();
    assert_eq!(ph.truth.vertebrae.last().unwrap().label, "L5");
}

#[test]
fn edge_fractures_land_on_the_first_and_last_bodies_in_view() {
    for (seed, label) in [(7u64, "first"), (8, "last")] {
        let f = format!("{label}:wedge:0.35");
        let ph = generate(&spec(seed, &["--fracture", &f, "--slice-thickness", "5"])).unwrap();
        let vs = &ph.truth.vertebrae;
        let v = if label == "first" {
            &vs[0]
        } else {
            vs.last().unwrap()
        };
        assert!(
            v.fracture.is_some(),
            "seed {seed}: {label} body {} not fractured",
            v.label
        );
        assert!(ph.truth.positive);
        assert_eq!(vs.iter().filter(|v| v.fracture.is_some()).count(), 1);
    }
}

#[test]
fn without_population_the_truth_has_no_population_fields() {
    let spec = PhantomSpec {
        matrix: 64,
        pixel_spacing_mm: Some(5.0),
        slices: 80,
        slice_thickness_mm: 5.0,
        ..PhantomSpec::default()
    };
    let ph = generate(&spec).unwrap();
    let json = serde_json::to_value(&ph.truth).unwrap();
    for key in ["slice_thickness_mm", "levels_in_view"] {
        assert!(json.get(key).is_none(), "classic truth carries {key}");
    }
    assert!(json["options"].get("population").is_none());
}

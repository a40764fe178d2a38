//! `spinescreen phantom` arguments parse as documented and the command writes the study.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use clap::Parser;
use spinescreen_phantom::cli::{run, PhantomArgs};
use spinescreen_phantom::{Confounder, FractureType, LastVertebra};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: PhantomArgs,
}

fn parse(args: &[&str]) -> Result<PhantomArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("phantom").chain(args.iter().copied())).map(|c| c.args)
}

#[test]
fn documented_arguments_parse_into_the_spec() {
    let a = parse(&[
        "--out",
        "/tmp/x",
        "--seed",
        "9",
        "--fracture",
        "L1:wedge:0.35",
        "--fracture",
        "T8:crush:0.5",
        "--scoliosis",
        "20",
        "--kyphosis",
        "60",
        "--osteoporotic",
        "--confounder",
        "calcified-disc",
        "--confounder",
        "ring",
        "--matrix",
        "256",
        "--slices",
        "300",
        "--slice-thickness",
        "1.5",
        "--to",
        "L5",
        "--preview",
    ])
    .unwrap();
    let s = a.spec();
    assert_eq!(s.seed, 9);
    assert_eq!(s.fractures.len(), 2);
    assert_eq!(s.fractures[1].kind, FractureType::Crush);
    assert_eq!(
        s.confounders,
        vec![Confounder::CalcifiedDisc, Confounder::Ring]
    );
    assert_eq!((s.matrix, s.slices, s.slice_thickness_mm), (256, 300, 1.5));
    assert_eq!(s.last_vertebra, LastVertebra::L5);
    assert_eq!(s.kyphosis_deg, Some(60.0));
    assert!(s.osteoporotic && a.preview);
    // Defaults: 512² × 400, 1 mm to L2, 1.25 mm to L5.
    let d = parse(&["--out", "/tmp/x"]).unwrap().spec();
    assert_eq!((d.matrix, d.slices, d.slice_thickness_mm), (512, 400, 1.0));
    assert_eq!(
        parse(&["--out", "/tmp/x", "--to", "L5"])
            .unwrap()
            .spec()
            .slice_thickness_mm,
        1.25
    );
}

#[test]
fn bad_arguments_are_rejected_with_a_message() {
    for bad in [
        &["--out", "x", "--fracture", "L1:wedge"][..],
        &["--out", "x", "--confounder", "metal"],
        &["--out", "x", "--to", "S1"],
        &["--seed", "1"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn run_writes_series_truth_and_preview() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let a = parse(&[
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "3",
        "--fracture",
        "T12:wedge:0.45",
        "--matrix",
        "96",
        "--pixel-spacing",
        "3.6",
        "--slices",
        "100",
        "--slice-thickness",
        "4.5",
        "--preview",
    ])
    .unwrap();
    run(&a).unwrap();
    let n = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "dcm")
        })
        .count();
    assert_eq!(n, 100);
    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("truth.json")).unwrap()).unwrap();
    assert_eq!(t["positive"], true);
    let t12 = t["vertebrae"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["label"] == "T12")
        .unwrap();
    assert_eq!(t12["genant_grade"], 3);
    assert_eq!(t12["type"], "wedge");
    assert!(out.join("preview.png").exists());
    // A spec that does not fit the field of view is an error, not a panic.
    let a = parse(&[
        "--out",
        out.to_str().unwrap(),
        "--slices",
        "100",
        "--slice-thickness",
        "1",
    ])
    .unwrap();
    let e = run(&a).unwrap_err();
    assert!(format!("{e:#}").contains("field of view"), "{e:#}");
}

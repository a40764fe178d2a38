#!/usr/bin/env python3
"""Make the experiment's calibration set from phantoms: N studies, half with a > 25 % compression
deformity (Genant 2-3, every type, T4-L2), half without, confounders and spine shapes spread over
both, plus truth.csv (case_id,positive,grades) for `spinescreen eval`.

    scripts/calibration-set.py --bin target/release/spinescreen --out /tmp/calib [--n 100]
    scripts/calibration-set.py --set acceptance --out /tmp/accept [--n 40]

`--set acceptance` is morphometry's acceptance set (issue 6) through the detector: positives carry
one untreated grade 2-3 fracture (every type, T4-L2), negatives none or a grade 1 deformity, with
the confounders (a cemented level only in negatives: a cemented fracture is a treated level, not
graded) and spine shapes spread over both.

Every choice is a function of the case number, so the set is reproducible. Grades in truth.csv come
from each phantom's own truth.json (natural wedging can make a negative case carry a grade 1).
"""

import argparse
import json
import os
import subprocess

LEVELS = ["T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2"]
TYPES = ["wedge", "biconcave", "crush"]
CONFOUNDERS = [None, "calcified-disc", "osteophyte", "schmorl", "ring", "cement", None, None]


def spine_shape_options(i):
    """Scoliosis, kyphosis and osteoporosis of case i, spread over both halves of a set."""
    opts = []
    if i % 5 == 0:
        opts += ["--scoliosis", "12"]
    if i % 7 == 0:
        opts += ["--kyphosis", "55"]
    if i % 3 == 0:
        opts += ["--osteoporotic"]
    return opts


def case_options(i):
    """Phantom options of case i (1-based): odd cases positive."""
    positive = i % 2 == 1
    opts = ["--seed", str(1000 + i)]
    if positive:
        level = LEVELS[(i * 7) % len(LEVELS)]
        kind = TYPES[(i // 2) % len(TYPES)]
        fraction = 0.28 + ((i * 37) % 28) / 100.0  # 0.28 .. 0.55
        opts += ["--fracture", f"{level}:{kind}:{fraction:.2f}"]
    confounder = CONFOUNDERS[(i // 2) % len(CONFOUNDERS)]
    if confounder:
        opts += ["--confounder", confounder]
    return positive, opts + spine_shape_options(i)


ACCEPTANCE_CONFOUNDERS = [None, "calcified-disc", "osteophyte", "schmorl", None, "ring"]


def acceptance_case_options(i):
    """Phantom options of acceptance case i (1-based): odd cases positive."""
    positive = i % 2 == 1
    opts = ["--seed", str(3000 + i)]
    level = LEVELS[(i * 5) % len(LEVELS)]
    kind = TYPES[(i // 2) % len(TYPES)]
    if positive:
        fraction = 0.28 + ((i * 37) % 28) / 100.0  # 0.28 .. 0.55
        opts += ["--fracture", f"{level}:{kind}:{fraction:.2f}"]
    elif i % 4 == 0:
        opts += ["--fracture", f"{level}:{kind}:0.22"]  # grade 1: not a positive study
    confounder = ACCEPTANCE_CONFOUNDERS[(i // 2) % len(ACCEPTANCE_CONFOUNDERS)]
    if confounder:
        opts += ["--confounder", confounder]
    if not positive and i % 10 == 6:
        opts += ["--confounder", "cement"]
    return positive, opts + spine_shape_options(i)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/spinescreen")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--set", choices=["calibration", "acceptance"], default="calibration")
    ap.add_argument("--matrix", default="256")
    ap.add_argument("--pixel-spacing", default="1.4")
    ap.add_argument("--slices", default="220")
    ap.add_argument("--slice-thickness", default="2.0")
    args = ap.parse_args()

    studies = os.path.join(args.out, "studies")
    os.makedirs(studies, exist_ok=True)
    rows = ["case_id,positive,grades"]
    for i in range(1, args.n + 1):
        case_id = f"case-{i:03d}"
        positive, opts = (acceptance_case_options if args.set == "acceptance" else case_options)(i)
        folder = os.path.join(studies, case_id)
        subprocess.run(
            [args.bin, "phantom", "--out", folder, "--matrix", args.matrix,
             "--pixel-spacing", args.pixel_spacing, "--slices", args.slices,
             "--slice-thickness", args.slice_thickness] + opts,
            check=True, stdout=subprocess.DEVNULL)
        truth_path = os.path.join(folder, "truth.json")
        with open(truth_path) as f:
            truth = json.load(f)
        os.replace(truth_path, os.path.join(args.out, f"{case_id}.truth.json"))
        assert truth["positive"] == positive, f"{case_id}: truth disagrees with the design"
        grades = ";".join(f"{v['label']}={v['genant_grade']}"
                          for v in truth["vertebrae"] if v["genant_grade"] > 0)
        rows.append(f"{case_id},{int(positive)},{grades}")
    with open(os.path.join(args.out, "truth.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    print(f"{args.n} studies in {studies}, truth in {os.path.join(args.out, 'truth.csv')}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Make the experiment's calibration set from phantoms: N studies, half with a > 25 % compression
deformity (Genant 2-3, every type, T4-L2), half without, confounders and spine shapes spread over
both, plus truth.csv (case_id,positive,grades) for `spinescreen eval`.

    scripts/calibration-set.py --bin target/release/spinescreen --out /tmp/calib [--n 100]
    scripts/calibration-set.py --set acceptance --out /tmp/accept [--n 40]
    scripts/calibration-set.py --set population --out /tmp/pop [--n 100]

`--set acceptance` is morphometry's acceptance set (issue 6) through the detector: positives carry
one untreated grade 2-3 fracture (every type, T4-L2), negatives none or a grade 1 deformity, with
the confounders (a cemented level only in negatives: a cemented fracture is a treated level, not
graded) and spine shapes spread over both.

`--set population` draws every patient and acquisition from `spinescreen phantom --population`
(ages 40-95, bone density by age and sex, fields of view C5-T4 to T10-S2, 0.625-5 mm slices,
kernels, contrast): positives carry one fracture of every type and grade 2-3 placed anywhere in
view (every fourth on the first or last body in view; a level out of the drawn view falls back to
T5-T9), negatives none or a grade 1 deformity
(`--no-fracture` overrides the population's own fracture draw); confounders go on top of the
drawn ones in both halves. The studies keep their drawn slice thickness and field of view at a
256 matrix unless --matrix/--slices/--slice-thickness say otherwise.

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


POPULATION_LEVELS = ["T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3",
                     "L4", "T3", "T2", "T1", "L5"]
POPULATION_CONFOUNDERS = [None, "calcified-disc", "osteophyte", "schmorl", "ring", None, "cement",
                          None]


def population_case_options(i):
    """Phantom options of population case i (1-based): odd cases positive; the fracture level is a
    list of candidates, tried in order until one lies wholly in the drawn field of view."""
    positive = i % 2 == 1
    opts = ["--population", "--seed", str(5000 + i)]
    kind = TYPES[(i // 2) % len(TYPES)]
    # The case's level, then mid-thoracic levels that every drawn view holds wholly (T5-T9), so a
    # level out of view does not slide the fracture to the edge of the view.
    levels = [POPULATION_LEVELS[(i * 7) % len(POPULATION_LEVELS)], "T7", "T8", "T6", "T9", "T5"]
    if positive and i % 8 in (1, 5):
        levels = ["first" if i % 8 == 1 else "last"]
        # A crush is graded against both neighbours; at the edge of the view only one is seen.
        kind = "wedge" if kind == "crush" else kind
    fracture = None
    if positive:
        fraction = 0.28 + ((i * 37) % 28) / 100.0  # 0.28 .. 0.55: Genant 2 and 3
        fracture = (kind, f"{fraction:.2f}")
    elif i % 4 == 0:
        fracture = (kind, "0.22")  # grade 1: not a positive study
    else:
        opts += ["--no-fracture"]
    confounder = POPULATION_CONFOUNDERS[(i // 2) % len(POPULATION_CONFOUNDERS)]
    if confounder == "cement" and positive:
        confounder = "osteophyte"  # a cemented fracture is a treated level, not graded
    if confounder:
        opts += ["--confounder", confounder]
    return positive, opts, fracture, levels


def make_population_case(binary, folder, i, extra):
    """Generate population case i, trying fracture levels until one is in view."""
    positive, opts, fracture, levels = population_case_options(i)
    if fracture is None:
        subprocess.run([binary, "phantom", "--out", folder] + extra + opts, check=True,
                       stdout=subprocess.DEVNULL)
        return positive
    last_err = ""
    for level in levels:
        spec = f"{level}:{fracture[0]}:{fracture[1]}"
        r = subprocess.run([binary, "phantom", "--out", folder, "--fracture", spec] + extra + opts,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode == 0:
            return positive
        last_err = r.stderr
        if "field of view" not in last_err:
            break
    raise RuntimeError(f"case {i}: no fracture level in view: {last_err}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/spinescreen")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--set", choices=["calibration", "acceptance", "population"],
                    default="calibration")
    ap.add_argument("--matrix", default="256")
    ap.add_argument("--pixel-spacing", default=None, help="default 1.4 (population: drawn)")
    ap.add_argument("--slices", default=None, help="default 220 (population: the drawn view)")
    ap.add_argument("--slice-thickness", default=None, help="default 2.0 (population: drawn)")
    args = ap.parse_args()
    if args.set != "population":
        args.pixel_spacing = args.pixel_spacing or "1.4"
        args.slices = args.slices or "220"
        args.slice_thickness = args.slice_thickness or "2.0"
    extra = ["--matrix", args.matrix]
    for flag, value in [("--pixel-spacing", args.pixel_spacing), ("--slices", args.slices),
                        ("--slice-thickness", args.slice_thickness)]:
        if value is not None:
            extra += [flag, value]

    studies = os.path.join(args.out, "studies")
    os.makedirs(studies, exist_ok=True)
    rows = ["case_id,positive,grades"]
    for i in range(1, args.n + 1):
        case_id = f"case-{i:03d}"
        folder = os.path.join(studies, case_id)
        if args.set == "population":
            positive = make_population_case(args.bin, folder, i, extra)
        else:
            positive, opts = (acceptance_case_options if args.set == "acceptance"
                              else case_options)(i)
            subprocess.run([args.bin, "phantom", "--out", folder] + extra + opts,
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

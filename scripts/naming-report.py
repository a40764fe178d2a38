#!/usr/bin/env python3
"""How well the detector found and named the vertebrae of a phantom set, from `spinescreen eval`'s
saved results and the phantoms' truth files.

    scripts/naming-report.py SET_DIR REPORT_DIR [--within 8]

SET_DIR is a `scripts/calibration-set.py` output (case-NNN.truth.json beside studies/); REPORT_DIR
an `eval --out` directory (results/<case>/result.json). Prints the bodies found (a detected centre
within --within mm of a truth centre), the share named as the truth names them, the bodies within
3 mm, each false positive and false negative study with its levels, and per case the levels
named wrong. Developer aid (docs/detection.md); needs only the standard library.
"""
import argparse
import csv
import glob
import json
import math
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("set_dir")
    ap.add_argument("report_dir")
    ap.add_argument("--within", type=float, default=8.0)
    args = ap.parse_args()
    truth_csv = {r["case_id"]: r for r in csv.DictReader(open(os.path.join(args.set_dir, "truth.csv")))}
    found = named = within3 = truth_total = 0
    fp, fn, wrong_cases = [], [], []
    for tpath in sorted(glob.glob(os.path.join(args.set_dir, "case-*.truth.json"))):
        case = os.path.basename(tpath).split(".")[0]
        truth = json.load(open(tpath))
        rpath = os.path.join(args.report_dir, "results", case, "result.json")
        if not os.path.exists(rpath):
            continue
        res = json.load(open(rpath))
        tv = truth["vertebrae"]
        truth_total += len(tv)
        wrong = []
        for v in res.get("vertebrae", []):
            c = v.get("center_mm")
            if not c:
                continue
            best = min(tv, key=lambda t: math.dist(t["center_mm"], c))
            d = math.dist(best["center_mm"], c)
            if d > args.within:
                continue
            found += 1
            within3 += d <= 3.0
            if best["label"] == v["label"]:
                named += 1
            else:
                wrong.append(f"{v['label']}->{best['label']}")
        if wrong:
            wrong_cases.append((case, wrong))
        pos = truth_csv.get(case, {}).get("positive") in ("1", "true", "True")
        called = bool(res.get("has_fracture"))
        graded = [
            f"{v['label']}:G{v.get('genant_grade')}"
            for v in res.get("vertebrae", [])
            if (v.get("genant_grade") or 0) >= 2
        ]
        if called and not pos:
            fp.append(f"{case} {graded}")
        if pos and not called:
            true_fx = [f"{t['label']}:G{t['genant_grade']}" for t in tv if t.get("genant_grade", 0) >= 2]
            fn.append(f"{case} {res.get('status')} {res.get('reason') or ''} truth {true_fx}")
    print(f"bodies found within {args.within} mm: {found}; named right {named} ({100 * named / max(found, 1):.1f} %);"
          f" within 3 mm {within3}; truth bodies {truth_total}")
    print("false positives:", *fp, sep="\n  ")
    print("false negatives:", *fn, sep="\n  ")
    print("named wrong:", *(f"{c} {w[:6]}" for c, w in wrong_cases), sep="\n  ")


if __name__ == "__main__":
    main()

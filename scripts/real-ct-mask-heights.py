#!/usr/bin/env python3
"""Second opinion on the real CT's heights: read each vertebra's height from the reference label
map along the detector's own columns, beside the detector's heights and the reference report's.

    DETECTION_JSON=/tmp/det.json cargo run --release -p spinescreen-inference \
        --example detect_nifti -- ../shared/data/real/abdomen-ct-3mm/ct.nii.gz
    python3 scripts/real-ct-mask-heights.py /tmp/det.json

Needs nibabel and numpy. The map is on the CT's 3 mm grid, so its heights step by ~3 mm.
"""
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

REAL = Path(__file__).resolve().parents[2] / "shared/data/real/abdomen-ct-3mm"
# Label values of the reference map.
CODE = {"T12": 32, "L1": 31, "L2": 30, "L3": 29, "L4": 28, "L5": 27}
COLUMNS = ("posterior", "middle", "anterior")


def main() -> None:
    det = json.loads(Path(sys.argv[1]).read_text())
    img = nib.load(REAL / "reference_vertebra_labels.nii.gz")
    labels = np.asarray(img.dataobj)
    to_index = np.linalg.inv(img.affine)
    report = json.loads((REAL / "reference_spine_report.json").read_text())["results"]

    def label_at(p_lps):
        ras = np.array([-p_lps[0], -p_lps[1], p_lps[2], 1.0])
        i = np.round((to_index @ ras)[:3]).astype(int)
        if (i < 0).any() or (i >= labels.shape).any():
            return 0
        return labels[tuple(i)]

    print("level column   detector  label map  report")
    for v in det["vertebrae"]:
        code = CODE.get(v["label"])
        if code is None or "truncated" in v["flags"]:
            continue
        k = v["keypoints_mm"]
        for c in COLUMNS:
            a, b = np.array(k["superior_" + c]), np.array(k["inferior_" + c])
            mid, axis = (a + b) / 2, (a - b) / np.linalg.norm(a - b)
            inside = [t for t in np.arange(-30, 30, 0.1) if label_at(mid + t * axis) == code]
            in_map = max(inside) - min(inside) if inside else float("nan")
            ref = report.get(f"vertebrae_{v['label']}_height_{c}_mm", float("nan"))
            print(f"{v['label']:5} {c:9} {np.linalg.norm(a - b):8.1f} {in_map:10.1f} {ref:7.1f}")


if __name__ == "__main__":
    main()

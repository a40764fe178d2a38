#!/usr/bin/env python3
"""Side-by-side mid-sagittal preview: population phantoms next to the real chest CTs.

    python3 services/phantom/scripts/population-preview.py \\
        --bin target/release/spinescreen --seeds 1 2 3 4 \\
        --real ../shared/data/real --out docs/img/population-vs-real.png

Each panel is the sagittal plane through the spine (phantoms: the truth's median vertebra x;
real CTs: the labelled vertebrae's x, or the densest bony column near the midline), resampled
to 1 mm pixels, window L 200 / W 800 (the phantom preview's bone window), head up, anterior
left. Needs numpy, Pillow, nibabel and pydicom (pip install nibabel pydicom).
"""

import argparse
import json
import os
import subprocess
import tempfile

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image, ImageDraw

LEVEL, WIDTH = 200.0, 800.0


def window(hu):
    lo = LEVEL - WIDTH / 2
    return (np.clip((hu - lo) / WIDTH, 0, 1) * 255).astype(np.uint8)


def resample(img, dy, dz):
    """img[z, y] (z from the head down) at (dz, dy) mm -> 1 mm pixels, nearest-linear."""
    nz, ny = img.shape
    zs = np.arange(0, nz * dz, 1.0) / dz
    ys = np.arange(0, ny * dy, 1.0) / dy
    z0 = np.clip(np.floor(zs).astype(int), 0, nz - 1)
    z1 = np.clip(z0 + 1, 0, nz - 1)
    fz = (zs - np.floor(zs))[:, None]
    y0 = np.clip(np.floor(ys).astype(int), 0, ny - 1)
    y1 = np.clip(y0 + 1, 0, ny - 1)
    fy = (ys - np.floor(ys))[None, :]
    a = img[z0][:, y0] * (1 - fy) + img[z0][:, y1] * fy
    b = img[z1][:, y0] * (1 - fy) + img[z1][:, y1] * fy
    return a * (1 - fz) + b * fz


def phantom_panel(binary, seed, workdir):
    out = os.path.join(workdir, f"pop-{seed}")
    cmd = [binary] + (["phantom"] if os.path.basename(binary) == "spinescreen" else [])
    subprocess.run(cmd + ["--out", out, "--population", "--seed", str(seed)], check=True,
                   stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "truth.json")) as f:
        truth = json.load(f)
    files = sorted(p for p in os.listdir(out) if p.endswith(".dcm"))
    slices = [pydicom.dcmread(os.path.join(out, p)) for p in files]
    slices.sort(key=lambda d: -float(d.ImagePositionPatient[2]))  # head first
    vol = np.stack([d.pixel_array.astype(np.float32) * float(d.RescaleSlope)
                    + float(d.RescaleIntercept) for d in slices])  # [z, y, x]
    px = float(slices[0].PixelSpacing[0])
    x0 = float(slices[0].ImagePositionPatient[0])
    xs = [v["center_mm"][0] for v in truth["vertebrae"]]
    col = int(round((float(np.median(xs)) - x0) / px))
    # Average 3 mm across the midline against noise, as a thin-slab reformat does.
    half = max(1, int(round(1.5 / px)))
    sag = vol[:, :, col - half:col + half + 1].mean(axis=2)
    dz = float(truth["slice_thickness_mm"])
    pop = truth["options"]["population"]
    label = (f"phantom {seed}: {pop['sex']} {pop['age']} y, L1 {pop['l1_trabecular_hu']:.0f} HU, "
             f"{dz:g} mm {pop['kernel']}")
    return resample(sag, px, dz), label


def real_panel(path, spine_x_lps=None):
    img = nib.as_closest_canonical(nib.load(path))  # RAS: i -> R+, j -> A+, k -> S+
    data = np.asarray(img.dataobj, dtype=np.float32)
    zooms = img.header.get_zooms()[:3]
    if spine_x_lps is not None:
        # LPS x = -RAS x; voxel index from the affine.
        inv = np.linalg.inv(img.affine)
        ras = np.array([-spine_x_lps[0], -spine_x_lps[1], spine_x_lps[2], 1.0])
        i = int(round((inv @ ras)[0]))
    else:
        # The densest bony column near the midline, posterior half.
        nx, ny, _ = data.shape
        bone = ((data > 180) & (data < 1500)).astype(np.float32)
        mid = slice(nx // 2 - nx // 8, nx // 2 + nx // 8)
        counts = bone[mid, : ny // 2, :].sum(axis=(1, 2))
        i = mid.start + int(np.argmax(counts))
    half = max(1, int(round(1.5 / zooms[0])))
    sag = data[i - half:i + half + 1].mean(axis=0)  # [j (P->A), k (I->S)]
    sag = sag[::-1, ::-1].T  # [z head-down, y anterior-first]
    return resample(sag, zooms[1], zooms[2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/spinescreen",
                    help="spinescreen, or the phantom example (target/release/examples/phantom)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--real", default="../shared/data/real")
    ap.add_argument("--out", default="docs/img/population-vs-real.png")
    args = ap.parse_args()

    panels = []
    with tempfile.TemporaryDirectory() as work:
        for s in args.seeds:
            panels.append(phantom_panel(args.bin, s, work))
    ref = os.path.join(args.real, "chest-ct-2.5mm")
    with open(os.path.join(ref, "reference_vertebrae.json")) as f:
        verts = json.load(f)
    items = verts if isinstance(verts, list) else verts.get("vertebrae", [])
    xs = [v.get("body_center_mm_lps") or v.get("center_mm_lps") for v in items]
    xs = [c for c in xs if c]
    spine = np.median(np.array(xs), axis=0) if xs else None
    panels.append((real_panel(os.path.join(ref, "ct.nii.gz"), spine), "real chest CT, 2.5 mm (GE)"))
    panels.append((real_panel(os.path.join(args.real, "chest-ct-5mm", "ct.nii.gz")),
                   "real chest CT, 5 mm soft kernel (Philips)"))

    h = max(p.shape[0] for p, _ in panels) + 24
    gap = 6
    w = sum(p.shape[1] for p, _ in panels) + gap * (len(panels) - 1)
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    x = 0
    for p, label in panels:
        canvas.paste(Image.fromarray(window(p)), (x, 24))
        draw.text((x + 4, 4), label, fill=255)
        x += p.shape[1] + gap
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    canvas.save(args.out, optimize=True)
    print(f"wrote {args.out} ({w}x{h})")


if __name__ == "__main__":
    main()

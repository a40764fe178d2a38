#!/usr/bin/env python3
"""Write a NIfTI CT volume as a DICOM CT series, so a real scan can be run the way a user runs one
(`spinescreen analyze DIR`).

    scripts/nifti-to-dicom.py CT.nii.gz OUT_DIR [--patient-id ID]

One file per axial slice, LPS geometry taken from the NIfTI affine, HU stored as int16 with
RescaleSlope 1 / RescaleIntercept 0. Developer aid: needs numpy, nibabel and pydicom.
"""
import argparse
import os

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("nifti")
    ap.add_argument("out")
    ap.add_argument("--patient-id", default="NIFTI-DEV")
    args = ap.parse_args()

    img = nib.as_closest_canonical(nib.load(args.nifti))  # RAS+
    data = np.asanyarray(img.dataobj).astype(np.float32)
    aff = img.affine
    # RAS -> LPS: flip the first two world axes.
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff
    col_dir = lps[:3, 0] / np.linalg.norm(lps[:3, 0])  # along i (NIfTI x)
    row_dir = lps[:3, 1] / np.linalg.norm(lps[:3, 1])  # along j
    dx, dy, dz = (float(np.linalg.norm(lps[:3, k])) for k in range(3))
    os.makedirs(args.out, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    nz = data.shape[2]
    for k in range(nz):
        sl = np.clip(np.rint(data[:, :, k].T), -32768, 32767).astype(np.int16)  # rows = j
        pos = lps @ np.array([0.0, 0.0, k, 1.0])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality = "CT"
        ds.PatientID = args.patient_id
        ds.PatientName = "Dev^Nifti"
        ds.StudyDate = "20260101"
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [float(v) for v in pos[:3]]
        ds.ImageOrientationPatient = [float(v) for v in (*col_dir, *row_dir)]
        ds.PixelSpacing = [dy, dx]
        ds.SliceThickness = dz
        ds.Rows, ds.Columns = sl.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = sl.tobytes()
        ds.save_as(os.path.join(args.out, f"slice{k:04d}.dcm"), enforce_file_format=True)
    print(f"{nz} slices -> {args.out}")


if __name__ == "__main__":
    main()

//! Canonical volume orientation: index axes along patient left, posterior and head.
//!
//! DICOM series arrive in any orientation the scanner chose (head- or feet-first, supine or
//! prone: PS3.3 C.7.3.1.1.2) and NIfTI files in whatever the converter wrote. Later stages are
//! simpler when x increases toward the patient's left, y toward posterior and z toward the head,
//! so ingest permutes and flips the voxel axes to that layout. The direction cosines still
//! describe the result exactly: nothing is resampled, every voxel keeps its patient position.

use ndarray::{Array3, Axis};
use rayon::prelude::*;
use spinescreen_proto::volume::Vec3;
use spinescreen_proto::VolumeHeader;

/// Permute and flip the index axes so that index axis `c` points mostly along patient axis `c`
/// in the positive direction (x → left, y → posterior, z → head). Every voxel keeps its patient
/// position. Left unchanged when the axes are too oblique to be assigned unambiguously.
pub(crate) fn reorient_to_lps(
    header: VolumeHeader,
    array: Array3<i16>,
) -> (VolumeHeader, Array3<i16>) {
    let dominant = |d: &Vec3| {
        (0..3)
            .max_by(|&a, &b| d[a].abs().total_cmp(&d[b].abs()))
            .unwrap_or(0)
    };
    // perm[c]: which old index axis runs along patient axis c.
    let mut perm = [usize::MAX; 3];
    for axis in 0..3 {
        let c = dominant(&header.direction[axis]);
        if perm[c] != usize::MAX {
            return (header, array);
        }
        perm[c] = axis;
    }
    let identity = (0..3).all(|c| perm[c] == c && header.direction[c][c] > 0.0);
    if identity {
        return (header, array);
    }
    let mut origin = header.origin_mm;
    let mut dims = [0usize; 3];
    let mut spacing = [0f64; 3];
    let mut direction = [[0f64; 3]; 3];
    // flip[c]: new index axis c runs against old index axis perm[c].
    let mut flip = [false; 3];
    for c in 0..3 {
        let old = perm[c];
        let n = header.dims[old];
        let mut d = header.direction[old];
        if d[c] < 0.0 {
            let step = header.spacing_mm[old] * (n as f64 - 1.0);
            for k in 0..3 {
                origin[k] += d[k] * step;
            }
            d = d.map(|v| -v);
            flip[c] = true;
        }
        dims[c] = n;
        spacing[c] = header.spacing_mm[old];
        direction[c] = d;
    }
    let array = if perm == [0, 1, 2] {
        // Flips only (feet first, prone: the usual case): in place, no second volume in memory.
        flip_in_place(array, flip)
    } else {
        // ndarray axis of old index axis a is 2 - a (arrays are [z, y, x]).
        let mut view = array
            .view()
            .permuted_axes([2 - perm[2], 2 - perm[1], 2 - perm[0]]);
        for (c, &f) in flip.iter().enumerate() {
            if f {
                view.invert_axis(Axis(2 - c));
            }
        }
        view.as_standard_layout().into_owned()
    };
    let header = VolumeHeader {
        dims,
        spacing_mm: spacing,
        origin_mm: origin,
        direction,
        ..header
    };
    (header, array)
}

/// Reverse the index axes marked in `flip` (`[x, y, z]`) of a `[z, y, x]` array, swapping
/// voxels within its own buffer.
fn flip_in_place(mut array: Array3<i16>, flip: [bool; 3]) -> Array3<i16> {
    let (nz, ny, nx) = array.dim();
    let plane = ny * nx;
    if !array.is_standard_layout() || plane == 0 {
        for (c, &f) in flip.iter().enumerate() {
            if f {
                array.invert_axis(Axis(2 - c));
            }
        }
        return array.as_standard_layout().into_owned();
    }
    if let Some(data) = array.as_slice_mut() {
        if flip[2] {
            // Slice k with slice nz − 1 − k; an odd middle slice stays.
            let (head, tail) = data.split_at_mut(plane * (nz / 2));
            head.par_chunks_mut(plane)
                .zip(tail.par_chunks_mut(plane).rev())
                .for_each(|(a, b)| a.swap_with_slice(b));
        }
        if flip[0] || flip[1] {
            data.par_chunks_mut(plane).for_each(|slice| {
                if flip[1] {
                    let (head, tail) = slice.split_at_mut(nx * (ny / 2));
                    head.chunks_mut(nx)
                        .zip(tail.chunks_mut(nx).rev())
                        .for_each(|(a, b)| a.swap_with_slice(b));
                }
                if flip[0] {
                    slice.chunks_mut(nx).for_each(|row| row.reverse());
                }
            });
        }
    }
    array
}

#[cfg(test)]
mod tests {
    use super::*;
    use spinescreen_proto::{StudyInfo, SCHEMA_VERSION};

    #[test]
    fn prone_feet_first_volume_is_flipped_without_moving_any_voxel() {
        // Rows toward patient right, columns toward anterior (prone), slices toward the feet.
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [3, 2, 2],
            spacing_mm: [0.5, 0.7, 2.0],
            origin_mm: [10.0, 20.0, 30.0],
            direction: [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]],
            study: StudyInfo::default(),
        };
        let array = Array3::from_shape_fn((2, 2, 3), |(z, y, x)| (z * 100 + y * 10 + x) as i16);
        let (h, a) = reorient_to_lps(header.clone(), array.clone());
        assert_eq!(
            h.direction,
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        );
        for z in 0..2 {
            for y in 0..2 {
                for x in 0..3 {
                    let p = header.index_to_patient([x as f64, y as f64, z as f64]);
                    let i = h.patient_to_index(p).map(|v| v.round() as usize);
                    assert_eq!(a[[i[2], i[1], i[0]]], array[[z, y, x]]);
                }
            }
        }
    }

    #[test]
    fn every_combination_of_flips_keeps_each_voxel_at_its_position() {
        for signs in 0..8 {
            let sign = |c: usize| if signs & (1 << c) != 0 { -1.0 } else { 1.0 };
            let header = VolumeHeader {
                schema_version: SCHEMA_VERSION,
                dims: [4, 3, 5],
                spacing_mm: [0.5, 0.7, 2.0],
                origin_mm: [10.0, 20.0, 30.0],
                direction: [
                    [sign(0), 0.0, 0.0],
                    [0.0, sign(1), 0.0],
                    [0.0, 0.0, sign(2)],
                ],
                study: StudyInfo::default(),
            };
            let array = Array3::from_shape_fn((5, 3, 4), |(z, y, x)| (z * 100 + y * 10 + x) as i16);
            let (h, a) = reorient_to_lps(header.clone(), array.clone());
            assert_eq!(h.dims, [4, 3, 5]);
            for ((z, y, x), v) in array.indexed_iter() {
                let p = header.index_to_patient([x as f64, y as f64, z as f64]);
                let i = h.patient_to_index(p).map(|v| v.round() as usize);
                assert_eq!(
                    a[[i[2], i[1], i[0]]],
                    *v,
                    "signs {signs:03b} at {z} {y} {x}"
                );
            }
        }
    }

    #[test]
    fn rotated_rows_are_permuted() {
        let header = VolumeHeader {
            schema_version: SCHEMA_VERSION,
            dims: [3, 2, 1],
            spacing_mm: [1.0, 2.0, 3.0],
            origin_mm: [0.0, 0.0, 0.0],
            direction: [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
            study: StudyInfo::default(),
        };
        let array = Array3::from_shape_fn((1, 2, 3), |(_, y, x)| (y * 10 + x) as i16);
        let (h, a) = reorient_to_lps(header, array);
        assert_eq!(h.dims, [2, 3, 1]);
        assert_eq!(h.spacing_mm, [2.0, 1.0, 3.0]);
        assert_eq!(a[[0, 2, 1]], 12);
    }
}

//! Pixel data to Hounsfield units.
//!
//! Native (uncompressed) samples are read straight from the buffer the parser filled; every
//! encapsulated transfer syntax dicom-pixeldata can decode (JPEG baseline/extended/lossless,
//! JPEG 2000 through OpenJPEG, JPEG-LS through CharLS when the `jpeg-ls` feature is on, RLE
//! Lossless) is decoded frame by frame. Then, as per PS3.3 C.7.5.1.1.2 and C.11.1.1.2:
//! stored values in the Pixel Padding Value (to Pixel Padding Range Limit) range become
//! −1024 HU (air); the rest become `stored × RescaleSlope + RescaleIntercept`, rounded and
//! clamped to i16.

use crate::instance::{Frame, Instance, Pixels};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use spinescreen_proto::{Reason, ReasonCode};

/// HU given to padding voxels.
pub const PADDING_HU: i16 = -1024;

/// How stored values turn into HU.
#[derive(Debug, Clone, Copy)]
struct Rescale {
    bits_stored: u16,
    signed: bool,
    slope: f64,
    intercept: f64,
    padding: Option<(i32, i32)>,
}

impl Rescale {
    fn new(inst: &Instance, frame: &Frame, bits_allocated: u16) -> Self {
        let bits_stored = inst
            .bits_stored
            .filter(|b| (1..=bits_allocated).contains(b))
            .unwrap_or(bits_allocated);
        Self {
            bits_stored,
            signed: inst.signed,
            slope: frame.slope,
            intercept: frame.intercept,
            padding: inst.padding.map(|(p, limit)| {
                let l = limit.unwrap_or(p);
                (p.min(l), p.max(l))
            }),
        }
    }

    /// The stored value of a raw sample word (masked to BitsStored, sign-extended if signed).
    #[inline(always)]
    fn stored(&self, raw: u16) -> i32 {
        let shift = 16 - self.bits_stored as u32;
        if self.signed {
            (((raw as i16) << shift) >> shift) as i32
        } else {
            ((raw << shift) >> shift) as i32
        }
    }

    /// Convert one slice of raw words into HU.
    fn apply<I: Iterator<Item = u16>>(&self, raw: I, out: &mut [i16]) {
        let integer = self.slope == 1.0 && self.intercept.fract() == 0.0;
        let intercept_i = self.intercept as i32;
        let (pad_lo, pad_hi) = self.padding.unwrap_or((1, 0)); // empty range when absent
        for (o, r) in out.iter_mut().zip(raw) {
            let v = self.stored(r);
            *o = if v >= pad_lo && v <= pad_hi {
                PADDING_HU
            } else if integer {
                (v + intercept_i).clamp(i16::MIN as i32, i16::MAX as i32) as i16
            } else {
                (v as f64 * self.slope + self.intercept)
                    .round()
                    .clamp(i16::MIN as f64, i16::MAX as f64) as i16
            };
        }
    }
}

fn failure(inst: &Instance, text: impl std::fmt::Display) -> Reason {
    Reason::new(
        ReasonCode::DECODE_FAILURE,
        format!("{}: {text}", inst.source),
    )
}

/// Decode frame `frame` of `inst`, whose pixel data is `pixels` (taken out of it by the
/// caller), into `out` (rows × columns HU values).
pub(crate) fn decode_frame(
    inst: &Instance,
    pixels: &Pixels,
    frame: &Frame,
    out: &mut [i16],
) -> Result<(), Reason> {
    let n = out.len();
    if inst.samples_per_pixel != 1 {
        return Err(failure(
            inst,
            format!(
                "{} samples per pixel (CT must be grayscale)",
                inst.samples_per_pixel
            ),
        ));
    }
    let bits = inst.bits_allocated.unwrap_or(16);
    if bits != 8 && bits != 16 {
        return Err(failure(
            inst,
            format!("BitsAllocated {bits} is not supported"),
        ));
    }
    let rescale = Rescale::new(inst, frame, bits);
    let index = frame.index as usize;
    match pixels {
        Pixels::Words(words) => {
            let slice = words
                .get(index * n..(index + 1) * n)
                .ok_or_else(|| failure(inst, "pixel data shorter than rows × columns × frames"))?;
            rescale.apply(slice.iter().copied(), out);
        }
        Pixels::Bytes(bytes) => {
            let per = (bits / 8) as usize;
            let slice = bytes
                .get(index * n * per..(index + 1) * n * per)
                .ok_or_else(|| failure(inst, "pixel data shorter than rows × columns × frames"))?;
            if per == 2 {
                rescale.apply(
                    slice
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]])),
                    out,
                );
            } else {
                rescale.apply(slice.iter().map(|&b| b as u16), out);
            }
        }
        Pixels::Encapsulated(obj) => {
            let ts = TransferSyntaxRegistry
                .get(&inst.transfer_syntax)
                .ok_or_else(|| {
                    Reason::new(
                        ReasonCode::UNSUPPORTED_TRANSFER_SYNTAX,
                        format!("unknown transfer syntax {}", inst.transfer_syntax),
                    )
                })?;
            if !ts.can_decode_all() {
                return Err(Reason::new(
                    ReasonCode::UNSUPPORTED_TRANSFER_SYNTAX,
                    format!("no decoder for {} ({}) in this build", ts.name(), ts.uid()),
                ));
            }
            let decoded = obj
                .decode_pixel_data_frame(frame.index)
                .map_err(|e| failure(inst, format!("{} decoder: {e}", ts.name())))?;
            let data = decoded.data();
            let per = decoded.bits_allocated().div_ceil(8) as usize;
            let got = data.len() / per.max(1);
            if got < n {
                return Err(failure(
                    inst,
                    format!("decoded {got} samples, expected {n}"),
                ));
            }
            match per {
                2 => rescale.apply(
                    data.chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]])),
                    out,
                ),
                1 => rescale.apply(data.iter().map(|&b| b as u16), out),
                _ => {
                    return Err(failure(
                        inst,
                        format!("decoded {} bits per sample", decoded.bits_allocated()),
                    ))
                }
            }
        }
        Pixels::Truncated => return Err(failure(inst, "pixel data truncated")),
        Pixels::Missing => {
            return Err(Reason::new(
                ReasonCode::MISSING_PIXEL_DATA,
                format!("no Pixel Data in {}", inst.source),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rescale(
        bits_stored: u16,
        signed: bool,
        slope: f64,
        intercept: f64,
        padding: Option<(i32, i32)>,
    ) -> Rescale {
        Rescale {
            bits_stored,
            signed,
            slope,
            intercept,
            padding,
        }
    }

    #[test]
    fn unsigned_12_bit_with_intercept_minus_1024_is_hu() {
        let r = rescale(12, false, 1.0, -1024.0, None);
        let mut out = [0i16; 3];
        // High bits beyond BitsStored (e.g. overlay bits) are ignored.
        r.apply([0u16, 1024, 0xF000 | 1064].into_iter(), &mut out);
        assert_eq!(out, [-1024, 0, 40]);
    }

    #[test]
    fn signed_values_sign_extend_and_padding_becomes_air() {
        let r = rescale(16, true, 1.0, 0.0, Some((-2000, -2000)));
        let mut out = [0i16; 3];
        r.apply(
            [(-2000i16) as u16, (-1000i16) as u16, 300].into_iter(),
            &mut out,
        );
        assert_eq!(out, [PADDING_HU, -1000, 300]);
    }

    #[test]
    fn fractional_slope_rounds_and_clamps() {
        let r = rescale(16, false, 0.5, -1000.5, Some((0, 10)));
        let mut out = [0i16; 4];
        r.apply([5u16, 2001, 2002, 65535].into_iter(), &mut out);
        assert_eq!(out, [PADDING_HU, 0, 1, 31767]);
        let big = rescale(16, false, 4.0, 0.0, None);
        let mut o = [0i16; 1];
        big.apply([60000u16].into_iter(), &mut o);
        assert_eq!(o, [i16::MAX]);
    }
}

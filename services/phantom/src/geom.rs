//! Small 3-D vector helpers, local anatomical frames, and the signed-distance primitives
//! (capsule, ellipse) the rasterizer combines, all in patient millimetres (DICOM LPS).

/// A point or vector in patient mm.
pub type V3 = [f64; 3];

pub fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
pub fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}
pub fn normalize(a: V3) -> V3 {
    let n = norm(a);
    if n > 0.0 {
        scale(a, 1.0 / n)
    } else {
        a
    }
}

/// An orthonormal local frame: `u` → patient left (lateral), `v` → anterior, `w` → cranial
/// (along the local spine axis), origin at a structure's centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub origin: V3,
    pub eu: V3,
    pub ev: V3,
    pub ew: V3,
}

impl Frame {
    /// Frame with the given origin and cranial axis; anterior is patient anterior (−y) made
    /// perpendicular to the axis, lateral completes a right-handed (u, v, w) triple.
    pub fn from_axis(origin: V3, cranial: V3) -> Self {
        let ew = normalize(cranial);
        let ant = [0.0, -1.0, 0.0];
        let ev = normalize(sub(ant, scale(ew, dot(ant, ew))));
        let eu = cross(ew, ev);
        Frame { origin, eu, ev, ew }
    }

    /// Rotate the frame about its own `w` axis by `angle` radians (vertebral axial rotation).
    pub fn rotated_about_w(&self, angle: f64) -> Self {
        let (s, c) = angle.sin_cos();
        let eu = add(scale(self.eu, c), scale(self.ev, s));
        let ev = sub(scale(self.ev, c), scale(self.eu, s));
        Frame { eu, ev, ..*self }
    }

    /// Local coordinates (u, v, w) of a patient point.
    #[inline]
    pub fn to_local(self, p: V3) -> V3 {
        let d = sub(p, self.origin);
        [dot(d, self.eu), dot(d, self.ev), dot(d, self.ew)]
    }

    /// Patient point of local coordinates (u, v, w).
    #[inline]
    pub fn to_patient(self, l: V3) -> V3 {
        add(
            self.origin,
            add(
                add(scale(self.eu, l[0]), scale(self.ev, l[1])),
                scale(self.ew, l[2]),
            ),
        )
    }
}

/// Signed distance from `p` to the capsule (segment `a`–`b`, radius `r`).
#[inline]
pub fn capsule(p: V3, a: V3, b: V3, r: f64) -> f64 {
    let pa = sub(p, a);
    let ba = sub(b, a);
    let h = (dot(pa, ba) / dot(ba, ba).max(1e-12)).clamp(0.0, 1.0);
    norm(sub(pa, scale(ba, h))) - r
}

/// Approximate signed distance to an axis-aligned ellipse with semi-axes `a`, `b` (2-D),
/// first-order (`(r − 1)/|∇r|`), accurate near the boundary where partial volume is decided.
#[inline]
pub fn ellipse(x: f64, y: f64, a: f64, b: f64) -> f64 {
    let qx = x / a;
    let qy = y / b;
    let r = (qx * qx + qy * qy).sqrt();
    if r < 1e-9 {
        return -a.min(b);
    }
    let gx = qx / (a * r);
    let gy = qy / (b * r);
    let g = (gx * gx + gy * gy).sqrt().max(1e-9);
    (r - 1.0) / g
}

/// Approximate signed distance to an axis-aligned ellipsoid with semi-axes `a`, `b`, `c`.
#[inline]
pub fn ellipsoid(p: V3, a: f64, b: f64, c: f64) -> f64 {
    let q = [p[0] / a, p[1] / b, p[2] / c];
    let r = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2]).sqrt();
    if r < 1e-9 {
        return -a.min(b).min(c);
    }
    let g = [q[0] / (a * r), q[1] / (b * r), q[2] / (c * r)];
    (r - 1.0) / norm(g).max(1e-9)
}

/// Partial-volume fraction of a voxel whose centre lies at signed distance `d` from a surface,
/// with `h` the voxel's extent along the surface normal (a linear ramp: the exact box average
/// for a plane aligned with the voxel grid).
#[inline]
pub fn coverage(d: f64, h: f64) -> f64 {
    (0.5 - d / h).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_and_is_orthonormal() {
        let f = Frame::from_axis([1.0, 2.0, 3.0], [0.0, 0.3, 1.0]).rotated_about_w(0.2);
        for (a, b) in [(f.eu, f.ev), (f.ev, f.ew), (f.eu, f.ew)] {
            assert!(dot(a, b).abs() < 1e-12);
        }
        let p = [10.0, -5.0, 7.0];
        let back = f.to_patient(f.to_local(p));
        assert!(norm(sub(back, p)) < 1e-9);
        let g = Frame::from_axis([0.0; 3], [0.0, 0.0, 1.0]);
        assert!(
            norm(sub(g.eu, [1.0, 0.0, 0.0])) < 1e-12,
            "u points to patient left"
        );
        assert!(
            norm(sub(g.ev, [0.0, -1.0, 0.0])) < 1e-12,
            "v points anterior"
        );
    }

    #[test]
    fn ellipse_distance_is_exact_on_axes() {
        assert!((ellipse(12.0, 0.0, 10.0, 5.0) - 2.0).abs() < 1e-9);
        assert!((ellipse(0.0, 4.0, 10.0, 5.0) + 1.0).abs() < 1e-9);
    }
}

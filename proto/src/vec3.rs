//! Vector arithmetic on patient-space points and directions ([`Vec3`]: `[f64; 3]`, mm, DICOM LPS),
//! shared by every stage that works with keypoints and centrelines.

pub use crate::volume::Vec3;

/// `a + b`.
pub fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// `a − b`.
pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `a · k`.
pub fn scale(a: Vec3, k: f64) -> Vec3 {
    [a[0] * k, a[1] * k, a[2] * k]
}

/// `a + k b`.
pub fn axpy(a: Vec3, k: f64, b: Vec3) -> Vec3 {
    [a[0] + k * b[0], a[1] + k * b[1], a[2] + k * b[2]]
}

/// Dot product.
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Cross product `a × b`.
pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Euclidean length.
pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// Distance between two points.
pub fn dist(a: Vec3, b: Vec3) -> f64 {
    norm(sub(a, b))
}

/// Midpoint of two points.
pub fn midpoint(a: Vec3, b: Vec3) -> Vec3 {
    scale(add(a, b), 0.5)
}

/// Linear interpolation `a + f (b − a)`.
pub fn lerp(a: Vec3, b: Vec3, f: f64) -> Vec3 {
    axpy(a, f, sub(b, a))
}

/// Unit vector along `a`, or `None` when `a` is (nearly) zero or not finite.
pub fn normalize(a: Vec3) -> Option<Vec3> {
    let n = norm(a);
    (n.is_finite() && n > 1e-9).then(|| scale(a, 1.0 / n))
}

/// Unit vector along `a`, or `fallback` when `a` is (nearly) zero or not finite.
pub fn normalize_or(a: Vec3, fallback: Vec3) -> Vec3 {
    normalize(a).unwrap_or(fallback)
}

/// The component of `v` perpendicular to the unit vector `t`, normalised (or `fallback`).
pub fn orthogonal_to(v: Vec3, t: Vec3, fallback: Vec3) -> Vec3 {
    normalize_or(axpy(v, -dot(v, t), t), fallback)
}

/// Whether every coordinate is finite.
pub fn is_finite(a: Vec3) -> bool {
    a.iter().all(|c| c.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_lengths_and_projections() {
        let (x, y) = ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]);
        assert_eq!(cross(x, y), [0.0, 0.0, 1.0]);
        assert_eq!(dot(x, y), 0.0);
        assert_eq!(dist([1.0, 2.0, 2.0], [0.0; 3]), 3.0);
        assert_eq!(lerp([0.0; 3], [2.0, 4.0, 6.0], 0.5), [1.0, 2.0, 3.0]);
        assert_eq!(midpoint([0.0; 3], [2.0, 4.0, 6.0]), [1.0, 2.0, 3.0]);
        assert_eq!(orthogonal_to([1.0, 1.0, 0.0], x, [0.0, 0.0, 1.0]), y);
        assert_eq!(normalize([0.0; 3]), None);
        assert_eq!(normalize_or([0.0; 3], y), y);
        assert!(!is_finite([f64::NAN, 0.0, 0.0]));
    }
}

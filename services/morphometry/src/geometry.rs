//! Small vector helpers over patient-space points (`[f64; 3]`, mm, DICOM LPS).

use spinescreen_proto::volume::Vec3;

/// `a − b`.
pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `a + b`.
pub fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// `a · k`.
pub fn scale(a: Vec3, k: f64) -> Vec3 {
    [a[0] * k, a[1] * k, a[2] * k]
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

/// Euclidean distance between two points.
pub fn distance(a: Vec3, b: Vec3) -> f64 {
    norm(sub(a, b))
}

/// Midpoint of two points.
pub fn midpoint(a: Vec3, b: Vec3) -> Vec3 {
    scale(add(a, b), 0.5)
}

/// Unit vector along `a`, or `None` when `a` is (nearly) zero or not finite.
pub fn normalize(a: Vec3) -> Option<Vec3> {
    let n = norm(a);
    if n.is_finite() && n > 1e-9 {
        Some(scale(a, 1.0 / n))
    } else {
        None
    }
}

/// Whether every coordinate is finite.
pub fn is_finite(a: Vec3) -> bool {
    a.iter().all(|c| c.is_finite())
}

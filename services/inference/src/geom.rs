//! Small 3-D vector helpers for patient-space geometry (mm, LPS).

pub use spinescreen_proto::volume::Vec3;

/// `a + b`.
pub fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// `a − b`.
pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `k · a`.
pub fn scale(a: Vec3, k: f64) -> Vec3 {
    [a[0] * k, a[1] * k, a[2] * k]
}

/// `a + k · b`.
pub fn axpy(a: Vec3, k: f64, b: Vec3) -> Vec3 {
    [a[0] + k * b[0], a[1] + k * b[1], a[2] + k * b[2]]
}

/// Dot product.
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Cross product.
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

/// `a / |a|`, or `fallback` when `a` is (nearly) zero.
pub fn normalize_or(a: Vec3, fallback: Vec3) -> Vec3 {
    let n = norm(a);
    if n > 1e-9 {
        scale(a, 1.0 / n)
    } else {
        fallback
    }
}

/// The component of `v` perpendicular to the unit vector `t`, normalised (or `fallback`).
pub fn orthogonal_to(v: Vec3, t: Vec3, fallback: Vec3) -> Vec3 {
    normalize_or(axpy(v, -dot(v, t), t), fallback)
}

/// Distance between two points.
pub fn dist(a: Vec3, b: Vec3) -> f64 {
    norm(sub(a, b))
}

/// Linear interpolation `a + f (b − a)`.
pub fn lerp(a: Vec3, b: Vec3, f: f64) -> Vec3 {
    axpy(a, f, sub(b, a))
}

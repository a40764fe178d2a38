//! One-dimensional profile helpers: Gaussian smoothing, local extrema, level crossings.

/// Gaussian smoothing with `sigma` in samples (edges replicate).
pub fn smooth(p: &[f64], sigma: f64) -> Vec<f64> {
    if sigma <= 0.0 || p.len() < 2 {
        return p.to_vec();
    }
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp())
        .collect();
    let ksum: f64 = k.iter().sum();
    let n = p.len() as isize;
    (0..n)
        .map(|i| {
            let mut acc = 0.0;
            for (j, w) in (-r..=r).zip(&k) {
                let idx = (i + j).clamp(0, n - 1) as usize;
                acc += w * p[idx];
            }
            acc / ksum
        })
        .collect()
}

/// Indices of strict local minima (plateaus report their first sample).
pub fn local_minima(p: &[f64]) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 1..p.len().saturating_sub(1) {
        if p[i] < p[i - 1] && p[i] <= p[i + 1] {
            out.push(i);
        }
    }
    out
}

/// Maximum of `p` over the index range `[a, b]` (clamped), with its index.
pub fn max_in(p: &[f64], a: isize, b: isize) -> (usize, f64) {
    let (a, b) = (a.max(0) as usize, (b.max(0) as usize).min(p.len() - 1));
    let mut best = (a, f64::NEG_INFINITY);
    for (i, &v) in p.iter().enumerate().take(b + 1).skip(a) {
        if v > best.1 {
            best = (i, v);
        }
    }
    best
}

/// Minimum of `p` over the index range `[a, b]` (clamped), with its index.
pub fn min_in(p: &[f64], a: isize, b: isize) -> (usize, f64) {
    let (a, b) = (a.max(0) as usize, (b.max(0) as usize).min(p.len() - 1));
    let mut best = (a, f64::INFINITY);
    for (i, &v) in p.iter().enumerate().take(b + 1).skip(a) {
        if v < best.1 {
            best = (i, v);
        }
    }
    best
}

/// Walking from index `from` towards `to` (either direction), the fractional index where `p`
/// first falls below `level`; `None` if it never does.
pub fn first_fall_below(p: &[f64], from: usize, to: usize, level: f64) -> Option<f64> {
    let step: isize = if to >= from { 1 } else { -1 };
    let mut i = from as isize;
    while i != to as isize {
        let j = i + step;
        let (a, b) = (p[i as usize], p[j as usize]);
        if a >= level && b < level {
            let f = (a - level) / (a - b);
            return Some(i as f64 + step as f64 * f);
        }
        if a < level && i == from as isize {
            return Some(from as f64);
        }
        i = j;
    }
    None
}

/// Flatten every bump of `p` that rises above `ceiling` (a cement deposit inside a vertebral
/// body): the bump's flanks are followed outward while the profile keeps falling and stays above
/// `floor`, and the whole run is replaced by the straight line between its two ends. What lies
/// beyond the flanks (the endplates and the discs) is left as it was. Returns whether anything
/// was flattened.
pub fn flatten_bumps_above(p: &mut [f64], ceiling: f64, floor: f64) -> bool {
    let n = p.len();
    let mut changed = false;
    let mut i = 0;
    while i < n {
        if p[i] <= ceiling {
            i += 1;
            continue;
        }
        let mut b = i;
        while b + 1 < n && p[b + 1] > ceiling {
            b += 1;
        }
        let mut a = i;
        while a > 0 && p[a - 1] < p[a] && p[a - 1] > floor {
            a -= 1;
        }
        while b + 1 < n && p[b + 1] < p[b] && p[b + 1] > floor {
            b += 1;
        }
        let (va, vb) = (p[a], p[b]);
        let span = (b - a).max(1) as f64;
        for (k, v) in p[a..=b].iter_mut().enumerate() {
            *v = va + (vb - va) * k as f64 / span;
        }
        // A run cut by either end of the profile has only one true flank: hold its value.
        if a == 0 || b + 1 == n {
            let hold = if a == 0 { vb } else { va };
            p[a..=b].iter_mut().for_each(|v| *v = hold);
        }
        changed = true;
        i = b + 1;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cement_bump_is_flattened_but_endplates_and_discs_are_kept() {
        // disc 80 | endplate 600 | marrow 200 | cement 2500 with sloped flanks | marrow 200 | endplate 600 | disc 80
        let mut p = vec![80.0; 4];
        p.extend([600.0; 3]);
        p.extend([200.0, 200.0, 210.0]);
        p.extend([700.0, 1800.0, 2500.0, 2500.0, 1700.0, 600.0]);
        p.extend([205.0, 200.0, 200.0]);
        p.extend([600.0; 3]);
        p.extend([80.0; 4]);
        let before = p.clone();
        assert!(flatten_bumps_above(&mut p, 1500.0, 150.0));
        assert!(p.iter().all(|&v| v <= 600.0), "{p:?}");
        assert_eq!(p[..9], before[..9]);
        assert_eq!(p[p.len() - 9..], before[before.len() - 9..]);
        // Nothing above the ceiling: untouched.
        let mut q = before[..10].to_vec();
        assert!(!flatten_bumps_above(&mut q, 1500.0, 150.0));
        assert_eq!(q, before[..10]);
    }

    #[test]
    fn half_level_crossing_is_subsample_accurate() {
        let p: Vec<f64> = (0..20).map(|i| if i < 10 { 100.0 } else { 0.0 }).collect();
        let x = first_fall_below(&p, 2, 18, 50.0).unwrap();
        assert!((x - 9.5).abs() < 1e-9);
        let back = first_fall_below(&p, 2, 0, 50.0);
        assert!(back.is_none());
    }

    #[test]
    fn smoothing_preserves_constants_and_minima_are_found() {
        let p = vec![5.0; 10];
        assert!(smooth(&p, 1.5).iter().all(|v| (v - 5.0).abs() < 1e-9));
        let q = [3.0, 2.0, 1.0, 2.0, 3.0, 0.5, 3.0];
        assert_eq!(local_minima(&q), vec![2, 5]);
    }
}

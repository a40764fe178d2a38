//! Pure statistics for calibration testing: proportions with Wilson intervals, the ROC curve, the
//! area under it (Mann–Whitney) with DeLong's variance, and mean ± SD.

use serde::Serialize;

/// Two-sided 95 % standard normal quantile, Φ⁻¹(0.975).
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A closed interval `[lower, upper]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

/// Wilson score 95 % interval for `successes` out of `n` (Wilson, JASA 1927; recommended over the
/// Wald interval by Brown, Cai & DasGupta, Stat Sci 2001):
///
/// `(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`.
///
/// `None` when `n = 0` or `successes > n`.
pub fn wilson_interval(successes: usize, n: usize) -> Option<Interval> {
    if n == 0 || successes > n {
        return None;
    }
    let (x, n) = (successes as f64, n as f64);
    let p = x / n;
    let z2 = Z_95 * Z_95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Some(Interval {
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
    })
}

/// The Mann–Whitney kernel ψ(x, y): 1 when the positive scores higher, ½ on a tie, else 0.
fn psi(x: f64, y: f64) -> f64 {
    if x > y {
        1.0
    } else if x == y {
        0.5
    } else {
        0.0
    }
}

/// Area under the empirical ROC curve = P(score of a random positive > score of a random
/// negative) + ½ P(tie) (the Mann–Whitney U statistic over m·n). `None` without a positive and
/// a negative.
pub fn auc(positives: &[f64], negatives: &[f64]) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let total: f64 = positives
        .iter()
        .map(|x| negatives.iter().map(|y| psi(*x, *y)).sum::<f64>())
        .sum();
    Some(total / (positives.len() * negatives.len()) as f64)
}

/// AUC with DeLong's variance and 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DeLong {
    /// Area under the ROC curve.
    pub auc: f64,
    /// Variance estimate `S10/m + S01/n`.
    pub variance: f64,
    /// Standard error.
    pub se: f64,
    /// `auc ± 1.96·se`, clipped to [0, 1].
    pub ci95: Interval,
}

/// DeLong, DeLong & Clarke-Pearson (Biometrics 1988;44:837–45) for one ROC curve, via the
/// structural components:
///
/// - `V10(Xᵢ) = (1/n) Σⱼ ψ(Xᵢ, Yⱼ)` for each of the m positives,
/// - `V01(Yⱼ) = (1/m) Σᵢ ψ(Xᵢ, Yⱼ)` for each of the n negatives,
/// - `S10 = Σᵢ (V10(Xᵢ) − AUC)² / (m − 1)`, `S01 = Σⱼ (V01(Yⱼ) − AUC)² / (n − 1)`,
/// - `Var(AUC) = S10/m + S01/n`.
///
/// `None` unless there are at least two positives and two negatives. With perfect separation
/// every component equals the AUC and the variance is 0: the interval collapses to [1, 1], a
/// known property of the method on small, fully separated samples.
pub fn delong(positives: &[f64], negatives: &[f64]) -> Option<DeLong> {
    let (m, n) = (positives.len(), negatives.len());
    if m < 2 || n < 2 {
        return None;
    }
    let v10: Vec<f64> = positives
        .iter()
        .map(|x| negatives.iter().map(|y| psi(*x, *y)).sum::<f64>() / n as f64)
        .collect();
    let v01: Vec<f64> = negatives
        .iter()
        .map(|y| positives.iter().map(|x| psi(*x, *y)).sum::<f64>() / m as f64)
        .collect();
    let auc = v10.iter().sum::<f64>() / m as f64;
    let s10 = v10.iter().map(|v| (v - auc).powi(2)).sum::<f64>() / (m - 1) as f64;
    let s01 = v01.iter().map(|v| (v - auc).powi(2)).sum::<f64>() / (n - 1) as f64;
    let variance = s10 / m as f64 + s01 / n as f64;
    let se = variance.sqrt();
    Some(DeLong {
        auc,
        variance,
        se,
        ci95: Interval {
            lower: (auc - Z_95 * se).max(0.0),
            upper: (auc + Z_95 * se).min(1.0),
        },
    })
}

/// Empirical ROC curve as `(false-positive rate, true-positive rate)` points from (0, 0) to
/// (1, 1), one step per distinct score (ties move diagonally). Empty without a positive and a
/// negative.
pub fn roc_curve(positives: &[f64], negatives: &[f64]) -> Vec<(f64, f64)> {
    if positives.is_empty() || negatives.is_empty() {
        return vec![];
    }
    let mut scored: Vec<(f64, bool)> = positives
        .iter()
        .map(|s| (*s, true))
        .chain(negatives.iter().map(|s| (*s, false)))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (m, n) = (positives.len() as f64, negatives.len() as f64);
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut points = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < scored.len() {
        let s = scored[i].0;
        while i < scored.len() && scored[i].0.total_cmp(&s).is_eq() {
            if scored[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        points.push((fp as f64 / n, tp as f64 / m));
    }
    points
}

/// Counts of a binary call against truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BinaryCounts {
    /// Truth positive, called positive.
    pub true_positive: usize,
    /// Truth negative, called positive.
    pub false_positive: usize,
    /// Truth negative, called negative.
    pub true_negative: usize,
    /// Truth positive, called negative.
    pub false_negative: usize,
}

impl BinaryCounts {
    /// Add one case.
    pub fn add(&mut self, truth: bool, called: bool) {
        match (truth, called) {
            (true, true) => self.true_positive += 1,
            (false, true) => self.false_positive += 1,
            (false, false) => self.true_negative += 1,
            (true, false) => self.false_negative += 1,
        }
    }
    /// Truth positives.
    pub fn positives(&self) -> usize {
        self.true_positive + self.false_negative
    }
    /// Truth negatives.
    pub fn negatives(&self) -> usize {
        self.true_negative + self.false_positive
    }
    /// All cases.
    pub fn total(&self) -> usize {
        self.positives() + self.negatives()
    }
    /// TP / (TP + FN) as (numerator, denominator).
    pub fn sensitivity(&self) -> (usize, usize) {
        (self.true_positive, self.positives())
    }
    /// TN / (TN + FP).
    pub fn specificity(&self) -> (usize, usize) {
        (self.true_negative, self.negatives())
    }
    /// (TP + TN) / all.
    pub fn accuracy(&self) -> (usize, usize) {
        (self.true_positive + self.true_negative, self.total())
    }
}

/// Sample mean and standard deviation (n − 1 denominator; 0 for a single value). `None` when
/// empty.
pub fn mean_sd(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() < 2 {
        0.0
    } else {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    Some((mean, sd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_8_of_10_matches_hand_computation() {
        // z² = 3.841459; z²/n = 0.3841459; denominator 1.3841459.
        // centre = (0.8 + 0.1920729) / 1.3841459 = 0.716740
        // half = 1.959964 · √(0.016 + 0.0096036) / 1.3841459 = 1.959964 · 0.160011 / 1.3841459
        //      = 0.226576  →  [0.490164, 0.943316] (tables: 0.490–0.943).
        let ci = wilson_interval(8, 10).unwrap();
        assert!(close(ci.lower, 0.490164, 1e-5), "{ci:?}");
        assert!(close(ci.upper, 0.943316, 1e-5), "{ci:?}");
    }

    #[test]
    fn wilson_all_successes_stays_below_one_and_is_not_degenerate() {
        // 50/50: centre = (1 + 0.0384146) / 1.0768292 = 0.964326, half = 1.959964 · √(0.0003841)
        // / 1.0768292 = 0.035674 → [0.928652, 1].
        let ci = wilson_interval(50, 50).unwrap();
        assert!(close(ci.lower, 0.928652, 1e-5), "{ci:?}");
        assert_eq!(ci.upper, 1.0);
        let zero = wilson_interval(0, 50).unwrap();
        assert!(close(zero.lower, 0.0, 1e-12));
        assert!(close(zero.upper, 1.0 - 0.928652, 1e-5));
        assert!(wilson_interval(0, 0).is_none());
        assert!(wilson_interval(3, 2).is_none());
    }

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[0.9, 0.8], &[0.1, 0.2]), Some(1.0));
        assert_eq!(auc(&[0.1], &[0.9]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5], &[0.5]), Some(0.5));
        assert_eq!(auc(&[], &[0.5]), None);
    }

    #[test]
    fn delong_on_a_small_case_with_a_tie_matches_hand_computation() {
        // Positives X = {0.8, 0.6, 0.4}, negatives Y = {0.4, 0.3}.
        // ψ: X=0.8 → (1, 1); X=0.6 → (1, 1); X=0.4 → (½ tie with 0.4, 1).
        // V10 = [1, 1, 0.75]; AUC = 2.75/3 = 0.916667.
        // V01: Y=0.4 → (1 + 1 + ½)/3 = 5/6; Y=0.3 → 1.
        // S10 = [(1/12)² + (1/12)² + (2/12)²] / (3−1) = (6/144)/2 = 1/48.
        // S01 = [(1/12)² + (1/12)²] / (2−1) = 2/144 = 1/72.
        // Var = (1/48)/3 + (1/72)/2 = 1/144 + 1/144 = 1/72 = 0.0138889; SE = 0.117851.
        // CI = 0.916667 ± 1.959964·0.117851 = 0.916667 ± 0.230984 → [0.685683, 1 (clipped)].
        let d = delong(&[0.8, 0.6, 0.4], &[0.4, 0.3]).unwrap();
        assert!(close(d.auc, 11.0 / 12.0, 1e-12));
        assert!(close(d.variance, 1.0 / 72.0, 1e-12));
        assert!(close(d.se, 0.117851, 1e-6));
        assert!(close(d.ci95.lower, 0.685683, 1e-5), "{d:?}");
        assert_eq!(d.ci95.upper, 1.0);
    }

    #[test]
    fn delong_without_ties_matches_hand_computation() {
        // X = {0.8, 0.6, 0.4}, Y = {0.5, 0.3}: V10 = [1, 1, ½], AUC = 5/6;
        // V01 = [2/3, 1]; S10 = (1/36 + 1/36 + 4/36)/2 = 1/12; S01 = (1/36 + 1/36)/1 = 1/18;
        // Var = (1/12)/3 + (1/18)/2 = 1/36 + 1/36 = 1/18; SE = 0.235702;
        // CI = 0.833333 ± 0.461968 → [0.371365, 1].
        let d = delong(&[0.8, 0.6, 0.4], &[0.5, 0.3]).unwrap();
        assert!(close(d.auc, 5.0 / 6.0, 1e-12));
        assert!(close(d.variance, 1.0 / 18.0, 1e-12));
        assert!(close(d.ci95.lower, 0.371365, 1e-5), "{d:?}");
        assert!(delong(&[0.8], &[0.5, 0.3]).is_none());
    }

    #[test]
    fn delong_perfect_separation_has_zero_variance() {
        let d = delong(&[0.9, 0.8, 0.7], &[0.2, 0.1]).unwrap();
        assert_eq!((d.auc, d.variance), (1.0, 0.0));
        assert_eq!((d.ci95.lower, d.ci95.upper), (1.0, 1.0));
    }

    #[test]
    fn roc_curve_steps_through_distinct_scores() {
        let c = roc_curve(&[0.9, 0.6, 0.4], &[0.6, 0.2]);
        assert_eq!(
            c,
            vec![
                (0.0, 0.0),
                (0.0, 1.0 / 3.0),
                (0.5, 2.0 / 3.0),
                (0.5, 1.0),
                (1.0, 1.0)
            ]
        );
        // The trapezoidal area under these points equals the Mann–Whitney AUC.
        let area: f64 = c
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!(close(
            area,
            auc(&[0.9, 0.6, 0.4], &[0.6, 0.2]).unwrap(),
            1e-12
        ));
    }

    #[test]
    fn counts_give_sensitivity_specificity_accuracy() {
        let mut c = BinaryCounts::default();
        for (t, p) in [
            (true, true),
            (true, true),
            (true, false),
            (false, false),
            (false, true),
        ] {
            c.add(t, p);
        }
        assert_eq!(c.sensitivity(), (2, 3));
        assert_eq!(c.specificity(), (1, 2));
        assert_eq!(c.accuracy(), (3, 5));
    }

    #[test]
    fn mean_sd_uses_n_minus_1() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, Σ(x−5)² = 32, SD = √(32/7) = 2.138090.
        let (m, sd) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(m, 5.0);
        assert!(close(sd, 2.138090, 1e-6));
        assert_eq!(mean_sd(&[3.0]), Some((3.0, 0.0)));
        assert_eq!(mean_sd(&[]), None);
    }
}

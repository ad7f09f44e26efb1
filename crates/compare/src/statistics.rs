//! The numbers every summary is made of: the median of a set of values
//! with its spread ([`median_spread`], used by the results summary and the
//! gate alike) and a robust estimate of their noise ([`noise`], the gate's
//! tolerances). One place, so a median means the same thing everywhere.

/// Median and half the range as a fraction of the median.
pub fn median_spread(mut xs: Vec<f64>) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let m = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    let spread = if m == 0.0 {
        0.0
    } else {
        (xs[n - 1] - xs[0]) / 2.0 / m
    };
    Some((m, spread))
}

/// Robust standard deviation: 1.4826 x the median absolute deviation, but
/// never below the sample standard deviation divided by 2 (with a handful
/// of runs the MAD can be 0 by chance).
pub fn noise(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let med = median_spread(values.to_vec()).map_or(0.0, |m| m.0);
    let mad = median_spread(values.iter().map(|v| (v - med).abs()).collect()).map_or(0.0, |m| m.0);
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    (1.4826 * mad).max(sd / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        assert_eq!(median_spread(vec![3.0, 1.0, 2.0]), Some((2.0, 0.5)));
        assert_eq!(median_spread(vec![4.0, 2.0]), Some((3.0, 1.0 / 3.0)));
        assert_eq!(median_spread(vec![]), None);
    }

    #[test]
    fn noise_is_robust_and_never_zero_for_spread_values() {
        assert_eq!(noise(&[1.0]), 0.0);
        let n = noise(&[1.0, 1.0, 1.0, 2.0]);
        assert!(n > 0.0, "MAD 0, but the values differ: {n}");
        let n = noise(&[1.0, 1.1, 0.9, 1.05, 0.95]);
        assert!((0.05..0.12).contains(&n), "{n}");
    }
}

//! The statistics of the UPT reports. Formulas are the textbook ones, written out so that a
//! reader can check them; the t distribution comes from `statrs`.
//!
//! - Paired t-test on d = post − pre: t = mean(d) / (sd(d)/√n), sd with n − 1, df = n − 1,
//!   p two-sided = 2·(1 − F_t(|t|; df)) — what `scipy.stats.ttest_rel` computes.
//! - Cohen's d for paired data (d_z) = mean(d) / sd(d).
//! - Normalised gain (Hake): per participant g = (post − pre) / (100 − pre), averaged over
//!   participants with pre < 100; and the class gain (mean_post − mean_pre) / (100 − mean_pre).
//! - Point-biserial discrimination: Pearson r between the item score (0/1, or the fraction
//!   of the weight earned) and the total score — `scipy.stats.pointbiserialr`.
//! - KR-20 = k/(k−1) · (1 − Σ p_i q_i / σ²), σ² the population variance (÷ N) of the number
//!   of items right, p_i the proportion right on item i.

use statrs::distribution::{ContinuousCDF, StudentsT};

#[derive(Clone, Debug, PartialEq)]
pub struct PairedT {
    pub(crate) n: usize,
    pub(crate) mean_pre: f64,
    pub(crate) mean_post: f64,
    pub mean_gain: f64,
    pub(crate) sd_gain: f64,
    /// `None` when every gain is the same (sd 0) or n < 2.
    pub t: Option<f64>,
    pub df: usize,
    pub p: Option<f64>,
    pub cohen_dz: Option<f64>,
    pub(crate) n_gain_mean: Option<f64>,
    pub(crate) n_gain_class: Option<f64>,
}

pub(crate) fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample standard deviation (n − 1).
pub(crate) fn sd_sample(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// Population variance (n).
pub(crate) fn var_population(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64
}

/// Two-sided p of a t statistic with `df` degrees of freedom.
pub(crate) fn t_two_sided_p(t: f64, df: usize) -> Option<f64> {
    let dist = StudentsT::new(0.0, 1.0, df as f64).ok()?;
    Some((2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0))
}

/// Paired t-test and effect sizes of `post` against `pre` (same participants, same order).
pub fn paired_t(pre: &[f64], post: &[f64]) -> Option<PairedT> {
    let n = pre.len();
    if n == 0 || n != post.len() {
        return None;
    }
    let d: Vec<f64> = pre.iter().zip(post).map(|(a, b)| b - a).collect();
    let mean_gain = mean(&d);
    let sd = sd_sample(&d);
    let usable = n >= 2 && sd.is_finite() && sd > 0.0;
    let t = usable.then(|| mean_gain / (sd / (n as f64).sqrt()));
    let p = t.and_then(|t| t_two_sided_p(t, n - 1));
    let gains: Vec<f64> = pre
        .iter()
        .zip(post)
        .filter(|(a, _)| **a < 100.0)
        .map(|(a, b)| (b - a) / (100.0 - a))
        .collect();
    let (mean_pre, mean_post) = (mean(pre), mean(post));
    Some(PairedT {
        n,
        mean_pre,
        mean_post,
        mean_gain,
        sd_gain: sd,
        t,
        df: n.saturating_sub(1),
        p,
        cohen_dz: usable.then(|| mean_gain / sd),
        n_gain_mean: (!gains.is_empty()).then(|| mean(&gains)),
        n_gain_class: (mean_pre < 100.0).then(|| (mean_post - mean_pre) / (100.0 - mean_pre)),
    })
}

/// Pearson correlation; `None` if either variable is constant.
pub(crate) fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some(sxy / (sxx * syy).sqrt())
}

/// Point-biserial correlation of an item score with the total (Pearson r).
pub fn point_biserial(item: &[f64], total: &[f64]) -> Option<f64> {
    pearson(item, total)
}

/// KR-20 of a 0/1 matrix (one row per participant, one column per item, same items for
/// everyone). `None` with fewer than 2 items or participants, or no variance.
pub fn kr20(rows: &[Vec<bool>]) -> Option<f64> {
    let n = rows.len();
    let k = rows.first()?.len();
    if n < 2 || k < 2 || rows.iter().any(|r| r.len() != k) {
        return None;
    }
    let totals: Vec<f64> = rows
        .iter()
        .map(|r| r.iter().filter(|&&x| x).count() as f64)
        .collect();
    let var = var_population(&totals);
    if var == 0.0 {
        return None;
    }
    let pq: f64 = (0..k)
        .map(|i| {
            let p = rows.iter().filter(|r| r[i]).count() as f64 / n as f64;
            p * (1.0 - p)
        })
        .sum();
    Some(k as f64 / (k as f64 - 1.0) * (1.0 - pq / var))
}

/// Hake's category of a normalised gain.
pub(crate) fn gain_category(g: f64) -> &'static str {
    if g >= 0.7 {
        "tinggi"
    } else if g >= 0.3 {
        "sedang"
    } else {
        "rendah"
    }
}

/// Cohen's rule of thumb for |d|.
pub(crate) fn effect_category(d: f64) -> &'static str {
    let d = d.abs();
    if d >= 0.8 {
        "besar"
    } else if d >= 0.5 {
        "sedang"
    } else if d >= 0.2 {
        "kecil"
    } else {
        "sangat kecil"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_values() {
        // Two-sided p of t = 2.0 with 10 df is 0.07338803 (tables / scipy.stats.t.sf(2,10)*2).
        let p = t_two_sided_p(2.0, 10).unwrap();
        assert!((p - 0.073_388_03).abs() < 1e-7, "{p}");
        let r = paired_t(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap();
        assert_eq!(r.mean_gain, 2.0);
        assert_eq!(r.df, 2);
        assert!((r.t.unwrap() - 3.464_101_615).abs() < 1e-8);
        assert!(
            paired_t(&[1.0, 2.0], &[2.0, 3.0]).unwrap().t.is_none(),
            "constant gain"
        );
        assert_eq!(kr20(&[vec![true, true], vec![true, true]]), None);
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), Some(1.0));
    }
}

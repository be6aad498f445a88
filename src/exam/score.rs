//! Scoring, done on the server from the package's key and weights.
//!
//! Arithmetic is exact: weights are whole hundredths and partial credit has a denominator of
//! at most 5, so every item's credit is a whole number of 1/6000ths of a point (hundredths ×
//! 60, the lcm of 1..5). The score is 100 × earned / possible, rounded once, half up, to two
//! decimals (BRIEF §7); the predicate is looked up on that rounded number.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::exam::form::Id;
use crate::package::model::{Item, ItemKind};

/// A score in hundredths of a point: 7001 is 70.01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hundredths(pub u32);

impl std::fmt::Display for Hundredths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Score {
    pub total: Hundredths,
    /// Sub-score per competency tag, on the same 0–100 scale.
    pub by_competency: BTreeMap<String, Hundredths>,
    /// Credit per item id, in 1/6000ths of a point (see module doc). The ids are the
    /// shared [`Id`]s of the forms (stored as plain strings).
    pub items: BTreeMap<Id, u64>,
    pub passed: bool,
    pub predicate: String,
}

/// Credit of one answer in 1/6000ths of a point.
pub(crate) fn item_credit(item: &Item, choice: &[String]) -> u64 {
    let w = item.weight_hundredths() * 60;
    let key: Vec<&String> = item.key.iter().collect();
    let hits = choice.iter().filter(|c| key.contains(c)).count() as u64;
    let wrong = choice.len() as u64 - hits;
    match item.kind {
        ItemKind::Single | ItemKind::Truefalse => {
            if choice.len() == 1 && hits == 1 {
                w
            } else {
                0
            }
        }
        ItemKind::Multiple if item.partial_credit => {
            let n = key.len() as u64;
            w * hits.saturating_sub(wrong) / n
        }
        ItemKind::Multiple => {
            if wrong == 0 && hits == key.len() as u64 {
                w
            } else {
                0
            }
        }
    }
}

/// 100 × earned / possible, rounded half up to hundredths.
pub(crate) fn percent(earned: u64, possible: u64) -> Hundredths {
    if possible == 0 {
        return Hundredths(0);
    }
    let num = earned as u128 * 10_000 * 2 + possible as u128;
    Hundredths((num / (2 * possible as u128)) as u32)
}

/// The Perdirjen GTK 4141/2023 predicate table, on the rounded score.
pub fn predicate(score: Hundredths) -> &'static str {
    match score.0 {
        s if s > 9000 => "Amat Baik",
        s if s > 8000 => "Baik",
        s if s > 7000 => "Cukup",
        s if s > 6000 => "Sedang",
        _ => "Kurang",
    }
}

/// Scores an attempt: `items` are the attempt's items, `answers` maps item id to choice.
pub fn score(
    items: &[&Item],
    answers: &dyn Fn(&str) -> Option<Vec<String>>,
    pass_threshold: f64,
) -> Score {
    let mut earned = 0;
    let mut possible = 0;
    let mut per: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut credits = BTreeMap::new();
    for it in items {
        let c = answers(&it.id).map(|ch| item_credit(it, &ch)).unwrap_or(0);
        let w = it.weight_hundredths() * 60;
        earned += c;
        possible += w;
        let e = per.entry(it.competency.clone()).or_default();
        e.0 += c;
        e.1 += w;
        credits.insert(Id::new(&it.id), c);
    }
    let total = percent(earned, possible);
    let threshold = (pass_threshold * 100.0).round() as u32;
    Score {
        total,
        by_competency: per
            .into_iter()
            .map(|(k, (e, p))| (k, percent(e, p)))
            .collect(),
        items: credits,
        passed: total.0 > threshold,
        predicate: predicate(total).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_up_once() {
        assert_eq!(percent(2, 3).to_string(), "66.67");
        assert_eq!(percent(1, 3).to_string(), "33.33");
        assert_eq!(percent(1, 160).to_string(), "0.63"); // 0.625 → 0.63
        assert_eq!(percent(7, 10).to_string(), "70.00");
        assert_eq!(percent(0, 10).to_string(), "0.00");
        assert_eq!(percent(10, 10).to_string(), "100.00");
    }

    #[test]
    fn predicate_boundaries() {
        for (s, p) in [
            (6000, "Kurang"),
            (6001, "Sedang"),
            (7000, "Sedang"),
            (7001, "Cukup"),
            (8000, "Cukup"),
            (9000, "Baik"),
            (9001, "Amat Baik"),
            (10000, "Amat Baik"),
        ] {
            assert_eq!(predicate(Hundredths(s)), p, "{s}");
        }
    }
}

//! Author checks run by `tuk package build` and `tuk package preview` on the canonical items.
//!
//! Some mistakes make an item unfair or unanswerable; they refuse the build, naming the item
//! and what to change:
//! - an option with nothing to see (empty text and no image);
//! - two options of one item that read the same (text compared without case and with runs
//!   of white space made one; images by file);
//! - a key that is not one of the options (also checked by [`super::model::validate`]);
//! - two items whose stems read exactly the same.
//!
//! Others are habits that give answers away or hurt participants who cannot see images;
//! they are printed as warnings and the package is still built:
//! - key letters badly unbalanced: among at least [`MIN_ITEMS_FOR_BANK_CHECKS`]
//!   single-answer items, one option position is the key at least 1.6 times as often as
//!   chance would make it (with 4 options: 40 % of keys on one letter instead of 25 %);
//! - the key is the strictly longest option (by visible characters) in more than half of
//!   those single-answer items that have at least 3 options (chance is 1 in 3 to 1 in 5);
//! - an image without `alt` text (a screen reader, or a participant whose image does not
//!   load, gets nothing);
//! - a `multiple` item whose stem does not tell the participant to choose all correct
//!   answers (it must contain "semua", "lebih dari satu" or "all").

use std::collections::{BTreeSet, HashMap};

use anyhow::{Result, bail};

use super::html;
use super::model::{Item, ItemKind};

/// The bank-wide warnings (key balance, longest option) need at least this many
/// single-answer items to mean anything.
pub(crate) const MIN_ITEMS_FOR_BANK_CHECKS: usize = 10;

/// Option positions shown to authors: the letters of their source.
const LETTERS: [char; 5] = ['A', 'B', 'C', 'D', 'E'];

/// Runs every check on canonical items; returns the warnings, or the first refusal.
pub(crate) fn check(items: &[Item], media: &BTreeSet<String>) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut stems: HashMap<(String, String), &str> = HashMap::new();
    // Per option position: times it is the key, and the chance-expected count.
    let mut key_at = [0usize; 5];
    let mut expected = [0f64; 5];
    let mut singles = 0usize;
    let (mut longest_key, mut with_three) = (0usize, 0usize);
    for it in items {
        let stem = html::canonical(&it.stem, media)
            .map_err(|e| anyhow::anyhow!("item {}, stem: {e}", it.id))?;
        let mut no_alt = stem.images_without_alt;
        if let Some(other) = stems.insert((it.test.clone(), stem.text.to_lowercase()), &it.id) {
            bail!(
                "item {}: its stem is exactly the stem of item {other}; delete one of them or change its stem",
                it.id
            );
        }
        let mut seen: HashMap<String, &str> = HashMap::new();
        let mut lengths = Vec::with_capacity(it.options.len());
        for o in &it.options {
            let c = html::canonical(&o.html, media)
                .map_err(|e| anyhow::anyhow!("item {}, option {}: {e}", it.id, o.id))?;
            if c.text.trim().is_empty() {
                bail!(
                    "item {}, option {}: the option is empty; write its text or delete the option",
                    it.id,
                    o.id
                );
            }
            if let Some(first) = seen.insert(c.text.to_lowercase(), &o.id) {
                bail!(
                    "item {}: options {first} and {} read the same ({:?}); every option must be different",
                    it.id,
                    o.id,
                    c.text
                );
            }
            no_alt += c.images_without_alt;
            lengths.push(c.text.chars().count());
        }
        for k in &it.key {
            if !it.options.iter().any(|o| &o.id == k) {
                bail!(
                    "item {}: key {k:?} is not one of its options ({})",
                    it.id,
                    it.options
                        .iter()
                        .map(|o| o.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        if no_alt > 0 {
            warnings.push(format!(
                "item {}: {no_alt} image(s) without alt text; write alt=\"…\" saying what the image shows",
                it.id
            ));
        }
        if it.kind == ItemKind::Multiple && !tells_to_choose_all(&stem.text) {
            warnings.push(format!(
                "item {}: a multiple-answer item whose stem does not say to choose all correct answers; add e.g. \"Pilih semua jawaban yang benar.\"",
                it.id
            ));
        }
        if it.kind == ItemKind::Single && it.key.len() == 1 && it.options.len() <= 5 {
            let n = it.options.len();
            if let Some(pos) = it.options.iter().position(|o| o.id == it.key[0]) {
                singles += 1;
                key_at[pos] += 1;
                for e in expected.iter_mut().take(n) {
                    *e += 1.0 / n as f64;
                }
                if n >= 3 {
                    with_three += 1;
                    let key_len = lengths[pos];
                    if lengths
                        .iter()
                        .enumerate()
                        .all(|(i, &l)| i == pos || l < key_len)
                    {
                        longest_key += 1;
                    }
                }
            }
        }
    }
    if singles >= MIN_ITEMS_FOR_BANK_CHECKS {
        for (pos, (&have, &want)) in key_at.iter().zip(&expected).enumerate() {
            if want > 0.0 && have as f64 >= 1.6 * want {
                warnings.push(format!(
                    "key letters are unbalanced: {} of {singles} single-answer keys ({:.0} %) are option {} (chance would give about {:.0}); move some keys to other letters",
                    have,
                    100.0 * have as f64 / singles as f64,
                    LETTERS[pos],
                    want
                ));
            }
        }
    }
    if with_three >= MIN_ITEMS_FOR_BANK_CHECKS && longest_key * 2 > with_three {
        warnings.push(format!(
            "the key is the longest option in {longest_key} of {with_three} single-answer items; participants learn to pick the longest option, so make distractors as long as keys"
        ));
    }
    Ok(warnings)
}

/// The stem tells the participant to choose every correct answer (Indonesian or English).
fn tells_to_choose_all(text: &str) -> bool {
    let t = text.to_lowercase();
    t.contains("semua")
        || t.contains("lebih dari satu")
        || t.split(|c: char| !c.is_alphanumeric()).any(|w| w == "all")
}

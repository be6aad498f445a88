//! Which items a participant gets, and in which order (parallel forms).
//!
//! Everything is derived from a seed (blake3 of the package file hash, the test and the
//! participant), so the same participant always gets the same form: a resume, a restart or
//! a move to another PC shows the same items in the same order. Neighbours in a 20-PC lab
//! get different orders when the package asks for shuffling.

use serde::{Deserialize, Serialize};

use crate::package::ItemBank;
use crate::package::model::{ItemKind, TestSpec};

/// One item as this participant sees it: the item id and its options in display order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FormItem {
    pub item: String,
    pub options: Vec<String>,
}

/// A deterministic stream of random numbers from blake3's extendable output.
struct Stream(blake3::OutputReader);

impl Stream {
    fn new(parts: &[&str]) -> Stream {
        let mut h = blake3::Hasher::new_derive_key("tuk 2026 parallel forms");
        for p in parts {
            h.update(p.as_bytes());
            h.update(&[0]);
        }
        Stream(h.finalize_xof())
    }

    /// Uniform in 0..n (rejection sampling, no modulo bias).
    fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let mut b = [0u8; 8];
            self.0.fill(&mut b);
            let v = u64::from_le_bytes(b);
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Builds the participant's form for a test from the bank.
pub fn build(
    package_hash: &str,
    test: &TestSpec,
    participant: &str,
    bank: &ItemBank,
) -> Vec<FormItem> {
    let mut rng = Stream::new(&[package_hash, &test.id, participant]);
    let in_test: Vec<usize> = (0..bank.items.len())
        .filter(|&i| bank.items[i].test == test.id)
        .collect();
    let mut chosen: Vec<usize> = if test.draw.is_empty() {
        in_test
    } else {
        let mut picked = Vec::new();
        for d in &test.draw {
            let mut pool: Vec<usize> = in_test
                .iter()
                .copied()
                .filter(|&i| bank.items[i].pool == d.pool)
                .collect();
            rng.shuffle(&mut pool);
            picked.extend(pool.into_iter().take(d.count as usize));
        }
        // Bank order unless shuffling is asked for.
        picked.sort_unstable();
        picked
    };
    if test.shuffle_items {
        rng.shuffle(&mut chosen);
    }
    chosen
        .into_iter()
        .map(|i| {
            let it = &bank.items[i];
            let mut options: Vec<String> = it.options.iter().map(|o| o.id.clone()).collect();
            if test.shuffle_options && it.kind != ItemKind::Truefalse {
                rng.shuffle(&mut options);
            }
            FormItem {
                item: it.id.clone(),
                options,
            }
        })
        .collect()
}

//! Which items a participant gets, and in which order (parallel forms).
//!
//! Everything is derived from a seed (blake3 of the package file hash, the test and the
//! participant), so the same participant always gets the same form: a resume, a restart or
//! a move to another PC shows the same items in the same order. Neighbours in a 20-PC lab
//! get different orders when the package asks for shuffling.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::package::ItemBank;
use crate::package::model::{ItemKind, TestSpec};

/// One item as this participant sees it: the item id and its options in display order.
///
/// Stored as `{"item": "...", "options": ["...", ...]}` (plain strings); in memory the ids
/// are shared [`Id`]s, so 2,000 forms of the same 40 items hold each id once (issue 17).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FormItem {
    pub item: Id,
    pub options: Ids,
}

/// Every id handed out by [`Id::new`]: one copy per distinct string for the life of the
/// process. It holds the item and option ids of the packages seen, a few kilobytes each.
static IDS: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Default::default);

/// An item or option id, interned: cloning it or making it again from the same string
/// gives a pointer to the same bytes (16 bytes per use instead of a 24-byte `String` with
/// an allocation of its own). Serialised as a plain string, so the stored format is the
/// same as a `String`'s.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(Arc<str>);

impl Id {
    /// The shared copy of `s`, made on first use.
    pub fn new(s: &str) -> Id {
        // A panic while the set was held cannot leave it inconsistent (insert is the only
        // change), so a poisoned lock is used as it is.
        let mut ids = IDS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = ids.get(s) {
            return Id(id.clone());
        }
        let id: Arc<str> = Arc::from(s);
        ids.insert(id.clone());
        Id(id)
    }
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Id {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Id {
        Id::new(s)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Id::new(&s))
    }
}

/// Every list handed out by [`Ids::new`], kept for the life of the process (like `IDS`).
/// Bounded by the item banks seen: per item of n options (n ≤ 5, `package::model`), at
/// most min(n!, participants) option orders and 2ⁿ chosen sets. A browser can add only a
/// set of a multiple-answer item's own options that nobody chose before (a choice is
/// matched to the form's ids before it is made), never an id the bank does not have. Banks
/// made by `tuk package` share the option ids `a`–`e`, so all their items together have
/// a few hundred lists.
static LISTS: LazyLock<Mutex<HashSet<Arc<[Id]>>>> = LazyLock::new(Default::default);

/// A short list of ids, interned like [`Id`]: a form item's options in display order, or
/// the options an answer chose. 2,000 forms of 40 items with 4 options had 80,000 such
/// lists of their own (6.4 MiB, dhat, issue 17); the same order or choice is now one copy.
/// Serialised as a plain list of strings, so the stored format is that of a `Vec<String>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ids(Arc<[Id]>);

impl Ids {
    /// The shared copy of `ids`, made on first use.
    pub fn new(ids: &[Id]) -> Ids {
        // As for `Id::new`: insert is the only change, so a poisoned set is consistent.
        let mut lists = LISTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = lists.get(ids) {
            return Ids(l.clone());
        }
        let l: Arc<[Id]> = Arc::from(ids);
        lists.insert(l.clone());
        Ids(l)
    }
}

impl Deref for Ids {
    type Target = [Id];
    fn deref(&self) -> &[Id] {
        &self.0
    }
}

impl fmt::Debug for Ids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Ids {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (*self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ids {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ids, D::Error> {
        let v = Vec::<Id>::deserialize(d)?;
        Ok(Ids::new(&v))
    }
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
            let mut options: Vec<Id> = it.options.iter().map(|o| Id::new(&o.id)).collect();
            if test.shuffle_options && it.kind != ItemKind::Truefalse {
                rng.shuffle(&mut options);
            }
            FormItem {
                item: Id::new(&it.id),
                options: Ids::new(&options),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shared_and_stored_as_plain_strings() {
        let (a, b) = (Id::new("KKA-P01"), Id::new(&String::from("KKA-P01")));
        assert!(Arc::ptr_eq(&a.0, &b.0), "the same id is one copy");
        let f = FormItem {
            item: a,
            options: Ids::new(&["b", "a"].map(Id::new)),
        };
        let json = serde_json::to_string(&f).expect("encode");
        // The format a `String`/`Vec<String>` form item had: no migration.
        assert_eq!(json, r#"{"item":"KKA-P01","options":["b","a"]}"#);
        let back: FormItem = serde_json::from_str(&json).expect("decode");
        assert_eq!(back, f);
        assert!(
            Arc::ptr_eq(&back.item.0, &f.item.0),
            "a decoded id is shared too"
        );
        assert!(
            Arc::ptr_eq(&back.options.0, &f.options.0),
            "a decoded option order is shared too"
        );
        let other = Ids::new(&["a", "b"].map(Id::new));
        assert!(
            !Arc::ptr_eq(&other.0, &f.options.0),
            "another order is another list"
        );
    }
}

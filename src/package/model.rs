//! The typed content of a question package, and the rules that make it valid.
//!
//! The same types are read from the UPT's source folder (TOML + CSV) and from the decrypted
//! payload (JSON) at the TUK, and [`validate`] runs on both sides: a TUK never trusts that
//! the builder checked.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::html;

/// Version of the source and payload formats this binary understands.
pub(crate) const FORMAT: u32 = 1;

/// The test manifest: who made it, which tests, which sessions.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub(crate) format: u32,
    pub(crate) id: String,
    pub version: u32,
    pub(crate) upt: String,
    pub(crate) title: String,
    /// UTC offset of the schedule, e.g. `+07:00` (WIB).
    #[serde(default = "default_tz")]
    pub(crate) timezone: String,
    #[serde(rename = "test")]
    pub tests: Vec<TestSpec>,
    #[serde(rename = "session")]
    pub sessions: Vec<SessionSpec>,
}

fn default_tz() -> String {
    "+07:00".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    pub(crate) id: String,
    pub(crate) title: String,
    /// Path of the item bank in the source folder (ignored in the payload).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) bank: String,
    /// Source only (not stored in the package): the competency of the items of a bank whose
    /// format carries none (Aiken, QTI; GIFT and Moodle XML questions outside a category).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) competency: String,
    pub(crate) duration_minutes: u32,
    /// How many items each participant gets.
    pub items: u32,
    /// A participant passes when the score is strictly greater than this (Perdirjen 2023: 70).
    #[serde(default = "default_threshold")]
    pub pass_threshold: f64,
    #[serde(default)]
    pub(crate) shuffle_items: bool,
    #[serde(default)]
    pub(crate) shuffle_options: bool,
    #[serde(default)]
    pub(crate) show_score: bool,
    #[serde(default)]
    pub(crate) instructions: String,
    /// Parallel forms: draw `count` items from each pool, per participant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) draw: Vec<Draw>,
}

fn default_threshold() -> f64 {
    70.0
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Draw {
    pub(crate) pool: String,
    pub(crate) count: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    pub(crate) id: String,
    pub(crate) test: String,
    pub(crate) date: String,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) room: String,
}

/// One row of the roster: a participant registered for one test in one session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Participant {
    pub participant: crate::ids::ParticipantNo,
    pub name: String,
    pub(crate) institution: String,
    pub(crate) district: String,
    pub(crate) province: String,
    pub(crate) test: String,
    pub session: String,
    /// Earlier UKG score, for the UPT's pre/post analysis.
    pub nilai_awal: Option<f64>,
    /// Accommodation: minutes added to this participant's duration.
    #[serde(default)]
    pub(crate) extra_minutes: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Single,
    Multiple,
    Truefalse,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemOption {
    pub id: String,
    pub html: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    /// Filled from the bank's test when read from source.
    #[serde(default)]
    pub(crate) test: String,
    #[serde(rename = "type")]
    pub kind: ItemKind,
    pub competency: String,
    #[serde(default)]
    pub(crate) indicator: String,
    /// Pool for parallel forms; defaults to the competency.
    #[serde(default)]
    pub pool: String,
    #[serde(default = "default_weight")]
    pub weight: f64,
    pub stem: String,
    #[serde(default)]
    pub options: Vec<ItemOption>,
    pub key: Vec<String>,
    #[serde(default)]
    pub partial_credit: bool,
}

/// An item's weight when the package does not give one.
fn default_weight() -> f64 {
    1.0
}

impl Item {
    /// True/false items get their two options from the system, in Bahasa Indonesia.
    pub(crate) fn normalise(&mut self) {
        if self.kind == ItemKind::Truefalse && self.options.is_empty() {
            self.options = vec![
                ItemOption {
                    id: "benar".into(),
                    html: "Benar".into(),
                },
                ItemOption {
                    id: "salah".into(),
                    html: "Salah".into(),
                },
            ];
        }
        if self.pool.is_empty() {
            self.pool = self.competency.clone();
        }
    }

    /// The weight in hundredths, the unit scoring works in (exact arithmetic).
    pub(crate) fn weight_hundredths(&self) -> u64 {
        (self.weight * 100.0).round() as u64
    }
}

/// The end-of-programme questionnaire (juknis 2016, Lampiran 1).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Questionnaire {
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) instructions: String,
    #[serde(default)]
    pub(crate) scale: Vec<Question>,
    #[serde(default)]
    pub(crate) open: Vec<Question>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Question {
    pub(crate) id: String,
    pub(crate) text: String,
}

/// The five answers of every scale question, best first.
pub(crate) const SCALE_LABELS: [&str; 5] =
    ["Sangat Baik", "Baik", "Cukup", "Kurang", "Sangat Kurang"];

/// Limits that keep a package sane (and a hostile one harmless).
pub(crate) const MAX_ITEMS: usize = 20_000;
pub(crate) const MAX_PARTICIPANTS: usize = 100_000;
pub(crate) const MAX_HTML_BYTES: usize = 64 * 1024;
pub(crate) const MAX_MEDIA_BYTES: u64 = 16 * 1024 * 1024;

/// Checks every cross-reference and rule of a package. Errors name the item, test, session
/// or participant at fault.
pub(crate) fn validate(
    manifest: &Manifest,
    roster: &[Participant],
    items: &[Item],
    media: &BTreeSet<String>,
    questionnaire: Option<&Questionnaire>,
) -> Result<()> {
    validate_roster_only(manifest, roster, questionnaire)?;
    validate_items(manifest, items, media)
}

/// Everything that does not need the items (which may still be behind a release code).
pub(crate) fn validate_roster_only(
    manifest: &Manifest,
    roster: &[Participant],
    questionnaire: Option<&Questionnaire>,
) -> Result<()> {
    if manifest.format != FORMAT {
        bail!(
            "package format {} is not supported by this tuk (it reads format {FORMAT}); update tuk",
            manifest.format
        );
    }
    check_id("package id", &manifest.id)?;
    if manifest.version == 0 {
        bail!("package version must be 1 or more");
    }
    if manifest.upt.trim().is_empty() || manifest.title.trim().is_empty() {
        bail!("package.toml: `upt` and `title` must not be empty");
    }
    parse_offset(&manifest.timezone)?;
    if manifest.tests.is_empty() {
        bail!("package.toml: the package has no [[test]]");
    }
    let mut tests = BTreeMap::new();
    for t in &manifest.tests {
        check_id("test id", &t.id)?;
        if tests.insert(t.id.as_str(), t).is_some() {
            bail!("test {:?} is defined twice", t.id);
        }
        if t.duration_minutes == 0 || t.duration_minutes > 24 * 60 {
            bail!(
                "test {:?}: duration_minutes must be between 1 and 1440",
                t.id
            );
        }
        if !(0.0..=100.0).contains(&t.pass_threshold) {
            bail!("test {:?}: pass_threshold must be between 0 and 100", t.id);
        }
        html::validate(&t.instructions, &BTreeSet::new())
            .map_err(|e| anyhow::anyhow!("test {:?} instructions: {e}", t.id))?;
    }
    let mut sessions = HashSet::new();
    for s in &manifest.sessions {
        check_id("session id", &s.id)?;
        if !sessions.insert(s.id.as_str()) {
            bail!("session {:?} is defined twice", s.id);
        }
        if !tests.contains_key(s.test.as_str()) {
            bail!("session {:?} names unknown test {:?}", s.id, s.test);
        }
        time::Date::parse(
            &s.date,
            &time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| anyhow::anyhow!("session {:?}: date must be YYYY-MM-DD", s.id))?;
        let mut times = Vec::new();
        for hm in [&s.start, &s.end] {
            times.push(parse_hm(hm).ok_or_else(|| {
                anyhow::anyhow!("session {:?}: times must be HH:MM, got {hm:?}", s.id)
            })?);
        }
        if times[1] <= times[0] {
            bail!(
                "session {:?}: end {} is not after start {}",
                s.id,
                s.end,
                s.start
            );
        }
    }

    if roster.is_empty() {
        bail!("roster: no participants");
    }
    if roster.len() > MAX_PARTICIPANTS {
        bail!("roster: too many participants ({})", roster.len());
    }
    let mut pairs = HashSet::new();
    for p in roster {
        check_id("participant number", &p.participant)?;
        if p.name.trim().is_empty() {
            bail!("participant {}: name is empty", p.participant);
        }
        let Some(session) = manifest.sessions.iter().find(|s| s.id == p.session) else {
            bail!(
                "participant {}: unknown session {:?}",
                p.participant,
                p.session
            );
        };
        if !tests.contains_key(p.test.as_str()) {
            bail!("participant {}: unknown test {:?}", p.participant, p.test);
        }
        if session.test != p.test {
            bail!(
                "participant {}: session {:?} is for test {:?}, not {:?}",
                p.participant,
                p.session,
                session.test,
                p.test
            );
        }
        if !pairs.insert((p.participant.as_str(), p.test.as_str())) {
            bail!(
                "participant {} is registered twice for test {:?}",
                p.participant,
                p.test
            );
        }
        if let Some(n) = p.nilai_awal
            && !(0.0..=100.0).contains(&n)
        {
            bail!(
                "participant {}: nilai_awal {n} is not between 0 and 100",
                p.participant
            );
        }
        if p.extra_minutes > 24 * 60 {
            bail!("participant {}: extra_minutes is absurd", p.participant);
        }
    }
    if let Some(q) = questionnaire {
        let mut ids = HashSet::new();
        for qq in q.scale.iter().chain(&q.open) {
            check_id("question id", &qq.id)?;
            if !ids.insert(qq.id.as_str()) {
                bail!("questionnaire: question id {:?} is used twice", qq.id);
            }
        }
    }
    Ok(())
}

fn validate_items(manifest: &Manifest, items: &[Item], media: &BTreeSet<String>) -> Result<()> {
    let tests: BTreeMap<&str, &TestSpec> =
        manifest.tests.iter().map(|t| (t.id.as_str(), t)).collect();
    if items.len() > MAX_ITEMS {
        bail!("too many items ({}; at most {MAX_ITEMS})", items.len());
    }
    let mut seen = HashSet::new();
    let mut per_pool: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    let mut per_test: BTreeMap<&str, u32> = BTreeMap::new();
    for it in items {
        check_id("item id", &it.id)?;
        if !seen.insert(it.id.as_str()) {
            bail!("item {}: the id is used twice", it.id);
        }
        validate_item(it, media).map_err(|e| anyhow::anyhow!("item {}: {e}", it.id))?;
        if !tests.contains_key(it.test.as_str()) {
            bail!("item {}: belongs to unknown test {:?}", it.id, it.test);
        }
        *per_pool.entry((&it.test, &it.pool)).or_default() += 1;
        *per_test.entry(&it.test).or_default() += 1;
    }
    for t in &manifest.tests {
        let bank = per_test.get(t.id.as_str()).copied().unwrap_or(0);
        if t.draw.is_empty() {
            if bank != t.items {
                bail!(
                    "test {:?}: items = {} but its bank has {bank} items (without [[test.draw]] every item is used)",
                    t.id,
                    t.items
                );
            }
        } else {
            let sum: u32 = t.draw.iter().map(|d| d.count).sum();
            if sum != t.items {
                bail!(
                    "test {:?}: the draw counts add up to {sum}, not items = {}",
                    t.id,
                    t.items
                );
            }
            let mut pools = HashSet::new();
            for d in &t.draw {
                if !pools.insert(d.pool.as_str()) {
                    bail!(
                        "test {:?}: pool {:?} appears in two [[test.draw]] entries; use one with the total count",
                        t.id,
                        d.pool
                    );
                }
                let have = per_pool
                    .get(&(t.id.as_str(), d.pool.as_str()))
                    .copied()
                    .unwrap_or(0);
                if have < d.count {
                    bail!(
                        "test {:?}: draws {} from pool {:?} which has only {have} items",
                        t.id,
                        d.count,
                        d.pool
                    );
                }
            }
        }
        if t.items == 0 {
            bail!("test {:?}: a test needs at least one item", t.id);
        }
    }

    Ok(())
}

fn validate_item(it: &Item, media: &BTreeSet<String>) -> Result<()> {
    if it.competency.trim().is_empty() {
        bail!("competency tag is empty");
    }
    if !(it.weight > 0.0 && it.weight <= 100.0) {
        bail!("weight must be more than 0 and at most 100");
    }
    let hundredths = it.weight * 100.0;
    if (hundredths - hundredths.round()).abs() > 1e-6 {
        bail!("weight may have at most 2 decimals");
    }
    if it.key.is_empty() {
        bail!("has no key");
    }
    let n = it.options.len();
    match it.kind {
        ItemKind::Single if !(2..=5).contains(&n) => bail!("needs 2 to 5 options, has {n}"),
        ItemKind::Multiple if !(2..=5).contains(&n) => bail!("needs 2 to 5 options, has {n}"),
        ItemKind::Truefalse if n != 2 => bail!("a true/false item has exactly two options"),
        _ => {}
    }
    if it.kind != ItemKind::Multiple && it.key.len() != 1 {
        bail!("must have exactly one key option");
    }
    if it.partial_credit && it.kind != ItemKind::Multiple {
        bail!("partial_credit is only for multiple-answer items");
    }
    let mut ids = HashSet::new();
    for o in &it.options {
        check_id("option id", &o.id)?;
        if !ids.insert(o.id.as_str()) {
            bail!("option id {:?} is used twice", o.id);
        }
        html::validate(&o.html, media).map_err(|e| anyhow::anyhow!("option {}: {e}", o.id))?;
    }
    let mut keys = HashSet::new();
    for k in &it.key {
        if !ids.contains(k.as_str()) {
            bail!("key {k:?} is not among the options");
        }
        if !keys.insert(k) {
            bail!("key {k:?} is listed twice");
        }
    }
    if it.stem.trim().is_empty() {
        bail!("stem is empty");
    }
    html::validate(&it.stem, media).map_err(|e| anyhow::anyhow!("stem: {e}"))?;
    Ok(())
}

/// Replaces every piece of HTML (test instructions, stems, options) by its one canonical
/// form ([`html::canonical`]). Run by the builder on the source and by a TUK on what it
/// opens, so nothing downstream ever sees an author's own spelling. Errors name the test or
/// item and the field.
pub(crate) fn canonicalise(
    manifest: &mut Manifest,
    items: &mut [Item],
    media: &BTreeSet<String>,
) -> Result<()> {
    canonicalise_with(manifest, items, media, false).map(|_| ())
}

/// [`canonicalise`]; with `lenient`, what the subset cannot hold is dropped
/// ([`html::canonical_lenient`]) and returned as report lines naming the item and field.
pub(crate) fn canonicalise_with(
    manifest: &mut Manifest,
    items: &mut [Item],
    media: &BTreeSet<String>,
    lenient: bool,
) -> Result<Vec<String>> {
    let check = if lenient {
        html::canonical_lenient
    } else {
        html::canonical
    };
    let mut report = Vec::new();
    let mut note = |what: String, c: html::Checked| {
        for d in c.dropped {
            report.push(format!("{what}: dropped {d}"));
        }
        c.html
    };
    for t in &mut manifest.tests {
        let c = check(&t.instructions, &BTreeSet::new())
            .map_err(|e| anyhow::anyhow!("test {:?} instructions: {e}", t.id))?;
        t.instructions = note(format!("test {:?} instructions", t.id), c);
    }
    for it in items {
        let c = check(&it.stem, media).map_err(|e| anyhow::anyhow!("item {}, stem: {e}", it.id))?;
        it.stem = note(format!("item {}, stem", it.id), c);
        for o in &mut it.options {
            let c = check(&o.html, media)
                .map_err(|e| anyhow::anyhow!("item {}, option {}: {e}", it.id, o.id))?;
            o.html = note(format!("item {}, option {}", it.id, o.id), c);
        }
    }
    Ok(report)
}

/// The item part of [`canonicalise`] (strict).
pub(crate) fn canonicalise_items(items: &mut [Item], media: &BTreeSet<String>) -> Result<()> {
    let mut none = Manifest {
        format: FORMAT,
        id: String::new(),
        version: 0,
        upt: String::new(),
        title: String::new(),
        timezone: String::new(),
        tests: Vec::new(),
        sessions: Vec::new(),
    };
    canonicalise_with(&mut none, items, media, false).map(|_| ())
}

/// Ids are short and plain so they are safe in URLs, CSV files and log lines.
pub(crate) fn check_id(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !id.bytes().all(|b| b == b'.');
    if !ok {
        bail!("{what} {id:?} is not allowed: use 1-64 letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

/// `+07:00` → seconds east of UTC.
pub(crate) fn parse_offset(s: &str) -> Result<i32> {
    let bad = || anyhow::anyhow!("timezone must look like +07:00, got {s:?}");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = parse_hm(rest).ok_or_else(bad)?;
    Ok(sign * (h as i32 * 3600 + m as i32 * 60))
}

/// `08:30` → (8, 30).
pub(crate) fn parse_hm(s: &str) -> Option<(u32, u32)> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

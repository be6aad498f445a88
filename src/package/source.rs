//! Reading a package source folder as the UPT's test authors write it.
//!
//! Layout (documented for authors in `exam-packages/README.md`):
//! `package.toml`, the item banks it names (TOML), `roster.csv`, optional
//! `questionnaire.toml`, and `media/` for images. Errors name the file and, where the
//! parser knows it, the line.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use super::model::{self, Item, Manifest, Participant, Questionnaire};

/// Everything a package carries, checked and ready to be sealed into a `.tukpkg`.
pub struct Source {
    pub manifest: Manifest,
    pub roster: Vec<Participant>,
    pub items: Vec<Item>,
    pub media: BTreeMap<String, Vec<u8>>,
    pub questionnaire: Option<Questionnaire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bank {
    #[serde(rename = "item", default)]
    items: Vec<Item>,
}

const ROSTER_COLUMNS: [&str; 9] = [
    "participant",
    "name",
    "institution",
    "district",
    "province",
    "test",
    "session",
    "nilai_awal",
    "extra_minutes",
];

pub fn read(dir: &Path) -> Result<Source> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    let manifest: Manifest = read_toml(&dir.join("package.toml"))?;
    let media = read_media(&dir.join("media"))?;
    let mut items = Vec::new();
    for t in &manifest.tests {
        if t.bank.is_empty() {
            bail!(
                "package.toml: test {:?} needs `bank = \"items/FILE.toml\"`",
                t.id
            );
        }
        let rel = Path::new(&t.bank);
        if rel.is_absolute() || rel.components().any(|c| c.as_os_str() == "..") {
            bail!(
                "package.toml: test {:?}: bank path must stay inside the package folder",
                t.id
            );
        }
        let bank: Bank = read_toml(&dir.join(rel))?;
        for mut it in bank.items {
            it.test = t.id.clone();
            it.normalise();
            items.push(it);
        }
    }
    let roster = read_roster(&dir.join("roster.csv"))?;
    let qpath = dir.join("questionnaire.toml");
    let questionnaire = if qpath.exists() {
        Some(read_toml::<Questionnaire>(&qpath)?)
    } else {
        None
    };
    let names: BTreeSet<String> = media.keys().cloned().collect();
    model::validate(&manifest, &roster, &items, &names, questionnaire.as_ref())?;
    Ok(Source {
        manifest,
        roster,
        items,
        media,
        questionnaire,
    })
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| format!(", line {}", text[..s.start].matches('\n').count() + 1))
            .unwrap_or_default();
        anyhow!("{}{line}: {}", path.display(), e.message())
    })
}

/// Media names are plain (`[a-z0-9._-]`) so they are safe in URLs and tar paths.
pub fn media_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_'
        })
        && media_type(name).is_some()
}

/// The content type a media file is served with; only these kinds are accepted.
pub fn media_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

fn read_media(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !entry.file_type()?.is_file() {
            bail!("{}: media must be plain files", path.display());
        }
        if !media_name_ok(&name) {
            bail!(
                "{}: media names use a-z, 0-9, '.', '-', '_' and end in .png, .jpg, .gif or .svg",
                path.display()
            );
        }
        let len = entry.metadata()?.len();
        if len > model::MAX_MEDIA_BYTES {
            bail!(
                "{}: {len} bytes is too large (at most {} MiB per file)",
                path.display(),
                model::MAX_MEDIA_BYTES >> 20
            );
        }
        out.insert(name, fs::read(&path)?);
    }
    Ok(out)
}

fn read_roster(path: &Path) -> Result<Vec<Participant>> {
    let file = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = rdr
        .headers()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?
        .clone();
    if headers.iter().collect::<Vec<_>>() != ROSTER_COLUMNS {
        bail!(
            "{}, line 1: the header must be exactly `{}`",
            path.display(),
            ROSTER_COLUMNS.join(",")
        );
    }
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let at = || format!("{}, line {line}", path.display());
        let nilai_awal = match rec.get(7).unwrap_or("") {
            "" => None,
            s => Some(
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| anyhow!("{}: nilai_awal {s:?} is not a number", at()))?,
            ),
        };
        let extra_minutes = match rec.get(8).unwrap_or("") {
            "" => 0,
            s => s
                .parse::<u32>()
                .map_err(|_| anyhow!("{}: extra_minutes {s:?} is not a whole number", at()))?,
        };
        let field = |i: usize| rec.get(i).unwrap_or("").to_string();
        let p = Participant {
            participant: field(0),
            name: field(1),
            institution: field(2),
            district: field(3),
            province: field(4),
            test: field(5),
            session: field(6),
            nilai_awal,
            extra_minutes,
        };
        model::check_id("participant number", &p.participant)
            .map_err(|e| anyhow!("{}: {e}", at()))?;
        out.push(p);
    }
    Ok(out)
}

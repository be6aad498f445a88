//! Reading a package source folder as the UPT's test authors write it.
//!
//! Layout (documented for authors in `exam-packages/README.md`):
//! `package.toml`, the item banks it names (TOML, or another format [`super::import`]
//! reads), `roster.csv` (or `roster.xlsx`), optional
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
    pub(crate) questionnaire: Option<Questionnaire>,
    /// Author checks that did not refuse the package ([`super::lint`]), one sentence each.
    pub warnings: Vec<String>,
    /// With [`read_lenient`]: what was dropped from item HTML to fit the subset, one line
    /// per element or attribute, naming the item and field.
    pub(crate) dropped: Vec<String>,
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
    read_with(dir, false)
}

/// [`read`], dropping (and listing in [`Source::dropped`]) what item HTML cannot hold
/// instead of refusing it: `--lenient`.
pub fn read_lenient(dir: &Path) -> Result<Source> {
    read_with(dir, true)
}

fn read_with(dir: &Path, lenient: bool) -> Result<Source> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    let mut manifest: Manifest = read_toml(&dir.join("package.toml"))?;
    let mut media = read_media(&dir.join("media"))?;
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
        let path = dir.join(rel);
        let bank = match super::import::read_bank(&path, t, &mut media)? {
            Some(items) => items,
            None => read_toml::<Bank>(&path)?.items,
        };
        for mut it in bank {
            it.test = t.id.clone();
            it.normalise();
            items.push(it);
        }
    }
    let roster = read_roster_in(dir)?;
    let qpath = dir.join("questionnaire.toml");
    let questionnaire = if qpath.exists() {
        Some(read_toml::<Questionnaire>(&qpath)?)
    } else {
        None
    };
    let names: BTreeSet<String> = media.keys().cloned().collect();
    let dropped = model::canonicalise_with(&mut manifest, &mut items, &names, lenient)?;
    model::validate(&manifest, &roster, &items, &names, questionnaire.as_ref())?;
    let warnings = super::lint::check(&items, &names)?;
    Ok(Source {
        manifest,
        roster,
        items,
        media,
        questionnaire,
        warnings,
        dropped,
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
pub(crate) fn media_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_'
        })
        && media_type(name).is_some()
}

/// The content type a media file is served with; only these kinds are accepted.
pub(crate) fn media_type(name: &str) -> Option<&'static str> {
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

/// Reads `roster.csv` or `roster.xlsx` (not both).
fn read_roster_in(dir: &Path) -> Result<Vec<Participant>> {
    let (csv_path, xlsx_path) = (dir.join("roster.csv"), dir.join("roster.xlsx"));
    match (csv_path.exists(), xlsx_path.exists()) {
        (true, true) => bail!(
            "{}: both roster.csv and roster.xlsx are here; keep one of them",
            dir.display()
        ),
        (false, true) => {
            let rows = read_roster_xlsx(&xlsx_path)?;
            roster_rows(&xlsx_path, "row", rows)
        }
        _ => read_roster(&csv_path),
    }
}

/// The rows of the first sheet of `roster.xlsx`, with their row numbers, as text (whole
/// numbers without `.0`, so participant numbers typed as numbers stay themselves).
fn read_roster_xlsx(path: &Path) -> Result<Vec<(u64, Vec<String>)>> {
    use calamine::{Data, Reader};
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    super::import::check_zip(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes))
        .map_err(|e| anyhow!("{}: not a readable .xlsx file ({e})", path.display()))?;
    let sheet = book
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("{}: the workbook has no sheet", path.display()))?;
    let range = book
        .worksheet_range(&sheet)
        .map_err(|e| anyhow!("{}: cannot be read ({e})", path.display()))?;
    let row0 = range.start().map_or(0, |(r, _)| r as u64);
    let mut out = Vec::new();
    for (i, row) in range.rows().enumerate() {
        let line = row0 + i as u64 + 1;
        let cells = row
            .iter()
            .map(|c| match c {
                Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                    Ok(format!("{}", *f as i64))
                }
                Data::Float(f) => Ok(f.to_string()),
                Data::Int(i) => Ok(i.to_string()),
                Data::String(s) => Ok(s.trim().to_string()),
                Data::Empty => Ok(String::new()),
                Data::Bool(b) => Ok(b.to_string()),
                Data::Error(e) => Err(anyhow!(
                    "{}, row {line}: a cell shows the error {e}",
                    path.display()
                )),
                _ => Err(anyhow!(
                    "{}, row {line}: Excel stored a date or time; format the column as Text",
                    path.display()
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        out.push((line, cells));
    }
    Ok(out)
}

/// Reads `roster.csv`: comma-separated as documented, or as an Excel set to Indonesian
/// saves it (`;` between fields, decimal commas in `nilai_awal`). A UTF-8 byte-order mark
/// is skipped; a file that is not UTF-8 is refused with what to do.
fn read_roster(path: &Path) -> Result<Vec<Participant>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{}: byte {} is not UTF-8; in Excel use Save As \"CSV UTF-8 (Comma delimited)\"",
            path.display(),
            e.valid_up_to()
        )
    })?;
    let first = text.lines().next().unwrap_or("");
    let delimiter = if !first.contains(',') && first.contains(';') {
        b';'
    } else {
        b','
    };
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        rows.push((line, rec.iter().map(str::to_string).collect()));
    }
    roster_rows(path, "line", rows)
}

fn roster_rows(path: &Path, unit: &str, rows: Vec<(u64, Vec<String>)>) -> Result<Vec<Participant>> {
    let mut rows = rows.into_iter();
    let header = rows.next().map(|r| r.1).unwrap_or_default();
    if header.iter().map(|h| h.trim()).collect::<Vec<_>>() != ROSTER_COLUMNS {
        bail!(
            "{}, {unit} 1: the header must be exactly `{}`",
            path.display(),
            ROSTER_COLUMNS.join(",")
        );
    }
    let mut out = Vec::new();
    for (line, rec) in rows {
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let at = || format!("{}, {unit} {line}", path.display());
        let get = |i: usize| rec.get(i).map(|s| s.trim()).unwrap_or("");
        let nilai_awal = match get(7) {
            "" => None,
            s => Some(
                s.replacen(',', ".", 1)
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| anyhow!("{}: nilai_awal {s:?} is not a number", at()))?,
            ),
        };
        let extra_minutes = match get(8) {
            "" => 0,
            s => s
                .parse::<u32>()
                .map_err(|_| anyhow!("{}: extra_minutes {s:?} is not a whole number", at()))?,
        };
        let field = |i: usize| get(i).to_string();
        let p = Participant {
            participant: field(0).into(),
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

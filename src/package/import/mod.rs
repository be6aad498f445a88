//! Item banks in the formats UPT staff already have, read into [`Item`]s.
//!
//! `package.toml` names one bank per test; its file name ending picks the reader:
//!
//! | ending  | format | reader |
//! |---------|--------|--------|
//! | `.toml` | tuk's own (see `exam-packages/README.md`) | [`super::source`] |
//! | `.xlsx` | the Excel template of `tuk package template` | [`xlsx`] |
//! | `.txt`  | Aiken | [`aiken`] |
//! | `.gift` | GIFT | [`gift`] |
//! | `.xml`  | Moodle XML | [`moodle`] |
//! | `.zip`  | QTI 2.1 / 3.0 content package | [`qti`] |
//!
//! Every reader turns what it reads into the same items the TOML bank would give, then the
//! builder canonicalises and checks them like any other ([`super::model`], [`super::lint`]).
//! Errors are one sentence naming the file, the row or line or item, and what is wrong.
//! Item ids a format does not carry are generated from the bank's name and the item's
//! position (`kka-007` is the 7th item of `items/kka.xlsx`), so the same source always gives
//! the same ids.

pub(crate) mod aiken;
pub(crate) mod gift;
pub(crate) mod moodle;
pub(crate) mod qti;
pub mod xlsx;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::model::{self, Item, ItemKind, ItemOption, TestSpec};
use super::source;

/// Largest item-bank file read (spreadsheets and zips are also limited unpacked, see
/// [`check_zip`]).
pub(crate) const MAX_BANK_BYTES: u64 = 64 << 20;
/// Largest total a zip (xlsx, IMS package) may unpack to.
pub(crate) const MAX_UNPACKED_BYTES: u64 = 512 << 20;
/// Most entries a zip may hold.
pub(crate) const MAX_ZIP_ENTRIES: usize = 20_000;

/// Reads the bank at `path` for test `test`; images a format carries inside the file are
/// added to `media`.
pub(crate) fn read_bank(
    path: &Path,
    test: &TestSpec,
    media: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Option<Vec<Item>>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let items = match ext.as_str() {
        "xlsx" => xlsx::read(&read_file(path)?, &prefix(path), test)
            .map_err(|e| anyhow::anyhow!("{}{e}", path.display()))?,
        "txt" => aiken::read(&read_text(path)?, &prefix(path), &test.competency)
            .map_err(|e| anyhow::anyhow!("{}{e}", path.display()))?,
        "gift" => gift::read(&read_text(path)?, &prefix(path), &test.competency)
            .map_err(|e| anyhow::anyhow!("{}{e}", path.display()))?,
        "xml" => moodle::read(&read_text(path)?, &prefix(path), &test.competency, media)
            .map_err(|e| anyhow::anyhow!("{}{e}", path.display()))?,
        "zip" => qti::read(&read_file(path)?, &prefix(path), &test.competency, media)
            .map_err(|e| anyhow::anyhow!("{}{e}", path.display()))?,
        "toml" => return Ok(None),
        other => bail!(
            "{}: an item bank ending in .{other} is not read; use .toml, .xlsx, .txt (Aiken), .gift, .xml (Moodle XML) or .zip (QTI)",
            path.display()
        ),
    };
    let mut items = items;
    for it in &mut items {
        if it.competency.trim().is_empty() {
            it.competency = test.competency.clone();
        }
        if it.competency.trim().is_empty() {
            bail!(
                "{}: item {} has no competency; write competency = \"pedagogik\" (or \"profesional\") under this test's [[test]] in package.toml",
                path.display(),
                it.id
            );
        }
    }
    Ok(Some(items))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
        .len();
    if len > MAX_BANK_BYTES {
        bail!(
            "{}: {len} bytes is larger than an item bank may be ({} MiB); split it into several tests or shrink its images",
            path.display(),
            MAX_BANK_BYTES >> 20
        );
    }
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_file(path)?).map_err(|e| {
        anyhow::anyhow!(
            "{}: byte {} is not UTF-8; save the file as UTF-8 text",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Adds an image a bank file carries (Moodle XML, QTI) to the package's media under a
/// plain name (see [`media_name`]); returns that name.
pub(crate) fn add_media(
    media: &mut BTreeMap<String, Vec<u8>>,
    name: &str,
    bytes: Vec<u8>,
) -> Result<String> {
    let local = media_name(name);
    if !source::media_name_ok(&local) {
        bail!("image {name:?} is not a .png, .jpg, .gif or .svg file tuk can show");
    }
    if bytes.len() as u64 > model::MAX_MEDIA_BYTES {
        bail!(
            "image {name:?} is larger than {} MiB",
            model::MAX_MEDIA_BYTES >> 20
        );
    }
    if media.get(&local).is_some_and(|b| *b != bytes) {
        bail!(
            "image {name:?} becomes media/{local}, which already holds a different image; rename one of them"
        );
    }
    media.insert(local.clone(), bytes);
    Ok(local)
}

/// A file name as a media name: the last path part, lower-cased, every character other
/// than `a-z 0-9 . - _` made `-`, no leading dot.
pub(crate) fn media_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let s: String = base
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_start_matches('.').to_string()
}

/// The prefix of generated ids: the bank's file name without its ending, made id-safe.
pub(crate) fn prefix(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("item");
    let p: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    if p.is_empty() { "item".into() } else { p }
}

/// An item as a question-bank file gives it: in no test or pool yet, weight 1, no indicator
/// and no partial credit (the package's manifest and the XLSX columns set those).
pub(crate) fn bank_item(
    id: String,
    kind: ItemKind,
    competency: &str,
    stem: String,
    options: Vec<ItemOption>,
    key: Vec<String>,
) -> Item {
    Item {
        id,
        test: String::new(),
        kind,
        competency: competency.to_string(),
        indicator: String::new(),
        pool: String::new(),
        weight: 1.0,
        stem,
        options,
        key,
        partial_credit: false,
    }
}

/// The competency a bank's category path names: its last non-empty part, trimmed (GIFT's
/// `$CATEGORY: a/b/c` and Moodle XML's `<category>` both give `c`).
pub(crate) fn category_leaf(path: &str) -> String {
    path.rsplit('/')
        .find(|s| !s.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// The generated id of the `n`th (1-based) item of a bank.
pub(crate) fn generated_id(prefix: &str, n: usize) -> String {
    format!("{prefix}-{n:03}")
}

/// An id the format gave, if tuk can use it as is; otherwise the generated one.
pub(crate) fn id_or_generated(given: &str, prefix: &str, n: usize) -> String {
    let given = given.trim();
    if model::check_id("item id", given).is_ok() {
        given.to_string()
    } else {
        generated_id(prefix, n)
    }
}

/// Option ids are the letters a, b, c, … in the source's order.
pub(crate) fn option_id(i: usize) -> String {
    ((b'a' + i as u8) as char).to_string()
}

/// Plain text as item HTML: `& < > "` escaped, line breaks kept as `<br>`.
pub(crate) fn plain_to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.trim().lines().enumerate() {
        if i > 0 {
            out.push_str("<br>");
        }
        for c in line.trim_end().chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                c => out.push(c),
            }
        }
    }
    out
}

/// Text of a cell or field that may be HTML: HTML when it starts with `<` (after white
/// space), plain text otherwise.
pub(crate) fn text_or_html(text: &str) -> String {
    let t = text.trim();
    if t.starts_with('<') {
        t.to_string()
    } else {
        plain_to_html(t)
    }
}

/// Checks a zip's directory before anything is unpacked: at most [`MAX_ZIP_ENTRIES`]
/// entries and [`MAX_UNPACKED_BYTES`] in all, each entry compressed at most 1:200 (a zip
/// bomb is refused by its size, not discovered by unpacking it).
pub(crate) fn check_zip(bytes: &[u8]) -> Result<()> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| anyhow::anyhow!("is not a readable zip file ({e})"))?;
    if zip.len() > MAX_ZIP_ENTRIES {
        bail!(
            "holds {} files, more than {MAX_ZIP_ENTRIES}; refused before unpacking",
            zip.len()
        );
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let f = zip
            .by_index_raw(i)
            .map_err(|e| anyhow::anyhow!("is not a readable zip file ({e})"))?;
        total = total.saturating_add(f.size());
        if f.size() > 200 * f.compressed_size().max(1024) {
            bail!(
                "member {:?} would unpack {} bytes from {}: refused as a zip bomb before unpacking",
                f.name().map(|n| n.to_string()).unwrap_or_default(),
                f.size(),
                f.compressed_size()
            );
        }
    }
    if total > MAX_UNPACKED_BYTES {
        bail!(
            "would unpack to {total} bytes, more than {} MiB: refused before unpacking",
            MAX_UNPACKED_BYTES >> 20
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_text() {
        assert_eq!(prefix(Path::new("items/Bank KKA.xlsx")), "Bank-KKA");
        assert_eq!(generated_id("kka", 7), "kka-007");
        assert_eq!(id_or_generated("KKA P1", "kka", 2), "kka-002");
        assert_eq!(id_or_generated("KKA-P1", "kka", 2), "KKA-P1");
        assert_eq!(
            plain_to_html(" x < 3 & \"y\"\nz "),
            "x &lt; 3 &amp; &quot;y&quot;<br>z"
        );
        assert_eq!(text_or_html(" <p>a</p>"), "<p>a</p>");
    }
}

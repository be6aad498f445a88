//! Moodle XML (`.xml`), the format of Moodle's question bank export.
//!
//! Read: `multichoice` (`<single>true</single>`: one key; `false`: a `multiple` item whose
//! keys are the answers with a positive `fraction`, adding up to 100), `truefalse`, and
//! `category` entries (the last part of the category path is the competency of the
//! questions after it). The `<name>` is the item id when tuk can use it as one, the
//! `<defaultgrade>` the weight. Text in `format="html"` is item HTML and must fit the subset
//! (Moodle's `style="…"` and `dir="…"` attributes are refused with the item and the
//! reason); `plain_text` and `moodle_auto_format` text is plain text. Images embedded as
//! `<file encoding="base64">` are written to the package's `media/` under their name
//! (lower-cased, other characters than `a-z 0-9 . - _` made `-`), and
//! `@@PLUGINFILE@@/NAME` in the text points to them. Every other question type
//! (shortanswer, essay, matching, numerical, cloze, description, …) is refused with its
//! line. Feedback and hints are dropped (participants see none). Parsed with `roxmltree`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use base64::Engine;

use super::{bank_item, category_leaf, id_or_generated, option_id, text_or_html};
use crate::package::model::{Item, ItemKind, ItemOption};

/// Reads a Moodle XML file; embedded images go into `media`. Errors start with ", line N".
pub(crate) fn read(
    text: &str,
    prefix: &str,
    competency: &str,
    media: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Vec<Item>> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts)
        .map_err(|e| anyhow::anyhow!(": not well-formed XML ({e})"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "quiz" {
        bail!(
            ": the root element is <{}>, not <quiz> (export the question bank as Moodle XML)",
            root.tag_name().name()
        );
    }
    let mut category = competency.to_string();
    let mut items = Vec::new();
    for q in root.children().filter(|n| n.has_tag_name("question")) {
        let line = doc.text_pos_at(q.range().start).row;
        let kind = q.attribute("type").unwrap_or("");
        if kind == "category" {
            let path = child_text(q, "category").unwrap_or_default();
            category = category_leaf(&path);
            continue;
        }
        let n = items.len() + 1;
        let item = question(q, kind, prefix, n, &category, media)
            .map_err(|e| anyhow::anyhow!(", line {line}: {e}"))?;
        items.push(item);
    }
    Ok(items)
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

/// The `<text>` inside child `name`.
fn child_text(n: roxmltree::Node, name: &str) -> Option<String> {
    child(n, name)
        .and_then(|c| child(c, "text"))
        .map(|t| t.text().unwrap_or("").to_string())
}

/// A text element (`questiontext`, `answer`) as item HTML, its images stored in `media`.
fn rich_text(n: roxmltree::Node, media: &mut BTreeMap<String, Vec<u8>>) -> Result<String> {
    let raw = child(n, "text").and_then(|t| t.text()).unwrap_or("");
    let mut html = match n.attribute("format").unwrap_or("moodle_auto_format") {
        "html" => raw.trim().to_string(),
        "plain_text" | "moodle_auto_format" => text_or_html(raw),
        f => bail!("text format {f:?} is not supported; export as HTML or plain text"),
    };
    for f in n.children().filter(|c| c.has_tag_name("file")) {
        let name = f.attribute("name").unwrap_or("");
        if f.attribute("encoding") != Some("base64") {
            bail!("embedded file {name:?} is not base64");
        }
        let data: String = f.text().unwrap_or("").split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|e| anyhow::anyhow!("embedded file {name:?} is not valid base64 ({e})"))?;
        let local = super::add_media(media, name, bytes)?;
        for enc in [name.to_string(), name.replace(' ', "%20")] {
            html = html.replace(&format!("@@PLUGINFILE@@/{enc}"), &format!("media/{local}"));
        }
    }
    if html.contains("@@PLUGINFILE@@") {
        bail!(
            "the text shows a file that is not embedded in the export (@@PLUGINFILE@@); export the bank again with its files"
        );
    }
    Ok(html)
}

fn question(
    q: roxmltree::Node,
    kind: &str,
    prefix: &str,
    n: usize,
    competency: &str,
    media: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Item> {
    let name = child_text(q, "name").unwrap_or_default();
    let what = if name.is_empty() {
        format!("question {n}")
    } else {
        format!("question {name:?}")
    };
    let with = |e: anyhow::Error| anyhow::anyhow!("{what}: {e}");
    let stem = child(q, "questiontext")
        .map(|t| rich_text(t, media))
        .transpose()
        .map_err(with)?
        .unwrap_or_default();
    let weight = match q
        .children()
        .find(|c| c.has_tag_name("defaultgrade"))
        .and_then(|c| c.text())
    {
        Some(t) => t
            .trim()
            .parse::<f64>()
            .map_err(|_| with(anyhow::anyhow!("defaultgrade {t:?} is not a number")))?,
        None => 1.0,
    };
    let answers: Vec<roxmltree::Node> = q.children().filter(|c| c.has_tag_name("answer")).collect();
    let fraction = |a: &roxmltree::Node| -> Result<f64> {
        let f = a.attribute("fraction").unwrap_or("0");
        f.trim()
            .parse::<f64>()
            .map_err(|_| with(anyhow::anyhow!("answer fraction {f:?} is not a number")))
    };
    let mut item = Item {
        weight: (weight * 100.0).round() / 100.0,
        ..bank_item(
            id_or_generated(&name, prefix, n),
            ItemKind::Single,
            competency,
            stem,
            Vec::new(),
            Vec::new(),
        )
    };
    match kind {
        "truefalse" => {
            item.kind = ItemKind::Truefalse;
            for a in &answers {
                if fraction(a)? > 0.0 {
                    let t = child(*a, "text")
                        .and_then(|t| t.text())
                        .unwrap_or("")
                        .trim()
                        .to_lowercase();
                    item.key = vec![
                        if t == "true" || t == "benar" {
                            "benar"
                        } else {
                            "salah"
                        }
                        .to_string(),
                    ];
                }
            }
            if item.key.is_empty() {
                bail!("{what}: no answer has a positive fraction");
            }
        }
        "multichoice" => {
            let single = q
                .children()
                .find(|c| c.has_tag_name("single"))
                .and_then(|c| c.text())
                .is_none_or(|t| t.trim() == "true" || t.trim() == "1");
            if answers.len() > 5 {
                bail!("{what}: has {} answers; tuk takes 2 to 5", answers.len());
            }
            let mut sum = 0.0;
            for (i, a) in answers.iter().enumerate() {
                item.options.push(ItemOption {
                    id: option_id(i),
                    html: rich_text(*a, media).map_err(with)?,
                });
                let f = fraction(a)?;
                if (single && f >= 100.0) || (!single && f > 0.0) {
                    item.key.push(option_id(i));
                    sum += f;
                }
            }
            if single {
                if item.key.len() != 1 {
                    bail!(
                        "{what}: a single-answer question needs exactly one answer with fraction 100, has {}",
                        item.key.len()
                    );
                }
            } else {
                if (sum - 100.0).abs() > 0.5 {
                    bail!("{what}: the positive fractions add up to {sum}, not 100");
                }
                item.kind = if item.key.len() == 1 {
                    ItemKind::Single
                } else {
                    ItemKind::Multiple
                };
            }
        }
        other => bail!(
            "{what}: question type {other:?} is not supported (tuk reads multichoice and truefalse)"
        ),
    }
    Ok(item)
}

//! QTI 2.1 and 3.0 choice items from an IMS content package (`.zip`).
//!
//! The zip's `imsmanifest.xml` lists the items as resources of type `imsqti_item_xmlv2p1`
//! (or `imsqti_item_xmlv3p0`); they are read in that order. Each `assessmentItem` must
//! hold exactly one `choiceInteraction` (`qti-choice-interaction` in 3.0) whose response
//! has `cardinality="single"` (a `single` item) or `"multiple"` (a `multiple` item) and a
//! `correctResponse`. The stem is the item body around the interaction plus its `prompt`,
//! as item HTML (it must fit the subset); options are the `simpleChoice`s in order, lettered
//! a, b, c …. Images (`<img src="images/x.png">`, relative to the item file) are copied
//! from the zip into the package's `media/`. The item's `identifier` is its id when tuk can
//! use it; the competency is the test's `competency` in `package.toml`, the weight 1.
//! Other interactions (text entry, order, match, …), response processing and feedback are
//! refused or ignored as stated in `exam-packages/README.md`. The zip is checked by its
//! directory before anything is unpacked ([`super::check_zip`]).

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use anyhow::{Result, bail};

use super::{bank_item, id_or_generated, option_id};
use crate::package::model::{Item, ItemKind, ItemOption};

/// Largest single file read out of the zip.
const MAX_ENTRY_BYTES: u64 = 16 << 20;

/// Reads a QTI content package. Errors start with ": " or ", FILE" (the caller puts the
/// zip's name first).
pub(crate) fn read(
    bytes: &[u8],
    prefix: &str,
    competency: &str,
    media: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Vec<Item>> {
    super::check_zip(bytes).map_err(|e| anyhow::anyhow!(": {e}"))?;
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| anyhow::anyhow!(": not a readable zip ({e})"))?;
    let manifest = entry_text(&mut zip, "imsmanifest.xml").map_err(|e| {
        anyhow::anyhow!(": {e} (an IMS content package has imsmanifest.xml at its top)")
    })?;
    let doc = parse(&manifest).map_err(|e| anyhow::anyhow!(", imsmanifest.xml: {e}"))?;
    let hrefs: Vec<String> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "resource")
        .filter(|n| {
            n.attribute("type").is_some_and(|t| {
                t.starts_with("imsqti_item_xmlv2p") || t.starts_with("imsqti_item_xmlv3p")
            })
        })
        .filter_map(|n| n.attribute("href").map(str::to_string))
        .collect();
    if hrefs.is_empty() {
        bail!(
            ", imsmanifest.xml: lists no QTI items (resources of type imsqti_item_xmlv2p1 or imsqti_item_xmlv3p0)"
        );
    }
    let mut items = Vec::new();
    for href in hrefs {
        let n = items.len() + 1;
        let text = entry_text(&mut zip, &href).map_err(|e| anyhow::anyhow!(", {href}: {e}"))?;
        let item = item(&text, &href, prefix, n, competency, &mut zip, media)
            .map_err(|e| anyhow::anyhow!(", {href}: {e}"))?;
        items.push(item);
    }
    Ok(items)
}

fn parse(text: &str) -> Result<roxmltree::Document<'_>> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, opts)
        .map_err(|e| anyhow::anyhow!("not well-formed XML ({e})"))
}

fn entry_bytes(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Vec<u8>> {
    let f = zip
        .by_name(name)
        .map_err(|_| anyhow::anyhow!("{name} is not in the zip"))?;
    if f.size() > MAX_ENTRY_BYTES {
        bail!("{name} is larger than {} MiB", MAX_ENTRY_BYTES >> 20);
    }
    let mut out = Vec::with_capacity(f.size() as usize);
    f.take(MAX_ENTRY_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| anyhow::anyhow!("{name} cannot be unpacked ({e})"))?;
    Ok(out)
}

fn entry_text(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<String> {
    String::from_utf8(entry_bytes(zip, name)?)
        .map_err(|_| anyhow::anyhow!("{name} is not UTF-8 text"))
}

/// QTI 2 names (`choiceInteraction`) and QTI 3 names (`qti-choice-interaction`) alike.
fn is(n: &roxmltree::Node, v2: &str) -> bool {
    let name = n.tag_name().name();
    if name == v2 {
        return true;
    }
    let Some(rest) = name.strip_prefix("qti-") else {
        return false;
    };
    let mut camel = String::new();
    let mut up = false;
    for c in rest.chars() {
        if c == '-' {
            up = true;
        } else if up {
            camel.push(c.to_ascii_uppercase());
            up = false;
        } else {
            camel.push(c);
        }
    }
    camel == v2
}

fn item(
    text: &str,
    href: &str,
    prefix: &str,
    n: usize,
    competency: &str,
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    media: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Item> {
    let doc = parse(text)?;
    let root = doc.root_element();
    if !is(&root, "assessmentItem") {
        bail!(
            "the root element is <{}>, not an assessmentItem",
            root.tag_name().name()
        );
    }
    let body = root
        .children()
        .find(|c| is(c, "itemBody"))
        .ok_or_else(|| anyhow::anyhow!("the item has no itemBody"))?;
    let interactions: Vec<_> = body
        .descendants()
        .filter(|c| c.tag_name().name().ends_with("nteraction"))
        .collect();
    let [ci] = interactions.as_slice() else {
        bail!(
            "the item has {} interactions; tuk reads items with exactly one choiceInteraction",
            interactions.len()
        );
    };
    if !is(ci, "choiceInteraction") {
        bail!(
            "<{}> is not supported; tuk reads choiceInteraction items only",
            ci.tag_name().name()
        );
    }
    let response = ci
        .attribute("responseIdentifier")
        .or_else(|| ci.attribute("response-identifier"))
        .unwrap_or("RESPONSE");
    let decl = root
        .children()
        .find(|c| is(c, "responseDeclaration") && c.attribute("identifier") == Some(response))
        .ok_or_else(|| anyhow::anyhow!("no responseDeclaration for {response:?}"))?;
    let kind = match decl.attribute("cardinality") {
        Some("single") => ItemKind::Single,
        Some("multiple") => ItemKind::Multiple,
        c => bail!("response cardinality {c:?} is not supported (single or multiple)"),
    };
    let correct: Vec<String> = decl
        .children()
        .filter(|c| is(c, "correctResponse"))
        .flat_map(|c| c.children().filter(|v| is(v, "value")))
        .map(|v| v.text().unwrap_or("").trim().to_string())
        .collect();
    if correct.is_empty() {
        bail!("the response has no correctResponse");
    }
    let dir = href
        .rsplit_once('/')
        .map(|(d, _)| format!("{d}/"))
        .unwrap_or_default();
    let mut ctx = Ctx { dir, zip, media };
    let mut stem = String::new();
    for c in body.children() {
        if c == *ci {
            for p in ci.children().filter(|p| is(p, "prompt")) {
                for pc in p.children() {
                    ctx.html(pc, &mut stem)?;
                }
            }
            continue;
        }
        if c.is_text() && c.text().unwrap_or("").trim().is_empty() {
            continue;
        }
        if c.descendants().any(|d| d == *ci) {
            bail!("the choiceInteraction must sit directly in the itemBody");
        }
        ctx.html(c, &mut stem)?;
    }
    let mut options = Vec::new();
    let mut key = Vec::new();
    for (i, ch) in ci.children().filter(|c| is(c, "simpleChoice")).enumerate() {
        let mut html = String::new();
        for c in ch.children() {
            ctx.html(c, &mut html)?;
        }
        options.push(ItemOption {
            id: option_id(i),
            html: html.trim().to_string(),
        });
        if ch
            .attribute("identifier")
            .is_some_and(|id| correct.iter().any(|c| c == id))
        {
            key.push(option_id(i));
        }
        if i >= 5 {
            bail!("the choiceInteraction has more than 5 choices");
        }
    }
    if key.len() != correct.len() {
        bail!("a correctResponse value is not the identifier of a simpleChoice");
    }
    Ok(bank_item(
        id_or_generated(root.attribute("identifier").unwrap_or(""), prefix, n),
        kind,
        competency,
        stem.trim().to_string(),
        options,
        key,
    ))
}

struct Ctx<'z, 'b> {
    dir: String,
    zip: &'z mut zip::ZipArchive<Cursor<&'b [u8]>>,
    media: &'z mut BTreeMap<String, Vec<u8>>,
}

impl Ctx<'_, '_> {
    /// Writes an XHTML node of the item body as HTML (checked later like any item HTML);
    /// image sources are copied into `media/`.
    fn html(&mut self, n: roxmltree::Node, out: &mut String) -> Result<()> {
        if n.is_text() {
            out.push_str(&escape(n.text().unwrap_or("")));
            return Ok(());
        }
        if !n.is_element() {
            return Ok(());
        }
        let name = n.tag_name().name();
        out.push('<');
        out.push_str(name);
        for a in n.attributes() {
            let mut v = a.value().to_string();
            if name == "img" && a.name() == "src" {
                let path = inside(&self.dir, &v)
                    .ok_or_else(|| anyhow::anyhow!("image {v:?} must be a file inside the zip"))?;
                let bytes = entry_bytes(self.zip, &path)?;
                v = format!("media/{}", super::add_media(self.media, &path, bytes)?);
            }
            out.push_str(&format!(" {}=\"{}\"", a.name(), escape(&v)));
        }
        out.push('>');
        if matches!(name, "img" | "br") {
            return Ok(());
        }
        for c in n.children() {
            self.html(c, out)?;
        }
        out.push_str(&format!("</{name}>"));
        Ok(())
    }
}

/// `rel` (a relative URL in the item file in `dir`) as a path inside the zip; `None` when
/// it is absolute, has a scheme or climbs out of the zip.
fn inside(dir: &str, rel: &str) -> Option<String> {
    if rel.contains(':') || rel.starts_with('/') || rel.contains('\\') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

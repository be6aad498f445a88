//! The safe HTML subset allowed in item stems, options and instructions.
//!
//! Item HTML is written by the UPT and rendered verbatim in participants' browsers, so it is
//! checked (not "cleaned") at build time and again at import: anything outside a small
//! whitelist of elements and attributes is an error that names what was found. No scripts,
//! styles, links, event handlers or foreign URLs can get through; images may only point into
//! the package's own `media/` folder.

use std::collections::BTreeSet;

use anyhow::{Result, bail};

const ELEMENTS: &[&str] = &[
    "p", "br", "b", "strong", "i", "em", "u", "sub", "sup", "ul", "ol", "li", "table", "thead",
    "tbody", "tr", "th", "td", "img", "span", "code", "pre", // MathML
    "math", "mi", "mn", "mo", "mrow", "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot",
    "mtext", "mspace", "mover", "munder", "mtable", "mtr", "mtd",
];
const VOID: &[&str] = &["br", "img"];
const ENTITIES: &[&str] = &["amp", "lt", "gt", "quot", "#39", "nbsp"];

fn attribute_allowed(tag: &str, attr: &str) -> bool {
    matches!(
        (tag, attr),
        ("img", "src" | "alt" | "width" | "height")
            | ("td" | "th", "colspan" | "rowspan")
            | ("math", "display")
            | ("mspace", "width")
    )
}

/// Checks `src` against the subset; `media` is the set of file names in the package's
/// `media/` folder. Returns the media files it references.
pub fn validate(src: &str, media: &BTreeSet<String>) -> Result<BTreeSet<String>> {
    if src.len() > super::model::MAX_HTML_BYTES {
        bail!("HTML is longer than {} bytes", super::model::MAX_HTML_BYTES);
    }
    let mut used = BTreeSet::new();
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = src;
    while let Some(pos) = rest.find(['<', '&']) {
        let (text, tail) = rest.split_at(pos);
        let _ = text;
        if let Some(after) = tail.strip_prefix('&') {
            let end = after
                .find(';')
                .filter(|&e| e <= 8)
                .ok_or_else(|| anyhow::anyhow!("a bare '&' must be written as &amp;"))?;
            let name = &after[..end];
            if !ENTITIES.contains(&name) {
                bail!(
                    "entity &{name}; is not allowed (use the character itself, or &amp; &lt; &gt; &quot; &#39; &nbsp;)"
                );
            }
            rest = &after[end + 1..];
            continue;
        }
        let after = &tail[1..];
        let end = after.find('>').ok_or_else(|| {
            anyhow::anyhow!("a '<' is not closed by '>' (write &lt; for a less-than sign)")
        })?;
        let inner = &after[..end];
        rest = &after[end + 1..];
        if let Some(name) = inner.strip_prefix('/') {
            let name = name.trim();
            match stack.pop() {
                Some(open) if open == name => {}
                Some(open) => bail!("</{name}> closes <{open}>"),
                None => bail!("</{name}> has no opening tag"),
            }
            continue;
        }
        if inner.starts_with('!') || inner.starts_with('?') {
            bail!("comments, doctypes and processing instructions are not allowed");
        }
        let name_end = inner
            .find(|c: char| c.is_ascii_whitespace() || c == '/')
            .unwrap_or(inner.len());
        let name = &inner[..name_end];
        if !ELEMENTS.contains(&name) {
            bail!("element <{name}> is not allowed");
        }
        let mut attrs = &inner[name_end..];
        let mut has_src = false;
        loop {
            attrs = attrs.trim_start();
            if attrs.is_empty() {
                break;
            }
            if attrs == "/" {
                bail!("write <{name}> without a closing slash");
            }
            let eq = attrs
                .find('=')
                .ok_or_else(|| anyhow::anyhow!("attribute in <{name}> needs a quoted value"))?;
            let attr = attrs[..eq].trim();
            if !attribute_allowed(name, attr) {
                bail!("attribute {attr:?} is not allowed on <{name}>");
            }
            let v = attrs[eq + 1..].trim_start();
            let quote = v
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
                .ok_or_else(|| {
                    anyhow::anyhow!("attribute {attr} in <{name}> needs a quoted value")
                })?;
            let close = v[1..]
                .find(quote)
                .ok_or_else(|| anyhow::anyhow!("attribute {attr} in <{name}> is not closed"))?;
            let value = &v[1..1 + close];
            if value.contains(['<', '>', '&']) {
                bail!("attribute {attr} in <{name}> contains < > or &");
            }
            match attr {
                "src" => {
                    has_src = true;
                    let file = value.strip_prefix("media/").ok_or_else(|| {
                        anyhow::anyhow!("image src {value:?} must point into media/")
                    })?;
                    if !media.contains(file) {
                        bail!("image media/{file} is missing from the media folder");
                    }
                    used.insert(file.to_string());
                }
                "width" | "height" | "colspan" | "rowspan"
                    if !(value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                        || (name == "mspace" && value.ends_with("em"))) =>
                {
                    bail!("attribute {attr} in <{name}> must be a number");
                }
                _ => {}
            }
            attrs = &v[close + 2..];
        }
        if name == "img" && !has_src {
            bail!("<img> needs a src");
        }
        if !VOID.contains(&name) {
            stack.push(name);
        }
    }
    if let Some(open) = stack.pop() {
        bail!("<{open}> is not closed");
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media() -> BTreeSet<String> {
        ["seg.svg".to_string()].into()
    }

    #[test]
    fn accepts_the_subset() {
        let ok = r#"<p>Hitung <b>nilai</b> &amp; <img src="media/seg.svg" alt="x"> <math display="block"><mfrac><mi>a</mi><mn>2</mn></mfrac></math><br></p>"#;
        assert_eq!(validate(ok, &media()).unwrap(), media());
    }

    #[test]
    fn refuses_everything_else() {
        for (bad, why) in [
            ("<script>alert(1)</script>", "<script>"),
            (r#"<p onclick="x">a</p>"#, "onclick"),
            (r#"<p style="color:red">a</p>"#, "style"),
            (r#"<img src="http://evil/x.png">"#, "media/"),
            (r#"<img src="media/none.png">"#, "missing"),
            ("<p>a", "not closed"),
            ("<p><b>a</p></b>", "closes"),
            ("a & b", "&amp;"),
            ("&copy;", "entity"),
            ("<!-- x -->", "comments"),
            ("<br/>", "slash"),
            (r#"<img src=media/seg.svg>"#, "quoted"),
            (r#"<img alt="src">"#, "needs a src"),
        ] {
            let err = validate(bad, &media()).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}

//! The safe HTML subset allowed in item stems, options and instructions, and its one
//! canonical form.
//!
//! Item HTML is written by the UPT and rendered verbatim in participants' browsers. It is
//! parsed with a real HTML5 parser (html5ever, through `scraper`'s tree), so it is read
//! exactly as a browser reads it; the tree is checked (not "cleaned") against a small
//! whitelist of elements and attributes, and written back in one canonical form
//! ([`canonical`]). The builder stores only the canonical form in a package and a TUK
//! canonicalises again when it opens one, so everything downstream (the `src="media/…"`
//! rewrite in the server, rendering) sees one spelling: attributes in double quotes and
//! sorted by name, `&`, `<`, `>`, `"` and no-break spaces escaped in text, no comments.
//!
//! No scripts, styles, links, event handlers or foreign URLs can get through; images may
//! only point into the package's own `media/` folder. An error is one phrase that says
//! what was found and what to write instead; the caller adds which item and field.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::{Result, bail};
use ego_tree::NodeRef;
use html5ever::driver::{self, ParseOpts};
use html5ever::tendril::TendrilSink;
use html5ever::tokenizer::TokenizerOpts;
use html5ever::tree_builder::TreeBuilderOpts;
use html5ever::{QualName, local_name, ns};
use scraper::{Html, HtmlTreeSink, Node};

/// HTML elements of the subset (HTML namespace).
const ELEMENTS: &[&str] = &[
    "p", "br", "b", "strong", "i", "em", "u", "sub", "sup", "ul", "ol", "li", "table", "thead",
    "tbody", "tr", "th", "td", "img", "span", "code", "pre",
];
/// MathML elements of the subset (they must sit inside `<math>`).
const MATHML: &[&str] = &[
    "math", "mi", "mn", "mo", "mrow", "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot",
    "mtext", "mspace", "mover", "munder", "mtable", "mtr", "mtd",
];
/// Elements written without an end tag.
const VOID: &[&str] = &["br", "img"];

fn attribute_allowed(tag: &str, attr: &str) -> bool {
    matches!(
        (tag, attr),
        ("img", "src" | "alt" | "width" | "height")
            | ("td" | "th", "colspan" | "rowspan")
            | ("math", "display")
            | ("mspace", "width")
    )
}

/// What checking one piece of HTML found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The canonical form, the only one stored in a package.
    pub html: String,
    /// The `media/` files it shows.
    pub(crate) media: BTreeSet<String>,
    /// Images without an `alt` text (a warning for authors, not an error).
    pub(crate) images_without_alt: usize,
    /// What a reader sees, for the author checks: the text with runs of white space made
    /// one space, and each image as `[media/FILE]`.
    pub(crate) text: String,
    /// With [`canonical_lenient`]: what was dropped to fit the subset, one phrase each.
    pub(crate) dropped: Vec<String>,
}

/// Elements dropped with everything inside them in lenient mode (their text is not item
/// text); other unknown elements are dropped but keep their content.
const DROP_WHOLE: &[&str] = &[
    "script", "style", "iframe", "object", "embed", "svg", "template", "noscript", "head", "title",
    "form", "button", "input", "select", "textarea", "audio", "video",
];

/// Checks `src` against the subset and returns its canonical form; `media` is the set of
/// file names in the package's `media/` folder.
pub fn canonical(src: &str, media: &BTreeSet<String>) -> Result<Checked> {
    check(src, media, false)
}

/// Like [`canonical`], but elements, attributes and comments outside the subset are dropped
/// (and listed in [`Checked::dropped`]) instead of refused: `tuk package build --lenient`,
/// for imported banks whose editor wrote `style`, `class` or `dir` attributes. A bare `<`,
/// HTML that is not well formed, and images that are not in `media/` are still refused.
pub(crate) fn canonical_lenient(src: &str, media: &BTreeSet<String>) -> Result<Checked> {
    check(src, media, true)
}

fn check(src: &str, media: &BTreeSet<String>, lenient: bool) -> Result<Checked> {
    if src.len() > super::model::MAX_HTML_BYTES {
        bail!("HTML is longer than {} bytes", super::model::MAX_HTML_BYTES);
    }
    check_bare_lt(src)?;
    let opts = ParseOpts {
        tokenizer: TokenizerOpts {
            exact_errors: true,
            ..Default::default()
        },
        tree_builder: TreeBuilderOpts {
            exact_errors: true,
            scripting_enabled: false,
            ..Default::default()
        },
    };
    let doc = driver::parse_fragment(
        HtmlTreeSink::new(Html::new_fragment()),
        opts,
        QualName::new(None, ns!(html), local_name!("body")),
        Vec::new(),
        false,
    )
    .one(src);
    let mut out = Checked {
        html: String::new(),
        media: BTreeSet::new(),
        images_without_alt: 0,
        text: String::new(),
        dropped: Vec::new(),
    };
    // The fragment parser puts the content under one <html> element.
    let root = doc
        .tree
        .root()
        .children()
        .find(|n| n.value().is_element())
        .ok_or_else(|| anyhow::anyhow!("the HTML parser returned no tree"))?;
    // Elements first: "<script> is not allowed" says more than the parse error it caused.
    for child in root.children() {
        walk(child, false, lenient, media, &mut out)?;
    }
    if let Some(e) = doc.errors.first() {
        bail!(
            "the HTML is not well formed ({e}): close every tag you open, innermost first, and write &lt; &gt; &amp; for the characters < > &"
        );
    }
    out.text = out.text.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(out)
}

/// Checks `src` against the subset; returns the media files it references.
pub(crate) fn validate(src: &str, media: &BTreeSet<String>) -> Result<BTreeSet<String>> {
    canonical(src, media).map(|c| c.media)
}

/// A `<` that cannot start a tag is text to a browser but almost always a typo for `&lt;`
/// (`x < 3`); say so before the parser's own message.
fn check_bare_lt(src: &str) -> Result<()> {
    let b = src.as_bytes();
    for (i, _) in src.match_indices('<') {
        let next = b.get(i + 1).copied();
        let starts_tag = match next {
            Some(c) if c.is_ascii_alphabetic() => true,
            Some(b'/') => b.get(i + 2).is_some_and(|c| c.is_ascii_alphabetic()),
            Some(b'!' | b'?') => true,
            _ => false,
        };
        if !starts_tag {
            let at: String = src[..i]
                .chars()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bail!("a bare \"<\" after {at:?}: write &lt; for a less-than sign");
        }
    }
    Ok(())
}

fn walk(
    node: NodeRef<'_, Node>,
    in_math: bool,
    lenient: bool,
    media: &BTreeSet<String>,
    out: &mut Checked,
) -> Result<()> {
    match node.value() {
        Node::Text(t) => {
            escape(&mut out.html, t);
            out.text.push_str(t);
            Ok(())
        }
        Node::Comment(_) if lenient => {
            out.dropped.push("a comment".into());
            Ok(())
        }
        Node::Comment(_) => bail!("comments (<!-- … -->) are not allowed: delete them"),
        Node::Doctype(_) | Node::ProcessingInstruction(_) | Node::Document | Node::Fragment => {
            bail!("doctypes and processing instructions are not allowed")
        }
        Node::Element(e) => {
            let name = e.name();
            let ns = &e.name.ns;
            let known = if *ns == ns!(html) {
                ELEMENTS.contains(&name)
            } else if *ns == ns!(mathml) {
                MATHML.contains(&name) && (in_math || name == "math")
            } else {
                false
            };
            if !known && lenient {
                if DROP_WHOLE.contains(&name) {
                    out.dropped
                        .push(format!("element <{name}> and its content"));
                } else {
                    out.dropped
                        .push(format!("element <{name}> (its content kept)"));
                    for child in node.children() {
                        walk(child, in_math, lenient, media, out)?;
                    }
                }
                return Ok(());
            }
            if !known {
                bail!(
                    "element <{name}> is not allowed (allowed: {}; and MathML inside <math>)",
                    ELEMENTS.join(" ")
                );
            }
            let mut attrs: Vec<(&str, &str)> = Vec::new();
            for (qual, value) in e.attrs.iter() {
                let attr: &str = &qual.local;
                if (qual.ns != ns!() || !attribute_allowed(name, attr)) && lenient {
                    out.dropped.push(format!("attribute {attr:?} on <{name}>"));
                    continue;
                }
                if qual.ns != ns!() || !attribute_allowed(name, attr) {
                    bail!("attribute {attr:?} is not allowed on <{name}>: delete it");
                }
                check_value(name, attr, value, media, out)?;
                attrs.push((attr, value));
            }
            attrs.sort_unstable();
            if name == "img" {
                if !attrs.iter().any(|(a, _)| *a == "src") {
                    bail!("<img> needs src=\"media/FILE\"");
                }
                if !attrs
                    .iter()
                    .any(|(a, v)| *a == "alt" && !v.trim().is_empty())
                {
                    out.images_without_alt += 1;
                }
            }
            out.html.push('<');
            out.html.push_str(name);
            for (a, v) in &attrs {
                let _ = write!(out.html, " {a}=\"");
                escape(&mut out.html, v);
                out.html.push('"');
            }
            out.html.push('>');
            if let Some((_, src)) = attrs.iter().find(|(a, _)| *a == "src") {
                let _ = write!(out.text, " [{src}] ");
            }
            if VOID.contains(&name) {
                out.text.push(' ');
                return Ok(());
            }
            // The parser drops one newline right after <pre>; keep a leading one.
            if name == "pre"
                && let Some(first) = node.first_child()
                && let Node::Text(t) = first.value()
                && t.starts_with('\n')
            {
                out.html.push('\n');
            }
            for child in node.children() {
                walk(child, in_math || name == "math", lenient, media, out)?;
            }
            let _ = write!(out.html, "</{name}>");
            if !matches!(
                name,
                "b" | "strong" | "i" | "em" | "u" | "sub" | "sup" | "span" | "code"
            ) {
                out.text.push(' ');
            }
            Ok(())
        }
    }
}

fn check_value(
    tag: &str,
    attr: &str,
    value: &str,
    media: &BTreeSet<String>,
    out: &mut Checked,
) -> Result<()> {
    match attr {
        "src" => {
            let file = value.strip_prefix("media/").ok_or_else(|| {
                anyhow::anyhow!(
                    "image src {value:?} must point into the package: write src=\"media/FILE\""
                )
            })?;
            if !media.contains(file) {
                bail!("image media/{file} is missing from the media folder");
            }
            out.media.insert(file.to_string());
        }
        "width" | "height" | "colspan" | "rowspan"
            if !(!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                || (tag == "mspace"
                    && value.strip_suffix("em").is_some_and(|n| {
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    }))) =>
        {
            bail!("attribute {attr} in <{tag}> must be a number, got {value:?}");
        }
        "display" if !matches!(value, "block" | "inline") => {
            bail!("attribute display in <math> must be \"block\" or \"inline\"");
        }
        _ => {}
    }
    Ok(())
}

/// Escapes text or an attribute value for the canonical form. `"` is escaped in text too,
/// so the byte string `src="` can only be the start of a real image source.
fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            c => out.push(c),
        }
    }
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
        let c = canonical(ok, &media()).unwrap();
        assert_eq!(c.media, media());
        assert_eq!(
            c.html,
            ok.replace(
                r#"src="media/seg.svg" alt="x""#,
                r#"alt="x" src="media/seg.svg""#
            )
        );
        assert_eq!(c.images_without_alt, 0);
    }

    #[test]
    fn one_canonical_form() {
        for (src, want) in [
            ("<img src='media/seg.svg'>", r#"<img src="media/seg.svg">"#),
            (
                "<img alt=garis src=media/seg.svg/>",
                r#"<img alt="garis" src="media/seg.svg/">"#,
            ),
            ("a & b", "a &amp; b"),
            ("&copy; 2&#39;", "© 2'"),
            ("x&nbsp;y \"q\"", "x&nbsp;y &quot;q&quot;"),
            ("<p>a", "<p>a</p>"),
            ("<br/>", "<br>"),
            ("<P>A</P>", "<p>A</p>"),
        ] {
            match canonical(src, &media()) {
                Ok(c) => assert_eq!(c.html, want, "{src}"),
                // media/seg.svg/ is not a media file: the canonical form is still what the
                // browser would have read.
                Err(e) => assert!(e.to_string().contains("missing"), "{src}: {e}"),
            }
        }
        let c = canonical("<img src='media/seg.svg'>", &media()).unwrap();
        assert_eq!(c.images_without_alt, 1);
    }

    #[test]
    fn lenient_drops_and_lists() {
        let c = canonical_lenient(
            r#"<p dir="ltr" style="text-align: left;">a <a href="x">b</a><script>c</script><!-- d --></p>"#,
            &media(),
        )
        .unwrap();
        assert_eq!(c.html, "<p>a b</p>");
        assert_eq!(
            c.dropped,
            [
                "attribute \"dir\" on <p>",
                "attribute \"style\" on <p>",
                "element <a> (its content kept)",
                "element <script> and its content",
                "a comment"
            ]
        );
        assert!(canonical_lenient("x < 3", &media()).is_err());
    }

    #[test]
    fn refuses_everything_else() {
        for (bad, why) in [
            ("<script>alert(1)</script>", "<script>"),
            (r#"<p onclick="x">a</p>"#, "onclick"),
            (r#"<p style="color:red">a</p>"#, "style"),
            (r#"<img src="http://evil/x.png">"#, "media/"),
            (r#"<img src="media/none.png">"#, "missing"),
            ("<b>a", "not well formed"),
            ("<p><b>a</p></b>", "not well formed"),
            ("x < 3", "write &lt;"),
            ("a <3", "write &lt;"),
            ("<!-- x -->", "comments"),
            ("<p/>", "not well formed"),
            (r#"<img alt="src">"#, "needs src"),
            ("<svg><script>x</script></svg>", "<svg>"),
            ("<mi>x</mi>", "<mi>"),
            ("<a href=x>y</a>", "<a>"),
            ("<table><tr><td>a</td></tr>b</table>", "not well formed"),
        ] {
            let err = validate(bad, &media()).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}

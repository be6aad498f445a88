//! GIFT (`.gift`), Moodle's text format for question banks.
//!
//! Read: multiple choice (`{=right ~wrong ~wrong}`), multiple answer with percentages
//! (`{~%50%A ~%50%B ~%-100%C}`), true/false (`{T}`, `{F}`, `{TRUE}`, `{FALSE}`), titles
//! (`::KKA-P01::`, used as the item id when tuk can use it), `$CATEGORY:` lines (the last
//! part of the path is the competency of the questions that follow), `[html]` text, `//`
//! comments, feedback after `#` (dropped: participants see no feedback) and the escapes
//! `\~ \= \# \{ \} \: \\`.
//!
//! Percentages decide only which options are keys: the options with a positive
//! percentage, which must add up to 100. A multiple-answer item is scored by tuk's rule
//! for `multiple` items: all-or-nothing (the negative percentages are not used).
//!
//! Refused, with the line of the question: short answer (`{=a =b}`), matching (`->`),
//! numerical (`{#…}`), essay (`{}`), missing word (text after the answers), `[markdown]`
//! text, and a `{=…}` block with more than one `=`. There is no crate for this format;
//! the rules here are Moodle's (docs.moodle.org, "GIFT format").

use anyhow::{Result, bail};

use super::{bank_item, category_leaf, id_or_generated, option_id, text_or_html};
use crate::package::model::{Item, ItemKind, ItemOption};

/// Reads a GIFT file. Errors start with ", line N" (the caller puts the file name first).
pub(crate) fn read(text: &str, prefix: &str, competency: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut category = competency.to_string();
    let mut block = String::new();
    let mut start = 0;
    let lines = text.trim_start_matches('\u{feff}').lines().enumerate();
    for (i, line) in lines.chain(std::iter::once((usize::MAX - 1, ""))) {
        let t = line.trim();
        if t.starts_with("//") {
            continue;
        }
        if let Some(cat) = t.strip_prefix("$CATEGORY:") {
            category = category_leaf(cat);
            continue;
        }
        if !t.is_empty() {
            if block.is_empty() {
                start = i + 1;
            }
            block.push_str(line);
            block.push('\n');
            continue;
        }
        if block.trim().is_empty() {
            block.clear();
            continue;
        }
        let n = items.len() + 1;
        let item = question(&block, prefix, n, &category)
            .map_err(|e| anyhow::anyhow!(", line {start}: {e}"))?;
        items.push(item);
        block.clear();
    }
    Ok(items)
}

/// Position of the first unescaped `pat` (ASCII) in `s` at or after `from`; compared as
/// bytes, so it never splits a character.
fn find_unescaped(s: &str, pat: &str, from: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i..].starts_with(pat.as_bytes()) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(c) => out.push(c),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn question(block: &str, prefix: &str, n: usize, competency: &str) -> Result<Item> {
    let mut rest = block.trim();
    let mut title = String::new();
    if let Some(r) = rest.strip_prefix("::") {
        let end = find_unescaped(r, "::", 0)
            .ok_or_else(|| anyhow::anyhow!("the title after :: is not closed by ::"))?;
        title = unescape(&r[..end]);
        rest = r[end + 2..].trim_start();
    }
    let mut html = false;
    if let Some(r) = rest.strip_prefix('[') {
        let end = r
            .find(']')
            .ok_or_else(|| anyhow::anyhow!("a text format [...] is not closed"))?;
        match &r[..end] {
            "html" => html = true,
            "plain" | "moodle" => {}
            f => bail!("text format [{f}] is not supported; use [html] or plain text"),
        }
        rest = &r[end + 1..];
    }
    let open = find_unescaped(rest, "{", 0).ok_or_else(|| {
        anyhow::anyhow!("the question has no answers in {{…}} (descriptions are not items)")
    })?;
    let close = find_unescaped(rest, "}", open)
        .ok_or_else(|| anyhow::anyhow!("the answers' {{ is not closed by }}"))?;
    if !rest[close + 1..].trim().is_empty() {
        bail!(
            "text after the answers {{…}} (a missing-word question) is not supported; put the answers at the end"
        );
    }
    let stem_src = unescape(rest[..open].trim());
    let stem = if html {
        stem_src
    } else {
        text_or_html(&stem_src)
    };
    let mut body = &rest[open + 1..close];
    if let Some(g) = find_unescaped(body, "####", 0) {
        body = &body[..g];
    }
    let body = body.trim();
    let id = id_or_generated(&title, prefix, n);
    let item =
        |kind, options, key| bank_item(id.clone(), kind, competency, stem.clone(), options, key);
    match body {
        "" => bail!("an essay question ({{}}) is not supported: tuk scores only choice items"),
        "T" | "TRUE" => return Ok(item(ItemKind::Truefalse, Vec::new(), vec!["benar".into()])),
        "F" | "FALSE" => return Ok(item(ItemKind::Truefalse, Vec::new(), vec!["salah".into()])),
        _ => {}
    }
    if body.starts_with('#') {
        bail!("a numerical question ({{#…}}) is not supported");
    }
    if find_unescaped(body, "->", 0).is_some() {
        bail!("a matching question (->) is not supported");
    }
    // Split at every unescaped = or ~.
    let mut marks = Vec::new();
    let mut i = 0;
    while let Some(p) = [find_unescaped(body, "=", i), find_unescaped(body, "~", i)]
        .into_iter()
        .flatten()
        .min()
    {
        marks.push(p);
        i = p + 1;
    }
    if marks.first() != Some(&0) {
        bail!("the answers must start with = (right) or ~ (wrong)");
    }
    let mut answers: Vec<(bool, Option<f64>, String)> = Vec::new();
    for (k, &p) in marks.iter().enumerate() {
        let end = marks.get(k + 1).copied().unwrap_or(body.len());
        let mut a = body[p + 1..end].trim();
        if let Some(f) = find_unescaped(a, "#", 0) {
            a = a[..f].trim();
        }
        let mut percent = None;
        if let Some(r) = a.strip_prefix('%') {
            let e = r
                .find('%')
                .ok_or_else(|| anyhow::anyhow!("a percentage %…% is not closed"))?;
            percent = Some(
                r[..e]
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| anyhow::anyhow!("percentage %{}% is not a number", &r[..e]))?,
            );
            a = r[e + 1..].trim();
        }
        let text = unescape(a);
        answers.push((
            body.as_bytes()[p] == b'=',
            percent,
            if html { text } else { text_or_html(&text) },
        ));
    }
    if answers.iter().all(|a| a.0) {
        bail!(
            "a short-answer question (only = answers) is not supported: give wrong options with ~"
        );
    }
    let options: Vec<ItemOption> = answers
        .iter()
        .enumerate()
        .map(|(i, a)| ItemOption {
            id: option_id(i),
            html: a.2.clone(),
        })
        .collect();
    if options.len() > 5 {
        bail!(
            "the question has {} options; tuk takes 2 to 5",
            options.len()
        );
    }
    let right = answers.iter().filter(|a| a.0).count();
    if answers.iter().any(|a| a.1.is_some()) {
        if right > 0 {
            bail!(
                "mix of = and percentages: write every answer as ~%N% for a multiple-answer question"
            );
        }
        let key: Vec<String> = answers
            .iter()
            .enumerate()
            .filter(|(_, a)| a.1.unwrap_or(0.0) > 0.0)
            .map(|(i, _)| option_id(i))
            .collect();
        let sum: f64 = answers
            .iter()
            .filter_map(|a| a.1)
            .filter(|p| *p > 0.0)
            .sum();
        if (sum - 100.0).abs() > 0.5 {
            bail!("the positive percentages add up to {sum}, not 100");
        }
        let kind = if key.len() == 1 {
            ItemKind::Single
        } else {
            ItemKind::Multiple
        };
        return Ok(item(kind, options, key));
    }
    if right != 1 {
        bail!(
            "{right} answers are marked =; mark exactly one (or use ~%50% percentages for several right answers)"
        );
    }
    let key = vec![option_id(answers.iter().position(|a| a.0).unwrap_or(0))];
    Ok(item(ItemKind::Single, options, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_refuses() {
        let src = "// komentar\n$CATEGORY: $course$/top/pedagogik\n\n::KKA-1::Berapa 1\\=1? {=satu#benar ~dua ~tiga}\n\n::x y::Pilih semua {\n~%50%a\n~%50%b\n~%-100%c\n}\n\nBumi bulat. {T}\n";
        let items = read(src, "kka", "").unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].id, "KKA-1");
        assert_eq!(items[0].stem, "Berapa 1=1?");
        assert_eq!(items[0].competency, "pedagogik");
        assert_eq!(items[0].options[0].html, "satu");
        assert_eq!(items[1].id, "kka-002");
        assert_eq!(items[1].kind, ItemKind::Multiple);
        assert_eq!(items[1].key, ["a", "b"]);
        assert_eq!(items[2].key, ["benar"]);
        for (bad, why) in [
            ("\n\nSoal {=a =b}", "line 3: a short-answer"),
            ("Soal {a->b}", "matching"),
            ("Soal {#3}", "numerical"),
            ("Soal {}", "essay"),
            ("Soal {=a ~b} lagi", "missing-word"),
            ("Soal {=a =b ~c}", "2 answers are marked ="),
            ("Soal {~%50%a ~%20%b ~c}", "add up to 70"),
        ] {
            let e = read(bad, "k", "p").unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}

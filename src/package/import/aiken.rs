//! Aiken (`.txt`), Moodle's plain-text format for single-answer questions.
//!
//! ```text
//! Menurut Piaget, peserta didik SMP umumnya berada pada tahap ....
//! A. sensorimotor
//! B. praoperasional
//! C) operasional konkret
//! D) operasional formal
//! ANSWER: D
//! ```
//!
//! One question per block: the stem on the first line, then 2 to 5 options `A.` / `A)`
//! in order, then `ANSWER: X`; blocks are separated by blank lines. Everything is plain
//! text (a `<` stays a less-than sign). Aiken carries no ids, competency, weight or images:
//! ids are generated ([`super::generated_id`]), the competency is the test's `competency`
//! in `package.toml`, the weight 1. There is no crate for this format; the rules here are
//! Moodle's (docs.moodle.org, "Aiken format").

use anyhow::{Result, bail};

use super::{bank_item, generated_id, option_id, plain_to_html};
use crate::package::model::{Item, ItemKind, ItemOption};

/// Reads an Aiken file. Errors start with ", line N" (the caller puts the file name first).
pub(crate) fn read(text: &str, prefix: &str, competency: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut block: Vec<(usize, &str)> = Vec::new();
    let lines = text.trim_start_matches('\u{feff}').lines().enumerate();
    for (i, line) in lines.chain(std::iter::once((usize::MAX, ""))) {
        let line = line.trim();
        if !line.is_empty() {
            block.push((i + 1, line));
            continue;
        }
        if block.is_empty() {
            continue;
        }
        let n = items.len() + 1;
        items.push(question(&block, generated_id(prefix, n), competency)?);
        block.clear();
    }
    Ok(items)
}

fn question(block: &[(usize, &str)], id: String, competency: &str) -> Result<Item> {
    let (first, stem) = block[0];
    let Some(&(last, answer_line)) = block.last() else {
        bail!(", line {first}: empty question");
    };
    let Some(answer) = answer_line
        .strip_prefix("ANSWER:")
        .or_else(|| answer_line.strip_prefix("ANSWER :"))
    else {
        bail!(
            ", line {last}: the question that starts on line {first} does not end with \"ANSWER: X\" (Aiken writes the stem on one line, then A. … options, then ANSWER:)"
        );
    };
    let mut options = Vec::new();
    for (i, &(line, text)) in block[1..block.len() - 1].iter().enumerate() {
        let letter = (b'A' + i as u8) as char;
        let rest = text
            .strip_prefix(letter)
            .and_then(|r| r.strip_prefix('.').or_else(|| r.strip_prefix(')')))
            .filter(|r| r.starts_with(' ') || r.starts_with('\t'));
        let Some(rest) = rest else {
            bail!(
                ", line {line}: expected option \"{letter}. …\"; Aiken stems are one line and options are lettered A, B, C … in order"
            );
        };
        options.push(ItemOption {
            id: option_id(i),
            html: plain_to_html(rest),
        });
    }
    if !(2..=5).contains(&options.len()) {
        bail!(
            ", line {first}: the question has {} options; tuk takes 2 to 5",
            options.len()
        );
    }
    let answer = answer.trim();
    let key = match answer.as_bytes() {
        [c] if c.is_ascii_uppercase() && ((c - b'A') as usize) < options.len() => {
            option_id((c - b'A') as usize)
        }
        _ => bail!(
            ", line {last}: ANSWER {answer:?} is not one of the option letters A-{}",
            (b'A' + options.len() as u8 - 1) as char
        ),
    };
    Ok(bank_item(
        id,
        ItemKind::Single,
        competency,
        plain_to_html(stem),
        options,
        vec![key],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_refuses() {
        let items = read(
            "Berapa 1 < 2?\nA. ya\nB) tidak\nANSWER: A\n\n\nSoal dua\nA. x\nB. y\nC. z\nANSWER: C\n",
            "kka",
            "pedagogik",
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].stem, "Berapa 1 &lt; 2?");
        assert_eq!(items[1].id, "kka-002");
        assert_eq!(items[1].key, ["c"]);
        for (bad, why) in [
            (
                "Soal\nA. x\nB. y\n",
                "line 3: the question that starts on line 1",
            ),
            (
                "Soal\nA. x\nC. y\nANSWER: A",
                "line 3: expected option \"B.",
            ),
            ("Soal\nA. x\nB. y\nANSWER: C", "line 4: ANSWER \"C\""),
            ("Soal\nA. x\nANSWER: A", "has 1 options"),
        ] {
            let e = read(bad, "k", "p").unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}

//! `tuk package preview SRC -o DIR`: a static HTML review copy of a package source (or of a
//! built package, opened with a TUK's key) for the item review meeting. It is never part of
//! a package.
//!
//! `DIR/index.html` is one printable page: the package, each test with its draw rules and
//! a summary per pool (items, weight, kinds), the author-check warnings, then every item as
//! participants see it (the exam's own stylesheet, the canonical HTML, images from
//! `DIR/media/`, MathML) with its id, competency, indicator, pool, weight and the key
//! marked. No JavaScript; it fits 1024 px wide and prints one item per block.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::model::{Item, ItemKind};
use super::source::Source;

/// The exam's stylesheet, so items look as they do for participants.
const EXAM_CSS: &str = include_str!("../server/assets/tuk.css");

/// What the review copy adds: key marks, the metadata line, page breaks for printing.
const PREVIEW_CSS: &str = "
body { max-width: 60rem; margin: 0 auto; padding: 1rem; }
.meta { font-size: .9rem; color: #333; margin: .2rem 0 .6rem; }
.option.key { outline: 3px solid #1a7f37; background: #e6f4ea; }
.keymark { color: #1a7f37; font-weight: bold; margin-left: .5rem; }
article.item { border-top: 1px solid #999; padding-top: .6rem; margin-top: 1rem; break-inside: avoid; }
table.summary { border-collapse: collapse; margin: .5rem 0; }
table.summary td, table.summary th { border: 1px solid #999; padding: .2rem .5rem; text-align: left; }
.warn { background: #fff4ce; padding: .5rem 1rem; }
img { max-width: 100%; height: auto; }
@media print { .option.key { outline: 2px solid #000; } }
";

/// The review copy's content from a built package, opened with a TUK's key (and the
/// release code when it has one): the package is checked against the key its header names
/// (intact, not who made it: use `tuk package verify --trust` for that).
pub(crate) fn source_from_package(
    bytes: &[u8],
    key: &crate::keys::SecretKey,
    code: Option<&str>,
) -> Result<Source> {
    let pkg = super::verify_self(bytes)?;
    let contents = pkg.open(key)?;
    let bank = pkg.unlock(&contents, code)?;
    let names = bank.media.keys().cloned().collect();
    let warnings = super::lint::check(&bank.items, &names)?;
    Ok(Source {
        manifest: contents.manifest,
        roster: contents.roster,
        items: bank.items,
        media: bank.media,
        questionnaire: contents.questionnaire,
        warnings,
        dropped: Vec::new(),
    })
}

/// Writes the review copy of `src` into `out` (created if missing; `index.html` and
/// `media/` are replaced).
pub(crate) fn write(src: &Source, out: &Path) -> Result<()> {
    fs::create_dir_all(out.join("media"))
        .with_context(|| format!("cannot create {}", out.join("media").display()))?;
    for (name, bytes) in &src.media {
        let p = out.join("media").join(name);
        fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
    }
    let page = page(src).into_string();
    let index = out.join("index.html");
    crate::fsutil::write_atomic(&index, page.as_bytes())?;
    Ok(())
}

fn kind_name(k: ItemKind) -> &'static str {
    match k {
        ItemKind::Single => "pilihan ganda",
        ItemKind::Multiple => "pilihan ganda kompleks",
        ItemKind::Truefalse => "benar-salah",
    }
}

fn page(src: &Source) -> Markup {
    let m = &src.manifest;
    html! {
        (DOCTYPE)
        html lang="id" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Pratinjau: " (m.title) }
                style { (PreEscaped(EXAM_CSS)) }
                style { (PreEscaped(PREVIEW_CSS)) }
            }
            body {
                h1 { "Pratinjau telaah soal" }
                p { strong { (m.title) } br; (m.upt) " · paket " (m.id) " versi " (m.version) }
                p.meta { "Salinan ini hanya untuk rapat telaah; jangan disebarkan. Kunci jawaban ditandai hijau." }
                @if !src.warnings.is_empty() {
                    section.warn {
                        h2 { "Peringatan pemeriksaan (" (src.warnings.len()) ")" }
                        ul { @for w in &src.warnings { li { (w) } } }
                    }
                }
                @for t in &m.tests {
                    @let items: Vec<&Item> = src.items.iter().filter(|i| i.test == t.id).collect();
                    section {
                        h2 { (t.title) " (tes " (t.id) ")" }
                        p.meta {
                            (t.items) " soal per peserta · " (t.duration_minutes) " menit · lulus jika nilai > " (t.pass_threshold)
                            @if t.shuffle_items { " · urutan soal diacak" }
                            @if t.shuffle_options { " · urutan pilihan diacak" }
                        }
                        @if t.draw.is_empty() {
                            p { "Semua " (items.len()) " soal di bank dipakai." }
                        } @else {
                            p { "Aturan pengambilan soal: " @for (i, d) in t.draw.iter().enumerate() { @if i > 0 { ", " } (d.count) " dari kelompok " strong { (d.pool) } } "." }
                        }
                        (summary(&items))
                        @if !t.instructions.is_empty() {
                            h3 { "Petunjuk" }
                            div.rules { (PreEscaped(&t.instructions)) }
                        }
                        @for (n, it) in items.iter().enumerate() {
                            (item(n + 1, it))
                        }
                    }
                }
            }
        }
    }
}

fn summary(items: &[&Item]) -> Markup {
    // pool → (items, total weight, single, multiple, truefalse)
    let mut pools: BTreeMap<&str, (usize, f64, [usize; 3])> = BTreeMap::new();
    for it in items {
        let e = pools.entry(&it.pool).or_default();
        e.0 += 1;
        e.1 += it.weight;
        e.2[it.kind as usize] += 1;
    }
    html! {
        table.summary {
            tr { th { "Kelompok (pool)" } th { "Soal" } th { "Jumlah bobot" } th { "PG" } th { "PG kompleks" } th { "B-S" } }
            @for (pool, (n, w, k)) in &pools {
                tr { td { (pool) } td { (n) } td { (format!("{w:.2}")) } td { (k[0]) } td { (k[1]) } td { (k[2]) } }
            }
        }
    }
}

fn item(n: usize, it: &Item) -> Markup {
    html! {
        article.item id=(it.id) {
            main.question {
                h3 { "Soal " (n) " · " (it.id) }
                p.meta {
                    (kind_name(it.kind)) " · kompetensi " strong { (it.competency) }
                    " · kelompok " (it.pool) " · bobot " (it.weight)
                    @if it.partial_credit { " · skor parsial" }
                    @if !it.indicator.is_empty() { br; "Indikator: " (it.indicator) }
                }
                div.stem { (PreEscaped(&it.stem)) }
                div.options {
                    @for (i, o) in it.options.iter().enumerate() {
                        @let key = it.key.contains(&o.id);
                        div class=(if key { "option key" } else { "option" }) {
                            span.letter { ((b'A' + i as u8) as char) }
                            " "
                            span.text { (PreEscaped(&o.html)) }
                            @if key { span.keymark { "✓ kunci" } }
                        }
                    }
                }
            }
        }
    }
}

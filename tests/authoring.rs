//! Question authoring (issue 15): one canonical form of item HTML, the author checks, and
//! item banks in the formats UPT staff already have (TOML, Excel, Aiken, GIFT, Moodle XML,
//! QTI), read by the library where many cases must run fast and by the real binary and
//! server where a user would see the result.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use common::{Prepared, Server, bin, edit_file};
use serde_json::{Value, json};
use tuk::package::html;
use tuk::package::model::{Item, ItemKind};
use tuk::package::source;

const PKG: &str = "demo-kk-a-2026";
const SVG: &[u8] = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>";

// ---------------------------------------------------------------------------------------
// A tiny package source folder around one item bank
// ---------------------------------------------------------------------------------------

/// Writes a package source with one test whose bank is `items/bank.{ext}` (written by
/// `bank`), one session and one participant; `media/garis.svg` exists.
fn package(dir: &Path, ext: &str, items: usize, bank: impl FnOnce(&Path)) {
    fs::create_dir_all(dir.join("items")).unwrap();
    fs::create_dir_all(dir.join("media")).unwrap();
    fs::write(dir.join("media/garis.svg"), SVG).unwrap();
    fs::write(
        dir.join("package.toml"),
        format!(
            r#"format = 1
id = "authoring-test"
version = 1
upt = "UPT Uji"
title = "Uji penulisan soal"

[[test]]
id = "t1"
title = "Tes"
bank = "items/bank.{ext}"
competency = "pedagogik"
duration_minutes = 60
items = {items}

[[session]]
id = "S1"
test = "t1"
date = "2026-12-01"
start = "08:00"
end = "10:00"
room = "Lab 1"
"#
        ),
    )
    .unwrap();
    fs::write(
        dir.join("roster.csv"),
        "participant,name,institution,district,province,test,session,nilai_awal,extra_minutes\n\
         2026000000001,Siti,SMP 1,Sleman,DIY,t1,S1,50,0\n",
    )
    .unwrap();
    bank(&dir.join(format!("items/bank.{ext}")));
}

fn read_err(dir: &Path) -> String {
    match source::read(dir) {
        Ok(_) => panic!("{} was accepted", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

// ---------------------------------------------------------------------------------------
// The ten-item bank, written in every format
// ---------------------------------------------------------------------------------------

struct Q {
    kind: ItemKind,
    stem: &'static str,
    options: &'static [&'static str],
    key: &'static [usize],
    image: bool,
}

/// Plain-text stems and options (with `<`, `&` and quotes to check escaping); the last
/// item shows `media/garis.svg` under its stem.
fn bank() -> Vec<Q> {
    let s = |stem, options, key| Q {
        kind: ItemKind::Single,
        stem,
        options,
        key,
        image: false,
    };
    vec![
        s(
            "Menurut Piaget, anak usia 12 tahun berada pada tahap ....",
            &[
                "sensorimotor",
                "praoperasional",
                "operasional konkret",
                "operasional formal",
            ],
            &[3],
        ),
        s(
            "Jika x < 3 & y > 5, maka pernyataan yang benar adalah ....",
            &["x + y < 3", "y - x > 2", "x = y", "x > y"],
            &[1],
        ),
        s(
            "Guru \"penggerak\" adalah guru yang ....",
            &["mengajar", "memimpin pembelajaran", "menilai"],
            &[1],
        ),
        s(
            "Asesmen diagnostik dilakukan pada ....",
            &[
                "awal pembelajaran",
                "akhir semester",
                "ujian nasional",
                "libur",
                "rapat",
            ],
            &[0],
        ),
        s("Nilai 2 + 2 adalah ....", &["3", "4"], &[1]),
        s(
            "Contoh media konkret adalah ....",
            &["video", "benda nyata", "gambar", "slide"],
            &[1],
        ),
        s(
            "Umpan balik sebaiknya diberikan ....",
            &["segera", "sebulan kemudian", "tidak perlu"],
            &[0],
        ),
        Q {
            kind: ItemKind::Multiple,
            stem: "Manakah bilangan prima? Pilih semua jawaban yang benar.",
            options: &["2", "4", "5", "9"],
            key: &[0, 2],
            image: false,
        },
        Q {
            kind: ItemKind::Truefalse,
            stem: "Segitiga memiliki tiga sisi.",
            options: &[],
            key: &[0],
            image: false,
        },
        Q {
            kind: ItemKind::Single,
            stem: "Perhatikan gambar berikut.",
            options: &["garis", "titik", "bidang"],
            key: &[0],
            image: true,
        },
    ]
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn letter(i: usize) -> char {
    (b'A' + i as u8) as char
}

const IMG: &str = r#"<br><img alt="garis" src="media/garis.svg">"#;

fn write_toml(path: &Path, qs: &[Q]) {
    let mut t = String::new();
    for (n, q) in qs.iter().enumerate() {
        let kind = match q.kind {
            ItemKind::Single => "single",
            ItemKind::Multiple => "multiple",
            ItemKind::Truefalse => "truefalse",
        };
        let stem = format!("{}{}", esc(q.stem), if q.image { IMG } else { "" });
        t.push_str(&format!(
            "[[item]]\nid = \"bank-{:03}\"\ntype = \"{kind}\"\ncompetency = \"pedagogik\"\nstem = {}\n",
            n + 1,
            toml_str(&stem)
        ));
        if q.kind == ItemKind::Truefalse {
            t.push_str(&format!("key = [\"{}\"]\n\n", ["benar", "salah"][q.key[0]]));
            continue;
        }
        t.push_str("options = [\n");
        for (i, o) in q.options.iter().enumerate() {
            t.push_str(&format!(
                "  {{ id = \"{}\", html = {} }},\n",
                letter(i).to_ascii_lowercase(),
                toml_str(&esc(o))
            ));
        }
        let key: Vec<String> = q
            .key
            .iter()
            .map(|&k| format!("\"{}\"", letter(k).to_ascii_lowercase()))
            .collect();
        t.push_str(&format!("]\nkey = [{}]\n\n", key.join(", ")));
    }
    fs::write(path, t).unwrap();
}

fn toml_str(s: &str) -> String {
    format!("'{s}'")
}

/// Fills `tuk package template` the way a script edits a workbook: rows 3.. of the sheet
/// Soal are added to the template's own XML (inline strings, as openpyxl-like tools
/// write them), every other part of the file is kept.
fn write_xlsx(path: &Path, qs: &[Q]) {
    let mut rows = String::new();
    for (n, q) in qs.iter().enumerate() {
        let r = n + 3;
        let kind = match q.kind {
            ItemKind::Single => "single",
            ItemKind::Multiple => "multiple",
            ItemKind::Truefalse => "truefalse",
        };
        let key = if q.kind == ItemKind::Truefalse {
            ["Benar", "Salah"][q.key[0]].to_string()
        } else {
            q.key
                .iter()
                .map(|&k| letter(k).to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut cells: Vec<(usize, String)> = vec![
            (1, kind.into()),
            (2, "pedagogik".into()),
            (6, q.stem.into()),
            (12, key),
        ];
        for (i, o) in q.options.iter().enumerate() {
            cells.push((7 + i, o.to_string()));
        }
        if q.image {
            cells.push((13, "garis.svg".into()));
            cells.push((14, "garis".into()));
        }
        cells.push((5, String::new()));
        cells.sort();
        rows.push_str(&format!("<row r=\"{r}\">"));
        for (c, v) in cells {
            if c == 5 {
                // The weight as a number cell.
                rows.push_str(&format!("<c r=\"F{r}\"><v>1</v></c>"));
                continue;
            }
            rows.push_str(&format!(
                "<c r=\"{}{r}\" t=\"inlineStr\"><is><t>{}</t></is></c>",
                letter(c),
                esc(&v)
            ));
        }
        rows.push_str("</row>");
    }
    fill_template(path, &rows, qs.len() + 2);
}

/// The template with `rows` (sheet XML `<row>` elements) added to the sheet Soal.
fn fill_template(path: &Path, rows: &str, last: usize) {
    let template = tuk::package::import::xlsx::template().unwrap();
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(template)).unwrap();
    let mut zout = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let opt = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            let xml = String::from_utf8(bytes).unwrap();
            assert!(xml.contains("</sheetData>"), "{xml}");
            let dim_start = xml.find("<dimension ref=\"").unwrap() + 16;
            let dim_end = dim_start + xml[dim_start..].find('"').unwrap();
            let xml = format!("{}A1:O{last}{}", &xml[..dim_start], &xml[dim_end..])
                .replace("</sheetData>", &format!("{rows}</sheetData>"));
            bytes = xml.into_bytes();
        }
        zout.start_file(name, opt).unwrap();
        zout.write_all(&bytes).unwrap();
    }
    zout.finish().unwrap();
}

fn write_aiken(path: &Path, qs: &[Q]) {
    let mut t = String::new();
    for q in qs.iter().filter(|q| q.kind == ItemKind::Single) {
        t.push_str(q.stem);
        t.push('\n');
        for (i, o) in q.options.iter().enumerate() {
            t.push_str(&format!("{}. {o}\n", letter(i)));
        }
        t.push_str(&format!("ANSWER: {}\n\n", letter(q.key[0])));
    }
    fs::write(path, t).unwrap();
}

fn gift_esc(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "~=#{}:".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

fn write_gift(path: &Path, qs: &[Q]) {
    let mut t = String::from("// bank uji\n$CATEGORY: $course$/top/pedagogik\n\n");
    for q in qs {
        if q.image {
            t.push_str(&format!(
                "[html]{}{} {{",
                gift_esc(&esc(q.stem)),
                gift_esc(IMG)
            ));
        } else {
            t.push_str(&format!("{} {{", gift_esc(q.stem)));
        }
        match q.kind {
            ItemKind::Truefalse => t.push_str(["T", "F"][q.key[0]]),
            ItemKind::Single => {
                for (i, o) in q.options.iter().enumerate() {
                    let o = if q.image { esc(o) } else { o.to_string() };
                    let mark = if q.key.contains(&i) { '=' } else { '~' };
                    t.push_str(&format!("\n{mark}{}", gift_esc(&o)));
                }
                t.push('\n');
            }
            ItemKind::Multiple => {
                let share = 100 / q.key.len();
                for (i, o) in q.options.iter().enumerate() {
                    let p = if q.key.contains(&i) {
                        share as i64
                    } else {
                        -100
                    };
                    t.push_str(&format!("\n~%{p}%{}#umpan balik", gift_esc(o)));
                }
                t.push('\n');
            }
        }
        t.push_str("}\n\n");
    }
    fs::write(path, t).unwrap();
}

fn write_moodle(path: &Path, qs: &[Q]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(SVG);
    let mut t = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<quiz>\n<question type=\"category\"><category><text>$course$/top/pedagogik</text></category></question>\n",
    );
    for (n, q) in qs.iter().enumerate() {
        let kind = if q.kind == ItemKind::Truefalse {
            "truefalse"
        } else {
            "multichoice"
        };
        let (stem, file) = if q.image {
            (
                format!(
                    "{}<br><img src=\"@@PLUGINFILE@@/garis.svg\" alt=\"garis\">",
                    esc(q.stem)
                ),
                format!("<file name=\"garis.svg\" path=\"/\" encoding=\"base64\">{b64}</file>"),
            )
        } else {
            (esc(q.stem), String::new())
        };
        t.push_str(&format!(
            "<question type=\"{kind}\"><name><text>bank-{:03}</text></name>\n<questiontext format=\"html\"><text><![CDATA[{stem}]]></text>{file}</questiontext>\n<defaultgrade>1.0000000</defaultgrade>\n",
            n + 1
        ));
        match q.kind {
            ItemKind::Truefalse => {
                let (t_, f_) = if q.key[0] == 0 { (100, 0) } else { (0, 100) };
                t.push_str(&format!("<answer fraction=\"{t_}\"><text>true</text></answer><answer fraction=\"{f_}\"><text>false</text></answer>\n"));
            }
            _ => {
                let single = q.kind == ItemKind::Single;
                t.push_str(&format!("<single>{single}</single>\n"));
                for (i, o) in q.options.iter().enumerate() {
                    let f = if q.key.contains(&i) {
                        100.0 / q.key.len() as f64
                    } else if single {
                        0.0
                    } else {
                        -100.0
                    };
                    t.push_str(&format!(
                        "<answer fraction=\"{f}\" format=\"plain_text\"><text>{}</text><feedback><text>ok</text></feedback></answer>\n",
                        esc(o)
                    ));
                }
            }
        }
        t.push_str("</question>\n");
    }
    t.push_str("</quiz>\n");
    fs::write(path, t).unwrap();
}

fn write_qti(path: &Path, qs: &[Q]) {
    let file = fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opt =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut resources = String::new();
    for (n, q) in qs.iter().enumerate() {
        if q.kind == ItemKind::Truefalse {
            continue;
        }
        let id = format!("bank-{:03}", n + 1);
        let href = format!("items/{id}.xml");
        resources.push_str(&format!(
            "<resource identifier=\"R{n}\" type=\"imsqti_item_xmlv2p1\" href=\"{href}\"><file href=\"{href}\"/></resource>\n"
        ));
        let card = if q.kind == ItemKind::Multiple {
            "multiple"
        } else {
            "single"
        };
        let values: String = q
            .key
            .iter()
            .map(|&k| format!("<value>Choice{}</value>", letter(k)))
            .collect();
        let choices: String = q
            .options
            .iter()
            .enumerate()
            .map(|(i, o)| {
                format!(
                    "<simpleChoice identifier=\"Choice{}\">{}</simpleChoice>",
                    letter(i),
                    esc(o)
                )
            })
            .collect();
        let img = if q.image {
            "<br/><img src=\"../images/garis.svg\" alt=\"garis\"/>"
        } else {
            ""
        };
        let item = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1" identifier="{id}" title="{id}" adaptive="false" timeDependent="false">
  <responseDeclaration identifier="RESPONSE" cardinality="{card}" baseType="identifier">
    <correctResponse>{values}</correctResponse>
  </responseDeclaration>
  <itemBody>
    <choiceInteraction responseIdentifier="RESPONSE" shuffle="false" maxChoices="{}">
      <prompt>{}{img}</prompt>
      {choices}
    </choiceInteraction>
  </itemBody>
</assessmentItem>
"#,
            q.key.len(),
            esc(q.stem)
        );
        zip.start_file(&href, opt).unwrap();
        zip.write_all(item.as_bytes()).unwrap();
    }
    zip.start_file("images/garis.svg", opt).unwrap();
    zip.write_all(SVG).unwrap();
    zip.start_file("imsmanifest.xml", opt).unwrap();
    zip.write_all(
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" identifier="M1">
<organizations/>
<resources>
{resources}</resources>
</manifest>
"#
        )
        .as_bytes(),
    )
    .unwrap();
    zip.finish().unwrap();
}

/// What a participant and the scorer get from an item, without the test it belongs to.
fn view(it: &Item) -> Value {
    json!({
        "id": it.id,
        "kind": format!("{:?}", it.kind),
        "competency": it.competency,
        "pool": it.pool,
        "weight": it.weight,
        "stem": it.stem,
        "options": it.options.iter().map(|o| [o.id.clone(), o.html.clone()]).collect::<Vec<_>>(),
        "key": it.key,
        "partial_credit": it.partial_credit,
    })
}

#[test]
fn the_same_bank_from_every_format_gives_the_same_items() {
    let qs = bank();
    let tmp = tempfile::tempdir().unwrap();
    let read =
        |ext: &str, n: usize, write: &dyn Fn(&Path, &[Q])| -> (Vec<Value>, BTreeSet<String>) {
            let dir = tmp.path().join(ext);
            package(&dir, ext, n, |p| write(p, &qs));
            let src = source::read(&dir).unwrap_or_else(|e| panic!("{ext}: {e:#}"));
            (
                src.items.iter().map(view).collect(),
                src.media.keys().cloned().collect(),
            )
        };
    let (toml, media) = read("toml", 10, &write_toml);
    assert_eq!(toml.len(), 10);
    assert!(
        toml[1]["stem"]
            .as_str()
            .unwrap()
            .contains("x &lt; 3 &amp; y &gt; 5"),
        "{}",
        toml[1]
    );
    assert_eq!(
        toml[9]["stem"],
        format!("Perhatikan gambar berikut.{IMG}"),
        "canonical: attributes sorted, double quotes"
    );
    for (ext, write) in [
        ("xlsx", &write_xlsx as &dyn Fn(&Path, &[Q])),
        ("gift", &write_gift),
        ("xml", &write_moodle),
    ] {
        assert_eq!(read(ext, 10, write), (toml.clone(), media.clone()), "{ext}");
    }
    // QTI has no true/false interaction: the bank without item 9 (ids kept).
    let mut no_tf = toml.clone();
    no_tf.remove(8);
    assert_eq!(read("zip", 9, &write_qti), (no_tf, media.clone()), "zip");
    // Aiken carries single-answer plain text only: items 1-7 and 10 without its image,
    // with ids by position.
    let mut singles: Vec<Value> = toml
        .iter()
        .filter(|v| v["kind"] == "Single")
        .cloned()
        .collect();
    for (n, v) in singles.iter_mut().enumerate() {
        v["id"] = json!(format!("bank-{:03}", n + 1));
    }
    singles[7]["stem"] = json!("Perhatikan gambar berikut.");
    assert_eq!(read("txt", 8, &write_aiken), (singles, media), "txt");
}

#[test]
fn generated_ids_are_stable_and_banks_build_with_the_binary() {
    let qs = bank();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gift");
    package(&dir, "gift", 10, |p| write_gift(p, &qs));
    let ids = |d: &Path| -> Vec<String> {
        source::read(d)
            .unwrap()
            .items
            .into_iter()
            .map(|i| i.id)
            .collect()
    };
    let first = ids(&dir);
    assert_eq!(first, ids(&dir));
    assert_eq!(first[0], "bank-001");
    // The binary builds it, and twice from the same source the items are byte-identical.
    let keys = tmp.path().join("keys");
    let k = keys.display().to_string();
    common::tuk(&["keygen", "--out", &k, "--name", "upt"]);
    common::tuk(&["keygen", "--out", &k, "--name", "tuk"]);
    let mut raw = Vec::new();
    for n in 0..2 {
        let out = tmp.path().join(format!("p{n}.tukpkg"));
        common::tuk(&[
            "package",
            "build",
            &dir.display().to_string(),
            "--sign",
            &keys.join("upt.key").display().to_string(),
            "--to",
            &keys.join("tuk.pub").display().to_string(),
            "-o",
            &out.display().to_string(),
        ]);
        let bytes = fs::read(&out).unwrap();
        let pkg = tuk::package::verify_self(&bytes).unwrap();
        let key = tuk::keys::SecretKey::read(&keys.join("tuk.key")).unwrap();
        raw.push(pkg.raw_items(&key, None).unwrap());
    }
    assert_eq!(raw[0], raw[1], "items.json byte-identical across builds");
}

// ---------------------------------------------------------------------------------------
// The single-quoted image in the exam
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_single_quoted_image_shows_in_the_exam() {
    let p = Prepared::new(
        |src| {
            edit_file(
                &src.join("items/kka.toml"),
                r#"<img src="media/garis-bilangan.svg" alt="#,
                "<img src='media/garis-bilangan.svg' alt=",
            )
        },
        &format!("{PKG}/S1"),
    );
    let srv = Server::serve(p);
    let (number, password) = srv.logins[0].clone();
    let c = srv.client();
    c.post(
        "/api/v1/login",
        &json!({"participant": number, "password": password}),
    )
    .await
    .assert_ok();
    c.post("/api/v1/start", &json!({"token": srv.token}))
        .await
        .assert_ok();
    let want = format!("src=\"/media/{PKG}/garis-bilangan.svg\"");
    let mut found = false;
    for n in 1..=60 {
        let v = c.get(&format!("/api/v1/items/{n}")).await.assert_ok();
        let stem = v["stem"].as_str().unwrap_or("");
        if stem.contains("garis-bilangan") {
            assert!(stem.contains(&want), "{stem}");
            found = true;
            break;
        }
    }
    assert!(found, "the edited item is in the participant's form");
    let img = c.get(&format!("/media/{PKG}/garis-bilangan.svg")).await;
    assert_eq!(
        (img.status, img.header("content-type").as_deref()),
        (200, Some("image/svg+xml"))
    );
}

// ---------------------------------------------------------------------------------------
// Errors that say what to write
// ---------------------------------------------------------------------------------------

#[test]
fn html_errors_name_the_item_and_say_what_to_write() {
    let tmp = tempfile::tempdir().unwrap();
    let qs = bank();
    for (n, (from, to, want)) in [
        (
            "Nilai 2 + 2 adalah ....",
            "Nilai 2 <2 adalah ....",
            "item bank-005, stem: a bare \"<\"",
        ),
        (
            "Nilai 2 + 2 adalah ....",
            "Nilai <script>x</script>",
            "item bank-005, stem: element <script> is not allowed",
        ),
        (
            "Nilai 2 + 2 adalah ....",
            "Nilai <b>2",
            "item bank-005, stem: the HTML is not well formed",
        ),
        (
            "Nilai 2 + 2 adalah ....",
            "<p onclick=\"x\">2</p>",
            "attribute \"onclick\" is not allowed on <p>",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(format!("e{n}"));
        package(&dir, "toml", 10, |p| {
            write_toml(p, &qs);
            let t = fs::read_to_string(p).unwrap().replace(from, to);
            fs::write(p, t).unwrap();
        });
        let e = read_err(&dir);
        assert!(e.contains(want), "{to}: {e}");
        if n == 0 {
            assert!(e.contains("write &lt;"), "{e}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Author checks
// ---------------------------------------------------------------------------------------

/// The TOML bank with `edit` applied to its text.
fn toml_package(dir: &Path, items: usize, edit: impl Fn(String) -> String) {
    let qs = bank();
    package(dir, "toml", items, |p| {
        write_toml(p, &qs);
        let t = edit(fs::read_to_string(p).unwrap());
        fs::write(p, t).unwrap();
    });
}

#[test]
fn lint_refuses_unfair_items() {
    let tmp = tempfile::tempdir().unwrap();
    for (n, (from, to, want)) in [
        (
            "html = 'praoperasional'",
            "html = ''",
            "item bank-001, option b: the option is empty",
        ),
        (
            "html = 'praoperasional'",
            "html = '<b> Sensorimotor </b>'",
            "item bank-001: options a and b read the same",
        ),
        (
            "key = [\"d\"]",
            "key = [\"e\"]",
            "key \"e\" is not among the options",
        ),
        (
            "Nilai 2 + 2 adalah ....",
            "Umpan balik sebaiknya diberikan ....",
            "item bank-007: its stem is exactly the stem of item bank-005",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(format!("l{n}"));
        toml_package(&dir, 10, |t| {
            assert!(t.contains(from), "{from}");
            t.replacen(from, to, 1)
        });
        let e = read_err(&dir);
        assert!(e.contains(want), "{to}: {e}");
    }
    // The binary says it in one line and writes nothing.
    let keys = tmp.path().join("keys");
    let k = keys.display().to_string();
    common::tuk(&["keygen", "--out", &k, "--name", "upt"]);
    common::tuk(&["keygen", "--out", &k, "--name", "tuk"]);
    let out = tmp.path().join("x.tukpkg");
    let run = Command::new(bin())
        .args(["package", "build"])
        .arg(tmp.path().join("l0"))
        .arg("--sign")
        .arg(keys.join("upt.key"))
        .arg("--to")
        .arg(keys.join("tuk.pub"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains(
            "item bank-001, option b: the option is empty; write its text or delete the option"
        ),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn lint_warns_about_habits() {
    let tmp = tempfile::tempdir().unwrap();
    // 20 single-answer items, key always "a" and always the longest; one image without
    // alt; one multiple item that does not say to choose all.
    let dir = tmp.path().join("w");
    package(&dir, "toml", 21, |p| {
        let mut t = String::new();
        for n in 1..=20 {
            t.push_str(&format!(
                "[[item]]\nid = \"w{n}\"\ntype = \"single\"\ncompetency = \"pedagogik\"\nstem = \"Soal nomor {n}{}\"\noptions = [{{ id = \"a\", html = \"jawaban yang panjang sekali\" }}, {{ id = \"b\", html = \"pendek\" }}, {{ id = \"c\", html = \"singkat\" }}]\nkey = [\"a\"]\n\n",
                if n == 1 { " <img src='media/garis.svg'>" } else { "" }
            ));
        }
        t.push_str("[[item]]\nid = \"m1\"\ntype = \"multiple\"\ncompetency = \"pedagogik\"\nstem = \"Bilangan prima adalah\"\noptions = [{ id = \"a\", html = \"2\" }, { id = \"b\", html = \"3\" }, { id = \"c\", html = \"4\" }]\nkey = [\"a\", \"b\"]\n");
        fs::write(p, t).unwrap();
    });
    let src = source::read(&dir).unwrap();
    let w = src.warnings.join("\n");
    for want in [
        "item w1: 1 image(s) without alt text",
        "item m1: a multiple-answer item whose stem does not say to choose all",
        "key letters are unbalanced: 20 of 20 single-answer keys (100 %) are option A",
        "the key is the longest option in 20 of 20 single-answer items",
    ] {
        assert!(w.contains(want), "{want}\n{w}");
    }
    assert_eq!(src.warnings.len(), 4, "{w}");
    // A balanced bank with alt texts and a clear multiple stem has no warnings.
    let dir = tmp.path().join("ok");
    toml_package(&dir, 10, |t| t);
    assert_eq!(source::read(&dir).unwrap().warnings, Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// Format errors: one sentence naming the file and the line, row or item
// ---------------------------------------------------------------------------------------

#[test]
fn malformed_banks_are_refused_with_file_and_place() {
    let tmp = tempfile::tempdir().unwrap();
    type Writer = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Writer, &str)> = vec![
        (
            "txt",
            Box::new(|p: &Path| fs::write(p, "Soal\nA. x\nB. y\nANSWER: C\n").unwrap()),
            "bank.txt, line 4: ANSWER \"C\"",
        ),
        (
            "gift",
            Box::new(|p: &Path| fs::write(p, "// x\n\nSoal esai {}\n").unwrap()),
            "bank.gift, line 3: an essay question",
        ),
        (
            "xml",
            Box::new(|p: &Path| {
                fs::write(p, "<quiz>\n<question type=\"essay\"><name><text>E1</text></name></question>\n</quiz>").unwrap()
            }),
            "bank.xml, line 2: question \"E1\": question type \"essay\" is not supported",
        ),
        (
            "xml",
            Box::new(|p: &Path| fs::write(p, "<quiz><question").unwrap()),
            "bank.xml: not well-formed XML",
        ),
        (
            "zip",
            Box::new(|p: &Path| fs::write(p, "not a zip").unwrap()),
            "bank.zip: is not a readable zip file",
        ),
        (
            "xlsx",
            Box::new(|p: &Path| {
                let mut b = rust_xlsxwriter::Workbook::new();
                let s = b.add_worksheet();
                for (c, name) in tuk::package::import::xlsx::COLUMNS.iter().enumerate() {
                    s.write_string(0, c as u16, *name).unwrap();
                }
                s.write_string(4, 1, "essay").unwrap();
                b.save(p).unwrap();
            }),
            "bank.xlsx, row 5: type \"essay\"",
        ),
        (
            "xlsx",
            Box::new(|p: &Path| {
                // A formula with no saved value, as a script writes it (no <v> element).
                fill_template(
                    p,
                    r#"<row r="3"><c r="B3" t="inlineStr"><is><t>single</t></is></c><c r="C3" t="inlineStr"><is><t>pedagogik</t></is></c><c r="G3"><f>"Soal "&amp;"satu"</f></c></row>"#,
                    3,
                );
            }),
            "bank.xlsx, row 3, column stem: a formula without a saved value",
        ),
        (
            "docx",
            Box::new(|p: &Path| fs::write(p, "x").unwrap()),
            "an item bank ending in .docx is not read",
        ),
    ];
    for (n, (ext, write, want)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("m{n}"));
        package(&dir, ext, 1, |p| write(p));
        let e = read_err(&dir);
        assert!(e.contains(want), "{want}\n{e}");
    }
}

#[test]
fn a_zip_bomb_is_refused_before_unpacking() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bomb");
    package(&dir, "zip", 1, |p| {
        let mut zip = zip::ZipWriter::new(fs::File::create(p).unwrap());
        let opt = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("imsmanifest.xml", opt).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            zip.write_all(&zeros).unwrap();
        }
        zip.finish().unwrap();
    });
    let e = read_err(&dir);
    assert!(e.contains("zip bomb before unpacking"), "{e}");
}

// ---------------------------------------------------------------------------------------
// The Excel template
// ---------------------------------------------------------------------------------------

#[test]
fn template_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bank.xlsx");
    let run = common::tuk(&["package", "template", "-o", &out.display().to_string()]);
    assert!(run.contains("Soal"), "{run}");
    // The template as written builds to nothing (its example row is a comment) …
    let bytes = fs::read(&out).unwrap();
    let items = tuk::package::import::xlsx::read(&bytes, "bank", &spec()).unwrap();
    assert!(items.is_empty());
    // … and has the sheets, the drop-down lists and the example the instructions promise.
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    let mut sheet1 = String::new();
    std::io::Read::read_to_string(
        &mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(),
        &mut sheet1,
    )
    .unwrap();
    assert!(sheet1.contains("dataValidation") && sheet1.contains("single,multiple,truefalse"));
    let mut book = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("xl/workbook.xml").unwrap(), &mut book).unwrap();
    assert!(
        book.contains("name=\"Soal\"") && book.contains("name=\"Petunjuk\""),
        "{book}"
    );
    // Filled in by a script (the ten-item bank under the example row), it builds to the
    // same items as the TOML bank.
    let qs = bank();
    let xdir = tmp.path().join("x");
    package(&xdir, "xlsx", 10, |p| write_xlsx(p, &qs));
    let tdir = tmp.path().join("t");
    package(&tdir, "toml", 10, |p| write_toml(p, &qs));
    let a: Vec<Value> = source::read(&xdir)
        .unwrap()
        .items
        .iter()
        .map(view)
        .collect();
    let b: Vec<Value> = source::read(&tdir)
        .unwrap()
        .items
        .iter()
        .map(view)
        .collect();
    assert_eq!(a, b);
}

fn spec() -> tuk::package::model::TestSpec {
    toml::from_str(
        "id = \"t1\"\ntitle = \"t\"\nduration_minutes = 1\nitems = 1\ncompetency = \"pedagogik\"",
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// The HTML subset under random input
// ---------------------------------------------------------------------------------------

/// Checks a canonical string independently of the checker: every element and attribute is
/// in the subset, and image sources point into `media/`.
fn inside_subset(canonical: &str) -> Result<(), String> {
    let doc = scraper::Html::parse_fragment(canonical);
    let allowed = [
        "html", "p", "br", "b", "strong", "i", "em", "u", "sub", "sup", "ul", "ol", "li", "table",
        "thead", "tbody", "tr", "th", "td", "img", "span", "code", "pre", "math", "mi", "mn", "mo",
        "mrow", "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot", "mtext", "mspace", "mover",
        "munder", "mtable", "mtr", "mtd",
    ];
    // From the root: the parser's context element is an unattached node of the tree.
    for n in doc.tree.root().descendants() {
        match n.value() {
            scraper::Node::Element(e) => {
                if !allowed.contains(&e.name()) {
                    return Err(format!("element {}", e.name()));
                }
                for (a, v) in e.attrs() {
                    if ![
                        "src", "alt", "width", "height", "colspan", "rowspan", "display",
                    ]
                    .contains(&a)
                    {
                        return Err(format!("attribute {a}"));
                    }
                    if a == "src" && !v.starts_with("media/") {
                        return Err(format!("src {v}"));
                    }
                }
            }
            scraper::Node::Comment(_) => return Err("comment".into()),
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn nothing_outside_the_subset_survives() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let pieces = prop::sample::select(vec![
        "<p>",
        "</p>",
        "<b>",
        "</b>",
        "<i>",
        "</i>",
        "<br>",
        "<br/>",
        "<img src='media/seg.svg'>",
        "<img src=\"media/seg.svg\" alt=\"a\">",
        "<img src=media/seg.svg>",
        "<img src=\"http://x/y.png\">",
        "<script>",
        "</script>",
        "<style>",
        "<a href='x'>",
        "</a>",
        "<svg>",
        "<math>",
        "</math>",
        "<mi>",
        "</mi>",
        "<table>",
        "<tr>",
        "<td>",
        "</td>",
        "</tr>",
        "</table>",
        "<p onclick=x>",
        "<span style='x'>",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "<",
        ">",
        "&",
        "&amp;",
        "&lt;",
        "&nbsp;",
        "&#x3c;script&#x3e;",
        "\"",
        "'",
        "=",
        " ",
        "\n",
        "x",
        "teks",
        "3 < 4",
        "é",
        "<ul>",
        "<li>",
        "</ul>",
        "<iframe>",
        "<object>",
        "<img src=x onerror=alert(1)>",
        "<math><mi>x</mi></math>",
        "<sub>",
        "</sub>",
        "<pre>",
        "</pre>",
        "<P>",
        "</P>",
    ]);
    let strategy = prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat());
    let config = Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[15; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let media: BTreeSet<String> = ["seg.svg".to_string()].into();
    let accepted = std::cell::Cell::new(0usize);
    let result = runner.run(&strategy, |src| {
        if let Ok(c) = html::canonical(&src, &media) {
            accepted.set(accepted.get() + 1);
            prop_assert!(
                inside_subset(&c.html).is_ok(),
                "{src:?} -> {:?}: {:?}",
                c.html,
                inside_subset(&c.html)
            );
            // One canonical form: checking it again changes nothing, and it is the same
            // every time.
            let again = html::canonical(&c.html, &media);
            prop_assert!(
                again.as_ref().is_ok_and(|a| a.html == c.html),
                "{src:?} -> {:?} -> {again:?}",
                c.html
            );
            prop_assert_eq!(&html::canonical(&src, &media).unwrap().html, &c.html);
            prop_assert!(!c.html.contains("src='"));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let accepted = accepted.get();
    eprintln!("{accepted} of 2000 random fragments accepted");
    assert!(
        accepted > 50,
        "the generator reaches the accepted side too ({accepted})"
    );
}

// ---------------------------------------------------------------------------------------
// The documented examples (exam-packages/examples/) build
// ---------------------------------------------------------------------------------------

#[test]
fn the_documented_examples_build() {
    let examples = common::repo().join("exam-packages/examples");
    let tmp = tempfile::tempdir().unwrap();
    // The xlsx example is the template filled with the ten-item bank; with
    // TUK_WRITE_EXAMPLES=1 this test writes it again.
    if std::env::var_os("TUK_WRITE_EXAMPLES").is_some() {
        write_xlsx(&examples.join("bank.xlsx"), &bank());
    }
    let garis =
        fs::read(common::repo().join("exam-packages/demo/media/garis-bilangan.svg")).unwrap();
    for (file, ext, items, kinds) in [
        ("aiken.txt", "txt", 3, "SSS"),
        ("bank.gift", "gift", 4, "SMTS"),
        ("moodle.xml", "xml", 3, "SMT"),
        ("qti", "zip", 2, "MS"),
        ("bank.xlsx", "xlsx", 10, "SSSSSSSMTS"),
    ] {
        let dir = tmp.path().join(ext);
        let src = examples.join(file);
        package(&dir, ext, items, |p| {
            if ext == "zip" {
                let mut zip = zip::ZipWriter::new(fs::File::create(p).unwrap());
                let opt = zip::write::SimpleFileOptions::default();
                for rel in [
                    "imsmanifest.xml",
                    "items/KKA-Q01.xml",
                    "items/KKA-Q02.xml",
                    "images/garis-bilangan.svg",
                ] {
                    zip.start_file(rel, opt).unwrap();
                    zip.write_all(&fs::read(src.join(rel)).unwrap()).unwrap();
                }
                zip.finish().unwrap();
            } else {
                fs::copy(&src, p).unwrap();
            }
        });
        fs::write(dir.join("media/garis-bilangan.svg"), &garis).unwrap();
        let s = source::read(&dir).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        let got: String = s
            .items
            .iter()
            .map(|i| match i.kind {
                ItemKind::Single => 'S',
                ItemKind::Multiple => 'M',
                ItemKind::Truefalse => 'T',
            })
            .collect();
        assert_eq!(got, kinds, "{file}");
        assert_eq!(s.warnings, Vec::<String>::new(), "{file}");
    }
}

// ---------------------------------------------------------------------------------------
// Review copy and roster files
// ---------------------------------------------------------------------------------------

#[test]
fn preview_writes_a_review_copy_with_keys_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    let qs = bank();
    package(&dir, "gift", 10, |p| write_gift(p, &qs));
    let out = tmp.path().join("pratinjau");
    let said = common::tuk(&[
        "package",
        "preview",
        &dir.display().to_string(),
        "-o",
        &out.display().to_string(),
    ]);
    assert!(said.contains("10 items"), "{said}");
    let page = fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(fs::read(out.join("media/garis.svg")).unwrap(), SVG);
    // Every item, its metadata, the key marked, the image as participants get it.
    assert_eq!(page.matches("<article class=\"item\"").count(), 10);
    assert_eq!(
        page.matches("✓ kunci").count(),
        11,
        "8 single + 2 multiple + 1 true/false keys"
    );
    assert!(page.contains(r#"<img alt="garis" src="media/garis.svg">"#));
    assert!(page.contains("kompetensi <strong>pedagogik</strong>"));
    assert!(page.contains("Semua 10 soal di bank dipakai."));
    assert!(!page.contains("<script"), "no JavaScript");
    // Nothing of it is in the package source.
    assert!(!dir.join("index.html").exists());
}

#[test]
fn rosters_from_indonesian_excel() {
    let tmp = tempfile::tempdir().unwrap();
    let qs = bank();
    // `;` separators, a decimal comma, a byte-order mark: read as it is.
    let dir = tmp.path().join("semicolon");
    package(&dir, "toml", 10, |p| write_toml(p, &qs));
    fs::write(
        dir.join("roster.csv"),
        "\u{feff}participant;name;institution;district;province;test;session;nilai_awal;extra_minutes\n\
         2026000000001;Siti Rahmawati, S.Pd.;SMP 1;Sleman;DIY;t1;S1;52,86;0\n",
    )
    .unwrap();
    let src = source::read(&dir).unwrap();
    assert_eq!(src.roster[0].name, "Siti Rahmawati, S.Pd.");
    assert_eq!(src.roster[0].nilai_awal, Some(52.86));
    // Windows-1252 (Excel's plain CSV): refused with what to do.
    fs::write(
        dir.join("roster.csv"),
        b"participant,name,institution,district,province,test,session,nilai_awal,extra_minutes\n2026000000001,Andr\xe9,SMP 1,Sleman,DIY,t1,S1,50,0\n",
    )
    .unwrap();
    let e = read_err(&dir);
    assert!(
        e.contains("is not UTF-8; in Excel use Save As \"CSV UTF-8"),
        "{e}"
    );
    // roster.xlsx instead: numbers typed as numbers stay themselves.
    fs::remove_file(dir.join("roster.csv")).unwrap();
    let mut b = rust_xlsxwriter::Workbook::new();
    let s = b.add_worksheet();
    for (c, h) in [
        "participant",
        "name",
        "institution",
        "district",
        "province",
        "test",
        "session",
        "nilai_awal",
        "extra_minutes",
    ]
    .iter()
    .enumerate()
    {
        s.write_string(0, c as u16, *h).unwrap();
    }
    s.write_number(1, 0, 2026000000001.0).unwrap();
    for (c, v) in ["Siti", "SMP 1", "Sleman", "DIY", "t1", "S1"]
        .iter()
        .enumerate()
    {
        s.write_string(1, c as u16 + 1, *v).unwrap();
    }
    s.write_number(1, 7, 61.5).unwrap();
    b.save(dir.join("roster.xlsx")).unwrap();
    let src = source::read(&dir).unwrap();
    assert_eq!(src.roster[0].participant, "2026000000001");
    assert_eq!(src.roster[0].nilai_awal, Some(61.5));
    // Both files: refused.
    fs::write(dir.join("roster.csv"), "x").unwrap();
    assert!(read_err(&dir).contains("both roster.csv and roster.xlsx"));
}

// ---------------------------------------------------------------------------------------
// Large banks for timing (not a test unless asked)
// ---------------------------------------------------------------------------------------

/// With `TUK_BIG_BANK_DIR=DIR`, writes `DIR/xlsx/` and `DIR/xml/`: package sources with a
/// 2,000-item bank (4 options, keys spread over a-d, one image per 100 items), to time
/// `tuk package build` on (exam-packages/README.md, section 11). Does nothing otherwise.
#[test]
fn big_banks_for_timing() {
    let Some(root) = std::env::var_os("TUK_BIG_BANK_DIR") else {
        return;
    };
    let root = Path::new(&root);
    let n = 2000;
    let stems: Vec<String> = (1..=n)
        .map(|i| format!("Soal nomor {i}: manakah pernyataan yang paling tepat tentang pembelajaran berdiferensiasi pada kelas {}?", i % 9 + 1))
        .collect();
    let opts = |i: usize| -> Vec<String> {
        (0..4)
            .map(|k| {
                format!(
                    "Pilihan {} untuk soal {i}",
                    ["satu", "dua", "tiga", "empat"][k]
                )
            })
            .collect()
    };
    // xlsx: the template filled row by row.
    let mut rows = String::new();
    for i in 1..=n {
        let r = i + 2;
        let mut cells = vec![
            (1usize, "single".to_string()),
            (2, "pedagogik".into()),
            (6, stems[i - 1].clone()),
        ];
        for (k, o) in opts(i).into_iter().enumerate() {
            cells.push((7 + k, o));
        }
        cells.push((12, letter(i % 4).to_string()));
        if i % 100 == 0 {
            cells.push((13, "garis.svg".into()));
            cells.push((14, "garis".into()));
        }
        rows.push_str(&format!("<row r=\"{r}\">"));
        for (c, v) in cells {
            rows.push_str(&format!(
                "<c r=\"{}{r}\" t=\"inlineStr\"><is><t>{}</t></is></c>",
                letter(c),
                esc(&v)
            ));
        }
        rows.push_str("</row>");
    }
    let dir = root.join("xlsx");
    package(&dir, "xlsx", n, |p| fill_template(p, &rows, n + 2));
    // Moodle XML with embedded images.
    let b64 = base64::engine::general_purpose::STANDARD.encode(SVG);
    let mut t = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<quiz>\n<question type=\"category\"><category><text>$course$/top/pedagogik</text></category></question>\n",
    );
    for i in 1..=n {
        let (img, file) = if i % 100 == 0 {
            (
                "<br><img src=\"@@PLUGINFILE@@/garis.svg\" alt=\"garis\">".to_string(),
                format!("<file name=\"garis.svg\" path=\"/\" encoding=\"base64\">{b64}</file>"),
            )
        } else {
            (String::new(), String::new())
        };
        t.push_str(&format!("<question type=\"multichoice\"><name><text>q{i}</text></name><questiontext format=\"html\"><text><![CDATA[<p>{}</p>{img}]]></text>{file}</questiontext><defaultgrade>1</defaultgrade><single>true</single>\n", esc(&stems[i - 1])));
        for (k, o) in opts(i).into_iter().enumerate() {
            let f = if k == i % 4 { 100 } else { 0 };
            t.push_str(&format!(
                "<answer fraction=\"{f}\" format=\"html\"><text><![CDATA[{}]]></text></answer>\n",
                esc(&o)
            ));
        }
        t.push_str("</question>\n");
    }
    t.push_str("</quiz>\n");
    let dir = root.join("xml");
    package(&dir, "xml", n, |p| fs::write(p, &t).unwrap());
    for d in ["xlsx", "xml"] {
        let s = source::read(&root.join(d)).unwrap_or_else(|e| panic!("{d}: {e:#}"));
        assert_eq!(s.items.len(), n);
    }
}

// ---------------------------------------------------------------------------------------
// --lenient
// ---------------------------------------------------------------------------------------

#[test]
fn lenient_drops_what_the_subset_cannot_hold_and_lists_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    package(&dir, "xml", 1, |p| {
        fs::write(
            p,
            r#"<quiz><question type="multichoice"><name><text>M1</text></name>
<questiontext format="html"><text><![CDATA[<p dir="ltr" style="text-align: left;">Ibu kota Indonesia adalah ....<br></p>]]></text></questiontext>
<single>true</single>
<answer fraction="100" format="html"><text><![CDATA[<span class="x">Jakarta</span>]]></text></answer>
<answer fraction="0" format="html"><text>Bandung</text></answer>
</question></quiz>"#,
        )
        .unwrap()
    });
    // Strict: refused, naming the item and the attribute.
    let e = read_err(&dir);
    assert!(
        e.contains("item M1, stem: attribute \"dir\" is not allowed on <p>"),
        "{e}"
    );
    // --lenient: built, every drop listed for the author.
    let keys = tmp.path().join("keys");
    let k = keys.display().to_string();
    common::tuk(&["keygen", "--out", &k, "--name", "upt"]);
    common::tuk(&["keygen", "--out", &k, "--name", "tuk"]);
    let out = tmp.path().join("p.tukpkg");
    let run = Command::new(bin())
        .args(["package", "build", "--lenient"])
        .arg(&dir)
        .arg("--sign")
        .arg(keys.join("upt.key"))
        .arg("--to")
        .arg(keys.join("tuk.pub"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    for want in [
        "dropped: item M1, stem: dropped attribute \"dir\" on <p>",
        "dropped: item M1, stem: dropped attribute \"style\" on <p>",
        "dropped: item M1, option a: dropped attribute \"class\" on <span>",
        "--lenient dropped 3 piece(s)",
    ] {
        assert!(stderr.contains(want), "{want}\n{stderr}");
    }
    let src = source::read_lenient(&dir).unwrap();
    assert_eq!(
        src.items[0].stem,
        "<p>Ibu kota Indonesia adalah ....<br></p>"
    );
    assert_eq!(src.items[0].options[0].html, "<span>Jakarta</span>");
}

#[test]
fn qti_3_items_are_read_like_qti_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("q3");
    package(&dir, "zip", 1, |p| {
        let mut zip = zip::ZipWriter::new(fs::File::create(p).unwrap());
        let opt = zip::write::SimpleFileOptions::default();
        zip.start_file("imsmanifest.xml", opt).unwrap();
        zip.write_all(br#"<manifest xmlns="http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1"><resources><resource identifier="R1" type="imsqti_item_xmlv3p0" href="q1.xml"/></resources></manifest>"#).unwrap();
        zip.start_file("q1.xml", opt).unwrap();
        zip.write_all(br#"<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0" identifier="Q3-01" title="t">
  <qti-response-declaration identifier="RESPONSE" cardinality="multiple" base-type="identifier">
    <qti-correct-response><qti-value>A</qti-value><qti-value>C</qti-value></qti-correct-response>
  </qti-response-declaration>
  <qti-item-body>
    <p>Pilih semua bilangan prima.</p>
    <qti-choice-interaction response-identifier="RESPONSE" max-choices="0">
      <qti-simple-choice identifier="A">2</qti-simple-choice>
      <qti-simple-choice identifier="B">4</qti-simple-choice>
      <qti-simple-choice identifier="C">5</qti-simple-choice>
    </qti-choice-interaction>
  </qti-item-body>
</qti-assessment-item>"#).unwrap();
        zip.finish().unwrap();
    });
    let src = source::read(&dir).unwrap();
    let it = &src.items[0];
    assert_eq!(
        (it.id.as_str(), it.kind, it.stem.as_str(), it.key.clone()),
        (
            "Q3-01",
            ItemKind::Multiple,
            "<p>Pilih semua bilangan prima.</p>",
            vec!["a".to_string(), "c".to_string()]
        )
    );
    assert_eq!(it.competency, "pedagogik", "from the test's competency");
}

#[test]
fn preview_of_a_built_package_with_the_tuk_key() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = common::repo().join("exam-packages");
    let out = tmp.path().join("p");
    let said = common::tuk(&[
        "package",
        "preview",
        &demo.join("demo.tukpkg").display().to_string(),
        "--key",
        &demo.join("demo-keys/tuk.key").display().to_string(),
        "-o",
        &out.display().to_string(),
    ]);
    assert!(said.contains("60 items"), "{said}");
    let page = fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(page.matches("<article class=\"item\"").count(), 60);
    assert!(out.join("media/garis-bilangan.svg").exists());
    // Without a key: one sentence saying what to give.
    let run = Command::new(bin())
        .args(["package", "preview"])
        .arg(demo.join("demo.tukpkg"))
        .arg("-o")
        .arg(tmp.path().join("q"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("give --key TUK.key"));
}

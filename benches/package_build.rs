//! How long the UPT waits for `tuk package build` and the TUK for `verify`/import, on a
//! large package and on the demo.
//!
//! Run with `cargo bench --bench package_build`. A plain `main` (no harness): it writes a
//! package source with 2,000 items (single, multiple with and without partial credit,
//! true/false; a few images) and 2,000 participants in 4 sessions into a temporary folder,
//! then times, 5 runs each, best and median:
//!
//! - `read + build`: `source::read` + `package::build` (sign, encrypt to one TUK);
//! - `verify`: `package::verify` (signature, payload hash, member list);
//! - `verify + open`: `verify` + `VerifiedPackage::open` (decrypt, untar, check every
//!   member's hash, parse and validate everything).

use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use tuk::keys::{SecretKey, TrustSet};
use tuk::package::{self, source};

const RUNS: usize = 5;
const ITEMS: usize = 2_000;
const PARTICIPANTS: usize = 2_000;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("big");
    write_big_source(&big);
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("exam-packages/demo");

    let upt = SecretKey::generate("upt-bench").unwrap();
    let tuk = SecretKey::generate("tuk-bench").unwrap();
    let trust = TrustSet::new(vec![upt.public()]);

    println!("tuk package bench: {RUNS} runs each, best / median");
    println!();
    println!(
        "{:<10} {:>6} {:>7} {:>11} {:>11} {:>21} {:>21} {:>21}",
        "package",
        "items",
        "people",
        "source B",
        "file B",
        "read + build ms",
        "verify ms",
        "verify + open ms"
    );
    for (name, src) in [("generated", big.as_path()), ("demo", demo.as_path())] {
        let source_bytes = folder_size(src);
        let mut bytes = Vec::new();
        let build = time(|| {
            let s = source::read(src).expect("source reads");
            bytes = package::build(&s, &upt, &[tuk.public()], None).expect("package builds");
        });
        let (items, people) = {
            let s = source::read(src).unwrap();
            (s.items.len(), s.roster.len())
        };
        let verify = time(|| {
            black_box(package::verify(&bytes, &trust).expect("verifies"));
        });
        let open = time(|| {
            let pkg = package::verify(&bytes, &trust).expect("verifies");
            black_box(pkg.open(&tuk).expect("opens"));
        });
        println!(
            "{:<10} {:>6} {:>7} {:>11} {:>11} {:>21} {:>21} {:>21}",
            name,
            items,
            people,
            source_bytes,
            bytes.len(),
            fmt(build),
            fmt(verify),
            fmt(open)
        );
        let pkg = package::verify(&bytes, &trust).unwrap();
        let h = pkg.header();
        let sizes: Vec<String> = h
            .members
            .iter()
            .filter(|m| !m.path.starts_with("media/"))
            .map(|m| format!("{} {} B", m.path, m.size))
            .collect();
        let media: u64 = h
            .members
            .iter()
            .filter(|m| m.path.starts_with("media/"))
            .map(|m| m.size)
            .sum();
        println!(
            "           payload {} B: {}, media {} B",
            h.payload.size,
            sizes.join(", "),
            media
        );
    }
}

/// Runs `f` RUNS times; returns (best, median).
fn time(mut f: impl FnMut()) -> (Duration, Duration) {
    let mut t: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed()
        })
        .collect();
    t.sort();
    (t[0], t[RUNS / 2])
}

fn fmt((best, median): (Duration, Duration)) -> String {
    format!(
        "{:.1} / {:.1}",
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3
    )
}

fn folder_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                folder_size(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

/// Two tests (1,200 and 800 items, drawn per participant from 4 pools each), 4 sessions,
/// 2,000 participants, 5 images.
fn write_big_source(dir: &Path) {
    fs::create_dir_all(dir.join("items")).unwrap();
    fs::create_dir_all(dir.join("media")).unwrap();

    let media: Vec<String> = (0..5).map(|i| format!("gambar-{i}.svg")).collect();
    for (i, m) in media.iter().enumerate() {
        let mut svg = String::from(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300" viewBox="0 0 400 300">"#,
        );
        for j in 0..60 {
            let _ = write!(
                svg,
                r##"<rect x="{}" y="{}" width="20" height="{}" fill="#4a7"/>"##,
                j * 6,
                300 - (i * 7 + j * 13) % 280,
                (i * 7 + j * 13) % 280
            );
        }
        svg.push_str("</svg>\n");
        fs::write(dir.join("media").join(m), svg).unwrap();
    }

    let tests = [("kka", 1_200usize, 15u32), ("kkb", ITEMS - 1_200, 10u32)];
    let pools = ["pedagogik", "profesional", "literasi", "numerasi"];
    let mut toml = String::from(
        "format = 1\nid = \"bench-2026\"\nversion = 1\nupt = \"UPT Bench\"\n\
         title = \"Bench package\"\ntimezone = \"+07:00\"\n\n",
    );
    for (id, _, per_pool) in tests {
        let _ = write!(
            toml,
            "[[test]]\nid = \"{id}\"\ntitle = \"Tes {id}\"\nbank = \"items/{id}.toml\"\n\
             duration_minutes = 120\nitems = {}\nshuffle_items = true\nshuffle_options = true\n\
             instructions = \"<p>Kerjakan dengan <b>jujur</b>.</p>\"\n\n",
            per_pool * pools.len() as u32
        );
        for p in pools {
            let _ = write!(
                toml,
                "[[test.draw]]\npool = \"{p}\"\ncount = {per_pool}\n\n"
            );
        }
    }
    let sessions = [("S1", "kka"), ("S2", "kka"), ("S3", "kkb"), ("S4", "kkb")];
    for (i, (s, t)) in sessions.iter().enumerate() {
        let _ = write!(
            toml,
            "[[session]]\nid = \"{s}\"\ntest = \"{t}\"\ndate = \"2026-11-2{}\"\n\
             start = \"08:00\"\nend = \"10:30\"\nroom = \"Lab {}\"\n\n",
            4 + i / 2,
            i + 1
        );
    }
    fs::write(dir.join("package.toml"), toml).unwrap();

    let mut n = 0;
    for (test, count, _) in tests {
        let mut bank = String::new();
        for i in 0..count {
            n += 1;
            let pool = pools[i % pools.len()];
            let img = if n % 400 == 0 {
                format!(
                    r#"<p><img src="media/{}" alt="Diagram {n}" width="400" height="300"></p>"#,
                    media[(n / 400) % media.len()]
                )
            } else {
                String::new()
            };
            let stem = format!(
                "<p>Soal nomor {n}. Seorang guru mengamati bahwa sebagian peserta didik kelas VIII \
                 mengalami kesulitan memahami konsep <b>perbandingan senilai</b> dan \
                 <i>berbalik nilai</i>. Data hasil ulangan menunjukkan rata-rata \
                 <math><mfrac><mn>{}</mn><mn>4</mn></mfrac></math>.</p>{img}\
                 <p>Langkah yang paling tepat dilakukan guru adalah ....</p>",
                n % 97
            );
            let _ = write!(
                bank,
                "[[item]]\nid = \"{}-{n:05}\"\ncompetency = \"{pool}\"\nindicator = \"Indikator {}\"\n\
                 weight = {}\nstem = '''{stem}'''\n",
                test.to_uppercase(),
                i % 25,
                if i % 7 == 0 { "2" } else { "1" }
            );
            match n % 10 {
                0..=5 => {
                    let k: u8 = if n % 2 == 0 { 4 } else { 5 };
                    bank.push_str("type = \"single\"\noptions = [\n");
                    for o in 0..k {
                        let _ = writeln!(
                            bank,
                            "  {{ id = \"{}\", html = \"Pilihan {} untuk soal {n}: melakukan remedial dengan pendekatan yang berbeda\" }},",
                            (b'a' + o) as char,
                            (b'A' + o) as char
                        );
                    }
                    let _ = writeln!(
                        bank,
                        "]\nkey = [\"{}\"]\n",
                        (b'a' + (n % k as usize) as u8) as char
                    );
                }
                6..=7 => {
                    bank.push_str("type = \"multiple\"\noptions = [\n");
                    for o in 0..5u8 {
                        let _ = writeln!(
                            bank,
                            "  {{ id = \"{}\", html = \"Pernyataan {} tentang soal {n}\" }},",
                            (b'a' + o) as char,
                            o + 1
                        );
                    }
                    let _ = writeln!(
                        bank,
                        "]\nkey = [\"a\", \"c\", \"d\"]\npartial_credit = {}\n",
                        n % 4 == 0
                    );
                }
                _ => {
                    let _ = writeln!(
                        bank,
                        "type = \"truefalse\"\nkey = [\"{}\"]\n",
                        if n % 3 == 0 { "salah" } else { "benar" }
                    );
                }
            }
        }
        fs::write(dir.join(format!("items/{test}.toml")), bank).unwrap();
    }

    let mut csv = String::from(
        "participant,name,institution,district,province,test,session,nilai_awal,extra_minutes\n",
    );
    for i in 0..PARTICIPANTS {
        let (session, test) = sessions[i % sessions.len()];
        let _ = writeln!(
            csv,
            "2026{:09},\"Peserta Nomor {i}, S.Pd.\",SMP Negeri {} Kota Contoh,Kota Contoh,Jawa Barat,{test},{session},{}.{:02},{}",
            i + 1,
            i % 40 + 1,
            40 + i % 50,
            i % 100,
            if i % 97 == 0 { 30 } else { 0 }
        );
    }
    fs::write(dir.join("roster.csv"), csv).unwrap();
}

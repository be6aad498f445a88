//! Paperwork a TUK office and a UPT can sign and open in Excel (issue 14).
//!
//! One fixture: the demo package rebuilt with a roster whose names and institutions look
//! like numbers or spreadsheet words (`Nan`, `Inf`, `TRUE`, `1E3`) and a participant number
//! with leading zeros; five participants take the test through the exam rules (as the
//! server's writer does), one writes `=HYPERLINK("x")` in the open questionnaire question,
//! one is moved to another PC, the session is closed by force. Then:
//!
//! - the real `tuk serve` on 127.0.0.1 gives the login cards, attendance list, score recap
//!   and minutes as XLSX (opened with calamine: cell types checked), CSV and CSV for Excel;
//! - the session is sealed and imported at a UPT; `tuk upt report` writes every report as
//!   XLSX (opened with calamine) and CSV (`--excel` too).
//!
//! A second test runs `tuk demo`, makes a session with an added time, a *Pindah PC*, a
//! pause, a server crash (kill -9, the downtime credited on restart), a force-finish and a
//! forced close, and prints the minutes to PDF in Chromium (WebDriver print); the PDF's
//! text (pdftotext, poppler-utils) is checked, and every printable is screenshotted into
//! `target/browser-artifacts/`.

mod common;

#[path = "common/chrome.rs"]
mod chrome;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};

use common::{Prepared, Server, repo, tuk};
use tuk::app::App;
use tuk::exam::{CookieId, Exam, ParticipantNo, SessionKey};
use tuk::keys::{PublicKey, SecretKey};

const PKG: &str = "demo-kk-a-2026";
const S1: &str = "demo-kk-a-2026/S1";

fn demo(p: &str) -> PathBuf {
    repo().join("exam-packages").join(p)
}
fn s(p: &Path) -> String {
    p.display().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

/// The tricky roster cells: (row of S1, column, new value).
const NAMES: [&str; 3] = ["Nan", "Inf", "TRUE"];
const INSTITUTION: &str = "1E3";
const ZERO_NUMBER: &str = "0012345";
const FORMULA: &str = "=HYPERLINK(\"x\")";

/// Rewrites the first S1 rows of the demo roster: names Nan/Inf/TRUE, institution 1E3, a
/// participant number with leading zeros (and shorter than the others).
fn edit_roster(src: &Path) {
    let path = src.join("roster.csv");
    let mut rd = csv::Reader::from_path(&path).unwrap();
    let head = rd.headers().unwrap().clone();
    let mut rows: Vec<Vec<String>> = rd
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let col = |n: &str| head.iter().position(|h| h == n).unwrap();
    let s1: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i][col("session")] == "S1")
        .collect();
    for (k, name) in NAMES.iter().enumerate() {
        rows[s1[k]][col("name")] = name.to_string();
    }
    rows[s1[3]][col("institution")] = INSTITUTION.into();
    rows[s1[4]][col("participant")] = ZERO_NUMBER.into();
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(&head).unwrap();
    for r in rows {
        w.write_record(&r).unwrap();
    }
    w.flush().unwrap();
}

/// A participant's login, start, a few answers, finish and questionnaire, as the server's
/// writer does it.
fn take(app: &App, number: &str, i: usize, finish: bool, open_answer: &str) {
    let number = ParticipantNo::new(number);
    let open_answer = open_answer.to_string();
    app.writer
        .run_blocking(move |ex: &mut Exam| {
            let now = tuk::clock::now_ms();
            let cookie = CookieId::new(format!("cookie-{number}"));
            let ip = format!("10.0.0.{}", 10 + i);
            let mut puts = Vec::new();
            let (p, r) = ex.login(&number, &cookie, None, &ip, now);
            puts.extend(p);
            r.expect("login");
            let token = ex.sessions[S1].token.as_ref().unwrap().current.clone();
            let (p, r) = ex.start(&cookie, &token, &ip, now);
            puts.extend(p);
            r.expect("start");
            let a = ex.attempt_of(&cookie).unwrap().into_owned();
            let bank = ex.banks[PKG].clone();
            for (j, f) in a.form.iter().enumerate().take(10) {
                let item = bank.item(&f.item).unwrap();
                let choice = vec![item.options[(i + j) % item.options.len()].id.clone()];
                let (p, r) = ex.save(&cookie, &f.item, choice, false, 1, now);
                puts.extend(p);
                r.expect("save");
            }
            if finish {
                let (p, r) = ex.finish_by_participant(&cookie, now + 2);
                puts.extend(p);
                r.expect("finish");
                let mut q = BTreeMap::new();
                for e in ["e1", "e2", "e3", "e4", "e5", "e6"] {
                    q.insert(e.to_string(), "Baik".to_string());
                }
                q.insert("o1".into(), open_answer);
                let (p, r) = ex.questionnaire(&cookie, q, now + 3);
                puts.extend(p);
                r.expect("questionnaire");
            }
            (puts, ())
        })
        .expect("writer")
}

fn staff_act(app: &App, f: impl FnOnce(&mut Exam, i64) -> Vec<tuk::store::Put> + Send + 'static) {
    app.writer
        .run_blocking(move |ex: &mut Exam| (f(ex, tuk::clock::now_ms()), ()))
        .expect("writer");
}

/// Opens an XLSX and returns its first sheet's cells.
fn sheet(bytes: &[u8]) -> calamine::Range<Data> {
    assert!(bytes.starts_with(b"PK"), "an xlsx is a zip");
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).expect("xlsx opens");
    wb.worksheet_range_at(0)
        .expect("a sheet")
        .expect("sheet reads")
}

/// The UPT's name, with a `&` (escaped as `&&` in an XLSX page header).
const UPT_NAME: &str = "UPT Balai Guru & Tenaga Kependidikan Contoh";

/// A 64×64 PNG logo (a green disc) for the letterheads.
fn logo() -> PathBuf {
    repo().join("tests/fixtures/logo-tuk.png")
}

/// The table of a UPT report sheet: what is below the letterhead's four rows (name,
/// address, title, blank), starting with the header row.
fn below_letterhead(r: &calamine::Range<Data>) -> calamine::Range<Data> {
    let start = r.start().expect("a sheet with cells");
    let end = r.end().expect("a sheet with cells");
    assert_eq!(start, (0, 0), "the letterhead starts at A1");
    r.range((4, 0), end)
}

/// Header label → column index.
fn cols(r: &calamine::Range<Data>) -> BTreeMap<String, usize> {
    r.rows()
        .next()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.to_string(), i))
        .collect()
}

/// Every non-empty cell of a column below the header.
fn column<'a>(r: &'a calamine::Range<Data>, label: &str) -> Vec<&'a Data> {
    let c = *cols(r)
        .get(label)
        .unwrap_or_else(|| panic!("column {label:?} in {:?}", cols(r).keys()));
    r.rows()
        .skip(1)
        .filter_map(|row| row.get(c))
        .filter(|d| !matches!(d, Data::Empty))
        .collect()
}

fn all_text(r: &calamine::Range<Data>, label: &str) {
    let v = column(r, label);
    assert!(!v.is_empty(), "{label} has cells");
    for d in v {
        assert!(matches!(d, Data::String(_)), "{label}: {d:?} is text");
    }
}

fn texts(r: &calamine::Range<Data>, label: &str) -> Vec<String> {
    column(r, label).iter().map(|d| d.to_string()).collect()
}

fn assert_bom_csv(bytes: &[u8], what: &str) {
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "{what} starts with a BOM"
    );
}

struct Fixture {
    _root: tempfile::TempDir,
    data: PathBuf,
    pkg: PathBuf,
    bundle: PathBuf,
}

fn fixture() -> Fixture {
    let root = tempfile::Builder::new()
        .prefix("tuk-paper-")
        .tempdir()
        .unwrap();
    let r = root.path();
    let src = r.join("src");
    copy_dir(&demo("demo"), &src);
    edit_roster(&src);
    let pkg = r.join("paper.tukpkg");
    tuk(&[
        "package",
        "build",
        &s(&src),
        "--sign",
        &s(&demo("demo-keys/upt.key")),
        "--to",
        &s(&demo("demo-keys/tuk.pub")),
        "-o",
        &s(&pkg),
    ]);
    let data = r.join("tuk");
    App::init(
        &data,
        Some(SecretKey::read(&demo("demo-keys/tuk.key")).unwrap()),
        "admin-password",
    )
    .unwrap();
    let app = App::open(&data).unwrap();
    app.trust_add(&PublicKey::read(&demo("demo-keys/upt.pub")).unwrap())
        .unwrap();
    app.import(&std::fs::read(&pkg).unwrap(), "test").unwrap();
    app.open_session(S1, None, tuk::app::TOKEN_ROTATE_S, "test")
        .unwrap()
        .unwrap();
    let numbers: Vec<String> = app.read().catalog[PKG]
        .roster
        .iter()
        .filter(|p| p.session == "S1")
        .map(|p| p.participant.to_string())
        .collect();
    assert!(numbers.contains(&ZERO_NUMBER.to_string()));
    for (i, n) in numbers.iter().take(6).enumerate() {
        let answer = if i == 0 { FORMULA } else { "Materi jelas" };
        take(&app, n, i, i < 4, answer);
    }
    // A move to another PC, then a forced close collects the two still working.
    let moved = ParticipantNo::new(numbers[4].as_str());
    staff_act(&app, move |ex, now| {
        ex.reset_login(&SessionKey::new(S1), &moved, "PC mati", "staff:admin", now)
            .unwrap()
    });
    staff_act(&app, |ex, now| {
        ex.close_session(&SessionKey::new(S1), true, "staff:admin", now)
            .unwrap()
    });
    let bundle = r.join("s1.tukres");
    let sealed = tuk::seal::tuk::seal(&app, &[S1.to_string()], false, "test")
        .unwrap()
        .bytes;
    std::fs::write(&bundle, sealed).unwrap();
    app.shutdown();
    Fixture {
        _root: root,
        data,
        pkg,
        bundle,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tuk_and_upt_spreadsheets_keep_text_as_text_and_numbers_as_numbers() {
    let f = tokio::task::spawn_blocking(fixture).await.unwrap();

    // ---- the UPT: import and every report as XLSX and CSV ----
    let upt_dir = f._root.path().join("upt");
    let u = s(&upt_dir);
    tuk(&[
        "upt",
        "init",
        "--data",
        &u,
        "--key",
        &s(&demo("demo-keys/upt.key")),
    ]);
    tuk(&["upt", "trust", &s(&demo("demo-keys/tuk.pub")), "--data", &u]);
    tuk(&["upt", "package", "add", &s(&f.pkg), "--data", &u]);
    tuk(&["upt", "import", &s(&f.bundle), "--data", &u]);
    // The UPT's letterhead, set once with `tuk upt letterhead`: its report pages, the rows
    // above its XLSX tables and their page headers.
    let shown = tuk(&[
        "upt",
        "letterhead",
        "--data",
        &u,
        "--name",
        UPT_NAME,
        "--address",
        "Jl. Kaliurang Km 6, Yogyakarta",
        "--logo",
        &s(&logo()),
    ]);
    assert!(shown.contains(UPT_NAME), "{shown}");
    assert!(
        upt_dir.join("letterhead.toml").is_file(),
        "kept in the UPT's data folder"
    );
    let out = f._root.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Every report kind the UPT offers, but NA (it needs a PD/TS file).
    for kind in tuk::upt::report::KINDS.into_iter().filter(|k| *k != "na") {
        let x = out.join(format!("{kind}.xlsx"));
        tuk(&["upt", "report", kind, "--data", &u, "-o", &s(&x)]);
        let whole = sheet(&std::fs::read(&x).unwrap());
        // The letterhead rows above the table: name, address, the report's title.
        let a = |row: usize| {
            whole
                .get((row, 0))
                .map(|d| d.to_string())
                .unwrap_or_default()
        };
        assert_eq!(a(0), UPT_NAME, "{kind}: the UPT's name in A1");
        assert_eq!(a(1), "Jl. Kaliurang Km 6, Yogyakarta", "{kind}");
        assert!(!a(2).is_empty() && a(3).is_empty(), "{kind}: title, blank");
        let r = below_letterhead(&whole);
        assert!(r.height() >= 1, "{kind}");
        let c = out.join(format!("{kind}.csv"));
        tuk(&["upt", "report", kind, "--data", &u, "-o", &s(&c)]);
        let cb = std::fs::read(&c).unwrap();
        assert_bom_csv(&cb, kind);
        // The CSV keeps its machine header as its first row: no letterhead in CSVs.
        let first = String::from_utf8_lossy(&cb[3..])
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        assert!(
            !first.contains("UPT") && first.is_ascii(),
            "{kind}: {first}"
        );
        let e = out.join(format!("{kind}-excel.csv"));
        tuk(&["upt", "report", kind, "--data", &u, "-o", &s(&e), "--excel"]);
        let eb = std::fs::read(&e).unwrap();
        assert_bom_csv(&eb, kind);
        assert!(
            String::from_utf8_lossy(&eb)
                .lines()
                .next()
                .unwrap()
                .contains(';'),
            "{kind}: ; for Excel"
        );
    }
    let recap_bytes = std::fs::read(out.join("recap.xlsx")).unwrap();
    let xml =
        String::from_utf8_lossy(&zip_entry(&recap_bytes, "xl/worksheets/sheet1.xml")).into_owned();
    assert!(
        xml.contains("UPT Balai Guru &amp;&amp; Tenaga Kependidikan Contoh"),
        "the UPT's letterhead in the page header (& escaped for Excel): {xml}"
    );
    let recap = below_letterhead(&sheet(&recap_bytes));
    for label in ["No. peserta", "Nama", "Instansi", "Tes", "Sesi"] {
        all_text(&recap, label);
    }
    let names = texts(&recap, "Nama");
    for n in NAMES {
        assert!(names.contains(&n.to_string()), "{n} stays text: {names:?}");
    }
    assert!(texts(&recap, "Instansi").contains(&INSTITUTION.to_string()));
    let numbers = texts(&recap, "No. peserta");
    assert!(numbers.contains(&ZERO_NUMBER.to_string()), "{numbers:?}");
    let scores = column(&recap, "Nilai");
    assert!(scores.len() >= 4, "{scores:?}");
    assert!(
        scores.iter().all(|d| matches!(d, Data::Float(_))),
        "{scores:?}"
    );
    let times = column(&recap, "Mulai");
    assert!(!times.is_empty());
    assert!(
        times.iter().all(|d| matches!(d, Data::DateTime(_))),
        "{times:?}"
    );
    assert!(
        column(&recap, "Dijawab")
            .iter()
            .all(|d| matches!(d, Data::Float(_) | Data::Int(_)))
    );
    // The open answer: text in the XLSX, neutralised in both CSVs.
    let q = below_letterhead(&sheet(
        &std::fs::read(out.join("questionnaire.xlsx")).unwrap(),
    ));
    assert!(texts(&q, "Jawaban terbuka").contains(&FORMULA.to_string()));
    for file in ["questionnaire.csv", "questionnaire-excel.csv"] {
        let t = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(t.contains("'=HYPERLINK(\"\"x\"\")"), "{file}: {t}");
        assert!(!t.contains(",\"=HYPERLINK") && !t.contains(";\"=HYPERLINK"));
    }
    // Decimal commas in the Excel CSV: the score 81.25 becomes 81,25 somewhere.
    let ex = std::fs::read_to_string(out.join("recap-excel.csv")).unwrap();
    let plain = std::fs::read_to_string(out.join("recap.csv")).unwrap();
    let first_score = plain
        .lines()
        .skip(1)
        .find_map(|l| {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(l.as_bytes())
                .records()
                .next()
                .and_then(|r| r.ok())
                .and_then(|r| r.get(5).filter(|x| !x.is_empty()).map(str::to_string))
        })
        .expect("a score");
    assert!(ex.contains(&first_score.replace('.', ",")), "{first_score}");

    // ---- the UPT's report pages carry its letterhead (logo, name, address) ----
    std::fs::write(f._root.path().join("pw"), "laporan-upt-2026\n").unwrap();
    tuk(&[
        "upt",
        "user",
        "add",
        "sri",
        "--data",
        &u,
        "--password-file",
        &s(&f._root.path().join("pw")),
    ]);
    let rx = common::upt_receiver(&upt_dir, f._root.path(), 64);
    let upt_base = format!("https://127.0.0.1:{}", rx.port);
    chrome::run("paperwork-upt", false, "1024,768", |c| async move {
        c.goto(&format!("{upt_base}/laporan")).await?;
        chrome::css(&c, "#user").await?.send_keys("sri").await?;
        chrome::css(&c, "#password")
            .await?
            .send_keys("laporan-upt-2026")
            .await?;
        chrome::css(&c, "form[action=\"/laporan/masuk\"] button")
            .await?
            .click()
            .await?;
        chrome::poll(
            "the report index",
            std::time::Duration::from_secs(10),
            || {
                let c = c.clone();
                async move {
                    let t = c.source().await?;
                    Ok(t.contains("Laporan hasil tes akhir").then_some(()))
                }
            },
        )
        .await?;
        for (page, name) in [
            ("", "paperwork-upt-index"),
            ("/recap", "paperwork-upt-recap"),
        ] {
            c.goto(&format!("{upt_base}/laporan{page}")).await?;
            let html = c.source().await?;
            anyhow::ensure!(
                html.contains("UPT Balai Guru &amp; Tenaga Kependidikan Contoh")
                    && html.contains("Jl. Kaliurang Km 6, Yogyakarta")
                    && html.contains("data:image/png;base64,"),
                "{page}: the UPT's letterhead with its logo"
            );
            chrome::screenshot(&c, name).await?;
        }
        Ok(())
    })
    .await;
    drop(rx);

    // ---- the TUK's own file: questionnaire.csv inside the sealed bundle ----
    let q = bundle_file(&std::fs::read(&f.bundle).unwrap(), "questionnaire.csv");
    assert!(
        q.starts_with(b"\xEF\xBB\xBF"),
        "the bundle's CSV starts with a BOM"
    );
    let q = String::from_utf8(q).unwrap();
    assert!(
        q.contains("'=HYPERLINK(\"\"x\"\")"),
        "neutralised in the bundle: {q}"
    );

    // ---- the configuration file takes a [letterhead] table ----
    let conf = f._root.path().join("tuk.toml");
    std::fs::write(
        &conf,
        format!(
            "data = \"{}\"\n[letterhead]\nname = \"TUK Contoh dari Berkas\"\naddress = \"Jl. Berkas No. 1, Bantul\"\nhead = \"Kepala Berkas\"\nhead_nip = \"1968\"\nlogo = \"{}\"\n",
            s(&f.data),
            s(&logo())
        ),
    )
    .unwrap();
    let shown = tuk(&["config", "show", "--config", &s(&conf)]);
    assert!(
        shown.contains("[letterhead]") && shown.contains("name = \"TUK Contoh dari Berkas\""),
        "{shown}"
    );

    // ---- the TUK: the server's printables as files ----
    let prepared = Prepared {
        root: tempfile::tempdir().unwrap(),
        data: f.data.clone(),
        src: PathBuf::new(),
        token: String::new(),
        logins: Vec::new(),
    };
    // The server reads the file through the configuration loader (TUK_CONFIG is
    // `--config`'s environment twin).
    let srv = Server::serve_with_env(prepared, &[("TUK_CONFIG", &s(&conf))]);
    let c = srv.client();
    let r = c
        .post_form(
            "/admin/masuk",
            &[("user", "admin"), ("password", "admin-password")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let base = format!("/admin/sesi/{S1}");
    let kop = c.get("/admin/kop").await.text();
    assert!(
        kop.contains("berkas konfigurasi") && kop.contains(&s(&conf)),
        "the admin page says the file's letterhead is in effect: {kop}"
    );
    assert!(kop.contains("Isian halaman ini yang dipakai bila keduanya ada"));
    let hadir = c.get(&format!("{base}/hadir")).await.text();
    assert!(
        hadir.contains("TUK Contoh dari Berkas") && hadir.contains("data:image/png;base64,"),
        "the file's letterhead and logo on the attendance list"
    );
    // The admin page's letterhead wins over the file's; the page says so and offers to go
    // back to the file.
    let csrf = {
        let at = kop.find("name=\"csrf\" value=\"").expect("csrf field");
        let rest = &kop[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    };
    let r = c
        .post_form(
            "/admin/kop",
            &[
                ("name", "TUK Contoh dari Halaman"),
                ("address", "Jl. Halaman 2, Sleman"),
                ("head", ""),
                ("head_nip", ""),
                ("logo", ""),
                ("csrf", &csrf),
            ],
        )
        .await
        .text();
    assert!(
        r.contains("isian halaman ini")
            && r.contains("tidak dipakai karena isian halaman ini menang"),
        "{r}"
    );
    let nilai = c.get(&format!("{base}/nilai")).await.text();
    assert!(nilai.contains("TUK Contoh dari Halaman") && !nilai.contains("dari Berkas"));
    let r = c
        .post_form("/admin/kop", &[("do", "reset"), ("csrf", &csrf)])
        .await
        .text();
    assert!(
        r.contains("kop dari berkas konfigurasi yang dipakai"),
        "{r}"
    );
    let kartu = c.get(&format!("{base}/kartu")).await.text();
    assert_eq!(
        kartu.matches("TUK Contoh dari Berkas").count(),
        kartu.matches("KARTU PESERTA TES AKHIR").count(),
        "the letterhead on every login card"
    );
    assert!(kartu.contains("Selasa, 24 November 2026") && kartu.contains("Cetak"));
    for (sheet_name, file) in [
        ("kartu", "kartu-peserta"),
        ("hadir", "daftar-hadir"),
        ("nilai", "rekap-nilai"),
        ("berita-acara", "berita-acara"),
    ] {
        for (fmt, ext) in [("xlsx", "xlsx"), ("csv", "csv"), ("csv-excel", "csv")] {
            let r = c.get(&format!("{base}/{sheet_name}?format={fmt}")).await;
            assert_eq!(r.status, 200, "{sheet_name} {fmt}");
            let want = format!("{file}-demo-kk-a-2026-S1.{ext}");
            assert!(
                r.header("content-disposition")
                    .is_some_and(|d| d.contains(&want)),
                "{sheet_name}: {:?}",
                r.header("content-disposition")
            );
            if ext == "csv" {
                assert_bom_csv(&r.body, sheet_name);
            }
        }
    }
    let cards = sheet(&c.get(&format!("{base}/kartu?format=xlsx")).await.body);
    for label in ["No. peserta", "Nama", "Instansi", "Kata sandi", "Tanggal"] {
        all_text(&cards, label);
    }
    assert!(texts(&cards, "No. peserta").contains(&ZERO_NUMBER.to_string()));
    assert!(texts(&cards, "Instansi").contains(&INSTITUTION.to_string()));
    let card_names = texts(&cards, "Nama");
    for n in NAMES {
        assert!(card_names.contains(&n.to_string()));
    }
    // Every password on the cards reads back exactly as the CSV has it.
    let pw_csv = c.get(&format!("{base}/kartu?format=csv")).await;
    let mut rd = csv::Reader::from_reader(pw_csv.body.as_ref());
    let csv_pw: Vec<String> = rd.records().map(|x| x.unwrap()[7].to_string()).collect();
    assert_eq!(texts(&cards, "Kata sandi"), csv_pw);

    let hadir = sheet(&c.get(&format!("{base}/hadir?format=xlsx")).await.body);
    assert!(
        column(&hadir, "No")
            .iter()
            .all(|d| matches!(d, Data::Float(_)))
    );
    assert!(
        column(&hadir, "Hadir")
            .iter()
            .all(|d| matches!(d, Data::Bool(_)))
    );
    all_text(&hadir, "No. peserta");

    let nilai = sheet(&c.get(&format!("{base}/nilai?format=xlsx")).await.body);
    let sc = column(&nilai, "Nilai");
    assert!(
        sc.len() >= 4 && sc.iter().all(|d| matches!(d, Data::Float(_))),
        "{sc:?}"
    );

    let ba = sheet(
        &c.get(&format!("{base}/berita-acara?format=xlsx"))
            .await
            .body,
    );
    let t = column(&ba, "Waktu");
    assert!(
        !t.is_empty() && t.iter().all(|d| matches!(d, Data::DateTime(_))),
        "{t:?}"
    );
    let what = texts(&ba, "Uraian").join("\n");
    assert!(what.contains("pindah komputer"), "{what}");
    assert!(!what.contains("staff:") && !what.contains('{') && !what.contains("_ms"));
    // The forced close: one line per collected participant, each with a name.
    let collected: Vec<String> = texts(&ba, "Kejadian")
        .into_iter()
        .filter(|k| k == "Dikumpulkan oleh pengawas")
        .collect();
    assert_eq!(collected.len(), 2, "{what}");

    // The page of the minutes: sentences, four signature blocks, no internals.
    let page = c.get(&format!("{base}/berita-acara")).await.text();
    for want in [
        "Pengawas 1",
        "Pengawas 2",
        "Teknisi/Proktor",
        "Kepala TUK",
        "Cetak",
        "sesi ditutup paksa oleh admin",
    ] {
        assert!(page.contains(want), "minutes show {want:?}");
    }
    for bad in ["staff:", "credited_ms", "\"forced\""] {
        assert!(!page.contains(bad), "minutes show no {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The minutes printed to PDF by Chromium
// ---------------------------------------------------------------------------------------

fn demo_admin_password(srv: &Server) -> String {
    srv.stdout()
        .lines()
        .find_map(|l| l.strip_prefix("admin: admin "))
        .expect("tuk demo prints `admin: admin PASSWORD`")
        .trim()
        .to_string()
}

/// Logs in on the console with a plain HTTP client; returns it with its CSRF token.
async fn staff(srv: &Server, password: &str) -> (common::Client, String) {
    let c = srv.client();
    let r = c
        .post_form("/admin/masuk", &[("user", "admin"), ("password", password)])
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let html = c.get("/admin").await.text();
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    let csrf = rest[..rest.find('"').unwrap()].to_string();
    (c, csrf)
}

async fn act(c: &common::Client, csrf: &str, fields: &[(&str, &str)]) {
    let mut f = fields.to_vec();
    f.push(("csrf", csrf));
    // As the confirmation page posts it (issue 13).
    f.push(("confirmed", "1"));
    let r = c.post_form(&format!("/admin/sesi/{S1}/aksi"), &f).await;
    assert_eq!(r.status, 303, "{fields:?}: {}", r.text());
}

async fn sit(srv: &Server, last: u8, login: &(String, String)) -> common::Client {
    let c = srv.client_from(std::net::Ipv4Addr::new(127, 0, 0, last));
    c.post(
        "/api/v1/login",
        &serde_json::json!({"participant": login.0, "password": login.1}),
    )
    .await
    .assert_ok();
    c.post("/api/v1/start", &serde_json::json!({"token": srv.token}))
        .await
        .assert_ok();
    c
}

/// One file of an XLSX (a zip): calamine does not expose page headers, so the test reads
/// the sheet's XML.
fn zip_entry(bytes: &[u8], name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).expect("zip");
    let mut f = z.by_name(name).expect("entry");
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut out).unwrap();
    out
}

/// A file of a sealed bundle's payload (decrypted with the demo UPT key).
fn bundle_file(bytes: &[u8], name: &str) -> Vec<u8> {
    use std::io::Read;
    let upt = SecretKey::read(&demo("demo-keys/upt.key")).unwrap();
    let p = tuk::container::split(bytes, tuk::seal::MAGIC, "bundle").unwrap();
    let plain = tuk::container::age_decrypt_with(p.payload, &upt.identity, 1 << 30).unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(plain.as_slice())
        .read_to_end(&mut tar)
        .unwrap();
    let mut a = tar::Archive::new(tar.as_slice());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with(name) {
            let mut out = Vec::new();
            e.read_to_end(&mut out).unwrap();
            return out;
        }
    }
    panic!("{name} is not in the bundle")
}

/// Full names and NIPs of the staff accounts in the printed test.
const ADMIN_NAME: &str = "Ir. Teguh Prakoso";
const ADMIN_NIP: &str = "197001011995121001";
const BUDI_NAME: &str = "Budi Santoso, S.Kom.";
const BUDI_NIP: &str = "198501012010011002";
const SRI_NAME: &str = "Sri Lestari, S.Pd.";

/// A printed PDF's text page by page (pdftotext, one call per page), after keeping the PDF
/// and its first page as a PNG (pdftoppm, 60 dpi: the A4 sheet as printed) in
/// `target/browser-artifacts/`.
fn pdf_pages(pdf: &[u8], name: &str) -> Vec<String> {
    let path = chrome::artifacts().join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap();
    let png = chrome::artifacts().join(format!("{name}-a4"));
    let _ = std::process::Command::new("pdftoppm")
        .args([
            "-png",
            "-r",
            "60",
            "-f",
            "1",
            "-l",
            "2",
            &s(&path),
            &s(&png),
        ])
        .status();
    let all = pdf_text(pdf, name);
    // pdftotext separates pages with a form feed.
    all.split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn pdf_text(pdf: &[u8], name: &str) -> String {
    let path = chrome::artifacts().join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", &s(&path), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed: apt-get install poppler-utils");
    assert!(out.status.success(), "pdftotext {name}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn minutes_of_an_eventful_session_print_to_pdf_in_words() {
    let mut srv = Server::demo();
    let password = demo_admin_password(&srv);
    let (admin, csrf) = staff(&srv, &password).await;
    let who: Vec<(String, String)> = srv.logins[..4].to_vec();
    let mut pcs = Vec::new();
    for (i, l) in who.iter().enumerate() {
        pcs.push(sit(&srv, 2 + i as u8, l).await);
    }
    act(
        &admin,
        &csrf,
        &[
            ("do", "time"),
            ("participant", &who[1].0),
            ("minutes", "5"),
            ("reason", "PC lambat"),
        ],
    )
    .await;
    act(
        &admin,
        &csrf,
        &[
            ("do", "reset"),
            ("participant", &who[2].0),
            ("reason", "Komputer mati"),
        ],
    )
    .await;
    act(
        &admin,
        &csrf,
        &[("do", "pause"), ("reason", "Listrik padam")],
    )
    .await;
    act(&admin, &csrf, &[("do", "resume")]).await;
    // The server dies for longer than the smallest credited gap (5 s) and comes back.
    srv.kill9();
    std::thread::sleep(std::time::Duration::from_millis(6_500));
    srv.restart();
    let (admin, csrf) = staff(&srv, &password).await;
    act(
        &admin,
        &csrf,
        &[
            ("do", "finish"),
            ("participant", &who[0].0),
            ("reason", "Peserta sakit"),
        ],
    )
    .await;
    act(&admin, &csrf, &[("do", "close_force")]).await;
    drop(pcs);
    // The TUK's letterhead, set once on the admin page.
    let r = admin
        .post_form(
            "/admin/kop",
            &[
                ("name", "TUK SMK Negeri 9 Contoh"),
                ("address", "Jl. Pendidikan No. 9, Sleman"),
                ("head", "Dra. Kartika Sari, M.Pd."),
                ("head_nip", "196805121993032007"),
                ("logo", &s(&logo())),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Kop surat disimpan"), "{}", r.text());
    // Staff identity for the signature blocks: the admin (who confirms the minutes: the
    // technician), two proctors assigned to the session, one without a NIP.
    for (user, pw) in [("budi", "budi-password"), ("sri", "sri-password")] {
        let r = admin
            .post_form(
                "/admin/pengguna",
                &[
                    ("name", user),
                    ("role", "proctor"),
                    ("password", pw),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for (user, full, nip) in [
        ("admin", ADMIN_NAME, ADMIN_NIP),
        ("budi", BUDI_NAME, BUDI_NIP),
        ("sri", SRI_NAME, ""),
    ] {
        let r = admin
            .post_form(
                "/admin/pengguna/identitas",
                &[
                    ("name", user),
                    ("full_name", full),
                    ("nip", nip),
                    ("csrf", &csrf),
                ],
            )
            .await
            .text();
        assert!(r.contains("disimpan"), "{r}");
    }
    let users = admin.get("/admin/pengguna").await.text();
    assert!(
        users.contains(BUDI_NIP) && users.contains(SRI_NAME),
        "{users}"
    );
    for p in ["budi", "sri"] {
        act(&admin, &csrf, &[("do", "assign"), ("proctor", p)]).await;
    }
    let r = admin
        .post_form(
            &format!("/admin/sesi/{S1}/berita-acara"),
            &[
                ("notes", "Tes berjalan tertib."),
                ("confirm", "1"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let x = admin
        .get(&format!("/admin/sesi/{S1}/hadir?format=xlsx"))
        .await;
    let head =
        String::from_utf8_lossy(&zip_entry(&x.body, "xl/worksheets/sheet1.xml")).into_owned();
    assert!(
        head.contains("TUK SMK Negeri 9 Contoh"),
        "XLSX page header: {head}"
    );

    let origin = srv.origin();
    let base = format!("{origin}/admin/sesi/{S1}");
    let numbers: Vec<String> = who.iter().map(|w| w.0.clone()).collect();
    chrome::run("paperwork-minutes", false, "1024,900", |c| async move {
        c.goto(&format!("{origin}/admin")).await?;
        c.find(fantoccini::Locator::Css("input[name=user]"))
            .await?
            .send_keys("admin")
            .await?;
        c.find(fantoccini::Locator::Css("input[name=password]"))
            .await?
            .send_keys(&password)
            .await?;
        c.find(fantoccini::Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        chrome::wait_path(&c, "/admin").await?;
        // Every A4 printable: a screenshot of the page, then Chromium's print to PDF
        // (A4), its text, and its first page as a PNG to look at.
        let mut printed = BTreeMap::new();
        for (page, name) in [
            ("kartu", "paperwork-kartu-peserta"),
            ("hadir", "paperwork-daftar-hadir"),
            ("nilai", "paperwork-rekap-nilai"),
            ("berita-acara", "paperwork-berita-acara"),
        ] {
            c.goto(&format!("{base}/{page}")).await?;
            chrome::screenshot(&c, name).await?;
            // Back to the board and a print button on the screen.
            chrome::css(&c, "a[href='/admin/sesi/demo-kk-a-2026/S1']").await?;
            chrome::css(&c, "button[data-print]").await?;
            let pdf = c
                .print(fantoccini::wd::PrintConfiguration::default())
                .await?;
            anyhow::ensure!(pdf.starts_with(b"%PDF"), "{page}: a PDF");
            let pages = pdf_pages(&pdf, name);
            let text = pages.join("\n");
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            for want in [
                "TUK SMK Negeri 9 Contoh",
                "Jl. Pendidikan No. 9, Sleman",
                "Tes Akhir Modul Kelompok Kompetensi A",
                "Lab Komputer 1",
                "Selasa, 24 November 2026",
            ] {
                anyhow::ensure!(flat.contains(want), "{page} says {want:?}:\n{text}");
            }
            anyhow::ensure!(
                !flat.contains("Cetak") && !flat.contains("Kembali"),
                "{page}: the bar is not printed"
            );
            // Nothing is cut across pages: a card, or a table's header on every page.
            for (i, p) in pages.iter().enumerate() {
                match page {
                    "kartu" => anyhow::ensure!(
                        p.matches("KARTU PESERTA").count() == p.matches("Kata sandi").count()
                            && p.matches("KARTU PESERTA").count()
                                == p.matches("Token sesi diberikan").count(),
                        "{page}: a card cut on page {}:\n{p}",
                        i + 1
                    ),
                    "hadir" | "nilai" => anyhow::ensure!(
                        p.contains("No. peserta"),
                        "{page}: the table header on page {}:\n{p}",
                        i + 1
                    ),
                    _ => {}
                }
            }
            printed.insert(page, (flat, pages.len()));
        }
        // The admin pages that set the letterhead and the staff identity, at 1024 wide.
        for (page, name) in [
            ("/admin/pengguna", "paperwork-admin-pengguna"),
            ("/admin/kop", "paperwork-admin-kop"),
        ] {
            c.goto(&format!("{origin}{page}")).await?;
            chrome::screenshot(&c, name).await?;
        }
        let cards = &printed["kartu"].0;
        anyhow::ensure!(
            cards.matches("TUK SMK Negeri 9 Contoh").count() == 20
                && cards.matches("Jl. Pendidikan No. 9, Sleman").count() == 20,
            "the letterhead on each of the 20 cards:\n{cards}"
        );
        let hadir = &printed["hadir"].0;
        for want in [
            "DAFTAR HADIR",
            "Pengawas 1",
            BUDI_NAME,
            &format!("NIP. {BUDI_NIP}"),
            "Pengawas 2",
            SRI_NAME,
            "Sleman, Selasa, 24 November 2026",
        ] {
            anyhow::ensure!(
                hadir.contains(want),
                "the attendance list says {want:?}:\n{hadir}"
            );
        }
        let nilai = &printed["nilai"].0;
        for want in [
            "REKAP NILAI",
            BUDI_NAME,
            "Kepala TUK",
            "Dra. Kartika Sari, M.Pd.",
            "NIP. 196805121993032007",
        ] {
            anyhow::ensure!(
                nilai.contains(want),
                "the score recap says {want:?}:\n{nilai}"
            );
        }
        for (page, (_, n)) in &printed {
            eprintln!("{page}: {n} A4 page(s)");
        }
        let flat = printed["berita-acara"].0.clone();
        let text = flat.clone();
        for want in [
            &format!("{BUDI_NAME} )"),
            &format!("NIP. {BUDI_NIP}"),
            &format!("{SRI_NAME} )"),
            &format!("{ADMIN_NAME} )"),
            &format!("NIP. {ADMIN_NIP}"),
        ] {
            anyhow::ensure!(
                flat.contains(want.as_str()),
                "the minutes' signatures say {want:?}:\n{text}"
            );
        }
        for bad in ["_ms", "{", "staff:", "system"] {
            anyhow::ensure!(
                !flat.contains(bad),
                "the printed minutes contain {bad:?}:\n{text}"
            );
        }
        for want in [
            "TUK SMK Negeri 9 Contoh",
            "Jl. Pendidikan No. 9, Sleman",
            "Sleman, Selasa",
            "Dra. Kartika Sari, M.Pd.",
            "NIP. 196805121993032007",
            "BERITA ACARA",
            "Pengawas 1",
            "Pengawas 2",
            "Teknisi/Proktor",
            "Kepala TUK",
            "server tidak dapat dihubungi selama",
            "pindah komputer",
            "ditambah 5 menit",
            "dihentikan sementara",
            "Listrik padam",
            "sesi ditutup paksa",
            "Peserta sakit",
        ] {
            anyhow::ensure!(
                flat.contains(want),
                "the printed minutes say {want:?}:\n{text}"
            );
        }
        // Every incident about a participant names them (name and number): the four who
        // sat are each named at least once, in a sentence with their number.
        for n in &numbers {
            anyhow::ensure!(flat.contains(&format!("({n})")), "{n} is named:\n{text}");
        }
        // The forced close: one line per collected participant (three were still working).
        let lines = flat
            .matches("dikumpulkan oleh admin karena sesi ditutup paksa")
            .count();
        anyhow::ensure!(lines == 3, "{lines} collection lines:\n{text}");
        Ok(())
    })
    .await;
}

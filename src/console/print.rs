//! Printable A4 pages of a session — login cards (*kartu peserta*), attendance list (*daftar
//! hadir*), score recap — each also as CSV and XLSX (`?format=csv|xlsx`). The browser's
//! "print to PDF" makes the PDF; the print stylesheet hides everything but the sheet.

use hyper::StatusCode;
use hyper::header::{CONTENT_DISPOSITION, HeaderValue};
use maud::{Markup, html};

use super::{Staff, may_see};
use crate::app::App;
use crate::exam::{self, AttemptStatus, Exam, Refusal, Role};
use crate::export::{self, Table};
use crate::package::model::{Participant, SessionSpec};
use crate::server::http::{self, Req, Resp};
use crate::server::participant::page as layout;

/// Which printable.
#[derive(Clone, Copy)]
pub enum Sheet {
    Cards,
    Attendance,
    Scores,
}

struct Ctx<'a> {
    ex: &'a Exam,
    skey: &'a str,
    spec: &'a SessionSpec,
    roster: Vec<&'a Participant>,
    package: &'a str,
}

fn ctx<'a>(ex: &'a Exam, skey: &'a str) -> Result<Ctx<'a>, Refusal> {
    let session = ex
        .sessions
        .get(skey)
        .ok_or(Refusal::new(404, "not_found"))?;
    let info = ex
        .catalog
        .get(&session.package)
        .ok_or(Refusal::new(404, "not_found"))?;
    let spec = info
        .manifest
        .sessions
        .iter()
        .find(|s| s.id == session.id)
        .ok_or(Refusal::new(404, "not_found"))?;
    Ok(Ctx {
        ex,
        skey,
        spec,
        roster: info
            .roster
            .iter()
            .filter(|p| p.session == session.id)
            .collect(),
        package: &session.package,
    })
}

pub fn sheet(app: &App, req: &Req, s: &Staff, skey: &str, which: Sheet) -> Result<Resp, Refusal> {
    // Passwords are on the cards: admins only.
    if matches!(which, Sheet::Cards) && s.role != Role::Admin {
        return Err(exam::FORBIDDEN);
    }
    let passwords = match which {
        Sheet::Cards => {
            let pkg = app
                .read()
                .sessions
                .get(skey)
                .map(|x| x.package.clone())
                .ok_or(Refusal::new(404, "not_found"))?;
            app.passwords(&pkg).map_err(|_| exam::STORE_FAILED)?
        }
        _ => Vec::new(),
    };
    let ex = app.read();
    if !may_see(&ex, s, skey) {
        return Err(exam::FORBIDDEN);
    }
    let c = ctx(&ex, skey)?;
    if matches!(which, Sheet::Scores) && !shows_scores(&c) {
        return Err(exam::FORBIDDEN);
    }
    let table = match which {
        Sheet::Cards => cards_table(&c, &passwords),
        Sheet::Attendance => attendance_table(&c),
        Sheet::Scores => scores_table(&c),
    };
    let name = match which {
        Sheet::Cards => "kartu-peserta",
        Sheet::Attendance => "daftar-hadir",
        Sheet::Scores => "rekap-nilai",
    };
    let file = format!("{name}-{}", skey.replace('/', "-"));
    match req.query_param("format").as_deref() {
        Some("csv") => download(
            export::csv(&table),
            &format!("{file}.csv"),
            "text/csv; charset=utf-8",
        ),
        Some("xlsx") => download(
            export::xlsx(&table, name),
            &format!("{file}.xlsx"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        _ => {
            let body = match which {
                Sheet::Cards => cards_html(&c, &passwords),
                _ => table_html(&c, &table, name, matches!(which, Sheet::Attendance)),
            };
            Ok(http::html(StatusCode::OK, layout(req, name, body)))
        }
    }
}

fn shows_scores(c: &Ctx) -> bool {
    c.ex.catalog
        .get(c.package)
        .and_then(|p| p.test(&c.spec.test))
        .is_some_and(|t| t.show_score)
}

fn download(bytes: anyhow::Result<Vec<u8>>, file: &str, ct: &'static str) -> Result<Resp, Refusal> {
    let bytes = bytes.map_err(|_| exam::STORE_FAILED)?;
    let mut r = http::response(StatusCode::OK, ct, bytes);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

fn heading(c: &Ctx, title: &str) -> Markup {
    let upt =
        c.ex.catalog
            .get(c.package)
            .map(|p| p.header.upt.clone())
            .unwrap_or_default();
    html! {
        div.sheethead {
            h1 { (title) }
            p { (upt) } p { "Sesi " (c.skey) " · " (c.spec.date) " " (c.spec.start) "–" (c.spec.end) " · " (c.spec.room) }
        }
    }
}

fn cards_table(c: &Ctx, pw: &[(String, String)]) -> Table {
    Table {
        columns: vec![
            "participant",
            "name",
            "institution",
            "session",
            "room",
            "date",
            "start",
            "password",
        ],
        rows: c
            .roster
            .iter()
            .map(|p| {
                vec![
                    p.participant.clone(),
                    p.name.clone(),
                    p.institution.clone(),
                    c.skey.to_string(),
                    c.spec.room.clone(),
                    c.spec.date.clone(),
                    c.spec.start.clone(),
                    password_of(pw, &p.participant),
                ]
            })
            .collect(),
    }
}

fn password_of(pw: &[(String, String)], number: &str) -> String {
    pw.iter()
        .find(|(n, _)| n == number)
        .map(|(_, p)| p.clone())
        .unwrap_or_default()
}

fn cards_html(c: &Ctx, pw: &[(String, String)]) -> Markup {
    html! {
        main.sheet.cards {
            @for p in &c.roster {
                div.card {
                    p.cardtitle { "KARTU PESERTA TES AKHIR" }
                    table {
                        tr { th { "No. peserta" } td.big { (p.participant) } }
                        tr { th { "Nama" } td { (p.name) } }
                        tr { th { "Sesi / ruang" } td { (c.skey) " · " (c.spec.room) } }
                        tr { th { "Jadwal" } td { (c.spec.date) " " (c.spec.start) "–" (c.spec.end) } }
                        tr { th { "Kata sandi" } td.big.mono { (password_of(pw, &p.participant)) } }
                    }
                    p.small { "Token sesi diberikan oleh pengawas saat ujian dimulai." }
                }
            }
        }
    }
}

fn attendance_table(c: &Ctx) -> Table {
    let session = c.ex.sessions.get(c.skey);
    Table {
        columns: vec![
            "no",
            "participant",
            "name",
            "institution",
            "district",
            "present",
            "signature",
        ],
        rows: c
            .roster
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let started =
                    c.ex.attempts
                        .contains_key(&exam::attempt_key(c.skey, &p.participant));
                let marked = session.and_then(|s| s.attendance.get(&p.participant).copied());
                let present = match (started, marked) {
                    (true, _) | (false, Some(true)) => "ya",
                    (false, Some(false)) => "tidak",
                    (false, None) => "",
                };
                vec![
                    (i + 1).to_string(),
                    p.participant.clone(),
                    p.name.clone(),
                    p.institution.clone(),
                    p.district.clone(),
                    present.to_string(),
                    String::new(),
                ]
            })
            .collect(),
    }
}

fn scores_table(c: &Ctx) -> Table {
    Table {
        columns: vec![
            "participant",
            "name",
            "status",
            "score",
            "predicate",
            "passed",
        ],
        rows: c
            .roster
            .iter()
            .map(|p| {
                let a =
                    c.ex.attempts
                        .get(&exam::attempt_key(c.skey, &p.participant));
                match a.map(|a| &a.status) {
                    Some(AttemptStatus::Finished { score, .. }) => vec![
                        p.participant.clone(),
                        p.name.clone(),
                        "selesai".into(),
                        score.total.to_string(),
                        score.predicate.clone(),
                        if score.passed { "lulus" } else { "belum lulus" }.into(),
                    ],
                    Some(AttemptStatus::Running) => vec![
                        p.participant.clone(),
                        p.name.clone(),
                        "mengerjakan".into(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ],
                    None => vec![
                        p.participant.clone(),
                        p.name.clone(),
                        "tidak ikut".into(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ],
                }
            })
            .collect(),
    }
}

fn table_html(c: &Ctx, t: &Table, name: &str, signatures: bool) -> Markup {
    let title = match name {
        "daftar-hadir" => "DAFTAR HADIR PESERTA TES AKHIR",
        _ => "REKAP NILAI TES AKHIR",
    };
    html! {
        main.sheet {
            (heading(c, title))
            p.noprint { a href="?format=csv" { "CSV" } " · " a href="?format=xlsx" { "XLSX" } " · cetak dengan Ctrl+P" }
            table.print {
                thead { tr { @for col in &t.columns { th { (column_label(col)) } } } }
                tbody { @for r in &t.rows { tr class=@if signatures { "tall" } { @for cell in r { td { (cell) } } } } }
            }
            @if signatures {
                div.signs { p { "Pengawas," } p.signline { "(.................................)" } }
            }
        }
    }
}

/// Printed headers in Bahasa Indonesia (the CSV keeps its stable English names).
fn column_label(col: &str) -> &str {
    match col {
        "no" => "No",
        "participant" => "No. peserta",
        "name" => "Nama",
        "institution" => "Instansi",
        "district" => "Kabupaten/Kota",
        "present" => "Hadir",
        "signature" => "Tanda tangan",
        "status" => "Status",
        "score" => "Nilai",
        "predicate" => "Predikat",
        "passed" => "Kelulusan",
        other => other,
    }
}

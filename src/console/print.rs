//! Printable A4 pages of a session — login cards (*kartu peserta*), attendance list (*daftar
//! hadir*), score recap — each also as CSV and XLSX (`?format=csv|xlsx`). The browser's
//! "print to PDF" makes the PDF; the print stylesheet hides everything but the sheet.

use crate::exam::SessionKey;
use hyper::StatusCode;
use hyper::header::{CONTENT_DISPOSITION, HeaderValue};
use maud::{Markup, html};

use super::{Staff, may_see};
use crate::app::App;
use crate::exam::{AttemptStatus, Exam, Refused, Role};
use crate::export::{self, Column, Dialect, TypedTable};
use crate::package::model::{Participant, SessionSpec};
use crate::server::Refusal;
use crate::server::http::{self, Req, Resp};
use crate::server::i18n::Lang;
use crate::server::shell::{Area, Bar, Frame};

/// Which printable.
#[derive(Clone, Copy)]
pub(crate) enum Sheet {
    Cards,
    Attendance,
    Scores,
}

struct Ctx<'a> {
    ex: &'a Exam,
    /// The session's attempts (from the store when it is closed).
    atts: crate::exam::SessionAttempts<'a>,
    skey: &'a SessionKey,
    spec: &'a SessionSpec,
    roster: Vec<&'a Participant>,
    package: &'a str,
}

fn ctx<'a>(ex: &'a Exam, skey: &'a SessionKey) -> Result<Ctx<'a>, Refusal> {
    let session = ex
        .sessions
        .get(skey)
        .ok_or(crate::server::refusal::NOT_FOUND)?;
    let info = ex
        .catalog
        .get(&session.package)
        .ok_or(crate::server::refusal::NOT_FOUND)?;
    let spec = info
        .manifest
        .sessions
        .iter()
        .find(|s| s.id == session.id)
        .ok_or(crate::server::refusal::NOT_FOUND)?;
    Ok(Ctx {
        ex,
        atts: super::board::attempts(ex, skey)?,
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

pub(crate) fn sheet(
    app: &App,
    req: &Req,
    s: &Staff,
    skey: &SessionKey,
    which: Sheet,
) -> Result<Resp, Refusal> {
    // Passwords are on the cards: admins only.
    if matches!(which, Sheet::Cards) && s.role != Role::Admin {
        return Err(Refused::Forbidden.into());
    }
    let passwords = match which {
        Sheet::Cards => {
            let pkg = app
                .read()
                .sessions
                .get(skey)
                .map(|x| x.package.clone())
                .ok_or(crate::server::refusal::NOT_FOUND)?;
            app.passwords(&pkg).map_err(|_| Refused::StoreFailed)?
        }
        _ => Vec::new(),
    };
    let ex = app.read();
    if !may_see(&ex, s, skey) {
        return Err(Refused::Forbidden.into());
    }
    let c = ctx(&ex, skey)?;
    if matches!(which, Sheet::Scores) && !shows_scores(&c) {
        return Err(Refused::Forbidden.into());
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
    match req.query_param("format").as_deref() {
        Some(f) if Dialect::from_format(f).is_some() => download(
            Dialect::from_format(f)
                .map_or_else(|| export::csv(&table), |d| export::csv_as(&table, d)),
            &export::file_name(&[name, skey], "csv"),
            "text/csv; charset=utf-8",
        ),
        Some("xlsx") => {
            let lh = letterhead(app);
            download(
                export::xlsx_with(&table, name, &sheet_title(&c, which), &lh),
                &export::file_name(&[name, skey], "xlsx"),
                XLSX,
            )
        }
        _ => {
            let lh = letterhead(app);
            let body = match which {
                Sheet::Cards => cards_html(&c, &passwords, &lh),
                _ => table_html(&c, &table, which, &lh),
            };
            let back = format!("/admin/sesi/{skey}");
            Ok(http::html(StatusCode::OK, frame(&back).page(name, body)))
        }
    }
}

/// The XLSX media type.
pub(crate) const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The TUK's letterhead in effect: `/admin/kop`, else the configuration file's `[letterhead]`.
pub(crate) fn letterhead(app: &App) -> export::Letterhead {
    super::admin::letterhead(app)
}

fn sheet_title(c: &Ctx, which: Sheet) -> String {
    let what = match which {
        Sheet::Cards => "Kartu peserta",
        Sheet::Attendance => "Daftar hadir",
        Sheet::Scores => "Rekap nilai",
    };
    format!("{what} {} · {}", test_title(c), c.spec.room)
}

fn test_title(c: &Ctx) -> String {
    c.ex.catalog
        .get(c.package)
        .and_then(|p| p.test(&c.spec.test))
        .map_or_else(|| c.spec.test.clone(), |t| t.title.clone())
}

fn shows_scores(c: &Ctx) -> bool {
    c.ex.catalog
        .get(c.package)
        .and_then(|p| p.test(&c.spec.test))
        .is_some_and(|t| t.show_score)
}

/// A file download with a `Content-Disposition` name (see [`export::file_name`]).
pub(crate) fn download(
    bytes: anyhow::Result<Vec<u8>>,
    file: &str,
    ct: &'static str,
) -> Result<Resp, Refusal> {
    let bytes = bytes.map_err(|_| Refused::StoreFailed)?;
    let mut r = http::response(StatusCode::OK, ct, bytes);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// The printables' own stylesheet (cards' letterheads, signature blocks, A4 page breaks;
/// the letterhead block itself is in `tuk.css`, shared with the UPT's pages), served at
/// `/admin/cetak.css`: rows and signature blocks are never cut across pages and table
/// headers repeat on every page.
pub(crate) const PRINT_CSS: &str = "\
.card .letterhead{gap:6px;padding-bottom:3px;margin-bottom:4px;border-bottom-width:3px}
.card .letterhead img.logo{max-height:34px;max-width:48px}
.card .lhname{font-size:1em}
.card .lhaddr{font-size:.75em}
.sheet.cards{align-content:flex-start}
.sheethead .small,p.small{font-size:.8em;color:#555}
table.print thead{display:table-header-group}
table.print tr,.signblock,.card,ol.incidents li{break-inside:avoid;page-break-inside:avoid}
table.tall td{height:2.2em}
table.tall th:last-child{width:17%}
td.num{text-align:right}
.signgrid{display:grid;grid-template-columns:1fr 1fr;gap:18px 40px;margin-top:16px;break-inside:avoid;page-break-inside:avoid}
.signblock p{margin:2px 0}
.signblock .space{height:56px}
p.place{text-align:right;margin-top:18px}
.minutes table.facts th{text-align:left;font-weight:normal;width:40%}
@media print{.bar{display:none!important}.minutes h2{font-size:1.05em}}
";

/// The *Cetak* button's script, served at `/admin/cetak.js` (the page works without it:
/// Ctrl+P prints the same).
pub(crate) const PRINT_JS: &str = "document.addEventListener('click',function(e){var b=e.target.closest&&e.target.closest('[data-print]');if(b){e.preventDefault();window.print();}});\n";

/// A static asset response (cached for an hour).
pub(crate) fn asset(ct: &'static str, body: &'static str) -> Resp {
    let mut r = http::response(StatusCode::OK, ct, body.as_bytes().to_vec());
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    r
}

/// The frame of a printable A4 page: the shell's print bar (back to the board at `back`,
/// *Cetak*, the downloads; hidden when printed), the printables' stylesheet and the
/// *Cetak* button's script.
pub(crate) fn frame(back: &str) -> Frame<'_> {
    Frame::new(Area::Console, Lang::Id)
        .bar(Bar::Print(back))
        .style(PRINT_CSS_URL)
        .script(PRINT_JS_URL)
}

/// Where [`PRINT_CSS`] and [`PRINT_JS`] are served.
const PRINT_CSS_URL: &str = "/admin/cetak.css";
const PRINT_JS_URL: &str = "/admin/cetak.js";

/// The head of a printed sheet: letterhead, title, test, room and date in words.
pub(crate) fn sheet_head(
    lh: &export::Letterhead,
    title: &str,
    test: &str,
    spec: &SessionSpec,
    skey: &SessionKey,
) -> Markup {
    html! {
        (lh.html())
        div.sheethead {
            h1 { (title) }
            p { strong { (test) } }
            p { "Ruang " (spec.room) " · " (export::date_words(&spec.date)) " · pukul " (spec.start.replace(':', ".")) "–" (spec.end.replace(':', ".")) }
            p.small { "Sesi " (skey) }
        }
    }
}

fn heading(c: &Ctx, lh: &export::Letterhead, title: &str) -> Markup {
    sheet_head(lh, title, &test_title(c), c.spec, c.skey)
}

fn cards_table(c: &Ctx, pw: &[(String, String)]) -> TypedTable {
    TypedTable {
        columns: vec![
            Column::text("participant", "No. peserta"),
            Column::text("name", "Nama"),
            Column::text("institution", "Instansi"),
            Column::text("session", "Sesi"),
            Column::text("room", "Ruang"),
            Column::text("date", "Tanggal"),
            Column::text("start", "Mulai"),
            Column::text("password", "Kata sandi"),
        ],
        rows: c
            .roster
            .iter()
            .map(|p| {
                vec![
                    p.participant.to_string(),
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

fn cards_html(c: &Ctx, pw: &[(String, String)], lh: &export::Letterhead) -> Markup {
    html! {
        main.sheet.cards {
            @for p in &c.roster {
                div.card {
                    (lh.html())
                    p.cardtitle { "KARTU PESERTA TES AKHIR" }
                    p.cardtitle { (test_title(c)) }
                    table {
                        tr { th { "No. peserta" } td.big { (p.participant) } }
                        tr { th { "Nama" } td { (p.name) } }
                        tr { th { "Ruang" } td { (c.spec.room) } }
                        tr { th { "Jadwal" } td { (export::date_words(&c.spec.date)) ", pukul " (c.spec.start.replace(':', ".")) "–" (c.spec.end.replace(':', ".")) } }
                        tr { th { "Kata sandi" } td.big.mono { (password_of(pw, &p.participant)) } }
                    }
                    p.small { "Token sesi diberikan oleh pengawas saat ujian dimulai." }
                }
            }
        }
    }
}

fn attendance_table(c: &Ctx) -> TypedTable {
    let session = c.ex.sessions.get(c.skey);
    TypedTable {
        columns: vec![
            Column::int("no", "No"),
            Column::text("participant", "No. peserta"),
            Column::text("name", "Nama"),
            Column::text("institution", "Instansi"),
            Column::text("district", "Kabupaten/Kota"),
            Column::yes_no("present", "Hadir"),
            Column::text("signature", "Tanda tangan"),
        ],
        rows: c
            .roster
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let started = c.atts.of(&p.participant).is_some();
                let marked = session.and_then(|s| s.attendance.get(&p.participant).copied());
                let present = match (started, marked) {
                    (true, _) | (false, Some(true)) => "ya",
                    (false, Some(false)) => "tidak",
                    (false, None) => "",
                };
                vec![
                    (i + 1).to_string(),
                    p.participant.to_string(),
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

fn scores_table(c: &Ctx) -> TypedTable {
    TypedTable {
        columns: vec![
            Column::text("participant", "No. peserta"),
            Column::text("name", "Nama"),
            Column::text("status", "Status"),
            Column::dec("score", "Nilai", 2),
            Column::text("predicate", "Predikat"),
            Column::text("passed", "Kelulusan"),
        ],
        rows: c
            .roster
            .iter()
            .map(|p| {
                let a = c.atts.of(&p.participant);
                let (status, score, predicate, passed) = match a.map(|a| &a.status) {
                    Some(AttemptStatus::Finished { score, .. }) => (
                        "selesai",
                        score.total.to_string(),
                        score.predicate.clone(),
                        if score.passed { "lulus" } else { "belum lulus" },
                    ),
                    Some(AttemptStatus::Running) => {
                        ("mengerjakan", String::new(), String::new(), "")
                    }
                    None => ("tidak ikut", String::new(), String::new(), ""),
                };
                vec![
                    p.participant.to_string(),
                    p.name.clone(),
                    status.into(),
                    score,
                    predicate,
                    passed.into(),
                ]
            })
            .collect(),
    }
}

fn table_html(c: &Ctx, t: &TypedTable, which: Sheet, lh: &export::Letterhead) -> Markup {
    let (title, attendance) = match which {
        Sheet::Attendance => ("DAFTAR HADIR PESERTA TES AKHIR", true),
        _ => ("REKAP NILAI TES AKHIR", false),
    };
    let proctors =
        c.ex.sessions
            .get(c.skey)
            .map(|s| s.proctors.clone())
            .unwrap_or_default();
    let first = proctors.first().map(String::as_str);
    html! {
        main.sheet {
            (heading(c, lh, title))
            (export::html_table(t, if attendance { "print tall" } else { "print" }))
            (place_line(lh, &c.spec.date))
            div.signgrid {
                (staff_block(c.ex, "Pengawas 1", first))
                @if attendance {
                    (staff_block(c.ex, "Pengawas 2", proctors.get(1).map(String::as_str)))
                } @else {
                    (sign_block("Kepala TUK", Some(&lh.head), Some(&lh.head_nip)))
                }
            }
        }
    }
}

/// The place and date above the signatures: `Sleman, Selasa, 24 November 2026` (the town
/// is the last part of the letterhead's address; a blank line until it is set).
pub(crate) fn place_line(lh: &export::Letterhead, date: &str) -> Markup {
    let town = lh.town();
    html! {
        p.place { (if town.is_empty() { "......................" } else { town.as_str() }) ", " (export::date_words(date)) }
    }
}

/// Blank lines where a signer's name or NIP is unknown.
const BLANK_NAME: &str = "..................................";
const BLANK_NIP: &str = "............................";

/// A signature block: role, room to sign, then the name and NIP when known, blank lines
/// otherwise.
pub(crate) fn sign_block(role: &str, name: Option<&str>, nip: Option<&str>) -> Markup {
    html! {
        div.signblock {
            p { (role) }
            div.space {}
            p.signname { "( " (name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(BLANK_NAME)) " )" }
            p { "NIP. " (nip.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(BLANK_NIP)) }
        }
    }
}

/// The signature block of a staff account: its full name (else its login name) and NIP
/// from `/admin/pengguna`; blank lines when there is no account for this role.
pub(crate) fn staff_block(ex: &Exam, role: &str, account: Option<&str>) -> Markup {
    let user = account.and_then(|a| ex.users.get(a));
    match (user, account) {
        (Some(u), _) => sign_block(role, Some(u.display_name()), Some(&u.nip)),
        (None, name) => sign_block(role, name, None),
    }
}

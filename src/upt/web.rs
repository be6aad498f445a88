//! The UPT staff's report pages, served by `tuk upt serve` beside the bundle receiver.
//!
//! Why: UPT staff read the recap, the programme grade (NA), the pre/post analysis and the
//! item analysis in a browser, without the command line. The tables are exactly those of
//! `tuk upt report` (one builder, [`report::build_from`]), shown as HTML and downloadable
//! as CSV or XLSX.
//!
//! Access: accounts are made with `tuk upt user add NAME --data DIR` and kept (argon2id) in
//! the UPT store; a login lives in this process's memory only, so restarting the receiver
//! logs everyone out and loses nothing else. The cookie is `Secure; HttpOnly;
//! SameSite=Strict` (the receiver is HTTPS only); every POST must come from this origin
//! and carry the login's CSRF token; repeated wrong passwords lock that address for that account for a while
//! (the shared rule of [`crate::auth`]; other PCs still get in).
//! Plain forms, no script.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};
use maud::{Markup, html};

use super::Upt;
use super::report::{self, KINDS, Options};
use crate::clock::now_ms;
use crate::exam::secrets;
use crate::export::{self, TypedTable};
use crate::server::assets;
use crate::server::http::{self, Req, Resp};
use crate::server::i18n::Lang;
use crate::server::shell::{self, Area, Bar, Frame, Problem, Who};

/// The login cookie's name.
pub(crate) const COOKIE: &str = "tuk_upt";
/// Staff passwords have at least this many characters.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;
/// Form bodies up to this size are read (the PD/TS file of a large UPT is well below).
pub(crate) const FORM_LIMIT: usize = 8 << 20;
/// A login lasts a working day.
const LOGIN_MAX_AGE_S: u64 = 10 * 3600;

/// Who is logged in, and who failed how often: this process's memory only.
pub(crate) struct Web {
    logins: Mutex<HashMap<crate::exam::CookieId, Login>>,
    /// Failed logins per (user, address) and per address: the shared rule of
    /// [`crate::auth`] (an address is locked for an account, never the account for all).
    guard: crate::auth::Guard,
    /// Password checks at once (each takes 19 MiB and ~50 ms of a core).
    hash_slots: tokio::sync::Semaphore,
}

struct Login {
    user: String,
    csrf: String,
    expires_ms: i64,
}

/// The logged-in staff member behind a request.
struct Staff {
    user: String,
    csrf: String,
}

impl Default for Web {
    fn default() -> Self {
        Web {
            logins: Mutex::new(HashMap::new()),
            guard: crate::auth::Guard::default(),
            hash_slots: tokio::sync::Semaphore::new(2),
        }
    }
}

impl Web {
    fn staff(&self, req: &Req) -> Option<Staff> {
        let id = secrets::cookie_id(&req.cookie(COOKIE)?);
        let logins = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        let l = logins.get(&id)?;
        (l.expires_ms > now_ms()).then(|| Staff {
            user: l.user.clone(),
            csrf: l.csrf.clone(),
        })
    }

    fn logged_in(&self, user: &str, cookie: &str, csrf: String) {
        let mut logins = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        logins.retain(|_, l| l.expires_ms > now);
        logins.insert(
            secrets::cookie_id(cookie),
            Login {
                user: user.to_string(),
                csrf,
                expires_ms: now + LOGIN_MAX_AGE_S as i64 * 1000,
            },
        );
    }

    /// Does this request carry a live staff login (checked before its body is read)?
    pub(crate) fn logged_in_request(&self, req: &Req) -> bool {
        self.staff(req).is_some()
    }

    fn logout(&self, req: &Req) {
        if let Some(c) = req.cookie(COOKIE) {
            self.logins
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&secrets::cookie_id(&c));
        }
    }
}

/// Every request outside the receiver's `/upt/v1/` API.
pub(crate) async fn route(upt: &Arc<Upt>, web: &Web, req: Req) -> Resp {
    let path = req.path.clone();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (&req.method, segs.as_slice()) {
        (&Method::GET, []) => http::redirect("/laporan"),
        (&Method::GET, ["static", name]) => assets::serve(name),
        (&Method::POST, ["laporan", "masuk"]) => login(upt, web, &req).await,
        (_, ["laporan", rest @ ..]) => match web.staff(&req) {
            Some(s) => authed(upt, web, &req, &s, rest).await,
            None if rest.is_empty() => login_page(None, StatusCode::OK),
            None if req.method == Method::GET => http::redirect("/laporan"),
            None => message_page(
                StatusCode::UNAUTHORIZED,
                "Sesi login berakhir",
                "Silakan masuk lagi.",
            ),
        },
        _ => message_page(
            StatusCode::NOT_FOUND,
            "Halaman tidak ada",
            "Laporan ada di /laporan.",
        ),
    }
}

async fn authed(upt: &Arc<Upt>, web: &Web, req: &Req, s: &Staff, rest: &[&str]) -> Resp {
    if req.method == Method::POST && !(req.same_origin() && csrf_ok(req, s)) {
        return message_page(
            StatusCode::FORBIDDEN,
            "Permintaan ditolak",
            "Formulir ini kedaluwarsa atau tidak berasal dari halaman ini. Muat ulang halaman lalu coba lagi.",
        );
    }
    match (&req.method, rest) {
        (&Method::GET, []) => index(upt, s).await,
        (&Method::POST, ["keluar"]) => {
            web.logout(req);
            tracing::info!("UPT staff {} logged out", s.user);
            let mut r = http::redirect("/laporan");
            set_cookie(&mut r, "", 0);
            r
        }
        (&Method::GET, ["na"]) => na_page(s, None, None),
        (&Method::POST, ["na"]) => na_post(upt, req, s).await,
        (&Method::GET, [kind]) if KINDS.contains(kind) => {
            let kind = kind.to_string();
            let format = req.query_param("format").unwrap_or_default();
            let u = upt.clone();
            let k = kind.clone();
            let built = tokio::task::spawn_blocking(move || {
                report::build(&u, &k, &Options::default()).map_err(|e| format!("{e:#}"))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match built {
                Ok(table) => deliver(upt, s, &kind, &table, &format, None),
                Err(e) => message_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Laporan gagal dibuat",
                    &e,
                ),
            }
        }
        _ => message_page(
            StatusCode::NOT_FOUND,
            "Halaman tidak ada",
            "Pilih laporan dari daftar di /laporan.",
        ),
    }
}

/// The token comes in the form body, or in the query for file uploads (multipart).
fn csrf_ok(req: &Req, s: &Staff) -> bool {
    req.form()
        .get("csrf")
        .and_then(|v| v.first().cloned())
        .or_else(|| req.query_param("csrf"))
        .is_some_and(|t| t == s.csrf)
}

fn set_cookie(r: &mut Resp, value: &str, max_age_s: u64) {
    let v =
        format!("{COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_s}");
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn locked_page() -> Resp {
    login_page(
        Some(
            "Terlalu banyak percobaan yang salah dari komputer ini. Tunggu 5 menit, lalu coba lagi (komputer lain tetap bisa masuk).",
        ),
        StatusCode::TOO_MANY_REQUESTS,
    )
}

/// A hash to check unknown user names against, so a wrong name takes as long as a wrong
/// password and does not tell which accounts exist.
fn decoy_phc() -> &'static str {
    static PHC: OnceLock<String> = OnceLock::new();
    PHC.get_or_init(|| {
        secrets::hash_password("decoy password", secrets::staff_params()).unwrap_or_default()
    })
}

async fn login(upt: &Arc<Upt>, web: &Web, req: &Req) -> Resp {
    if !req.same_origin() {
        return login_page(
            Some("Formulir ini tidak berasal dari halaman ini."),
            StatusCode::FORBIDDEN,
        );
    }
    let (user, password) = (
        req.form_field("user").trim().to_string(),
        req.form_field("password"),
    );
    let ip = req.ip_string();
    if web.guard.locked(&user, &ip, now_ms()) {
        return locked_page();
    }
    let account = {
        let (u, name) = (upt.clone(), user.clone());
        tokio::task::spawn_blocking(move || u.staff(&name))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r)
    };
    let account = match account {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("cannot read UPT staff accounts: {e:#}");
            return login_page(
                Some("Data UPT tidak dapat dibaca; lihat log server."),
                StatusCode::INTERNAL_SERVER_ERROR,
            );
        }
    };
    let checked = crate::auth::check_password(
        &web.guard,
        &web.hash_slots,
        &user,
        &ip,
        account.map(|a| a.phc),
        decoy_phc(),
        password,
    )
    .await;
    match checked {
        Ok(()) => {}
        Err(crate::auth::LoginRefused::Locked) => return locked_page(),
        Err(crate::auth::LoginRefused::Unavailable) => {
            return login_page(
                Some("Server sedang berhenti."),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
        Err(crate::auth::LoginRefused::Wrong { pair_locked, .. }) => {
            tracing::warn!(
                "failed UPT staff login for \"{}\" from {ip}{}",
                crate::auth::log_safe(&user, 64),
                if pair_locked {
                    " (this address is now locked for this account)"
                } else {
                    ""
                }
            );
            return login_page(
                Some("Nama pengguna atau kata sandi salah."),
                StatusCode::UNAUTHORIZED,
            );
        }
    }
    let (Ok(cookie), Ok(csrf)) = (secrets::new_cookie(), secrets::new_cookie()) else {
        return login_page(
            Some("Server tidak dapat membuat sesi login."),
            StatusCode::INTERNAL_SERVER_ERROR,
        );
    };
    web.logged_in(&user, &cookie, csrf);
    tracing::info!(
        "UPT staff {} logged in from {ip}",
        crate::auth::log_safe(&user, 64)
    );
    let mut r = http::redirect("/laporan");
    set_cookie(&mut r, &cookie, LOGIN_MAX_AGE_S);
    r
}

// ---------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------

/// What each report is, for the index and the page headings.
fn title(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "recap" => (
            "Rekap nilai peserta",
            "Nilai, predikat dan kelulusan setiap peserta, dengan kehadiran.",
        ),
        "summary" => (
            "Ringkasan per tes, TUK dan sesi",
            "Jumlah terdaftar, hadir, selesai, lulus; rata-rata nilai.",
        ),
        "na" => (
            "Nilai Akhir (NA) program",
            "NA dari nilai PD, TS (berkas CSV dari UPT) dan tes akhir, dengan predikat Perdirjen 2023.",
        ),
        "prepost" => (
            "Analisis nilai awal vs tes akhir",
            "Uji-t berpasangan, effect size (Cohen's d), rata-rata gain dan gain ternormalisasi.",
        ),
        "items" => (
            "Analisis butir soal",
            "Tingkat kesukaran, daya beda (point-biserial), sebaran pilihan pengecoh.",
        ),
        "reliability" => ("Reliabilitas tes (KR-20)", "Reliabilitas setiap tes."),
        "questionnaire" => (
            "Ringkasan angket evaluasi",
            "Jumlah jawaban setiap butir skala 1–5 dan jawaban terbuka.",
        ),
        "logins" => (
            "Riwayat login peserta",
            "Setiap login: waktu dan alamat PC.",
        ),
        _ => ("Laporan", ""),
    }
}

/// A report page: the shell's staff bar (back to the list, the page, who is logged in and
/// *Keluar*) around `body`.
fn staff_page(status: StatusCode, title: &str, s: &Staff, body: Markup) -> Resp {
    let bar = Bar::Staff {
        back: Some(("/laporan", "◀ Laporan")),
        label: Some(html! { (title) }),
        tools: None,
        who: Who {
            name: &s.user,
            role: "staf UPT",
            logout: "/laporan/keluar",
            csrf: &s.csrf,
        },
    };
    let frame = Frame::new(Area::Upt, Lang::Id).bar(bar);
    http::html(status, frame.page(title, body))
}

/// The shell's error page, with the way back to the report list.
fn message_page(status: StatusCode, heading: &str, text: &str) -> Resp {
    let p = Problem {
        heading,
        message: text,
        back: "/laporan",
        back_label: "Kembali",
    };
    shell::error_page(Frame::new(Area::Upt, Lang::Id), status, p)
}

fn login_page(error: Option<&str>, status: StatusCode) -> Resp {
    let login = shell::Login {
        heading: "Laporan UPT — Masuk",
        error,
        action: "/laporan/masuk",
        hint: html! {
            p.hint { "Akun dibuat oleh admin UPT dengan " code { "tuk upt user add NAMA --data FOLDER" } "." }
        },
    };
    shell::login_page(Frame::new(Area::Upt, Lang::Id), status, login)
}

async fn index(upt: &Arc<Upt>, s: &Staff) -> Resp {
    let u = upt.clone();
    let current = tokio::task::spawn_blocking(move || u.current().map_err(|e| format!("{e:#}")))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let current = match current {
        Ok(c) => c,
        Err(e) => {
            return message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Data UPT tidak dapat dibaca",
                &e,
            );
        }
    };
    let lh = report::letterhead(upt);
    let markup = html! {
        main.box.wide {
            (lh.html())
            h1 { "Laporan hasil tes akhir" }
            p { "UPT " strong { (upt.key.name) } " (sidik kunci " code { (upt.key.public().fingerprint()) } ")" }
            @if lh.is_empty() {
                p.hint { "Kop surat UPT (nama, alamat, logo) untuk halaman dan berkas Excel laporan belum diisi: " code { "tuk upt letterhead --data FOLDER --name NAMA --address ALAMAT [--logo LOGO.png]" } "." }
            }
            h2 { "Laporan" }
            table.facts {
                @for kind in KINDS {
                    @let (t, what) = title(kind);
                    tr {
                        th { a href={"/laporan/" (kind)} { (t) } }
                        td { (what) }
                        td.nowrap {
                            @if kind != "na" {
                                a href={"/laporan/" (kind) "?format=xlsx"} { "XLSX" } " · "
                                a href={"/laporan/" (kind) "?format=csv-excel"} { "CSV Excel" } " · "
                                a href={"/laporan/" (kind) "?format=csv"} { "CSV" }
                            }
                        }
                    }
                }
            }
            h2 { "Hasil yang sudah diterima (" (current.len()) " bundel)" }
            @if current.is_empty() {
                p { "Belum ada hasil. TUK mengunggah dengan " code { "tuk upload" } "; bundel dari flashdisk diimpor dengan " code { "tuk upt import" } "." }
            } @else {
                table.board {
                    thead { tr { th { "Paket" } th { "TUK" } th { "Sesi" } th { "Peserta" } th { "Disegel" } th { "Bundel (blake3)" } } }
                    tbody {
                        @for c in &current {
                            tr {
                                td { (c.doc.package.id) }
                                td { (c.doc.tuk.name) }
                                td { (c.doc.sessions.iter().map(|x| x.id.as_str()).collect::<Vec<_>>().join(", ")) }
                                td { (c.doc.participants.len()) }
                                td { (c.doc.sealed) }
                                td.mono { (c.blake3.get(..16).unwrap_or(&c.blake3)) "…" }
                            }
                        }
                    }
                }
            }
        }
    };
    staff_page(StatusCode::OK, "Laporan", s, markup)
}

/// The download's file name: what, which UPT and which day (the date in WIB, UTC+7: the
/// day a download is made, not a property of the data), e.g.
/// `laporan-recap-UPT-Contoh-2026-11-24.xlsx`.
fn file_name(upt: &Upt, kind: &str, ext: &str) -> String {
    let today = crate::clock::local(crate::clock::now_ms(), 7 * 3600);
    export::file_name(
        &[
            "laporan",
            kind,
            &upt.key.name,
            today.get(..10).unwrap_or(""),
        ],
        ext,
    )
}

/// The table as a page, or as a download when `format` asks for one: `csv` (comma),
/// `csv-excel` (`;` and decimal commas for an Indonesian Excel) or `xlsx`.
fn deliver(
    upt: &Upt,
    s: &Staff,
    kind: &str,
    table: &TypedTable,
    format: &str,
    above: Option<Markup>,
) -> Resp {
    let file = |ct: &'static str, bytes: anyhow::Result<Vec<u8>>, ext: &str| match bytes {
        Ok(b) => {
            let mut r = http::response(StatusCode::OK, ct, b);
            let name = file_name(upt, kind, ext);
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Berkas gagal dibuat",
            &format!("{e:#}"),
        ),
    };
    let lh = report::letterhead(upt);
    if let Some(d) = export::Dialect::from_format(format) {
        return file("text/csv; charset=utf-8", export::csv_as(table, d), "csv");
    }
    match format {
        "xlsx" => file(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            export::xlsx_headed(table, kind, &report::report_title(kind), &lh),
            "xlsx",
        ),
        _ => {
            let (t, what) = title(kind);
            let markup = html! {
                main.wide {
                    (lh.html())
                    h1 { (t) }
                    p { (what) " " (table.rows.len()) " baris. Kolom dijelaskan di docs/reports.md." }
                    @if let Some(a) = above { (a) }
                    @if kind != "na" {
                        p { "Unduh: " a href={"/laporan/" (kind) "?format=xlsx"} { "Excel (XLSX)" } " · " a href={"/laporan/" (kind) "?format=csv-excel"} { "CSV untuk Excel" } " · " a href={"/laporan/" (kind) "?format=csv"} { "CSV" } }
                    }
                    div.scroll {
                        (export::html_table(table, "board report"))
                    }
                }
            };
            staff_page(StatusCode::OK, t, s, markup)
        }
    }
}

fn na_form(s: &Staff, weights: &str) -> Markup {
    html! {
        form method="post" action={"/laporan/na?csrf=" (s.csrf)} enctype="multipart/form-data" {
            label for="pdts" { "Berkas nilai PD dan TS (CSV: participant,pd,ts[,test])" }
            input #pdts type="file" name="pdts" accept=".csv,text/csv" required;
            label for="weights" { "Bobot PD,TS,TA dalam persen (jumlah 100)" }
            input #weights name="weights" value=(weights) required;
            label for="format" { "Hasil" }
            select #format name="format" {
                option value="html" { "Tampilkan di halaman" }
                option value="xlsx" { "Unduh Excel (XLSX)" }
                option value="csv-excel" { "Unduh CSV untuk Excel" }
                option value="csv" { "Unduh CSV" }
            }
            button.primary type="submit" { "Hitung NA" }
        }
    }
}

fn na_page(s: &Staff, error: Option<&str>, weights: Option<&str>) -> Resp {
    let (t, what) = title("na");
    let markup = html! {
        main.box.wide {
            h1 { (t) }
            p { (what) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            (na_form(s, weights.unwrap_or("10,50,40")))
        }
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    staff_page(status, t, s, markup)
}

async fn na_post(upt: &Arc<Upt>, req: &Req, s: &Staff) -> Resp {
    let ct = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Ok(boundary) = multer::parse_boundary(ct) else {
        return na_page(
            s,
            Some("Kirim formulir ini dengan berkas CSV terlampir."),
            None,
        );
    };
    let body = req.body.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let (mut pdts, mut weights, mut format) = (None, String::from("10,50,40"), String::new());
    loop {
        match mp.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                let Ok(bytes) = field.bytes().await else {
                    return na_page(s, Some("Formulir terpotong; kirim lagi."), None);
                };
                match name.as_str() {
                    "pdts" => pdts = Some(bytes.to_vec()),
                    "weights" => weights = String::from_utf8_lossy(&bytes).trim().to_string(),
                    "format" => format = String::from_utf8_lossy(&bytes).trim().to_string(),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => return na_page(s, Some("Formulir rusak; kirim lagi."), None),
        }
    }
    let Some(pdts) = pdts.filter(|b| !b.is_empty()) else {
        return na_page(s, Some("Pilih berkas CSV nilai PD dan TS."), Some(&weights));
    };
    let u = upt.clone();
    let opts = Options {
        pdts: Some(pdts),
        weights: Some(weights.clone()),
    };
    let built = tokio::task::spawn_blocking(move || {
        report::build(&u, "na", &opts).map_err(|e| format!("{e:#}"))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match built {
        Ok(table) => {
            let again = html! { details { summary { "Hitung lagi dengan berkas atau bobot lain" } (na_form(s, &weights)) } };
            deliver(upt, s, "na", &table, &format, Some(again))
        }
        // The PD/TS file or the weights are wrong: say what, keep the weights typed.
        Err(e) => na_page(s, Some(&e), Some(&weights)),
    }
}

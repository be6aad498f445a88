//! The live board of one session: a row per registered participant, the token, and the
//! proctor's action forms. Without JavaScript it refreshes itself every few seconds; the
//! same rows are available as JSON for the script.

use hyper::StatusCode;
use maud::{PreEscaped, html};
use serde::Serialize;

use super::{Staff, csrf_field, may_see, visible_session};
use crate::app::App;
use crate::clock::{local_time, now_ms};
use crate::exam::proctor::RESET_REASONS;
use crate::exam::{self, AttemptStatus, Exam, FinishedBy, Refused, SessionStatus, Who};
use crate::server::Refusal;
use crate::server::http::{self, Req, Resp};
use crate::server::participant::page as layout;

/// A browser silent for longer than this stands out on the board.
const SILENT_MS: i64 = 45_000;

pub fn status_word(s: &SessionStatus) -> &'static str {
    match s {
        SessionStatus::Scheduled => "terjadwal",
        SessionStatus::Open { .. } => "dibuka",
        SessionStatus::Paused { .. } => "dihentikan sementara",
        SessionStatus::Closed { .. } => "ditutup",
    }
}

/// Where a participant of the board stands. Its text form ([`BoardStatus::as_str`]) is
/// the row's CSS class, its `data-status` and its `status` in the board's JSON — generated
/// here only; `console.js` compares the JSON's value with the row's attribute and never
/// names a status itself (`counting` tells it when the time left runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardStatus {
    NotArrived,
    Present,
    Absent,
    LoggedIn,
    Working,
    Finished,
    AutoSubmitted,
}

impl BoardStatus {
    /// The text form: CSS class, `data-status`, JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BoardStatus::NotArrived => "not_arrived",
            BoardStatus::Present => "present",
            BoardStatus::Absent => "absent",
            BoardStatus::LoggedIn => "logged_in",
            BoardStatus::Working => "working",
            BoardStatus::Finished => "finished",
            BoardStatus::AutoSubmitted => "auto_submitted",
        }
    }

    /// What the proctor reads.
    pub fn label(self) -> &'static str {
        match self {
            BoardStatus::NotArrived => "belum datang",
            BoardStatus::Present => "hadir",
            BoardStatus::Absent => "tidak hadir",
            BoardStatus::LoggedIn => "sudah masuk",
            BoardStatus::Working => "mengerjakan",
            BoardStatus::Finished => "selesai",
            BoardStatus::AutoSubmitted => "dikumpulkan otomatis",
        }
    }

    /// Not (yet) in the room: neither logged in nor started.
    pub fn is_absent(self) -> bool {
        matches!(self, BoardStatus::NotArrived | BoardStatus::Absent)
    }
}

impl Serialize for BoardStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Serialize)]
pub struct Row {
    pub participant: String,
    pub name: String,
    pub status: BoardStatus,
    /// The time left runs (the attempt is being worked on): `console.js` shows it.
    pub counting: bool,
    pub pc: String,
    pub answered: usize,
    pub doubtful: usize,
    pub items: usize,
    pub unsaved: u32,
    pub remaining_ms: i64,
    pub last_seen_ms: Option<i64>,
    pub silent: bool,
    /// Locked out after too many wrong passwords (the proctor should come over).
    pub locked: bool,
    /// The addresses whose wrong passwords locked this number (each only for itself), and
    /// this row's PC when that whole address is locked. The proctor can lift each.
    pub locked_from: Vec<String>,
}

pub fn rows(ex: &Exam, skey: &str) -> Vec<Row> {
    let now = now_ms();
    let Some(session) = ex.sessions.get(skey) else {
        return Vec::new();
    };
    let Some(info) = ex.catalog.get(&session.package) else {
        return Vec::new();
    };
    let logged_in: std::collections::HashSet<&str> = ex
        .web
        .values()
        .filter_map(|w| match &w.who {
            Who::Participant { number, .. } => Some(number.as_str()),
            _ => None,
        })
        .collect();
    info.roster
        .iter()
        .filter(|p| p.session == session.id)
        .map(|p| {
            let akey = exam::attempt_key(skey, &p.participant);
            let a = ex.attempts.get(&akey);
            let live = ex.live.get(&akey);
            let attendance = session.attendance.get(&p.participant).copied();
            let status = match (a.map(|a| &a.status), attendance) {
                (
                    Some(AttemptStatus::Finished {
                        by: FinishedBy::Auto,
                        ..
                    }),
                    _,
                ) => BoardStatus::AutoSubmitted,
                (Some(AttemptStatus::Finished { .. }), _) => BoardStatus::Finished,
                (Some(AttemptStatus::Running), _) => BoardStatus::Working,
                (None, _) if logged_in.contains(p.participant.as_str()) => BoardStatus::LoggedIn,
                (None, Some(true)) => BoardStatus::Present,
                (None, Some(false)) => BoardStatus::Absent,
                (None, None) => BoardStatus::NotArrived,
            };
            let last_seen_ms = live.map(|l| l.last_seen_ms);
            let mut locked_from: Vec<String> = ex
                .logins
                .locks_for(&p.participant, now)
                .into_iter()
                .map(|l| l.ip)
                .collect();
            if let Some(l) = live
                && ex.logins.addr_locked(&l.ip, now)
                && !locked_from.contains(&l.ip)
            {
                locked_from.push(l.ip.clone());
            }
            Row {
                participant: p.participant.clone(),
                name: p.name.clone(),
                status,
                counting: status == BoardStatus::Working,
                pc: live.map(|l| l.ip.clone()).unwrap_or_default(),
                answered: a.map_or(0, |a| a.answered()),
                doubtful: a.map_or(0, |a| a.doubtful()),
                items: a.map_or(0, |a| a.form.len()),
                unsaved: live.map_or(0, |l| l.unsaved),
                remaining_ms: a
                    .filter(|a| a.is_running())
                    .map_or(0, |a| a.remaining_ms(session, now)),
                last_seen_ms,
                silent: status == BoardStatus::Working
                    && last_seen_ms.is_none_or(|t| now - t > SILENT_MS),
                locked: !locked_from.is_empty(),
                locked_from,
            }
        })
        .collect()
}

fn mmss(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

pub fn page(app: &App, req: &Req, s: &Staff, skey: &str) -> Result<Resp, Refusal> {
    let ex = app.read();
    let session = visible_session(&ex, s, skey)?;
    let info = ex
        .package(&session.package)
        .map_err(|_| crate::server::refusal::NOT_FOUND)?;
    let offset = info.offset_s();
    let rows = rows(&ex, skey);
    let count = |st: BoardStatus| rows.iter().filter(|r| r.status == st).count();
    let token = session.token.as_ref().map(|t| t.current.clone());
    let post = format!("/admin/sesi/{skey}/aksi");
    let markup = html! {
        header.bar {
            a href="/admin" { "◀ Sesi" }
            span.who { (skey) " · " (status_word(&session.status)) }
            @if let Some(t) = &token {
                span { "Token: " strong.tokenbig { (t) } " " a href={"/admin/sesi/" (skey) "/token"} { "layar penuh" } }
            }
        }
        // Without JavaScript the board refreshes itself.
        (PreEscaped("<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>"))
        script src=(crate::server::assets::console_js_url()) defer {}
        main.wide #board data-events={"/admin/sesi/" (skey) "/events"} {
            nav.menu {
                @if s.role == crate::exam::Role::Admin { a href={"/admin/sesi/" (skey) "/kartu"} { "Kartu peserta" } " · " }
                a href={"/admin/sesi/" (skey) "/hadir"} { "Daftar hadir" } " · "
                a href={"/admin/sesi/" (skey) "/berita-acara"} { "Berita acara" } " · "
                @if info.test(&info.manifest.sessions.iter().find(|x| x.id == session.id).map(|x| x.test.clone()).unwrap_or_default()).is_some_and(|t| t.show_score) {
                    a href={"/admin/sesi/" (skey) "/nilai"} { "Rekap nilai" } " · "
                }
                a href={"/admin/log?chain=" (skey)} { "Log kejadian" }
            }
            p.counts {
                "Terdaftar " (rows.len()) " · hadir/masuk " (rows.len() - count(BoardStatus::NotArrived) - count(BoardStatus::Absent))
                " · mengerjakan " (count(BoardStatus::Working)) " · selesai " (count(BoardStatus::Finished) + count(BoardStatus::AutoSubmitted))
                " · tidak hadir " (count(BoardStatus::Absent))
            }
            div.actions {
                @match session.status {
                    SessionStatus::Scheduled | SessionStatus::Closed { .. } => {
                        form.inline method="post" action=(post) {
                            (csrf_field(s)) input type="hidden" name="do" value="open";
                            @if info.header.release_code { input name="release_code" placeholder="kode rilis dari UPT" required; }
                            label { "Token berganti tiap " input.narrow name="rotate_minutes" type="number" min="0" max="240" value="15"; " menit (0 = tetap)" }
                            button.primary type="submit" { "Buka sesi" }
                        }
                    }
                    SessionStatus::Open { .. } => {
                        form.inline method="post" action=(post) {
                            (csrf_field(s)) input type="hidden" name="do" value="pause";
                            input name="reason" placeholder="alasan (mis. listrik padam)" required;
                            button type="submit" { "Hentikan sementara" }
                        }
                        form.inline method="post" action=(post) {
                            (csrf_field(s)) input type="hidden" name="do" value="time_all";
                            input name="minutes" type="number" min="1" max="240" value="5" required;
                            input name="reason" placeholder="alasan" required;
                            button type="submit" { "Tambah waktu semua" }
                        }
                        form.inline method="post" action=(post) {
                            (csrf_field(s)) input type="hidden" name="do" value="close";
                            button type="submit" { "Tutup sesi" }
                        }
                    }
                    SessionStatus::Paused { .. } => {
                        form.inline method="post" action=(post) {
                            (csrf_field(s)) input type="hidden" name="do" value="resume";
                            button.primary type="submit" { "Lanjutkan sesi" }
                        }
                    }
                }
                @if s.role == crate::exam::Role::Admin && matches!(session.status, SessionStatus::Closed { .. }) {
                    form.inline method="post" action={"/admin/sesi/" (skey) "/segel"} {
                        (csrf_field(s))
                        button.primary type="submit" { "Segel hasil" }
                    }
                }
                @if session.is_running() {
                    form.inline method="post" action=(post) {
                        (csrf_field(s)) input type="hidden" name="do" value="close_force";
                        button.finish type="submit" { "Tutup paksa (kumpulkan semua)" }
                    }
                }
            }
            @if s.role == crate::exam::Role::Admin {
                form.inline method="post" action=(post) {
                    (csrf_field(s)) input type="hidden" name="do" value="assign";
                    select name="proctor" {
                        @for u in ex.users.values().filter(|u| u.role == crate::exam::Role::Proctor) { option { (u.name) } }
                    }
                    button type="submit" { "Tugaskan pengawas" }
                    " Pengawas: " (session.proctors.join(", "))
                }
            }
            @let addr_locks: Vec<_> = ex.logins.locks(now_ms()).into_iter().filter(|l| l.account.is_none()).collect();
            @if !addr_locks.is_empty() {
                section.warn {
                    h2 { "Alamat terkunci (terlalu banyak login salah)" }
                    p.small { "Semua login dari alamat ini ditolak sampai kuncinya berakhir atau dibuka. Peserta di PC lain tidak terpengaruh." }
                    @for l in &addr_locks {
                        p {
                            strong { (l.ip) } " — " (l.failures) " kali salah "
                            form.inline method="post" action=(post) {
                                (csrf_field(s)) input type="hidden" name="do" value="unlock";
                                input type="hidden" name="ip" value=(l.ip);
                                button type="submit" { "Buka kunci" }
                            }
                        }
                    }
                }
            }
            table.board {
                thead { tr {
                    th { "No. peserta" } th { "Nama" } th { "Status" } th { "PC" } th { "Dijawab" }
                    th { "Ragu" } th { "Belum tersimpan" } th { "Sisa" } th { "Terakhir aktif" } th { "Tindakan" }
                } }
                tbody {
                    @for r in &rows {
                        tr class={(r.status.as_str()) @if r.silent { " silent" }} data-p=(r.participant) data-status=(r.status.as_str()) {
                            td { (r.participant) } td { (r.name) } td {
                                (r.status.label())
                                @for ip in &r.locked_from {
                                    br; strong.warn { "login terkunci dari " (ip) }
                                    form.inline method="post" action=(post) {
                                        (csrf_field(s)) input type="hidden" name="do" value="unlock";
                                        input type="hidden" name="ip" value=(ip);
                                        button type="submit" { "Buka kunci" }
                                    }
                                }
                            }
                            td.c-pc { (r.pc) } td.c-ans { (r.answered) "/" (r.items) } td.c-doubt { (r.doubtful) }
                            td.c-unsaved.warn[r.unsaved > 0] { (r.unsaved) }
                            td.c-rem { @if r.counting { (mmss(r.remaining_ms)) } }
                            td.c-seen { @if let Some(t) = r.last_seen_ms { (local_time(t, offset)) } }
                            td {
                                @if r.status.is_absent() {
                                    (one(s, &post, "present", &r.participant, "Hadir", None))
                                }
                                @if r.status == BoardStatus::NotArrived {
                                    (one(s, &post, "absent", &r.participant, "Tidak hadir", None))
                                }
                                @if matches!(r.status, BoardStatus::Working | BoardStatus::LoggedIn) {
                                    form.inline method="post" action=(post) {
                                        (csrf_field(s)) input type="hidden" name="do" value="reset";
                                        input type="hidden" name="participant" value=(r.participant);
                                        select name="reason" { @for why in RESET_REASONS { option { (why) } } }
                                        button type="submit" { "Pindah PC" }
                                    }
                                }
                                @if r.status == BoardStatus::Working {
                                    form.inline method="post" action=(post) {
                                        (csrf_field(s)) input type="hidden" name="do" value="time";
                                        input type="hidden" name="participant" value=(r.participant);
                                        input.narrow name="minutes" type="number" min="1" max="240" value="5" required;
                                        input name="reason" placeholder="alasan" required;
                                        button type="submit" { "+ waktu" }
                                    }
                                    (one(s, &post, "finish", &r.participant, "Selesaikan", Some("dihentikan pengawas")))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(http::html(
        StatusCode::OK,
        layout(req, "Papan sesi", markup),
    ))
}

fn one(
    s: &Staff,
    post: &str,
    what: &str,
    number: &str,
    label: &str,
    reason: Option<&str>,
) -> maud::Markup {
    html! {
        form.inline method="post" action=(post) {
            (csrf_field(s)) input type="hidden" name="do" value=(what);
            input type="hidden" name="participant" value=(number);
            @if let Some(r) = reason { input type="hidden" name="reason" value=(r); }
            button type="submit" { (label) }
        }
    }
}

/// The token alone, very large, for a projector.
pub fn token_page(app: &App, req: &Req, s: &Staff, skey: &str) -> Result<Resp, Refusal> {
    let ex = app.read();
    let session = visible_session(&ex, s, skey)?;
    let token = session
        .token
        .as_ref()
        .map(|t| t.current.clone())
        .unwrap_or_else(|| "—".into());
    Ok(http::html(
        StatusCode::OK,
        layout(
            req,
            "Token",
            html! {
                (PreEscaped("<meta http-equiv=\"refresh\" content=\"10\">"))
                main.projector { p { "TOKEN" } p #token.tokenhuge { (token) } p { (skey) } }
            },
        ),
    ))
}

fn board_json(ex: &Exam, skey: &str) -> Option<serde_json::Value> {
    let session = ex.sessions.get(skey)?;
    Some(serde_json::json!({
        "session": skey,
        "status": status_word(&session.status),
        "token": session.token.as_ref().map(|t| t.current.clone()),
        "rows": rows(ex, skey),
    }))
}

pub fn json(app: &App, s: &Staff, skey: &str) -> Result<Resp, Refusal> {
    let ex = app.read();
    if !may_see(&ex, s, skey) {
        return Err(Refused::Forbidden.into());
    }
    let v = board_json(&ex, skey).ok_or(crate::server::refusal::NOT_FOUND)?;
    Ok(http::json(StatusCode::OK, &v))
}

/// Server-sent events: the board's rows every 2 s for 10 minutes, then the browser's
/// EventSource reconnects (which also re-checks the login).
pub fn events(app: &App, req: &Req, s: &Staff, skey: &str) -> Result<Resp, Refusal> {
    if !may_see(&app.read(), s, skey) {
        return Err(Refused::Forbidden.into());
    }
    // The stream ends as soon as this login ends (logout) or the staff member may no
    // longer see the session (unassigned), not only after 10 minutes.
    let login = req
        .cookie(crate::server::http::STAFF_COOKIE)
        .map(|c| crate::exam::secrets::cookie_id(&c))
        .unwrap_or_default();
    let state = (
        app.state.clone(),
        skey.to_string(),
        std::time::Instant::now(),
        login,
    );
    Ok(http::event_stream(
        state,
        std::time::Duration::from_secs(2),
        |(state, skey, born, login)| {
            if born.elapsed() > std::time::Duration::from_secs(600) {
                return None;
            }
            let ex = state.read().unwrap_or_else(|p| p.into_inner());
            let Who::Staff { user, .. } = &ex.web.get(login)?.who else {
                return None;
            };
            let u = ex.users.get(user)?;
            let still = u.role == exam::Role::Admin
                || ex
                    .sessions
                    .get(skey.as_str())
                    .is_some_and(|x| x.proctors.iter().any(|p| p == user));
            if !still {
                return None;
            }
            board_json(&ex, skey).map(|v| v.to_string())
        },
    ))
}

//! The live board of one session: a row per registered participant, the token, and the
//! proctor's action forms. Without JavaScript it refreshes itself every few seconds; the
//! same rows are available as JSON for the script.

use crate::exam::{AttemptKey, SessionKey};
use hyper::StatusCode;
use maud::html;
use serde::Serialize;

use super::{Staff, csrf_field, may_see, visible_session};
use crate::app::App;
use crate::clock::{local_time, now_ms};
use crate::exam::{self, AttemptStatus, Exam, FinishedBy, Refused, SessionStatus, Who};
use crate::server::Refusal;
use crate::server::http::{self, Req, Resp};
use crate::server::shell::{Bar, Refresh};

/// A browser silent for longer than this stands out on the board.
const SILENT_MS: i64 = 45_000;

pub(crate) fn status_word(s: &SessionStatus) -> &'static str {
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
pub(crate) enum BoardStatus {
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
    pub(crate) fn as_str(self) -> &'static str {
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
    pub(crate) fn label(self) -> &'static str {
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
    pub(crate) fn is_absent(self) -> bool {
        matches!(self, BoardStatus::NotArrived | BoardStatus::Absent)
    }
}

impl Serialize for BoardStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Serialize)]
pub(crate) struct Row {
    pub(crate) participant: String,
    pub(crate) name: String,
    pub(crate) status: BoardStatus,
    /// The time left runs (the attempt is being worked on): `console.js` shows it.
    pub(crate) counting: bool,
    /// The status in the proctor's words (`belum datang`, `mengerjakan`, …).
    pub(crate) label: &'static str,
    pub(crate) pc: String,
    pub(crate) answered: usize,
    pub(crate) doubtful: usize,
    pub(crate) items: usize,
    pub(crate) unsaved: u32,
    pub(crate) remaining_ms: i64,
    /// The participant's last request of any kind (page, save, heartbeat), epoch ms.
    pub(crate) last_seen_ms: Option<i64>,
    /// The same as `hh:mm:ss` in the package's time zone (empty when never seen).
    pub(crate) last_seen: String,
    pub(crate) silent: bool,
    /// Locked out after too many wrong passwords (the proctor should come over).
    pub(crate) locked: bool,
    /// The addresses whose wrong passwords locked this number (each only for itself), and
    /// this row's PC when that whole address is locked. The proctor can lift each.
    pub(crate) locked_from: Vec<String>,
}

/// The attempts of session `skey` for a console page ([`Exam::attempts_of`]): a closed
/// session's come from the store; a damaged record there is logged by name and the page
/// answers "store failed" (`tuk verify --data DIR` then shows the damage).
pub(crate) fn attempts<'a>(
    ex: &'a Exam,
    skey: &SessionKey,
) -> Result<exam::SessionAttempts<'a>, Refusal> {
    ex.attempts_of(skey).map_err(|e| {
        tracing::error!("cannot read the attempts of {skey}: {e:#}");
        Refusal::from(crate::exam::Refused::StoreFailed)
    })
}

/// The board's rows, from the session's attempts `atts` ([`attempts`]); `offset_s` is
/// the package's time zone (seconds east of UTC).
pub(crate) fn rows(
    ex: &Exam,
    atts: &exam::SessionAttempts,
    skey: &SessionKey,
    offset_s: i32,
) -> Vec<Row> {
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
            let akey = AttemptKey::of(skey, &p.participant);
            let a = atts.get(&akey);
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
                participant: p.participant.to_string(),
                name: p.name.clone(),
                status,
                counting: status == BoardStatus::Working,
                label: status.label(),
                pc: live.map(|l| l.ip.clone()).unwrap_or_default(),
                answered: a.map_or(0, |a| a.answered()),
                doubtful: a.map_or(0, |a| a.doubtful()),
                items: a.map_or(0, |a| a.form.len()),
                unsaved: live.map_or(0, |l| l.unsaved),
                remaining_ms: a
                    .filter(|a| a.is_running())
                    .map_or(0, |a| a.remaining_ms(session, now)),
                last_seen_ms,
                last_seen: last_seen_ms.map_or_else(String::new, |t| local_time(t, offset_s)),
                silent: status == BoardStatus::Working
                    && last_seen_ms.is_none_or(|t| now - t > SILENT_MS),
                locked: !locked_from.is_empty(),
                locked_from,
            }
        })
        .collect()
}

/// `h:mm:ss`, as the board shows remaining time.
pub(crate) fn hmmss(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// How many bundles were sealed for this session (0: never sealed). Read from the store's
/// `results` table (`sealed␟{session}␟{blake3}` records, `src/seal/tuk.rs`).
pub(crate) fn sealed_count(store: &crate::store::Store, skey: &SessionKey) -> usize {
    store
        .scan_prefix(
            crate::store::Table::Results,
            &format!("sealed\u{1f}{skey}\u{1f}"),
        )
        .map_or(0, |v| v.len())
}

/// The session's state as one code for the board's banner and the script:
/// `scheduled`, `open`, `paused`, `closed` or `sealed` (closed, with a sealed bundle).
pub(crate) fn state_code(s: &SessionStatus, sealed: bool) -> &'static str {
    match s {
        SessionStatus::Scheduled => "scheduled",
        SessionStatus::Open { .. } => "open",
        SessionStatus::Paused { .. } => "paused",
        SessionStatus::Closed { .. } if sealed => "sealed",
        SessionStatus::Closed { .. } => "closed",
    }
}

/// The banner's words for a state code.
pub(crate) fn state_banner(code: &str) -> &'static str {
    match code {
        "scheduled" => "TERJADWAL — sesi belum dibuka",
        "open" => "DIBUKA — peserta mengerjakan",
        "paused" => "DIHENTIKAN SEMENTARA — waktu peserta berhenti",
        "closed" => "DITUTUP — belum disegel",
        "sealed" => "DITUTUP DAN DISEGEL",
        _ => "?",
    }
}

/// The counts line under the banner.
fn counts(rows: &[Row]) -> String {
    let count = |st: BoardStatus| rows.iter().filter(|r| r.status == st).count();
    format!(
        "Terdaftar {} · hadir/masuk {} · mengerjakan {} · selesai {} · tidak hadir {}",
        rows.len(),
        rows.len() - count(BoardStatus::NotArrived) - count(BoardStatus::Absent),
        count(BoardStatus::Working),
        count(BoardStatus::Finished) + count(BoardStatus::AutoSubmitted),
        count(BoardStatus::Absent)
    )
}

pub(crate) fn page(app: &App, req: &Req, s: &Staff, skey: &SessionKey) -> Result<Resp, Refusal> {
    let sealed = sealed_count(&app.store, skey);
    let ex = app.read();
    let session = visible_session(&ex, s, skey)?;
    let info = ex
        .package(&session.package)
        .map_err(|_| crate::server::refusal::NOT_FOUND)?;
    let atts = attempts(&ex, skey)?;
    let rows = rows(&ex, &atts, skey, info.offset_s());
    let token = session.token.as_ref().map(|t| t.current.clone());
    let post = format!("/admin/sesi/{skey}/aksi");
    let state = state_code(&session.status, sealed > 0);
    let admin = s.role == crate::exam::Role::Admin;
    let link = |what: &str| format!("/admin/sesi/{skey}/aksi?do={what}");
    // Which session actions show in which state (the script shows/hides them live).
    let when = |codes: &str| !codes.split(' ').any(|c| c == state);
    let flash = super::take_flash(req);
    // `console.js` rewrites the label and the token when the board's events say so.
    let bar = Bar::Staff {
        back: Some(("/admin", "◀ Sesi")),
        label: Some(html! { (skey) " · " (status_word(&session.status)) }),
        tools: Some(html! {
            span #tokenbox {
                @if let Some(t) = &token {
                    "Token: " strong.tokenbig { (t) } " " a href={"/admin/sesi/" (skey) "/token"} { "layar penuh" }
                }
            }
        }),
        who: crate::server::shell::Who::console(s),
    };
    let markup = html! {
        main.wide #board data-events={"/admin/sesi/" (skey) "/events"} data-csrf=(s.csrf) data-post=(post) {
            p #state class={"state state-" (state)} role="status" { (state_banner(state)) }
            @if let Some(f) = &flash { p.flash.ok role="status" { (f) } }
            @if let Some(r) = &session.reopened_after_seal {
                p.warn #reopened {
                    "Sesi ini dibuka kembali setelah disegel oleh " (r.by) " pukul " (local_time(r.at_ms, info.offset_s()))
                    " — alasan: " (r.reason) "."
                    @if state != "sealed" { " Segel ulang setelah sesi ditutup." }
                }
            }
            nav.menu {
                @if admin { a href={"/admin/sesi/" (skey) "/kartu"} { "Kartu peserta" } " · " }
                a href={"/admin/sesi/" (skey) "/hadir"} { "Daftar hadir" } " · "
                a href={"/admin/sesi/" (skey) "/berita-acara"} { "Berita acara" } " · "
                @if info.test(&info.manifest.sessions.iter().find(|x| x.id == session.id).map(|x| x.test.clone()).unwrap_or_default()).is_some_and(|t| t.show_score) {
                    a href={"/admin/sesi/" (skey) "/nilai"} { "Rekap nilai" } " · "
                }
                a href={"/admin/log?chain=" (skey)} { "Log kejadian" }
                @if !session.proctors.is_empty() { " · Pengawas: " (session.proctors.join(", ")) }
            }
            p.counts #counts { (counts(&rows)) }
            div.actions {
                a.button.primary href=(link("open")) data-when="scheduled" hidden[when("scheduled")] { "Buka sesi…" }
                a.button href=(link("open")) data-when="closed" hidden[when("closed")] { "Buka kembali…" }
                @if admin { a.button href=(link("open")) data-when="sealed" hidden[when("sealed")] { "Buka kembali (sudah disegel)…" } }
                a.button href=(link("pause")) data-when="open" hidden[when("open")] { "Hentikan sementara…" }
                form.inline method="post" action=(post) data-when="paused" hidden[when("paused")] {
                    (csrf_field(s)) input type="hidden" name="do" value="resume";
                    button.primary type="submit" { "Lanjutkan sesi" }
                }
                a.button href=(link("time_all")) data-when="open paused" hidden[when("open paused")] { "Tambah waktu semua…" }
                a.button href=(link("close")) data-when="open paused" hidden[when("open paused")] { "Tutup sesi…" }
                a.button.finish href=(link("close_force")) data-when="open paused" hidden[when("open paused")] { "Tutup paksa (kumpulkan semua)…" }
                @if admin {
                    a.button.primary href=(link("seal")) data-when="closed" hidden[when("closed")] { "Segel hasil…" }
                    a.button href=(link("reseal")) data-when="sealed" hidden[when("sealed")] { "Segel ulang…" }
                    a.button href=(link("assign")) { "Tugaskan pengawas…" }
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
            table.board.live {
                colgroup { col.w-no; col.w-name; col.w-st; col.w-pc; col.w-n; col.w-s; col.w-s; col.w-t; col.w-t; col.w-act; }
                thead { tr {
                    th { "No. peserta" } th { "Nama" } th { "Status" } th { "PC" } th title="dijawab/jumlah soal" { "Jawab" }
                    th title="ragu-ragu" { "Ragu" } th title="belum tersimpan di server" { "Blm simpan" } th { "Sisa" } th { "Aktif" } th { "Tindakan" }
                } }
                tbody {
                    @for r in &rows {
                        tr class={(r.status.as_str()) @if r.silent { " silent" }} data-p=(r.participant) data-status=(r.status.as_str()) data-locked=(r.locked_from.join(" ")) {
                            td.c-no { (r.participant) } td.c-name title=(r.name) { (r.name) }
                            td.c-st {
                                span.lbl { (r.label) }
                                @for ip in &r.locked_from {
                                    (lock_form(s, &post, ip, &r.participant))
                                }
                            }
                            td.c-pc { (r.pc) } td.c-ans { (r.answered) "/" (r.items) } td.c-doubt { (r.doubtful) }
                            td.c-unsaved.warn[r.unsaved > 0] { (r.unsaved) }
                            td.c-rem { @if r.counting { (hmmss(r.remaining_ms)) } }
                            td.c-seen { (r.last_seen) }
                            td.c-act { a href={"/admin/sesi/" (skey) "/peserta/" (r.participant)} { "Tindakan" } }
                        }
                    }
                }
            }
        }
    };
    // Without JavaScript the board refreshes itself; it holds no text field, so a refresh
    // never drops what a proctor types (every action has its own page).
    let frame = super::frame()
        .bar(bar)
        .refresh(Refresh::WithoutScript(5))
        .script(crate::server::assets::console_js_url());
    let mut resp = http::html(StatusCode::OK, frame.page("Papan sesi", markup));
    if flash.is_some() {
        super::clear_flash(&mut resp);
    }
    Ok(resp)
}

/// The one-button "Buka kunci" form of a login locked from `ip`.
pub(crate) fn lock_form(s: &Staff, post: &str, ip: &str, number: &str) -> maud::Markup {
    html! {
        form.inline.lock method="post" action=(post) {
            (csrf_field(s)) input type="hidden" name="do" value="unlock";
            input type="hidden" name="ip" value=(ip);
            input type="hidden" name="participant" value=(number);
            button.warn type="submit" title={"login terkunci dari " (ip)} { "Buka kunci" }
        }
    }
}

/// The token alone, very large, for a projector.
pub(crate) fn token_page(app: &App, s: &Staff, skey: &SessionKey) -> Result<Resp, Refusal> {
    let ex = app.read();
    let session = visible_session(&ex, s, skey)?;
    let token = session
        .token
        .as_ref()
        .map(|t| t.current.clone())
        .unwrap_or_else(|| "—".into());
    Ok(http::html(
        StatusCode::OK,
        super::frame().refresh(Refresh::Every(10)).page(
            "Token",
            html! {
                main.projector { p { "TOKEN" } p #token.tokenhuge { (token) } p { (skey) } }
            },
        ),
    ))
}

fn board_json(ex: &Exam, skey: &SessionKey, sealed: bool) -> Option<serde_json::Value> {
    let session = ex.sessions.get(skey)?;
    let offset = ex
        .catalog
        .get(&session.package)
        .map_or(7 * 3600, |i| i.offset_s());
    let atts = attempts(ex, skey).ok()?;
    let rows = rows(ex, &atts, skey, offset);
    Some(serde_json::json!({
        "session": skey,
        "status": status_word(&session.status),
        "token": session.token.as_ref().map(|t| t.current.clone()),
        "state": state_code(&session.status, sealed),
        "banner": state_banner(state_code(&session.status, sealed)),
        "counts": counts(&rows),
        "rows": rows,
    }))
}

pub(crate) fn json(app: &App, s: &Staff, skey: &SessionKey) -> Result<Resp, Refusal> {
    let sealed = sealed_count(&app.store, skey) > 0;
    let ex = app.read();
    if !may_see(&ex, s, skey) {
        return Err(Refused::Forbidden.into());
    }
    let v = board_json(&ex, skey, sealed).ok_or(crate::server::refusal::NOT_FOUND)?;
    Ok(http::json(StatusCode::OK, &v))
}

/// Server-sent events: the board's rows every 2 s for 10 minutes, then the browser's
/// EventSource reconnects (which also re-checks the login).
pub(crate) fn events(app: &App, req: &Req, s: &Staff, skey: &SessionKey) -> Result<Resp, Refusal> {
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
        (app.state.clone(), app.store.clone()),
        skey.clone(),
        std::time::Instant::now(),
        login,
    );
    Ok(http::event_stream(
        state,
        std::time::Duration::from_secs(2),
        |((state, store), skey, born, login)| {
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
            let sealed = matches!(
                ex.sessions.get(skey.as_str()).map(|x| &x.status),
                Some(SessionStatus::Closed { .. })
            ) && sealed_count(store, skey) > 0;
            board_json(&ex, skey, sealed).map(|v| v.to_string())
        },
    ))
}

//! The proctor's action pages: one page per participant (identity, timeline, every action
//! with its reason field) and one confirmation page per consequential action, saying what
//! will happen and to how many participants. The board itself holds no text field, so its
//! refresh never drops what a proctor is typing (issue 13).
//!
//! Flow: the board links to `GET /admin/sesi/{session}/aksi?do=X` (or the participant
//! page's form posts without `confirmed`); the page shows the consequences and the fields;
//! its button posts to the same `aksi` with `confirmed=1`, which acts and reports with a
//! success line on the page it returns to.

use crate::exam::{AttemptKey, ParticipantNo, SessionKey};
use std::collections::HashMap;

use maud::{Markup, html};

use super::board::{self, hmmss, sealed_count};
use super::{Staff, csrf_field, visible_session};
use crate::app::App;
use crate::clock::local_time;
use crate::exam::events::{Actor, Event, Record};
use crate::exam::proctor::RESET_REASONS;
use crate::exam::{self, AttemptStatus, Exam, FinishedBy, Refused, Role, SessionStatus};
use crate::server::Refusal;
use crate::server::http::{Req, Resp};
use crate::server::shell::{self, Problem};

/// The actions that ask first: they end attempts, stop or extend everybody's clock, close,
/// seal or re-open a session (issue 13, "Every consequential action confirms and reports").
pub(crate) fn needs_confirm(what: &str) -> bool {
    matches!(
        what,
        "close_force"
            | "close"
            | "finish"
            | "reset"
            | "pause"
            | "time_all"
            | "open"
            | "seal"
            | "reseal"
    )
}

/// What a confirmation page says and asks.
struct Plan {
    title: String,
    /// What will happen, to how many: the sentence the proctor confirms.
    will: Vec<String>,
    /// The fields the action needs (reason, minutes, …).
    fields: Markup,
    button: &'static str,
    /// Where the form posts (the `aksi` endpoint, or `segel` for sealing).
    action: String,
    /// Why the action cannot be done now (then no button is offered).
    refused: Option<String>,
}

fn value<'a>(v: &'a HashMap<String, String>, k: &str) -> &'a str {
    v.get(k).map_or("", |s| s.as_str())
}

fn reason_field(v: &HashMap<String, String>, placeholder: &str) -> Markup {
    html! {
        label for="reason" { "Alasan (dicatat di log dan berita acara)" }
        input #reason name="reason" maxlength="200" required placeholder=(placeholder) value=(value(v, "reason"));
    }
}

/// What every confirmation page of one session may say, counted once.
struct Facts<'a> {
    app: &'a App,
    ex: &'a Exam,
    s: &'a Staff,
    skey: &'a SessionKey,
    session: &'a exam::Session,
    /// The session's attempts (from the store when it is closed).
    atts: exam::SessionAttempts<'a>,
    /// The form's values so far (a refused POST shows them again).
    v: &'a HashMap<String, String>,
    /// Attempts of the session (started at least once).
    started: usize,
    running: usize,
    finished: usize,
    registered: usize,
    not_started: usize,
    /// Bundles sealed from this session.
    sealed: usize,
    is_running: bool,
    closed: bool,
}

impl<'a> Facts<'a> {
    fn new(
        app: &'a App,
        ex: &'a Exam,
        s: &'a Staff,
        skey: &'a SessionKey,
        v: &'a HashMap<String, String>,
    ) -> Result<Self, Refusal> {
        let session = visible_session(ex, s, skey)?;
        let atts = board::attempts(ex, skey)?;
        let started = atts.len();
        let running = atts.values().filter(|a| a.is_running()).count();
        let registered = ex.catalog.get(&session.package).map_or(0, |i| {
            i.roster.iter().filter(|p| p.session == session.id).count()
        });
        Ok(Facts {
            app,
            ex,
            s,
            skey,
            session,
            atts,
            v,
            started,
            running,
            finished: started - running,
            registered,
            not_started: registered.saturating_sub(started),
            sealed: sealed_count(&app.store, skey),
            is_running: session.is_running(),
            closed: matches!(session.status, SessionStatus::Closed { .. }),
        })
    }

    /// A plan that posts to this session's `aksi` endpoint.
    fn plan(
        &self,
        title: impl Into<String>,
        will: Vec<String>,
        fields: Markup,
        button: &'static str,
        refused: Option<String>,
    ) -> Plan {
        Plan {
            title: title.into(),
            will,
            fields,
            button,
            action: format!("/admin/sesi/{}/aksi", self.skey),
            refused,
        }
    }

    /// The participant `n` of this session as "Name (number)", and their attempt.
    fn person(&self, n: &str) -> Result<(String, Option<&exam::Attempt>), Refusal> {
        let n = ParticipantNo::new(n);
        let info = self
            .ex
            .catalog
            .get(&self.session.package)
            .ok_or(crate::server::refusal::NOT_FOUND)?;
        let p = info
            .participant(&n, &self.session.id)
            .ok_or(Refused::NotRegistered)?;
        Ok((format!("{} ({})", p.name, p.participant), self.atts.of(&n)))
    }

    /// "The session is not open" when it is not.
    fn not_open(&self) -> Option<String> {
        (!self.is_running).then(|| "Sesi tidak sedang dibuka.".to_string())
    }
}

fn plan(
    app: &App,
    ex: &Exam,
    s: &Staff,
    skey: &SessionKey,
    what: &str,
    v: &HashMap<String, String>,
) -> Result<Plan, Refusal> {
    let f = Facts::new(app, ex, s, skey, v)?;
    let number = value(v, "participant");
    Ok(match what {
        "close_force" => close_force(&f),
        "close" => close(&f),
        "pause" => pause(&f),
        "time_all" => time_all(&f),
        "open" => open(&f)?,
        "seal" | "reseal" => seal(&f, what == "reseal")?,
        "finish" => finish(&f, number)?,
        "reset" => reset(&f, number)?,
        "assign" => assign(&f)?,
        _ => return Err(crate::server::refusal::NOT_FOUND),
    })
}

fn close_force(f: &Facts) -> Plan {
    let (running, not_started) = (f.running, f.not_started);
    f.plan(
        "Tutup paksa sesi",
        vec![
            format!(
                "{running} peserta yang masih mengerjakan akan dikumpulkan sekarang, dengan jawaban yang sudah tersimpan."
            ),
            format!("Sesi ditutup: {not_started} peserta yang belum mulai tidak dapat masuk lagi."),
        ],
        html! {},
        "Ya, kumpulkan semua dan tutup sesi",
        f.not_open(),
    )
}

fn close(f: &Facts) -> Plan {
    let (running, finished, not_started) = (f.running, f.finished, f.not_started);
    let refused = f.not_open().or_else(|| {
        (running > 0).then(|| format!(
            "{running} peserta masih mengerjakan: sesi tidak dapat ditutup biasa. Tunggu sampai mereka selesai, atau pakai Tutup paksa (kumpulkan semua)."
        ))
    });
    f.plan(
        "Tutup sesi",
        vec![format!(
            "Sesi ditutup; {finished} peserta sudah selesai, {not_started} peserta yang belum mulai tidak dapat masuk lagi."
        )],
        html! {},
        "Ya, tutup sesi",
        refused,
    )
}

fn pause(f: &Facts) -> Plan {
    let running = f.running;
    let refused = (!matches!(f.session.status, SessionStatus::Open { .. }))
        .then(|| "Sesi tidak sedang dibuka, jadi tidak dapat dihentikan.".to_string());
    f.plan(
        "Hentikan sementara",
        vec![format!(
            "Waktu {running} peserta yang sedang mengerjakan berhenti. Mereka tidak dapat menyimpan jawaban sampai sesi dilanjutkan; jawaban yang mereka pilih tetap disimpan di komputernya dan terkirim setelah dilanjutkan."
        )],
        reason_field(f.v, "mis. listrik padam"),
        "Ya, hentikan sementara",
        refused,
    )
}

fn time_all(f: &Facts) -> Plan {
    let (running, finished) = (f.running, f.finished);
    let refused = f.not_open().or_else(|| {
        (running == 0).then(|| {
            "Tidak ada peserta yang sedang mengerjakan: tidak ada waktu yang dapat ditambahkan."
                .to_string()
        })
    });
    let m = value(f.v, "minutes");
    f.plan(
        "Tambah waktu semua peserta",
        vec![format!(
            "{running} peserta yang sedang mengerjakan mendapat tambahan waktu. Peserta yang sudah selesai ({finished}) tidak berubah."
        )],
        html! {
            label for="minutes" { "Tambahan (menit, 1–240)" }
            input #minutes.narrow name="minutes" type="number" min="1" max="240" required value=(if m.is_empty() { "5" } else { m });
            (reason_field(f.v, "mis. listrik padam 10 menit"))
        },
        "Ya, tambahkan waktu",
        refused,
    )
}

fn open(f: &Facts) -> Result<Plan, Refusal> {
    let info =
        f.ex.package(&f.session.package)
            .map_err(|_| crate::server::refusal::NOT_FOUND)?;
    let code = info.header.release_code;
    let (sealed, not_started, finished, registered) =
        (f.sealed, f.not_started, f.finished, f.registered);
    let again = f.closed;
    let refused = if f.is_running {
        Some("Sesi sudah dibuka.".into())
    } else if sealed > 0 && f.s.role != Role::Admin {
        Some("Hasil sesi ini sudah disegel: hanya admin yang dapat membukanya kembali, dengan alasan.".into())
    } else {
        None
    };
    let mut will = vec![if again {
        format!(
            "Sesi dibuka kembali dengan token baru: {not_started} peserta yang belum mulai dapat masuk; {finished} peserta yang sudah selesai tetap selesai."
        )
    } else {
        format!(
            "Sesi dibuka dan token muncul di papan: {registered} peserta terdaftar dapat masuk."
        )
    }];
    if sealed > 0 {
        will.push(format!(
            "Hasil sesi ini sudah disegel ({sealed} bundel). Membuka kembali dicatat di log dan berita acara bersama alasan Anda, dan ditampilkan di papan; setelah ditutup lagi, sesi harus disegel ulang."
        ));
    }
    let rotate = value(f.v, "rotate_minutes");
    let fields = html! {
        @if code {
            label for="release_code" { "Kode rilis dari UPT" }
            input #release_code name="release_code" required autocomplete="off" value=(value(f.v, "release_code"));
        }
        label for="rotate_minutes" { "Token berganti tiap … menit (0 = tetap)" }
        input #rotate_minutes.narrow name="rotate_minutes" type="number" min="0" max="240" value=(if rotate.is_empty() { "15" } else { rotate });
        @if sealed > 0 { (reason_field(f.v, "mis. peserta susulan yang sah")) }
    };
    Ok(if again {
        f.plan(
            "Buka kembali sesi",
            will,
            fields,
            "Ya, buka kembali",
            refused,
        )
    } else {
        f.plan("Buka sesi", will, fields, "Ya, buka sesi", refused)
    })
}

fn seal(f: &Facts, reseal: bool) -> Result<Plan, Refusal> {
    if f.s.role != Role::Admin {
        return Err(Refused::Forbidden.into());
    }
    let sealed = f.sealed;
    let refused = if !f.closed {
        Some("Tutup sesi terlebih dahulu: hanya sesi yang ditutup yang dapat disegel.".into())
    } else if !reseal && sealed > 0 {
        Some("Sesi ini sudah disegel. Pakai Segel ulang: bundel lama digantikan, keduanya tetap tercatat di log.".into())
    } else if reseal && sealed == 0 {
        Some("Sesi ini belum pernah disegel: pakai Segel hasil.".into())
    } else {
        None
    };
    let mut will = vec![format!(
        "Hasil {} peserta ({} selesai) disegel dalam satu berkas terenkripsi untuk UPT. Setelah disegel, sesi tidak dapat dibuka kembali tanpa alasan dari admin.",
        f.started, f.finished
    )];
    if reseal {
        let last = crate::seal::tuk::sealed_records(f.app, f.skey)
            .ok()
            .and_then(|r| r.last().cloned());
        will.push(match last {
            Some(r) => format!(
                "Bundel sebelumnya (disegel {}, blake3 {}…) digantikan oleh bundel baru; keduanya tetap tercatat di log. Kirim bundel baru ke UPT.",
                r.created,
                &r.blake3[..r.blake3.len().min(16)]
            ),
            None => "Bundel sebelumnya digantikan oleh bundel baru; keduanya tetap tercatat di log.".into(),
        });
    }
    let (title, button) = if reseal {
        ("Segel ulang", "Ya, segel ulang")
    } else {
        ("Segel hasil", "Ya, segel hasil")
    };
    Ok(Plan {
        action: format!("/admin/sesi/{}/segel", f.skey),
        ..f.plan(
            title,
            will,
            html! { @if reseal { input type="hidden" name="reseal" value="1"; } },
            button,
            refused,
        )
    })
}

fn finish(f: &Facts, number: &str) -> Result<Plan, Refusal> {
    let (who, a) = f.person(number)?;
    let refused = match a {
        None => Some(
            "Peserta ini belum mulai mengerjakan: tidak ada pekerjaan yang dapat dikumpulkan."
                .into(),
        ),
        Some(a) if !a.is_running() => Some("Pekerjaan peserta ini sudah dikumpulkan.".into()),
        _ => None,
    };
    let (ans, items) = a.map_or((0, 0), |a| (a.answered(), a.form.len()));
    let mut v = f.v.clone();
    v.entry("reason".into())
        .or_insert_with(|| "dihentikan pengawas".into());
    Ok(f.plan(
        format!("Selesaikan pekerjaan {who}"),
        vec![format!(
            "Pekerjaan {who} dikumpulkan sekarang: {ans} dari {items} soal terjawab. Peserta tidak dapat mengubah jawaban lagi; nilai dihitung dari jawaban yang tersimpan."
        )],
        html! { input type="hidden" name="participant" value=(number); (reason_field(&v, "alasan")) },
        "Ya, kumpulkan pekerjaannya",
        refused,
    ))
}

fn reset(f: &Facts, number: &str) -> Result<Plan, Refusal> {
    let (who, a) = f.person(number)?;
    let refused = f.not_open().or_else(|| {
        a.is_some_and(|a| !a.is_running())
            .then(|| "Pekerjaan peserta ini sudah dikumpulkan: tidak perlu pindah PC.".to_string())
    });
    let pc =
        f.ex.live
            .get(&AttemptKey::of(f.skey, &number.into()))
            .map(|l| l.ip.clone())
            .unwrap_or_else(|| "—".into());
    let chosen = value(f.v, "reason");
    Ok(f.plan(
        format!("Pindah PC: {who}"),
        vec![
            format!(
                "Login {who} di PC {pc} diakhiri. Peserta masuk lagi di komputer lain dengan nomor peserta, kata sandi dan token."
            ),
            format!(
                "Jawaban yang tersimpan ({}) dan sisa waktu tetap.",
                a.map_or(0, |a| a.answered())
            ),
        ],
        html! {
            input type="hidden" name="participant" value=(number);
            label for="reason" { "Alasan" }
            select #reason name="reason" {
                @for why in RESET_REASONS { option selected[chosen == why] { (why) } }
            }
        },
        "Ya, pindahkan ke PC lain",
        refused,
    ))
}

fn assign(f: &Facts) -> Result<Plan, Refusal> {
    if f.s.role != Role::Admin {
        return Err(Refused::Forbidden.into());
    }
    let proctors = if f.session.proctors.is_empty() {
        "belum ada".to_string()
    } else {
        f.session.proctors.join(", ")
    };
    Ok(f.plan(
        "Tugaskan pengawas",
        vec![format!("Pengawas sesi ini sekarang: {proctors}.")],
        html! {
            label for="proctor" { "Pengawas" }
            select #proctor name="proctor" {
                @for u in f.ex.users.values().filter(|u| u.role == Role::Proctor) { option { (u.name) } }
            }
        },
        "Tugaskan",
        None,
    ))
}

/// The page of one action: what will happen, its fields, and the button that does it
/// (`GET …/aksi?do=X`, and the answer to a consequential POST not yet confirmed).
pub(crate) fn action_page(
    app: &App,
    s: &Staff,
    skey: &SessionKey,
    v: &HashMap<String, String>,
) -> Result<Resp, Refusal> {
    let what = value(v, "do").to_string();
    let ex = app.read();
    let p = plan(app, &ex, s, skey, &what, v)?;
    let number = value(v, "participant");
    let back = if number.is_empty() {
        format!("/admin/sesi/{skey}")
    } else {
        format!("/admin/sesi/{skey}/peserta/{number}")
    };
    let markup = html! {
        main.box.wide {
            h1 { (p.title) }
            @if let Some(r) = &p.refused {
                p.error role="alert" { (r) }
                p { a.button href=(back) { "Kembali" } }
            } @else {
                p { strong { "Yang akan terjadi:" } }
                ul.will { @for w in &p.will { li { (w) } } }
                form.fields method="post" action=(p.action) {
                    (csrf_field(s))
                    input type="hidden" name="do" value=(what);
                    input type="hidden" name="confirmed" value="1";
                    @if !number.is_empty() { input type="hidden" name="back" value="peserta"; }
                    (p.fields)
                    button.primary type="submit" { (p.button) }
                }
                p { a.button href=(back) { "Batal" } }
            }
        }
    };
    let label = html! { (skey) };
    Ok(super::staff_page(
        s,
        (&back, "◀ Kembali"),
        label,
        &p.title,
        markup,
    ))
}

/// One participant: identity, state, the actions (each with its reason), and the
/// timeline of logins, PCs and saves from the session's event log.
pub(crate) fn participant_page(
    app: &App,
    req: &Req,
    s: &Staff,
    skey: &SessionKey,
    number: &ParticipantNo,
) -> Result<Resp, Refusal> {
    let events = super::minutes::chain_events(app, skey).unwrap_or_default();
    let ex = app.read();
    let session = visible_session(&ex, s, skey)?;
    let info = ex
        .package(&session.package)
        .map_err(|_| crate::server::refusal::NOT_FOUND)?;
    let p = info
        .participant(number, &session.id)
        .ok_or(Refused::NotRegistered)?;
    let off = info.offset_s();
    let atts = board::attempts(&ex, skey)?;
    let rows = board::rows(&ex, &atts, skey, off);
    let row = rows
        .iter()
        .find(|r| r.participant == number)
        .ok_or(Refused::NotRegistered)?;
    let attempt = atts.of(number);
    let flash = super::take_flash(req);
    let timeline = timeline(&events, number, off);
    let running = attempt.is_some_and(|a| a.is_running());
    let ended_by = attempt.and_then(|a| match &a.status {
        AttemptStatus::Finished { by, .. } => Some(match by {
            FinishedBy::Auto => "waktu habis (otomatis)",
            FinishedBy::Proctor => "dikumpulkan pengawas",
            _ => "dikumpulkan peserta",
        }),
        _ => None,
    });
    let markup = html! {
        main.box.wide.person {
            @if let Some(f) = &flash { p.flash.ok role="status" { (f) } }
            h1 { (p.name) }
            table.facts {
                tr { th { "Nomor peserta" } td.mono { (p.participant) } }
                tr { th { "Instansi" } td { (p.institution) ", " (p.district) } }
                tr { th { "Status" } td #pstatus { (row.label) @if let Some(b) = ended_by { " — " (b) } } }
                tr { th { "PC" } td { (row.pc) } }
                tr { th { "Dijawab / ragu / belum tersimpan" } td { (row.answered) "/" (row.items) " · " (row.doubtful) " · " (row.unsaved) } }
                @if running { tr { th { "Sisa waktu" } td { (hmmss(row.remaining_ms)) } } }
                tr { th { "Terakhir aktif" } td { (row.last_seen) } }
            }
            h2 { "Tindakan" }
            (action_forms(s, skey, number, row, attempt))
            @if !running && attempt.is_some() {
                p.small { "Pekerjaan peserta ini sudah dikumpulkan: waktu tidak dapat ditambahkan dan jawaban tidak dapat diubah." }
            }
            h2 { "Riwayat" }
            @if timeline.is_empty() { p.small { "Belum ada kejadian." } }
            table.board.timeline {
                @for (at, what, detail) in &timeline {
                    tr { td.mono { (at) } td { (what) } td { (detail) } }
                }
            }
        }
    };
    let board = format!("/admin/sesi/{skey}");
    let label = html! { (skey) " · " (board::status_word(&session.status)) };
    let mut resp = super::staff_page(s, (&board, "◀ Papan sesi"), label, &p.name, markup);
    if flash.is_some() {
        super::clear_flash(&mut resp);
    }
    Ok(resp)
}

/// The participant page's action forms: unlock a locked login, attendance (before the
/// start), move to another PC, more time and finish (while running). Each posts to the
/// session's `aksi` endpoint and comes back to the participant page.
fn action_forms(
    s: &Staff,
    skey: &str,
    number: &str,
    row: &board::Row,
    attempt: Option<&exam::Attempt>,
) -> Markup {
    let post = format!("/admin/sesi/{skey}/aksi");
    let running = attempt.is_some_and(|a| a.is_running());
    let hidden = |what: &str| {
        html! {
            (csrf_field(s))
            input type="hidden" name="do" value=(what);
            input type="hidden" name="participant" value=(number);
            input type="hidden" name="back" value="peserta";
        }
    };
    html! {
        @if !row.locked_from.is_empty() {
            div.act {
                p.warn { "Login terkunci (kata sandi salah berkali-kali) dari " (row.locked_from.join(", ")) "." }
                @for ip in &row.locked_from {
                    form.inline method="post" action=(post) {
                        (hidden("unlock")) input type="hidden" name="ip" value=(ip);
                        button.primary type="submit" { "Buka kunci " (ip) }
                    }
                }
            }
        }
        @if attempt.is_none() {
            div.act {
                strong { "Kehadiran: " }
                form.inline method="post" action=(post) { (hidden("present")) button type="submit" { "Hadir" } }
                form.inline method="post" action=(post) { (hidden("absent")) button type="submit" { "Tidak hadir" } }
            }
        }
        @if running || row.status == board::BoardStatus::LoggedIn {
            div.act {
                form method="post" action=(post) {
                    (hidden("reset"))
                    label for="reset-reason" { "Pindah PC — alasan" }
                    select #reset-reason name="reason" { @for why in RESET_REASONS { option { (why) } } }
                    button type="submit" { "Pindah PC…" }
                }
            }
        }
        @if running {
            div.act {
                form method="post" action=(post) {
                    (hidden("time"))
                    label for="time-min" { "Tambah waktu (menit) dan alasan" }
                    input #time-min.narrow name="minutes" type="number" min="1" max="240" value="5" required;
                    input name="reason" maxlength="200" placeholder="alasan, mis. PC mati 7 menit" required;
                    button type="submit" { "Tambah waktu" }
                }
            }
            div.act {
                form method="post" action=(post) {
                    (hidden("finish"))
                    label for="finish-reason" { "Selesaikan (kumpulkan) — alasan" }
                    input #finish-reason name="reason" maxlength="200" value="dihentikan pengawas" required;
                    button.finish type="submit" { "Selesaikan…" }
                }
            }
        }
    }
}

/// The participant's events in order, in words: time (package time zone), what, detail.
/// Consecutive saves collapse into one line with their count and time span.
fn timeline(events: &[(Record, Vec<u8>)], number: &str, off: i32) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut saves: Option<(i64, i64, usize)> = None;
    let flush = |out: &mut Vec<(String, String, String)>, saves: &mut Option<(i64, i64, usize)>| {
        if let Some((a, b, n)) = saves.take() {
            out.push((
                local_time(a, off),
                format!("{n} jawaban disimpan"),
                if n > 1 {
                    format!("sampai {}", local_time(b, off))
                } else {
                    String::new()
                },
            ));
        }
    };
    for (e, _) in events {
        // The details are read from the event's stored data (`ip`, `minutes`, `reason`,
        // whom it concerns), which every kind names the same way: a display filter, not a
        // rule (the minutes and the UPT's derivation match every kind by type).
        let (_, data) = e.event.parts();
        let d = &data;
        let about = e.actor.participant() == Some(number)
            || d.get("participant").and_then(|v| v.as_str()) == Some(number)
            || d.get("attempt")
                .and_then(|v| v.as_str())
                .is_some_and(|a| a.rsplit('/').next() == Some(number))
            || d.get("participants")
                .and_then(|v| v.as_array())
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(number)));
        if !about {
            continue;
        }
        if matches!(e.event, Event::Answer { .. }) {
            saves = Some(match saves {
                Some((a, _, n)) => (a, e.at_ms, n + 1),
                None => (e.at_ms, e.at_ms, 1),
            });
            continue;
        }
        flush(&mut out, &mut saves);
        let mut detail = Vec::new();
        if let Some(ip) = d.get("ip").and_then(|v| v.as_str()) {
            detail.push(format!("PC {ip}"));
        }
        if let Some(m) = d.get("minutes").and_then(|v| v.as_i64()) {
            detail.push(format!("{m} menit"));
        }
        if let Some(r) = d.get("reason").and_then(|v| v.as_str()) {
            detail.push(format!("alasan: {r}"));
        }
        if let Actor::Staff(n) = &e.actor {
            detail.push(format!("oleh {n}"));
        }
        out.push((
            local_time(e.at_ms, off),
            super::minutes::kind_label(&e.event).into_owned(),
            detail.join(" · "),
        ));
    }
    flush(&mut out, &mut saves);
    out
}

/// The proctor's words for a refused action (the participant's wording, e.g. "Tes belum
/// dimulai…", would mislead here). `None`: the shared message table has fitting words.
pub(crate) fn staff_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "not_started" => {
            "Peserta ini belum mulai mengerjakan: tindakan ini hanya untuk peserta yang sedang mengerjakan."
        }
        "finished" => {
            "Pekerjaan peserta ini sudah dikumpulkan: waktu tidak dapat ditambahkan dan jawabannya tidak dapat diubah."
        }
        "session_closed" => "Sesi tidak sedang dibuka (belum dibuka atau sudah ditutup).",
        "not_open" => "Sesi tidak sedang dibuka.",
        "not_paused" => "Sesi tidak sedang dihentikan sementara.",
        "already_open" => "Sesi sudah dibuka.",
        "reason_required" => {
            "Tuliskan alasannya (paling banyak 200 karakter): alasan dicatat di log dan berita acara."
        }
        "invalid_input" => "Isian tidak lengkap atau tidak sah (tambahan waktu: 1–240 menit).",
        "not_registered" => "Nomor peserta ini tidak terdaftar di sesi ini.",
        "session_sealed" => {
            "Hasil sesi ini sudah disegel. Hanya admin yang dapat membukanya kembali, dengan alasan yang dicatat di log, di papan dan di berita acara."
        }
        "already_sealed" => {
            "Sesi ini sudah disegel. Pakai Segel ulang: bundel lama digantikan, keduanya tetap tercatat di log."
        }
        _ => return None,
    })
}

/// The page of a refused action, with a way back to where the proctor was.
pub(crate) fn refused_page(skey: &SessionKey, number: &str, r: Refusal) -> Resp {
    let back = if number.is_empty() {
        format!("/admin/sesi/{skey}")
    } else {
        format!("/admin/sesi/{skey}/peserta/{number}")
    };
    let text = staff_message(r.code)
        .map(str::to_string)
        .unwrap_or_else(|| {
            crate::server::i18n::msg(crate::server::i18n::Lang::Id, r.code).to_string()
        });
    shell::error_page(
        super::frame(),
        crate::server::status_of(r),
        Problem {
            heading: "Tindakan tidak dilakukan",
            message: &text,
            back: &back,
            back_label: "Kembali",
        },
    )
}

/// The success line shown after an action, counted from the state before it.
pub(crate) fn success_line(
    ex: &Exam,
    skey: &SessionKey,
    what: &str,
    number: &str,
    minutes: i64,
) -> String {
    let running = ex
        .attempts
        .values()
        .filter(|a| a.session == skey && a.is_running())
        .count();
    let name = ex
        .sessions
        .get(skey)
        .and_then(|s| {
            ex.catalog
                .get(&s.package)
                .and_then(|i| i.participant(&number.into(), &s.id))
        })
        .map_or_else(|| number.to_string(), |p| format!("{} ({number})", p.name));
    match what {
        "close_force" => {
            format!("Berhasil: sesi ditutup; {running} peserta yang masih mengerjakan dikumpulkan.")
        }
        "close" => "Berhasil: sesi ditutup.".into(),
        "pause" => {
            format!("Berhasil: sesi dihentikan sementara; waktu {running} peserta berhenti.")
        }
        "resume" => format!("Berhasil: sesi dilanjutkan; {running} peserta mengerjakan lagi."),
        "time_all" => format!("Berhasil: {running} peserta mendapat tambahan {minutes} menit."),
        "time" => format!("Berhasil: waktu {name} ditambah {minutes} menit."),
        "finish" => format!("Berhasil: pekerjaan {name} dikumpulkan."),
        "reset" => format!("Berhasil: login {name} diakhiri; peserta dapat masuk di PC lain."),
        "present" => format!("Berhasil: {name} dicatat hadir."),
        "absent" => format!("Berhasil: {name} dicatat tidak hadir."),
        "unlock" => "Berhasil: kunci login dibuka.".into(),
        "assign" => "Berhasil: pengawas ditugaskan.".into(),
        "unassign" => "Berhasil: penugasan pengawas dicabut.".into(),
        "open" => "Berhasil: sesi dibuka; token tampil di papan.".into(),
        _ => "Berhasil.".into(),
    }
}

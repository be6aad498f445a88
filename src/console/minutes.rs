//! The minutes (*berita acara*) of a session and the event log viewer.
//!
//! The minutes are generated from the session's hash-chained event log — date, room,
//! proctors, counts, and every incident with its time and reason — so nobody retypes what
//! the log already knows; the proctor adds free text and confirms.

use crate::exam::SessionKey;
use hyper::StatusCode;
use maud::html;

use super::{Staff, csrf_field, may_see, visible_session};
use crate::app::App;
use crate::clock::{local, now_ms};
use crate::exam::events::{self, Actor, Event, Record};
use crate::exam::{self, AttemptStatus, Exam, FinishedBy, PackageInfo, Refused};
use crate::export::{self, Column, Dialect, TypedTable};
use crate::server::Refusal;
use crate::server::commit_change;
use crate::server::http::{self, Req, Resp};
use crate::server::shell::CONSOLE_HOME;
use crate::store::Table as T;

/// Indonesian name of an event kind, for the event log page and its CSV. Every kind is
/// named here (no catch-all): a new kind does not compile until it has a name.
pub(crate) fn kind_label(ev: &Event) -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed(match ev {
        Event::SessionOpen { .. } => "Sesi dibuka",
        Event::Pause { .. } => "Tes dihentikan sementara",
        Event::ResumeSession { .. } => "Tes dilanjutkan",
        Event::ResetLogin { .. } => "Pindah PC (login diatur ulang)",
        Event::TimeCredit { .. } => "Penambahan waktu",
        Event::ForceFinish(_) => "Dikumpulkan oleh pengawas",
        Event::ForceFinishReason { .. } => "Alasan pengumpulan oleh pengawas",
        Event::DowntimeCredit { .. } => "Server mati; waktu dikembalikan otomatis",
        Event::ClockStep { .. } => "Jam server disetel; batas waktu digeser sama besar",
        Event::LoginLocked { .. } => "Login dikunci (kata sandi salah berkali-kali)",
        Event::LoginUnlocked { .. } => "Kunci login dibuka pengawas",
        Event::LoginRefusedActiveElsewhere { .. } => "Login ditolak: masih aktif di komputer lain",
        Event::SessionClose { .. } => "Sesi ditutup",
        Event::Login { .. } => "Login peserta",
        Event::Start { .. } => "Mulai mengerjakan",
        Event::Resume { .. } => "Melanjutkan pekerjaan",
        Event::Answer { .. } => "Jawaban disimpan",
        Event::Finish(_) => "Selesai (dikumpulkan peserta)",
        Event::AutoSubmit(_) => "Dikumpulkan otomatis (waktu habis)",
        Event::TokenRotated {} => "Token diganti",
        Event::Attendance { .. } => "Kehadiran dicatat",
        Event::ProctorAssign { .. } => "Penugasan pengawas",
        Event::MinutesSaved { .. } => "Berita acara disimpan",
        Event::MinutesConfirmed { .. } => "Berita acara dikonfirmasi",
        Event::Questionnaire { .. } => "Angket dikirim",
        Event::PackageImport { .. } => "Paket diimpor",
        Event::TrustAdd { .. } => "Kunci UPT dipercaya",
        Event::UserAdd { .. } => "Akun staf dibuat",
        Event::UserIdentity { .. } => "Nama dan NIP staf diisi",
        Event::StaffLogin { .. } => "Staf masuk",
        Event::Seal { .. } => "Hasil disegel",
        Event::Reseal { .. } => "Segel ulang (bundel sebelumnya digantikan)",
        Event::ReopenSealed { .. } => "Sesi yang sudah disegel dibuka kembali",
        Event::Receipt { .. } => "Tanda terima UPT disimpan",
        Event::Purge(_) => "Data dihapus setelah tanda terima",
        Event::Unknown { kind, .. } => {
            return std::borrow::Cow::Owned(format!(
                "Kejadian tidak dikenal versi ini ({})",
                kind.replace('_', " ")
            ));
        }
    })
}

/// The stored events of one chain, in order.
pub(crate) fn chain_events(app: &App, chain: &str) -> anyhow::Result<Vec<(Record, Vec<u8>)>> {
    let prefix = format!("{chain}\u{1f}");
    app.store
        .scan_prefix(T::Events, &prefix)?
        .into_iter()
        .map(|(_, v)| Ok((serde_json::from_slice(&v)?, v)))
        .collect()
}

/// Who did it, in words: a staff member's name, a participant's name and number, or
/// "sistem" for the server itself.
pub(crate) fn actor_words(actor: &Actor, who: &dyn Fn(&str) -> String) -> String {
    match actor {
        Actor::Staff(n) => n.clone(),
        Actor::Participant(n) => who(n),
        Actor::System | Actor::Cli | Actor::Other(_) => "sistem (otomatis)".into(),
    }
}

/// One incident of the minutes: when, what, whose, by whom, and the sentence.
struct Incident {
    at_ms: i64,
    kind: &'static str,
    participant: String,
    name: String,
    by: String,
    sentence: String,
}

/// The incidents of a session's log in words. A forced close writes one line per collected
/// participant; a force-finish and its reason are one line.
fn incidents(ev: &[(Record, Vec<u8>)], info: &PackageInfo, session_id: &str) -> Vec<Incident> {
    let name_of = |n: &str| {
        info.participant(&n.into(), session_id)
            .map_or_else(String::new, |p| p.name.clone())
    };
    incidents_with(ev, info.offset_s(), &name_of)
}

/// [`incidents`] with the time zone (seconds east of UTC) and participant names given.
fn incidents_with(
    ev: &[(Record, Vec<u8>)],
    off: i32,
    name_of: &dyn Fn(&str) -> String,
) -> Vec<Incident> {
    let who = |n: &str| {
        let name = name_of(n);
        if name.is_empty() {
            format!("peserta nomor {n}")
        } else {
            format!("{name} ({n})")
        }
    };
    let mut out = Vec::new();
    for (i, (e, _)) in ev.iter().enumerate() {
        let at = export::clock_words(e.at_ms, off);
        let by = actor_words(&e.actor, &who);
        let because = |reason: &str| {
            if reason.is_empty() {
                String::new()
            } else {
                format!(" Alasan: {reason}.")
            }
        };
        let mut incident = |kind: &'static str, participant: &str, sentence: String| {
            out.push(Incident {
                at_ms: e.at_ms,
                kind,
                participant: participant.to_string(),
                name: if participant.is_empty() {
                    String::new()
                } else {
                    name_of(participant)
                },
                by: by.clone(),
                sentence,
            })
        };
        // Every kind is named (no catch-all): a new kind does not compile until the
        // minutes say whether it is an incident.
        match &e.event {
            Event::SessionOpen { .. } => incident(
                "Sesi dibuka",
                "",
                format!("Pukul {at} sesi dibuka oleh {by}."),
            ),
            Event::Pause { reason } => incident(
                "Tes dihentikan sementara",
                "",
                format!(
                    "Pukul {at} tes dihentikan sementara oleh {by}; waktu peserta berhenti berjalan.{}",
                    because(reason)
                ),
            ),
            Event::ResumeSession { paused_ms } => incident(
                "Tes dilanjutkan",
                "",
                format!(
                    "Pukul {at} tes dilanjutkan oleh {by} setelah dihentikan selama {}; sisa waktu peserta tidak berkurang selama penghentian.",
                    export::minutes_words(*paused_ms)
                ),
            ),
            Event::ResetLogin {
                participant: n,
                reason,
                ..
            } => incident(
                "Pindah PC",
                n,
                format!(
                    "Pukul {at} {} pindah komputer; login diatur ulang oleh {by}, jawaban yang tersimpan tetap utuh.{}",
                    who(n),
                    because(reason)
                ),
            ),
            Event::TimeCredit {
                participants,
                minutes: m,
                reason,
            } => {
                let names: Vec<String> = participants.iter().map(|x| who(x)).collect();
                let first = match participants.as_slice() {
                    [only] => only.as_str(),
                    _ => "",
                };
                incident(
                    "Penambahan waktu",
                    first,
                    format!(
                        "Pukul {at} waktu {} ditambah {m} menit oleh {by}.{}",
                        names.join(", "),
                        because(reason)
                    ),
                )
            }
            Event::ForceFinish(f) => {
                let n = f.attempt.rsplit('/').next().unwrap_or("").to_string();
                // The reason of a single force-finish follows as its own event.
                let reason = ev.get(i + 1).and_then(|(x, _)| {
                    if let Event::ForceFinishReason {
                        participant,
                        reason,
                    } = &x.event
                        && *participant == n
                    {
                        Some(reason.clone())
                    } else {
                        None
                    }
                });
                let closing = ev[i..]
                    .iter()
                    .take_while(|(x, _)| x.at_ms == e.at_ms)
                    .any(|(x, _)| matches!(x.event, Event::SessionClose { .. }));
                let tail = match (reason, closing) {
                    (Some(r), _) if !r.is_empty() => format!(". Alasan: {r}."),
                    (_, true) => {
                        " karena sesi ditutup paksa saat peserta masih mengerjakan.".into()
                    }
                    _ => ".".into(),
                };
                incident(
                    "Dikumpulkan oleh pengawas",
                    &n,
                    format!(
                        "Pukul {at} pekerjaan {} dikumpulkan oleh {by}{tail}",
                        who(&n)
                    ),
                )
            }
            Event::DowntimeCredit {
                down_from_ms,
                credited_ms,
                participants,
                ..
            } => {
                let gap = export::minutes_words(*credited_ms);
                incident(
                    "Server mati",
                    "",
                    format!(
                        "Pukul {} server tidak dapat dihubungi selama {gap}; waktu seluruh peserta yang sedang mengerjakan ({} orang) ditambah {gap} secara otomatis.",
                        export::clock_words(*down_from_ms, off),
                        participants.len()
                    ),
                )
            }
            Event::ClockStep {
                step_ms,
                participants,
                ..
            } => {
                let n = participants.as_ref().map_or(0, Vec::len);
                let dir = if *step_ms >= 0 { "maju" } else { "mundur" };
                incident(
                    "Jam server disetel",
                    "",
                    format!(
                        "Pukul {at} (waktu yang sudah dibetulkan) jam server bergeser {dir} {}; batas waktu seluruh peserta yang sedang mengerjakan ({n} orang) digeser sama besar, sehingga tidak ada waktu yang hilang atau bertambah.",
                        export::minutes_words(step_ms.abs())
                    ),
                )
            }
            Event::LoginLocked { .. } => {
                let n = e.actor.participant().unwrap_or("");
                incident(
                    "Login dikunci",
                    n,
                    format!(
                        "Pukul {at} login {} dikunci sementara karena kata sandi salah berkali-kali.",
                        who(n)
                    ),
                )
            }
            Event::LoginRefusedActiveElsewhere { .. } => {
                let n = e.actor.participant().unwrap_or("");
                incident(
                    "Login ditolak",
                    n,
                    format!(
                        "Pukul {at} login {} dari komputer lain ditolak karena masih aktif di komputer sebelumnya.",
                        who(n)
                    ),
                )
            }
            Event::SessionClose { forced } => incident(
                "Sesi ditutup",
                "",
                if *forced {
                    format!("Pukul {at} sesi ditutup paksa oleh {by}.")
                } else {
                    format!("Pukul {at} sesi ditutup oleh {by}.")
                },
            ),
            Event::ReopenSealed { reason } => incident(
                "Dibuka kembali setelah disegel",
                "",
                format!(
                    "Pukul {at} sesi yang hasilnya sudah disegel dibuka kembali oleh {by}.{}",
                    because(reason)
                ),
            ),
            Event::Reseal { superseded, .. } => incident(
                "Segel ulang",
                "",
                format!(
                    "Pukul {at} hasil sesi disegel ulang oleh {by}; bundel sebelumnya ({}…) digantikan, keduanya tetap tercatat di log.",
                    superseded.chars().take(16).collect::<String>()
                ),
            ),
            Event::Unknown { kind, .. } => incident(
                "Kejadian tidak dikenal",
                "",
                format!(
                    "Pukul {at} tercatat kejadian \"{kind}\" yang tidak dikenal versi tuk ini (tersimpan utuh di log kejadian)."
                ),
            ),
            // Not incidents: the facts table counts them, or they are routine.
            Event::Login { .. }
            | Event::Start { .. }
            | Event::Resume { .. }
            | Event::Answer { .. }
            | Event::Finish(_)
            | Event::AutoSubmit(_)
            | Event::Questionnaire { .. }
            | Event::TokenRotated {}
            | Event::ForceFinishReason { .. }
            | Event::LoginUnlocked { .. }
            | Event::Attendance { .. }
            | Event::ProctorAssign { .. }
            | Event::MinutesSaved { .. }
            | Event::MinutesConfirmed { .. }
            | Event::PackageImport { .. }
            | Event::TrustAdd { .. }
            | Event::UserAdd { .. }
            | Event::UserIdentity { .. }
            | Event::StaffLogin { .. }
            | Event::Seal { .. }
            | Event::Receipt { .. }
            | Event::Purge(_) => {}
        }
    }
    out
}

/// The incidents as a typed table (CSV/XLSX of the minutes).
fn incidents_table(list: &[Incident], off: i32) -> TypedTable {
    TypedTable {
        columns: vec![
            Column::time("time", "Waktu"),
            Column::text("incident", "Kejadian"),
            Column::text("participant", "No. peserta"),
            Column::text("name", "Nama peserta"),
            Column::text("by", "Oleh"),
            Column::text("description", "Uraian"),
        ],
        rows: list
            .iter()
            .map(|x| {
                vec![
                    local(x.at_ms, off),
                    x.kind.to_string(),
                    x.participant.clone(),
                    x.name.clone(),
                    x.by.clone(),
                    x.sentence.clone(),
                ]
            })
            .collect(),
    }
}

fn names_list(v: &[(String, String)]) -> String {
    if v.is_empty() {
        return "–".into();
    }
    v.iter()
        .map(|(n, name)| format!("{name} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn page(app: &App, req: &Req, s: &Staff, skey: &SessionKey) -> Result<Resp, Refusal> {
    let events = chain_events(app, skey).map_err(|_| Refused::StoreFailed)?;
    let lh = super::admin::letterhead(app);
    let ex = app.read();
    let session = visible_session(&ex, s, skey)?;
    let info = ex
        .package(&session.package)
        .map_err(|_| crate::server::refusal::NOT_FOUND)?;
    let spec = info.manifest.sessions.iter().find(|x| x.id == session.id);
    let offset = info.offset_s();
    let list = incidents(&events, info, &session.id);
    let table = incidents_table(&list, offset);
    match req.query_param("format").as_deref() {
        Some(f) if Dialect::from_format(f).is_some() => {
            return super::print::download(
                Dialect::from_format(f)
                    .map_or_else(|| export::csv(&table), |d| export::csv_as(&table, d)),
                &export::file_name(&["berita-acara", skey], "csv"),
                "text/csv; charset=utf-8",
            );
        }
        Some("xlsx") => {
            return super::print::download(
                export::xlsx_with(
                    &table,
                    "berita-acara",
                    &format!("Berita acara {}", info.manifest.title),
                    &lh,
                ),
                &export::file_name(&["berita-acara", skey], "xlsx"),
                super::print::XLSX,
            );
        }
        _ => {}
    }
    let atts = super::board::attempts(&ex, skey)?;
    let rows = super::board::rows(&ex, &atts, skey, info.offset_s());
    let absent: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.status.is_absent())
        .map(|r| (r.participant.clone(), r.name.clone()))
        .collect();
    let present = rows.len() - absent.len();
    let mut finished = 0;
    let mut collected: Vec<(String, String)> = Vec::new();
    for r in &rows {
        if let Some(a) = atts.of(&r.participant.as_str().into())
            && let AttemptStatus::Finished { by, .. } = &a.status
        {
            match by {
                FinishedBy::Participant => finished += 1,
                FinishedBy::Auto | FinishedBy::Proctor => {
                    collected.push((r.participant.clone(), r.name.clone()))
                }
            }
        }
    }
    let test_title = spec
        .and_then(|sp| info.test(&sp.test))
        .map_or_else(|| info.manifest.title.clone(), |t| t.title.clone());
    let minutes = session.minutes.clone();
    let confirmed = minutes.as_ref().is_some_and(|m| m.confirmed_by.is_some());
    let post = format!("/admin/sesi/{skey}/berita-acara");
    let back = format!("/admin/sesi/{skey}");
    let zone = export::zone_name(offset);
    let day = spec.map_or_else(String::new, |sp| export::date_words(&sp.date));
    // The place is the TUK (its letterhead); a blank to fill in by hand until it is set.
    let place = if lh.name.trim().is_empty() {
        "TUK ..............................".to_string()
    } else {
        lh.name.clone()
    };
    let town = lh
        .address
        .split(',')
        .map(str::trim)
        .rfind(|p| !p.is_empty() && !p.chars().any(|c| c.is_ascii_digit()))
        .unwrap_or("")
        .to_string();
    let technician = minutes
        .as_ref()
        .and_then(|m| m.confirmed_by.as_deref())
        .and_then(|a| a.strip_prefix("staff:"))
        .filter(|n| {
            ex.users
                .get(*n)
                .is_some_and(|u| u.role == exam::Role::Admin)
        })
        .map(str::to_string);
    let markup = html! {
        main.sheet.minutes {
            (lh.html())
            div.sheethead {
                h1 { "BERITA ACARA PELAKSANAAN TES AKHIR" }
                p { strong { (test_title) } }
                p.small { (info.manifest.title) " · sesi " (skey) }
            }
            p {
                "Pada hari ini, " strong { (day) } ", bertempat di " strong { (place) }
                @if let Some(sp) = spec { ", ruang " strong { (sp.room) } ", pukul " (sp.start.replace(':', ".")) "–" (sp.end.replace(':', ".")) " " (zone) }
                ", telah dilaksanakan tes akhir " (test_title) " dengan keterangan sebagai berikut."
            }
            table.facts {
                tr { th { "Peserta terdaftar" } td { (rows.len()) } }
                tr { th { "Hadir" } td { (present) } }
                tr { th { "Tidak hadir" } td { (absent.len()) } }
                tr { th { "Yang tidak hadir" } td { (names_list(&absent)) } }
                tr { th { "Selesai (dikumpulkan sendiri)" } td { (finished) } }
                tr { th { "Dikumpulkan otomatis atau oleh pengawas" } td { (collected.len()) } }
                tr { th { "Yang dikumpulkan" } td { (names_list(&collected)) } }
                tr { th { "Pengawas" } td { (if session.proctors.is_empty() { "–".to_string() } else { session.proctors.join(", ") }) } }
            }
            h2 { "Kejadian selama tes" }
            @if list.is_empty() { p { "Tidak ada kejadian." } }
            ol.incidents { @for x in &list { li { (x.sentence) } } }
            h2 { "Catatan pengawas" }
            @if let Some(m) = minutes.as_ref().filter(|m| !m.notes.trim().is_empty()) {
                p.notes { (m.notes) }
            } @else {
                p { "Tidak ada catatan." }
            }
            @if let Some(m) = minutes.as_ref().filter(|_| confirmed) {
                p.small { "Dikonfirmasi oleh " (m.confirmed_by.as_deref().map(|a| actor_words(&Actor::parse(a), &|n| n.to_string())).unwrap_or_default()) " pada " (m.confirmed_ms.map(|t| format!("{}, pukul {}", export::day_words(t, offset), export::clock_words(t, offset))).unwrap_or_default()) "." }
            }
            p.noprint { "Unduh daftar kejadian: " a href="?format=xlsx" { "Excel (XLSX)" } " · " a href="?format=csv-excel" { "CSV untuk Excel" } " · " a href="?format=csv" { "CSV" } }
            p.place { (if town.is_empty() { "......................" } else { town.as_str() }) ", " (day) }
            // Names and NIPs: the staff accounts' (`/admin/pengguna`) and the letterhead's.
            div.signgrid {
                (super::print::staff_block(&ex, "Pengawas 1", session.proctors.first().map(String::as_str)))
                (super::print::staff_block(&ex, "Pengawas 2", session.proctors.get(1).map(String::as_str)))
                (super::print::staff_block(&ex, "Teknisi/Proktor", technician.as_deref()))
                (super::print::sign_block("Kepala TUK", Some(lh.head.as_str()), Some(lh.head_nip.as_str())))
            }
            @if !confirmed {
                form.noprint method="post" action=(post) {
                    (csrf_field(s))
                    label for="notes" { "Catatan pengawas" }
                    textarea #notes name="notes" rows="6" maxlength="10000" { (minutes.as_ref().map(|m| m.notes.as_str()).unwrap_or("")) }
                    button type="submit" name="confirm" value="0" { "Simpan" }
                    " "
                    button.primary type="submit" name="confirm" value="1" { "Simpan dan konfirmasi" }
                }
            }
        }
    };
    Ok(http::html(
        StatusCode::OK,
        super::print::frame(&back).page("Berita acara", markup),
    ))
}

pub(crate) async fn save(
    app: &App,
    req: &Req,
    s: &Staff,
    skey: &SessionKey,
) -> Result<Resp, Refusal> {
    if !may_see(&app.read(), s, skey) {
        return Err(Refused::Forbidden.into());
    }
    let f = req.form();
    let notes = f
        .get("notes")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let confirm = f
        .get("confirm")
        .and_then(|v| v.first())
        .is_some_and(|v| v == "1");
    let actor = Actor::Staff(s.name.clone());
    let k = skey.clone();
    commit_change(app, move |ex: &mut Exam| {
        match ex.save_minutes(&k, &notes, confirm, &actor, now_ms()) {
            Ok(p) => (p, Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        }
    })
    .await?;
    Ok(http::redirect(&format!("/admin/sesi/{skey}/berita-acara")))
}

/// The event log of one chain, newest last, with a button that re-verifies the chain.
pub(crate) fn log_page(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
    let chain = req
        .query_param("chain")
        .unwrap_or_else(|| events::TUK_CHAIN.to_string());
    {
        let ex = app.read();
        let allowed = if chain == events::TUK_CHAIN {
            s.role == exam::Role::Admin
        } else {
            may_see(&ex, s, &chain)
        };
        if !allowed {
            return Err(Refused::Forbidden.into());
        }
    }
    let evs = chain_events(app, &chain).map_err(|_| Refused::StoreFailed)?;
    let verdict = req.query_param("verify").map(|_| {
        match events::verify_chain(&chain, evs.iter().map(|(_, b)| b.as_slice())) {
            Ok(head) => (
                true,
                format!(
                    "Rantai utuh: {} kejadian, hash terakhir {}",
                    evs.len(),
                    &head[..16]
                ),
            ),
            Err(e) => (false, format!("RANTAI RUSAK: {e}")),
        }
    });
    let chains: Vec<String> = {
        let ex = app.read();
        std::iter::once(events::TUK_CHAIN.to_string())
            .chain(
                ex.sessions
                    .keys()
                    .filter(|k| may_see(&ex, s, k))
                    .map(|k| k.to_string()),
            )
            .collect()
    };
    // Times in the time zone of the chain's package (the TUK chain: that of any package).
    let off = {
        let ex = app.read();
        let pkg = ex.sessions.get(chain.as_str()).map(|s| s.package.clone());
        pkg.and_then(|p| ex.catalog.get(&p).map(|i| i.offset_s()))
            .or_else(|| ex.catalog.values().next().map(|i| i.offset_s()))
            .unwrap_or(7 * 3600)
    };
    let zone = export::zone_name(off);
    if let Some(d) = req
        .query_param("format")
        .as_deref()
        .and_then(Dialect::from_format)
    {
        let table = TypedTable {
            columns: vec![
                Column::int("seq", "No. urut"),
                Column::time("time", "Waktu"),
                Column::text("kind", "Jenis (teknis)"),
                Column::text("event", "Kejadian"),
                Column::text("actor", "Pelaku (teknis)"),
                Column::text("data", "Data (teknis)"),
            ],
            rows: evs
                .iter()
                .map(|(e, _)| {
                    let (kind, data) = e.event.parts();
                    vec![
                        e.seq.to_string(),
                        local(e.at_ms, off),
                        kind,
                        kind_label(&e.event).into_owned(),
                        e.actor.to_string(),
                        data.to_string(),
                    ]
                })
                .collect(),
        };
        return super::print::download(
            export::csv_as(&table, d),
            &export::file_name(&["log-kejadian", &chain], "csv"),
            "text/csv; charset=utf-8",
        );
    }
    let markup = html! {
        main.wide {
            form method="get" action="/admin/log" {
                select name="chain" { @for c in &chains { option selected[*c == chain] { (c) } } }
                button type="submit" { "Tampilkan" }
                button type="submit" name="verify" value="1" { "Periksa keutuhan rantai" }
            }
            p { "Unduh seluruh log (untuk teknisi): " a href={"/admin/log?chain=" (chain) "&format=csv"} { "CSV" } }
            @if let Some((ok, text)) = &verdict { p class=(if *ok { "ok" } else { "error" }) role="status" { (text) } }
            table.board {
                thead { tr { th { "#" } th { "Waktu (" (zone) ")" } th { "Kejadian" } th { "Oleh" } th { "Data (teknis)" } } }
                tbody {
                    @for (e, _) in evs.iter().rev().take(500) {
                        tr { td { (e.seq) } td.nowrap { (local(e.at_ms, off)) } td { (kind_label(&e.event)) } td { (actor_words(&e.actor, &|n| format!("peserta {n}"))) } td.small { (e.event.parts().1.to_string()) } }
                    }
                }
            }
        }
    };
    let label = html! { "Log kejadian: " (chain) };
    Ok(super::staff_page(
        s,
        CONSOLE_HOME,
        label,
        "Log kejadian",
        markup,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event kind has a name on the log page and goes through the minutes; the
    /// incidents are exactly the kinds the minutes report.
    #[test]
    fn every_event_kind_is_named_and_rendered() {
        let mut head = events::Head::default();
        let mut reported = Vec::new();
        for e in Event::examples() {
            assert!(!kind_label(&e).is_empty());
            let put = events::append(&mut head, "p/S1", 0, Actor::Staff("budi".into()), e.clone());
            let bytes = put.written().unwrap_or_default().to_vec();
            let r: Record = serde_json::from_slice(&bytes).unwrap();
            let list = incidents_with(&[(r, bytes)], 7 * 3600, &|_| "Ani".to_string());
            if let Some(x) = list.first() {
                assert!(x.sentence.starts_with("Pukul "), "{}", x.sentence);
                reported.push(e.kind());
            }
        }
        assert_eq!(
            reported,
            [
                "login_locked",
                "login_refused_active_elsewhere",
                "force_finish",
                "session_open",
                "pause",
                "resume_session",
                "session_close",
                "reset_login",
                "time_credit",
                "downtime_credit",
                "clock_step",
                "reopen_sealed",
                "reseal",
                "from_the_future"
            ]
        );
    }
}

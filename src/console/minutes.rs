//! The minutes (*berita acara*) of a session and the event log viewer.
//!
//! The minutes are generated from the session's hash-chained event log — date, room,
//! proctors, counts, and every incident with its time and reason — so nobody retypes what
//! the log already knows; the proctor adds free text and confirms.

use hyper::StatusCode;
use maud::{Markup, html};

use super::{Staff, csrf_field, may_see, visible_session};
use crate::app::App;
use crate::clock::{local, now_ms};
use crate::exam::events::{self, Event};
use crate::exam::{self, AttemptStatus, Exam, FinishedBy, PackageInfo, Refusal};
use crate::export::{self, Column, Dialect, Table};
use crate::server::change;
use crate::server::http::{self, Req, Resp};
use crate::server::participant::page as layout;
use crate::store::Table as T;

/// Indonesian name of an event kind, for the event log page and its CSV (a kind without a
/// name yet is shown with spaces for underscores).
pub fn kind_label(kind: &str) -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed(match kind {
        "session_open" => "Sesi dibuka",
        "pause" => "Tes dihentikan sementara",
        "resume_session" => "Tes dilanjutkan",
        "reset_login" => "Pindah PC (login diatur ulang)",
        "time_credit" => "Penambahan waktu",
        "force_finish" => "Dikumpulkan oleh pengawas",
        "force_finish_reason" => "Alasan pengumpulan oleh pengawas",
        "downtime_credit" => "Server mati; waktu dikembalikan otomatis",
        "clock_step" => "Jam server disetel; batas waktu digeser sama besar",
        "login_locked" => "Login dikunci (kata sandi salah berkali-kali)",
        "login_refused_active_elsewhere" => "Login ditolak: masih aktif di komputer lain",
        "session_close" => "Sesi ditutup",
        "login" => "Login peserta",
        "start" => "Mulai mengerjakan",
        "resume" => "Melanjutkan pekerjaan",
        "answer" => "Jawaban disimpan",
        "finish" => "Selesai (dikumpulkan peserta)",
        "auto_submit" => "Dikumpulkan otomatis (waktu habis)",
        "token_rotated" => "Token diganti",
        "attendance" => "Kehadiran dicatat",
        "proctor_assign" => "Penugasan pengawas",
        "minutes_saved" => "Berita acara disimpan",
        "minutes_confirmed" => "Berita acara dikonfirmasi",
        "questionnaire" => "Angket dikirim",
        "package_import" => "Paket diimpor",
        "trust_add" => "Kunci UPT dipercaya",
        "user_add" => "Akun staf dibuat",
        "staff_login" => "Staf masuk",
        "staff_logout" => "Staf keluar",
        "seal" => "Hasil disegel",
        "reseal" => "Segel ulang (bundel sebelumnya digantikan)",
        "reopen_sealed" => "Sesi yang sudah disegel dibuka kembali",
        "receipt" => "Tanda terima UPT disimpan",
        "purge" => "Data dihapus setelah tanda terima",
        other => return std::borrow::Cow::Owned(other.replace('_', " ")),
    })
}

/// The stored events of one chain, in order.
pub fn chain_events(app: &App, chain: &str) -> anyhow::Result<Vec<(Event, Vec<u8>)>> {
    let prefix = format!("{chain}\u{1f}");
    app.store
        .scan_prefix(T::Events, &prefix)?
        .into_iter()
        .map(|(_, v)| Ok((serde_json::from_slice(&v)?, v)))
        .collect()
}

/// Who did it, in words: a staff member's name, a participant's name and number, or
/// "sistem" for the server itself.
pub fn actor_words(actor: &str, who: &dyn Fn(&str) -> String) -> String {
    if let Some(n) = actor.strip_prefix("staff:") {
        n.to_string()
    } else if let Some(n) = actor.strip_prefix("participant:") {
        who(n)
    } else {
        "sistem (otomatis)".into()
    }
}

fn text<'a>(d: &'a serde_json::Value, k: &str) -> &'a str {
    d.get(k).and_then(|v| v.as_str()).unwrap_or("")
}

fn number_in_attempt(d: &serde_json::Value) -> String {
    text(d, "attempt")
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string()
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
fn incidents(ev: &[(Event, Vec<u8>)], info: &PackageInfo, session_id: &str) -> Vec<Incident> {
    let off = info.offset_s();
    let name_of = |n: &str| {
        info.participant(n, session_id)
            .map_or_else(String::new, |p| p.name.clone())
    };
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
        let d = &e.data;
        let at = export::clock_words(e.at_ms, off);
        let by = actor_words(&e.actor, &who);
        let reason = text(d, "reason");
        let because = if reason.is_empty() {
            String::new()
        } else {
            format!(" Alasan: {reason}.")
        };
        let mut one = |kind: &'static str, participant: &str, sentence: String| {
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
        match e.kind.as_str() {
            "session_open" => one(
                "Sesi dibuka",
                "",
                format!("Pukul {at} sesi dibuka oleh {by}."),
            ),
            "pause" => one(
                "Tes dihentikan sementara",
                "",
                format!(
                    "Pukul {at} tes dihentikan sementara oleh {by}; waktu peserta berhenti berjalan.{because}"
                ),
            ),
            "resume_session" => {
                let ms = d.get("paused_ms").and_then(|v| v.as_i64()).unwrap_or(0);
                one(
                    "Tes dilanjutkan",
                    "",
                    format!(
                        "Pukul {at} tes dilanjutkan oleh {by} setelah dihentikan selama {}; sisa waktu peserta tidak berkurang selama penghentian.",
                        export::minutes_words(ms)
                    ),
                )
            }
            "reset_login" => {
                let n = text(d, "participant");
                one(
                    "Pindah PC",
                    n,
                    format!(
                        "Pukul {at} {} pindah komputer; login diatur ulang oleh {by}, jawaban yang tersimpan tetap utuh.{because}",
                        who(n)
                    ),
                )
            }
            "time_credit" => {
                let names: Vec<String> = d
                    .get("participants")
                    .and_then(|v| v.as_array())
                    .map(|a| a.iter().filter_map(|x| x.as_str()).map(who).collect())
                    .unwrap_or_default();
                let m = d.get("minutes").and_then(|v| v.as_i64()).unwrap_or(0);
                let first = d
                    .get("participants")
                    .and_then(|v| v.as_array())
                    .filter(|a| a.len() == 1)
                    .and_then(|a| a.first())
                    .and_then(|x| x.as_str())
                    .unwrap_or("");
                one(
                    "Penambahan waktu",
                    first,
                    format!(
                        "Pukul {at} waktu {} ditambah {m} menit oleh {by}.{because}",
                        names.join(", ")
                    ),
                )
            }
            "force_finish" => {
                let n = number_in_attempt(d);
                // The reason of a single force-finish follows as its own event.
                let reason = ev
                    .get(i + 1)
                    .filter(|(x, _)| {
                        x.kind == "force_finish_reason" && text(&x.data, "participant") == n
                    })
                    .map(|(x, _)| text(&x.data, "reason").to_string());
                let closing = ev[i..]
                    .iter()
                    .take_while(|(x, _)| x.at_ms == e.at_ms)
                    .any(|(x, _)| x.kind == "session_close");
                let tail = match (reason, closing) {
                    (Some(r), _) if !r.is_empty() => format!(" Alasan: {r}."),
                    (_, true) => {
                        " karena sesi ditutup paksa saat peserta masih mengerjakan.".into()
                    }
                    _ => ".".into(),
                };
                let tail = if tail.starts_with(' ') && !tail.starts_with(" karena") {
                    format!(".{tail}")
                } else {
                    tail
                };
                one(
                    "Dikumpulkan oleh pengawas",
                    &n,
                    format!(
                        "Pukul {at} pekerjaan {} dikumpulkan oleh {by}{tail}",
                        who(&n)
                    ),
                )
            }
            "downtime_credit" => {
                let from = d
                    .get("down_from_ms")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(e.at_ms);
                let ms = d.get("credited_ms").and_then(|v| v.as_i64()).unwrap_or(0);
                let n = d
                    .get("participants")
                    .and_then(|v| v.as_array())
                    .map_or(0, |a| a.len());
                let gap = export::minutes_words(ms);
                one(
                    "Server mati",
                    "",
                    format!(
                        "Pukul {} server tidak dapat dihubungi selama {gap}; waktu seluruh peserta yang sedang mengerjakan ({n} orang) ditambah {gap} secara otomatis.",
                        export::clock_words(from, off)
                    ),
                )
            }
            "clock_step" => {
                let step = d.get("step_ms").and_then(|v| v.as_i64()).unwrap_or(0);
                let n = d
                    .get("participants")
                    .and_then(|v| v.as_array())
                    .map_or(0, |a| a.len());
                let dir = if step >= 0 { "maju" } else { "mundur" };
                one(
                    "Jam server disetel",
                    "",
                    format!(
                        "Pukul {at} (waktu yang sudah dibetulkan) jam server bergeser {dir} {}; batas waktu seluruh peserta yang sedang mengerjakan ({n} orang) digeser sama besar, sehingga tidak ada waktu yang hilang atau bertambah.",
                        export::minutes_words(step.abs())
                    ),
                )
            }
            "login_locked" => {
                let n = e.actor.strip_prefix("participant:").unwrap_or("");
                one(
                    "Login dikunci",
                    n,
                    format!(
                        "Pukul {at} login {} dikunci sementara karena kata sandi salah berkali-kali.",
                        who(n)
                    ),
                )
            }
            "login_refused_active_elsewhere" => {
                let n = e.actor.strip_prefix("participant:").unwrap_or("");
                one(
                    "Login ditolak",
                    n,
                    format!(
                        "Pukul {at} login {} dari komputer lain ditolak karena masih aktif di komputer sebelumnya.",
                        who(n)
                    ),
                )
            }
            "reopen_sealed" => one(
                "Dibuka kembali setelah disegel",
                "",
                format!(
                    "Pukul {at} sesi yang hasilnya sudah disegel dibuka kembali oleh {by}.{because}"
                ),
            ),
            "reseal" => one(
                "Segel ulang",
                "",
                format!(
                    "Pukul {at} hasil sesi disegel ulang oleh {by}; bundel sebelumnya ({}…) digantikan, keduanya tetap tercatat di log.",
                    &text(d, "superseded").chars().take(16).collect::<String>()
                ),
            ),
            "session_close" => {
                let forced = d.get("forced").and_then(|v| v.as_bool()).unwrap_or(false);
                one(
                    "Sesi ditutup",
                    "",
                    if forced {
                        format!("Pukul {at} sesi ditutup paksa oleh {by}.")
                    } else {
                        format!("Pukul {at} sesi ditutup oleh {by}.")
                    },
                )
            }
            _ => {}
        }
    }
    out
}

/// The incidents as a typed table (CSV/XLSX of the minutes).
fn incidents_table(list: &[Incident], off: i32) -> Table {
    Table {
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

/// A signature block: role, then the name and NIP when known, blank lines otherwise.
fn sign_block(role: &str, name: Option<&str>, nip: Option<&str>) -> Markup {
    let blank = "..................................";
    html! {
        div.signblock {
            p { (role) }
            div.space {}
            p { "( " (name.filter(|n| !n.trim().is_empty()).unwrap_or(blank)) " )" }
            p { "NIP. " (nip.filter(|n| !n.trim().is_empty()).unwrap_or("............................")) }
        }
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

pub fn page(app: &App, req: &Req, s: &Staff, skey: &str) -> Result<Resp, Refusal> {
    let events = chain_events(app, skey).map_err(|_| exam::STORE_FAILED)?;
    let lh = super::admin::letterhead(app);
    let ex = app.read();
    let session = visible_session(&ex, s, skey)?;
    let info = ex
        .package(&session.package)
        .map_err(|_| Refusal::new(404, "not_found"))?;
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
    let rows = super::board::rows(&ex, skey, info.offset_s());
    let absent: Vec<(String, String)> = rows
        .iter()
        .filter(|r| matches!(r.status, "not_arrived" | "absent"))
        .map(|r| (r.participant.clone(), r.name.clone()))
        .collect();
    let present = rows.len() - absent.len();
    let mut finished = 0;
    let mut collected: Vec<(String, String)> = Vec::new();
    for r in &rows {
        if let Some(a) = ex.attempts.get(&exam::attempt_key(skey, &r.participant))
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
        (super::print::print_bar(&back, true))
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
                p.small { "Dikonfirmasi oleh " (m.confirmed_by.as_deref().map(|a| actor_words(a, &|n| n.to_string())).unwrap_or_default()) " pada " (m.confirmed_ms.map(|t| format!("{}, pukul {}", export::day_words(t, offset), export::clock_words(t, offset))).unwrap_or_default()) "." }
            }
            p.noprint { "Unduh daftar kejadian: " a href="?format=xlsx" { "Excel (XLSX)" } " · " a href="?format=csv-excel" { "CSV untuk Excel" } " · " a href="?format=csv" { "CSV" } }
            p.place { (if town.is_empty() { "......................" } else { town.as_str() }) ", " (day) }
            div.signgrid {
                (sign_block("Pengawas 1", session.proctors.first().map(String::as_str), None))
                (sign_block("Pengawas 2", session.proctors.get(1).map(String::as_str), None))
                (sign_block("Teknisi/Proktor", technician.as_deref(), None))
                (sign_block("Kepala TUK", Some(lh.head.as_str()), Some(lh.head_nip.as_str())))
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
        layout(req, "Berita acara", markup),
    ))
}

pub async fn save(app: &App, req: &Req, s: &Staff, skey: &str) -> Result<Resp, Refusal> {
    if !may_see(&app.read(), s, skey) {
        return Err(exam::FORBIDDEN);
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
    let actor = format!("staff:{}", s.name);
    let k = skey.to_string();
    change(app, move |ex: &mut Exam| {
        match ex.save_minutes(&k, &notes, confirm, &actor, now_ms()) {
            Ok(p) => (p, Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        }
    })
    .await?;
    Ok(http::redirect(&format!("/admin/sesi/{skey}/berita-acara")))
}

/// The event log of one chain, newest last, with a button that re-verifies the chain.
pub fn log_page(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
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
            return Err(exam::FORBIDDEN);
        }
    }
    let evs = chain_events(app, &chain).map_err(|_| exam::STORE_FAILED)?;
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
            .chain(ex.sessions.keys().filter(|k| may_see(&ex, s, k)).cloned())
            .collect()
    };
    // Times in the time zone of the chain's package (the TUK chain: that of any package).
    let off = {
        let ex = app.read();
        let pkg = ex.sessions.get(&chain).map(|s| s.package.clone());
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
        let table = Table {
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
                    vec![
                        e.seq.to_string(),
                        local(e.at_ms, off),
                        e.kind.clone(),
                        kind_label(&e.kind).into_owned(),
                        e.actor.clone(),
                        e.data.to_string(),
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
        header.bar { a href="/admin" { "◀ Konsol" } span { "Log kejadian: " (chain) } }
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
                        tr { td { (e.seq) } td.nowrap { (local(e.at_ms, off)) } td { (kind_label(&e.kind)) } td { (actor_words(&e.actor, &|n| format!("peserta {n}"))) } td.small { (e.data.to_string()) } }
                    }
                }
            }
        }
    };
    Ok(http::html(
        StatusCode::OK,
        layout(req, "Log kejadian", markup),
    ))
}

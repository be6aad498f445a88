//! The minutes (*berita acara*) of a session and the event log viewer.
//!
//! The minutes are generated from the session's hash-chained event log — date, room,
//! proctors, counts, and every incident with its time and reason — so nobody retypes what
//! the log already knows; the proctor adds free text and confirms.

use hyper::StatusCode;
use maud::html;

use super::{Staff, csrf_field, may_see, visible_session};
use crate::app::App;
use crate::clock::{local, now_ms};
use crate::exam::events::{self, Event};
use crate::exam::{self, Exam, Refusal};
use crate::export::{self, Table};
use crate::server::change;
use crate::server::http::{self, Req, Resp};
use crate::server::participant::page as layout;
use crate::store::Table as T;

/// Event kinds that are incidents in the minutes, with their Indonesian label.
fn incident_label(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "session_open" => "Sesi dibuka",
        "pause" => "Sesi dihentikan sementara",
        "resume_session" => "Sesi dilanjutkan",
        "reset_login" => "Peserta pindah komputer (reset login)",
        "time_credit" => "Penambahan waktu",
        "force_finish" => "Dikumpulkan oleh pengawas",
        "force_finish_reason" => "Diselesaikan oleh pengawas",
        "downtime_credit" => "Server mati; waktu dikembalikan otomatis",
        "login_locked" => "Login dikunci (terlalu banyak salah)",
        "login_refused_active_elsewhere" => "Login ditolak: sedang aktif di komputer lain",
        "session_close" => "Sesi ditutup",
        _ => return None,
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

fn incidents(ev: &[(Event, Vec<u8>)], offset: i32) -> Table {
    Table {
        columns: vec!["time", "incident", "by", "details"],
        rows: ev
            .iter()
            .filter_map(|(e, _)| {
                incident_label(&e.kind).map(|label| {
                    let d = &e.data;
                    let mut details = Vec::new();
                    for k in [
                        "participant",
                        "participants",
                        "minutes",
                        "reason",
                        "credited_ms",
                        "paused_ms",
                        "forced",
                    ] {
                        if let Some(v) = d.get(k) {
                            details.push(format!("{k}: {}", v.to_string().trim_matches('"')));
                        }
                    }
                    vec![
                        local(e.at_ms, offset),
                        label.to_string(),
                        e.actor.clone(),
                        details.join("; "),
                    ]
                })
            })
            .collect(),
    }
}

pub fn page(app: &App, req: &Req, s: &Staff, skey: &str) -> Result<Resp, Refusal> {
    let events = chain_events(app, skey).map_err(|_| exam::STORE_FAILED)?;
    let ex = app.read();
    let session = visible_session(&ex, s, skey)?;
    let info = ex
        .package(&session.package)
        .map_err(|_| Refusal::new(404, "not_found"))?;
    let spec = info.manifest.sessions.iter().find(|x| x.id == session.id);
    let offset = info.offset_s();
    let table = incidents(&events, offset);
    match req.query_param("format").as_deref() {
        Some("csv") => {
            return Ok(http::response(
                StatusCode::OK,
                "text/csv; charset=utf-8",
                export::csv(&table).map_err(|_| exam::STORE_FAILED)?,
            ));
        }
        Some("xlsx") => {
            return Ok(http::response(
                StatusCode::OK,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                export::xlsx(&table, "berita-acara").map_err(|_| exam::STORE_FAILED)?,
            ));
        }
        _ => {}
    }
    let rows = super::board::rows(&ex, skey);
    let count = |st: &[&str]| rows.iter().filter(|r| st.contains(&r.status)).count();
    let present = rows.len() - count(&["not_arrived", "absent"]);
    let minutes = session.minutes.clone();
    let confirmed = minutes.as_ref().is_some_and(|m| m.confirmed_by.is_some());
    let post = format!("/admin/sesi/{skey}/berita-acara");
    let markup = html! {
        main.sheet {
            div.sheethead {
                h1 { "BERITA ACARA PELAKSANAAN TES AKHIR" }
                p { (info.header.upt) }
                p { (info.manifest.title) }
            }
            table.facts {
                tr { th { "Sesi" } td { (skey) } }
                @if let Some(sp) = spec {
                    tr { th { "Tanggal / waktu" } td { (sp.date) " " (sp.start) "–" (sp.end) } }
                    tr { th { "Ruang" } td { (sp.room) } }
                }
                tr { th { "Pengawas" } td { (session.proctors.join(", ")) } }
                tr { th { "Peserta terdaftar" } td { (rows.len()) } }
                tr { th { "Hadir" } td { (present) } }
                tr { th { "Tidak hadir" } td { (rows.len() - present) } }
                tr { th { "Selesai" } td { (count(&["finished"])) } }
                tr { th { "Dikumpulkan otomatis" } td { (count(&["auto_submitted"])) } }
            }
            h2 { "Kejadian selama tes" }
            p.noprint { a href="?format=csv" { "CSV" } " · " a href="?format=xlsx" { "XLSX" } }
            @if table.rows.is_empty() { p { "Tidak ada kejadian." } }
            table.print {
                thead { tr { th { "Waktu" } th { "Kejadian" } th { "Oleh" } th { "Keterangan" } } }
                tbody { @for r in &table.rows { tr { @for c in r { td { (c) } } } } }
            }
            h2 { "Catatan pengawas" }
            @if confirmed {
                @if let Some(m) = &minutes {
                    p.notes { (m.notes) }
                    p { "Dikonfirmasi oleh " (m.confirmed_by.clone().unwrap_or_default()) " pada " (m.confirmed_ms.map(|t| local(t, offset)).unwrap_or_default()) }
                }
                div.signs { p { "Pengawas," } p.signline { "(.................................)" } }
            } @else {
                form.noprint method="post" action=(post) {
                    (csrf_field(s))
                    textarea name="notes" rows="6" maxlength="10000" { (minutes.as_ref().map(|m| m.notes.as_str()).unwrap_or("")) }
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
    let markup = html! {
        header.bar { a href="/admin" { "◀ Konsol" } span { "Log kejadian: " (chain) } }
        main.wide {
            form method="get" action="/admin/log" {
                select name="chain" { @for c in &chains { option selected[*c == chain] { (c) } } }
                button type="submit" { "Tampilkan" }
                button type="submit" name="verify" value="1" { "Periksa keutuhan rantai" }
            }
            @if let Some((ok, text)) = &verdict { p class=(if *ok { "ok" } else { "error" }) role="status" { (text) } }
            table.board {
                thead { tr { th { "#" } th { "Waktu (UTC)" } th { "Jenis" } th { "Oleh" } th { "Data" } } }
                tbody {
                    @for (e, _) in evs.iter().rev().take(500) {
                        tr { td { (e.seq) } td { (crate::clock::rfc3339(e.at_ms)) } td { (e.kind) } td { (e.actor) } td.small { (e.data.to_string()) } }
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

//! The proctor and technician console under `/admin`: staff login, the session list, the
//! live board and the proctor's actions. Plain forms that work without JavaScript; every
//! state-changing form carries a per-login CSRF token; every action goes through the
//! exam's rules (`exam::proctor`) and lands in the session's event log.

mod actions;
mod admin;
mod board;
mod minutes;
mod print;
mod results;

use std::collections::HashMap;

use hyper::{Method, StatusCode};
use maud::{Markup, html};

use crate::app::App;
use crate::clock::now_ms;
use crate::exam::events::{Actor, Event};
use crate::exam::proctor::ProctorAction;
use crate::exam::{self, Exam, ParticipantNo, Refused, Role, SessionKey, Who, secrets};
use crate::server::Refusal;
use crate::server::http::{self, Req, Resp, STAFF_COOKIE};
use crate::server::i18n::{Lang, msg};
use crate::server::shell::{self, Area, Bar, Frame};
use crate::server::{Staff, commit_change, staff, status_of};

/// Staff cookies last a working day.
const STAFF_COOKIE_MAX_AGE_S: u64 = 12 * 3600;

pub(crate) async fn route(app: &App, req: &Req, segs: &[&str]) -> Resp {
    let r = match (&req.method, segs) {
        (&Method::POST, ["masuk"]) => Ok(login(app, req).await),
        (&Method::GET, []) => match staff(app, req) {
            Some(s) => Ok(sessions_page(app, &s)),
            None => Ok(login_page(None, StatusCode::OK)),
        },
        (_, rest) => match staff(app, req) {
            None => Ok(http::redirect("/admin")),
            Some(s) => authed(app, req, &s, rest).await,
        },
    };
    r.unwrap_or_else(error_page)
}

async fn authed(app: &App, req: &Req, s: &Staff, segs: &[&str]) -> Result<Resp, Refusal> {
    if req.method == Method::POST && !csrf_ok(req, s) {
        return Err(crate::server::refusal::CSRF);
    }
    match (&req.method, segs) {
        (&Method::POST, ["keluar"]) => Ok(logout(app, req).await),
        (&Method::GET, ["sesi", pkg, sid]) => board::page(app, req, s, &SessionKey::of(pkg, sid)),
        (&Method::GET, ["sesi", pkg, sid, "token"]) => {
            board::token_page(app, s, &SessionKey::of(pkg, sid))
        }
        (&Method::POST, ["sesi", pkg, sid, "segel"]) => {
            results::seal(app, req, s, &SessionKey::of(pkg, sid))
        }
        (&Method::GET, ["sesi", pkg, sid, "hasil.tukres"]) => {
            results::download(app, s, &SessionKey::of(pkg, sid))
        }
        (&Method::POST, ["sesi", pkg, sid, "unggah"]) => {
            results::upload(app, req, s, &SessionKey::of(pkg, sid))
        }
        (&Method::GET, ["sesi", pkg, sid, "events"]) => {
            board::events(app, req, s, &SessionKey::of(pkg, sid))
        }
        (&Method::GET, ["sesi", pkg, sid, "board.json"]) => {
            board::json(app, s, &SessionKey::of(pkg, sid))
        }
        (&Method::POST, ["sesi", pkg, sid, "aksi"]) => {
            action(app, req, s, &SessionKey::of(pkg, sid)).await
        }
        (&Method::GET, ["sesi", pkg, sid, "aksi"]) => {
            let v: HashMap<String, String> = form_urlencoded::parse(req.query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            actions::action_page(app, s, &SessionKey::of(pkg, sid), &v)
        }
        (&Method::GET, ["sesi", pkg, sid, "peserta", number]) => actions::participant_page(
            app,
            req,
            s,
            &SessionKey::of(pkg, sid),
            &ParticipantNo::new(*number),
        ),
        (&Method::GET, ["sesi", pkg, sid, "kartu"]) => {
            print::sheet(app, req, s, &SessionKey::of(pkg, sid), print::Sheet::Cards)
        }
        (&Method::GET, ["sesi", pkg, sid, "hadir"]) => print::sheet(
            app,
            req,
            s,
            &SessionKey::of(pkg, sid),
            print::Sheet::Attendance,
        ),
        (&Method::GET, ["sesi", pkg, sid, "nilai"]) => {
            print::sheet(app, req, s, &SessionKey::of(pkg, sid), print::Sheet::Scores)
        }
        (&Method::GET, ["sesi", pkg, sid, "berita-acara"]) => {
            minutes::page(app, req, s, &SessionKey::of(pkg, sid))
        }
        (&Method::POST, ["sesi", pkg, sid, "berita-acara"]) => {
            minutes::save(app, req, s, &SessionKey::of(pkg, sid)).await
        }
        (&Method::GET, ["log"]) => minutes::log_page(app, req, s),
        (&Method::GET, ["impor"]) => admin::import_page(s, None),
        (&Method::POST, ["impor"]) => admin::upload(app, req, s).await,
        (&Method::POST, ["impor", "konfirmasi"]) => admin::confirm(app, req, s).await,
        (&Method::GET, ["pengguna"]) => admin::users_page(app, s, None),
        (&Method::POST, ["pengguna"]) => admin::add_user(app, req, s).await,
        (&Method::POST, ["pengguna", "identitas"]) => admin::set_identity(app, req, s).await,
        (&Method::GET, ["kesehatan"]) => admin::health_page(app, s),
        (&Method::GET, ["kop"]) => admin::letterhead_page(app, s, None),
        (&Method::POST, ["kop"]) => admin::save_letterhead(app, req, s),
        (&Method::GET, ["cetak.css"]) => {
            Ok(print::asset("text/css; charset=utf-8", print::PRINT_CSS))
        }
        (&Method::GET, ["cetak.js"]) => Ok(print::asset(
            "text/javascript; charset=utf-8",
            print::PRINT_JS,
        )),
        _ => Err(crate::server::refusal::NOT_FOUND),
    }
}

/// The token comes in the form body, or in the query for file uploads (multipart).
fn csrf_ok(req: &Req, s: &Staff) -> bool {
    let f = req.form();
    let token = f
        .get("csrf")
        .and_then(|v| v.first().cloned())
        .or_else(|| req.query_param("csrf"));
    token.is_some_and(|t| t == s.csrf)
}

/// May this staff member act on this session? Admins on all; proctors on theirs.
pub(crate) fn may_see(ex: &Exam, s: &Staff, skey: &str) -> bool {
    s.role == Role::Admin
        || ex
            .sessions
            .get(skey)
            .is_some_and(|x| x.proctors.iter().any(|p| p == &s.name))
}

/// The session `skey`, if this staff member may see it: 403 when not, 404 when there is
/// no such session.
pub(crate) fn visible_session<'a>(
    ex: &'a Exam,
    s: &Staff,
    skey: &SessionKey,
) -> Result<&'a exam::Session, Refusal> {
    if !may_see(ex, s, skey) {
        return Err(Refused::Forbidden.into());
    }
    ex.sessions
        .get(skey)
        .ok_or(crate::server::refusal::NOT_FOUND)
}

/// The frame of a console page without a staff bar (the login, the error page, the
/// projector's token page): Indonesian, like every console page.
fn frame() -> Frame<'static> {
    Frame::new(Area::Console, Lang::Id)
}

/// The frame of a console page for a logged-in staff member: a way back (`href`, label),
/// what the page is, and who is logged in with the logout.
fn staff_frame<'a>(s: &'a Staff, back: (&'a str, &'a str), label: Markup) -> Frame<'a> {
    frame().bar(Bar::staff(s, back, label))
}

/// A console page for a logged-in staff member (200): the staff bar with a way back and
/// the page's `label`, then `body`.
fn staff_page(
    s: &Staff,
    back: (&str, &str),
    label: impl maud::Render,
    title: &str,
    body: Markup,
) -> Resp {
    let label = html! { (label) };
    http::html(
        StatusCode::OK,
        staff_frame(s, back, label).page(title, body),
    )
}

fn error_page(r: Refusal) -> Resp {
    shell::refusal_page(frame(), r, "/admin")
}

fn login_page(error: Option<&str>, status: StatusCode) -> Resp {
    let login = shell::Login {
        heading: "Masuk Pengawas / Admin",
        error: error.map(|code| msg(Lang::Id, code)),
        action: "/admin/masuk",
        hint: html! {},
    };
    shell::login_page(frame(), status, login)
}

async fn login(app: &App, req: &Req) -> Resp {
    let (user, password) = (
        req.form_field("user").trim().to_string(),
        req.form_field("password"),
    );
    let key = format!("staff:{user}");
    let ip = req.ip_string();
    let (phc, guard) = {
        let ex = app.read();
        (
            ex.users.get(&user).map(|u| u.phc.clone()),
            ex.logins.clone(),
        )
    };
    // The shared login routine: a wrong password locks this address for this account,
    // never the account for everyone (docs/security.md).
    let checked = crate::auth::check_password(
        &guard,
        &app.hash_slots,
        &key,
        &ip,
        phc,
        staff_decoy(),
        password,
    )
    .await;
    match checked {
        Ok(()) => {}
        Err(crate::auth::LoginRefused::Locked) => {
            return login_page(Some("login_locked"), StatusCode::TOO_MANY_REQUESTS);
        }
        Err(crate::auth::LoginRefused::Unavailable) => {
            return login_page(Some("store_failed"), StatusCode::SERVICE_UNAVAILABLE);
        }
        Err(crate::auth::LoginRefused::Wrong { pair_locked, .. }) => {
            if pair_locked {
                let (k, ip) = (user.clone(), ip.clone());
                let _ = commit_change(app, move |ex: &mut Exam| {
                    let ev = Event::LoginLocked { ip, failures: None };
                    let ev = ex.log(exam::events::TUK_CHAIN, now_ms(), Actor::Staff(k), ev);
                    (vec![ev], Ok(()))
                })
                .await;
            }
            return login_page(Some("bad_login"), StatusCode::UNAUTHORIZED);
        }
    }
    let (Ok(cookie), Ok(csrf)) = (secrets::new_cookie(), secrets::new_cookie()) else {
        return login_page(Some("store_failed"), StatusCode::SERVICE_UNAVAILABLE);
    };
    let id = secrets::cookie_id(&cookie);
    let r = commit_change(app, move |ex: &mut Exam| {
        let now = now_ms();
        let ws = exam::WebSession {
            who: Who::Staff {
                user: user.clone(),
                csrf,
            },
            created_ms: now,
            ip: ip.clone(),
            bad_tokens: 0,
        };
        let put = crate::store::Put::json(crate::store::Table::WebSessions, id.clone(), &ws);
        ex.web.insert(id, ws);
        let ev = Event::StaffLogin { ip: ip.clone() };
        let ev = ex.log(exam::events::TUK_CHAIN, now, Actor::Staff(user), ev);
        (vec![put, ev], Ok(()))
    })
    .await;
    match r {
        Ok(()) => {
            let mut resp = http::redirect("/admin");
            http::set_cookie(&mut resp, STAFF_COOKIE, &cookie, STAFF_COOKIE_MAX_AGE_S);
            resp
        }
        Err(e) => {
            let e = Refusal::from(e);
            login_page(Some(e.code), status_of(e))
        }
    }
}

async fn logout(app: &App, req: &Req) -> Resp {
    if let Some(c) = req.cookie(STAFF_COOKIE) {
        let id = secrets::cookie_id(&c);
        let _ = commit_change(app, move |ex: &mut Exam| {
            ex.web.remove(&id);
            (
                vec![crate::store::Put::delete(
                    crate::store::Table::WebSessions,
                    id,
                )],
                Ok(()),
            )
        })
        .await;
    }
    let mut r = http::redirect("/admin");
    http::clear_cookie(&mut r, STAFF_COOKIE);
    r
}

/// A staff-cost hash to check unknown user names against.
fn staff_decoy() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| {
        secrets::hash_password("not-a-password", secrets::staff_params()).unwrap_or_default()
    })
}

fn csrf_field(s: &Staff) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// The one-shot "done" line after an action: a short-lived cookie the next console page
/// shows once and clears (the redirect's location stays the plain board address).
const FLASH_COOKIE: &str = "tuk_flash";

fn set_flash(r: &mut Resp, text: &str) {
    let v: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
    let v = format!("{FLASH_COOKIE}={v}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=60");
    if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
        r.headers_mut().append(hyper::header::SET_COOKIE, v);
    }
}

/// The pending success line of this request, if any (at most 300 characters).
fn take_flash(req: &Req) -> Option<String> {
    let raw = req.cookie(FLASH_COOKIE)?;
    let text: String = form_urlencoded::parse(format!("f={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.chars().take(300).collect())?;
    (!text.trim().is_empty()).then_some(text)
}

fn clear_flash(r: &mut Resp) {
    let v = format!("{FLASH_COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
        r.headers_mut().append(hyper::header::SET_COOKIE, v);
    }
}

fn sessions_page(app: &App, s: &Staff) -> Resp {
    let ex = app.read();
    let visible: Vec<_> = ex
        .sessions
        .values()
        .filter(|x| may_see(&ex, s, &x.key))
        .collect();
    let bar = Bar::Staff {
        back: None,
        label: None,
        tools: None,
        who: shell::Who::console(s),
    };
    http::html(
        StatusCode::OK,
        frame().bar(bar).page(
            "Konsol",
            html! {
                main.wide {
                    @if s.role == Role::Admin {
                        nav.menu {
                            a href="/admin/impor" { "Impor paket" } " · "
                            a href="/admin/pengguna" { "Akun" } " · "
                            a href="/admin/kesehatan" { "Kesehatan server" } " · "
                            a href="/admin/kop" { "Kop surat" } " · "
                            a href="/admin/log" { "Log kejadian" }
                        }
                    }
                    h1 { "Sesi ujian" }
                    @if visible.is_empty() { p { "Belum ada sesi untuk Anda. Admin mengimpor paket dan menugaskan pengawas." } }
                    table.board {
                        thead { tr { th { "Sesi" } th { "Tes" } th { "Jadwal" } th { "Ruang" } th { "Status" } th { "Peserta" } } }
                        tbody {
                            @for x in &visible {
                                @let info = ex.catalog.get(&x.package);
                                @let spec = info.and_then(|i| i.manifest.sessions.iter().find(|y| y.id == x.id));
                                tr {
                                    @let title = spec.and_then(|y| info.and_then(|i| i.test(&y.test))).map(|t| t.title.as_str());
                                    td { a href={"/admin/sesi/" (x.key)} { (spec.map_or(x.key.as_str(), |y| y.room.as_str())) } br; span.small.mono { (x.key) } }
                                    td { (title.unwrap_or("")) br; span.small.mono { (spec.map(|y| y.test.as_str()).unwrap_or("")) } }
                                    td { @if let Some(y) = spec { (crate::export::date_words(&y.date)) ", " (y.start.replace(':', ".")) "–" (y.end.replace(':', ".")) } }
                                    td { (spec.map(|y| y.room.as_str()).unwrap_or("")) }
                                    td {
                                        (board::status_word(&x.status))
                                        @if matches!(x.status, exam::SessionStatus::Closed { .. }) && board::sealed_count(&app.store, &x.key) > 0 { ", disegel" }
                                    }
                                    td { (info.map_or(0, |i| i.roster.iter().filter(|p| p.session == x.id).count())) }
                                }
                            }
                        }
                    }
                }
            },
        ),
    )
}

/// The board's action form (`do` names the action, the other fields are its arguments) as
/// a [`ProctorAction`]; `None` for an unknown `do`. Opening (`do=open`) is handled apart.
fn parse_action(what: &str, get: &dyn Fn(&str) -> String) -> Option<ProctorAction> {
    let participant = ParticipantNo::new(get("participant").trim());
    let reason = get("reason");
    let minutes: i64 = get("minutes").trim().parse().unwrap_or(0);
    Some(match what {
        "pause" => ProctorAction::Pause { reason },
        "resume" => ProctorAction::Resume,
        "close" => ProctorAction::Close { force: false },
        "close_force" => ProctorAction::Close { force: true },
        "reset" => ProctorAction::ResetLogin {
            participant,
            reason,
        },
        "time" => ProctorAction::AddTime {
            participant: Some(participant),
            minutes,
            reason,
        },
        "time_all" => ProctorAction::AddTime {
            participant: None,
            minutes,
            reason,
        },
        "finish" => ProctorAction::ForceFinish {
            participant,
            reason,
        },
        "present" | "absent" => ProctorAction::Attendance {
            participant,
            present: what == "present",
        },
        "unlock" => ProctorAction::UnlockLogin { ip: get("ip") },
        "assign" | "unassign" => ProctorAction::AssignProctor {
            proctor: get("proctor"),
            assign: what == "assign",
        },
        _ => return None,
    })
}

/// One form, one action: `do` names it, the rest are its arguments. A consequential
/// action (`actions::needs_confirm`) without `confirmed=1` only shows its confirmation
/// page; done, it returns to the board (or the participant's page, `back=peserta`) with a
/// success line; refused, it says why in the proctor's words.
async fn action(app: &App, req: &Req, s: &Staff, skey: &SessionKey) -> Result<Resp, Refusal> {
    if !may_see(&app.read(), s, skey) {
        return Err(Refused::Forbidden.into());
    }
    let f: HashMap<String, String> = req
        .form()
        .into_iter()
        .filter_map(|(k, v)| v.into_iter().next().map(|v| (k, v)))
        .collect();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let what = get("do");
    if actions::needs_confirm(&what) && get("confirmed") != "1" {
        return actions::action_page(app, s, skey, &f);
    }
    let actor = Actor::Staff(s.name.clone());
    let number = ParticipantNo::new(get("participant").trim());
    let back_to = if get("back") == "peserta" && !number.is_empty() {
        format!("/admin/sesi/{skey}/peserta/{number}")
    } else {
        format!("/admin/sesi/{skey}")
    };
    let refused = |e: Refusal| Ok(actions::refused_page(skey, &number, e));
    if what == "open" {
        let sealed = board::sealed_count(&app.store, skey) > 0;
        let reason = get("reason");
        if sealed {
            // A sealed session re-opens only on an admin's stated reason (issue 13).
            if s.role != Role::Admin {
                return refused(Refused::SessionSealed.into());
            }
            let r = reason.trim();
            if r.is_empty() || r.chars().count() > 200 {
                return refused(Refused::ReasonRequired.into());
            }
        }
        let code = Some(get("release_code")).filter(|c| !c.trim().is_empty());
        let app_key = skey.to_string();
        let minutes: u64 = get("rotate_minutes").trim().parse().unwrap_or(15).min(240);
        // Unlocking the bank (scrypt for a release code) takes a second: off the workers.
        let opened = tokio::task::block_in_place(|| {
            app.open_session(&app_key, code.as_deref(), minutes * 60, &actor)
        });
        match opened {
            Ok(Ok(())) => {}
            Ok(Err(r)) => return refused(r.into()),
            Err(e) => {
                tracing::warn!("open {skey}: {e:#}");
                return refused(crate::server::refusal::RELEASE_CODE_WRONG);
            }
        }
        let mut line = "Berhasil: sesi dibuka; token tampil di papan.".to_string();
        if sealed {
            let (k, a, r) = (skey.clone(), actor.clone(), reason.trim().to_string());
            let by = s.name.clone();
            commit_change(app, move |ex: &mut Exam| {
                let now = now_ms();
                let mut puts = Vec::new();
                if let Some(x) = ex.sessions.get_mut(&k) {
                    x.reopened_after_seal = Some(exam::Reopen {
                        by: by.clone(),
                        at_ms: now,
                        reason: r.clone(),
                    });
                    puts.push(crate::store::Put::json(
                        crate::store::Table::Sessions,
                        k.clone(),
                        &*x,
                    ));
                }
                puts.push(ex.log(&k, now, a, Event::ReopenSealed { reason: r }));
                (puts, Ok(()))
            })
            .await?;
            line = "Berhasil: sesi yang sudah disegel dibuka kembali; alasan dicatat di log dan berita acara. Segel ulang setelah sesi ditutup.".into();
        }
        let mut r = http::redirect(&back_to);
        set_flash(&mut r, &line);
        return Ok(r);
    }
    let skey_for_writer = skey.clone();
    let act = parse_action(&what, &get).ok_or(Refused::InvalidInput)?;
    if matches!(act, ProctorAction::AssignProctor { .. }) && s.role != Role::Admin {
        return Err(Refused::InvalidInput.into());
    }
    let minutes: i64 = get("minutes").trim().parse().unwrap_or(0);
    let number_for_writer = number.clone();
    let done = commit_change(app, move |ex: &mut Exam| {
        // Counted before the action changes them.
        let line = actions::success_line(ex, &skey_for_writer, &what, &number_for_writer, minutes);
        match ex.proctor_action(&skey_for_writer, act, actor, now_ms()) {
            Ok(p) => (p, Ok(line)),
            Err(e) => (Vec::new(), Err(e)),
        }
    })
    .await;
    match done {
        Ok(line) => {
            let mut r = http::redirect(&back_to);
            set_flash(&mut r, &line);
            Ok(r)
        }
        Err(Refused::Forbidden) => Err(Refused::Forbidden.into()),
        Err(e) => refused(e.into()),
    }
}

//! The proctor and technician console under `/admin`: staff login, the session list, the
//! live board and the proctor's actions. Plain forms that work without JavaScript; every
//! state-changing form carries a per-login CSRF token; every action goes through the
//! exam's rules (`exam::proctor`) and lands in the session's event log.

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
use crate::exam::{self, Exam, Refusal, Role, Who, secrets};
use crate::server::http::{self, Req, Resp, STAFF_COOKIE};
use crate::server::i18n::msg;
use crate::server::participant::page;
use crate::server::{Staff, change, staff, status_of};

/// Staff cookies last a working day.
const STAFF_COOKIE_MAX_AGE_S: u64 = 12 * 3600;

pub async fn route(app: &App, req: &Req, segs: &[&str]) -> Resp {
    let r = match (&req.method, segs) {
        (&Method::POST, ["masuk"]) => Ok(login(app, req).await),
        (&Method::GET, []) => match staff(app, req) {
            Some(s) => Ok(sessions_page(app, req, &s)),
            None => Ok(login_page(req, None, StatusCode::OK)),
        },
        (_, rest) => match staff(app, req) {
            None => Ok(http::redirect("/admin")),
            Some(s) => authed(app, req, &s, rest).await,
        },
    };
    r.unwrap_or_else(|e| error_page(req, e))
}

async fn authed(app: &App, req: &Req, s: &Staff, segs: &[&str]) -> Result<Resp, Refusal> {
    if req.method == Method::POST && !csrf_ok(req, s) {
        return Err(Refusal::new(403, "csrf"));
    }
    match (&req.method, segs) {
        (&Method::POST, ["keluar"]) => Ok(logout(app, req).await),
        (&Method::GET, ["sesi", pkg, sid]) => {
            board::page(app, req, s, &exam::session_key(pkg, sid))
        }
        (&Method::GET, ["sesi", pkg, sid, "token"]) => {
            board::token_page(app, req, s, &exam::session_key(pkg, sid))
        }
        (&Method::POST, ["sesi", pkg, sid, "segel"]) => {
            results::seal(app, req, s, &exam::session_key(pkg, sid))
        }
        (&Method::GET, ["sesi", pkg, sid, "hasil.tukres"]) => {
            results::download(app, s, &exam::session_key(pkg, sid))
        }
        (&Method::POST, ["sesi", pkg, sid, "unggah"]) => {
            results::upload(app, req, s, &exam::session_key(pkg, sid))
        }
        (&Method::GET, ["sesi", pkg, sid, "events"]) => {
            board::events(app, req, s, &exam::session_key(pkg, sid))
        }
        (&Method::GET, ["sesi", pkg, sid, "board.json"]) => {
            board::json(app, s, &exam::session_key(pkg, sid))
        }
        (&Method::POST, ["sesi", pkg, sid, "aksi"]) => {
            action(app, req, s, &exam::session_key(pkg, sid)).await
        }
        (&Method::GET, ["sesi", pkg, sid, "kartu"]) => print::sheet(
            app,
            req,
            s,
            &exam::session_key(pkg, sid),
            print::Sheet::Cards,
        ),
        (&Method::GET, ["sesi", pkg, sid, "hadir"]) => print::sheet(
            app,
            req,
            s,
            &exam::session_key(pkg, sid),
            print::Sheet::Attendance,
        ),
        (&Method::GET, ["sesi", pkg, sid, "nilai"]) => print::sheet(
            app,
            req,
            s,
            &exam::session_key(pkg, sid),
            print::Sheet::Scores,
        ),
        (&Method::GET, ["sesi", pkg, sid, "berita-acara"]) => {
            minutes::page(app, req, s, &exam::session_key(pkg, sid))
        }
        (&Method::POST, ["sesi", pkg, sid, "berita-acara"]) => {
            minutes::save(app, req, s, &exam::session_key(pkg, sid)).await
        }
        (&Method::GET, ["log"]) => minutes::log_page(app, req, s),
        (&Method::GET, ["impor"]) => admin::import_page(req, s, None),
        (&Method::POST, ["impor"]) => admin::upload(app, req, s).await,
        (&Method::POST, ["impor", "konfirmasi"]) => admin::confirm(app, req, s).await,
        (&Method::GET, ["pengguna"]) => admin::users_page(app, req, s, None),
        (&Method::POST, ["pengguna"]) => admin::add_user(app, req, s).await,
        (&Method::POST, ["pengguna", "identitas"]) => admin::set_identity(app, req, s).await,
        (&Method::GET, ["kesehatan"]) => admin::health_page(app, req, s),
        (&Method::GET, ["kop"]) => admin::letterhead_page(app, req, s, None),
        (&Method::POST, ["kop"]) => admin::save_letterhead(app, req, s),
        (&Method::GET, ["cetak.css"]) => {
            Ok(print::asset("text/css; charset=utf-8", print::PRINT_CSS))
        }
        (&Method::GET, ["cetak.js"]) => Ok(print::asset(
            "text/javascript; charset=utf-8",
            print::PRINT_JS,
        )),
        _ => Err(Refusal::new(404, "not_found")),
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
pub fn may_see(ex: &Exam, s: &Staff, skey: &str) -> bool {
    s.role == Role::Admin
        || ex
            .sessions
            .get(skey)
            .is_some_and(|x| x.proctors.iter().any(|p| p == &s.name))
}

/// The session `skey`, if this staff member may see it: 403 when not, 404 when there is
/// no such session.
pub fn visible_session<'a>(
    ex: &'a Exam,
    s: &Staff,
    skey: &str,
) -> Result<&'a exam::Session, Refusal> {
    if !may_see(ex, s, skey) {
        return Err(exam::FORBIDDEN);
    }
    ex.sessions.get(skey).ok_or(Refusal::new(404, "not_found"))
}

fn error_page(req: &Req, r: Refusal) -> Resp {
    http::html(
        status_of(r),
        page(
            req,
            "Konsol",
            html! { main.box { h1 { "Konsol pengawas" } p.error role="alert" { (msg(req.lang, r.code)) } p { a.button href="/admin" { "Kembali" } } } },
        ),
    )
}

fn login_page(req: &Req, error: Option<&str>, status: StatusCode) -> Resp {
    http::html(
        status,
        page(
            req,
            "Masuk Pengawas",
            html! {
                main.box {
                    h1 { "Masuk Pengawas / Admin" }
                    @if let Some(code) = error { p.error role="alert" { (msg(req.lang, code)) } }
                    form method="post" action="/admin/masuk" {
                        label for="user" { "Nama pengguna" }
                        input #user name="user" autocomplete="username" required autofocus;
                        label for="password" { "Kata sandi" }
                        input #password name="password" type="password" autocomplete="current-password" required;
                        button.primary type="submit" { "Masuk" }
                    }
                }
            },
        ),
    )
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
        Err(crate::auth::Refused::Locked) => {
            return login_page(req, Some("login_locked"), StatusCode::TOO_MANY_REQUESTS);
        }
        Err(crate::auth::Refused::Unavailable) => {
            return login_page(req, Some("store_failed"), StatusCode::SERVICE_UNAVAILABLE);
        }
        Err(crate::auth::Refused::Wrong { pair_locked, .. }) => {
            if pair_locked {
                let (k, ip) = (key.clone(), ip.clone());
                let _ = change(app, move |ex: &mut Exam| {
                    let ev = ex.log(
                        exam::events::TUK_CHAIN,
                        now_ms(),
                        "login_locked",
                        &k,
                        serde_json::json!({"ip": ip}),
                    );
                    (vec![ev], Ok(()))
                })
                .await;
            }
            return login_page(req, Some("bad_login"), StatusCode::UNAUTHORIZED);
        }
    }
    let (Ok(cookie), Ok(csrf)) = (secrets::new_cookie(), secrets::new_cookie()) else {
        return login_page(req, Some("store_failed"), StatusCode::SERVICE_UNAVAILABLE);
    };
    let id = secrets::cookie_id(&cookie);
    let r = change(app, move |ex: &mut Exam| {
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
        let ev = ex.log(
            exam::events::TUK_CHAIN,
            now,
            "staff_login",
            &format!("staff:{user}"),
            serde_json::json!({"ip": ip}),
        );
        (vec![put, ev], Ok(()))
    })
    .await;
    match r {
        Ok(()) => {
            let mut resp = http::redirect("/admin");
            http::set_cookie(&mut resp, STAFF_COOKIE, &cookie, STAFF_COOKIE_MAX_AGE_S);
            resp
        }
        Err(e) => login_page(req, Some(e.code), status_of(e)),
    }
}

async fn logout(app: &App, req: &Req) -> Resp {
    if let Some(c) = req.cookie(STAFF_COOKIE) {
        let id = secrets::cookie_id(&c);
        let _ = change(app, move |ex: &mut Exam| {
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

fn sessions_page(app: &App, req: &Req, s: &Staff) -> Resp {
    let ex = app.read();
    let visible: Vec<_> = ex
        .sessions
        .values()
        .filter(|x| may_see(&ex, s, &x.key))
        .collect();
    http::html(
        StatusCode::OK,
        page(
            req,
            "Konsol",
            html! {
                header.bar {
                    span.who { (s.name) " (" (if s.role == Role::Admin { "admin" } else { "pengawas" }) ")" }
                    form.inline method="post" action="/admin/keluar" { (csrf_field(s)) button type="submit" { "Keluar" } }
                }
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
                                    td { (board::status_word(&x.status)) }
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

/// One form, one action: `do` names it, the rest are its arguments.
async fn action(app: &App, req: &Req, s: &Staff, skey: &str) -> Result<Resp, Refusal> {
    if !may_see(&app.read(), s, skey) {
        return Err(exam::FORBIDDEN);
    }
    let f: HashMap<String, String> = req
        .form()
        .into_iter()
        .filter_map(|(k, v)| v.into_iter().next().map(|v| (k, v)))
        .collect();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let what = get("do");
    let actor = format!("staff:{}", s.name);
    let back = http::redirect(&format!("/admin/sesi/{skey}"));
    if what == "open" {
        let code = Some(get("release_code")).filter(|c| !c.trim().is_empty());
        let app_key = skey.to_string();
        let minutes: u64 = get("rotate_minutes").trim().parse().unwrap_or(15).min(240);
        // Unlocking the bank (scrypt for a release code) takes a second: off the workers.
        let opened = tokio::task::block_in_place(|| {
            app.open_session(&app_key, code.as_deref(), minutes * 60, &actor)
        });
        return match opened {
            Ok(Ok(())) => Ok(back),
            Ok(Err(r)) => Err(r),
            Err(e) => {
                tracing::warn!("open {skey}: {e:#}");
                Err(Refusal::new(422, "release_code_wrong"))
            }
        };
    }
    let skey2 = skey.to_string();
    let number = get("participant");
    let reason = get("reason");
    let minutes: i64 = get("minutes").trim().parse().unwrap_or(0);
    let role = s.role;
    let f2 = f.clone();
    let get2 = move |k: &str| f2.get(k).cloned().unwrap_or_default();
    change(app, move |ex: &mut Exam| {
        let now = now_ms();
        let r = match what.as_str() {
            "pause" => ex.pause(&skey2, &reason, &actor, now),
            "resume" => ex.resume(&skey2, &actor, now),
            "close" => ex.close_session(&skey2, false, &actor, now),
            "close_force" => ex.close_session(&skey2, true, &actor, now),
            "reset" => ex.reset_login(&skey2, &number, &reason, &actor, now),
            "time" => ex.add_time(&skey2, Some(&number), minutes, &reason, &actor, now),
            "time_all" => ex.add_time(&skey2, None, minutes, &reason, &actor, now),
            "finish" => ex.force_finish(&skey2, &number, &reason, &actor, now),
            "present" => ex.mark_attendance(&skey2, &number, true, &actor, now),
            "absent" => ex.mark_attendance(&skey2, &number, false, &actor, now),
            "unlock" => ex.lift_login_lock(&skey2, &get2("ip"), &actor, now),
            "assign" | "unassign" if role == Role::Admin => {
                ex.assign_proctor(&skey2, &get2("proctor"), what == "assign", &actor, now)
            }
            _ => Err(exam::BAD_INPUT),
        };
        match r {
            Ok(p) => (p, Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        }
    })
    .await?;
    Ok(back)
}

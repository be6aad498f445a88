//! The participant's pages: login → token → confirm → one item per page → finish →
//! questionnaire → result. Plain HTML forms that work with JavaScript off; `tuk.js`
//! enhances them (autosave, timer, keys, offline buffer) when it runs.

use crate::exam::AttemptKey;
use std::collections::BTreeMap;

use hyper::{Method, StatusCode};
use maud::{Markup, PreEscaped, html};

use super::api::{self, COOKIE_MAX_AGE_S};
use super::http::{self, PARTICIPANT_COOKIE, Req, Resp};
use super::i18n::{msg, t};
use super::shell::{self, Area, Bar, Frame};
use super::{commit_change, login};
use crate::app::App;
use crate::clock::now_ms;
use crate::exam::{self, Attempt, AttemptStatus, Exam, Refused};
use crate::package::model::{ItemKind, SCALE_LABELS};
use crate::server::Refusal;

pub(crate) async fn route(app: &App, req: &Req, segs: &[&str]) -> Resp {
    form_key(app);
    // Every participant form post carries the session's token (the login has no session
    // yet; a post without a login cookie is refused by its handler).
    if req.method == Method::POST && segs != ["masuk"] && !form_token_ok(req) {
        return form_token_refused(req);
    }
    api::touch(app, req);
    let r = match (&req.method, segs) {
        (&Method::GET, []) => Ok(home(app, req)),
        (&Method::POST, ["masuk"]) => Ok(do_login(app, req).await),
        (&Method::GET, ["token"]) => Ok(token_page(req, None)),
        (&Method::POST, ["token"]) => do_token(app, req).await,
        (&Method::GET, ["konfirmasi"]) => confirm_page(app, req),
        (&Method::POST, ["mulai"]) => do_start(app, req).await,
        (&Method::GET, ["soal", n]) => question_page(app, req, n),
        (&Method::POST, ["soal", n]) => do_answer(app, req, n).await,
        (&Method::GET, ["selesai"]) => finish_page(app, req),
        (&Method::POST, ["selesai"]) => do_finish(app, req).await,
        (&Method::GET, ["kuesioner"]) => questionnaire_page(app, req),
        (&Method::POST, ["kuesioner"]) => do_questionnaire(app, req).await,
        (&Method::GET, ["hasil"]) => result_page(app, req),
        (&Method::POST, ["keluar"]) => {
            let mut r = api::logout(app, req).await;
            *r.status_mut() = StatusCode::SEE_OTHER;
            r.headers_mut().insert(
                hyper::header::LOCATION,
                hyper::header::HeaderValue::from_static("/"),
            );
            Ok(r)
        }
        (&Method::GET, ["pref"]) => Ok(preferences(req)),
        _ => Err(crate::server::refusal::NOT_FOUND),
    };
    r.unwrap_or_else(|e| error_page(req, e))
}

/// The text size steps (cookie `font`), smallest first, with their page words.
const FONT_STEPS: [(&str, &str, &str); 3] = [
    ("normal", "A", "font_normal"),
    ("large", "A+", "font_large"),
    ("xlarge", "A++", "font_xlarge"),
];

/// Large font (two steps) and high contrast, remembered in cookies so they work without
/// JavaScript.
fn body_class(req: &Req) -> String {
    let mut c = String::new();
    match req.cookie("font").as_deref() {
        Some("large") => c.push_str("large "),
        Some("xlarge") => c.push_str("large xlarge "),
        _ => {}
    }
    if req.cookie("contrast").as_deref() == Some("high") {
        c.push_str("contrast");
    }
    c
}

/// The key of the participant forms' tokens, derived from the TUK key (so a page shown
/// before a restart still posts after it); set by the first request.
static FORM_KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();

fn form_key(app: &App) -> &'static [u8; 32] {
    FORM_KEY.get_or_init(|| {
        blake3::derive_key("tuk participant form token v1", &app.key.signing.to_bytes())
    })
}

/// The per-session token of participant form posts (issue 11, CSRF: old browsers such as
/// Firefox 52 send neither `Origin` nor `SameSite`): a keyed BLAKE3 of the login cookie, so
/// it changes at every login and only a page the server rendered for this session has it.
/// `None` without a login cookie.
pub(crate) fn form_token(req: &Req) -> Option<String> {
    let cookie = req.cookie(PARTICIPANT_COOKIE)?;
    let key = FORM_KEY.get()?;
    Some(
        blake3::keyed_hash(key, cookie.as_bytes())
            .to_hex()
            .to_string(),
    )
}

/// Name of the hidden form field that carries [`form_token`].
pub(crate) const FORM_TOKEN_FIELD: &str = "form_token";

fn form_token_ok(req: &Req) -> bool {
    let Some(want) = form_token(req) else {
        return true;
    };
    let form = req.form();
    let got = form
        .get(FORM_TOKEN_FIELD)
        .and_then(|v| v.first())
        .and_then(|t| blake3::Hash::from_hex(t).ok());
    // `Hash` compares in constant time.
    got.is_some_and(|g| blake3::Hash::from_hex(&want).is_ok_and(|w| w == g))
}

/// The one helper that gives every `<form method="post">` of a participant page the hidden
/// token field, right after the form's opening tag: no form's markup names it.
fn with_form_token(req: &Req, body: Markup) -> Markup {
    let Some(token) = form_token(req) else {
        return body;
    };
    let field = html! { input type="hidden" name=(FORM_TOKEN_FIELD) value=(token); }.into_string();
    let html = body.into_string();
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html.as_str();
    while let Some(at) = rest.find("<form") {
        let Some(end) = rest[at..].find('>') else {
            break;
        };
        let tag = &rest[at..at + end + 1];
        out.push_str(&rest[..at + end + 1]);
        if tag.contains(r#"method="post""#) {
            out.push_str(&field);
        }
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    PreEscaped(out)
}

/// A participant post without this session's token (403): the page was opened before the
/// last login on this browser, or another site made the post. Nothing was saved; the page
/// repeats what was posted with the current token, so one click sends it, or goes back.
fn form_token_refused(req: &Req) -> Resp {
    // No client text in the line: the address only.
    tracing::warn!(
        "refused a participant form post without this session's token from {}",
        req.ip
    );
    let id = req.lang == super::i18n::Lang::Id;
    let tr = |a: &'static str, b: &'static str| if id { a } else { b };
    let back = if req.path.starts_with("/soal/") {
        req.path.as_str()
    } else {
        "/"
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    for (k, vs) in req.form() {
        if k != FORM_TOKEN_FIELD {
            fields.extend(vs.into_iter().map(|v| (k.clone(), v)));
        }
    }
    fields.sort();
    let body = html! {
        main.box {
            h1 { (tr("Isian belum terkirim", "Not sent yet")) }
            p.error role="alert" {
                (tr(
                    "Halaman ini dibuka sebelum Anda masuk lagi di komputer ini (atau isian datang dari situs lain), jadi isian belum disimpan.",
                    "This page was opened before you logged in again on this computer (or the form came from another site), so nothing was saved.",
                ))
            }
            @if fields.is_empty() {
                p { a.button href=(back) { (tr("Kembali", "Back")) } }
            } @else {
                p { (tr("Isian Anda masih tersimpan di halaman ini: tekan «Kirim lagi» untuk mengirimnya sekarang.", "What you entered is kept on this page: press «Send again» to send it now.")) }
                form method="post" action=(req.path) {
                    @for (k, v) in &fields {
                        input type="hidden" name=(k) value=(v);
                    }
                    button.primary type="submit" { (tr("Kirim lagi", "Send again")) }
                }
                p { a href=(back) { (tr("Kembali tanpa mengirim", "Go back without sending")) } }
            }
        }
    };
    http::html(
        StatusCode::FORBIDDEN,
        page(req, tr("Isian belum terkirim", "Not sent yet"), body),
    )
}

/// A participant page: the shell's frame (the text size and contrast of this browser) with
/// the forms' tokens added to `body`.
fn page(req: &Req, title: &str, body: Markup) -> Markup {
    page_with(req, Bar::None, title, body)
}

fn page_with(req: &Req, bar: Bar, title: &str, body: Markup) -> Markup {
    frame(req).bar(bar).page(title, with_form_token(req, body))
}

fn frame(req: &Req) -> Frame<'static> {
    Frame::new(Area::Participant, req.lang).body_class(body_class(req))
}

/// A refusal on the shell's error page, with the way back that fits it.
pub(crate) fn error_page(req: &Req, r: Refusal) -> Resp {
    let back = match r.code {
        "not_started" | "bad_token" => "/token",
        "finished" => "/hasil",
        "deadline_passed" => "/selesai",
        _ => "/",
    };
    shell::refusal_page(frame(req), r, back)
}

/// The text-size and contrast switches, each showing its state (`aria-pressed`, and the
/// current size marked). On the question page (`item: Some(n)`) they are buttons of the
/// answer form, so switching without JavaScript saves the chosen answer first; elsewhere
/// they are links back to `back`.
fn prefs(req: &Req, item: Option<usize>, back: &str) -> Markup {
    let lang = req.lang;
    let font = req.cookie("font").unwrap_or_else(|| "normal".into());
    let high = req.cookie("contrast").as_deref() == Some("high");
    html! {
        span.prefs {
            span.sr { (t(lang, "font_size")) }
            @for (v, label, word) in FONT_STEPS {
                @let on = font == v || (v == "normal" && !FONT_STEPS.iter().any(|f| f.0 == font));
                @if let Some(n) = item {
                    button.pref.on[on] type="submit" form="q" name="go" value={"font-" (v)} aria-pressed=(on) title=(t(lang, word)) data-n=(n) { (label) }
                } @else {
                    a.pref.on[on] href={"/pref?font=" (v) "&back=" (back)} aria-pressed=(on) title=(t(lang, word)) { (label) }
                }
            }
            " "
            @let next = if high { "normal" } else { "high" };
            @if item.is_some() {
                button.pref.on[high] type="submit" form="q" name="go" value={"contrast-" (next)} aria-pressed=(high) {
                    (t(lang, "contrast")) ": " (t(lang, if high { "on" } else { "off" }))
                }
            } @else {
                a.pref.on[high] href={"/pref?contrast=" (next) "&back=" (back)} aria-pressed=(high) {
                    (t(lang, "contrast")) ": " (t(lang, if high { "on" } else { "off" }))
                }
            }
        }
    }
}

fn login_page(req: &Req, error: Option<&str>, status: StatusCode) -> Resp {
    login_page_for(req, error, status, "")
}

/// The login form; after a wrong password it keeps the participant number typed.
fn login_page_for(req: &Req, error: Option<&str>, status: StatusCode, number: &str) -> Resp {
    let lang = req.lang;
    http::html(
        status,
        page(
            req,
            t(lang, "login_title"),
            html! {
                main.box {
                    h1 { (t(lang, "login_title")) }
                    @if let Some(code) = error { p.error role="alert" { (msg(lang, code)) } }
                    form method="post" action="/masuk" {
                        label for="participant" { (t(lang, "participant_no")) }
                        input #participant name="participant" autocomplete="username" inputmode="numeric" required autofocus[number.is_empty()] value=(number);
                        label for="password" { (t(lang, "password")) }
                        input #password name="password" type="password" autocomplete="current-password" required autofocus[!number.is_empty()];
                        button.primary type="submit" { (t(lang, "login")) }
                    }
                    (lang_links(req))
                }
            },
        ),
    )
}

fn lang_links(req: &Req) -> Markup {
    html! {
        p.small {
            a href="/pref?lang=id&back=/" { "Bahasa Indonesia" } " · "
            a href="/pref?lang=en&back=/" { "English" }
        }
        p.small { (prefs(req, None, "/")) }
    }
}

fn home(app: &App, req: &Req) -> Resp {
    let Some(id) = req.participant_cookie_id() else {
        return login_page(req, None, StatusCode::OK);
    };
    let ex = app.read();
    match ex.attempt_of(&id) {
        Ok(a) if a.is_running() => http::redirect("/soal/1"),
        Ok(_) => http::redirect("/hasil"),
        Err(Refused::NotStarted) => http::redirect("/token"),
        Err(_) => login_page(req, None, StatusCode::OK),
    }
}

async fn do_login(app: &App, req: &Req) -> Resp {
    match login(
        app,
        &req.form_field("participant"),
        &req.form_field("password"),
        req.participant_cookie_id(),
        req.ip_string(),
    )
    .await
    {
        Ok(cookie) => {
            // After the end (finished on any PC), straight to the result: no token needed.
            let id = crate::exam::secrets::cookie_id(&cookie);
            let done = app.read().attempt_of(&id).is_ok_and(|a| !a.is_running());
            let mut r = http::redirect(if done { "/hasil" } else { "/token" });
            http::set_cookie(&mut r, PARTICIPANT_COOKIE, &cookie, COOKIE_MAX_AGE_S);
            r
        }
        Err(e) => {
            let e = Refusal::from(e);
            login_page_for(
                req,
                Some(e.code),
                super::status_of(e),
                req.form_field("participant").trim(),
            )
        }
    }
}

fn token_page(req: &Req, error: Option<Refusal>) -> Resp {
    let lang = req.lang;
    http::html(
        error.map_or(StatusCode::OK, super::status_of),
        page(
            req,
            t(lang, "token_title"),
            html! {
                main.box {
                    h1 { (t(lang, "token_title")) }
                    @if let Some(e) = error { p.error role="alert" { (msg(lang, e.code)) } }
                    p { (t(lang, "token_help")) }
                    form method="post" action="/token" {
                        label for="token" { (t(lang, "token")) }
                        input #token.token name="token" autocomplete="off" autocapitalize="characters" maxlength="12" required autofocus;
                        button.primary type="submit" { (t(lang, "next")) }
                    }
                    form method="post" action="/keluar" { button type="submit" { (t(lang, "logout")) } }
                }
            },
        ),
    )
}

async fn do_token(app: &App, req: &Req) -> Result<Resp, Refusal> {
    let id = req.participant_cookie_id().ok_or(Refused::NotLoggedIn)?;
    let token = req
        .form()
        .get("token")
        .and_then(|v| v.first().cloned())
        .unwrap_or_default();
    match commit_change(app, move |ex: &mut Exam| ex.admit(&id, &token, now_ms())).await {
        Ok(_) => Ok(http::redirect("/konfirmasi")),
        Err(Refused::NotLoggedIn) => Err(Refused::NotLoggedIn.into()),
        Err(e) => Ok(token_page(req, Some(e.into()))),
    }
}

fn confirm_page(app: &App, req: &Req) -> Result<Resp, Refusal> {
    let lang = req.lang;
    let id = req.participant_cookie_id().ok_or(Refused::NotLoggedIn)?;
    let ex = app.read();
    let (number, admitted) = ex.participant_of(&id)?;
    let skey = admitted.ok_or(Refused::NotStarted)?;
    let session = ex.sessions.get(skey).ok_or(Refused::SessionClosed)?;
    let info = ex
        .catalog
        .get(&session.package)
        .ok_or(Refused::SessionClosed)?;
    let p = info
        .participant(number, &session.id)
        .ok_or(Refused::NotRegistered)?;
    let test = info.test(&p.test).ok_or(Refused::NotRegistered)?;
    let existing = ex.find_attempt(&AttemptKey::of(skey, number));
    let minutes = test.duration_minutes + p.extra_minutes;
    Ok(http::html(
        StatusCode::OK,
        page(
            req,
            t(lang, "confirm_title"),
            html! {
                main.box.wide {
                    h1 { (t(lang, "confirm_title")) }
                    p { (t(lang, "confirm_help")) }
                    table.facts.compact {
                        tr { th { (t(lang, "participant_no")) } td { (p.participant) } }
                        tr { th { (t(lang, "name")) } td { (p.name) } }
                        tr { th { (t(lang, "institution")) } td { (p.institution) ", " (p.district) } }
                        tr { th { (t(lang, "test")) } td { (test.title) } }
                        tr { th { (t(lang, "items")) } td { (test.items) } }
                        tr { th { (t(lang, "duration")) } td { (minutes) " " (t(lang, "minutes")) } }
                    }
                    h2 { (t(lang, "rules")) }
                    // Validated against the safe subset at build and import. A scroll box,
                    // so "Mulai Mengerjakan" stays visible on a 1024x768 screen.
                    div.rules tabindex="0" { (PreEscaped(&test.instructions)) }
                    // Keys exist only with JavaScript (tuk.js shows this line).
                    p.small.js-only { (t(lang, "keyboard_help")) }
                    form method="post" action="/mulai" {
                        button.primary type="submit" {
                            @if existing.is_some() { (t(lang, "continue")) } @else { (t(lang, "start")) }
                        }
                    }
                }
            },
        ),
    ))
}

async fn do_start(app: &App, req: &Req) -> Result<Resp, Refusal> {
    let id = req.participant_cookie_id().ok_or(Refused::NotLoggedIn)?;
    let ip = req.ip_string();
    commit_change(app, move |ex: &mut Exam| {
        ex.begin_admitted(&id, &ip, now_ms())
    })
    .await?;
    Ok(http::redirect("/soal/1"))
}

fn running_attempt<'a>(ex: &'a Exam, req: &Req) -> Result<std::borrow::Cow<'a, Attempt>, Refusal> {
    let id = req.participant_cookie_id().ok_or(Refused::NotLoggedIn)?;
    Ok(ex.attempt_of(&id)?)
}

fn question_page(app: &App, req: &Req, n: &str) -> Result<Resp, Refusal> {
    let lang = req.lang;
    let ex = app.read();
    let a = running_attempt(&ex, req)?;
    if !a.is_running() {
        return Ok(http::redirect("/hasil"));
    }
    let n: usize = n.parse().map_err(|_| Refused::UnknownItem)?;
    let v = api::item_view(&ex, &a, n)?;
    let session = ex.sessions.get(&a.session).ok_or(Refused::SessionClosed)?;
    let remaining = a.remaining_ms(session, now_ms());
    let paused = session.paused_since().is_some();
    let multiple = v.kind == ItemKind::Multiple;
    let total = v.items;
    let name = ex
        .catalog
        .get(&a.package)
        .and_then(|p| p.participant(&a.participant, &session.id))
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let next_seq = a.max_seq() + 1;
    let bar = Bar::Participant {
        who: format!("{name} · {}", a.participant),
        timer: Some((remaining, paused)),
        tools: Some(prefs(req, Some(n), "")),
    };
    let markup = html! {
        // Always present (hidden unless paused) so tuk.js can show it when a pause begins.
        p.notice #paused role="status" hidden[!paused] { (t(lang, "paused")) }
        // Shown by tuk.js while the server cannot be reached (issue 13, outages).
        p.notice.offline #offline role="alert" hidden { (t(lang, "offline")) }
        form #q method="post" action={"/soal/" (n)} data-item=(v.id) data-n=(n) data-total=(total) data-seq=(next_seq) data-multiple=(multiple) data-attempt=(a.key) {
            input type="hidden" name="item" value=(v.id);
            input type="hidden" name="seq" value=(next_seq);
            // Enter in the form means "save and go on", not the first visible button (back).
            button.sr type="submit" name="go" value=(if n < total { n + 1 } else { n }) tabindex="-1" aria-hidden="true" { (t(lang, "save_next")) }
            main.question {
                h1 { (t(lang, "question")) " " (n) " " (t(lang, "of")) " " (total) }
                // Item HTML is validated against the safe subset at build and import.
                div.stem { (PreEscaped(&v.stem)) }
                fieldset.options {
                    legend.sr { (t(lang, "question")) " " (n) }
                    @for o in &v.options {
                        label.option {
                            @if multiple {
                                input type="checkbox" name="choice" value=(o.id) checked[v.choice.contains(&o.id)];
                            } @else {
                                input type="radio" name="choice" value=(o.id) checked[v.choice.contains(&o.id)];
                            }
                            span.letter { (o.label) }
                            span.text { (PreEscaped(&o.html)) }
                        }
                    }
                }
                p #status.status role="status" aria-live="polite" data-saved=(t(lang, "saved")) data-unsaved=(t(lang, "unsaved"))
                    data-offline=(t(lang, "why_offline")) data-paused=(t(lang, "why_paused")) data-retry=(t(lang, "why_retry")) {}
                // Without JavaScript nothing saves by itself: say when it does.
                noscript { p.small { (t(lang, "nojs_save")) } }
            }
            // Fixed at the bottom of the screen: always visible, at every text size.
            div.actions.bottombar {
                button.prev type="submit" name="go" value=(n.saturating_sub(1).max(1)) disabled[n <= 1] { "◀ " (t(lang, "prev")) }
                label.doubt { input type="checkbox" name="doubtful" value="1" checked[v.doubtful]; " " (t(lang, "doubtful")) }
                @if n < total { button.primary type="submit" name="go" value=(n + 1) { (t(lang, "save_next")) " ▶" } }
                @else { button.primary type="submit" name="go" value=(n) { (t(lang, "save")) } }
                button.finish type="submit" name="go" value="selesai" { (t(lang, "finish")) }
            }
            nav.grid aria-label=(t(lang, "nav")) {
                @for (i, f) in a.form.iter().enumerate() {
                    @let ans = a.answers.get(&f.item);
                    @let cls = if ans.is_some_and(|x| x.doubtful) { "doubtful" } else if ans.is_some_and(|x| !x.choice.is_empty()) { "answered" } else { "empty" };
                    button type="submit" name="go" value=(i + 1) class={(cls) @if i + 1 == n { " current" }} { (i + 1) }
                }
                p.legend.small {
                    span.answered { (t(lang, "legend_answered")) } " "
                    span.doubtful { (t(lang, "legend_doubtful")) } " "
                    span.empty { (t(lang, "legend_empty")) }
                }
            }
        }
    };
    Ok(http::html(
        StatusCode::OK,
        page_with(req, bar, t(lang, "question"), markup),
    ))
}

/// The no-JavaScript save: the form posts the choice, then goes where the button says.
async fn do_answer(app: &App, req: &Req, n: &str) -> Result<Resp, Refusal> {
    let id = req.participant_cookie_id().ok_or(Refused::NotLoggedIn)?;
    let f = req.form();
    let field = |k: &str| f.get(k).and_then(|v| v.first()).cloned();
    let item = field("item").ok_or(crate::server::refusal::MALFORMED_FORM)?;
    let seq: u64 = field("seq")
        .and_then(|s| s.parse().ok())
        .ok_or(crate::server::refusal::MALFORMED_FORM)?;
    let choice = f.get("choice").cloned().unwrap_or_default();
    let doubtful = field("doubtful").is_some();
    let go = field("go").unwrap_or_else(|| n.to_string());
    // Save only what changed: navigation alone must not create answers.
    let unchanged = {
        let ex = app.read();
        let a = ex.attempt_of(&id)?;
        match a.answers.get(&item) {
            Some(old) => {
                let mut c = choice.clone();
                c.sort();
                c.dedup();
                old.same_choice(&c) && old.doubtful == doubtful
            }
            None => choice.is_empty() && !doubtful,
        }
    };
    if !unchanged {
        if !app.read().save_rate.allow(&id) {
            return Err(Refused::TooManySaves.into());
        }
        let id_for_writer = id.clone();
        match commit_change(app, move |ex: &mut Exam| {
            ex.save(&id_for_writer, &item, choice, doubtful, seq, now_ms())
        })
        .await
        {
            Ok(_) => {}
            Err(e) if e == Refused::Finished || e == Refused::DeadlinePassed => {
                return Ok(http::redirect("/hasil"));
            }
            // Paused: nothing is saved; back to this question, which shows the pause.
            Err(Refused::SessionPaused) => {
                return Ok(http::redirect(&format!("/soal/{n}")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(match go.as_str() {
        "selesai" => http::redirect("/selesai"),
        // The text-size and contrast switches of the question page: saved first, then set.
        g if g.starts_with("font-") || g.starts_with("contrast-") => {
            let (k, v) = g.split_once('-').unwrap_or(("font", "normal"));
            http::redirect(&format!("/pref?{k}={v}&back=/soal/{n}"))
        }
        g => match g.parse::<usize>() {
            Ok(k) => http::redirect(&format!("/soal/{k}")),
            Err(_) => http::redirect(&format!("/soal/{n}")),
        },
    })
}

fn finish_page(app: &App, req: &Req) -> Result<Resp, Refusal> {
    let lang = req.lang;
    let ex = app.read();
    let a = running_attempt(&ex, req)?;
    if !a.is_running() {
        return Ok(http::redirect("/hasil"));
    }
    let mut empty = Vec::new();
    let mut doubtful = Vec::new();
    // An item marked ragu-ragu without an answer is unanswered: that is how it is scored.
    for (i, f) in a.form.iter().enumerate() {
        match a.answers.get(&f.item) {
            Some(x) if x.choice.is_empty() => empty.push(i + 1),
            Some(x) if x.doubtful => doubtful.push(i + 1),
            Some(_) => {}
            None => empty.push(i + 1),
        }
    }
    let session = ex.sessions.get(&a.session).ok_or(Refused::SessionClosed)?;
    let remaining = a.remaining_ms(session, now_ms());
    let paused = session.paused_since().is_some();
    let list = |v: &[usize]| -> Markup {
        html! {
            @if v.is_empty() { (t(lang, "none")) }
            @for k in v { a.chip href={"/soal/" (k)} { (k) } " " }
        }
    };
    let bar = Bar::Participant {
        who: a.participant.to_string(),
        timer: Some((remaining, paused)),
        tools: None,
    };
    Ok(http::html(
        StatusCode::OK,
        page_with(
            req,
            bar,
            t(lang, "finish_title"),
            html! {
                main.box.wide {
                    h1 { (t(lang, "finish_title")) }
                    p { (t(lang, "unanswered_items")) " (" (empty.len()) "): " (list(&empty)) }
                    p { (t(lang, "doubtful_items")) " (" (doubtful.len()) "): " (list(&doubtful)) }
                    p.warn { (t(lang, "finish_warn")) }
                    form method="post" action="/selesai" {
                        input type="hidden" name="confirm" value="1";
                        button.finish type="submit" { (t(lang, "finish_yes")) }
                    }
                    p { a.button href="/soal/1" { (t(lang, "back_to_test")) } }
                }
            },
        ),
    ))
}

async fn do_finish(app: &App, req: &Req) -> Result<Resp, Refusal> {
    let id = req.participant_cookie_id().ok_or(Refused::NotLoggedIn)?;
    if !req.form().contains_key("confirm") {
        return Ok(http::redirect("/selesai"));
    }
    match commit_change(app, move |ex: &mut Exam| {
        ex.finish_by_participant(&id, now_ms())
    })
    .await
    {
        Ok(_) | Err(Refused::Finished) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(http::redirect("/kuesioner"))
}

fn questionnaire_page(app: &App, req: &Req) -> Result<Resp, Refusal> {
    let lang = req.lang;
    let ex = app.read();
    let a = running_attempt(&ex, req)?;
    if a.is_running() {
        return Ok(http::redirect("/selesai"));
    }
    let q = ex
        .catalog
        .get(&a.package)
        .and_then(|p| p.questionnaire.as_ref());
    let Some(q) = q.filter(|_| a.questionnaire.is_none()) else {
        return Ok(http::redirect("/hasil"));
    };
    Ok(http::html(
        StatusCode::OK,
        page(
            req,
            t(lang, "questionnaire"),
            html! {
                main.box.wide {
                    p.notice #ended { (t(lang, ended_key(&a))) }
                    h1 { (q.title) }
                    p { (q.instructions) }
                    form method="post" action="/kuesioner" {
                        @for (i, s) in q.scale.iter().enumerate() {
                            fieldset.scale {
                                legend { (i + 1) ". " (s.text) }
                                @for label in SCALE_LABELS {
                                    label.option { input type="radio" name=(s.id) value=(label) required; " " (label) }
                                }
                            }
                        }
                        @for (i, o) in q.open.iter().enumerate() {
                            label for=(o.id) { (q.scale.len() + i + 1) ". " (o.text) }
                            textarea id=(o.id) name=(o.id) rows="3" maxlength="2000" {}
                        }
                        button.primary type="submit" { (t(lang, "send")) }
                    }
                }
            },
        ),
    ))
}

async fn do_questionnaire(app: &App, req: &Req) -> Result<Resp, Refusal> {
    let id = req.participant_cookie_id().ok_or(Refused::NotLoggedIn)?;
    let answers: BTreeMap<String, String> = req
        .form()
        .into_iter()
        .filter(|(k, _)| k != FORM_TOKEN_FIELD)
        .filter_map(|(k, v)| v.into_iter().next().map(|v| (k, v)))
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    commit_change(app, move |ex: &mut Exam| {
        ex.questionnaire(&id, answers, now_ms())
    })
    .await?;
    Ok(http::redirect("/hasil"))
}

fn result_page(app: &App, req: &Req) -> Result<Resp, Refusal> {
    let lang = req.lang;
    let ex = app.read();
    let a = running_attempt(&ex, req)?;
    if a.is_running() {
        return Ok(http::redirect("/soal/1"));
    }
    let questionnaire = ex
        .catalog
        .get(&a.package)
        .is_some_and(|p| p.questionnaire.is_some())
        && a.questionnaire.is_none();
    let score = api::score_view(&ex, &a);
    // Scores are written with a decimal comma on Indonesian pages (4,55).
    let number = |v: &serde_json::Value| {
        let s = v.as_str().unwrap_or("");
        match lang {
            super::i18n::Lang::Id => s.replace('.', ","),
            super::i18n::Lang::En => s.to_string(),
        }
    };
    Ok(http::html(
        StatusCode::OK,
        page(
            req,
            t(lang, "result_title"),
            html! {
                main.box {
                    h1 { (t(lang, "result_title")) }
                    p #ended { (t(lang, ended_key(&a))) }
                    p { (t(lang, "thanks")) }
                    @if questionnaire {
                        p.notice { (t(lang, "questionnaire_invite")) }
                        p { a.button.primary #to-questionnaire href="/kuesioner" { (t(lang, "fill_questionnaire")) } }
                    }
                    @if let Some(s) = score {
                        p.score { (t(lang, "your_score")) ": " strong #score { (number(&s["total"])) } }
                        p { (t(lang, "predicate")) ": " (s["predicate"].as_str().unwrap_or("")) }
                    } @else {
                        p { (t(lang, "score_hidden")) }
                    }
                    p.small { (t(lang, "certificate_note")) }
                    p.small { a href="/token" { (t(lang, "other_test")) } }
                    form method="post" action="/keluar" { button type="submit" { (t(lang, "logout")) } }
                }
            },
        ),
    ))
}

/// Who ended a finished attempt, as a page string key.
fn ended_key(a: &Attempt) -> &'static str {
    match a.status {
        AttemptStatus::Finished {
            by: exam::FinishedBy::Proctor,
            ..
        } => "ended_proctor",
        AttemptStatus::Finished {
            by: exam::FinishedBy::Auto,
            ..
        } => "ended_time",
        _ => "ended_self",
    }
}

/// Media of a package, only to a participant working on it (questions stay confidential).
pub(crate) fn media(app: &App, req: &Req, package: &str, name: &str) -> Resp {
    let ex = app.read();
    let allowed = req
        .participant_cookie_id()
        .and_then(|id| ex.attempt_of(&id).ok().map(|a| a.package == package))
        .unwrap_or(false);
    if !allowed {
        return super::error(req, Refused::Forbidden);
    }
    let Some(bytes) = ex.banks.get(package).and_then(|b| b.bank.media.get(name)) else {
        return super::not_found(req);
    };
    let ct = crate::package::source::media_type(name).unwrap_or("application/octet-stream");
    let mut r = http::response(StatusCode::OK, ct, bytes.clone());
    // An SVG opened on its own must not run script in this origin.
    r.headers_mut().insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        hyper::header::HeaderValue::from_static(
            "sandbox; default-src 'none'; style-src 'unsafe-inline'",
        ),
    );
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        // A shared lab PC keeps nothing of the questions (issue 11).
        hyper::header::HeaderValue::from_static("private, no-store"),
    );
    r
}

fn preferences(req: &Req) -> Resp {
    let back = req
        .query_param("back")
        .filter(|b| is_local_path(b))
        .unwrap_or_else(|| "/".into());
    let mut r = http::redirect(&back);
    let year = 365 * 24 * 3600;
    if let Some(v) = req
        .query_param("font")
        .filter(|v| FONT_STEPS.iter().any(|f| f.0 == v))
    {
        set_pref(&mut r, "font", &v, year);
    }
    if let Some(v) = req
        .query_param("contrast")
        .filter(|v| v == "high" || v == "normal")
    {
        set_pref(&mut r, "contrast", &v, year);
    }
    if let Some(v) = req.query_param("lang").filter(|v| v == "id" || v == "en") {
        set_pref(&mut r, "lang", &v, year);
    }
    r
}

/// A plain path on this server: no scheme, no `//host`, no backslash or control tricks.
fn is_local_path(b: &str) -> bool {
    b.starts_with('/')
        && !b.starts_with("//")
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'-' | b'_' | b'.'))
}

fn set_pref(r: &mut Resp, name: &str, value: &str, max_age: u64) {
    let v = format!("{name}={value}; Path=/; SameSite=Strict; Max-Age={max_age}");
    if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
        r.headers_mut().append(hyper::header::SET_COOKIE, v);
    }
}

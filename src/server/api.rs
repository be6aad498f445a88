//! The participant JSON API under `/api/v1/` (documented in `docs/api.md`). The page script
//! uses it for autosave; load generators and exam browsers can use it directly.

use std::collections::BTreeMap;

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::http::{self, PARTICIPANT_COOKIE, Req, Resp};
use super::{commit_change, login};
use crate::app::App;
use crate::clock::now_ms;
use crate::exam::{self, Attempt, AttemptStatus, CookieId, Exam, Refused};
use crate::server::Refusal;

/// What an API handler answers: a JSON value, or a refusal (status, code, words).
type Answer<T> = Result<T, Refusal>;

/// Participant cookies live for a working day, so a crashed browser keeps its session.
pub(crate) const COOKIE_MAX_AGE_S: u64 = 12 * 3600;

pub(crate) async fn route(app: &App, req: &Req, rest: &[&str]) -> Resp {
    // A cross-site HTML form cannot send this content type (old browsers send neither
    // Origin nor SameSite cookies, so this is what stops a forged POST).
    let json_body = req
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if matches!(req.method, Method::POST | Method::PUT) && !json_body {
        return http::api_error(crate::server::refusal::JSON_REQUIRED, req.lang);
    }
    touch(app, req);
    let r = match (&req.method, rest) {
        (&Method::POST, ["login"]) => return api_login(app, req).await,
        (&Method::POST, ["logout"]) => return logout(app, req).await,
        (&Method::POST, ["start"]) => start(app, req).await,
        // The two requests of every answer are written straight from their structs (no
        // intermediate `serde_json::Value`: issue 17).
        (&Method::GET, ["items", n]) => return reply(item(app, req, n), req.lang),
        (&Method::PUT, ["answers", item_id]) => {
            return reply(save(app, req, item_id).await, req.lang);
        }
        (&Method::GET, ["state"]) => state(app, req),
        (&Method::POST, ["finish"]) => finish(app, req).await,
        (&Method::POST, ["heartbeat"]) => heartbeat(app, req).await,
        (&Method::GET, ["events"]) => {
            return events(app, req).unwrap_or_else(|e| http::api_error(e, req.lang));
        }
        (&Method::POST, ["questionnaire"]) => questionnaire(app, req).await,
        _ => Err(crate::server::refusal::NOT_FOUND),
    };
    match r {
        Ok(v) => http::json(StatusCode::OK, &v),
        Err(e) => http::api_error(e, req.lang),
    }
}

/// Marks the participant behind this request as active now, for the board's "last
/// activity": every page load, save and heartbeat counts, not only the heartbeat (issue
/// 13). Memory only, like the heartbeat (see `heartbeat`): nothing to make durable.
pub(crate) fn touch(app: &App, req: &Req) {
    let Some(id) = req.participant_cookie_id() else {
        return;
    };
    let ip = req.ip_string();
    let now = now_ms();
    let key = {
        let ex = app.read();
        let key = match ex.attempt_of(&id) {
            Ok(a) if a.is_running() => a.key.clone(),
            _ => return,
        };
        // Within a second of the last mark from the same PC: nothing to change, so no
        // write lock (a page load brings its stylesheet, script and a heartbeat along).
        if ex
            .live
            .get(&key)
            .is_some_and(|l| now - l.last_seen_ms < 1_000 && l.ip == ip)
        {
            return;
        }
        key
    };
    let mut ex = app.state.write().unwrap_or_else(|p| p.into_inner());
    let l = ex.live.entry(key).or_default();
    l.last_seen_ms = l.last_seen_ms.max(now);
    l.ip = ip;
}

fn reply<T: Serialize>(r: Answer<T>, lang: super::i18n::Lang) -> Resp {
    match r {
        Ok(v) => http::json(StatusCode::OK, &v),
        Err(e) => http::api_error(e, lang),
    }
}

fn cookie_id(req: &Req) -> Answer<CookieId> {
    req.participant_cookie_id()
        .ok_or(Refused::NotLoggedIn.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    participant: String,
    password: String,
}

async fn api_login(app: &App, req: &Req) -> Resp {
    let body: LoginBody = match req.json() {
        Ok(b) => b,
        Err(e) => return http::api_error(e, req.lang),
    };
    match login(
        app,
        &body.participant,
        &body.password,
        req.participant_cookie_id(),
        req.ip_string(),
    )
    .await
    {
        Ok(cookie) => {
            let name = app
                .read()
                .catalog
                .values()
                .flat_map(|p| p.roster.iter())
                .find(|p| p.participant == body.participant.trim())
                .map(|p| p.name.clone())
                .unwrap_or_default();
            let mut r = http::json(
                StatusCode::OK,
                &serde_json::json!({"participant": body.participant.trim(), "name": name}),
            );
            http::set_cookie(&mut r, PARTICIPANT_COOKIE, &cookie, COOKIE_MAX_AGE_S);
            r
        }
        Err(e) => http::api_error(e, req.lang),
    }
}

pub(crate) async fn logout(app: &App, req: &Req) -> Resp {
    if let Some(id) = req.participant_cookie_id() {
        let _ = commit_change(app, move |ex: &mut Exam| {
            let puts = match ex.web.remove(&id) {
                Some(_) => vec![crate::store::Put::delete(
                    crate::store::Table::WebSessions,
                    id,
                )],
                None => Vec::new(),
            };
            (puts, Ok(()))
        })
        .await;
    }
    let mut r = http::json(StatusCode::OK, &serde_json::json!({"ok": true}));
    http::clear_cookie(&mut r, PARTICIPANT_COOKIE);
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    token: String,
}

async fn start(app: &App, req: &Req) -> Answer<serde_json::Value> {
    let id = cookie_id(req)?;
    let body: StartBody = req.json()?;
    let ip = req.ip_string();
    let started = commit_change(app, move |ex: &mut Exam| {
        ex.start(&id, &body.token, &ip, now_ms())
    })
    .await?;
    Ok(serde_json::to_value(started).unwrap_or_default())
}

/// One item as the participant sees it: their order, their option order, no key.
#[derive(Serialize)]
pub(crate) struct ItemView {
    pub(crate) n: usize,
    pub(crate) items: usize,
    pub(crate) id: String,
    pub(crate) kind: crate::package::model::ItemKind,
    pub(crate) stem: String,
    pub(crate) options: Vec<OptionView>,
    pub(crate) choice: Vec<String>,
    pub(crate) doubtful: bool,
    pub(crate) seq: u64,
}

#[derive(Serialize)]
pub(crate) struct OptionView {
    pub(crate) id: String,
    pub(crate) label: char,
    pub(crate) html: String,
}

/// Item `n` (1-based, as on the navigation grid) of an attempt.
pub(crate) fn item_view(ex: &Exam, a: &Attempt, n: usize) -> Answer<ItemView> {
    let f = n
        .checked_sub(1)
        .and_then(|i| a.form.get(i))
        .ok_or(Refused::UnknownItem)?;
    let bank = ex.banks.get(&a.package).ok_or(Refused::SessionClosed)?;
    let item = bank.item(&f.item).ok_or(Refused::UnknownItem)?;
    let media = |h: &str| h.replace("src=\"media/", &format!("src=\"/media/{}/", a.package));
    let options = f
        .options
        .iter()
        .zip('A'..='E')
        .filter_map(|(id, label)| {
            item.options
                .iter()
                .find(|o| *id == o.id)
                .map(|o| OptionView {
                    id: o.id.clone(),
                    label,
                    html: media(&o.html),
                })
        })
        .collect();
    let ans = a.answers.get(&f.item);
    Ok(ItemView {
        n,
        items: a.form.len(),
        id: f.item.to_string(),
        kind: item.kind,
        stem: media(&item.stem),
        options,
        choice: ans.map(|x| x.choice_strings()).unwrap_or_default(),
        doubtful: ans.is_some_and(|x| x.doubtful),
        seq: ans.map_or(0, |x| x.seq),
    })
}

fn item(app: &App, req: &Req, n: &str) -> Answer<ItemView> {
    let id = cookie_id(req)?;
    let n: usize = n.parse().map_err(|_| Refused::UnknownItem)?;
    let ex = app.read();
    let a = ex.attempt_of(&id)?;
    if !a.is_running() {
        return Err(Refused::Finished.into());
    }
    item_view(&ex, &a, n)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    choice: Vec<String>,
    #[serde(default)]
    doubtful: bool,
    seq: u64,
}

/// The reply to a save: `{"saved":true,"seq":k}`.
#[derive(Serialize)]
struct Saved {
    saved: bool,
    seq: u64,
}

async fn save(app: &App, req: &Req, item_id: &str) -> Answer<Saved> {
    let id = cookie_id(req)?;
    if !app.read().save_rate.allow(&id) {
        return Err(Refused::TooManySaves.into());
    }
    let body: SaveBody = req.json()?;
    if body.choice.len() > 5 || body.choice.iter().any(|c| c.len() > 64) {
        return Err(Refused::InvalidChoice.into());
    }
    let item_id = item_id.to_string();
    let seq = commit_change(app, move |ex: &mut Exam| {
        ex.save(
            &id,
            &item_id,
            body.choice,
            body.doubtful,
            body.seq,
            now_ms(),
        )
    })
    .await?;
    Ok(Saved { saved: true, seq })
}

/// The participant's state: what the grid and the timer need.
pub(crate) fn state_of(ex: &Exam, a: &Attempt) -> serde_json::Value {
    let now = now_ms();
    let session = ex.sessions.get(&a.session);
    let paused = session.and_then(|s| s.paused_since()).is_some();
    let remaining = session
        .filter(|_| a.is_running())
        .map_or(0, |s| a.remaining_ms(s, now));
    let grid: Vec<serde_json::Value> = a
        .form
        .iter()
        .map(|f| {
            let ans = a.answers.get(&f.item);
            serde_json::json!({
                "id": f.item,
                "answered": ans.is_some_and(|x| !x.choice.is_empty()),
                "doubtful": ans.is_some_and(|x| x.doubtful),
                "seq": ans.map_or(0, |x| x.seq),
            })
        })
        .collect();
    let status = match &a.status {
        AttemptStatus::Running => "running",
        AttemptStatus::Finished {
            by: exam::FinishedBy::Auto,
            ..
        } => "auto_submitted",
        AttemptStatus::Finished { .. } => "finished",
    };
    serde_json::json!({
        "attempt": a.key,
        "status": status,
        "items": a.form.len(),
        "answered": a.answered(),
        "doubtful": a.doubtful(),
        "remaining_ms": remaining,
        "deadline": crate::clock::rfc3339(a.deadline_ms),
        "paused": paused,
        "seq": a.max_seq(),
        "grid": grid,
    })
}

fn state(app: &App, req: &Req) -> Answer<serde_json::Value> {
    let id = cookie_id(req)?;
    let ex = app.read();
    let a = ex.attempt_of(&id)?;
    Ok(state_of(&ex, &a))
}

/// Score fields for the participant, if the package shows scores.
pub(crate) fn score_view(ex: &Exam, a: &Attempt) -> Option<serde_json::Value> {
    let AttemptStatus::Finished { score, .. } = &a.status else {
        return None;
    };
    let show = ex
        .catalog
        .get(&a.package)
        .and_then(|p| p.test(&a.test))
        .is_some_and(|t| t.show_score);
    show.then(|| {
        serde_json::json!({
            "total": score.total.to_string(),
            "predicate": score.predicate,
            "by_competency": score.by_competency.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<BTreeMap<_, _>>(),
        })
    })
}

async fn finish(app: &App, req: &Req) -> Answer<serde_json::Value> {
    let id = cookie_id(req)?;
    let id_for_writer = id.clone();
    commit_change(app, move |ex: &mut Exam| {
        ex.finish_by_participant(&id_for_writer, now_ms())
    })
    .await?;
    let ex = app.read();
    let a = ex.attempt_of(&id)?;
    let mut v = serde_json::json!({"status": "finished"});
    if let Some(s) = score_view(&ex, &a) {
        v["score"] = s;
    }
    Ok(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatBody {
    #[serde(default)]
    unsaved: u32,
}

async fn heartbeat(app: &App, req: &Req) -> Answer<serde_json::Value> {
    let id = cookie_id(req)?;
    let body: HeartbeatBody = req.json()?;
    let ip = req.ip_string();
    // Memory only: the board's live view needs no fsync.
    let mut ex = app.state.write().unwrap_or_else(|p| p.into_inner());
    ex.heartbeat(&id, body.unsaved.min(10_000), &ip, now_ms())?;
    let a = ex.attempt_of(&id)?;
    Ok(state_of(&ex, &a))
}

/// The participant's pause state as a `text/event-stream`: `data: {"paused":BOOL}` at once
/// and every 2 s, so an idle question page shows a pause (and the resume) within 2 s, not
/// at its next 15 s heartbeat (issue 13). `tuk.js` asks the heartbeat when the value
/// changes. Limits: only for a logged-in participant with a running attempt (else the
/// usual JSON refusal); the stream ends after 10 minutes (the browser's EventSource
/// reconnects, which checks the login again) or when the attempt stops running; it holds
/// one connection (within the per-address and global caps) and takes a read lock every
/// 2 s, nothing else.
fn events(app: &App, req: &Req) -> Answer<Resp> {
    let id = cookie_id(req)?;
    if !app.read().attempt_of(&id)?.is_running() {
        return Err(Refused::Finished.into());
    }
    let state = (app.state.clone(), id, std::time::Instant::now());
    Ok(http::event_stream(
        state,
        std::time::Duration::from_secs(2),
        |(state, id, born)| {
            if born.elapsed() > std::time::Duration::from_secs(600) {
                return None;
            }
            let ex = state.read().unwrap_or_else(|p| p.into_inner());
            let a = ex.attempt_of(id).ok().filter(|a| a.is_running())?;
            let paused = ex
                .sessions
                .get(&a.session)
                .is_some_and(|s| s.paused_since().is_some());
            Some(format!("{{\"paused\":{paused}}}"))
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionnaireBody {
    answers: BTreeMap<String, String>,
}

async fn questionnaire(app: &App, req: &Req) -> Answer<serde_json::Value> {
    let id = cookie_id(req)?;
    let mut body: QuestionnaireBody = req.json()?;
    body.answers.retain(|_, v| !v.trim().is_empty());
    commit_change(app, move |ex: &mut Exam| {
        ex.questionnaire(&id, body.answers, now_ms())
    })
    .await?;
    Ok(serde_json::json!({"saved": true}))
}

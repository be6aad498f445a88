//! What `bundle.json` inside a sealed bundle holds, and how the per-participant logins
//! and timelines are derived from a session's event log (the same function runs at the TUK,
//! to write them, and at the UPT, to check them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::exam::FinishedBy;
use crate::exam::events::Event;
use crate::exam::form::FormItem;
use crate::package::model::Questionnaire;

/// Version of `bundle.json`.
pub const DOC_FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleDoc {
    pub format: u32,
    pub package: PackageRef,
    pub tuk: TukRef,
    /// When the bundle was sealed (UTC, RFC 3339), and by whom (`cli` or `staff:NAME`).
    pub sealed: String,
    pub sealed_by: String,
    /// UTC offset of the package's schedule, e.g. `+07:00`.
    pub timezone: String,
    pub sessions: Vec<SessionDoc>,
    pub questionnaire: Option<Questionnaire>,
    /// Every roster row of the sealed sessions, present or not.
    pub participants: Vec<ParticipantDoc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackageRef {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub upt: String,
    /// blake3 of the `.tukpkg` file.
    pub blake3: String,
    /// The UPT key that signed the package, `ed25519:<base64>`.
    pub signer: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TukRef {
    pub name: String,
    pub signer: String,
    pub fingerprint: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionDoc {
    /// Session id within the package, e.g. `S1`.
    pub id: String,
    /// The event chain: `{package}/{session}`.
    pub chain: String,
    pub test: String,
    pub date: String,
    pub start: String,
    pub end: String,
    pub room: String,
    pub opened_ms: Option<i64>,
    pub closed_ms: Option<i64>,
    pub proctors: Vec<String>,
    pub minutes: Option<MinutesDoc>,
    /// Number of events in the chain and the blake3 of the last one.
    pub events: u64,
    pub head: String,
    /// Events that concern the whole session (open, pause, resume, close, minutes...).
    pub timeline: Vec<Entry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MinutesDoc {
    pub notes: String,
    pub confirmed_by: Option<String>,
    pub confirmed_ms: Option<i64>,
}

/// One event of a timeline, as stored in the log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    pub at_ms: i64,
    pub kind: String,
    pub actor: String,
    pub data: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParticipantDoc {
    pub participant: String,
    pub name: String,
    pub institution: String,
    pub district: String,
    pub province: String,
    pub test: String,
    pub session: String,
    pub nilai_awal: Option<f64>,
    pub extra_minutes: u32,
    /// Attendance as the proctor marked it (`None`: not marked).
    pub present: Option<bool>,
    pub logins: Vec<Login>,
    pub attempt: Option<AttemptDoc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub at_ms: i64,
    /// The PC's address as the server saw it.
    pub ip: String,
    /// `login`, `login_refused_active_elsewhere` or `login_locked`.
    pub kind: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttemptDoc {
    pub started_ms: i64,
    pub deadline_ms: i64,
    pub finished_ms: Option<i64>,
    pub finished_by: Option<FinishedBy>,
    /// The participant's items and option order.
    pub form: Vec<FormItem>,
    /// The last saved answer of every item answered, by item id.
    pub answers: BTreeMap<String, AnswerDoc>,
    pub score: Option<ScoreDoc>,
    /// Start, resumes, resets, time credits, pauses' credit, finish / auto-submit.
    pub timeline: Vec<Entry>,
    pub questionnaire: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnswerDoc {
    pub choice: Vec<String>,
    pub doubtful: bool,
    pub seq: u64,
    pub at_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScoreDoc {
    /// 0–100 with two decimals, e.g. `"70.01"`.
    pub total: String,
    pub predicate: String,
    pub passed: bool,
    pub by_competency: BTreeMap<String, String>,
    /// Credit per item in 1/6000ths of a point (see `exam::score`).
    pub items: BTreeMap<String, u64>,
}

impl ScoreDoc {
    pub fn from_score(s: &crate::exam::score::Score) -> ScoreDoc {
        ScoreDoc {
            total: s.total.to_string(),
            predicate: s.predicate.clone(),
            passed: s.passed,
            by_competency: s
                .by_competency
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
            items: s.items.clone(),
        }
    }
}

/// What the event log says about one participant of a session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Derived {
    pub logins: Vec<Login>,
    pub timeline: Vec<Entry>,
    pub answers: BTreeMap<String, AnswerDoc>,
    pub started_ms: Option<i64>,
    pub finished: Option<(i64, FinishedBy, String)>,
    pub questionnaire: Option<BTreeMap<String, String>>,
}

/// Per participant and for the session as a whole, from a session's events in order.
#[derive(Clone, Debug, Default)]
pub struct DerivedSession {
    pub participants: BTreeMap<String, Derived>,
    pub session: Vec<Entry>,
}

const LOGIN_KINDS: [&str; 3] = ["login", "login_refused_active_elsewhere", "login_locked"];

fn entry(e: &Event) -> Entry {
    Entry {
        seq: e.seq,
        at_ms: e.at_ms,
        kind: e.kind.clone(),
        actor: e.actor.clone(),
        data: e.data.clone(),
    }
}

/// Which participants an event concerns: its actor, or the participant(s) or attempt it
/// names.
fn concerned(e: &Event, chain: &str) -> Vec<String> {
    if let Some(n) = e.actor.strip_prefix("participant:") {
        return vec![n.to_string()];
    }
    let d = &e.data;
    if let Some(n) = d.get("participant").and_then(|v| v.as_str()) {
        return vec![n.to_string()];
    }
    if let Some(list) = d.get("participants").and_then(|v| v.as_array()) {
        return list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
    }
    if let Some(a) = d.get("attempt").and_then(|v| v.as_str())
        && let Some(n) = a.strip_prefix(chain).and_then(|r| r.strip_prefix('/'))
    {
        return vec![n.to_string()];
    }
    Vec::new()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a session chain into what each participant did. Token rotations are left out of
/// the session timeline (they carry nothing but noise).
pub fn derive(chain: &str, events: &[Event]) -> DerivedSession {
    let mut out = DerivedSession::default();
    for e in events {
        let who = concerned(e, chain);
        if who.is_empty() {
            if e.kind != "token_rotated" {
                out.session.push(entry(e));
            }
            continue;
        }
        if e.kind == "downtime_credit" {
            out.session.push(entry(e));
        }
        for n in who {
            let d = out.participants.entry(n).or_default();
            match e.kind.as_str() {
                k if LOGIN_KINDS.contains(&k) => d.logins.push(Login {
                    at_ms: e.at_ms,
                    ip: e
                        .data
                        .get("ip")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string(),
                    kind: k.to_string(),
                }),
                "answer" => {
                    if let Some(item) = e.data.get("item").and_then(|v| v.as_str()) {
                        let mut choice = strings(&e.data["choice"]);
                        choice.sort();
                        d.answers.insert(
                            item.to_string(),
                            AnswerDoc {
                                choice,
                                doubtful: e.data["doubtful"].as_bool().unwrap_or(false),
                                seq: e.data["seq"].as_u64().unwrap_or(0),
                                at_ms: e.at_ms,
                            },
                        );
                    }
                }
                "questionnaire" => {
                    d.questionnaire = serde_json::from_value(e.data["answers"].clone()).ok();
                }
                kind => {
                    if kind == "start" && d.started_ms.is_none() {
                        d.started_ms = Some(e.at_ms);
                    }
                    let by = match kind {
                        "finish" => Some(FinishedBy::Participant),
                        "auto_submit" => Some(FinishedBy::Auto),
                        "force_finish" => Some(FinishedBy::Proctor),
                        _ => None,
                    };
                    if let Some(by) = by {
                        let total = e.data["score"].as_str().unwrap_or("").to_string();
                        d.finished = Some((e.at_ms, by, total));
                    }
                    d.timeline.push(entry(e));
                }
            }
        }
    }
    out
}

//! What `bundle.json` inside a sealed bundle holds, and how the per-participant logins
//! and timelines are derived from a session's event log (the same function runs at the TUK,
//! to write them, and at the UPT, to check them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::exam::FinishedBy;
use crate::exam::events::{Event, Record};
use crate::exam::form::FormItem;
use crate::package::model::{Participant, Questionnaire};

/// Version of `bundle.json`.
pub(crate) const DOC_FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleDoc {
    pub(crate) format: u32,
    pub(crate) package: PackageRef,
    pub(crate) tuk: TukRef,
    /// When the bundle was sealed (UTC, RFC 3339), and by whom (`cli` or `staff:NAME`).
    pub(crate) sealed: String,
    pub(crate) sealed_by: String,
    /// UTC offset of the package's schedule, e.g. `+07:00`.
    pub(crate) timezone: String,
    pub(crate) sessions: Vec<SessionDoc>,
    pub(crate) questionnaire: Option<Questionnaire>,
    /// Every roster row of the sealed sessions, present or not.
    pub participants: Vec<ParticipantDoc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackageRef {
    pub(crate) id: String,
    pub(crate) version: u32,
    pub(crate) title: String,
    pub(crate) upt: String,
    /// blake3 of the `.tukpkg` file.
    pub(crate) blake3: String,
    /// The UPT key that signed the package, `ed25519:<base64>`.
    pub(crate) signer: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TukRef {
    pub(crate) name: String,
    pub(crate) signer: String,
    pub(crate) fingerprint: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionDoc {
    /// Session id within the package, e.g. `S1`.
    pub(crate) id: String,
    /// The event chain: `{package}/{session}`.
    pub(crate) chain: String,
    pub(crate) test: String,
    pub(crate) date: String,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) room: String,
    pub(crate) opened_ms: Option<i64>,
    pub(crate) closed_ms: Option<i64>,
    pub(crate) proctors: Vec<String>,
    pub(crate) minutes: Option<MinutesDoc>,
    /// Number of events in the chain and the blake3 of the last one.
    pub(crate) events: u64,
    pub(crate) head: String,
    /// Events that concern the whole session (open, pause, resume, close, minutes...).
    pub(crate) timeline: Vec<Entry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct MinutesDoc {
    pub(crate) notes: String,
    pub(crate) confirmed_by: Option<String>,
    pub(crate) confirmed_ms: Option<i64>,
}

/// One event of a timeline, as stored in the log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) at_ms: i64,
    pub(crate) kind: String,
    pub(crate) actor: String,
    pub(crate) data: serde_json::Value,
}

/// One roster row of a sealed session with what the participant did. The row's fields are
/// stored flat, first, exactly as the package's roster has them (`participant`, `name`, ...,
/// `extra_minutes`); unknown fields are still refused (serde checks what the flattened row
/// did not take).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParticipantDoc {
    #[serde(flatten)]
    pub roster: Participant,
    /// Attendance as the proctor marked it (`None`: not marked).
    pub present: Option<bool>,
    pub logins: Vec<Login>,
    pub attempt: Option<AttemptDoc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub(crate) at_ms: i64,
    /// The PC's address as the server saw it.
    pub(crate) ip: String,
    /// `login`, `login_refused_active_elsewhere` or `login_locked`.
    pub(crate) kind: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttemptDoc {
    pub(crate) started_ms: i64,
    pub(crate) deadline_ms: i64,
    pub(crate) finished_ms: Option<i64>,
    pub(crate) finished_by: Option<FinishedBy>,
    /// The participant's items and option order.
    pub(crate) form: Vec<FormItem>,
    /// The last saved answer of every item answered, by item id.
    pub answers: BTreeMap<String, AnswerDoc>,
    pub score: Option<ScoreDoc>,
    /// Start, resumes, resets, time credits, pauses' credit, finish / auto-submit.
    pub(crate) timeline: Vec<Entry>,
    pub(crate) questionnaire: Option<BTreeMap<String, String>>,
}

impl AttemptDoc {
    /// How many items have a non-empty answer (an answer cleared back to nothing does not
    /// count), as the results CSV and the UPT recap show it.
    pub(crate) fn answered(&self) -> usize {
        self.answers
            .values()
            .filter(|x| !x.choice.is_empty())
            .count()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnswerDoc {
    pub choice: Vec<String>,
    pub(crate) doubtful: bool,
    pub(crate) seq: u64,
    pub(crate) at_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScoreDoc {
    /// 0–100 with two decimals, e.g. `"70.01"`.
    pub total: String,
    pub(crate) predicate: String,
    pub(crate) passed: bool,
    pub(crate) by_competency: BTreeMap<String, String>,
    /// Credit per item in 1/6000ths of a point (see `exam::score`).
    pub items: BTreeMap<String, u64>,
}

impl ScoreDoc {
    pub(crate) fn from_score(s: &crate::exam::score::Score) -> ScoreDoc {
        ScoreDoc {
            total: s.total.to_string(),
            predicate: s.predicate.clone(),
            passed: s.passed,
            by_competency: s
                .by_competency
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
            items: s.items.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }
}

/// What the event log says about one participant of a session.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Derived {
    pub(crate) logins: Vec<Login>,
    pub(crate) timeline: Vec<Entry>,
    pub(crate) answers: BTreeMap<String, AnswerDoc>,
    pub(crate) started_ms: Option<i64>,
    pub(crate) finished: Option<(i64, FinishedBy, String)>,
    pub(crate) questionnaire: Option<BTreeMap<String, String>>,
}

/// Per participant and for the session as a whole, from a session's events in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct DerivedSession {
    pub(crate) participants: BTreeMap<String, Derived>,
    pub(crate) session: Vec<Entry>,
}

/// The stored form of an event, for a timeline.
fn entry(r: &Record) -> Entry {
    let (kind, data) = r.event.parts();
    Entry {
        seq: r.seq,
        at_ms: r.at_ms,
        kind,
        actor: r.actor.to_string(),
        data,
    }
}

/// Which participants an event concerns: its actor, or the participant(s) or attempt it
/// names.
fn concerned(r: &Record, chain: &str) -> Vec<String> {
    if let Some(n) = r.actor.participant() {
        return vec![n.to_string()];
    }
    let of_attempt = |a: &str| {
        a.strip_prefix(chain)
            .and_then(|r| r.strip_prefix('/'))
            .map(str::to_string)
            .into_iter()
            .collect()
    };
    match &r.event {
        Event::ResetLogin { participant, .. }
        | Event::ForceFinishReason { participant, .. }
        | Event::Attendance { participant, .. } => vec![participant.clone()],
        Event::TimeCredit { participants, .. } | Event::DowntimeCredit { participants, .. } => {
            participants.clone()
        }
        Event::ClockStep { participants, .. } => participants.clone().unwrap_or_default(),
        Event::Answer { attempt, .. } | Event::Questionnaire { attempt, .. } => of_attempt(attempt),
        Event::Finish(f) | Event::AutoSubmit(f) | Event::ForceFinish(f) => of_attempt(&f.attempt),
        // Events of the session or the TUK as a whole (or written by a participant, above).
        Event::Login { .. }
        | Event::LoginLocked { .. }
        | Event::LoginRefusedActiveElsewhere { .. }
        | Event::Start { .. }
        | Event::Resume { .. }
        | Event::SessionOpen { .. }
        | Event::TokenRotated {}
        | Event::Pause { .. }
        | Event::ResumeSession { .. }
        | Event::SessionClose { .. }
        | Event::LoginUnlocked { .. }
        | Event::ProctorAssign { .. }
        | Event::MinutesSaved { .. }
        | Event::MinutesConfirmed { .. }
        | Event::PackageImport { .. }
        | Event::TrustAdd { .. }
        | Event::UserAdd { .. }
        | Event::UserIdentity { .. }
        | Event::StaffLogin { .. }
        | Event::Seal { .. }
        | Event::ReopenSealed { .. }
        | Event::Reseal { .. }
        | Event::Receipt { .. }
        | Event::Purge(_)
        | Event::Unknown { .. } => Vec::new(),
    }
}

fn finished(d: &mut Derived, e: &Record, by: FinishedBy, f: &crate::exam::events::Finished) {
    d.finished = Some((e.at_ms, by, f.score.clone()));
    d.timeline.push(entry(e));
}

/// Reads a session chain into what each participant did. Token rotations are left out of
/// the session timeline (they carry nothing but noise).
///
/// Every event kind is named in the matches below (no catch-all), so a new kind does not
/// compile until it is decided where it goes. An [`Event::Unknown`] goes to the session
/// timeline verbatim; the UPT refuses a bundle holding one ([`unknown_kinds`]).
pub(crate) fn derive(chain: &str, events: &[Record]) -> DerivedSession {
    let mut out = DerivedSession::default();
    for e in events {
        let who = concerned(e, chain);
        if who.is_empty() {
            if !matches!(e.event, Event::TokenRotated {}) {
                out.session.push(entry(e));
            }
            continue;
        }
        if matches!(e.event, Event::DowntimeCredit { .. }) {
            out.session.push(entry(e));
        }
        for n in who {
            let d = out.participants.entry(n).or_default();
            match &e.event {
                Event::Login { ip }
                | Event::LoginLocked { ip, .. }
                | Event::LoginRefusedActiveElsewhere { ip } => d.logins.push(Login {
                    at_ms: e.at_ms,
                    ip: ip.clone(),
                    kind: e.event.kind(),
                }),
                Event::Answer {
                    item,
                    choice,
                    doubtful,
                    seq,
                    ..
                } => {
                    let mut choice = choice.clone();
                    choice.sort();
                    d.answers.insert(
                        item.clone(),
                        AnswerDoc {
                            choice,
                            doubtful: *doubtful,
                            seq: *seq,
                            at_ms: e.at_ms,
                        },
                    );
                }
                Event::Questionnaire { answers, .. } => {
                    d.questionnaire = Some(answers.clone());
                }
                Event::Start { .. } => {
                    if d.started_ms.is_none() {
                        d.started_ms = Some(e.at_ms);
                    }
                    d.timeline.push(entry(e));
                }
                Event::Finish(f) => finished(d, e, FinishedBy::Participant, f),
                Event::AutoSubmit(f) => finished(d, e, FinishedBy::Auto, f),
                Event::ForceFinish(f) => finished(d, e, FinishedBy::Proctor, f),
                Event::Resume { .. }
                | Event::SessionOpen { .. }
                | Event::TokenRotated {}
                | Event::Pause { .. }
                | Event::ResumeSession { .. }
                | Event::SessionClose { .. }
                | Event::ResetLogin { .. }
                | Event::TimeCredit { .. }
                | Event::ForceFinishReason { .. }
                | Event::DowntimeCredit { .. }
                | Event::ClockStep { .. }
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
                | Event::ReopenSealed { .. }
                | Event::Reseal { .. }
                | Event::Receipt { .. }
                | Event::Purge(_)
                | Event::Unknown { .. } => d.timeline.push(entry(e)),
            }
        }
    }
    out
}

/// The kinds of the events this version cannot read ([`Event::Unknown`]), in order: a
/// bundle holding one cannot be checked (its answers might hide there), so the UPT
/// refuses it and asks for an update.
pub(crate) fn unknown_kinds(events: &[Record]) -> Vec<String> {
    events
        .iter()
        .filter_map(|r| {
            if let Event::Unknown { kind, .. } = &r.event {
                Some(kind.clone())
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exam::events::{self, Actor};

    /// The roster row inside a participant's entry is stored flat, in the roster's order
    /// and before the rest, as before it was one field; an unknown field is still refused.
    #[test]
    fn participant_doc_keeps_its_flat_shape() {
        let doc = ParticipantDoc {
            roster: Participant {
                participant: "1".into(),
                name: "A".into(),
                institution: "I".into(),
                district: "D".into(),
                province: "P".into(),
                test: "t1".into(),
                session: "S1".into(),
                nilai_awal: Some(50.5),
                extra_minutes: 0,
            },
            present: None,
            logins: Vec::new(),
            attempt: None,
        };
        let json = serde_json::to_string(&doc).unwrap();
        assert_eq!(
            json,
            r#"{"participant":"1","name":"A","institution":"I","district":"D","province":"P","test":"t1","session":"S1","nilai_awal":50.5,"extra_minutes":0,"present":null,"logins":[],"attempt":null}"#
        );
        assert_eq!(serde_json::from_str::<ParticipantDoc>(&json).unwrap(), doc);
        let extra = json.replace(r#""present""#, r#""surprise":1,"present""#);
        assert!(serde_json::from_str::<ParticipantDoc>(&extra).is_err());
    }

    /// Every event kind lands somewhere in the derivation (only token rotations are left
    /// out on purpose), whoever wrote it.
    #[test]
    fn every_event_kind_is_derived() {
        for actor in [Actor::Participant("1".into()), Actor::Staff("budi".into())] {
            for e in Event::examples() {
                let mut head = events::Head::default();
                let put = events::append(&mut head, "p/S1", 5, actor.clone(), e.clone());
                let r: Record = serde_json::from_slice(put.written().unwrap_or_default()).unwrap();
                let d = derive("p/S1", std::slice::from_ref(&r));
                let placed = !d.session.is_empty()
                    || d.participants.values().any(|p| {
                        !p.logins.is_empty()
                            || !p.timeline.is_empty()
                            || !p.answers.is_empty()
                            || p.questionnaire.is_some()
                    });
                assert!(
                    placed || matches!(e, Event::TokenRotated {}),
                    "{} by {actor} is lost",
                    e.kind()
                );
            }
        }
    }
}

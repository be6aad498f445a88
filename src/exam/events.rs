//! The hash-chained event log: every answer, login, finish and staff action, in order.
//!
//! There is one chain per exam session (`{package}/{session}`) and one for the TUK itself
//! (`_tuk`), so a session's bundle carries exactly its own chain. Each event is stored as the
//! exact bytes of its JSON body, which includes `prev`, the blake3 (hex) of the previous
//! event's bytes (64 zeros for the first). An event's hash is blake3 of its bytes, so anyone
//! can re-check a chain with `b3sum` and a JSON reader; changing, removing or reordering any
//! event breaks every later link.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{Put, Table};

pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The chain of events that belong to no session (imports, user accounts, trust changes).
pub(crate) const TUK_CHAIN: &str = "_tuk";

/// Who did it. Stored as text: `system`, `cli`, `participant:NUMBER`, `staff:NAME`; any
/// other text (a test's `test`, the self-test's `selftest`) is kept as it was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The server itself (auto-submit, downtime credit, token rotation, clock steps).
    System,
    /// A command on the server's shell (`tuk package import`, `tuk seal`...).
    Cli,
    /// A participant, by participant number.
    Participant(super::ParticipantNo),
    /// A staff member of the console, by account name.
    Staff(String),
    /// Any other text, kept verbatim.
    Other(String),
}

impl Actor {
    /// Reads the stored text form (never fails: unknown text is [`Actor::Other`]).
    pub(crate) fn parse(s: &str) -> Actor {
        if s == "system" {
            Actor::System
        } else if s == "cli" {
            Actor::Cli
        } else if let Some(n) = s.strip_prefix("participant:") {
            Actor::Participant(n.into())
        } else if let Some(n) = s.strip_prefix("staff:") {
            Actor::Staff(n.to_string())
        } else {
            Actor::Other(s.to_string())
        }
    }
    pub(crate) fn participant(&self) -> Option<&str> {
        match self {
            Actor::Participant(n) => Some(n),
            _ => None,
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Cli => f.write_str("cli"),
            Actor::Participant(n) => write!(f, "participant:{n}"),
            Actor::Staff(n) => write!(f, "staff:{n}"),
            Actor::Other(s) => f.write_str(s),
        }
    }
}

impl From<&str> for Actor {
    fn from(s: &str) -> Actor {
        Actor::parse(s)
    }
}

impl From<&Actor> for Actor {
    fn from(a: &Actor) -> Actor {
        a.clone()
    }
}

/// What happened, with its details: one variant per event kind.
///
/// Stored as `"kind": "<snake_case name>", "data": {...}` (serde's adjacent tagging), the
/// shape every release wrote, so old chains read and verify unchanged. Data never holds a
/// password; answers carry the option ids chosen.
///
/// **Adding a kind**: add the variant here (and to [`Event::examples`]); the compiler then
/// points at every reader that must say what it means — the minutes
/// (`console::minutes::incident`, `kind_label`) and the UPT's derivation
/// (`seal::model::derive`). There is no catch-all arm for event kinds anywhere.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Event {
    // -- a participant's attempt (session chains) --
    /// A participant logged in (password right, browser bound).
    Login {
        ip: String,
    },
    /// Too many wrong passwords from `ip`: locked for a while (`failures` only for
    /// participants).
    LoginLocked {
        ip: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failures: Option<u32>,
    },
    /// Refused: the attempt is still bound to another browser.
    LoginRefusedActiveElsewhere {
        ip: String,
    },
    /// The attempt was created: its deadline (exam clock, ms) and number of items.
    Start {
        ip: String,
        deadline_ms: i64,
        items: usize,
    },
    /// The participant came back to a running attempt.
    Resume {
        ip: String,
    },
    /// One answer saved (`choice`: option ids, sorted; `seq`: the browser's sequence).
    Answer {
        attempt: String,
        item: String,
        choice: Vec<String>,
        doubtful: bool,
        seq: u64,
    },
    /// Submitted by the participant; `score` 0–100 with two decimals.
    Finish(Finished),
    /// Submitted by the server when the time was up.
    AutoSubmit(Finished),
    /// Submitted by a proctor (its reason follows as `ForceFinishReason`).
    ForceFinish(Finished),
    /// The evaluation questionnaire, question id → answer.
    Questionnaire {
        attempt: String,
        answers: BTreeMap<String, String>,
    },
    // -- the session (session chains) --
    SessionOpen {
        rotate_s: u64,
    },
    TokenRotated {},
    Pause {
        reason: String,
    },
    ResumeSession {
        paused_ms: i64,
    },
    SessionClose {
        forced: bool,
    },
    /// *Pindah PC*: the participant's browsers ended, the attempt free for a new login.
    ResetLogin {
        participant: String,
        reason: String,
        browsers_ended: usize,
    },
    TimeCredit {
        participants: Vec<String>,
        minutes: i64,
        reason: String,
    },
    ForceFinishReason {
        participant: String,
        reason: String,
    },
    /// The server was down from `down_from_ms` to `down_to_ms`; running attempts got it back.
    DowntimeCredit {
        down_from_ms: i64,
        down_to_ms: i64,
        credited_ms: i64,
        participants: Vec<String>,
    },
    /// The system clock stepped; deadlines moved by the same amount. Session chains list
    /// the `participants` shifted, the TUK chain the `sessions`.
    ClockStep {
        step_ms: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        participants: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sessions: Option<Vec<String>>,
    },
    /// A proctor lifted the login locks an address caused (`counters` cleared).
    LoginUnlocked {
        ip: String,
        counters: usize,
    },
    Attendance {
        participant: String,
        present: bool,
    },
    ProctorAssign {
        proctor: String,
        assigned: bool,
    },
    MinutesSaved {
        notes: String,
    },
    MinutesConfirmed {
        notes: String,
    },
    // -- the TUK itself (`_tuk` chain) --
    PackageImport {
        package: String,
        version: u32,
        file_blake3: String,
        upt: String,
        participants: usize,
        sessions: usize,
    },
    TrustAdd {
        name: String,
        fingerprint: String,
    },
    UserAdd {
        user: String,
        role: super::Role,
    },
    /// An admin set a staff account's full name and NIP (for the minutes' signatures).
    UserIdentity {
        user: String,
        full_name: String,
        nip: String,
    },
    StaffLogin {
        ip: String,
    },
    /// A sealed session was opened again by an admin, with the reason (issue 13).
    ReopenSealed {
        reason: String,
    },
    /// The session was sealed again on purpose: the earlier bundle (`superseded`, its
    /// BLAKE3, made at `superseded_created`) is replaced; both stay in the log.
    Reseal {
        superseded: String,
        superseded_created: String,
        bundles_before: usize,
    },
    Seal {
        bundle_id: String,
        blake3: String,
        sessions: Vec<String>,
        chains: Vec<SealedChain>,
        participants: u64,
        forced: Vec<String>,
    },
    Receipt {
        bundle: String,
        sessions: Vec<String>,
        upt: String,
        received: String,
    },
    Purge(PurgeRecord),
    /// An event this version cannot read: a kind from a newer tuk, or details in a shape
    /// its variant does not write back byte for byte. Kept verbatim (the chain verifies);
    /// the console shows it as unknown, the UPT refuses a bundle holding one.
    #[serde(skip)]
    Unknown {
        kind: String,
        data: Value,
    },
}

/// The details of a finish, auto-submit or force-finish.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub(crate) attempt: String,
    /// 0–100 with two decimals, e.g. `"70.01"`.
    pub(crate) score: String,
    pub(crate) answered: usize,
}

/// A sealed chain as the `seal` event names it (the bundle header's `ChainHead`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SealedChain {
    pub(crate) chain: String,
    pub(crate) events: u64,
    pub(crate) head: String,
}

/// What a purge removed (also stored in the `results` table under `purged`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PurgeRecord {
    pub(crate) session: String,
    pub(crate) bundle_blake3: String,
    pub(crate) purged: String,
    pub(crate) attempts: usize,
    pub(crate) answers: usize,
    pub(crate) events: usize,
    pub(crate) credentials: usize,
}

impl Event {
    /// The stored `kind` and `data`.
    pub(crate) fn parts(&self) -> (String, Value) {
        if let Event::Unknown { kind, data } = self {
            return (kind.clone(), data.clone());
        }
        // Plain data: serialising cannot fail.
        let mut v = serde_json::to_value(self).unwrap_or_default();
        let kind = v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let data = v.get_mut("data").map(Value::take).unwrap_or(Value::Null);
        (kind, data)
    }

    /// The stored kind, e.g. `answer`.
    pub(crate) fn kind(&self) -> String {
        self.parts().0
    }

    /// Reads a stored `kind` and `data`: a variant only when it writes back exactly what
    /// is stored, [`Event::Unknown`] otherwise.
    pub(crate) fn from_parts(kind: &str, data: Value) -> Event {
        let tagged = serde_json::json!({"kind": kind, "data": data});
        match serde_json::from_value::<Event>(tagged) {
            Ok(e) if e.parts().1 == data => e,
            _ => Event::Unknown {
                kind: kind.to_string(),
                data,
            },
        }
    }
}

/// One stored event: where it sits in its chain, when (exam clock, ms), who, what, and the
/// hash of the event before it.
///
/// Stored as the exact bytes of `{"chain","seq","at_ms","kind","actor","data","prev"}` (the
/// data's keys sorted), byte for byte what every earlier release wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub(crate) chain: String,
    pub(crate) seq: u64,
    pub(crate) at_ms: i64,
    pub(crate) actor: Actor,
    pub event: Event,
    /// blake3 (hex) of the previous event's bytes; [`GENESIS`] for the first.
    pub(crate) prev: String,
}

/// The stored form of a [`Record`], field by field as text: for checks and tools that look
/// at the log as stored without interpreting it (chain verification, tests).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub(crate) chain: String,
    pub(crate) seq: u64,
    pub at_ms: i64,
    pub kind: String,
    pub actor: String,
    pub data: Value,
    pub(crate) prev: String,
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (kind, data) = self.event.parts();
        Stored {
            chain: self.chain.clone(),
            seq: self.seq,
            at_ms: self.at_ms,
            kind,
            actor: self.actor.to_string(),
            data,
            prev: self.prev.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Record, D::Error> {
        let w = Stored::deserialize(d)?;
        Ok(Record {
            event: Event::from_parts(&w.kind, w.data),
            chain: w.chain,
            seq: w.seq,
            at_ms: w.at_ms,
            actor: Actor::parse(&w.actor),
            prev: w.prev,
        })
    }
}

/// Where a chain stands: the next sequence number and the hash to link to.
#[derive(Clone, Debug)]
pub struct Head {
    pub(crate) next_seq: u64,
    pub(crate) hash: String,
}

impl Default for Head {
    fn default() -> Head {
        Head {
            next_seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

pub fn event_key(chain: &str, seq: u64) -> String {
    crate::store::join_key(chain, &format!("{seq:020}"))
}

/// Appends an event to a chain head, returning the put that stores it.
pub fn append(head: &mut Head, chain: &str, at_ms: i64, actor: Actor, event: Event) -> Put {
    let ev = Record {
        chain: chain.to_string(),
        seq: head.next_seq,
        at_ms,
        actor,
        event,
        prev: head.hash.clone(),
    };
    let bytes = serde_json::to_vec(&ev).unwrap_or_default();
    head.hash = blake3::hash(&bytes).to_hex().to_string();
    head.next_seq += 1;
    Put::bytes(Table::Events, event_key(chain, ev.seq), bytes)
}

/// Checks a chain given as the stored bytes of its events in order. Returns the head hash.
pub fn verify_chain<'a>(chain: &str, events: impl IntoIterator<Item = &'a [u8]>) -> Result<String> {
    let mut prev = GENESIS.to_string();
    for (i, bytes) in events.into_iter().enumerate() {
        let ev: Stored = serde_json::from_slice(bytes)
            .map_err(|_| anyhow::anyhow!("event {i} of chain {chain} is not valid JSON"))?;
        if ev.chain != chain || ev.seq != i as u64 {
            bail!(
                "event {i} of chain {chain} is out of place (seq {})",
                ev.seq
            );
        }
        if ev.prev != prev {
            bail!(
                "event {i} of chain {chain} does not link to the event before it: the log was changed"
            );
        }
        prev = blake3::hash(bytes).to_hex().to_string();
    }
    Ok(prev)
}

/// One chain as [`verify_store`] found it.
#[derive(Debug)]
pub struct ChainCheck {
    pub(crate) chain: String,
    pub(crate) events: usize,
    /// The head hash when every link holds, or what is wrong.
    pub result: Result<String>,
}

/// Re-checks every chain in the store from its first event (the whole log: this reads
/// and hashes every event, so it is a command, `tuk verify`, not part of start-up).
pub fn verify_store(store: &crate::store::Store) -> Result<Vec<ChainCheck>> {
    let mut out = Vec::new();
    for (chain, _) in store.chain_heads()? {
        let rows = store.scan_prefix(Table::Events, &format!("{chain}\u{1f}"))?;
        let result = verify_chain(&chain, rows.iter().map(|(_, v)| v.as_slice()));
        out.push(ChainCheck {
            chain,
            events: rows.len(),
            result,
        });
    }
    Ok(out)
}

#[cfg(test)]
impl Event {
    /// One example of every kind, for the tests that check every reader handles all.
    pub(crate) fn examples() -> Vec<Event> {
        let s = |x: &str| x.to_string();
        let fin = || Finished {
            attempt: s("p/S1/1"),
            score: s("70.00"),
            answered: 3,
        };
        vec![
            Event::Login { ip: s("10.0.0.2") },
            Event::LoginLocked {
                ip: s("10.0.0.2"),
                failures: Some(8),
            },
            Event::LoginRefusedActiveElsewhere { ip: s("10.0.0.3") },
            Event::Start {
                ip: s("10.0.0.2"),
                deadline_ms: 3_600_000,
                items: 40,
            },
            Event::Resume { ip: s("10.0.0.2") },
            Event::Answer {
                attempt: s("p/S1/1"),
                item: s("Q1"),
                choice: vec![s("a")],
                doubtful: false,
                seq: 1,
            },
            Event::Finish(fin()),
            Event::AutoSubmit(fin()),
            Event::ForceFinish(fin()),
            Event::Questionnaire {
                attempt: s("p/S1/1"),
                answers: BTreeMap::from([(s("q1"), s("Setuju"))]),
            },
            Event::SessionOpen { rotate_s: 900 },
            Event::TokenRotated {},
            Event::Pause {
                reason: s("Listrik padam"),
            },
            Event::ResumeSession { paused_ms: 60_000 },
            Event::SessionClose { forced: false },
            Event::ResetLogin {
                participant: s("1"),
                reason: s("Komputer mati / hang"),
                browsers_ended: 1,
            },
            Event::TimeCredit {
                participants: vec![s("1")],
                minutes: 5,
                reason: s("PC mati"),
            },
            Event::ForceFinishReason {
                participant: s("1"),
                reason: s("Menyontek"),
            },
            Event::DowntimeCredit {
                down_from_ms: 0,
                down_to_ms: 60_000,
                credited_ms: 60_000,
                participants: vec![s("1")],
            },
            Event::ClockStep {
                step_ms: 3_600_000,
                participants: Some(vec![s("1")]),
                sessions: None,
            },
            Event::LoginUnlocked {
                ip: s("10.0.0.2"),
                counters: 2,
            },
            Event::Attendance {
                participant: s("1"),
                present: true,
            },
            Event::ProctorAssign {
                proctor: s("budi"),
                assigned: true,
            },
            Event::MinutesSaved { notes: s("Aman") },
            Event::MinutesConfirmed { notes: s("Aman") },
            Event::PackageImport {
                package: s("p"),
                version: 1,
                file_blake3: s("ab"),
                upt: s("UPT"),
                participants: 30,
                sessions: 1,
            },
            Event::TrustAdd {
                name: s("upt"),
                fingerprint: s("ab"),
            },
            Event::UserAdd {
                user: s("budi"),
                role: super::Role::Proctor,
            },
            Event::UserIdentity {
                user: s("budi"),
                full_name: s("Budi Santoso, S.Pd."),
                nip: s("197001012000031001"),
            },
            Event::StaffLogin { ip: s("10.0.0.9") },
            Event::ReopenSealed {
                reason: s("nilai peserta 07 perlu diperiksa ulang"),
            },
            Event::Reseal {
                superseded: s("ab12"),
                superseded_created: s("2026-11-24T10:00:00+07:00"),
                bundles_before: 1,
            },
            Event::Seal {
                bundle_id: s("b"),
                blake3: s("ab"),
                sessions: vec![s("p/S1")],
                chains: vec![SealedChain {
                    chain: s("p/S1"),
                    events: 3,
                    head: s("ab"),
                }],
                participants: 30,
                forced: Vec::new(),
            },
            Event::Receipt {
                bundle: s("ab"),
                sessions: vec![s("S1")],
                upt: s("UPT"),
                received: s("2026-05-01T10:00:00Z"),
            },
            Event::Purge(PurgeRecord {
                session: s("p/S1"),
                bundle_blake3: s("ab"),
                purged: s("2026-05-02T10:00:00Z"),
                attempts: 30,
                answers: 900,
                events: 1000,
                credentials: 30,
            }),
            Event::Unknown {
                kind: s("from_the_future"),
                data: serde_json::json!({"x": 1}),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_detects_changes() {
        let mut head = Head::default();
        let puts: Vec<Put> = (0..5)
            .map(|i| {
                append(
                    &mut head,
                    "s",
                    i,
                    Actor::System,
                    Event::Attendance {
                        participant: format!("{i}"),
                        present: true,
                    },
                )
            })
            .collect();
        let bytes: Vec<Vec<u8>> = puts.iter().map(|p| p.written().unwrap().to_vec()).collect();
        assert_eq!(
            verify_chain("s", bytes.iter().map(|b| b.as_slice())).unwrap(),
            head.hash
        );
        let mut bad = bytes.clone();
        bad[2] = String::from_utf8(bad[2].clone())
            .unwrap()
            .replace("\"participant\":\"2\"", "\"participant\":\"9\"")
            .into_bytes();
        assert!(verify_chain("s", bad.iter().map(|b| b.as_slice())).is_err());
        let mut dropped = bytes.clone();
        dropped.remove(1);
        assert!(verify_chain("s", dropped.iter().map(|b| b.as_slice())).is_err());
    }

    /// Every variant has an example (a new variant without one fails here: add it to
    /// [`Event::examples`]), and every example but `Unknown` writes back what it reads.
    #[test]
    fn examples_cover_every_kind_and_round_trip() {
        let index = |e: &Event| match e {
            Event::Login { .. } => 0,
            Event::LoginLocked { .. } => 1,
            Event::LoginRefusedActiveElsewhere { .. } => 2,
            Event::Start { .. } => 3,
            Event::Resume { .. } => 4,
            Event::Answer { .. } => 5,
            Event::Finish(_) => 6,
            Event::AutoSubmit(_) => 7,
            Event::ForceFinish(_) => 8,
            Event::Questionnaire { .. } => 9,
            Event::SessionOpen { .. } => 10,
            Event::TokenRotated {} => 11,
            Event::Pause { .. } => 12,
            Event::ResumeSession { .. } => 13,
            Event::SessionClose { .. } => 14,
            Event::ResetLogin { .. } => 15,
            Event::TimeCredit { .. } => 16,
            Event::ForceFinishReason { .. } => 17,
            Event::DowntimeCredit { .. } => 18,
            Event::ClockStep { .. } => 19,
            Event::LoginUnlocked { .. } => 20,
            Event::Attendance { .. } => 21,
            Event::ProctorAssign { .. } => 22,
            Event::MinutesSaved { .. } => 23,
            Event::MinutesConfirmed { .. } => 24,
            Event::PackageImport { .. } => 25,
            Event::TrustAdd { .. } => 26,
            Event::UserAdd { .. } => 27,
            Event::StaffLogin { .. } => 28,
            Event::Seal { .. } => 29,
            Event::Receipt { .. } => 30,
            Event::Purge(_) => 31,
            Event::Unknown { .. } => 32,
            Event::UserIdentity { .. } => 33,
            Event::ReopenSealed { .. } => 34,
            Event::Reseal { .. } => 35,
        };
        let mut seen = [false; 36];
        let mut head = Head::default();
        for e in Event::examples() {
            seen[index(&e)] = true;
            let put = append(&mut head, "c", 1, Actor::Staff("budi".into()), e.clone());
            let bytes = put.written().unwrap().to_vec();
            let back: Record = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back.event, e, "{}", String::from_utf8_lossy(&bytes));
            assert_eq!(back.actor, Actor::Staff("budi".into()));
            assert_eq!(serde_json::to_vec(&back).unwrap(), bytes);
        }
        assert!(
            seen.iter().all(|s| *s),
            "an event kind without an example: {seen:?}"
        );
    }

    #[test]
    fn a_known_kind_in_another_shape_is_kept_verbatim() {
        let data = serde_json::json!({"ip": "10.0.0.1", "extra": true});
        let e = Event::from_parts("login", data.clone());
        assert_eq!(
            e,
            Event::Unknown {
                kind: "login".into(),
                data: data.clone()
            }
        );
        assert_eq!(e.parts(), ("login".to_string(), data));
        assert_eq!(Actor::parse("selftest").to_string(), "selftest");
    }

    /// The store the previous release wrote (tests/fixtures/store-0.1.0): every event
    /// reads as a known kind, writes back byte for byte, and its chain verifies.
    #[test]
    fn events_of_the_previous_release_read_and_write_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-0.1.0");
        for f in ["tuk.redb", "tuk.pub"] {
            std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
        }
        let store = crate::store::Store::open(dir.path()).unwrap();
        let mut kinds = std::collections::BTreeSet::new();
        let mut count = 0;
        for (chain, _) in store.chain_heads().unwrap() {
            let rows = store
                .scan_prefix(Table::Events, &format!("{chain}\u{1f}"))
                .unwrap();
            verify_chain(&chain, rows.iter().map(|(_, v)| v.as_slice())).unwrap();
            for (_, bytes) in rows {
                let r: Record = serde_json::from_slice(&bytes).unwrap();
                assert!(
                    !matches!(r.event, Event::Unknown { .. }),
                    "{}",
                    String::from_utf8_lossy(&bytes)
                );
                kinds.insert(r.event.kind());
                assert_eq!(serde_json::to_vec(&r).unwrap(), bytes);
                count += 1;
            }
        }
        assert!(count > 0 && kinds.contains("answer"), "{kinds:?}");
    }
}

//! The exam: sessions, attempts and answers, as one in-memory state that only the store's
//! writer thread mutates.
//!
//! Reads (a question page, the state poll, the proctor's board) take a read lock and never
//! touch the disk. Every change is a function `FnOnce(&mut Exam) -> (Vec<Put>, T)` run by
//! the writer ([`crate::store`]): it checks the rules against the current state, changes the
//! state, and returns the puts that make the change durable. The caller gets `T` only after
//! the batch committed, so "saved" always means "on disk".
//!
//! The rules of an attempt live here: one browser per attempt, a server-side deadline,
//! idempotent saves ordered by a client sequence number, automatic submission, and credit for
//! server downtime.

pub mod events;
pub mod form;
pub(crate) mod proctor;
pub mod score;
pub(crate) mod secrets;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

pub use crate::ids::{AttemptKey, CookieId, ParticipantNo, SessionKey};
use crate::keys::{SecretKey, TrustSet};
use crate::package::model::{Item, Manifest, Participant, Questionnaire, TestSpec};
use crate::package::{self, Header, ItemBank};
use crate::store::{Durable, Put, Store, Table, join_key};
use events::{Actor, Event, Finished, Head};
use form::{FormItem, Id, Ids};
use score::Score;

/// Answers that arrive this long after the deadline were in flight and are still taken.
pub(crate) const GRACE_MS: i64 = 5_000;
/// A token that was rotated out stays valid this long.
pub const TOKEN_GRACE_MS: i64 = 120_000;
/// A server gap shorter than this is not credited (normal restarts, heartbeat jitter).
pub(crate) const DOWNTIME_MIN_MS: i64 = 1_000;
/// At start, a clock this far (ms) before the last alive mark is a clock set back.
pub(crate) const CLOCK_BEHIND_MAX_MS: i64 = 2_000;
/// At start, a gap this long (ms) since the last alive mark while attempts were running is
/// implausible for an outage during an exam: more likely a clock set years ahead.
pub(crate) const CLOCK_AHEAD_MAX_MS: i64 = 24 * 3_600_000;
/// Failed logins from one address before that address is locked for that account (the
/// default of [`crate::auth::Policy`], which also says for how long).
pub const LOGIN_LOCK_AFTER: u32 = 8;
/// Saves per browser session: a burst of 200 (the page script's offline buffer sends every
/// unsent answer at once when the network comes back), then 20 per second
/// (`TUK_SAVE_BURST`, `TUK_SAVE_RATE`). A person never gets near it; a script in a loop does.
pub(crate) const SAVE_RATE: (u32, f64) = (200, 20.0);

/// The public part of an imported package (everything but items, keys and media).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackageInfo {
    pub(crate) header: Header,
    pub(crate) file_hash: String,
    pub(crate) manifest: Manifest,
    pub roster: Vec<Participant>,
    pub(crate) questionnaire: Option<Questionnaire>,
}

impl PackageInfo {
    pub(crate) fn offset_s(&self) -> i32 {
        package::model::parse_offset(&self.manifest.timezone).unwrap_or(7 * 3600)
    }
    pub(crate) fn test(&self, id: &str) -> Option<&TestSpec> {
        self.manifest.tests.iter().find(|t| t.id == id)
    }
    pub(crate) fn participant(
        &self,
        number: &ParticipantNo,
        session: &str,
    ) -> Option<&Participant> {
        self.roster
            .iter()
            .find(|p| p.participant == number && p.session == session)
    }
}

/// Unlocked items of a package, indexed by id. Exists only while a session of it is open.
pub struct OpenBank {
    pub(crate) bank: ItemBank,
    index: HashMap<String, usize>,
}

impl OpenBank {
    pub(crate) fn new(bank: ItemBank) -> OpenBank {
        let index = bank
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.id.clone(), i))
            .collect();
        OpenBank { bank, index }
    }
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.index.get(id).map(|&i| &self.bank.items[i])
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Credential {
    /// argon2id PHC string.
    pub(crate) phc: String,
    /// The password, age-encrypted to this TUK's key, for printing login cards.
    pub(crate) sealed: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SessionStatus {
    Scheduled,
    Open { opened_ms: i64 },
    Paused { opened_ms: i64, since_ms: i64 },
    Closed { opened_ms: i64, closed_ms: i64 },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Token {
    pub current: String,
    pub previous: Option<String>,
    pub rotated_ms: i64,
    pub rotate_s: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub key: SessionKey,
    pub package: String,
    pub id: String,
    pub status: SessionStatus,
    pub token: Option<Token>,
    /// The release code, age-encrypted to this TUK's key, so a restart reopens the session
    /// without anyone typing it again.
    pub release_code: Option<String>,
    #[serde(default)]
    pub proctors: Vec<String>,
    /// Attendance as the proctor marked it (participant → present).
    #[serde(default)]
    pub attendance: BTreeMap<ParticipantNo, bool>,
    /// The proctor's part of the minutes (*berita acara*).
    #[serde(default)]
    pub minutes: Option<Minutes>,
    /// The last re-opening of this session after its results were sealed (an admin's
    /// decision with a reason; the `reopen_sealed` event carries it to the minutes).
    #[serde(default)]
    pub reopened_after_seal: Option<Reopen>,
}

/// Who re-opened a sealed session, when, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Reopen {
    pub(crate) by: String,
    pub(crate) at_ms: i64,
    pub(crate) reason: String,
}

/// What the proctor adds to the generated minutes, and their confirmation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Minutes {
    pub(crate) notes: String,
    pub(crate) confirmed_by: Option<String>,
    pub(crate) confirmed_ms: Option<i64>,
}

impl Session {
    /// A session as a package import creates it: scheduled, no token, no proctors,
    /// attendance, minutes or re-opening yet. `key` is `package/id` ([`SessionKey::of`]).
    pub fn scheduled(key: SessionKey, package: &str, id: &str) -> Session {
        Session {
            key,
            package: package.to_string(),
            id: id.to_string(),
            status: SessionStatus::Scheduled,
            token: None,
            release_code: None,
            proctors: Vec::new(),
            attendance: BTreeMap::new(),
            minutes: None,
            reopened_after_seal: None,
        }
    }
    pub(crate) fn is_running(&self) -> bool {
        matches!(
            self.status,
            SessionStatus::Open { .. } | SessionStatus::Paused { .. }
        )
    }
    pub(crate) fn paused_since(&self) -> Option<i64> {
        match self.status {
            SessionStatus::Paused { since_ms, .. } => Some(since_ms),
            _ => None,
        }
    }
    fn token_matches(&self, typed: &str, now: i64) -> bool {
        let Some(t) = &self.token else { return false };
        t.current == typed
            || (t.previous.as_deref() == Some(typed) && now - t.rotated_ms <= TOKEN_GRACE_MS)
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FinishedBy {
    Participant,
    Auto,
    Proctor,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AttemptStatus {
    Running,
    Finished {
        at_ms: i64,
        by: FinishedBy,
        score: Score,
    },
}

/// One saved answer. Stored as JSON `{"choice": ["b"], "doubtful": false, "seq": 3,
/// "at_ms": ...}` in the answers table under `{attempt}\u{1f}{item}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Answer {
    /// Option ids, sorted; one shared copy per distinct choice ([`Ids`]).
    pub choice: Ids,
    pub doubtful: bool,
    pub seq: u64,
    pub at_ms: i64,
}

impl Answer {
    /// Whether this answer's choice is `choice` (sorted option ids).
    pub(crate) fn same_choice(&self, choice: &[String]) -> bool {
        self.choice.len() == choice.len() && self.choice.iter().zip(choice).all(|(a, b)| a == b)
    }
    /// The choice as owned strings (for scoring, pages and exports).
    pub fn choice_strings(&self) -> Vec<String> {
        self.choice.iter().map(|c| c.to_string()).collect()
    }
}

/// An attempt's answers by item id: a vector sorted by id (at most one entry per form
/// item, 40 or so). Replaces a `HashMap<String, Answer>` (issue 17): at 2,000 participants
/// × 40 answers the map's empty buckets and a key string per answer were ≈ 10 MiB.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answers(Vec<(Id, Answer)>);

impl Answers {
    fn find(&self, item: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(item))
    }
    /// The answer to item `item`, if one was saved.
    pub fn get(&self, item: &str) -> Option<&Answer> {
        self.find(item).ok().map(|i| &self.0[i].1)
    }
    /// Sets the answer to item `item`, replacing an earlier one.
    pub(crate) fn insert(&mut self, item: &str, answer: Answer) {
        match self.find(item) {
            Ok(i) => self.0[i].1 = answer,
            Err(i) => {
                // Grow by a few entries at a time, not by doubling: an attempt ends near
                // its form's length, and the spare room of 2,000 doubled vectors adds up.
                if self.0.len() == self.0.capacity() {
                    self.0.reserve_exact(8);
                }
                self.0.insert(i, (Id::new(item), answer));
            }
        }
    }
    /// The answers, by item id in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Answer)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
    pub(crate) fn values(&self) -> impl Iterator<Item = &Answer> {
        self.0.iter().map(|(_, v)| v)
    }
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attempt {
    pub key: AttemptKey,
    pub session: SessionKey,
    pub package: String,
    pub participant: ParticipantNo,
    pub test: String,
    pub form: Vec<FormItem>,
    pub started_ms: i64,
    pub deadline_ms: i64,
    pub status: AttemptStatus,
    /// Cookie id of the one browser allowed to work on this attempt.
    pub browser: Option<CookieId>,
    #[serde(default)]
    pub questionnaire: Option<BTreeMap<String, String>>,
    /// Loaded from the answers table, not stored with the attempt.
    #[serde(skip)]
    pub answers: Answers,
}

impl Attempt {
    pub(crate) fn remaining_ms(&self, session: &Session, now: i64) -> i64 {
        let at = session.paused_since().unwrap_or(now);
        (self.deadline_ms - at).max(0)
    }
    pub(crate) fn is_running(&self) -> bool {
        self.status == AttemptStatus::Running
    }
    /// The highest sequence number seen: the no-JavaScript form continues from it.
    pub(crate) fn max_seq(&self) -> u64 {
        self.answers.values().map(|a| a.seq).max().unwrap_or(0)
    }
    pub(crate) fn answered(&self) -> usize {
        self.answers
            .values()
            .filter(|a| !a.choice.is_empty())
            .count()
    }
    pub(crate) fn doubtful(&self) -> usize {
        self.answers.values().filter(|a| a.doubtful).count()
    }
    pub(crate) fn position(&self, item_id: &str) -> Option<usize> {
        self.form.iter().position(|f| f.item == item_id)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Who {
    Participant {
        number: ParticipantNo,
        /// The session the participant gave the right token for.
        admitted: Option<SessionKey>,
    },
    Staff {
        user: String,
        csrf: String,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WebSession {
    pub(crate) who: Who,
    pub(crate) created_ms: i64,
    pub(crate) ip: String,
    #[serde(skip)]
    pub(crate) bad_tokens: u32,
}

/// What the proctor's board shows of a browser between saves (memory only).
#[derive(Clone, Debug, Default)]
pub(crate) struct Live {
    pub(crate) last_seen_ms: i64,
    pub(crate) unsaved: u32,
    pub(crate) ip: String,
}

/// Counters for `/metrics` and the benchmarks.
#[derive(Clone, Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) commits: u64,
    pub(crate) jobs: u64,
    pub(crate) answers_saved: u64,
    pub(crate) batch_max: usize,
    pub(crate) commit_us_total: u64,
}

/// A rule said no, and why. The rules know nothing of HTTP: the status, the stable code
/// and the words of each are in `server::refusal` (the one place to add one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Wrong participant number or password.
    BadLogin,
    /// Too many wrong passwords or tokens from this address (see [`LOGIN_LOCK_AFTER`]).
    LoginLocked,
    /// More saves than [`SAVE_RATE`] allows: a loop, not a person.
    TooManySaves,
    /// The attempt is bound to another browser that is still logged in.
    AlreadyActive,
    NotLoggedIn,
    /// No running session has this token (or it rotated out more than
    /// [`TOKEN_GRACE_MS`] ago).
    BadToken,
    /// The participant is not on the roster of the session (or of the token's session).
    NotRegistered,
    /// No attempt yet (or no session admitted by token).
    NotStarted,
    SessionPaused,
    SessionClosed,
    /// The attempt (or the questionnaire) is already finished.
    Finished,
    /// Later than the deadline plus [`GRACE_MS`].
    DeadlinePassed,
    /// An older sequence number than the stored answer's (or the same with other content).
    StaleSeq,
    /// An item not on the participant's own form.
    UnknownItem,
    /// Options not on the item, several for a single-answer item, or a bad `seq`.
    InvalidChoice,
    /// A proctor moved the participant to another PC: this browser is no longer theirs.
    MovedToOtherPc,
    /// The questionnaire comes after the test.
    NotFinished,
    InvalidInput,
    /// The store could not make the change durable (or make a secret).
    StoreFailed,
    /// The staff member's role or assignment does not allow it.
    Forbidden,
    NotFound,
    AlreadyOpen,
    NotOpen,
    NotPaused,
    /// Closing without `force` while attempts run.
    AttemptsRunning,
    NoSuchProctor,
    /// Minutes are confirmed only after the session is closed.
    SessionRunning,
    /// Confirmed minutes do not change.
    MinutesConfirmed,
    /// Proctor actions need a reason of 1–200 characters.
    ReasonRequired,
    /// The session's results were sealed: it re-opens only by an admin with a reason.
    SessionSealed,
    /// Sealed before: sealing again must be asked for as a re-seal.
    AlreadySealed,
}

pub(crate) type Outcome<T> = std::result::Result<T, Refused>;

/// The whole exam state of this TUK.
pub struct Exam {
    pub(crate) tuk_key: Arc<SecretKey>,
    pub catalog: BTreeMap<String, PackageInfo>,
    pub banks: HashMap<String, Arc<OpenBank>>,
    pub credentials: HashMap<ParticipantNo, Credential>,
    pub sessions: BTreeMap<SessionKey, Session>,
    /// Attempts (with their answers) of the sessions that are not closed, by attempt key,
    /// plus any closed-session attempt a rule touched since. A closed session's attempts
    /// live in the store only (see [`Exam::attempts_of`]): start-up reads only what live
    /// sessions need (issue 12).
    pub attempts: HashMap<AttemptKey, Attempt>,
    /// Closed sessions whose attempts are not in [`Exam::attempts`] but in the store only:
    /// those closed when the state was loaded, and those evicted once their close was
    /// durable ([`Durable::committed`]).
    pub(crate) stored_only: HashSet<SessionKey>,
    /// Sessions closed in the batch being committed: their attempts leave memory once the
    /// commit is durable.
    evict: Vec<SessionKey>,
    /// The store the state was loaded from (None for the rule tests' in-memory exam): read
    /// for closed sessions' attempts.
    pub(crate) store: Option<Arc<Store>>,
    pub(crate) web: HashMap<CookieId, WebSession>,
    pub(crate) heads: HashMap<String, Head>,
    pub(crate) live: HashMap<AttemptKey, Live>,
    /// Failed-login counters and locks of every login of this server (memory only; see
    /// [`crate::auth`]).
    pub(crate) logins: Arc<crate::auth::Guard>,
    /// Saves per attempt: a loop is refused, a person never notices (see [`SAVE_RATE`]).
    pub(crate) save_rate: Arc<crate::auth::Rate>,
    pub(crate) metrics: Metrics,
    /// True while `tuk serve` runs: only then do commits record "the server is alive"
    /// (offline commands must not hide a crash's downtime).
    pub(crate) serving: bool,
    pub(crate) users: BTreeMap<String, User>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct User {
    /// The login name (`[A-Za-z0-9._-]`).
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) phc: String,
    /// Full name as signed on the minutes and attendance list (e.g. `Drs. Budi Santoso`);
    /// empty until an admin sets it on `/admin/pengguna`. Absent in stores written before
    /// it existed (serde default), and not written while empty, so older readers agree.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) full_name: String,
    /// NIP (civil-servant number) printed under the signature; empty when unknown or not a
    /// civil servant. Stored like [`User::full_name`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) nip: String,
}

impl User {
    /// The name to print under a signature: the full name when set, else the login name.
    pub(crate) fn display_name(&self) -> &str {
        if self.full_name.trim().is_empty() {
            &self.name
        } else {
            &self.full_name
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Proctor,
}

/// What `POST /api/v1/start` and the start page tell the participant.
#[derive(Clone, Debug, Serialize)]
pub struct Started {
    pub(crate) attempt: AttemptKey,
    pub(crate) items: usize,
    pub(crate) deadline: String,
    pub(crate) remaining_ms: i64,
}

const META_ALIVE: &str = "alive_ms";

/// One session's attempts as [`Exam::attempts_of`] gives them: the in-memory ones first
/// (a live session's, or a closed session's attempt a rule changed since), then those
/// read from the store.
pub(crate) struct SessionAttempts<'a> {
    memory: &'a HashMap<AttemptKey, Attempt>,
    skey: SessionKey,
    stored: HashMap<AttemptKey, Attempt>,
}

impl SessionAttempts<'_> {
    /// The attempt with key `akey` (`session key/participant`), if it exists.
    pub(crate) fn get(&self, akey: &str) -> Option<&Attempt> {
        match self.memory.get(akey) {
            Some(a) if a.session == self.skey => Some(a),
            _ => self.stored.get(akey),
        }
    }
    /// The attempt of participant `number`.
    pub(crate) fn of(&self, number: &ParticipantNo) -> Option<&Attempt> {
        self.get(&AttemptKey::of(&self.skey, number))
    }
    /// Every attempt of the session, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Attempt> {
        let memory = self.memory.values().filter(|a| a.session == self.skey);
        let stored = self
            .stored
            .values()
            .filter(|a| !self.memory.contains_key(&a.key));
        memory.chain(stored)
    }
    pub(crate) fn len(&self) -> usize {
        self.values().count()
    }
}

fn decode<T: for<'de> Deserialize<'de>>(table: Table, k: &str, v: &[u8]) -> Result<T> {
    serde_json::from_slice(v).with_context(|| format!("damaged record {k:?} in {table:?}"))
}

/// The stored attempts of session `skey` with their answers, by attempt key: the ONE place
/// that decodes stored attempts and answers into memory (start-up, the reload after a
/// failed commit, and every read of a closed session go through it). Attempt keys are
/// `skey/participant`; answer keys `attempt key \u{1f} item id`. An answer whose attempt
/// is not stored is skipped (as it always was).
///
/// Errors: the store cannot be read, or a record is damaged (the error names it).
pub(crate) fn decode_attempts(store: &Store, skey: &str) -> Result<HashMap<AttemptKey, Attempt>> {
    let prefix = format!("{skey}/");
    let mut out = HashMap::new();
    for (k, v) in store.scan_prefix(Table::Attempts, &prefix)? {
        let a: Attempt = decode(Table::Attempts, &k, &v)?;
        out.insert(AttemptKey::new(k), a);
    }
    for (k, v) in store.scan_prefix(Table::Answers, &prefix)? {
        let Some((attempt, item)) = k.split_once('\u{1f}') else {
            continue;
        };
        let a: Answer = decode(Table::Answers, &k, &v)?;
        if let Some(at) = out.get_mut(attempt) {
            at.answers.insert(item, a);
        }
    }
    Ok(out)
}

impl Exam {
    /// An exam with nothing imported, in memory only (what [`Exam::load`] fills from the
    /// store; the rule tests build on it without one).
    pub(crate) fn empty(tuk_key: Arc<SecretKey>) -> Exam {
        Exam {
            tuk_key,
            catalog: BTreeMap::new(),
            banks: HashMap::new(),
            credentials: HashMap::new(),
            sessions: BTreeMap::new(),
            attempts: HashMap::new(),
            stored_only: HashSet::new(),
            evict: Vec::new(),
            store: None,
            web: HashMap::new(),
            heads: HashMap::new(),
            live: HashMap::new(),
            logins: Arc::new(crate::auth::Guard::default()),
            save_rate: Arc::new(crate::auth::Rate::new(
                crate::limits::env_limit("TUK_SAVE_BURST", SAVE_RATE.0),
                crate::limits::env_limit("TUK_SAVE_RATE", SAVE_RATE.1),
            )),
            metrics: Metrics::default(),
            serving: false,
            users: BTreeMap::new(),
        }
    }

    /// Reads the state from the store: everything but the attempts and answers of closed
    /// sessions, which stay in the store ([`Exam::attempts_of`] reads them on demand). Item
    /// banks of open sessions are unlocked by [`Exam::unlock_running_sessions`].
    pub(crate) fn load(store: &Arc<Store>, tuk_key: Arc<SecretKey>) -> Result<Exam> {
        let mut ex = Exam::load_state(store, tuk_key)?;
        ex.store = Some(store.clone());
        Ok(ex)
    }

    fn load_state(store: &Store, tuk_key: Arc<SecretKey>) -> Result<Exam> {
        /// Every record of `table`, decoded, by key.
        fn decode_all<K: From<String>, T: for<'de> Deserialize<'de>, M: Extend<(K, T)>>(
            store: &Store,
            table: Table,
            into: &mut M,
        ) -> Result<()> {
            for (k, v) in store.scan(table)? {
                let record = decode(table, &k, &v)?;
                into.extend([(K::from(k), record)]);
            }
            Ok(())
        }
        let mut ex = Exam::empty(tuk_key);
        decode_all(store, Table::Catalog, &mut ex.catalog)?;
        decode_all(store, Table::Credentials, &mut ex.credentials)?;
        decode_all(store, Table::Sessions, &mut ex.sessions)?;
        // Attempts and answers of the sessions that are not closed only: a closed
        // session's (most of the store in a school's year) are read when asked for.
        for s in ex.sessions.values() {
            if matches!(s.status, SessionStatus::Closed { .. }) {
                ex.stored_only.insert(s.key.clone());
            } else {
                ex.attempts.extend(decode_attempts(store, &s.key)?);
            }
        }
        decode_all(store, Table::WebSessions, &mut ex.web)?;
        decode_all(store, Table::Users, &mut ex.users)?;
        // Chain heads: the last event of each chain, read without touching the others
        // (whole chains are verified by `tuk verify` and the console's event log).
        for (chain, v) in store.chain_heads()? {
            let ev: events::Record = decode(Table::Events, &chain, &v)?;
            ex.heads.insert(
                chain,
                Head {
                    next_seq: ev.seq + 1,
                    hash: blake3::hash(&v).to_hex().to_string(),
                },
            );
        }
        Ok(ex)
    }

    /// The attempts of session `skey`, with their answers, whatever the session's state:
    /// borrowed from memory for a session that is not closed, read from the store for a
    /// closed one (decoded by [`decode_attempts`], as at start-up). The one way a reader
    /// gets a session's attempts (results, printables, minutes, seal, exports, the board).
    ///
    /// Errors: the store cannot be read, or a stored attempt or answer of the session is
    /// damaged (the message names the record; `tuk verify` checks the whole store).
    pub(crate) fn attempts_of(&self, skey: &SessionKey) -> Result<SessionAttempts<'_>> {
        let stored = match (&self.store, self.stored_only.contains(skey)) {
            (Some(store), true) => decode_attempts(store, skey)?,
            _ => HashMap::new(),
        };
        Ok(SessionAttempts {
            memory: &self.attempts,
            skey: skey.clone(),
            stored,
        })
    }

    /// One attempt by key, wherever it is (memory first, then the store for a closed
    /// session). A store that cannot be read, or a damaged record, reads as absent here
    /// (rules see "not started"); [`Exam::attempts_of`] reports the damage.
    pub(crate) fn find_attempt(&self, akey: &str) -> Option<Cow<'_, Attempt>> {
        if let Some(a) = self.attempts.get(akey) {
            return Some(Cow::Borrowed(a));
        }
        let (skey, _) = akey.rsplit_once('/')?;
        if !self.stored_only.contains(skey) {
            return None;
        }
        match decode_attempts(self.store.as_deref()?, skey) {
            Ok(mut m) => m.remove(akey).map(Cow::Owned),
            Err(e) => {
                tracing::error!("cannot read attempt {akey}: {e:#}");
                None
            }
        }
    }

    /// The attempt `akey` to change, brought back into memory first when it belongs to a
    /// closed session held in the store only (it then stays in memory).
    fn attempt_mut(&mut self, akey: &AttemptKey) -> Option<&mut Attempt> {
        if !self.attempts.contains_key(akey) {
            let a = self.find_attempt(akey)?.into_owned();
            self.attempts.insert(akey.clone(), a);
        }
        self.attempts.get_mut(akey)
    }

    /// The attempts of participant `number` in closed sessions held in the store only (one
    /// lookup per closed session whose roster names them).
    fn stored_attempts_of_participant(&self, number: &ParticipantNo) -> Vec<Attempt> {
        let mut out = Vec::new();
        for skey in &self.stored_only {
            let on_roster = self.sessions.get(skey).is_some_and(|s| {
                self.catalog
                    .get(&s.package)
                    .is_some_and(|p| p.participant(number, &s.id).is_some())
            });
            let akey = AttemptKey::of(skey, number);
            if on_roster
                && !self.attempts.contains_key(&akey)
                && let Some(a) = self.find_attempt(&akey)
            {
                out.push(a.into_owned());
            }
        }
        out
    }

    /// Brings the attempts of closed session `skey` back into memory (it is being
    /// re-opened). Errors as [`Exam::attempts_of`].
    fn load_stored_attempts(&mut self, skey: &SessionKey) -> Result<()> {
        if self.stored_only.contains(skey) {
            let stored = self.attempts_of(skey)?.stored;
            for (k, a) in stored {
                // One a rule brought back already is the newer.
                self.attempts.entry(k).or_insert(a);
            }
            self.stored_only.remove(skey);
        }
        Ok(())
    }

    /// Decrypts the item banks of sessions that were open when the server stopped, using
    /// the stored (sealed) release code: nobody has to type it again after a restart.
    pub(crate) fn unlock_running_sessions(
        &mut self,
        store: &Store,
        trust: &TrustSet,
    ) -> Result<()> {
        let packages: Vec<(String, Option<String>)> = self
            .sessions
            .values()
            .filter(|s| s.is_running())
            .map(|s| (s.package.clone(), s.release_code.clone()))
            .collect();
        for (pkg, sealed_code) in packages {
            if self.banks.contains_key(&pkg) {
                continue;
            }
            let code = match sealed_code {
                Some(s) => Some(unseal(&self.tuk_key, &s)?),
                None => None,
            };
            let bank = unlock_bank(
                store,
                trust,
                &self.tuk_key,
                self.package(&pkg)?,
                code.as_deref(),
            )?;
            self.banks.insert(pkg, Arc::new(OpenBank::new(bank)));
        }
        Ok(())
    }

    pub(crate) fn package(&self, id: &str) -> Result<&PackageInfo> {
        self.catalog
            .get(id)
            .ok_or_else(|| anyhow!("package {id} is not imported"))
    }

    /// Appends an event to a chain.
    pub(crate) fn log(
        &mut self,
        chain: &str,
        now: i64,
        actor: impl Into<Actor>,
        event: Event,
    ) -> Put {
        let head = self.heads.entry(chain.to_string()).or_default();
        events::append(head, chain, now, actor.into(), event)
    }

    /// The writes of a change to session `skey`: its record as it now is, then `event` in
    /// its chain (the order every proctor action commits them in).
    fn session_logged(
        &mut self,
        skey: &SessionKey,
        now: i64,
        actor: impl Into<Actor>,
        event: Event,
    ) -> Vec<Put> {
        let mut puts: Vec<Put> = self
            .sessions
            .get(skey)
            .map(|s| Put::json(Table::Sessions, skey, s))
            .into_iter()
            .collect();
        puts.push(self.log(skey, now, actor, event));
        puts
    }

    fn attempt_put(a: &Attempt) -> Put {
        Put::json(Table::Attempts, a.key.clone(), a)
    }

    /// Whether participant `number` is on the roster of session `s` (its package's roster).
    fn is_registered(&self, s: &Session, number: &ParticipantNo) -> bool {
        self.catalog
            .get(&s.package)
            .is_some_and(|p| p.participant(number, &s.id).is_some())
    }

    /// The chains a participant's login belongs to: every running session they are in.
    fn login_chains(&self, number: &ParticipantNo) -> Vec<String> {
        let chains: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.is_running() && self.is_registered(s, number))
            .map(|s| s.key.to_string())
            .collect();
        if chains.is_empty() {
            vec![events::TUK_CHAIN.to_string()]
        } else {
            chains
        }
    }

    /// Logs, in every chain the participant belongs to, that `ip` is now locked for
    /// their number (so the proctor sees it on the board and in the minutes).
    pub(crate) fn login_locked_events(
        &mut self,
        number: &ParticipantNo,
        ip: &str,
        now: i64,
    ) -> Vec<Put> {
        if !self.credentials.contains_key(number) {
            return Vec::new();
        }
        let actor = Actor::Participant(number.clone());
        let failures = self.logins.policy().pair_lock_after;
        self.login_chains(number)
            .into_iter()
            .map(|c| {
                let ev = Event::LoginLocked {
                    ip: ip.to_string(),
                    failures: Some(failures),
                };
                self.log(&c, now, &actor, ev)
            })
            .collect()
    }

    /// The proctor lifts the login locks that address `ip` caused (for every account, and
    /// the address itself); logged in the session's chain with the proctor's name.
    pub(crate) fn lift_login_lock(
        &mut self,
        skey: &SessionKey,
        ip: &str,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        if !self.sessions.contains_key(skey) {
            return Err(Refused::NotFound);
        }
        let ip = ip.trim();
        if ip.is_empty() || ip.len() > 64 || ip.parse::<std::net::IpAddr>().is_err() {
            return Err(Refused::InvalidInput);
        }
        let cleared = self.logins.lift(ip);
        let ev = Event::LoginUnlocked {
            ip: ip.to_string(),
            counters: cleared,
        };
        Ok(vec![self.log(skey, now, actor, ev)])
    }

    /// A participant whose password was right gets a browser session, unless another
    /// browser is working on one of their attempts.
    pub fn login(
        &mut self,
        number: &ParticipantNo,
        cookie_id: &CookieId,
        current: Option<&CookieId>,
        ip: &str,
        now: i64,
    ) -> (Vec<Put>, Outcome<()>) {
        let busy = self.attempts.values().any(|a| {
            a.participant == number
                && a.is_running()
                && a.browser
                    .as_ref()
                    .is_some_and(|b| Some(b) != current && self.web.contains_key(b))
        });
        if busy {
            let actor = Actor::Participant(number.clone());
            let puts = self
                .login_chains(number)
                .into_iter()
                .map(|c| {
                    let ev = Event::LoginRefusedActiveElsewhere { ip: ip.to_string() };
                    self.log(&c, now, &actor, ev)
                })
                .collect();
            return (puts, Err(Refused::AlreadyActive));
        }
        self.logins.succeeded(number, ip);
        let ws = WebSession {
            who: Who::Participant {
                number: number.clone(),
                admitted: None,
            },
            created_ms: now,
            ip: ip.to_string(),
            bad_tokens: 0,
        };
        let mut puts = vec![Put::json(Table::WebSessions, cookie_id, &ws)];
        self.web.insert(cookie_id.clone(), ws);
        // An attempt this same browser was working on stays bound to it.
        if let Some(old) = current {
            // (Attempts of closed sessions held in the store only come back into memory
            // when this browser was theirs.)
            for a in self.stored_attempts_of_participant(number) {
                if a.browser.as_deref() == Some(old) {
                    self.attempts.insert(a.key.clone(), a);
                }
            }
            for a in self.attempts.values_mut() {
                if a.participant == number && a.browser.as_deref() == Some(old) {
                    a.browser = Some(cookie_id.clone());
                    puts.push(Self::attempt_put(a));
                }
            }
            if old != cookie_id && self.web.remove(old).is_some() {
                puts.push(Put::delete(Table::WebSessions, old));
            }
        }
        let actor = Actor::Participant(number.clone());
        for c in self.login_chains(number) {
            let ev = Event::Login { ip: ip.to_string() };
            puts.push(self.log(&c, now, &actor, ev));
        }
        (puts, Ok(()))
    }

    pub(crate) fn participant_of(
        &self,
        cookie_id: &CookieId,
    ) -> Outcome<(&ParticipantNo, Option<&SessionKey>)> {
        match self.web.get(cookie_id).map(|w| &w.who) {
            Some(Who::Participant { number, admitted }) => Ok((number, admitted.as_ref())),
            _ => Err(Refused::NotLoggedIn),
        }
    }

    /// Checks the token and starts (or resumes) the attempt (the API's one-step start).
    pub fn start(
        &mut self,
        cookie_id: &CookieId,
        token: &str,
        ip: &str,
        now: i64,
    ) -> (Vec<Put>, Outcome<Started>) {
        let (mut puts, admitted) = self.admit(cookie_id, token, now);
        if let Err(e) = admitted {
            return (puts, Err(e));
        }
        let (p, started) = self.begin_admitted(cookie_id, ip, now);
        puts.extend(p);
        (puts, started)
    }

    /// Checks the session token the participant typed; remembers the session it opens.
    pub(crate) fn admit(
        &mut self,
        cookie_id: &CookieId,
        token: &str,
        now: i64,
    ) -> (Vec<Put>, Outcome<SessionKey>) {
        let number = match self.participant_of(cookie_id) {
            Ok((n, _)) => n.clone(),
            Err(e) => return (Vec::new(), Err(e)),
        };
        if self
            .web
            .get(cookie_id)
            .is_some_and(|w| w.bad_tokens >= LOGIN_LOCK_AFTER * 2)
        {
            return (Vec::new(), Err(Refused::LoginLocked));
        }
        let token = secrets::normalise_token(token);
        let matching: Vec<&Session> = self
            .sessions
            .values()
            .filter(|s| s.is_running() && s.token_matches(&token, now))
            .collect();
        let Some(session) = matching.iter().find(|s| self.is_registered(s, &number)) else {
            let refusal = if matching.is_empty() {
                Refused::BadToken
            } else {
                Refused::NotRegistered
            };
            if let Some(w) = self.web.get_mut(cookie_id) {
                w.bad_tokens += 1;
            }
            return (Vec::new(), Err(refusal));
        };
        let skey = session.key.clone();
        let mut puts = Vec::new();
        if let Some(w) = self.web.get_mut(cookie_id) {
            if let Who::Participant { admitted, .. } = &mut w.who {
                *admitted = Some(skey.clone());
            }
            puts.push(Put::json(Table::WebSessions, cookie_id, &*w));
        }
        (puts, Ok(skey))
    }

    /// Starts or resumes the attempt of the session this browser was admitted to.
    pub(crate) fn begin_admitted(
        &mut self,
        cookie_id: &CookieId,
        ip: &str,
        now: i64,
    ) -> (Vec<Put>, Outcome<Started>) {
        let (number, skey) = match self.participant_of(cookie_id) {
            Ok((n, Some(s))) => (n.clone(), s.clone()),
            Ok((_, None)) => return (Vec::new(), Err(Refused::NotStarted)),
            Err(e) => return (Vec::new(), Err(e)),
        };
        match self.begin(cookie_id, &skey, &number, ip, now) {
            Ok((p, s)) => (p, Ok(s)),
            Err(e) => (Vec::new(), Err(e)),
        }
    }

    /// Creates the attempt on first start, or resumes it in this browser.
    fn begin(
        &mut self,
        cookie_id: &CookieId,
        skey: &SessionKey,
        number: &ParticipantNo,
        ip: &str,
        now: i64,
    ) -> Outcome<(Vec<Put>, Started)> {
        let session = self
            .sessions
            .get(skey)
            .ok_or(Refused::SessionClosed)?
            .clone();
        let info = self
            .catalog
            .get(&session.package)
            .ok_or(Refused::SessionClosed)?;
        let akey = AttemptKey::of(skey, number);
        let actor = Actor::Participant(number.clone());
        let mut puts = Vec::new();
        let existing = self
            .find_attempt(&akey)
            .map(|a| (a.is_running(), a.browser.clone()));
        let created = existing.is_none();
        if let Some((running, browser)) = existing {
            if !running {
                return Err(Refused::Finished);
            }
            if let Some(b) = &browser
                && b != cookie_id
                && self.web.contains_key(b)
            {
                return Err(Refused::AlreadyActive);
            }
        } else {
            if session.paused_since().is_some() {
                return Err(Refused::SessionPaused);
            }
            let reg = info
                .participant(number, &session.id)
                .ok_or(Refused::NotRegistered)?;
            let test = info.test(&reg.test).ok_or(Refused::NotRegistered)?;
            let bank = self
                .banks
                .get(&session.package)
                .ok_or(Refused::SessionClosed)?;
            let form = form::build(&info.file_hash, test, number, &bank.bank);
            let minutes = test.duration_minutes as i64 + reg.extra_minutes as i64;
            let attempt = Attempt {
                key: akey.clone(),
                session: skey.clone(),
                package: session.package.clone(),
                participant: number.clone(),
                test: test.id.clone(),
                form,
                started_ms: now,
                deadline_ms: now + minutes * 60_000,
                status: AttemptStatus::Running,
                browser: None,
                questionnaire: None,
                answers: Answers::default(),
            };
            let ev = Event::Start {
                ip: ip.to_string(),
                deadline_ms: attempt.deadline_ms,
                items: attempt.form.len(),
            };
            self.attempts.insert(akey.clone(), attempt);
            puts.push(self.log(skey, now, &actor, ev));
        }
        let Some(a) = self.attempt_mut(&akey) else {
            return Err(Refused::NotStarted);
        };
        a.browser = Some(cookie_id.clone());
        let started = Started {
            attempt: akey.clone(),
            items: a.form.len(),
            deadline: crate::clock::rfc3339(a.deadline_ms),
            remaining_ms: a.remaining_ms(&session, now),
        };
        puts.push(Self::attempt_put(a));
        if !created {
            let ev = Event::Resume { ip: ip.to_string() };
            puts.push(self.log(skey, now, &actor, ev));
        }
        self.live.insert(
            akey,
            Live {
                last_seen_ms: now,
                unsaved: 0,
                ip: ip.to_string(),
            },
        );
        Ok((puts, started))
    }

    /// The running or finished attempt of the participant behind a cookie, with a check
    /// that this browser is the one allowed.
    ///
    /// An attempt of a closed session held in the store only comes back owned (read from
    /// the store); every other one is borrowed from memory.
    pub fn attempt_of(&self, cookie_id: &CookieId) -> Outcome<Cow<'_, Attempt>> {
        let (number, admitted) = self.participant_of(cookie_id)?;
        let Some(skey) = admitted else {
            // Logged in again after the end, without a token (the session may be closed):
            // the latest finished attempt, unless one of theirs still runs elsewhere.
            if self
                .attempts
                .values()
                .any(|a| a.participant == number && a.is_running())
            {
                return Err(Refused::NotStarted);
            }
            let latest = |a: &Attempt| match a.status {
                AttemptStatus::Finished { at_ms, .. } => Some(at_ms),
                AttemptStatus::Running => None,
            };
            let in_memory = self
                .attempts
                .values()
                .filter(|a| a.participant == number)
                .filter_map(|a| Some((latest(a)?, Cow::Borrowed(a))));
            let stored = self
                .stored_attempts_of_participant(number)
                .into_iter()
                .filter_map(|a| Some((latest(&a)?, Cow::Owned(a))));
            return in_memory
                .chain(stored)
                .max_by_key(|(t, _)| *t)
                .map(|(_, a)| a)
                .ok_or(Refused::NotStarted);
        };
        let a = self
            .find_attempt(&AttemptKey::of(skey, number))
            .ok_or(Refused::NotStarted)?;
        // A finished attempt can no longer change: its participant may read the result and
        // send the questionnaire from any browser after logging in again (issue 13).
        if a.browser.as_deref() != Some(cookie_id) && a.is_running() {
            return Err(Refused::MovedToOtherPc);
        }
        Ok(a)
    }

    /// Saves one answer. Idempotent: the same `seq` again is accepted without change; an
    /// older `seq` than the stored one is refused and changes nothing.
    pub fn save(
        &mut self,
        cookie_id: &CookieId,
        item_id: &str,
        choice: Vec<String>,
        doubtful: bool,
        seq: u64,
        now: i64,
    ) -> (Vec<Put>, Outcome<u64>) {
        let (akey, session) = match self.attempt_of(cookie_id) {
            Ok(a) => (a.key.clone(), a.session.clone()),
            Err(e) => return (Vec::new(), Err(e)),
        };
        let paused = self
            .sessions
            .get(&session)
            .and_then(|s| s.paused_since())
            .is_some();
        match self.find_attempt(&akey).map(|a| a.is_running()) {
            None => return (Vec::new(), Err(Refused::NotStarted)),
            Some(false) => return (Vec::new(), Err(Refused::Finished)),
            Some(true) => {}
        }
        // Running, hence in memory (a closed session has no running attempt).
        let Some(a) = self.attempts.get(&akey) else {
            return (Vec::new(), Err(Refused::NotStarted));
        };
        // The clock is stopped for everyone: nobody answers on a stopped clock (issue 13);
        // the browser keeps the answer in its outbox and sends it after the resume.
        if paused {
            return (Vec::new(), Err(Refused::SessionPaused));
        }
        if !paused && now > a.deadline_ms + GRACE_MS {
            return (Vec::new(), Err(Refused::DeadlinePassed));
        }
        let Some(pos) = a.position(item_id) else {
            return (Vec::new(), Err(Refused::UnknownItem));
        };
        let Some(bank) = self.banks.get(&a.package) else {
            return (Vec::new(), Err(Refused::SessionClosed));
        };
        let Some(item) = bank.item(item_id) else {
            return (Vec::new(), Err(Refused::UnknownItem));
        };
        let opts = &a.form[pos].options;
        let mut choice = choice;
        choice.sort();
        choice.dedup();
        // The form's own copy of each chosen option id (so nothing a browser sends is
        // interned); `None` for an id the form does not offer.
        let shared: Option<Vec<Id>> = choice
            .iter()
            .map(|c| opts.iter().find(|o| *o == c).cloned())
            .collect();
        let Some(shared) = shared else {
            return (Vec::new(), Err(Refused::InvalidChoice));
        };
        if (item.kind != package::model::ItemKind::Multiple && choice.len() > 1)
            || seq == 0
            || seq > (1 << 53)
        {
            return (Vec::new(), Err(Refused::InvalidChoice));
        }
        if let Some(old) = a.answers.get(item_id) {
            if seq < old.seq {
                return (Vec::new(), Err(Refused::StaleSeq));
            }
            if seq == old.seq {
                return if old.same_choice(&choice) && old.doubtful == doubtful {
                    (Vec::new(), Ok(seq))
                } else {
                    (Vec::new(), Err(Refused::StaleSeq))
                };
            }
        }
        let answer = Answer {
            choice: Ids::new(&shared),
            doubtful,
            seq,
            at_ms: now,
        };
        let actor = Actor::Participant(a.participant.clone());
        let ev = Event::Answer {
            attempt: akey.to_string(),
            item: item_id.to_string(),
            choice,
            doubtful,
            seq,
        };
        let put = Put::json(Table::Answers, join_key(&akey, item_id), &answer);
        if let Some(a) = self.attempts.get_mut(&akey) {
            a.answers.insert(item_id, answer);
        }
        self.metrics.answers_saved += 1;
        let ev = self.log(&session, now, actor, ev);
        (vec![put, ev], Ok(seq))
    }

    /// Ends an attempt and scores it.
    pub(crate) fn finish(
        &mut self,
        akey: &AttemptKey,
        by: FinishedBy,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        if !self
            .find_attempt(akey)
            .ok_or(Refused::NotStarted)?
            .is_running()
        {
            return Err(Refused::Finished);
        }
        // Running, hence in memory (a closed session has no running attempt).
        let a = self.attempts.get(akey).ok_or(Refused::NotStarted)?;
        let bank = self
            .banks
            .get(&a.package)
            .ok_or(Refused::SessionClosed)?
            .clone();
        let info = self.catalog.get(&a.package).ok_or(Refused::SessionClosed)?;
        let test = info.test(&a.test).ok_or(Refused::SessionClosed)?;
        let items: Vec<&Item> = a.form.iter().filter_map(|f| bank.item(&f.item)).collect();
        let answers = |id: &str| a.answers.get(id).map(Answer::choice_strings);
        let score = score::score(&items, &answers, test.pass_threshold);
        let session = a.session.clone();
        let details = Finished {
            attempt: akey.to_string(),
            score: score.total.to_string(),
            answered: a.answered(),
        };
        let ev = match by {
            FinishedBy::Participant => Event::Finish(details),
            FinishedBy::Auto => Event::AutoSubmit(details),
            FinishedBy::Proctor => Event::ForceFinish(details),
        };
        let Some(a) = self.attempts.get_mut(akey) else {
            return Err(Refused::NotStarted);
        };
        a.status = AttemptStatus::Finished {
            at_ms: now,
            by,
            score,
        };
        let put = Self::attempt_put(a);
        let ev = self.log(&session, now, actor, ev);
        Ok(vec![put, ev])
    }

    pub fn finish_by_participant(
        &mut self,
        cookie_id: &CookieId,
        now: i64,
    ) -> (Vec<Put>, Outcome<AttemptKey>) {
        let (akey, number) = match self.attempt_of(cookie_id) {
            Ok(a) => (a.key.clone(), a.participant.clone()),
            Err(e) => return (Vec::new(), Err(e)),
        };
        match self.finish(
            &akey,
            FinishedBy::Participant,
            Actor::Participant(number),
            now,
        ) {
            Ok(p) => (p, Ok(akey)),
            Err(e) => (Vec::new(), Err(e)),
        }
    }

    /// Stores the evaluation questionnaire, once, after the test.
    pub fn questionnaire(
        &mut self,
        cookie_id: &CookieId,
        answers: BTreeMap<String, String>,
        now: i64,
    ) -> (Vec<Put>, Outcome<()>) {
        let (akey, package, number) = match self.attempt_of(cookie_id) {
            Ok(a) if a.is_running() => return (Vec::new(), Err(Refused::NotFinished)),
            Ok(a) if a.questionnaire.is_some() => return (Vec::new(), Err(Refused::Finished)),
            Ok(a) => (a.key.clone(), a.package.clone(), a.participant.clone()),
            Err(e) => return (Vec::new(), Err(e)),
        };
        let Some(q) = self
            .catalog
            .get(&package)
            .and_then(|p| p.questionnaire.as_ref())
        else {
            return (Vec::new(), Err(Refused::InvalidInput));
        };
        let scale_ok = |id: &str, v: &str| {
            q.scale.iter().any(|s| s.id == id) && package::model::SCALE_LABELS.contains(&v)
        };
        let open_ok =
            |id: &str, v: &str| q.open.iter().any(|s| s.id == id) && v.chars().count() <= 2000;
        if answers
            .iter()
            .any(|(k, v)| !scale_ok(k, v) && !open_ok(k, v))
        {
            return (Vec::new(), Err(Refused::InvalidInput));
        }
        let session = match self.attempt_mut(&akey) {
            Some(a) => {
                a.questionnaire = Some(answers.clone());
                a.session.clone()
            }
            None => return (Vec::new(), Err(Refused::NotStarted)),
        };
        let put = self.attempts.get(&akey).map(Self::attempt_put);
        let ev = Event::Questionnaire {
            attempt: akey.to_string(),
            answers,
        };
        let ev = self.log(&session, now, Actor::Participant(number), ev);
        (put.into_iter().chain([ev]).collect(), Ok(()))
    }

    /// Submits every running attempt whose time is up (the browser may be long gone).
    pub(crate) fn auto_submit_due(&mut self, now: i64) -> Vec<Put> {
        let due: Vec<AttemptKey> = self
            .attempts
            .values()
            .filter(|a| a.is_running())
            .filter(|a| {
                self.sessions
                    .get(&a.session)
                    .is_some_and(|s| s.paused_since().is_none())
                    && now > a.deadline_ms + GRACE_MS
            })
            .map(|a| a.key.clone())
            .collect();
        let mut puts = Vec::new();
        for k in due {
            if let Ok(p) = self.finish(&k, FinishedBy::Auto, Actor::System, now) {
                puts.extend(p);
            }
        }
        puts
    }

    /// Whether the clock at start-up can be trusted to credit downtime: `Err` with the
    /// reason, in plain words, when attempts are running and the clock is before the last
    /// alive mark (set back, a flat CMOS battery) or implausibly far after it. Without
    /// running attempts nothing depends on the clock, so it is always `Ok`.
    pub(crate) fn clock_at_start(&self, last_alive_ms: i64, now: i64) -> Result<(), String> {
        let running = self.attempts.values().filter(|a| a.is_running()).count();
        if last_alive_ms <= 0 || running == 0 {
            return Ok(());
        }
        let (now_s, last_s) = (
            crate::clock::rfc3339(now),
            crate::clock::rfc3339(last_alive_ms),
        );
        if now < last_alive_ms - CLOCK_BEHIND_MAX_MS {
            return Err(format!(
                "the clock says {now_s}, EARLIER than when this server last ran ({last_s}): the time was set back (often a flat BIOS battery after a power cut). {running} attempt(s) are running; their deadlines would be wrong"
            ));
        }
        if now > last_alive_ms + CLOCK_AHEAD_MAX_MS {
            return Err(format!(
                "the clock says {now_s}, more than a day after this server last ran ({last_s}) while {running} attempt(s) were running: the time is probably wrong, and crediting that much downtime would give them all that time"
            ));
        }
        Ok(())
    }

    /// The keys of the sessions open now (not paused, scheduled or closed).
    fn open_sessions(&self) -> Vec<SessionKey> {
        self.sessions
            .values()
            .filter(|s| matches!(s.status, SessionStatus::Open { .. }))
            .map(|s| s.key.clone())
            .collect()
    }

    /// Pauses every open session at start-up because the clock could not be trusted
    /// (`tuk serve --start-paused`); the proctor resumes once the time is right, and
    /// every running attempt then keeps exactly the time it had.
    pub(crate) fn pause_all_for_clock(&mut self, reason: &str, now: i64) -> Vec<Put> {
        let open = self.open_sessions();
        let mut puts = Vec::new();
        for k in open {
            if let Ok(p) = self.pause(&k, reason, Actor::System, now) {
                puts.extend(p);
            }
        }
        puts
    }

    /// Gives running attempts back the time the server was down (from the last durable
    /// heartbeat to now), and records it in each session's log.
    pub(crate) fn credit_downtime(&mut self, last_alive_ms: i64, now: i64) -> Vec<Put> {
        let gap = now - last_alive_ms;
        if last_alive_ms <= 0 || gap < DOWNTIME_MIN_MS {
            return Vec::new();
        }
        let mut puts = Vec::new();
        let open = self.open_sessions();
        for skey in open {
            let mut credited = Vec::new();
            for a in self.attempts.values_mut() {
                if a.session == skey && a.is_running() {
                    a.deadline_ms += gap;
                    credited.push(a.participant.to_string());
                    puts.push(Self::attempt_put(a));
                }
            }
            let ev = Event::DowntimeCredit {
                down_from_ms: last_alive_ms,
                down_to_ms: now,
                credited_ms: gap,
                participants: credited,
            };
            puts.push(self.log(&skey, now, Actor::System, ev));
        }
        puts
    }

    /// The system clock stepped by `step_ms` (positive = forward) while the server ran.
    /// Shifts everything that holds an exam-clock time by the same amount — running
    /// deadlines, pause starts, token rotation times, liveness marks — so that nobody's
    /// remaining time changes, and logs a `clock_step` event in every running session's
    /// chain and in the TUK chain. `now` is the exam clock *after* the step (the caller
    /// then rebases the clock, see [`crate::clock::rebase`]). Rules: `docs/time.md`.
    pub(crate) fn shift_clock(&mut self, step_ms: i64, now: i64) -> Vec<Put> {
        let mut puts = Vec::new();
        let running: Vec<SessionKey> = self
            .sessions
            .values()
            .filter(|s| s.is_running())
            .map(|s| s.key.clone())
            .collect();
        for skey in &running {
            let mut shifted = Vec::new();
            for a in self.attempts.values_mut() {
                if a.session == *skey && a.is_running() {
                    a.deadline_ms += step_ms;
                    shifted.push(a.participant.to_string());
                    puts.push(Self::attempt_put(a));
                }
            }
            if let Some(s) = self.sessions.get_mut(skey) {
                if let SessionStatus::Paused { since_ms, .. } = &mut s.status {
                    *since_ms += step_ms;
                }
                if let Some(t) = &mut s.token {
                    t.rotated_ms += step_ms;
                }
                puts.push(Put::json(Table::Sessions, skey.clone(), &*s));
            }
            let ev = Event::ClockStep {
                step_ms,
                participants: Some(shifted),
                sessions: None,
            };
            puts.push(self.log(skey, now, Actor::System, ev));
        }
        for l in self.live.values_mut() {
            l.last_seen_ms += step_ms;
        }
        let ev = Event::ClockStep {
            step_ms,
            participants: None,
            sessions: Some(running.iter().map(|k| k.to_string()).collect()),
        };
        puts.push(self.log(events::TUK_CHAIN, now, Actor::System, ev));
        puts
    }

    /// Rotates tokens whose interval has passed; the old one stays valid for a grace period.
    pub fn rotate_tokens(&mut self, now: i64) -> Outcome<Vec<Put>> {
        let mut puts = Vec::new();
        let due: Vec<SessionKey> = self
            .sessions
            .values()
            .filter(|s| matches!(s.status, SessionStatus::Open { .. }))
            .filter(|s| {
                s.token.as_ref().is_some_and(|t| {
                    t.rotate_s > 0 && now - t.rotated_ms >= t.rotate_s as i64 * 1000
                })
            })
            .map(|s| s.key.clone())
            .collect();
        for k in due {
            let fresh = secrets::new_token().map_err(|_| Refused::StoreFailed)?;
            if let Some(s) = self.sessions.get_mut(&k)
                && let Some(t) = &mut s.token
            {
                t.previous = Some(std::mem::replace(&mut t.current, fresh));
                t.rotated_ms = now;
                puts.push(Put::json(Table::Sessions, k.clone(), &*s));
            }
            puts.push(self.log(&k, now, Actor::System, Event::TokenRotated {}));
        }
        Ok(puts)
    }

    /// Opens a session whose package bank has already been unlocked into `self.banks`.
    pub(crate) fn open_session(
        &mut self,
        skey: &SessionKey,
        sealed_code: Option<String>,
        rotate_s: u64,
        actor: impl Into<Actor>,
        now: i64,
    ) -> Outcome<Vec<Put>> {
        let token = secrets::new_token().map_err(|_| Refused::StoreFailed)?;
        if !self.sessions.contains_key(skey) {
            return Err(Refused::InvalidInput);
        }
        // Re-opening a closed session: its attempts come back into memory first.
        if let Err(e) = self.load_stored_attempts(skey) {
            tracing::error!("cannot re-open {skey}: {e:#}");
            return Err(Refused::StoreFailed);
        }
        let s = self.sessions.get_mut(skey).ok_or(Refused::InvalidInput)?;
        let opened_ms = match s.status {
            SessionStatus::Scheduled => now,
            SessionStatus::Closed { opened_ms, .. } => opened_ms,
            _ => return Err(Refused::AlreadyOpen),
        };
        s.status = SessionStatus::Open { opened_ms };
        s.token = Some(Token {
            current: token,
            previous: None,
            rotated_ms: now,
            rotate_s,
        });
        if sealed_code.is_some() {
            s.release_code = sealed_code;
        }
        Ok(self.session_logged(skey, now, actor, Event::SessionOpen { rotate_s }))
    }

    /// Records the browser's heartbeat for the board (memory only: nothing to make durable).
    pub(crate) fn heartbeat(
        &mut self,
        cookie_id: &CookieId,
        unsaved: u32,
        ip: &str,
        now: i64,
    ) -> Outcome<()> {
        let key = self.attempt_of(cookie_id)?.key.clone();
        let l = self.live.entry(key).or_default();
        l.last_seen_ms = now;
        l.unsaved = unsaved;
        l.ip = ip.to_string();
        Ok(())
    }

    pub(crate) fn alive_put(now: i64) -> Put {
        Put::bytes(Table::Meta, META_ALIVE, now.to_string().into_bytes())
    }

    pub(crate) fn last_alive(store: &Store) -> Result<i64> {
        Ok(store
            .get(Table::Meta, META_ALIVE)?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }
}

impl Durable for Exam {
    fn batch_puts(&mut self) -> Vec<Put> {
        if self.serving {
            vec![Exam::alive_put(crate::clock::now_ms())]
        } else {
            Vec::new()
        }
    }

    fn reload(&mut self, store: &Store) -> anyhow::Result<()> {
        // Drop what the failed batch changed in memory; keep unlocked banks and live data.
        let mut fresh = Exam::load_state(store, self.tuk_key.clone())?;
        fresh.store = self.store.take();
        fresh.banks = std::mem::take(&mut self.banks);
        fresh.live = std::mem::take(&mut self.live);
        fresh.logins = self.logins.clone();
        fresh.save_rate = self.save_rate.clone();
        fresh.metrics = std::mem::take(&mut self.metrics);
        fresh.serving = self.serving;
        *self = fresh;
        Ok(())
    }

    fn committed(&mut self, jobs: usize, elapsed: Duration) {
        // Sessions whose close is now durable: their attempts and answers leave memory
        // (readers get them from the store through `attempts_of`). A session re-opened in
        // the same batch keeps them.
        for skey in std::mem::take(&mut self.evict) {
            let closed = self
                .sessions
                .get(&skey)
                .is_some_and(|s| matches!(s.status, SessionStatus::Closed { .. }));
            if closed && self.store.is_some() {
                self.attempts.retain(|_, a| a.session != skey);
                self.live
                    .retain(|k, _| k.rsplit_once('/').is_none_or(|(s, _)| skey != s));
                self.stored_only.insert(skey);
            }
        }
        self.metrics.commits += 1;
        self.metrics.jobs += jobs as u64;
        self.metrics.batch_max = self.metrics.batch_max.max(jobs);
        self.metrics.commit_us_total += elapsed.as_micros() as u64;
    }
}

/// Opens the item layer of an imported package (verifying it again on the way).
pub(crate) fn unlock_bank(
    store: &Store,
    trust: &TrustSet,
    key: &SecretKey,
    info: &PackageInfo,
    code: Option<&str>,
) -> Result<ItemBank> {
    let bytes = store
        .get(Table::Packages, &info.file_hash)?
        .ok_or_else(|| {
            anyhow!(
                "the package file of {} is missing from the store",
                info.header.package_id
            )
        })?;
    let pkg = package::verify(&bytes, trust)?;
    let contents = pkg.open(key)?;
    pkg.unlock(&contents, code)
}

/// Encrypts a small secret (a password, a release code) to this TUK's own key.
pub(crate) fn seal(key: &SecretKey, secret: &str) -> Result<String> {
    use base64::Engine;
    let r = key.identity.to_public();
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
        .map_err(|e| anyhow!("{e}"))?;
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out)?;
    std::io::Write::write_all(&mut w, secret.as_bytes())?;
    w.finish()?;
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

pub(crate) fn unseal(key: &SecretKey, sealed: &str) -> Result<String> {
    use base64::Engine;
    use std::io::Read;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|_| anyhow!("damaged sealed secret"))?;
    let d = age::Decryptor::new(bytes.as_slice()).map_err(|e| anyhow!("{e}"))?;
    let mut r = d
        .decrypt(std::iter::once(&key.identity as &dyn age::Identity))
        .map_err(|e| anyhow!("cannot open a sealed secret with this TUK key: {e}"))?;
    let mut s = String::new();
    r.read_to_string(&mut s)?;
    Ok(s)
}

#[cfg(test)]
impl Refused {
    /// Every refusal (for the tests that check each has a status, code and words).
    pub(crate) const ALL: [Refused; 31] = [
        Refused::BadLogin,
        Refused::LoginLocked,
        Refused::TooManySaves,
        Refused::AlreadyActive,
        Refused::NotLoggedIn,
        Refused::BadToken,
        Refused::NotRegistered,
        Refused::NotStarted,
        Refused::SessionPaused,
        Refused::SessionClosed,
        Refused::Finished,
        Refused::DeadlinePassed,
        Refused::StaleSeq,
        Refused::UnknownItem,
        Refused::InvalidChoice,
        Refused::MovedToOtherPc,
        Refused::NotFinished,
        Refused::InvalidInput,
        Refused::StoreFailed,
        Refused::Forbidden,
        Refused::NotFound,
        Refused::AlreadyOpen,
        Refused::NotOpen,
        Refused::NotPaused,
        Refused::AttemptsRunning,
        Refused::NoSuchProctor,
        Refused::SessionRunning,
        Refused::MinutesConfirmed,
        Refused::ReasonRequired,
        Refused::SessionSealed,
        Refused::AlreadySealed,
    ];
}

#[cfg(test)]
mod rules_tests;

#[cfg(test)]
mod answers_tests {
    use super::*;

    fn answer(choice: &str, seq: u64) -> Answer {
        Answer {
            choice: Ids::new(&[Id::new(choice)]),
            doubtful: false,
            seq,
            at_ms: 0,
        }
    }

    #[test]
    fn answers_are_found_by_item_and_kept_in_id_order() {
        let mut a = Answers::default();
        for (item, seq) in [("i3", 1), ("i1", 2), ("i2", 3), ("i1", 4)] {
            a.insert(item, answer("b", seq));
        }
        assert_eq!(a.len(), 3);
        assert_eq!(a.get("i1").map(|x| x.seq), Some(4), "a later save replaces");
        assert!(a.get("i4").is_none());
        let order: Vec<&str> = a.iter().map(|(k, _)| k).collect();
        assert_eq!(order, ["i1", "i2", "i3"]);
        assert!(
            a.get("i2")
                .is_some_and(|x| x.same_choice(&["b".to_string()]))
        );
        // Stored as before: the choice is a list of strings.
        let json = serde_json::to_string(&answer("c", 7)).expect("encode");
        assert_eq!(
            json,
            r#"{"choice":["c"],"doubtful":false,"seq":7,"at_ms":0}"#
        );
    }
}

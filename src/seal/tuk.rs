//! The TUK side: sealing sessions from the store, keeping bundles and the UPT's receipts,
//! and purging a session once the UPT has acknowledged it.
//!
//! Everything lives in the store's `results` table:
//!
//! | key | value |
//! |---|---|
//! | `bundle␟{blake3}` | the sealed file |
//! | `sealed␟{package}/{session}␟{blake3}` | [`SealedRecord`] (JSON) |
//! | `receipt␟{blake3}` | the UPT's [`SignedReceipt`] (JSON) |
//! | `purged␟{package}/{session}` | [`PurgeRecord`] (JSON) |

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::model::{
    self, AnswerDoc, AttemptDoc, BundleDoc, MinutesDoc, PackageRef, ParticipantDoc, ScoreDoc,
    SessionDoc, TukRef,
};
use super::receipt::{Receipt, SignedReceipt};
use super::{BundleHeader, BundleParts, ChainHead};
use crate::app::App;
use crate::clock::{now_ms, rfc3339};
pub(crate) use crate::exam::events::PurgeRecord;
use crate::exam::events::{self, Actor, Event, Record, SealedChain};
use crate::exam::{self, AttemptStatus, Exam, SessionStatus, Who};
use crate::package;
use crate::store::{Put, Table, join_key};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct SealedRecord {
    pub(crate) bundle_id: String,
    pub(crate) blake3: String,
    pub(crate) created: String,
    pub(crate) sessions: Vec<String>,
    /// This session's chain as sealed.
    pub(crate) chain: ChainHead,
    pub(crate) forced: bool,
}

/// Session id → the stored bytes of its events, in order.
type SessionEvents = BTreeMap<String, Vec<Vec<u8>>>;

/// A bundle just sealed.
pub struct Sealed {
    pub bytes: Vec<u8>,
    pub(crate) header: BundleHeader,
    pub(crate) blake3: String,
    /// Sessions that `force` closed.
    pub(crate) closed: Vec<String>,
}

/// Seals one session for the admin's "Seal" button; the bundle is kept in the store and
/// its bytes returned (to download or upload). It waits on the writer and decrypts the
/// package: call it from `tokio::task::spawn_blocking`, not on a runtime thread.
pub(crate) fn seal_session(app: &App, skey: &str, force: bool) -> Result<Vec<u8>> {
    Ok(seal(app, &[skey.to_string()], force, "admin")?.bytes)
}

/// Every session that was ever opened, grouped by package (what `tuk seal --all` seals).
pub(crate) fn sealable_sessions(app: &App) -> BTreeMap<String, Vec<String>> {
    let ex = app.read();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in ex.sessions.values() {
        if s.status != SessionStatus::Scheduled && !is_purged(app, &s.key) {
            out.entry(s.package.clone())
                .or_default()
                .push(s.key.to_string());
        }
    }
    out
}

/// Whether `skey`'s attempts were purged after the UPT acknowledged its bundle.
pub(crate) fn is_purged(app: &App, skey: &str) -> bool {
    matches!(
        app.store.get(Table::Results, &join_key("purged", skey)),
        Ok(Some(_))
    )
}

fn running_attempts(ex: &Exam, skey: &str) -> usize {
    ex.attempts
        .values()
        .filter(|a| a.session == skey && a.is_running())
        .count()
}

/// Seals sessions of one package into one bundle. Refuses while a session is open or paused
/// or has attempts running, unless `force`: then the session is closed and every running
/// attempt submitted, both recorded in the session's event log.
pub fn seal(app: &App, skeys: &[String], force: bool, actor: &str) -> Result<Sealed> {
    let mut skeys: Vec<String> = skeys.to_vec();
    skeys.sort();
    skeys.dedup();
    if skeys.is_empty() {
        bail!("name a session to seal (--session PACKAGE/SESSION) or use --all");
    }
    let mut to_close = Vec::new();
    let package_id = {
        let ex = app.read();
        let mut packages = BTreeSet::new();
        for k in &skeys {
            let s = ex.sessions.get(k.as_str()).ok_or_else(|| {
                anyhow!("there is no session {k}; `tuk session list --data DIR` shows the sessions")
            })?;
            if s.status == SessionStatus::Scheduled {
                bail!("session {k} was never opened: there is nothing to seal");
            }
            if is_purged(app, k) {
                bail!(
                    "session {k} was purged after the UPT acknowledged its bundle; that bundle is kept in the store and there is nothing new to seal"
                );
            }
            packages.insert(s.package.clone());
            let running = running_attempts(&ex, k);
            if s.is_running() || running > 0 {
                if !force {
                    bail!(
                        "session {k} is still {} ({running} attempts in progress): close it on the proctor console first, or seal with --force, which closes it now and submits the running attempts (recorded in the event log)",
                        if s.paused_since().is_some() {
                            "paused"
                        } else {
                            "open"
                        }
                    );
                }
                to_close.push(k.clone());
            }
        }
        if packages.len() > 1 {
            bail!(
                "these sessions belong to {} packages ({}); a bundle holds one package's results: seal each package separately",
                packages.len(),
                packages.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        packages.into_iter().next().unwrap_or_default()
    };
    for k in &to_close {
        let key = k.clone();
        let who = Actor::parse(actor);
        let r = app.writer.run_blocking(move |ex: &mut Exam| {
            match ex.close_session(&crate::exam::SessionKey::new(key), true, who, now_ms()) {
                Ok(p) => (p, Ok(())),
                Err(r) => (Vec::new(), Err(r)),
            }
        })?;
        if let Err(refusal) = r {
            bail!("cannot close {k} before sealing: {refusal}");
        }
    }

    let (info, code) = {
        let ex = app.read();
        let info = ex.package(&package_id)?.clone();
        let sealed_code = ex
            .sessions
            .values()
            .filter(|s| s.package == package_id)
            .find_map(|s| s.release_code.clone());
        (info, sealed_code)
    };
    let code = code.map(|c| exam::unseal(&app.key, &c)).transpose()?;
    let trust = app.trust()?;
    let pkg_bytes = app
        .store
        .get(Table::Packages, &info.file_hash)?
        .ok_or_else(|| anyhow!("the package file of {package_id} is no longer in the store (was the session purged?)"))?;
    let pkg = package::verify(&pkg_bytes, &trust)
        .with_context(|| format!("package {package_id} in the store"))?;
    let mut package_members = pkg.raw_members(&app.key)?;
    package_members.retain(|k, _| k == "manifest.json" || k == "roster.json");
    package_members.insert(
        "items.json".into(),
        pkg.raw_items(&app.key, code.as_deref())?,
    );
    let upt = trust.find(&info.header.signer).cloned().ok_or_else(|| {
        anyhow!("the UPT key that signed package {package_id} is no longer trusted here; add it again with `tuk trust add UPT.pub --data DIR`")
    })?;

    let (doc, events) = snapshot(app, &skeys, &info, actor)?;
    let parts = BundleParts {
        doc,
        events,
        package_members,
    };
    let (bytes, header) = super::write(&parts, &app.key, &upt)?;
    let blake3 = blake3::hash(&bytes).to_hex().to_string();

    let mut puts = vec![Put::bytes(
        Table::Results,
        join_key("bundle", &blake3),
        bytes.clone(),
    )];
    for (k, ch) in skeys.iter().zip(&header.chains) {
        let rec = SealedRecord {
            bundle_id: header.bundle_id.clone(),
            blake3: blake3.clone(),
            created: header.created.clone(),
            sessions: header.sessions.clone(),
            chain: ch.clone(),
            forced: to_close.contains(k),
        };
        puts.push(Put::json(
            Table::Results,
            join_key(&join_key("sealed", k), &blake3),
            &rec,
        ));
    }
    let ev = Event::Seal {
        bundle_id: header.bundle_id.clone(),
        blake3: blake3.clone(),
        sessions: skeys.clone(),
        chains: header
            .chains
            .iter()
            .map(|c| SealedChain {
                chain: c.chain.clone(),
                events: c.events,
                head: c.head.clone(),
            })
            .collect(),
        participants: header.participants,
        forced: to_close.clone(),
    };
    let who = Actor::parse(actor);
    app.writer.run_blocking(move |ex: &mut Exam| {
        puts.push(ex.log(events::TUK_CHAIN, now_ms(), who, ev));
        (puts, ())
    })?;
    Ok(Sealed {
        bytes,
        header,
        blake3,
        closed: to_close,
    })
}

/// Reads the sessions' state and their event chains as one consistent snapshot: the chain
/// heads in memory must equal the last stored events (no batch half-way through).
fn snapshot(
    app: &App,
    skeys: &[String],
    info: &exam::PackageInfo,
    actor: &str,
) -> Result<(BundleDoc, SessionEvents)> {
    for _ in 0..50 {
        // Everything queued before now is committed once this returns.
        app.writer.run_blocking(|_: &mut Exam| (Vec::new(), ()))?;
        let ex = app.read();
        let mut chains = BTreeMap::new();
        let mut consistent = true;
        for k in skeys {
            let rows = app
                .store
                .scan_prefix(Table::Events, &format!("{k}\u{1f}"))?;
            let stored_head = rows
                .last()
                .map(|(_, v)| blake3::hash(v).to_hex().to_string())
                .unwrap_or_else(|| events::GENESIS.to_string());
            let mem_head = ex
                .heads
                .get(k)
                .map(|h| h.hash.clone())
                .unwrap_or_else(|| events::GENESIS.to_string());
            if stored_head != mem_head {
                consistent = false;
                break;
            }
            chains.insert(
                k.clone(),
                rows.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            );
        }
        if consistent {
            return build_doc(&ex, app, skeys, info, actor, chains);
        }
        drop(ex);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    bail!("the server is too busy to take a consistent snapshot; try again in a minute")
}

fn build_doc(
    ex: &Exam,
    app: &App,
    skeys: &[String],
    info: &exam::PackageInfo,
    actor: &str,
    chains: BTreeMap<String, Vec<Vec<u8>>>,
) -> Result<(BundleDoc, SessionEvents)> {
    let me = app.key.public();
    let mut doc = BundleDoc {
        format: model::DOC_FORMAT,
        package: PackageRef {
            id: info.header.package_id.clone(),
            version: info.header.version,
            title: info.header.title.clone(),
            upt: info.header.upt.clone(),
            blake3: info.file_hash.clone(),
            signer: info.header.signer.clone(),
        },
        tuk: TukRef {
            name: me.name.clone(),
            signer: me.signer_id(),
            fingerprint: me.fingerprint(),
        },
        sealed: rfc3339(now_ms()),
        sealed_by: actor.to_string(),
        timezone: info.manifest.timezone.clone(),
        sessions: Vec::new(),
        questionnaire: info.questionnaire.clone(),
        participants: Vec::new(),
    };
    let mut by_session = BTreeMap::new();
    for k in skeys {
        let s = ex
            .sessions
            .get(k.as_str())
            .ok_or_else(|| anyhow!("there is no session {k}"))?;
        let spec = info
            .manifest
            .sessions
            .iter()
            .find(|x| x.id == s.id)
            .ok_or_else(|| anyhow!("session {k} is not in its package"))?;
        let raw = chains.get(k).cloned().unwrap_or_default();
        // A closed session's attempts come from the store.
        let atts = ex
            .attempts_of(&k.as_str().into())
            .with_context(|| format!("cannot read the attempts of {k}"))?;
        let evs = raw
            .iter()
            .map(|b| serde_json::from_slice::<Record>(b))
            .collect::<std::result::Result<Vec<_>, _>>()
            .with_context(|| format!("a stored event of {k} is damaged"))?;
        let head =
            events::verify_chain(k, raw.iter().map(|b| b.as_slice())).with_context(|| {
                format!(
                    "the stored event log of {k} does not verify: the store was changed outside tuk"
                )
            })?;
        let derived = model::derive(k, &evs);
        let (opened_ms, closed_ms) = match s.status {
            SessionStatus::Scheduled => (None, None),
            SessionStatus::Open { opened_ms } | SessionStatus::Paused { opened_ms, .. } => {
                (Some(opened_ms), None)
            }
            SessionStatus::Closed {
                opened_ms,
                closed_ms,
            } => (Some(opened_ms), Some(closed_ms)),
        };
        doc.sessions.push(SessionDoc {
            id: s.id.clone(),
            chain: k.clone(),
            test: spec.test.clone(),
            date: spec.date.clone(),
            start: spec.start.clone(),
            end: spec.end.clone(),
            room: spec.room.clone(),
            opened_ms,
            closed_ms,
            proctors: s.proctors.clone(),
            minutes: s.minutes.as_ref().map(|m| MinutesDoc {
                notes: m.notes.clone(),
                confirmed_by: m.confirmed_by.clone(),
                confirmed_ms: m.confirmed_ms,
            }),
            events: raw.len() as u64,
            head,
            timeline: derived.session.clone(),
        });
        for r in info.roster.iter().filter(|r| r.session == s.id) {
            let d = derived
                .participants
                .get(r.participant.as_str())
                .cloned()
                .unwrap_or_default();
            let attempt = atts.of(&r.participant).map(|a| {
                let (finished_ms, finished_by, score) = match &a.status {
                    AttemptStatus::Running => (None, None, None),
                    AttemptStatus::Finished { at_ms, by, score } => {
                        (Some(*at_ms), Some(*by), Some(ScoreDoc::from_score(score)))
                    }
                };
                AttemptDoc {
                    started_ms: a.started_ms,
                    deadline_ms: a.deadline_ms,
                    finished_ms,
                    finished_by,
                    form: a.form.clone(),
                    answers: a
                        .answers
                        .iter()
                        .map(|(item, x)| {
                            (
                                item.to_string(),
                                AnswerDoc {
                                    choice: x.choice_strings(),
                                    doubtful: x.doubtful,
                                    seq: x.seq,
                                    at_ms: x.at_ms,
                                },
                            )
                        })
                        .collect(),
                    score,
                    timeline: d.timeline.clone(),
                    questionnaire: a.questionnaire.clone(),
                }
            });
            doc.participants.push(ParticipantDoc {
                roster: r.clone(),
                present: s.attendance.get(&r.participant).copied(),
                logins: d.logins,
                attempt,
            });
        }
        by_session.insert(s.id.clone(), raw);
    }
    Ok((doc, by_session))
}

/// Bundles sealed for a session, oldest first.
pub(crate) fn sealed_records(app: &App, skey: &str) -> Result<Vec<SealedRecord>> {
    let mut v: Vec<SealedRecord> = app
        .store
        .scan_prefix(Table::Results, &format!("sealed\u{1f}{skey}\u{1f}"))?
        .into_iter()
        .map(|(_, v)| serde_json::from_slice(&v).context("damaged sealed-bundle record"))
        .collect::<Result<_>>()?;
    v.sort_by(|a, b| (a.chain.events, &a.created).cmp(&(b.chain.events, &b.created)));
    Ok(v)
}

/// A stored bundle's bytes.
pub fn bundle_bytes(app: &App, blake3: &str) -> Result<Option<Vec<u8>>> {
    app.store.get(Table::Results, &join_key("bundle", blake3))
}

/// Checks a receipt (signed by a UPT key this TUK trusts, for a bundle this TUK sealed) and
/// keeps it in the store. Returns the receipt and whether it was new.
pub(crate) fn store_receipt(app: &App, signed: &SignedReceipt) -> Result<(Receipt, bool)> {
    let claimed = signed.unverified()?;
    let trust = app.trust()?;
    if trust.find(&claimed.upt_signer).is_none() {
        bail!("the receipt is signed by a UPT key this TUK does not trust");
    }
    let r = signed.verify(&claimed.upt_signer)?;
    if bundle_bytes(app, &r.bundle_blake3)?.is_none() {
        bail!(
            "the receipt is for bundle {} which this TUK did not seal (or not from this data folder)",
            r.bundle_blake3
        );
    }
    let key = join_key("receipt", &r.bundle_blake3);
    if app.store.get(Table::Results, &key)?.is_some() {
        return Ok((r, false));
    }
    let ev = Event::Receipt {
        bundle: r.bundle_blake3.clone(),
        sessions: r.sessions.clone(),
        upt: r.upt.clone(),
        received: r.received.clone(),
    };
    let put = Put::bytes(Table::Results, key, signed.to_json());
    app.writer.run_blocking(move |ex: &mut Exam| {
        let ev = ex.log(events::TUK_CHAIN, now_ms(), Actor::System, ev);
        (vec![put, ev], ())
    })?;
    Ok((r, true))
}

/// What a purge removed.
pub(crate) struct Purged {
    pub(crate) record: PurgeRecord,
    pub(crate) already: bool,
}

/// Removes a session's answers and personal data, once the UPT's receipt for a bundle
/// holding the session's whole event log is stored. The sealed bundle and the receipt stay.
pub(crate) fn purge(app: &App, skey: &str) -> Result<Purged> {
    if let Some(rec) = app
        .store
        .get_json::<PurgeRecord>(Table::Results, &join_key("purged", skey))?
    {
        return Ok(Purged {
            record: rec,
            already: true,
        });
    }
    let (package_id, session_id) = {
        let ex = app.read();
        let s = ex
            .sessions
            .get(skey)
            .ok_or_else(|| anyhow!("there is no session {skey}"))?;
        if s.is_running() || running_attempts(&ex, skey) > 0 {
            bail!("session {skey} is still running; close it, seal it and upload it first");
        }
        (s.package.clone(), s.id.clone())
    };
    let trust = app.trust()?;
    let records = sealed_records(app, skey)?;
    if records.is_empty() {
        bail!(
            "session {skey} has not been sealed: seal it (`tuk seal`), upload it (`tuk upload`), then purge"
        );
    }
    let mut acknowledged = None;
    for rec in records.iter().rev() {
        let Some(raw) = app
            .store
            .get(Table::Results, &join_key("receipt", &rec.blake3))?
        else {
            continue;
        };
        let signed = SignedReceipt::parse(&raw)?;
        let claimed = signed.unverified()?;
        if trust.find(&claimed.upt_signer).is_none() {
            continue;
        }
        let r = signed.verify(&claimed.upt_signer)?;
        if r.bundle_blake3 == rec.blake3 && r.chains.contains(&rec.chain) {
            acknowledged = Some(rec.clone());
            break;
        }
    }
    let Some(rec) = acknowledged else {
        bail!(
            "there is no receipt from the UPT for a bundle of {skey}: upload the bundle with `tuk upload FILE --to https://UPT --data DIR` (or store the receipt with `tuk purge --receipt FILE.receipt.json`) first; nothing was removed"
        );
    };
    let head = {
        let ex = app.read();
        ex.heads.get(skey).map(|h| (h.next_seq, h.hash.clone()))
    };
    let now_head = head
        .clone()
        .map(|h| h.1)
        .unwrap_or_else(|| events::GENESIS.to_string());
    if now_head != rec.chain.head {
        bail!(
            "{} events were logged in {skey} after the acknowledged bundle was sealed: seal and upload again before purging; nothing was removed",
            head.map(|h| h.0)
                .unwrap_or(0)
                .saturating_sub(rec.chain.events)
        );
    }
    // Every stored attempt of the session (a closed session's are in the store only).
    let attempt_keys: Vec<String> = app
        .store
        .scan_prefix(Table::Attempts, &format!("{skey}/"))?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let answer_keys: Vec<String> = app
        .store
        .scan_prefix(Table::Answers, &format!("{skey}/"))?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let event_keys: Vec<String> = app
        .store
        .scan_prefix(Table::Events, &format!("{skey}\u{1f}"))?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let skey_s = skey.to_string();
    let blake = rec.blake3.clone();
    let record = app.writer.run_blocking(move |ex: &mut Exam| {
        let mut puts = Vec::new();
        let mut attempts: BTreeSet<crate::exam::AttemptKey> = attempt_keys.into_iter().map(Into::into).collect();
        attempts.extend(ex.attempts.values().filter(|a| a.session == skey_s).map(|a| a.key.clone()));
        for k in &attempts {
            ex.attempts.remove(k);
            ex.live.remove(k);
            puts.push(Put::delete(Table::Attempts, k.clone()));
        }
        for k in &answer_keys {
            puts.push(Put::delete(Table::Answers, k.clone()));
        }
        for k in &event_keys {
            puts.push(Put::delete(Table::Events, k.clone()));
        }
        ex.heads.remove(&skey_s);
        let mut numbers = BTreeSet::new();
        if let Some(info) = ex.catalog.get_mut(&package_id) {
            numbers = info.roster.iter().filter(|r| r.session == session_id).map(|r| r.participant.clone()).collect();
            info.roster.retain(|r| r.session != session_id);
            puts.push(Put::json(Table::Catalog, package_id.clone(), &*info));
        }
        if let Some(s) = ex.sessions.get_mut(skey_s.as_str()) {
            s.attendance.clear();
            s.minutes = None;
            puts.push(Put::json(Table::Sessions, skey_s.clone(), &*s));
        }
        let still: BTreeSet<crate::exam::ParticipantNo> = ex.catalog.values().flat_map(|p| p.roster.iter().map(|r| r.participant.clone())).collect();
        let mut creds = 0;
        for n in &numbers {
            if !still.contains(n) && ex.credentials.remove(n).is_some() {
                creds += 1;
                puts.push(Put::delete(Table::Credentials, n));
            }
        }
        let webs: Vec<crate::exam::CookieId> = ex
            .web
            .iter()
            .filter(|(_, w)| matches!(&w.who, Who::Participant { number, .. } if numbers.contains(number)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in webs {
            ex.web.remove(&k);
            puts.push(Put::delete(Table::WebSessions, k));
        }
        // The package file holds the whole roster: drop it once no session needs it.
        if let Some(info) = ex.catalog.get(&package_id)
            && info.roster.is_empty()
        {
            puts.push(Put::delete(Table::Packages, info.file_hash.clone()));
        }
        let record = PurgeRecord {
            session: skey_s.clone(),
            bundle_blake3: blake.clone(),
            purged: rfc3339(now_ms()),
            attempts: attempts.len(),
            answers: answer_keys.len(),
            events: event_keys.len(),
            credentials: creds,
        };
        puts.push(Put::json(Table::Results, join_key("purged", &skey_s), &record));
        let ev = Event::Purge(record.clone());
        puts.push(ex.log(events::TUK_CHAIN, now_ms(), Actor::System, ev));
        (puts, record)
    })?;
    Ok(Purged {
        record,
        already: false,
    })
}

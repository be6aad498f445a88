//! Sealed result bundles (`.tukres`): what a TUK sends to the UPT after a test.
//!
//! The file is the same container as a question package ([`crate::container`]):
//!
//! ```text
//! tuk-results v1\n
//! {"format":1,"bundle_id":...}\n           header: one line of JSON (see BundleHeader)
//! ed25519:<base64 signature>\n             by the TUK's key, over the two lines above
//! <age file to end of file>                encrypted to the UPT that signed the package
//! ```
//!
//! The payload is a gzipped tar of `bundle.json` (see [`model::BundleDoc`]), `events/<S>.jsonl`
//! (the exact stored bytes of every event of each session's hash chain, one per line),
//! `package/manifest.json`, `package/roster.json` and `package/items.json` (verbatim from
//! the package, so the UPT can match their blake3 to the header it signed and score with
//! its own key), `minutes/<S>.json` when the proctor wrote minutes, and convenience CSVs.
//! `docs/bundle.md` describes how to check a bundle with standard tools.
//!
//! [`verify`] checks the container (signature by a known TUK, payload hash, member list);
//! [`VerifiedBundle::open`] decrypts it with the UPT key and checks the content against the
//! package and the event log: every chain, every final answer against the last answer
//! event, every score recomputed from the package's key, every participant against the
//! signed roster.

pub(crate) mod model;
pub mod receipt;
pub mod tuk;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::container::{self, Member};
use crate::exam::events::{self, Record};
use crate::exam::score;
use crate::keys::{self, PublicKey, SecretKey, TrustSet};
use crate::package::model::{Item, Manifest, Participant};
use crate::package::{self, Recipient};
pub(crate) use model::BundleDoc;

pub const MAGIC: &[u8] = b"tuk-results v1\n";
pub(crate) const FORMAT: u32 = 1;
/// Largest bundle accepted anywhere (a hostile file cannot make us allocate more).
pub(crate) const MAX_BUNDLE_BYTES: u64 = 1 << 30;
const MAX_MEMBERS: usize = 10_000;
/// Largest payload once inflated.
pub(crate) const MAX_UNPACKED_BYTES: u64 = 4 << 30;

/// The readable, signed part of a bundle.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BundleHeader {
    pub(crate) format: u32,
    /// 32 random hex digits, unique per sealing.
    pub(crate) bundle_id: String,
    pub(crate) package_id: String,
    pub(crate) package_version: u32,
    /// blake3 of the `.tukpkg` file the results belong to.
    pub(crate) package_blake3: String,
    /// The UPT key that signed the package (`ed25519:<base64>`): it verifies receipts.
    pub(crate) package_signer: String,
    /// Session ids (e.g. `S1`) in this bundle.
    pub sessions: Vec<String>,
    /// Length and head of each session's event chain.
    pub(crate) chains: Vec<ChainHead>,
    pub(crate) participants: u64,
    /// The TUK's key name and signing key.
    pub(crate) tuk: String,
    pub(crate) signer: String,
    /// The UPT the payload is encrypted to.
    pub(crate) recipient: Recipient,
    /// UTC, RFC 3339.
    pub(crate) created: String,
    pub(crate) payload: Member,
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChainHead {
    /// `{package}/{session}`
    pub(crate) chain: String,
    pub(crate) events: u64,
    /// blake3 (hex) of the last event's bytes; 64 zeros for an empty chain.
    pub(crate) head: String,
}

/// Everything that goes into a bundle, before it is written.
pub struct BundleParts {
    pub doc: BundleDoc,
    /// Session id → the stored bytes of its events, in order.
    pub events: BTreeMap<String, Vec<Vec<u8>>>,
    /// `manifest.json`, `roster.json`, `items.json` exactly as in the package.
    pub package_members: BTreeMap<String, Vec<u8>>,
}

/// The only member paths a bundle's payload may hold, with their size limits.
fn member_limit(path: &str) -> Result<u64> {
    let session_file = |rest: &str, ext: &str| {
        rest.strip_suffix(ext)
            .is_some_and(|id| crate::package::model::check_id("session id", id).is_ok())
    };
    Ok(match path {
        "bundle.json" => MAX_BUNDLE_BYTES,
        "package/manifest.json" => 4 << 20,
        "package/roster.json" => 64 << 20,
        "package/items.json" => 256 << 20,
        "results.csv" | "answers.csv" | "logins.csv" | "questionnaire.csv" => MAX_BUNDLE_BYTES,
        p if p
            .strip_prefix("events/")
            .is_some_and(|r| session_file(r, ".jsonl")) =>
        {
            MAX_BUNDLE_BYTES
        }
        p if p
            .strip_prefix("minutes/")
            .is_some_and(|r| session_file(r, ".json")) =>
        {
            1 << 20
        }
        _ => bail!("bundle member {path:?} is not allowed (unknown name or path traversal)"),
    })
}

/// Writes the bundle: the tar, age-encrypted to `upt`, signed by `tuk`. Returns the file
/// and its header.
pub fn write(
    parts: &BundleParts,
    tuk: &SecretKey,
    upt: &PublicKey,
) -> Result<(Vec<u8>, BundleHeader)> {
    let doc = &parts.doc;
    let mut files: Vec<(String, Vec<u8>)> = vec![("bundle.json".into(), serde_json::to_vec(doc)?)];
    let mut chains = Vec::new();
    for s in &doc.sessions {
        let evs = parts
            .events
            .get(&s.id)
            .ok_or_else(|| anyhow!("no events for session {}", s.id))?;
        let head = events::verify_chain(&s.chain, evs.iter().map(|b| b.as_slice()))
            .with_context(|| format!("the event log of {} does not verify", s.chain))?;
        chains.push(ChainHead {
            chain: s.chain.clone(),
            events: evs.len() as u64,
            head,
        });
        let mut jsonl = Vec::with_capacity(evs.iter().map(|e| e.len() + 1).sum());
        for e in evs {
            jsonl.extend_from_slice(e);
            jsonl.push(b'\n');
        }
        files.push((format!("events/{}.jsonl", s.id), jsonl));
        if let Some(m) = &s.minutes {
            files.push((
                format!("minutes/{}.json", s.id),
                serde_json::to_vec_pretty(m)?,
            ));
        }
    }
    for name in ["manifest.json", "roster.json", "items.json"] {
        let b = parts
            .package_members
            .get(name)
            .ok_or_else(|| anyhow!("the package's {name} is missing"))?;
        files.push((format!("package/{name}"), b.clone()));
    }
    for (name, table) in csv_tables(doc) {
        files.push((name.to_string(), crate::export::csv(&table)?));
    }
    let members: Vec<Member> = files.iter().map(|(p, b)| container::member(p, b)).collect();
    let plain = gzip(&container::tar_bytes(&files)?)?;
    let payload = container::age_encrypt_to(std::slice::from_ref(&upt.recipient), &plain)?;
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| anyhow!("no randomness available: {e}"))?;
    let header = BundleHeader {
        format: FORMAT,
        bundle_id: id.iter().map(|b| format!("{b:02x}")).collect(),
        package_id: doc.package.id.clone(),
        package_version: doc.package.version,
        package_blake3: doc.package.blake3.clone(),
        package_signer: doc.package.signer.clone(),
        sessions: doc.sessions.iter().map(|s| s.id.clone()).collect(),
        chains,
        participants: doc.participants.len() as u64,
        tuk: tuk.name.clone(),
        signer: tuk.public().signer_id(),
        recipient: Recipient {
            name: upt.name.clone(),
            fingerprint: upt.fingerprint(),
        },
        created: doc.sealed.clone(),
        payload: container::member("payload", &payload),
        members,
    };
    let header_line = serde_json::to_vec(&header)?;
    Ok((container::write(MAGIC, &header_line, tuk, &payload), header))
}

/// The tar is gzipped before encryption: event logs and answers compress about tenfold,
/// which matters on a TUK's slow uplink (`age -d ... | tar -xz` reads it).
fn gzip(tar: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(tar.len() / 8),
        flate2::Compression::new(6),
    );
    e.write_all(tar)?;
    Ok(e.finish()?)
}

/// The most bytes the tar of `members` can take: per member a header block, a GNU long-name
/// entry (header plus the name, for names over 100 bytes) and its data rounded up to 512
/// bytes, plus the two closing blocks. The signed header declares the members, so this is
/// what the gzip stream may inflate to.
pub(crate) fn declared_tar_bytes(members: &[Member]) -> u64 {
    let block = |n: u64| n.div_ceil(512) * 512;
    members
        .iter()
        .map(|m| 512 + 512 + block(m.path.len() as u64 + 1) + block(m.size))
        .fold(1024u64, u64::saturating_add)
}

/// Inflates the payload, refusing more than `cap` bytes (the size the signed header declares)
/// and more than [`MAX_UNPACKED_BYTES`]: a gzip bomb stops there, it is not inflated.
fn gunzip(gz: &[u8], cap: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let cap = cap.min(MAX_UNPACKED_BYTES);
    let mut out = Vec::with_capacity(gz.len().saturating_mul(4).min(cap as usize));
    flate2::read::GzDecoder::new(gz)
        .take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| anyhow!("damaged bundle: the payload does not inflate ({e})"))?;
    if out.len() as u64 > cap {
        bail!(
            "damaged bundle: the payload inflates to more than the {cap} bytes its signed header declares (a gzip bomb?); it was not imported"
        );
    }
    Ok(out)
}

/// The convenience CSVs inside a bundle (the same columns as `docs/bundle.md` lists).
fn csv_tables(doc: &BundleDoc) -> Vec<(&'static str, crate::export::TypedTable)> {
    use crate::export::TypedTable;
    let opt = |v: Option<i64>| v.map(crate::clock::rfc3339).unwrap_or_default();
    let mut results = TypedTable {
        columns: crate::export::texts(&[
            "participant",
            "name",
            "test",
            "session",
            "present",
            "started",
            "finished",
            "finished_by",
            "answered",
            "items",
            "score",
            "predicate",
            "passed",
            "nilai_awal",
        ]),
        rows: Vec::new(),
    };
    let mut answers = TypedTable {
        columns: crate::export::texts(&[
            "participant",
            "session",
            "position",
            "item",
            "choice",
            "doubtful",
            "seq",
            "at",
            "credit_6000ths",
        ]),
        rows: Vec::new(),
    };
    let mut logins = TypedTable {
        columns: crate::export::texts(&["participant", "session", "at", "ip", "kind"]),
        rows: Vec::new(),
    };
    let mut quest = TypedTable {
        columns: crate::export::texts(&["participant", "session", "question", "answer"]),
        rows: Vec::new(),
    };
    for p in &doc.participants {
        let a = p.attempt.as_ref();
        let s = a.and_then(|a| a.score.as_ref());
        results.rows.push(vec![
            p.roster.participant.to_string(),
            p.roster.name.clone(),
            p.roster.test.clone(),
            p.roster.session.clone(),
            p.present
                .map(|b| if b { "yes" } else { "no" })
                .unwrap_or("")
                .into(),
            opt(a.map(|a| a.started_ms)),
            opt(a.and_then(|a| a.finished_ms)),
            a.and_then(|a| a.finished_by)
                .map(|b| format!("{b:?}").to_lowercase())
                .unwrap_or_default(),
            a.map(|a| a.answered().to_string()).unwrap_or_default(),
            a.map(|a| a.form.len().to_string()).unwrap_or_default(),
            s.map(|s| s.total.clone()).unwrap_or_default(),
            s.map(|s| s.predicate.clone()).unwrap_or_default(),
            s.map(|s| s.passed.to_string()).unwrap_or_default(),
            p.roster
                .nilai_awal
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ]);
        for l in &p.logins {
            logins.rows.push(vec![
                p.roster.participant.to_string(),
                p.roster.session.clone(),
                crate::clock::rfc3339(l.at_ms),
                l.ip.clone(),
                l.kind.clone(),
            ]);
        }
        if let Some(a) = a {
            for (i, f) in a.form.iter().enumerate() {
                if let Some(x) = a.answers.get(f.item.as_str()) {
                    answers.rows.push(vec![
                        p.roster.participant.to_string(),
                        p.roster.session.clone(),
                        (i + 1).to_string(),
                        f.item.to_string(),
                        x.choice.join("|"),
                        x.doubtful.to_string(),
                        x.seq.to_string(),
                        crate::clock::rfc3339(x.at_ms),
                        s.and_then(|s| s.items.get(f.item.as_str()))
                            .map(|c| c.to_string())
                            .unwrap_or_default(),
                    ]);
                }
            }
            for (q, ans) in a.questionnaire.iter().flatten() {
                quest.rows.push(vec![
                    p.roster.participant.to_string(),
                    p.roster.session.clone(),
                    q.clone(),
                    ans.clone(),
                ]);
            }
        }
    }
    vec![
        ("results.csv", results),
        ("answers.csv", answers),
        ("logins.csv", logins),
        ("questionnaire.csv", quest),
    ]
}

/// A bundle whose signature (by a known TUK) and payload hash have been checked.
pub(crate) struct VerifiedBundle {
    header: BundleHeader,
    signer: PublicKey,
    payload: Vec<u8>,
}

/// Reads only the header line, unchecked: to show what a file claims to be.
pub(crate) fn peek_header(bytes: &[u8]) -> Result<BundleHeader> {
    let parts = container::split(bytes, MAGIC, "bundle")?;
    parse_header(parts.header_line)
}

fn parse_header(line: &[u8]) -> Result<BundleHeader> {
    #[derive(Deserialize)]
    struct FormatOnly {
        format: u32,
    }
    if let Ok(f) = serde_json::from_slice::<FormatOnly>(line)
        && f.format != FORMAT
    {
        bail!(
            "bundle format {} is not supported (this tuk reads format {FORMAT}): update tuk",
            f.format
        );
    }
    serde_json::from_slice(line)
        .map_err(|e| anyhow!("damaged bundle: the header is not valid ({e})"))
}

/// Splits and checks a bundle: magic, header, signature by a TUK in `tuks`, payload size
/// and hash, member list.
pub(crate) fn verify(bytes: &[u8], tuks: &TrustSet) -> Result<VerifiedBundle> {
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        bail!(
            "the file is larger than any bundle may be ({} MiB)",
            MAX_BUNDLE_BYTES >> 20
        );
    }
    let parts = container::split(bytes, MAGIC, "bundle")?;
    let header = parse_header(parts.header_line)?;
    let signer = tuks.find(&header.signer).ok_or_else(|| {
        anyhow!(
            "the bundle is signed by a TUK key this UPT does not know ({} {}); if the TUK is genuine, add its public key with `tuk upt trust TUK.pub --data DIR`",
            header.tuk,
            keys::parse_verifying(&header.signer)
                .map(|k| keys::fingerprint(&k))
                .unwrap_or_else(|_| "unreadable".into())
        )
    })?;
    if !keys::verify(
        &signer.verifying,
        &container::signed_message(MAGIC, parts.header_line),
        &parts.signature,
    ) {
        bail!("the bundle signature does not match its header: the file was changed after sealing");
    }
    container::check_payload(parts.payload, &header.payload)?;
    container::check_member_list(&header.members, MAX_MEMBERS, "bundle", &member_limit)?;
    if header.chains.len() != header.sessions.len() {
        bail!(
            "damaged bundle: the header lists {} sessions but {} chains",
            header.sessions.len(),
            header.chains.len()
        );
    }
    Ok(VerifiedBundle {
        header,
        signer: signer.clone(),
        payload: parts.payload.to_vec(),
    })
}

/// A bundle opened and checked against its package and its event log.
pub(crate) struct Opened {
    pub(crate) manifest: Manifest,
    pub(crate) items: Vec<Item>,
    /// blake3 of every event, per session id, in order (to compare chains of two bundles).
    pub(crate) event_hashes: BTreeMap<String, Vec<[u8; 32]>>,
    /// The exact bytes of `bundle.json`.
    pub(crate) bundle_json: Vec<u8>,
}

impl VerifiedBundle {
    pub(crate) fn header(&self) -> &BundleHeader {
        &self.header
    }
    pub(crate) fn signer(&self) -> &PublicKey {
        &self.signer
    }

    /// Decrypts with the UPT's key and checks everything inside. `package` is the header of
    /// the package this UPT signed and registered (found by the bundle's `package_blake3`).
    pub(crate) fn open(&self, upt: &SecretKey, package: &package::Header) -> Result<Opened> {
        let h = &self.header;
        let me = upt.public();
        if h.recipient.fingerprint != me.fingerprint() {
            bail!(
                "this bundle is encrypted to UPT {} ({}), not to this UPT ({}): send it to the UPT that signed package {}",
                h.recipient.name,
                h.recipient.fingerprint,
                me.fingerprint(),
                h.package_id
            );
        }
        if package.signer != me.signer_id() || h.package_signer != package.signer {
            bail!(
                "package {} of this bundle was not signed by this UPT's key",
                h.package_id
            );
        }
        if package.package_id != h.package_id || package.version != h.package_version {
            bail!(
                "the bundle's package id or version does not match the registered package {}",
                package.package_id
            );
        }
        if !package
            .recipients
            .iter()
            .any(|r| r.fingerprint == self.signer.fingerprint())
        {
            bail!(
                "package {} was not made for TUK {} ({}): a TUK can only return results of a package encrypted to it",
                h.package_id,
                self.signer.name,
                self.signer.fingerprint()
            );
        }
        let plain = container::age_decrypt_with(&self.payload, &upt.identity, MAX_BUNDLE_BYTES)
            .map_err(|e| anyhow!("cannot decrypt the bundle with this UPT's key: {e}"))?;
        let plain = gunzip(&plain, declared_tar_bytes(&h.members))?;
        let mut files = container::untar_checked(&plain, &h.members, &member_limit)?;
        let mut take = |name: &str| {
            files
                .remove(name)
                .ok_or_else(|| anyhow!("the bundle has no {name}"))
        };
        let bundle_json = take("bundle.json")?;
        let doc: BundleDoc =
            serde_json::from_slice(&bundle_json).context("bundle.json is not valid")?;
        let manifest_raw = take("package/manifest.json")?;
        let roster_raw = take("package/roster.json")?;
        let items_raw = take("package/items.json")?;
        let signed = |name: &str, raw: &[u8]| -> Result<()> {
            let m = package
                .members
                .iter()
                .chain(package.release_members.iter())
                .find(|m| m.path == name)
                .ok_or_else(|| anyhow!("the package header lists no {name}"))?;
            if blake3::hash(raw).to_hex().as_str() != m.blake3 {
                bail!(
                    "the bundle's copy of the package's {name} differs from the package this UPT signed"
                );
            }
            Ok(())
        };
        signed("manifest.json", &manifest_raw)?;
        signed("roster.json", &roster_raw)?;
        signed("items.json", &items_raw)?;
        let manifest: Manifest =
            serde_json::from_slice(&manifest_raw).context("the package's manifest.json")?;
        let roster: Vec<Participant> =
            serde_json::from_slice(&roster_raw).context("the package's roster.json")?;
        let items: Vec<Item> =
            serde_json::from_slice(&items_raw).context("the package's items.json")?;
        let mut event_hashes = BTreeMap::new();
        let mut chains = BTreeMap::new();
        for (s, ch) in h.sessions.iter().zip(&h.chains) {
            let text = take(&format!("events/{s}.jsonl"))?;
            let lines: Vec<&[u8]> = if text.is_empty() {
                Vec::new()
            } else {
                text.strip_suffix(b"\n")
                    .ok_or_else(|| anyhow!("events/{s}.jsonl does not end with a newline"))?
                    .split(|&b| b == b'\n')
                    .collect()
            };
            let head = events::verify_chain(&ch.chain, lines.iter().copied())
                .with_context(|| format!("the event log of session {s} does not verify"))?;
            if ch.chain != format!("{}/{s}", h.package_id)
                || head != ch.head
                || lines.len() as u64 != ch.events
            {
                bail!(
                    "the event log of session {s} does not end where the signed header says: events were removed or added"
                );
            }
            event_hashes.insert(
                s.clone(),
                lines
                    .iter()
                    .map(|l| *blake3::hash(l).as_bytes())
                    .collect::<Vec<_>>(),
            );
            let evs = lines
                .iter()
                .map(|l| serde_json::from_slice::<Record>(l))
                .collect::<std::result::Result<Vec<_>, _>>()
                .context("an event is not valid")?;
            chains.insert(s.clone(), (ch.clone(), evs));
        }
        check_doc(self, &doc, &manifest, &roster, &items, &chains)?;
        Ok(Opened {
            manifest,
            items,
            event_hashes,
            bundle_json,
        })
    }
}

/// `bundle.json` must say exactly what the package and the event log say.
fn check_doc(
    b: &VerifiedBundle,
    doc: &BundleDoc,
    manifest: &Manifest,
    roster: &[Participant],
    items: &[Item],
    chains: &BTreeMap<String, (ChainHead, Vec<Record>)>,
) -> Result<()> {
    let h = &b.header;
    let bad = |what: String| {
        anyhow!(
            "bundle.json does not match {what}: the bundle is inconsistent and was not imported"
        )
    };
    if doc.format != model::DOC_FORMAT {
        bail!(
            "bundle.json format {} is not supported: update tuk",
            doc.format
        );
    }
    if doc.package.id != h.package_id
        || doc.package.blake3 != h.package_blake3
        || doc.package.signer != h.package_signer
    {
        return Err(bad("the signed header's package".into()));
    }
    if doc.tuk.signer != h.signer {
        return Err(bad("the key that signed the bundle".into()));
    }
    let ids: Vec<&String> = doc.sessions.iter().map(|s| &s.id).collect();
    if ids != h.sessions.iter().collect::<Vec<_>>() {
        return Err(bad("the sessions of the signed header".into()));
    }
    let by_id: BTreeMap<&str, &Item> = items.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut seen = BTreeSet::new();
    for s in &doc.sessions {
        let (ch, evs) = chains
            .get(&s.id)
            .ok_or_else(|| bad(format!("session {}", s.id)))?;
        if s.chain != ch.chain || s.events != ch.events || s.head != ch.head {
            return Err(bad(format!("the event chain of session {}", s.id)));
        }
        let spec = manifest
            .sessions
            .iter()
            .find(|x| x.id == s.id)
            .ok_or_else(|| anyhow!("session {} is not in package {}", s.id, h.package_id))?;
        let test = manifest
            .tests
            .iter()
            .find(|t| t.id == spec.test)
            .ok_or_else(|| anyhow!("session {} names an unknown test", s.id))?;
        let unknown = model::unknown_kinds(evs);
        if !unknown.is_empty() {
            bail!(
                "the event log of session {} holds events this tuk cannot read ({}): update tuk at the UPT to the TUK's version, then import again",
                s.id,
                unknown.join(", ")
            );
        }
        let derived = model::derive(&ch.chain, evs);
        if s.timeline != derived.session {
            return Err(bad(format!(
                "the session timeline of {} in the event log",
                s.id
            )));
        }
        let registered: Vec<&Participant> = roster.iter().filter(|p| p.session == s.id).collect();
        let here: Vec<&model::ParticipantDoc> = doc
            .participants
            .iter()
            .filter(|p| p.roster.session == s.id)
            .collect();
        if registered.len() != here.len() {
            return Err(bad(format!(
                "the roster of session {} ({} registered, {} in the bundle)",
                s.id,
                registered.len(),
                here.len()
            )));
        }
        for p in here {
            let row = &p.roster;
            if !seen.insert((row.participant.clone(), row.session.clone())) {
                return Err(bad(format!(
                    "participant {} (listed twice)",
                    row.participant
                )));
            }
            let r = registered
                .iter()
                .find(|r| r.participant == row.participant)
                .ok_or_else(|| anyhow!("participant {} of session {} is not in the package's roster: the roster is frozen, the bundle was not imported", row.participant, s.id))?;
            if *r != row {
                return Err(bad(format!(
                    "the roster entry of participant {}",
                    row.participant
                )));
            }
            let d = derived
                .participants
                .get(row.participant.as_str())
                .cloned()
                .unwrap_or_default();
            if p.logins != d.logins {
                return Err(bad(format!(
                    "the logins of participant {} in the event log",
                    row.participant
                )));
            }
            let Some(a) = &p.attempt else {
                if d.started_ms.is_some() || !d.answers.is_empty() {
                    return Err(bad(format!(
                        "participant {}: the log has an attempt the bundle omits",
                        row.participant
                    )));
                }
                continue;
            };
            if d.started_ms != Some(a.started_ms) || a.timeline != d.timeline {
                return Err(bad(format!(
                    "the attempt timeline of participant {} in the event log",
                    row.participant
                )));
            }
            if a.answers != d.answers {
                return Err(bad(format!(
                    "the answers of participant {} in the event log",
                    row.participant
                )));
            }
            if a.questionnaire != d.questionnaire {
                return Err(bad(format!(
                    "the questionnaire of participant {} in the event log",
                    row.participant
                )));
            }
            let form_items = a
                .form
                .iter()
                .map(|f| {
                    by_id
                        .get(f.item.as_str())
                        .copied()
                        .filter(|it| it.test == p.roster.test)
                        .ok_or_else(|| {
                            anyhow!(
                                "participant {}: item {} is not in test {} of the package",
                                row.participant,
                                f.item,
                                p.roster.test
                            )
                        })
                })
                .collect::<Result<Vec<&Item>>>()?;
            if a.answers
                .keys()
                .any(|k| !a.form.iter().any(|f| &f.item == k))
            {
                return Err(bad(format!(
                    "participant {}: an answer to an item outside their form",
                    row.participant
                )));
            }
            match (&a.score, &d.finished, a.finished_ms, a.finished_by) {
                (None, None, None, None) => {}
                (Some(sc), Some((at, by, total)), Some(fm), Some(fb)) => {
                    if *at != fm || *by != fb || *total != sc.total {
                        return Err(bad(format!(
                            "the finish of participant {} in the event log",
                            row.participant
                        )));
                    }
                    let answers = |id: &str| a.answers.get(id).map(|x| x.choice.clone());
                    let again = score::score(&form_items, &answers, test.pass_threshold);
                    if model::ScoreDoc::from_score(&again) != *sc {
                        bail!(
                            "participant {}: the score in the bundle ({}) is not what the package's key gives for the logged answers ({}); the bundle was not imported",
                            row.participant,
                            sc.total,
                            again.total
                        );
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "the finish of participant {}",
                        row.participant
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_tar_size_bounds_the_real_tar_and_stops_a_bomb() {
        let files: Vec<(String, Vec<u8>)> = vec![
            ("bundle.json".into(), vec![b'x'; 1000]),
            (format!("events/{}.jsonl", "S".repeat(120)), vec![b'y'; 513]),
            ("results.csv".into(), Vec::new()),
        ];
        let members: Vec<Member> = files.iter().map(|(p, b)| container::member(p, b)).collect();
        let tar = container::tar_bytes(&files).unwrap();
        assert!(declared_tar_bytes(&members) >= tar.len() as u64);
        let gz = gzip(&tar).unwrap();
        assert_eq!(gunzip(&gz, declared_tar_bytes(&members)).unwrap(), tar);
        // 64 MiB of zeros in ~64 KiB of gzip, declared as the small tar above.
        let bomb = gzip(&vec![0u8; 64 << 20]).unwrap();
        let e = gunzip(&bomb, declared_tar_bytes(&members)).unwrap_err();
        assert!(e.to_string().contains("gzip bomb"), "{e}");
    }

    #[test]
    fn member_names_are_restricted() {
        assert!(member_limit("events/S1.jsonl").is_ok());
        assert!(member_limit("minutes/S-2.json").is_ok());
        assert!(member_limit("events/../x.jsonl").is_err());
        assert!(member_limit("events/a/b.jsonl").is_err());
        assert!(member_limit("/etc/passwd").is_err());
        assert!(member_limit("bundle.json").is_ok());
    }
}

//! Signed, encrypted question packages (`.tukpkg`): the UPT builds them, a TUK verifies and
//! opens them.
//!
//! A package is one file:
//!
//! ```text
//! tuk-package v1\n                       magic line
//! {"format":1,"package_id":...}\n         header: one line of JSON, readable with `head -2`
//! ed25519:<base64 signature>\n            Ed25519 over "tuk-package v1\n" + header line
//! <age file to end of file>               payload, encrypted to every listed TUK (X25519)
//! ```
//!
//! The header names the signer's key, the payload's size and blake3 hash and the blake3 of
//! every member of the payload, so one signature covers every byte. The payload is a tar
//! archive of `manifest.json`, `roster.json`, optional `questionnaire.json`, and either
//! `items.json` + `media/*` or, with a release code, `release.age`: the same members in a
//! second age layer encrypted with the code (scrypt), listed as `release_members`.
//!
//! [`verify`] returns a [`VerifiedPackage`] only when the signature and hashes check out;
//! opening the payload ([`VerifiedPackage::open`]) needs a TUK key and validates the content
//! again. Nothing here trusts the builder.

pub mod html;
pub mod import;
pub(crate) mod lint;
pub mod model;
pub(crate) mod preview;
pub mod source;

use std::collections::{BTreeMap, BTreeSet};

use age::secrecy::SecretString;
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::container;
use crate::keys::{self, PublicKey, SecretKey, TrustSet};
use model::{Item, Manifest, Participant, Questionnaire};

const MAGIC: &[u8] = b"tuk-package v1\n";
/// Sanity limits on what a package file may claim; a hostile file cannot make us allocate more.
pub(crate) const MAX_PACKAGE_BYTES: u64 = 1 << 30;
const MAX_MEMBERS: usize = 10_000;
/// scrypt work factor (log2 N) of the release-code layer: 2^18 × 1 KiB = 256 MiB.
pub const RELEASE_CODE_LOG_N: u8 = 18;

/// The readable, signed part of a package.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    pub package_id: String,
    pub version: u32,
    pub(crate) upt: String,
    pub(crate) title: String,
    /// UTC, RFC 3339.
    pub(crate) created: String,
    /// The UPT's signing key, `ed25519:<base64>`.
    pub signer: String,
    /// Name and fingerprint of each TUK that can open the payload.
    pub recipients: Vec<Recipient>,
    pub release_code: bool,
    pub payload: Member,
    pub members: Vec<Member>,
    #[serde(default)]
    pub release_members: Vec<Member>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub(crate) name: String,
    pub(crate) fingerprint: String,
}

pub use crate::container::Member;

/// A package whose signature (by a trusted UPT key) and payload hash have been checked.
/// The only way to get one is [`verify`].
pub struct VerifiedPackage {
    header: Header,
    signer: PublicKey,
    payload: Vec<u8>,
    /// blake3 of the whole package file: the id results are tied to.
    file_hash: String,
}

/// The decrypted content of a package, validated.
pub struct Contents {
    pub manifest: Manifest,
    pub roster: Vec<Participant>,
    pub(crate) questionnaire: Option<Questionnaire>,
    pub bank: Bank,
}

/// Items and media, or the sealed layer that opens only with the release code.
pub enum Bank {
    Open(ItemBank),
    Locked(Vec<u8>),
}

/// The item texts, keys and media: what must stay secret until the session opens.
#[derive(Clone)]
pub struct ItemBank {
    pub items: Vec<Item>,
    pub media: BTreeMap<String, Vec<u8>>,
}

/// Builds and signs a package from a source folder. Returns the file's bytes.
pub fn build(
    src: &source::Source,
    signer: &SecretKey,
    to: &[PublicKey],
    release_code: Option<&str>,
) -> Result<Vec<u8>> {
    if to.is_empty() {
        bail!("name at least one TUK with --to TUK.pub");
    }
    let items_json = serde_json::to_vec(&src.items)?;
    let mut bank_members: Vec<(String, Vec<u8>)> = vec![("items.json".into(), items_json)];
    for (name, bytes) in &src.media {
        bank_members.push((format!("media/{name}"), bytes.clone()));
    }
    let mut manifest = src.manifest.clone();
    for t in &mut manifest.tests {
        t.bank.clear();
        t.competency.clear();
    }
    let mut outer: Vec<(String, Vec<u8>)> = vec![
        ("manifest.json".into(), serde_json::to_vec(&manifest)?),
        ("roster.json".into(), serde_json::to_vec(&src.roster)?),
    ];
    if let Some(q) = &src.questionnaire {
        outer.push(("questionnaire.json".into(), serde_json::to_vec(q)?));
    }
    let mut release_members = Vec::new();
    match release_code {
        Some(code) => {
            if code.trim().len() < 8 {
                bail!("--release-code must be at least 8 characters (12 or more is better)");
            }
            release_members = bank_members.iter().map(|(p, b)| member(p, b)).collect();
            let inner = tar_bytes(&bank_members)?;
            let mut r = age::scrypt::Recipient::new(SecretString::from(code.trim().to_string()));
            // A fixed cost the minimum TUK server can pay (256 MiB, a few seconds), not
            // age's default calibrated to the builder's machine.
            r.set_work_factor(RELEASE_CODE_LOG_N);
            let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
                .map_err(|e| anyhow!("cannot encrypt: {e}"))?;
            outer.push(("release.age".into(), age_encrypt(enc, &inner)?));
        }
        None => outer.extend(bank_members),
    }
    let members: Vec<Member> = outer.iter().map(|(p, b)| member(p, b)).collect();
    let plain = tar_bytes(&outer)?;
    let recipients: Vec<age::x25519::Recipient> = to.iter().map(|k| k.recipient.clone()).collect();
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| anyhow!("cannot encrypt: {e}"))?;
    let payload = age_encrypt(enc, &plain)?;

    let header = Header {
        format: model::FORMAT,
        package_id: src.manifest.id.clone(),
        version: src.manifest.version,
        upt: src.manifest.upt.clone(),
        title: src.manifest.title.clone(),
        created: crate::clock::rfc3339(crate::clock::now_ms()),
        signer: signer.public().signer_id(),
        recipients: to
            .iter()
            .map(|k| Recipient {
                name: k.name.clone(),
                fingerprint: k.fingerprint(),
            })
            .collect(),
        release_code: release_code.is_some(),
        payload: member("payload", &payload),
        members,
        release_members,
    };
    let header_line = serde_json::to_vec(&header)?;
    Ok(container::write(MAGIC, &header_line, signer, &payload))
}

fn signed_message(header_line: &[u8]) -> Vec<u8> {
    container::signed_message(MAGIC, header_line)
}

fn member(path: &str, bytes: &[u8]) -> Member {
    container::member(path, bytes)
}

fn age_encrypt(enc: age::Encryptor, plain: &[u8]) -> Result<Vec<u8>> {
    container::age_encrypt(enc, plain)
}

fn tar_bytes(members: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    container::tar_bytes(members)
}

/// Splits and checks a package file: magic, header, signature by a trusted key, payload
/// size and hash. Any failure is one sentence saying what is wrong.
pub fn verify(bytes: &[u8], trust: &TrustSet) -> Result<VerifiedPackage> {
    if bytes.len() as u64 > MAX_PACKAGE_BYTES {
        bail!(
            "the file is larger than any package may be ({} MiB)",
            MAX_PACKAGE_BYTES >> 20
        );
    }
    let parts = container::split(bytes, MAGIC, "package")?;
    let (header_line, sig, payload) = (parts.header_line, parts.signature, parts.payload);
    let header = parse_header(header_line)?;
    let signer = trust.find(&header.signer).ok_or_else(|| {
        anyhow!(
            "package is signed by a key this TUK does not trust (fingerprint {}); add the UPT's public key with `tuk trust add UPT.pub` if it is genuine",
            keys::parse_verifying(&header.signer)
                .map(|k| keys::fingerprint(&k))
                .unwrap_or_else(|_| "unreadable".into())
        )
    })?;
    if !keys::verify(&signer.verifying, &signed_message(header_line), &sig) {
        bail!(
            "the package signature does not match its header: the file was changed after signing"
        );
    }
    container::check_payload(payload, &header.payload)?;
    check_member_list(&header.members)?;
    check_member_list(&header.release_members)?;
    Ok(VerifiedPackage {
        header,
        signer: signer.clone(),
        payload: payload.to_vec(),
        file_hash: blake3::hash(bytes).to_hex().to_string(),
    })
}

/// Checks a package against the key its own header names: proves the file is intact, not
/// who made it. For `inspect`; importing always uses [`verify`] with the trusted keys.
pub fn verify_self(bytes: &[u8]) -> Result<VerifiedPackage> {
    let header_line = bytes
        .strip_prefix(MAGIC)
        .and_then(|r| r.split(|&b| b == b'\n').next())
        .ok_or_else(|| {
            anyhow!("not a tuk package (the file does not start with `tuk-package v1`)")
        })?;
    let header = parse_header(header_line)?;
    let verifying = keys::parse_verifying(&header.signer)?;
    let own = PublicKey {
        name: "signer".into(),
        verifying,
        // Only the signing half is used when verifying.
        recipient: age::x25519::Identity::generate().to_public(),
    };
    verify(bytes, &TrustSet::new(vec![own]))
}

/// Parses the header line. The format number is read first, on its own, so that a newer
/// format (which may add fields this tuk does not know) asks for an update rather than
/// being called damaged.
fn parse_header(header_line: &[u8]) -> Result<Header> {
    #[derive(Deserialize)]
    struct FormatOnly {
        format: u32,
    }
    if let Ok(f) = serde_json::from_slice::<FormatOnly>(header_line)
        && f.format != model::FORMAT
    {
        bail!(
            "package format {} is not supported (this tuk reads format {}): update tuk",
            f.format,
            model::FORMAT
        );
    }
    serde_json::from_slice(header_line)
        .map_err(|e| anyhow!("damaged package: the header is not valid ({e})"))
}

fn check_member_list(members: &[Member]) -> Result<()> {
    container::check_member_list(members, MAX_MEMBERS, "package", &member_limit)
}

/// The only member paths a payload may hold, with their size limits. Everything else
/// (absolute paths, `..`, unknown names) is refused.
fn member_limit(path: &str) -> Result<u64> {
    Ok(match path {
        "manifest.json" | "questionnaire.json" => 4 << 20,
        "roster.json" => 64 << 20,
        "items.json" => 256 << 20,
        "release.age" => MAX_PACKAGE_BYTES,
        p => match p.strip_prefix("media/") {
            Some(name) if source::media_name_ok(name) => model::MAX_MEDIA_BYTES,
            _ => bail!("package member {path:?} is not allowed (unknown name or path traversal)"),
        },
    })
}

impl VerifiedPackage {
    pub fn header(&self) -> &Header {
        &self.header
    }

    pub(crate) fn signer(&self) -> &PublicKey {
        &self.signer
    }

    /// blake3 of the whole package file, hex.
    pub fn file_hash(&self) -> &str {
        &self.file_hash
    }

    /// The exact bytes of the outer members (`manifest.json`, `roster.json`, ...), each
    /// checked against its hash in the signed header. A result bundle carries
    /// `manifest.json` and `roster.json` verbatim so the UPT can match them to the header it
    /// signed.
    pub(crate) fn raw_members(&self, key: &SecretKey) -> Result<BTreeMap<String, Vec<u8>>> {
        self.decrypt_members(key)
    }

    /// The exact bytes of `items.json` (checked against the signed header), opening the
    /// release layer with `code` when the package has one. Sealed result bundles carry it
    /// so the UPT scores with the key it signed, not one the TUK could change.
    pub fn raw_items(&self, key: &SecretKey, code: Option<&str>) -> Result<Vec<u8>> {
        let mut files = self.decrypt_members(key)?;
        if let Some(b) = files.remove("items.json") {
            return Ok(b);
        }
        let sealed = files
            .remove("release.age")
            .ok_or_else(|| anyhow!("the package has no items.json"))?;
        let code = code.ok_or_else(|| {
            anyhow!("this package needs the release code the UPT announces on the exam day")
        })?;
        let mut id = age::scrypt::Identity::new(SecretString::from(code.trim().to_string()));
        id.set_max_work_factor(22);
        let plain =
            age_decrypt_with(&sealed, &id).map_err(|_| anyhow!("the release code is wrong"))?;
        untar_checked(&plain, &self.header.release_members)?
            .remove("items.json")
            .ok_or_else(|| anyhow!("the package has no items.json"))
    }

    fn decrypt_members(&self, key: &SecretKey) -> Result<BTreeMap<String, Vec<u8>>> {
        let plain = age_decrypt_with(&self.payload, &key.identity).map_err(|e| {
            anyhow!(
                "this package is not for this TUK: the key {} cannot open it ({e}); it was encrypted to {}",
                key.public(),
                self.header
                    .recipients
                    .iter()
                    .map(|r| format!("{} ({})", r.name, r.fingerprint))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        untar_checked(&plain, &self.header.members)
    }

    /// Decrypts the payload with a TUK key and validates what is inside.
    pub fn open(&self, key: &SecretKey) -> Result<Contents> {
        let mut files = self.decrypt_members(key)?;
        let json = |files: &mut BTreeMap<String, Vec<u8>>, name: &str| {
            files
                .remove(name)
                .ok_or_else(|| anyhow!("the package has no {name}"))
        };
        let mut manifest: Manifest = serde_json::from_slice(&json(&mut files, "manifest.json")?)
            .context("manifest.json in the package is not valid")?;
        // The builder stores canonical HTML; canonicalise again so nothing a hand-made
        // package spells differently reaches the server.
        model::canonicalise(&mut manifest, &mut [], &BTreeSet::new())
            .context("manifest.json in the package is not valid")?;
        let roster: Vec<Participant> = serde_json::from_slice(&json(&mut files, "roster.json")?)
            .context("roster.json in the package is not valid")?;
        let questionnaire = match files.remove("questionnaire.json") {
            Some(b) => Some(
                serde_json::from_slice(&b)
                    .context("questionnaire.json in the package is not valid")?,
            ),
            None => None,
        };
        if manifest.id != self.header.package_id || manifest.version != self.header.version {
            bail!("the manifest inside the package does not match its signed header");
        }
        let bank = match files.remove("release.age") {
            Some(sealed) => {
                if !self.header.release_code {
                    bail!("the package has a release layer its header does not announce");
                }
                Bank::Locked(sealed)
            }
            None => {
                if self.header.release_code {
                    bail!("the package header announces a release code but has no release layer");
                }
                Bank::Open(item_bank(files)?)
            }
        };
        let contents = Contents {
            manifest,
            roster,
            questionnaire,
            bank,
        };
        if let Bank::Open(b) = &contents.bank {
            contents.validate_with(b)?;
        } else {
            // Without the items, check everything that does not need them.
            model::validate_roster_only(
                &contents.manifest,
                &contents.roster,
                contents.questionnaire.as_ref(),
            )?;
        }
        Ok(contents)
    }

    /// Opens the item layer. Without a release code this is the open bank; with one, the
    /// code must be given and must be right.
    pub fn unlock(&self, contents: &Contents, code: Option<&str>) -> Result<ItemBank> {
        let bank = match (&contents.bank, code) {
            (Bank::Open(b), _) => b.clone(),
            (Bank::Locked(_), None) => {
                bail!("this package needs the release code the UPT announces on the exam day")
            }
            (Bank::Locked(sealed), Some(code)) => {
                let mut id =
                    age::scrypt::Identity::new(SecretString::from(code.trim().to_string()));
                id.set_max_work_factor(22);
                let plain = age_decrypt_with(sealed, &id)
                    .map_err(|_| anyhow!("the release code is wrong"))?;
                item_bank(untar_checked(&plain, &self.header.release_members)?)?
            }
        };
        contents.validate_with(&bank)?;
        Ok(bank)
    }
}

impl Contents {
    fn validate_with(&self, bank: &ItemBank) -> Result<()> {
        let names = bank.media.keys().cloned().collect();
        model::validate(
            &self.manifest,
            &self.roster,
            &bank.items,
            &names,
            self.questionnaire.as_ref(),
        )
    }

    /// Counts for `inspect` and the import page; never item texts.
    pub(crate) fn counts(&self) -> (usize, Option<usize>, usize, usize) {
        let items = match &self.bank {
            Bank::Open(b) => Some(b.items.len()),
            Bank::Locked(_) => None,
        };
        (
            self.manifest.tests.len(),
            items,
            self.roster.len(),
            self.manifest.sessions.len(),
        )
    }
}

fn item_bank(mut files: BTreeMap<String, Vec<u8>>) -> Result<ItemBank> {
    let mut items: Vec<Item> = serde_json::from_slice(
        &files
            .remove("items.json")
            .ok_or_else(|| anyhow!("the package has no items.json"))?,
    )
    .context("items.json in the package is not valid")?;
    let media: BTreeMap<String, Vec<u8>> = files
        .into_iter()
        .filter_map(|(p, b)| p.strip_prefix("media/").map(|n| (n.to_string(), b)))
        .collect();
    let names: BTreeSet<String> = media.keys().cloned().collect();
    model::canonicalise_items(&mut items, &names)
        .context("items.json in the package is not valid")?;
    Ok(ItemBank { items, media })
}

fn age_decrypt_with(cipher: &[u8], identity: &dyn age::Identity) -> Result<Vec<u8>> {
    container::age_decrypt_with(cipher, identity, MAX_PACKAGE_BYTES)
}

/// Unpacks a tar, accepting only the members the signed header lists, each with the size
/// and hash it claims, and nothing else.
fn untar_checked(tar_bytes: &[u8], expected: &[Member]) -> Result<BTreeMap<String, Vec<u8>>> {
    container::untar_checked(tar_bytes, expected, &member_limit)
}

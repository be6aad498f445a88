//! The UPT side: a data folder that receives sealed bundles from TUKs, checks them,
//! keeps each once, answers with a signed receipt, and produces the reports.
//!
//! Data folder layout: `upt.key` (this UPT's keys, copied at `tuk upt init`) and `upt.redb`
//! with these tables (string keys, byte values):
//!
//! | table | key | value |
//! |---|---|---|
//! | `tuks` | TUK signer id | its public key line |
//! | `packages` | blake3 of a `.tukpkg` this UPT signed | the package header (JSON) |
//! | `bundles` | blake3 of a bundle file | the file |
//! | `imports` | blake3 of a bundle file | [`ImportRecord`] (JSON) |
//! | `docs` | blake3 of a bundle file | its checked `bundle.json` |
//! | `latest` | `tuk␟package␟session` | [`Latest`]: the newest bundle of that session |
//! | `hashes` | `bundle␟session␟` | blake3 of every event of the chain, 32 bytes each |
//! | `contents` | `package blake3␟manifest` / `␟items` | the package's manifest and items (with keys), from the first bundle |
//! | `staff` | user name | [`StaffAccount`] (JSON): who may read the report pages |
//!
//! An import is one write transaction: a bundle is stored whole, with its receipt and its
//! place as the session's latest, or not at all.

pub mod report;
pub mod server;
pub mod stats;
pub(crate) mod web;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use redb::{ReadableTable, TableDefinition};

use crate::store::Db;
use serde::{Deserialize, Serialize};

use crate::clock::{now_ms, rfc3339};
use crate::keys::{PublicKey, SecretKey, TrustSet};
use crate::package;
use crate::seal::receipt::{Receipt, SignedReceipt};
use crate::seal::{self, BundleDoc, BundleHeader};

pub(crate) const DB_FILE: &str = "upt.redb";
pub(crate) const KEY_FILE: &str = "upt.key";

type Def = TableDefinition<'static, &'static str, &'static [u8]>;
const TUKS: Def = TableDefinition::new("tuks");
const PACKAGES: Def = TableDefinition::new("packages");
const BUNDLES: Def = TableDefinition::new("bundles");
const IMPORTS: Def = TableDefinition::new("imports");
const DOCS: Def = TableDefinition::new("docs");
const LATEST: Def = TableDefinition::new("latest");
const HASHES: Def = TableDefinition::new("hashes");
const CONTENTS: Def = TableDefinition::new("contents");
const STAFF: Def = TableDefinition::new("staff");
const ALL: [Def; 9] = [
    TUKS, PACKAGES, BUNDLES, IMPORTS, DOCS, LATEST, HASHES, CONTENTS, STAFF,
];

/// A UPT staff account for the report pages of `tuk upt serve`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StaffAccount {
    /// argon2id PHC string (argon2's default parameters, as for TUK staff).
    pub(crate) phc: String,
    pub(crate) created: String,
}

/// A store key of three parts joined by U+001F (a byte no id or fingerprint contains).
fn record_key(a: &str, b: &str, c: &str) -> String {
    format!("{a}\u{1f}{b}\u{1f}{c}")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ImportRecord {
    pub(crate) header: BundleHeader,
    pub(crate) blake3: String,
    pub(crate) received: String,
    /// `upload from ADDR` or `file NAME`.
    pub(crate) via: String,
    pub(crate) receipt: SignedReceipt,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Latest {
    pub(crate) bundle: String,
    pub(crate) events: u64,
    pub(crate) head: String,
}

/// Why an upload or import was refused: an HTTP status, a stable code, and a sentence.
#[derive(Debug)]
pub struct ImportRefusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for ImportRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for ImportRefusal {}

fn refuse(status: u16, code: &'static str, e: impl std::fmt::Display) -> ImportRefusal {
    ImportRefusal {
        status,
        code,
        message: e.to_string(),
    }
}

fn chain_text(e: &anyhow::Error) -> String {
    crate::error_chain(e)
}

/// What an import did.
#[derive(Debug)]
pub struct ImportedBundle {
    pub(crate) receipt: SignedReceipt,
    pub(crate) header: BundleHeader,
    pub blake3: String,
    pub already: bool,
    /// Sessions for which this bundle replaced an older one.
    pub superseded: Vec<String>,
}

/// An opened UPT data folder.
pub struct Upt {
    pub(crate) dir: PathBuf,
    db: Db,
    pub(crate) key: SecretKey,
    import_lock: Mutex<()>,
}

impl Upt {
    /// Creates a UPT data folder with a copy of the UPT's key.
    pub(crate) fn init(dir: &Path, key_file: &Path) -> Result<()> {
        let key = SecretKey::read(key_file)?;
        if dir.join(DB_FILE).exists() {
            bail!("{} is already a UPT data folder", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let kp = dir.join(KEY_FILE);
        if !kp.exists() {
            crate::keys::write_new_file(&kp, key.to_text().as_bytes(), 0o600)?;
        }
        let u = Upt::open(dir)?;
        drop(u);
        Ok(())
    }

    pub fn open(dir: &Path) -> Result<Upt> {
        let kp = dir.join(KEY_FILE);
        if !kp.exists() {
            bail!(
                "{} is not a UPT data folder (no {KEY_FILE}); create it with `tuk upt init --data {} --key UPT.key`",
                dir.display(),
                dir.display()
            );
        }
        let key = SecretKey::read(&kp)?;
        let path = dir.join(DB_FILE);
        let db = Db::open(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow!(
                "{} is in use by another tuk (is `tuk upt serve` running on this folder?): stop it, or upload to it instead",
                path.display()
            ),
            e => anyhow!("cannot open {}: {e}", path.display()),
        })?;
        db.write(|txn| {
            for t in ALL {
                txn.open_table(t)?;
            }
            Ok(())
        })?;
        Ok(Upt {
            dir: dir.to_path_buf(),
            db,
            key,
            import_lock: Mutex::new(()),
        })
    }

    fn get(&self, t: Def, k: &str) -> Result<Option<Vec<u8>>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(t)?;
        Ok(t.get(k)?.map(|v| v.value().to_vec()))
    }

    fn scan(&self, t: Def) -> Result<Vec<(String, Vec<u8>)>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(t)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn put_all(&self, puts: Vec<(Def, String, Vec<u8>)>) -> Result<()> {
        self.db
            .write(|txn| {
                for (t, k, v) in &puts {
                    txn.open_table(*t)?.insert(k.as_str(), v.as_slice())?;
                }
                Ok(())
            })
            .context("the UPT store could not commit (is the disk full?)")
    }

    pub(crate) fn tuks(&self) -> Result<TrustSet> {
        let keys = self
            .scan(TUKS)?
            .into_iter()
            .map(|(_, v)| PublicKey::parse(&String::from_utf8_lossy(&v)))
            .collect::<Result<Vec<_>>>()?;
        Ok(TrustSet::new(keys))
    }

    /// Trusts bundles signed by this TUK key. Returns false if it was already trusted.
    pub(crate) fn trust(&self, tuk: &PublicKey) -> Result<bool> {
        let id = tuk.signer_id();
        if self.get(TUKS, &id)?.is_some() {
            return Ok(false);
        }
        self.put_all(vec![(TUKS, id, tuk.to_line().into_bytes())])?;
        Ok(true)
    }

    /// Registers a package this UPT signed, so bundles for it are accepted.
    pub(crate) fn add_package(&self, bytes: &[u8]) -> Result<(package::Header, bool)> {
        let me = TrustSet::new(vec![self.key.public()]);
        let pkg = package::verify(bytes, &me).map_err(|e| {
            anyhow!(
                "{}; only packages signed by this UPT's key ({}) can be registered",
                chain_text(&e),
                self.key.public().fingerprint()
            )
        })?;
        let hash = pkg.file_hash().to_string();
        if self.get(PACKAGES, &hash)?.is_some() {
            return Ok((pkg.header().clone(), false));
        }
        self.put_all(vec![(PACKAGES, hash, serde_json::to_vec(pkg.header())?)])?;
        Ok((pkg.header().clone(), true))
    }

    /// Creates a staff account, or with `replace` sets a new password for an existing one.
    /// Returns false if the account existed (and `replace` was not given: nothing changed).
    pub(crate) fn add_staff(&self, name: &str, password: &str, replace: bool) -> Result<bool> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            bail!("a user name is 1 to 64 letters, digits, '.', '-' or '_' (got {name:?})");
        }
        if password.chars().count() < web::MIN_PASSWORD_CHARS {
            bail!(
                "the password must have at least {} characters",
                web::MIN_PASSWORD_CHARS
            );
        }
        let exists = self.get(STAFF, name)?.is_some();
        if exists && !replace {
            return Ok(false);
        }
        let account = StaffAccount {
            phc: crate::exam::secrets::hash_password(
                password,
                crate::exam::secrets::staff_params(),
            )?,
            created: rfc3339(now_ms()),
        };
        self.put_all(vec![(
            STAFF,
            name.to_string(),
            serde_json::to_vec(&account)?,
        )])?;
        Ok(!exists)
    }

    pub(crate) fn staff(&self, name: &str) -> Result<Option<StaffAccount>> {
        match self.get(STAFF, name)? {
            Some(v) => Ok(Some(
                serde_json::from_slice(&v).context("damaged staff account")?,
            )),
            None => Ok(None),
        }
    }

    pub(crate) fn staff_names(&self) -> Result<Vec<String>> {
        Ok(self.scan(STAFF)?.into_iter().map(|(k, _)| k).collect())
    }

    pub(crate) fn import_record(&self, blake3: &str) -> Result<Option<ImportRecord>> {
        match self.get(IMPORTS, blake3)? {
            Some(v) => Ok(Some(
                serde_json::from_slice(&v).context("damaged import record")?,
            )),
            None => Ok(None),
        }
    }

    /// Checks and stores a bundle; answers with the signed receipt. The same file again is
    /// accepted once (`already`); an older bundle of a session than the one held
    /// (`replayed`) or one whose log contradicts it (`conflict`) is refused.
    pub fn import(
        &self,
        bytes: &[u8],
        via: &str,
    ) -> std::result::Result<ImportedBundle, ImportRefusal> {
        let _one_at_a_time = self.import_lock.lock().unwrap_or_else(|p| p.into_inner());
        let store_err = |e: anyhow::Error| refuse(500, "store_failed", chain_text(&e));
        if bytes.len() as u64 > seal::MAX_BUNDLE_BYTES {
            return Err(refuse(
                413,
                "too_large",
                format!(
                    "the bundle is larger than {} MiB",
                    seal::MAX_BUNDLE_BYTES >> 20
                ),
            ));
        }
        let blake3 = blake3::hash(bytes).to_hex().to_string();
        if let Some(rec) = self.import_record(&blake3).map_err(store_err)? {
            return Ok(ImportedBundle {
                receipt: rec.receipt,
                header: rec.header,
                blake3,
                already: true,
                superseded: Vec::new(),
            });
        }
        let invalid = |e: anyhow::Error| refuse(422, "bundle_invalid", chain_text(&e));
        let claimed = seal::peek_header(bytes).map_err(invalid)?;
        let tuks = self.tuks().map_err(store_err)?;
        if tuks.find(&claimed.signer).is_none() {
            return Err(refuse(
                403,
                "unknown_tuk",
                format!(
                    "the bundle is signed by TUK key {:?} which this UPT does not know; if the TUK is genuine, add its public key with `tuk upt trust TUK.pub --data DIR`",
                    claimed.tuk
                ),
            ));
        }
        let verified = seal::verify(bytes, &tuks).map_err(invalid)?;
        let h = verified.header().clone();
        let pkg: package::Header = match self.get(PACKAGES, &h.package_blake3).map_err(store_err)? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| store_err(e.into()))?,
            None => {
                return Err(refuse(
                    403,
                    "unknown_package",
                    format!(
                        "the bundle is for package {} (blake3 {}) which is not registered at this UPT; register the package file with `tuk upt package add FILE.tukpkg --data DIR`",
                        h.package_id, h.package_blake3
                    ),
                ));
            }
        };
        let opened = verified.open(&self.key, &pkg).map_err(invalid)?;
        let tuk_fp = verified.signer().fingerprint();

        let mut puts = Vec::new();
        let mut superseded = Vec::new();
        for (s, ch) in h.sessions.iter().zip(&h.chains) {
            let new_hashes = opened.event_hashes.get(s).cloned().unwrap_or_default();
            let lkey = record_key(&tuk_fp, &h.package_id, s);
            if let Some(v) = self.get(LATEST, &lkey).map_err(store_err)? {
                let old: Latest = serde_json::from_slice(&v).map_err(|e| store_err(e.into()))?;
                let n_old = old.events as usize;
                let hex = |b: &[u8; 32]| blake3::Hash::from_bytes(*b).to_hex().to_string();
                let conflict = || {
                    refuse(
                        409,
                        "conflict",
                        format!(
                            "the event log of session {s} in this bundle contradicts the one received earlier (bundle {}): one of them was changed; nothing was imported",
                            old.bundle
                        ),
                    )
                };
                if new_hashes.len() >= n_old {
                    let extends = n_old == 0 || hex(&new_hashes[n_old - 1]) == old.head;
                    if !extends {
                        return Err(conflict());
                    }
                    superseded.push(s.clone());
                } else {
                    let old_hashes = self
                        .get(HASHES, &record_key(&old.bundle, s, ""))
                        .map_err(store_err)?
                        .unwrap_or_default();
                    let at = new_hashes.len();
                    let prefix = at == 0
                        || old_hashes
                            .get((at - 1) * 32..at * 32)
                            .is_some_and(|b| Some(b) == new_hashes.last().map(|x| &x[..]));
                    if prefix {
                        return Err(refuse(
                            409,
                            "replayed",
                            format!(
                                "this bundle is older than the one already received for session {s} ({} events, bundle {}): it was not imported",
                                n_old, old.bundle
                            ),
                        ));
                    }
                    return Err(conflict());
                }
            }
            let latest = Latest {
                bundle: blake3.clone(),
                events: ch.events,
                head: ch.head.clone(),
            };
            puts.push((
                LATEST,
                lkey,
                serde_json::to_vec(&latest).map_err(|e| store_err(e.into()))?,
            ));
            puts.push((HASHES, record_key(&blake3, s, ""), new_hashes.concat()));
        }
        let receipt = Receipt {
            format: 1,
            bundle_id: h.bundle_id.clone(),
            bundle_blake3: blake3.clone(),
            package_id: h.package_id.clone(),
            package_blake3: h.package_blake3.clone(),
            sessions: h.sessions.clone(),
            chains: h.chains.clone(),
            participants: h.participants,
            tuk: h.tuk.clone(),
            tuk_signer: h.signer.clone(),
            upt: self.key.name.clone(),
            upt_signer: self.key.public().signer_id(),
            received: rfc3339(now_ms()),
        };
        let signed = receipt.sign(&self.key).map_err(store_err)?;
        let rec = ImportRecord {
            header: h.clone(),
            blake3: blake3.clone(),
            received: receipt.received.clone(),
            via: via.to_string(),
            receipt: signed.clone(),
        };
        for (what, v) in [
            ("manifest", serde_json::to_vec(&opened.manifest)),
            ("items", serde_json::to_vec(&opened.items)),
        ] {
            puts.push((
                CONTENTS,
                record_key(&h.package_blake3, what, ""),
                v.map_err(|e| store_err(e.into()))?,
            ));
        }
        puts.push((BUNDLES, blake3.clone(), bytes.to_vec()));
        puts.push((DOCS, blake3.clone(), opened.bundle_json));
        puts.push((
            IMPORTS,
            blake3.clone(),
            serde_json::to_vec(&rec).map_err(|e| store_err(e.into()))?,
        ));
        self.put_all(puts).map_err(store_err)?;
        Ok(ImportedBundle {
            receipt: signed,
            header: h,
            blake3,
            already: false,
            superseded,
        })
    }

    /// The newest bundle of every (TUK, package, session), parsed: what reports are made of.
    /// Each bundle's participants are kept only for the sessions it is the newest of.
    pub fn current(&self) -> Result<Vec<Current>> {
        let mut by_bundle: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (k, v) in self.scan(LATEST)? {
            let l: Latest = serde_json::from_slice(&v).context("damaged latest record")?;
            let session = k.rsplit('\u{1f}').next().unwrap_or("").to_string();
            by_bundle.entry(l.bundle).or_default().push(session);
        }
        let mut out = Vec::new();
        for (b, sessions) in by_bundle {
            let raw = self
                .get(DOCS, &b)?
                .ok_or_else(|| anyhow!("bundle {b} is missing from the store"))?;
            let mut doc: BundleDoc =
                serde_json::from_slice(&raw).context("damaged bundle.json in the store")?;
            doc.participants
                .retain(|p| sessions.contains(&p.roster.session));
            doc.sessions.retain(|s| sessions.contains(&s.id));
            let rec = self
                .import_record(&b)?
                .ok_or_else(|| anyhow!("bundle {b} has no import record"))?;
            let content = |what: &str| -> Result<Vec<u8>> {
                self.get(CONTENTS, &record_key(&rec.header.package_blake3, what, ""))?
                    .ok_or_else(|| anyhow!("the package contents of bundle {b} are missing"))
            };
            let manifest =
                serde_json::from_slice(&content("manifest")?).context("damaged manifest")?;
            let items = serde_json::from_slice(&content("items")?).context("damaged items")?;
            out.push(Current {
                blake3: b,
                doc,
                manifest,
                items,
            });
        }
        out.sort_by(|a, b| {
            (&a.doc.package.id, &a.doc.tuk.name).cmp(&(&b.doc.package.id, &b.doc.tuk.name))
        });
        Ok(out)
    }
}

/// One bundle's results as the reports use them.
pub struct Current {
    pub blake3: String,
    pub doc: BundleDoc,
    pub(crate) manifest: crate::package::model::Manifest,
    pub(crate) items: Vec<crate::package::model::Item>,
}

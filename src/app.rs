//! A TUK data folder brought to life: the store, the TUK's key, the trusted UPT keys, the
//! in-memory exam state and its writer thread. Both `tuk serve` and the offline commands
//! (`init`, `trust`, `package import`) go through [`App`], so there is one code path for
//! every change.
//!
//! Data folder layout: `tuk.redb` (the store), `tuk.key` / `tuk.pub` (this TUK's keys).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::clock::now_ms;
use crate::exam::{
    self, Credential, Exam, OpenBank, PackageInfo, Refusal, Role, Session, SessionStatus, User,
    events, secrets,
};
use crate::keys::{PublicKey, SecretKey, TrustSet};
use crate::package::{self, Bank};
use crate::store::{Put, Store, Table, Writer};

/// Default token rotation (issue: 15 minutes).
pub const TOKEN_ROTATE_S: u64 = 15 * 60;

pub struct App {
    pub dir: PathBuf,
    pub store: Arc<Store>,
    pub state: Arc<RwLock<Exam>>,
    pub writer: Writer<Exam>,
    writer_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    pub key: Arc<SecretKey>,
    /// Bounds concurrent argon2 work to the number of cores, so a login storm queues
    /// instead of starving the server.
    pub hash_slots: Arc<tokio::sync::Semaphore>,
}

/// Summary of an import, for the CLI and the admin page.
#[derive(Debug, Clone)]
pub struct Imported {
    pub package_id: String,
    pub version: u32,
    pub upt: String,
    pub sessions: usize,
    pub participants: usize,
    pub new_credentials: usize,
    pub already: bool,
}

impl App {
    /// Creates a data folder: the store, the TUK key (generated unless given), and the
    /// first admin account.
    pub fn init(dir: &Path, key: Option<SecretKey>, admin_password: &str) -> Result<()> {
        if dir.join(crate::store::DB_FILE).exists() {
            bail!(
                "{} is already initialised; use `tuk serve --data {}`",
                dir.display(),
                dir.display()
            );
        }
        if admin_password.chars().count() < 8 {
            bail!("the admin password must have at least 8 characters");
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        }
        let key_path = dir.join("tuk.key");
        let secret = match key {
            Some(k) => k,
            None => SecretKey::generate("tuk")?,
        };
        if !key_path.exists() {
            crate::keys::write_new_file(&key_path, secret.to_text().as_bytes(), 0o600)?;
            let public = secret.public();
            let text = format!(
                "# tuk public key \"{}\", fingerprint {}. Send it to the UPT.\n{}\n",
                public.name,
                public.fingerprint(),
                public.to_line()
            );
            crate::keys::write_new_file(&dir.join("tuk.pub"), text.as_bytes(), 0o644)?;
        }
        let app = App::open(dir)?;
        app.add_user_blocking("admin", Role::Admin, admin_password, "system")?;
        app.shutdown();
        Ok(())
    }

    /// Opens an initialised data folder.
    pub fn open(dir: &Path) -> Result<App> {
        let key_path = dir.join("tuk.key");
        if !key_path.exists() {
            bail!(
                "{} is not a tuk data folder (no tuk.key); create it with `tuk init --data {}`",
                dir.display(),
                dir.display()
            );
        }
        let key = Arc::new(SecretKey::read(&key_path)?);
        let store = Arc::new(Store::open(dir)?);
        let mut exam = Exam::load(&store, key.clone())?;
        let trust = trust_set(&store)?;
        exam.unlock_running_sessions(&store, &trust)
            .context("cannot reopen the item banks of open sessions")?;
        let state = Arc::new(RwLock::new(exam));
        let (writer, thread) = crate::store::start_writer(store.clone(), state.clone())?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(App {
            dir: dir.to_path_buf(),
            store,
            state,
            writer,
            writer_thread: std::sync::Mutex::new(Some(thread)),
            key,
            hash_slots: Arc::new(tokio::sync::Semaphore::new(cores)),
        })
    }

    /// Commits what is queued, stops the writer and waits for it: after this the store
    /// file is closed cleanly once the `App` is dropped.
    pub fn shutdown(&self) {
        self.writer.stop();
        if let Some(h) = self.writer_thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = h.join();
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Exam> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn trust(&self) -> Result<TrustSet> {
        trust_set(&self.store)
    }

    pub fn trust_add(&self, key: &PublicKey) -> Result<bool> {
        let id = key.signer_id();
        if self.store.get(Table::Trust, &id)?.is_some() {
            return Ok(false);
        }
        let line = key.to_line();
        let data = serde_json::json!({"name": key.name, "fingerprint": key.fingerprint()});
        self.writer.run_blocking(move |ex: &mut Exam| {
            let ev = ex.log(events::TUK_CHAIN, now_ms(), "trust_add", "system", data);
            (
                vec![Put::bytes(Table::Trust, id, line.into_bytes()), ev],
                (),
            )
        })?;
        Ok(true)
    }

    /// Verifies, opens and stores a package; generates passwords for new participants.
    pub fn import(&self, bytes: &[u8], actor: &str) -> Result<Imported> {
        let trust = self.trust()?;
        if trust.keys().is_empty() {
            bail!(
                "this TUK trusts no UPT key yet; add one with `tuk trust add UPT.pub --data DIR`"
            );
        }
        let pkg = package::verify(bytes, &trust)?;
        let contents = pkg.open(&self.key)?;
        let header = pkg.header().clone();
        let info = PackageInfo {
            header: header.clone(),
            file_hash: pkg.file_hash().to_string(),
            manifest: contents.manifest.clone(),
            roster: contents.roster.clone(),
            questionnaire: contents.questionnaire.clone(),
        };
        let mut summary = Imported {
            package_id: header.package_id.clone(),
            version: header.version,
            upt: header.upt.clone(),
            sessions: info.manifest.sessions.len(),
            participants: info.roster.len(),
            new_credentials: 0,
            already: false,
        };
        {
            let ex = self.read();
            if let Some(old) = ex.catalog.get(&header.package_id) {
                if old.file_hash == info.file_hash {
                    summary.already = true;
                    return Ok(summary);
                }
                let started = ex.attempts.values().any(|a| a.package == header.package_id)
                    || ex.sessions.values().any(|s| {
                        s.package == header.package_id && s.status != SessionStatus::Scheduled
                    });
                if started {
                    bail!(
                        "package {} is already in use here (a session was opened); a changed package cannot replace it",
                        header.package_id
                    );
                }
                if old.header.version >= header.version {
                    bail!(
                        "package {} version {} is already imported; this file is version {} (not newer)",
                        header.package_id,
                        old.header.version,
                        header.version
                    );
                }
            }
        }
        if let Bank::Open(_) = contents.bank {
            // Validated by `open`; nothing more to do before the session opens.
        }
        // New participant numbers get a password; known ones keep theirs (one card each).
        let mut numbers: Vec<String> = {
            let ex = self.read();
            info.roster
                .iter()
                .map(|p| p.participant.clone())
                .filter(|n| !ex.credentials.contains_key(n))
                .collect()
        };
        numbers.sort();
        numbers.dedup();
        let creds = make_credentials(&self.key, &numbers)?;
        summary.new_credentials = creds.len();
        let file_hash = info.file_hash.clone();
        let bytes = bytes.to_vec();
        let actor = actor.to_string();
        let s2 = summary.clone();
        self.writer.run_blocking(move |ex: &mut Exam| {
            let now = now_ms();
            let mut puts = vec![
                Put::bytes(Table::Packages, file_hash.clone(), bytes),
                Put::json(Table::Catalog, info.header.package_id.clone(), &info),
            ];
            for (n, c) in creds {
                puts.push(Put::json(Table::Credentials, n.clone(), &c));
                ex.credentials.insert(n, c);
            }
            for s in &info.manifest.sessions {
                let key = exam::session_key(&info.header.package_id, &s.id);
                if ex.sessions.contains_key(&key) {
                    continue;
                }
                let session = Session {
                    key: key.clone(),
                    package: info.header.package_id.clone(),
                    id: s.id.clone(),
                    status: SessionStatus::Scheduled,
                    token: None,
                    release_code: None,
                    proctors: Vec::new(),
                    attendance: Default::default(),
                    minutes: None,
                };
                puts.push(Put::json(Table::Sessions, key.clone(), &session));
                ex.sessions.insert(key, session);
            }
            let data = serde_json::json!({
                "package": info.header.package_id, "version": info.header.version,
                "file_blake3": file_hash, "upt": info.header.upt,
                "participants": s2.participants, "sessions": s2.sessions,
            });
            puts.push(ex.log(events::TUK_CHAIN, now, "package_import", &actor, data));
            ex.catalog.insert(info.header.package_id.clone(), info);
            (puts, ())
        })?;
        Ok(summary)
    }

    /// Opens a session: unlocks the item bank (with the release code if the package has
    /// one), then makes the session open with a fresh token.
    pub fn open_session(
        &self,
        skey: &str,
        release_code: Option<&str>,
        rotate_s: u64,
        actor: &str,
    ) -> Result<std::result::Result<(), Refusal>> {
        let (info, needs_code) = {
            let ex = self.read();
            let s = ex
                .sessions
                .get(skey)
                .ok_or_else(|| anyhow!("there is no session {skey}"))?;
            let info = ex.package(&s.package)?.clone();
            let needs = info.header.release_code;
            (info, needs)
        };
        if needs_code && release_code.is_none() {
            bail!("this package needs the release code the UPT announces on the exam day");
        }
        let code = if needs_code { release_code } else { None };
        let bank = exam::unlock_bank(&self.store, &self.trust()?, &self.key, &info, code)?;
        let sealed = code.map(|c| exam::seal(&self.key, c.trim())).transpose()?;
        let pkg = info.header.package_id.clone();
        let skey = skey.to_string();
        let actor = actor.to_string();
        let bank = Arc::new(OpenBank::new(bank));
        self.writer.run_blocking(move |ex: &mut Exam| {
            ex.banks.entry(pkg).or_insert(bank);
            match ex.open_session(&skey, sealed, rotate_s, &actor, now_ms()) {
                Ok(p) => (p, Ok(())),
                Err(r) => (Vec::new(), Err(r)),
            }
        })
    }

    pub fn add_user_blocking(
        &self,
        name: &str,
        role: Role,
        password: &str,
        actor: &str,
    ) -> Result<()> {
        crate::package::model::check_id("user name", name)?;
        let phc = secrets::hash_password(password, secrets::staff_params())?;
        let user = User {
            name: name.to_string(),
            role,
            phc,
        };
        let actor = actor.to_string();
        self.writer.run_blocking(move |ex: &mut Exam| {
            let ev = ex.log(
                events::TUK_CHAIN,
                now_ms(),
                "user_add",
                &actor,
                serde_json::json!({"user": user.name, "role": user.role}),
            );
            let put = Put::json(Table::Users, user.name.clone(), &user);
            ex.users.insert(user.name.clone(), user);
            (vec![put, ev], ())
        })
    }

    /// Passwords of every participant of a package, for login cards (decrypted with the
    /// TUK key; never stored in the clear).
    pub fn passwords(&self, package_id: &str) -> Result<Vec<(String, String)>> {
        let ex = self.read();
        let info = ex.package(package_id)?;
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for p in &info.roster {
            if !seen.insert(&p.participant) {
                continue;
            }
            let c = ex
                .credentials
                .get(&p.participant)
                .ok_or_else(|| anyhow!("participant {} has no credential", p.participant))?;
            out.push((p.participant.clone(), exam::unseal(&self.key, &c.sealed)?));
        }
        Ok(out)
    }

    /// Starts the once-a-second background work: auto-submit at the deadline and token
    /// rotation. Runs on its own thread so it keeps time even if the runtime is busy.
    pub fn start_ticker(&self) {
        let writer = self.writer.clone();
        let _ = std::thread::Builder::new()
            .name("tuk-ticker".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(500));
                    let r = writer.run_blocking(|ex: &mut Exam| {
                        let now = now_ms();
                        let mut puts = ex.auto_submit_due(now);
                        if let Ok(p) = ex.rotate_tokens(now) {
                            puts.extend(p);
                        }
                        (puts, ())
                    });
                    if r.is_err() {
                        // The writer stopped: the process is shutting down.
                        return;
                    }
                }
            });
    }

    /// Credits the time since the last durable heartbeat to running attempts. Call once
    /// at start-up, before serving.
    pub fn credit_downtime(&self) -> Result<i64> {
        let last = Exam::last_alive(&self.store)?;
        self.writer.run_blocking(move |ex: &mut Exam| {
            let now = now_ms();
            let puts = ex.credit_downtime(last, now);
            // From now on every commit records that the server is alive.
            ex.serving = true;
            let gap = if puts.is_empty() { 0 } else { now - last };
            (puts, gap)
        })
    }
}

fn trust_set(store: &Store) -> Result<TrustSet> {
    let keys = store
        .scan(Table::Trust)?
        .into_iter()
        .map(|(_, v)| PublicKey::parse(&String::from_utf8_lossy(&v)))
        .collect::<Result<Vec<_>>>()?;
    Ok(TrustSet::new(keys))
}

/// Generates and hashes passwords, on every core (argon2 is the slow part of an import).
fn make_credentials(key: &SecretKey, numbers: &[String]) -> Result<Vec<(String, Credential)>> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = numbers.len().div_ceil(cores).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = numbers
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<(String, Credential)>> {
                    part.iter()
                        .map(|n| {
                            let pw = secrets::new_password()?;
                            Ok((
                                n.clone(),
                                Credential {
                                    phc: secrets::hash_password(
                                        &pw,
                                        secrets::participant_params(),
                                    )?,
                                    sealed: exam::seal(key, &pw)?,
                                },
                            ))
                        })
                        .collect()
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.extend(h.join().map_err(|_| anyhow!("password worker failed"))??);
        }
        Ok(out)
    })
}

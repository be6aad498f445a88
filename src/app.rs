//! A TUK data folder brought to life: the store, the TUK's key, the trusted UPT keys, the
//! in-memory exam state and its writer thread. Both `tuk serve` and the offline commands
//! (`init`, `trust`, `package import`) go through [`App`], so there is one code path for
//! every change.
//!
//! Data folder layout: `tuk.redb` (the store), `tuk.key` / `tuk.pub` (this TUK's keys).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::clock::now_ms;
use crate::exam::events::{Actor, Event};
use crate::exam::{
    self, Credential, Exam, OpenBank, PackageInfo, Role, Session, SessionStatus, User, events,
    secrets,
};
use crate::exam::{ParticipantNo, Refused, SessionKey};
use crate::keys::{PublicKey, SecretKey, TrustSet};
use crate::package::{self, Bank};
use crate::store::{Put, Store, Table, Writer};

/// Default token rotation (issue: 15 minutes).
pub const TOKEN_ROTATE_S: u64 = 15 * 60;

pub struct App {
    pub(crate) dir: PathBuf,
    pub store: Arc<Store>,
    pub(crate) state: Arc<RwLock<Exam>>,
    pub writer: Writer<Exam>,
    writer_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    pub(crate) key: Arc<SecretKey>,
    /// Bounds concurrent argon2 work to the number of cores, so a login storm queues
    /// instead of starving the server.
    pub(crate) hash_slots: Arc<tokio::sync::Semaphore>,
    /// The `[letterhead]` table of the configuration file `tuk serve` read (`--config
    /// FILE`, `TUK_CONFIG` or `/etc/tuk/tuk.toml`) and that file's path: set once at start;
    /// `DATA/letterhead.toml` (the admin page) wins over it (see `console::admin`).
    pub(crate) config_letterhead: std::sync::OnceLock<(PathBuf, crate::export::Letterhead)>,
}

/// Summary of an import, for the CLI and the admin page.
#[derive(Debug, Clone)]
pub struct Imported {
    pub package_id: String,
    pub(crate) version: u32,
    pub(crate) upt: String,
    pub(crate) sessions: usize,
    pub(crate) participants: usize,
    pub(crate) new_credentials: usize,
    pub(crate) already: bool,
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
        Store::create(dir)?;
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
        if !dir.join(crate::store::DB_FILE).is_file() {
            bail!(
                "{} has the TUK key (tuk.key) but no store ({}): the exam data is missing, and serving would show an empty exam. Restore the last backup with `tuk restore BACKUP --data {}` (see README, \"Backup and restore\"), or, for a new server, move tuk.key away and run `tuk init --data {}`",
                dir.display(),
                crate::store::DB_FILE,
                dir.display(),
                dir.display()
            );
        }
        crate::fsutil::remove_stale_partials(dir);
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
            config_letterhead: std::sync::OnceLock::new(),
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

    pub(crate) fn trust(&self) -> Result<TrustSet> {
        trust_set(&self.store)
    }

    pub fn trust_add(&self, key: &PublicKey) -> Result<bool> {
        let id = key.signer_id();
        if self.store.get(Table::Trust, &id)?.is_some() {
            return Ok(false);
        }
        let line = key.to_line();
        let ev = Event::TrustAdd {
            name: key.name.clone(),
            fingerprint: key.fingerprint(),
        };
        self.writer.run_blocking(move |ex: &mut Exam| {
            let ev = ex.log(events::TUK_CHAIN, now_ms(), Actor::System, ev);
            (
                vec![Put::bytes(Table::Trust, id, line.into_bytes()), ev],
                (),
            )
        })?;
        Ok(true)
    }

    /// Verifies, opens and stores a package; generates passwords for new participants.
    pub fn import(&self, bytes: &[u8], actor: impl Into<Actor>) -> Result<Imported> {
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
        self.check_package_owner(&header, &trust)?;
        let owner_key = package_owner_key(&header.package_id);
        let owner_known = self.store.get(Table::Meta, &owner_key)?.is_some();
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
        let mut numbers: Vec<ParticipantNo> = {
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
        let actor: Actor = actor.into();
        let s2 = summary.clone();
        self.writer.run_blocking(move |ex: &mut Exam| {
            let now = now_ms();
            let mut puts = vec![
                Put::bytes(Table::Packages, file_hash.clone(), bytes),
                Put::json(Table::Catalog, info.header.package_id.clone(), &info),
            ];
            if !owner_known {
                puts.push(Put::bytes(
                    Table::Meta,
                    owner_key,
                    info.header.signer.clone().into_bytes(),
                ));
            }
            for (n, c) in creds {
                puts.push(Put::json(Table::Credentials, n.clone(), &c));
                ex.credentials.insert(n, c);
            }
            for s in &info.manifest.sessions {
                let key = SessionKey::of(&info.header.package_id, &s.id);
                if ex.sessions.contains_key(&key) {
                    continue;
                }
                let session = Session::scheduled(key.clone(), &info.header.package_id, &s.id);
                puts.push(Put::json(Table::Sessions, key.clone(), &session));
                ex.sessions.insert(key, session);
            }
            let ev = Event::PackageImport {
                package: info.header.package_id.clone(),
                version: info.header.version,
                file_blake3: file_hash,
                upt: info.header.upt.clone(),
                participants: s2.participants,
                sessions: s2.sessions,
            };
            puts.push(ex.log(events::TUK_CHAIN, now, actor, ev));
            ex.catalog.insert(info.header.package_id.clone(), info);
            (puts, ())
        })?;
        Ok(summary)
    }

    /// The UPT key (signer id) that owns a package id on this TUK: the one that signed the
    /// first package with that id imported here (issue 11). For a package imported before
    /// owners were recorded, the signer of the package in the catalog.
    pub(crate) fn package_owner(&self, package_id: &str) -> Result<Option<String>> {
        if let Some(v) = self
            .store
            .get(Table::Meta, &package_owner_key(package_id))?
        {
            return Ok(Some(String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(self
            .read()
            .catalog
            .get(package_id)
            .map(|p| p.header.signer.clone()))
    }

    /// Refuses a package whose id belongs to another UPT key, whatever its version: a second
    /// trusted UPT cannot replace another UPT's package.
    pub(crate) fn check_package_owner(
        &self,
        header: &package::Header,
        trust: &TrustSet,
    ) -> Result<()> {
        let Some(owner) = self.package_owner(&header.package_id)? else {
            return Ok(());
        };
        if owner == header.signer {
            return Ok(());
        }
        let name = |id: &str| match trust.find(id) {
            Some(k) => format!("{} ({})", k.name, k.fingerprint()),
            None => crate::keys::parse_verifying(id)
                .map(|k| format!("fingerprint {}", crate::keys::fingerprint(&k)))
                .unwrap_or_else(|_| "an unreadable key".into()),
        };
        bail!(
            "package id {} belongs to UPT key {}, which signed it first on this TUK; this file (version {}) is signed by another UPT key, {}, so it was refused whatever its version. Ask the UPT that owns {} for the package, or ask the other UPT to give its package an id of its own",
            header.package_id,
            name(&owner),
            header.version,
            name(&header.signer),
            header.package_id
        )
    }

    /// Opens a session: unlocks the item bank (with the release code if the package has
    /// one), then makes the session open with a fresh token.
    pub fn open_session(
        &self,
        skey: &str,
        release_code: Option<&str>,
        rotate_s: u64,
        actor: impl Into<Actor>,
    ) -> Result<std::result::Result<(), Refused>> {
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
        let skey = SessionKey::new(skey);
        let actor: Actor = actor.into();
        let bank = Arc::new(OpenBank::new(bank));
        self.writer.run_blocking(move |ex: &mut Exam| {
            ex.banks.entry(pkg).or_insert(bank);
            match ex.open_session(&skey, sealed, rotate_s, actor, now_ms()) {
                Ok(p) => (p, Ok(())),
                Err(r) => (Vec::new(), Err(r)),
            }
        })
    }

    pub(crate) fn add_user_blocking(
        &self,
        name: &str,
        role: Role,
        password: &str,
        actor: impl Into<Actor>,
    ) -> Result<()> {
        crate::package::model::check_id("user name", name)?;
        let phc = secrets::hash_password(password, secrets::staff_params())?;
        let user = User {
            name: name.to_string(),
            role,
            phc,
            full_name: String::new(),
            nip: String::new(),
        };
        let actor: Actor = actor.into();
        self.writer.run_blocking(move |ex: &mut Exam| {
            let ev = Event::UserAdd {
                user: user.name.clone(),
                role: user.role,
            };
            let ev = ex.log(events::TUK_CHAIN, now_ms(), actor, ev);
            let put = Put::json(Table::Users, user.name.clone(), &user);
            ex.users.insert(user.name.clone(), user);
            (vec![put, ev], ())
        })
    }

    /// Sets a staff account's full name and NIP (printed in the signature blocks of the
    /// minutes and attendance list). Errors if the account does not exist or a value is
    /// longer than 200 characters or holds a line break.
    pub(crate) fn set_user_identity(
        &self,
        name: &str,
        full_name: &str,
        nip: &str,
        actor: &str,
    ) -> Result<()> {
        let (name, full_name, nip) = (
            name.to_string(),
            full_name.trim().to_string(),
            nip.trim().to_string(),
        );
        for (what, v) in [("full name", &full_name), ("NIP", &nip)] {
            if v.chars().count() > 200 || v.contains(['\n', '\r']) {
                bail!("the {what} must be one line of at most 200 characters");
            }
        }
        let actor = actor.to_string();
        self.writer.run_blocking(move |ex: &mut Exam| {
            let Some(u) = ex.users.get_mut(&name) else {
                return (
                    Vec::new(),
                    Err(anyhow::anyhow!("there is no account {name}")),
                );
            };
            u.full_name = full_name;
            u.nip = nip;
            let put = Put::json(Table::Users, u.name.clone(), &*u);
            let ev = Event::UserIdentity {
                user: u.name.clone(),
                full_name: u.full_name.clone(),
                nip: u.nip.clone(),
            };
            let ev = ex.log(events::TUK_CHAIN, now_ms(), actor.as_str(), ev);
            (vec![put, ev], Ok(()))
        })?
    }

    /// Passwords of every participant of a package, for login cards (decrypted with the
    /// TUK key; never stored in the clear).
    pub(crate) fn passwords(&self, package_id: &str) -> Result<Vec<(String, String)>> {
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
            out.push((
                p.participant.to_string(),
                exam::unseal(&self.key, &c.sealed)?,
            ));
        }
        Ok(out)
    }

    /// Starts the once-a-second background work: auto-submit at the deadline and token
    /// rotation. Runs on its own thread so it keeps time even if the runtime is busy.
    pub(crate) fn start_ticker(&self) {
        let writer = self.writer.clone();
        let _ = std::thread::Builder::new()
            .name("tuk-ticker".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(500));
                    let r = writer.run_blocking(tick);
                    match r {
                        Ok(_) => {}
                        Err(e) if e.is::<crate::store::WriterStopped>() => return,
                        Err(e) => {
                            // Not stored (disk full): the writer reloads the unshifted
                            // deadlines, so the exam clock goes back too; the next tick
                            // sees the step again and retries.
                            tracing::warn!("a tick was not stored: {e:#}");
                            crate::clock::undo_rebase(LAST_STEP.swap(0, Ordering::Relaxed));
                        }
                    }
                }
            });
    }

    /// Gets the store ready to serve attempts, once at start-up: checks the clock against
    /// the last durable alive mark ([`Exam::clock_at_start`]), credits the downtime to
    /// running attempts, and from then on records "alive" with every commit.
    ///
    /// When the clock cannot be trusted this refuses (the error says why and what to do),
    /// unless `start_paused`: then every open session is paused instead, with nothing
    /// credited, for the proctor to resume once the time is right. Rules: `docs/time.md`.
    pub(crate) fn begin_serving(&self, start_paused: bool) -> Result<ServingStart> {
        let last = Exam::last_alive(&self.store)?;
        let r = self.writer.run_blocking(move |ex: &mut Exam| {
            let now = now_ms();
            match ex.clock_at_start(last, now) {
                Ok(()) => {
                    let puts = ex.credit_downtime(last, now);
                    ex.serving = true;
                    let gap = if puts.is_empty() { 0 } else { now - last };
                    (puts, Ok(ServingStart::Credited { ms: gap }))
                }
                Err(why) if start_paused => {
                    let puts = ex.pause_all_for_clock(
                        "jam server diragukan saat server dinyalakan; periksa jam lalu lanjutkan",
                        now,
                    );
                    ex.serving = true;
                    let n = puts
                        .iter()
                        .filter(|p| p.table() == crate::store::Table::Sessions)
                        .count();
                    (puts, Ok(ServingStart::Paused { sessions: n, why }))
                }
                Err(why) => (Vec::new(), Err(why)),
            }
        })?;
        r.map_err(|why| {
            anyhow!(
                "not serving: {why}.\nFix: set the correct time (`sudo timedatectl set-time 'YYYY-MM-DD HH:MM:SS'`, see `tuk doctor`) and start again; or start with every open session paused: `tuk serve --start-paused` (the proctor resumes it on the board once the time is right). See docs/time.md"
            )
        })
    }
}

/// How [`App::begin_serving`] started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServingStart {
    /// The clock was plausible; `ms` of downtime was credited to running attempts (0: none).
    Credited { ms: i64 },
    /// The clock was not plausible; these sessions were paused instead (`--start-paused`).
    Paused { sessions: usize, why: String },
}

/// The step the last tick applied to the exam clock (ms; 0 if none), so a tick whose batch
/// was not stored can take it back.
static LAST_STEP: AtomicI64 = AtomicI64::new(0);

/// One tick of the ticker, on the writer thread: a clock step, auto-submit at the
/// deadline, token rotation.
fn tick(ex: &mut Exam) -> (Vec<crate::store::Put>, ()) {
    // A step of the system clock: shift every deadline by it and let the exam clock follow
    // in this one writer batch, so no rule ever sees the new "now" with the old deadlines.
    let mut puts = Vec::new();
    let step = crate::clock::step_ms();
    let applied = if step.abs() > crate::clock::STEP_MIN_MS {
        tracing::warn!(
            step_s = step / 1000,
            "the system clock stepped by {} s; running deadlines were shifted by the same amount, nobody loses time",
            step / 1000
        );
        crate::clock::rebase();
        puts.extend(ex.shift_clock(step, now_ms()));
        step
    } else {
        0
    };
    LAST_STEP.store(applied, Ordering::Relaxed);
    let now = now_ms();
    puts.extend(ex.auto_submit_due(now));
    if let Ok(p) = ex.rotate_tokens(now) {
        puts.extend(p);
    }
    (puts, ())
}

/// Where the owner of a package id is kept (`meta` table): `package_owner␟ID` → signer id.
fn package_owner_key(package_id: &str) -> String {
    crate::store::join_key("package_owner", package_id)
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
fn make_credentials(
    key: &SecretKey,
    numbers: &[ParticipantNo],
) -> Result<Vec<(ParticipantNo, Credential)>> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = numbers.len().div_ceil(cores).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = numbers
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<(ParticipantNo, Credential)>> {
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

#[cfg(test)]
mod tests {
    //! Time rules on a real store (docs/time.md): clock steps, the start-up clock check and
    //! downtime credit, with the system clock simulated through `clock::skew_wall_for_tests`
    //! (never the machine's clock). Each test is milliseconds: no real waiting.
    use super::*;
    use crate::exam::{AttemptKey, AttemptStatus, CookieId};

    const PKG: &str = "demo-kk-a-2026";

    /// A staff account's full name and NIP survive a restart; an account record written
    /// before these fields existed reads with them empty, and an account without them is
    /// written exactly as before.
    #[test]
    fn staff_identity_is_kept_and_old_records_read() {
        let dir = tempfile::tempdir().unwrap();
        App::init(dir.path(), None, "admin-password").unwrap();
        let app = App::open(dir.path()).unwrap();
        app.set_user_identity("admin", " Ir. Teguh Prakoso ", "1970", "staff:admin")
            .unwrap();
        assert!(
            app.set_user_identity("nobody", "x", "", "staff:admin")
                .is_err()
        );
        assert!(
            app.set_user_identity("admin", "two\nlines", "", "staff:admin")
                .is_err()
        );
        app.shutdown();
        drop(app);
        let app = App::open(dir.path()).unwrap();
        let u = app.read().users["admin"].clone();
        assert_eq!(
            (u.full_name.as_str(), u.nip.as_str()),
            ("Ir. Teguh Prakoso", "1970")
        );
        assert_eq!(u.display_name(), "Ir. Teguh Prakoso");
        let old: User =
            serde_json::from_str(r#"{"name":"budi","role":"proctor","phc":"$argon2id$x"}"#)
                .unwrap();
        assert_eq!((old.full_name.as_str(), old.display_name()), ("", "budi"));
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"name":"budi","role":"proctor","phc":"$argon2id$x"}"#
        );
    }

    /// A data folder with the demo package imported, S1 open and `n` attempts started.
    fn lab(n: usize) -> (tempfile::TempDir, App, Vec<ParticipantNo>) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("exam-packages");
        let tuk = SecretKey::read(&root.join("demo-keys/tuk.key")).unwrap();
        let upt = SecretKey::read(&root.join("demo-keys/upt.key")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        App::init(&data, Some(tuk), "admin-password-1").unwrap();
        let app = App::open(&data).unwrap();
        app.trust_add(&upt.public()).unwrap();
        app.import(&fs::read(root.join("demo.tukpkg")).unwrap(), "test")
            .unwrap();
        let skey = SessionKey::of(PKG, "S1");
        app.open_session(&skey, None, 0, "test").unwrap().unwrap();
        let token = app.read().sessions[&skey].token.clone().unwrap().current;
        let numbers: Vec<ParticipantNo> = app.read().catalog[PKG]
            .roster
            .iter()
            .filter(|p| p.session == "S1")
            .take(n)
            .map(|p| p.participant.clone())
            .collect();
        for (i, number) in numbers.iter().enumerate() {
            let (cookie, number, token) = (
                CookieId::new(format!("cookie-{i}")),
                number.clone(),
                token.clone(),
            );
            app.writer
                .run_blocking(move |ex: &mut Exam| {
                    let (mut puts, r) = ex.login(&number, &cookie, None, "10.0.0.9", now_ms());
                    r.unwrap();
                    let (p, r) = ex.start(&cookie, &token, "10.0.0.9", now_ms());
                    r.unwrap();
                    puts.extend(p);
                    (puts, ())
                })
                .unwrap();
        }
        (dir, app, numbers)
    }

    #[test]
    fn a_package_id_belongs_to_the_upt_key_that_signed_it_first() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("exam-packages");
        let tuk = SecretKey::read(&root.join("demo-keys/tuk.key")).unwrap();
        let src = package::source::read(&root.join("demo")).unwrap();
        let other = SecretKey::generate("upt-lain").unwrap();
        let mut newer = package::source::read(&root.join("demo")).unwrap();
        newer.manifest.version += 5;
        let hijack = package::build(&newer, &other, &[tuk.public()], None).unwrap();
        let (_dir, app, _) = lab(0);
        app.trust_add(&other.public()).unwrap();
        let e = format!("{:#}", app.import(&hijack, "test").unwrap_err());
        assert!(
            e.contains("belongs to UPT key upt") && e.contains("upt-lain") && e.contains("refused"),
            "{e}"
        );
        assert_eq!(app.read().catalog[PKG].header.version, src.manifest.version);
        // The owner itself may still bring a newer version before the session opens; an
        // unknown id from the other UPT is its own.
        let mut own = package::source::read(&root.join("demo")).unwrap();
        own.manifest.id = "upt-lain-2026".into();
        let theirs = package::build(&own, &other, &[tuk.public()], None).unwrap();
        app.import(&theirs, "test").unwrap();
        assert_eq!(
            app.package_owner("upt-lain-2026").unwrap(),
            Some(other.public().signer_id())
        );
        app.shutdown();
    }

    /// A session's attempts and answers as every reader sees them (`Exam::attempts_of`),
    /// in a stable order.
    fn attempts_view(ex: &Exam, skey: &SessionKey) -> String {
        let atts = ex.attempts_of(skey).unwrap();
        let mut v: Vec<String> = atts
            .values()
            .map(|a| {
                let answers: std::collections::BTreeMap<_, _> = a.answers.iter().collect();
                format!("{} {answers:?}", serde_json::to_string(a).unwrap())
            })
            .collect();
        v.sort();
        v.join("\n")
    }

    /// The participants' part of a sealed bundle (everything but the seal's own time).
    fn sealed_participants(app: &App, bytes: &[u8]) -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("exam-packages");
        let upt = SecretKey::read(&root.join("demo-keys/upt.key")).unwrap();
        let tuks = TrustSet::new(vec![app.key.public()]);
        let header = app.read().catalog[PKG].header.clone();
        let opened = crate::seal::verify(bytes, &tuks)
            .unwrap()
            .open(&upt, &header)
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&opened.bundle_json).unwrap();
        doc["participants"].to_string()
    }

    /// Issue 12 item 6: once its close is durable, a closed session's attempts leave memory
    /// and are read from the store; what its readers (results, printables, seal) get is the
    /// same as in memory, before and after a restart; start-up leaves them in the store; and
    /// re-opening the session brings them back.
    #[test]
    fn a_closed_session_reads_the_same_from_the_store_before_and_after_a_restart() {
        let (_d, app, numbers) = lab(3);
        let skey = SessionKey::of(PKG, "S1");
        let first = app.read().attempts[&AttemptKey::of(&skey, &numbers[0])].form[..2].to_vec();
        app.writer
            .run_blocking(move |ex: &mut Exam| {
                let mut puts = Vec::new();
                for (i, f) in first.iter().enumerate() {
                    let choice = vec![f.options[0].to_string()];
                    let (p, r) = ex.save(&"cookie-0".into(), &f.item, choice, i == 1, 1, now_ms());
                    r.unwrap();
                    puts.extend(p);
                }
                let (p, r) = ex.finish_by_participant(&"cookie-1".into(), now_ms());
                r.unwrap();
                puts.extend(p);
                (puts, ())
            })
            .unwrap();
        // The view in memory, taken in the same batch as the close (before it is durable).
        let k = skey.clone();
        let in_memory = app
            .writer
            .run_blocking(move |ex: &mut Exam| {
                let close = exam::proctor::ProctorAction::Close { force: true };
                let puts = ex
                    .proctor_action(&k, close, Actor::System, now_ms())
                    .unwrap();
                (puts, attempts_view(ex, &k))
            })
            .unwrap();
        assert_eq!(in_memory.matches("\"status\":\"finished\"").count(), 3);
        {
            let ex = app.read();
            assert!(ex.stored_only.contains(&skey), "evicted once durable");
            assert!(ex.attempts.values().all(|a| a.session != skey));
            assert_eq!(attempts_view(&ex, &skey), in_memory);
        }
        let sealed_before = crate::seal::tuk::seal(&app, &[skey.to_string()], false, "t")
            .unwrap()
            .bytes;
        let data = app.dir.clone();
        app.shutdown();
        drop(app);
        let app = App::open(&data).unwrap();
        {
            let ex = app.read();
            assert!(ex.attempts.is_empty(), "start-up read no closed attempt");
            assert_eq!(attempts_view(&ex, &skey), in_memory);
        }
        // The participant who finished still reads their result after logging in again.
        let n = numbers[1].clone();
        let (login, seen) = app
            .writer
            .run_blocking(move |ex: &mut Exam| {
                let (p, r) = ex.login(&n, &"cookie-again".into(), None, "10.0.0.9", now_ms());
                let seen = ex
                    .attempt_of(&"cookie-again".into())
                    .map(|a| a.participant.clone());
                (p, (r, seen))
            })
            .unwrap();
        assert_eq!(login, Ok(()));
        assert_eq!(seen, Ok(numbers[1].clone()));
        let sealed_after = crate::seal::tuk::seal(&app, &[skey.to_string()], false, "t")
            .unwrap()
            .bytes;
        assert_eq!(
            sealed_participants(&app, &sealed_before),
            sealed_participants(&app, &sealed_after)
        );
        // Re-opening brings the attempts back into memory, unchanged.
        app.open_session(&skey, None, 0, "test").unwrap().unwrap();
        let ex = app.read();
        assert!(!ex.stored_only.contains(&skey));
        assert_eq!(ex.attempts.len(), 3);
        assert_eq!(attempts_view(&ex, &skey), in_memory);
        drop(ex);
        app.shutdown();
    }

    /// Start-up does not decode a closed session's answers: with one of them damaged the
    /// server still opens and serves the running session, while the closed session's reader
    /// names the damaged record.
    #[test]
    fn a_damaged_closed_answer_does_not_stop_start_up_and_its_reader_names_it() {
        let (_d, app, numbers) = lab(2);
        let skey = SessionKey::of(PKG, "S1");
        let k = skey.clone();
        app.writer
            .run_blocking(move |ex: &mut Exam| {
                let close = exam::proctor::ProctorAction::Close { force: true };
                (
                    ex.proctor_action(&k, close, Actor::System, now_ms())
                        .unwrap(),
                    (),
                )
            })
            .unwrap();
        let bad = crate::store::join_key(&AttemptKey::of(&skey, &numbers[0]), "X-ITEM");
        app.store
            .commit(vec![Put::bytes(
                Table::Answers,
                bad.clone(),
                b"{not json".to_vec(),
            )])
            .unwrap();
        // Another session runs.
        let live = SessionKey::of(PKG, "S2");
        app.open_session(&live, None, 0, "test").unwrap().unwrap();
        let data = app.dir.clone();
        app.shutdown();
        drop(app);
        let app = App::open(&data).unwrap();
        assert!(app.read().sessions[&live].is_running());
        assert!(app.read().attempts_of(&live).is_ok());
        let err = format!("{:#}", app.read().attempts_of(&skey).err().unwrap());
        let akey = AttemptKey::of(&skey, &numbers[0]);
        assert!(
            err.contains("damaged record") && err.contains(akey.as_str()) && err.contains("X-ITEM"),
            "{err}"
        );
        app.shutdown();
    }

    fn deadlines(app: &App) -> Vec<i64> {
        let ex = app.read();
        let mut d: Vec<i64> = ex.attempts.values().map(|a| a.deadline_ms).collect();
        d.sort();
        d
    }

    fn remaining(app: &App) -> Vec<i64> {
        let ex = app.read();
        let now = now_ms();
        ex.attempts
            .values()
            .map(|a| a.remaining_ms(&ex.sessions[&a.session], now) / 1000)
            .collect()
    }

    fn running(app: &App) -> usize {
        app.read()
            .attempts
            .values()
            .filter(|a| a.status == AttemptStatus::Running)
            .count()
    }

    // The wall-clock skew is process-wide: the tests that step it run one at a time.
    static CLOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn clock_steps_move_no_remaining_time_and_submit_nobody() {
        let _g = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
        let (_d, app, numbers) = lab(3);
        app.begin_serving(false).unwrap();
        let before = remaining(&app);
        // Forward by a year (a technician correcting a flat-battery clock), then back by
        // two years: each tick shifts the deadlines by the step and rebases the clock.
        for step in [365 * 86_400_000_i64, -2 * 365 * 86_400_000] {
            crate::clock::skew_wall_for_tests(step);
            let d0 = deadlines(&app);
            app.writer.run_blocking(tick).unwrap();
            let d1 = deadlines(&app);
            for (a, b) in d0.iter().zip(&d1) {
                // The step is read against the running clock: equal to the millisecond or two.
                assert!((b - a - step).abs() <= 20, "deadline shifted by the step");
            }
            assert!(crate::clock::step_ms().abs() < 1_000, "rebased");
            assert_eq!(running(&app), numbers.len(), "nobody submitted by a step");
            for (a, b) in before.iter().zip(remaining(&app)) {
                assert!(
                    (a - b).abs() <= 2,
                    "remaining time unchanged: {a} s → {b} s"
                );
            }
        }
        let chain = SessionKey::of(PKG, "S1");
        let steps = app
            .store
            .scan_prefix(Table::Events, &format!("{chain}\u{1f}"))
            .unwrap()
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<exam::events::Record>(&v).ok())
            .filter(|e| matches!(e.event, exam::events::Event::ClockStep { .. }))
            .count();
        assert_eq!(steps, 2, "each step is an event in the session's chain");
        crate::clock::skew_wall_for_tests(365 * 86_400_000);
        app.writer.run_blocking(tick).unwrap();
        app.shutdown();
    }

    #[test]
    fn a_clock_behind_the_alive_mark_does_not_serve_attempts() {
        let _g = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
        let (_d, app, _) = lab(2);
        app.begin_serving(false).unwrap();
        app.writer.run_blocking(tick).unwrap(); // an alive mark
        let data = app.dir.clone();
        app.shutdown();
        drop(app);
        // The server comes back with its clock an hour behind (a flat CMOS battery).
        crate::clock::skew_wall_for_tests(-3_600_000);
        crate::clock::rebase();
        let app = App::open(&data).unwrap();
        let err = app.begin_serving(false).unwrap_err().to_string();
        assert!(
            err.contains("EARLIER than when this server last ran"),
            "{err}"
        );
        assert!(err.contains("--start-paused"), "{err}");
        assert!(!app.read().serving);
        let d0 = deadlines(&app);
        match app.begin_serving(true).unwrap() {
            ServingStart::Paused { sessions: 1, .. } => {}
            other => panic!("expected one paused session, got {other:?}"),
        }
        assert_eq!(deadlines(&app), d0, "nothing credited on a doubtful clock");
        let skey = SessionKey::of(PKG, "S1");
        assert!(app.read().sessions[&skey].paused_since().is_some());
        app.shutdown();
        crate::clock::skew_wall_for_tests(3_600_000);
        crate::clock::rebase();
    }

    #[test]
    fn every_outage_over_a_second_is_credited_and_they_add_up() {
        let _g = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
        let (_d, app, _) = lab(2);
        app.begin_serving(false).unwrap();
        let data = app.dir.clone();
        let d0 = deadlines(&app);
        app.shutdown();
        drop(app);
        let mut credited = 0;
        // Three crashes of 1.5 s each (simulated by moving the clock on while "down").
        for _ in 0..3 {
            crate::clock::skew_wall_for_tests(1_500);
            crate::clock::rebase();
            let app = App::open(&data).unwrap();
            match app.begin_serving(false).unwrap() {
                ServingStart::Credited { ms } => {
                    assert!((1_500..2_500).contains(&ms), "credited {ms} ms");
                    credited += ms;
                }
                other => panic!("{other:?}"),
            }
            app.shutdown();
        }
        let app = App::open(&data).unwrap();
        let d1 = deadlines(&app);
        for (a, b) in d0.iter().zip(&d1) {
            assert_eq!(b - a, credited, "the credits add up");
        }
        app.shutdown();
    }
}

//! The technician's commands: `tuk config show`, `doctor`, `verify`, `backup`, `restore`,
//! `selftest` (what they use is in `deploy`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use crate::deploy::config::{Config, DataFlags, ServeFlags};
use crate::deploy::{backup, control, doctor, selftest};

/// `tuk config show`.
pub fn config_show(flags: &ServeFlags) -> Result<()> {
    let cfg = Config::resolve(flags)?;
    print!("{}", cfg.show());
    Ok(())
}

/// `tuk doctor`: prints the report; an error (exit code 1) when something would stop the
/// exam.
pub fn doctor(flags: &ServeFlags) -> Result<()> {
    let cfg = Config::resolve(flags)?;
    println!(
        "tuk doctor {} — data folder {}",
        env!("CARGO_PKG_VERSION"),
        cfg.data.value.display()
    );
    let report = doctor::run(&cfg);
    print!("{}", report.text());
    let fails = report.count(doctor::Level::Fail);
    if fails > 0 {
        bail!("{fails} problem(s) would stop the exam (see FAIL above)");
    }
    Ok(())
}

/// `tuk verify`: re-checks every event chain of the data folder from its first event, and
/// decodes every session's stored attempts and answers (start-up reads only those of
/// sessions that are not closed, so damage in a closed one shows here and when it is read).
/// Server stopped: the store is locked while it runs; the console's event log checks a
/// running server's chains. Errors (exit code 1) when a chain does not hold or a record is
/// damaged.
pub fn verify(flags: &DataFlags) -> Result<()> {
    let cfg = Config::resolve(&ServeFlags::from(flags))?;
    let t0 = Instant::now();
    let store = crate::store::Store::open(&cfg.data.value)?;
    let checks = crate::exam::events::verify_store(&store)?;
    let mut bad = 0;
    let mut total = 0;
    for c in &checks {
        total += c.events;
        match &c.result {
            Ok(head) => println!("OK    {}: {} events, head {head}", c.chain, c.events),
            Err(e) => {
                bad += 1;
                println!("FAIL  {}: {} events: {e:#}", c.chain, c.events);
            }
        }
    }
    let mut damaged = 0;
    let mut attempts = 0;
    for (skey, _) in store.scan(crate::store::Table::Sessions)? {
        match crate::exam::decode_attempts(&store, &skey) {
            Ok(m) => attempts += m.len(),
            Err(e) => {
                damaged += 1;
                println!("FAIL  attempts of {skey}: {e:#}");
            }
        }
    }
    println!(
        "{} chains, {total} events, {attempts} attempts checked in {} ms",
        checks.len(),
        t0.elapsed().as_millis()
    );
    if damaged > 0 {
        bail!(
            "the stored attempts or answers of {damaged} session(s) are damaged (FAIL above): restore the last backup and keep this folder for inspection"
        );
    }
    if bad > 0 {
        bail!(
            "{bad} chain(s) do not hold: the event log was changed or damaged; restore the last backup and keep this folder for inspection"
        );
    }
    Ok(())
}

fn default_backup_file(cfg: &Config) -> PathBuf {
    cfg.backup_dir.value.join(format!(
        "tuk-backup-{}.tar",
        backup::time_stamp(crate::clock::now_ms())
    ))
}

/// `tuk backup [-o FILE]`: while the server runs (through it) or not (directly). Without
/// `-o`, the file goes to `backup_dir` and old ones beyond `backup_keep` are removed (this
/// is what the systemd timer runs).
pub fn backup(flags: &DataFlags, out: Option<&Path>) -> Result<()> {
    let t0 = Instant::now();
    let cfg = Config::resolve(&ServeFlags::from(flags))?;
    let dir = cfg.data.value.clone();
    if !dir.join(crate::store::DB_FILE).is_file() {
        bail!(
            "{} has no store to back up (is it the data folder?)",
            dir.display()
        );
    }
    let (file, prune) = match out {
        Some(o) => (o.to_path_buf(), false),
        None => (default_backup_file(&cfg), true),
    };
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::fsutil::create_private_dir(parent)?;
    }
    if file.exists() {
        bail!("{} already exists; choose another name", file.display());
    }
    let mut partial_name = file.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = PathBuf::from(partial_name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    // A backup killed mid-write (power cut, kill -9) left a partial file: remove it now.
    crate::fsutil::remove_stale_partials(crate::fsutil::parent_of(&file));
    let result = (|| -> Result<(u64, Option<std::os::unix::net::UnixStream>, &'static str)> {
        let f = opts
            .open(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        // Held while writing: marks the partial file as live for remove_stale_partials.
        f.lock()
            .with_context(|| format!("cannot lock {}", partial.display()))?;
        let mut w = std::io::BufWriter::new(f);
        let (bytes, conn, how) = match control::connect(&dir) {
            Some(conn) => {
                let (bytes, conn) = control::backup(conn, &mut w)?;
                (bytes, Some(conn), "from the running server")
            }
            None => {
                let store = crate::store::Store::open(&dir).map_err(|e| {
                    anyhow!(
                        "{e:#}\n(the server's control socket {} did not answer)",
                        dir.join(control::SOCKET).display()
                    )
                })?;
                let mut counting = Counting {
                    inner: &mut w,
                    n: 0,
                };
                backup::write_archive(&store, &dir, &mut counting)?;
                (counting.n, None, "with the server stopped")
            }
        };
        let f = w
            .into_inner()
            .map_err(|e| anyhow!("cannot write {}: {}", partial.display(), e.error()))?;
        f.sync_all()
            .with_context(|| format!("cannot write {} (disk full?)", partial.display()))?;
        Ok((bytes, conn, how))
    })();
    let (bytes, conn, how) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let manifest = match backup::read_archive(&partial, None) {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context("the backup just written does not check out"));
        }
    };
    std::fs::rename(&partial, &file).with_context(|| format!("cannot write {}", file.display()))?;
    if let Some(d) = file.parent()
        && let Ok(d) = std::fs::File::open(if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        })
    {
        let _ = d.sync_all();
    }
    let shown = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
    match conn {
        Some(c) => control::confirm(c, bytes, &shown)?,
        None => backup::write_last(
            &dir,
            &backup::LastBackup {
                at_ms: manifest.created_ms,
                at: manifest.created.clone(),
                file: shown.display().to_string(),
                bytes,
                answers: manifest.counts.answers,
            },
        )?,
    }
    println!(
        "backup: {} ({} KiB, {} packages, {} sessions, {} attempts, {} answers, snapshot at {}) {how} in {} ms",
        shown.display(),
        bytes / 1024,
        manifest.counts.packages,
        manifest.counts.sessions,
        manifest.counts.attempts,
        manifest.counts.answers,
        manifest.created,
        t0.elapsed().as_millis()
    );
    if prune {
        for old in backup::prune(&cfg.backup_dir.value, cfg.backup_keep.value)? {
            println!("removed old backup {}", old.display());
        }
    }
    Ok(())
}

struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: std::io::Write> std::io::Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(b)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `tuk restore FILE`: the server must be stopped.
pub fn restore(flags: &DataFlags, file: &Path) -> Result<()> {
    let cfg = Config::resolve(&ServeFlags::from(flags))?;
    let dir = cfg.data.value.clone();
    if control::status(&dir).is_some() {
        bail!(
            "a tuk server is running on {}: stop it first (sudo systemctl stop tuk), restore, then start it again",
            dir.display()
        );
    }
    let r = backup::restore(file, &dir)?;
    let c = &r.manifest.counts;
    println!(
        "restored {} into {}: {} packages, {} sessions, {} attempts, {} answers (snapshot taken {})",
        file.display(),
        dir.display(),
        c.packages,
        c.sessions,
        c.attempts,
        c.answers,
        r.manifest.created
    );
    if let Some(a) = r.moved_aside {
        println!("the files that were there are kept in {}", a.display());
    }
    println!("start the server again: sudo systemctl start tuk (or tuk serve)");
    Ok(())
}

/// `tuk selftest --participants N`.
pub fn selftest(flags: &DataFlags, participants: usize) -> Result<()> {
    let cfg = Config::resolve(&ServeFlags::from(flags))?;
    let dir = cfg.data.value.clone();
    if let Some(f) = control::status(&dir) {
        println!(
            "note: the exam server (pid {}) is running on {}; the self-test uses a separate sandbox and leaves the exam data alone, but it shares the CPU and disk: run it before the exam, not during.",
            f.server_pid.unwrap_or(0),
            dir.display()
        );
    }
    // The sandbox goes on the data folder's disk when we may write there.
    let base = if dir.is_dir()
        && tempfile::Builder::new()
            .prefix(".tuk-probe-")
            .tempdir_in(&dir)
            .is_ok()
    {
        dir
    } else {
        std::env::temp_dir()
    };
    let out = selftest::run(&base, participants, |m| println!("{m}"))?;
    print!("{}", out.report());
    let problems = out.problems();
    if !problems.is_empty() {
        bail!("this machine does not hold {participants} participants");
    }
    Ok(())
}

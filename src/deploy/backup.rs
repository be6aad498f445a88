//! Backups of a data folder, taken while the exam runs, and restoring one.
//!
//! A backup is one tar file (mode 0600: it holds the TUK's secret key):
//!
//! | member | what |
//! |---|---|
//! | `tuk.redb` | a consistent snapshot of the store (one redb read transaction) |
//! | `tuk.key`, `tuk.pub` | this TUK's keys: packages and passwords in the store open only with them |
//! | `lab-pcs.json`, `tls/cert.pem`, `tls/key.pem` | the lab check list and the HTTPS files, if present |
//! | `tuk-backup.json` | the manifest: format, time, version, counts, size and blake3 of every member (last) |
//!
//! **While the server runs** the store file is locked by it, so `tuk backup` asks the server
//! over its control socket (`DATA/control.sock`, see [`super::control`]): the server takes
//! the snapshot (redb read transactions never block the writer) and streams the archive
//! back; the command writes it to `FILE.partial`, syncs it, checks every hash and renames it
//! to `FILE`. With the server stopped, the command opens the store itself. Either way the
//! time, file and size go to `DATA/backup-last.json`, which `tuk doctor` reports.
//!
//! **Restore** needs the server stopped. It checks every hash against the manifest, opens
//! the restored store and loads it as an exam (so a broken backup is refused before
//! anything is replaced), moves the current files aside into `DATA/before-restore-TIME/`
//! and puts the backup's files in place.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::exam::Exam;
use crate::keys::SecretKey;
use crate::store::{DB_FILE, Store};

pub(crate) const MANIFEST: &str = "tuk-backup.json";
pub(crate) const LAST_BACKUP: &str = "backup-last.json";
/// Files copied besides the store snapshot, when they exist.
const EXTRA: [&str; 5] = [
    "tuk.key",
    "tuk.pub",
    crate::server::cek::LAB_PCS,
    "tls/cert.pem",
    "tls/key.pem",
];
/// The largest member a backup may hold (the store of a very large TUK fits easily).
const MAX_MEMBER: u64 = 64 * 1024 * 1024 * 1024;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Member {
    pub(crate) name: String,
    pub size: u64,
    pub blake3: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct Counts {
    pub(crate) packages: usize,
    pub(crate) sessions: usize,
    pub(crate) attempts: usize,
    pub(crate) answers: usize,
    pub(crate) events: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Manifest {
    pub(crate) format: u32,
    pub(crate) tuk_version: String,
    pub(crate) created_ms: i64,
    pub(crate) created: String,
    pub(crate) counts: Counts,
    pub(crate) members: Vec<Member>,
}

/// What `DATA/backup-last.json` records.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct LastBackup {
    pub(crate) at_ms: i64,
    pub(crate) at: String,
    pub(crate) file: String,
    pub(crate) bytes: u64,
    pub(crate) answers: usize,
}

pub(crate) fn read_last(dir: &Path) -> Option<LastBackup> {
    let bytes = fs::read(dir.join(LAST_BACKUP)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) fn write_last(dir: &Path, last: &LastBackup) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(last)?;
    crate::fsutil::write_atomic(&dir.join(LAST_BACKUP), &bytes)
}

fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, h.finalize().to_hex().to_string()))
}

fn counts(store: &Store) -> Result<Counts> {
    use crate::store::Table;
    Ok(Counts {
        packages: store.scan(Table::Catalog)?.len(),
        sessions: store.scan(Table::Sessions)?.len(),
        attempts: store.scan(Table::Attempts)?.len(),
        answers: store.scan(Table::Answers)?.len(),
        events: store.scan(Table::Events)?.len(),
    })
}

fn append(
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    path: &Path,
    mode: u32,
    members: &mut Vec<Member>,
) -> Result<()> {
    let (size, blake3) = hash_file(path)?;
    let mut f = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime((now_ms() / 1000).max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append_data(&mut header, name, (&mut f).take(size))
        .with_context(|| format!("cannot write {name} into the backup"))?;
    members.push(Member {
        name: name.to_string(),
        size,
        blake3,
    });
    Ok(())
}

/// Writes a backup archive of the data folder `dir` whose store is `store` (open, possibly
/// in use by a running server) to `out`. The snapshot is staged in a hidden folder inside
/// `dir` (same disk) and removed afterwards.
pub(crate) fn write_archive(store: &Store, dir: &Path, out: impl Write) -> Result<Manifest> {
    let stage = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot write in {} (full or read-only?)", dir.display()))?;
    let snap = stage.path().join(DB_FILE);
    store
        .backup_to(&snap)
        .context("cannot take a snapshot of the store")?;
    let counts = {
        let copy = Store::open(stage.path()).context("the snapshot does not open")?;
        counts(&copy)?
    };
    let mut members = Vec::new();
    let mut tar = tar::Builder::new(out);
    append(&mut tar, DB_FILE, &snap, 0o600, &mut members)?;
    for name in EXTRA {
        let p = dir.join(name);
        if p.is_file() {
            let mode = if name.ends_with(".pub")
                || name.ends_with("cert.pem")
                || name.ends_with(".json")
            {
                0o644
            } else {
                0o600
            };
            append(&mut tar, name, &p, mode, &mut members)?;
        }
    }
    let now = now_ms();
    let manifest = Manifest {
        format: 1,
        tuk_version: env!("CARGO_PKG_VERSION").to_string(),
        created_ms: now,
        created: crate::clock::rfc3339(now),
        counts,
        members,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_mtime((now / 1000).max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, json.as_slice())?;
    let mut out = tar.into_inner()?;
    out.flush()?;
    Ok(manifest)
}

/// Reads an archive, checking every member against the manifest. With `extract_to`, the
/// members are written there (only the known names; nothing outside that folder).
pub(crate) fn read_archive(file: &Path, extract_to: Option<&Path>) -> Result<Manifest> {
    let f = fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut ar = tar::Archive::new(std::io::BufReader::new(f));
    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    for entry in ar
        .entries()
        .with_context(|| format!("{} is not a tuk backup (not a tar file)", file.display()))?
    {
        let mut entry = entry.with_context(|| format!("{} is damaged", file.display()))?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let size = entry.header().size()?;
        if size > MAX_MEMBER {
            bail!("{}: member {name} is too large", file.display());
        }
        if name == MANIFEST {
            let mut text = Vec::new();
            (&mut entry).take(1024 * 1024).read_to_end(&mut text)?;
            manifest = Some(
                serde_json::from_slice(&text)
                    .with_context(|| format!("{}: the manifest is damaged", file.display()))?,
            );
            continue;
        }
        if name != DB_FILE && !EXTRA.contains(&name.as_str()) {
            bail!(
                "{}: unexpected member {name:?}; not a tuk backup",
                file.display()
            );
        }
        let mut h = blake3::Hasher::new();
        let mut sink: Box<dyn Write> = match extract_to {
            Some(d) => {
                let p = d.join(&name);
                if let Some(parent) = p.parent() {
                    crate::fsutil::create_private_dir(parent)?;
                }
                let mut opts = fs::OpenOptions::new();
                opts.write(true).create_new(true);
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                Box::new(
                    opts.open(&p)
                        .with_context(|| format!("cannot write {}", p.display()))?,
                )
            }
            None => Box::new(std::io::sink()),
        };
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0u64;
        loop {
            let k = entry.read(&mut buf)?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            sink.write_all(&buf[..k])?;
            n += k as u64;
        }
        sink.flush()?;
        seen.insert(name, (n, h.finalize().to_hex().to_string()));
    }
    let manifest = manifest.ok_or_else(|| {
        anyhow!(
            "{} has no {MANIFEST}: not a tuk backup, or cut short",
            file.display()
        )
    })?;
    if manifest.format != 1 {
        bail!(
            "{}: backup format {} is not known to this tuk {}",
            file.display(),
            manifest.format,
            env!("CARGO_PKG_VERSION")
        );
    }
    for m in &manifest.members {
        match seen.get(&m.name) {
            None => bail!(
                "{}: {} is missing (the file was cut short?)",
                file.display(),
                m.name
            ),
            Some((size, hash)) if *size != m.size || *hash != m.blake3 => {
                bail!(
                    "{}: {} does not match its hash: the backup is damaged",
                    file.display(),
                    m.name
                )
            }
            Some(_) => {}
        }
    }
    if seen.len() != manifest.members.len() {
        bail!("{}: members not listed in the manifest", file.display());
    }
    if !manifest.members.iter().any(|m| m.name == DB_FILE) {
        bail!("{}: the backup holds no store", file.display());
    }
    Ok(manifest)
}

/// Keeps the `keep` newest `tuk-backup-*.tar` files in `dir`, deleting older ones. Only
/// complete backups count: a backup is renamed to `.tar` after it was written, synced and
/// read back, so a partial one (`.tar.partial`) is never counted and never kept instead.
pub(crate) fn prune(dir: &Path, keep: u32) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("tuk-backup-") && n.ends_with(".tar"))
        })
        .collect();
    // The names carry the time (UTC, sortable).
    files.sort();
    let mut removed = Vec::new();
    while files.len() > keep as usize {
        let old = files.remove(0);
        if fs::remove_file(&old).is_ok() {
            removed.push(old);
        }
    }
    Ok(removed)
}

/// What a restore did.
pub(crate) struct Restored {
    pub(crate) manifest: Manifest,
    pub(crate) moved_aside: Option<PathBuf>,
}

/// Restores `file` into the data folder `dir` (the server must be stopped).
pub(crate) fn restore(file: &Path, dir: &Path) -> Result<Restored> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The data folder holds the key and the exam data: 0700 whatever the umask.
    crate::fsutil::set_mode(dir, 0o700)?;
    if dir.join(DB_FILE).exists() {
        // Opening the store is the one reliable "is a server using it?" check (redb locks).
        let s = Store::open(dir).map_err(|e| {
            anyhow!(
                "{e:#}\nstop the server first (sudo systemctl stop tuk), then restore, then start it again"
            )
        })?;
        drop(s);
    }
    let stage = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let manifest = read_archive(file, Some(stage.path()))?;
    // The restored store must open and load as an exam with the restored key.
    {
        let key_path = stage.path().join("tuk.key");
        if !key_path.is_file() {
            bail!("{}: the backup holds no tuk.key", file.display());
        }
        let key = Arc::new(SecretKey::read(&key_path)?);
        let store =
            Arc::new(Store::open(stage.path()).context("the backup's store does not open")?);
        let ex = Exam::load(&store, key).context("the backup's store does not load")?;
        // Start-up leaves closed sessions' attempts in the store: check them here too.
        for skey in ex.sessions.keys() {
            crate::exam::decode_attempts(&store, skey)
                .context("the backup's store does not load")?;
        }
    }
    // Move what is there now aside, then move the backup's files in.
    let present: Vec<&str> = std::iter::once(DB_FILE)
        .chain(EXTRA)
        .chain([LAST_BACKUP])
        .filter(|n| dir.join(n).exists())
        .collect();
    let mut aside = None;
    if !present.is_empty() {
        let stamp = time_stamp(now_ms());
        let a = dir.join(format!("before-restore-{stamp}"));
        crate::fsutil::create_private_dir(&a)?;
        for n in &present {
            let to = a.join(n);
            if let Some(p) = to.parent() {
                crate::fsutil::create_private_dir(p)?;
            }
            fs::rename(dir.join(n), &to)
                .with_context(|| format!("cannot move {} aside", dir.join(n).display()))?;
        }
        aside = Some(a);
    }
    for m in &manifest.members {
        let to = dir.join(&m.name);
        if let Some(p) = to.parent() {
            crate::fsutil::create_private_dir(p)?;
        }
        fs::rename(stage.path().join(&m.name), &to)
            .with_context(|| format!("cannot put {} in place", to.display()))?;
        if m.name.ends_with(".pub") || m.name.ends_with("cert.pem") || m.name.ends_with(".json") {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&to, fs::Permissions::from_mode(0o644));
        }
    }
    for d in [dir.to_path_buf(), dir.join("tls")] {
        if let Ok(f) = fs::File::open(&d) {
            let _ = f.sync_all();
        }
    }
    Ok(Restored {
        manifest,
        moved_aside: aside,
    })
}

/// `20261124-081500` (UTC), for file names that sort by time.
pub(crate) fn time_stamp(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_round_trip_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        store
            .commit(vec![crate::store::Put::bytes(
                crate::store::Table::Meta,
                "x",
                b"1".to_vec(),
            )])
            .unwrap();
        fs::write(dir.path().join("tuk.pub"), "pub\n").unwrap();
        let out = dir.path().join("b.tar");
        let m = write_archive(&store, dir.path(), fs::File::create(&out).unwrap()).unwrap();
        assert!(m.members.iter().any(|x| x.name == DB_FILE));
        let again = read_archive(&out, None).unwrap();
        assert_eq!(again.members.len(), m.members.len());
        // Flip one byte inside the store member: refused.
        let mut bytes = fs::read(&out).unwrap();
        bytes[1024 + 100] ^= 0xff;
        let bad = dir.path().join("bad.tar");
        fs::write(&bad, bytes).unwrap();
        let e = read_archive(&bad, None).unwrap_err();
        assert!(format!("{e:#}").contains("damaged"), "{e:#}");
    }

    #[test]
    fn prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            fs::write(
                dir.path().join(format!("tuk-backup-2026010{i}-000000.tar")),
                "x",
            )
            .unwrap();
        }
        fs::write(dir.path().join("other.tar"), "x").unwrap();
        let removed = prune(dir.path(), 2).unwrap();
        assert_eq!(removed.len(), 3);
        assert!(dir.path().join("tuk-backup-20260104-000000.tar").exists());
        assert!(dir.path().join("other.tar").exists());
    }
}

//! Writing files so that they appear whole or not at all, and removing what a killed
//! writer left behind.
//!
//! Every output that can be interrupted (seal bundles, receipts, exports, backups) is first
//! written to a *partial* file beside its final name and renamed when complete. A process
//! that is killed (or loses power) mid-write leaves the partial file, possibly on a USB
//! stick; the next writer into the same folder removes it. A writer holds an exclusive
//! `flock` on its partial file while writing, so a partial file that can be locked belongs
//! to nobody and is safe to delete, however recent it is.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Prefix of the temporary files [`write_atomic`] writes.
pub(crate) const PARTIAL_PREFIX: &str = ".tuk-partial-";
/// Suffix of streamed outputs written under their final name plus this (backups).
pub(crate) const PARTIAL_SUFFIX: &str = ".partial";

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and
/// syncs the folder: a crash leaves either the old file or the new one, never half of one
/// (the half-written temporary is removed by the next writer, [`remove_stale_partials`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_of(path);
    remove_stale_partials(dir);
    let mut tmp = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    // Held until the file is renamed or dropped (deleted): marks it as being written.
    tmp.as_file()
        .lock()
        .with_context(|| format!("cannot lock a file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {} (is the disk full?)", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    sync_dir(dir);
    Ok(())
}

/// Sets the permission bits of `path` to `mode` (0600 for a file with exam data or a key,
/// 0700 for a folder of them), whatever the umask of the shell that started tuk (issue 11).
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the permissions of {}", path.display()))
}

/// Creates `dir` (and its parents) and, when this call created it, makes it 0700: a folder
/// of keys or exam data that only the user running tuk may enter.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let existed = dir.exists();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if !existed {
        set_mode(dir, 0o700)?;
    }
    Ok(())
}

/// Writes a new private file (0600, whatever the umask), replacing an old one.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    set_mode(path, 0o600)?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The folder a file is in (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Syncs a folder so a rename in it is durable (best effort: some filesystems refuse).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes partial files in `dir` that no live writer holds: `.tuk-partial-*` and
/// `*.partial`. Returns what it removed. Errors reading the folder are ignored (a missing
/// folder has nothing to clean), since cleaning is never a reason to fail the real work.
pub(crate) fn remove_stale_partials(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(PARTIAL_PREFIX) || name.ends_with(PARTIAL_SUFFIX)) {
            continue;
        }
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = e.path();
        let Ok(f) = File::open(&path) else { continue };
        // Locked: a writer is still at work on it.
        if f.try_lock().is_ok() && std::fs::remove_file(&path).is_ok() {
            tracing::info!(file = %path.display(), "removed a partial file left by an interrupted write");
            removed.push(path);
        }
    }
    removed
}

/// Free bytes for unprivileged users on the filesystem of `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a valid out-pointer.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (r == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_partials_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(".tuk-partial-abc"), b"half a bundle").unwrap();
        std::fs::write(d.join("tuk-backup-1.tar.partial"), b"half a backup").unwrap();
        std::fs::write(d.join("keep.tukres"), b"whole").unwrap();
        let live = File::create(d.join(".tuk-partial-live")).unwrap();
        live.lock().unwrap();
        let mut gone = remove_stale_partials(d);
        gone.sort();
        assert_eq!(
            gone,
            vec![
                d.join(".tuk-partial-abc"),
                d.join("tuk-backup-1.tar.partial")
            ]
        );
        assert!(d.join(".tuk-partial-live").exists());
        assert!(d.join("keep.tukres").exists());
        drop(live);
        write_atomic(&d.join("out.txt"), b"new").unwrap();
        assert!(!d.join(".tuk-partial-live").exists());
        assert_eq!(std::fs::read(d.join("out.txt")).unwrap(), b"new");
    }
}

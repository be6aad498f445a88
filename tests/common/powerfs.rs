//! A FUSE filesystem that loses power: the disk under the power-cut test (tests/powercut.rs).
//!
//! [`PowerDisk::mount`] mounts, at a mount point, a passthrough view of a *backing folder*
//! on the real disk. What the backing folder holds is what a real disk holds after power
//! comes back ("durable"); everything else lives only in this process's memory, like a
//! kernel's page cache:
//!
//! - **File contents and sizes are volatile until fsync.** A `write` or a truncation changes
//!   only an in-memory overlay of the file (dirty 4 KiB pages, the new size, and how far the
//!   file was cut since its last sync). `fsync`/`fdatasync` of that file writes its dirty
//!   pages and its size to the backing file (on any handle of the file: an fsync makes the
//!   whole inode durable, as on Linux). `close` (FUSE `flush`/`release`) makes nothing
//!   durable: a closed, unsynced file loses its new contents at a cut, as on a real disk.
//! - **Names are durable at once.** `create`, `mkdir`, `rename`, `unlink`, `rmdir` and
//!   permission changes are applied to the backing folder when they happen, as if the
//!   filesystem journaled metadata synchronously (ext4 with `dirsync`). A created file
//!   survives a cut with the contents it had at its last fsync (empty if none), and a
//!   rename survives even when the renamed file's data was never synced. That is harsher
//!   than ext4's defaults for the "write a temporary file, rename it over" pattern (a
//!   rename can expose an unsynced, empty file) and gentler for code that forgets to fsync
//!   a folder after creating a file in it. It is still a fair test of acknowledged answers:
//!   they live in one file, `tuk.redb`, which exists before the test starts and which redb
//!   only ever rewrites in place; the test checks the contents of that file, which are
//!   volatile until fsync exactly like on a real disk.
//!
//! A power cut ([`Mounted::cut`]) switches the layer off at once: every later operation,
//! including an fsync that was about to make data durable, fails with EIO and persists
//! nothing. The test then kills the server, unmounts ([`Mounted::unmount`]: every unsynced
//! page is thrown away) and mounts the backing folder again: a fresh layer with an empty
//! cache, the disk after the power comes back.
//!
//! Every open file uses FUSE direct I/O (no kernel page cache over this filesystem) and
//! attributes are never cached, so the kernel cannot serve stale bytes after a remount.
//! Locks (`flock`, redb's "already open" check) are left to the kernel's local locking.
//!
//! The backing file is written without a real `fsync` of its own: the host does not lose
//! power in this test, only the layer does.
//!
//! [`Mounted::set_fsync`] makes fsync lie (a no-op, or one flush late: [`FsyncMode`]), to
//! prove that the test catches answers that are acknowledged before they are durable.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, BsdFileFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// The page size of the volatile cache.
const PAGE: u64 = 4096;
/// Attributes and names are never cached by the kernel (sizes change under it at a cut).
const TTL: Duration = Duration::ZERO;
/// How long a flush takes (a fast SSD's fsync). A cut that arrives meanwhile wins: the
/// flush fails and persists nothing. It also widens the window in which a commit's pages
/// are written but not yet durable, so more cuts land inside a commit.
const FLUSH_TIME: Duration = Duration::from_millis(1);

/// What fsync does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FsyncMode {
    /// Makes the file's changes durable before it returns (a disk that keeps its word).
    Honest,
    /// Returns success and persists nothing (a disk that ignores flushes).
    NoOp,
    /// Returns success at once but persists the file as it was at the *previous* fsync: the
    /// last commit before a cut is lost (a volatile write cache one flush behind).
    OneLate,
}

/// What the layer did, for the test's report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// `write` calls and bytes written (into the volatile cache).
    pub writes: u64,
    pub bytes_written: u64,
    /// fsync/fdatasync calls that made data durable.
    pub syncs: u64,
    /// Dirty pages thrown away by cuts (written, never synced).
    pub pages_lost: u64,
    /// Files whose unsynced size change was thrown away by cuts.
    pub sizes_lost: u64,
    /// Cuts that threw away at least one unsynced page or size (cut inside a write).
    pub cuts_losing_data: u64,
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    bytes_written: AtomicU64,
    syncs: AtomicU64,
    pages_lost: AtomicU64,
    sizes_lost: AtomicU64,
    cuts_losing_data: AtomicU64,
}

/// A backing folder that can be mounted, cut and mounted again.
pub struct PowerDisk {
    backing: PathBuf,
    counters: Arc<Counters>,
}

/// A mounted [`PowerDisk`]; unmounts (and loses what was not synced) on drop.
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
    powered: Arc<AtomicBool>,
    fsync_mode: Arc<AtomicU8>,
    fs: Arc<Mutex<Inner>>,
    counters: Arc<Counters>,
    pub mountpoint: PathBuf,
}

impl PowerDisk {
    pub fn new(backing: &Path) -> PowerDisk {
        PowerDisk {
            backing: backing.to_path_buf(),
            counters: Arc::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            writes: c.writes.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            pages_lost: c.pages_lost.load(Ordering::Relaxed),
            sizes_lost: c.sizes_lost.load(Ordering::Relaxed),
            cuts_losing_data: c.cuts_losing_data.load(Ordering::Relaxed),
        }
    }

    /// Mounts the backing folder at `mountpoint` (an empty folder) with a fresh, empty
    /// cache. Errors say why FUSE could not be used (no /dev/fuse, no fusermount3, no
    /// permission), so a test can fail with the reason instead of skipping.
    pub fn mount(&self, mountpoint: &Path) -> Result<Mounted, String> {
        let powered = Arc::new(AtomicBool::new(true));
        let fsync_mode = Arc::new(AtomicU8::new(FsyncMode::Honest as u8));
        let inner = Arc::new(Mutex::new(Inner::new(&self.backing)));
        let layer = Layer {
            fs: inner.clone(),
            powered: powered.clone(),
            fsync_mode: fsync_mode.clone(),
            counters: self.counters.clone(),
        };
        let mut cfg = Config::default();
        cfg.mount_options.extend([
            MountOption::FSName("tuk-powerfs".into()),
            MountOption::NoExec,
            MountOption::NoSuid,
        ]);
        let session = fuser::spawn_mount(layer, mountpoint, &cfg).map_err(|e| {
            format!(
                "cannot mount the power-cut filesystem at {} ({e}). It needs /dev/fuse \
                 (present: {}), the fusermount3 program from the Debian package fuse3 \
                 (present: {}) and the right to mount FUSE filesystems (root, or a user \
                 allowed by /etc/fuse.conf); .ci/run installs fuse3",
                mountpoint.display(),
                Path::new("/dev/fuse").exists(),
                Path::new("/usr/bin/fusermount3").exists()
                    || Path::new("/bin/fusermount3").exists(),
            )
        })?;
        Ok(Mounted {
            session: Some(session),
            powered,
            fsync_mode,
            fs: inner,
            counters: self.counters.clone(),
            mountpoint: mountpoint.to_path_buf(),
        })
    }
}

impl Mounted {
    /// The power cut: from now on every operation fails with EIO and nothing more becomes
    /// durable. Returns at once; kill the processes using the mount, then [`Mounted::unmount`].
    pub fn cut(&self) {
        self.powered.store(false, Ordering::SeqCst);
    }

    /// Changes what fsync does (a disk that lies about durability), for the tests that
    /// prove the power-cut test catches lost data.
    pub fn set_fsync(&self, mode: FsyncMode) {
        self.fsync_mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Unmounts, throwing away every change that was not synced. Call after every process
    /// that had files open on the mount has exited.
    pub fn unmount(mut self) -> Result<(), String> {
        self.cut();
        self.finish()
    }

    fn finish(&mut self) -> Result<(), String> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let r = session
            .umount_and_join()
            .map_err(|e| format!("cannot unmount {}: {e}", self.mountpoint.display()));
        let inner = self.fs.lock().unwrap_or_else(|p| p.into_inner());
        if inner
            .vol
            .values()
            .any(|v| !v.pages.is_empty() || v.size != v.durable_len || v.floor < v.durable_len)
        {
            self.counters
                .cuts_losing_data
                .fetch_add(1, Ordering::Relaxed);
        }
        for v in inner.vol.values() {
            self.counters
                .pages_lost
                .fetch_add(v.pages.len() as u64, Ordering::Relaxed);
            if v.size != v.durable_len || v.floor < v.durable_len {
                self.counters.sizes_lost.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.cut();
        let _ = self.finish();
    }
}

// ---------------------------------------------------------------------------------------
// The layer
// ---------------------------------------------------------------------------------------

/// The unsynced state of one file.
#[derive(Clone)]
struct Volatile {
    /// The file's size as processes see it.
    size: u64,
    /// The backing file's length when this overlay started (what a cut returns to).
    durable_len: u64,
    /// Bytes of the backing file at or beyond this offset are not part of the file any more
    /// (it was truncated below them since the last sync): they read as zeros.
    floor: u64,
    /// Dirty pages by index.
    pages: BTreeMap<u64, Vec<u8>>,
}

struct Inner {
    backing: PathBuf,
    /// inode → path relative to the backing folder ("" is the root).
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next_ino: u64,
    /// Open backing files by inode (kept open across unlink and rename).
    files: HashMap<u64, File>,
    /// Unsynced state by inode.
    vol: HashMap<u64, Volatile>,
    /// [`FsyncMode::OneLate`]: the overlay at the last fsync, persisted at the next one.
    late: HashMap<u64, Volatile>,
    next_fh: u64,
}

struct Layer {
    fs: Arc<Mutex<Inner>>,
    powered: Arc<AtomicBool>,
    fsync_mode: Arc<AtomicU8>,
    counters: Arc<Counters>,
}

type Res<T> = Result<T, Errno>;

fn io(e: std::io::Error) -> Errno {
    Errno::from(e)
}

fn kind_of(m: &fs::Metadata) -> FileType {
    FileType::from_std(m.file_type()).unwrap_or(FileType::RegularFile)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH
    }
}

impl Inner {
    fn new(backing: &Path) -> Inner {
        let mut i = Inner {
            backing: backing.to_path_buf(),
            paths: HashMap::new(),
            inos: HashMap::new(),
            next_ino: 2,
            files: HashMap::new(),
            vol: HashMap::new(),
            late: HashMap::new(),
            next_fh: 1,
        };
        i.paths.insert(1, PathBuf::new());
        i.inos.insert(PathBuf::new(), 1);
        i
    }

    fn rel(&self, ino: INodeNo) -> Res<PathBuf> {
        self.paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)
    }

    fn real(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    fn ino_for(&mut self, rel: &Path) -> u64 {
        if let Some(i) = self.inos.get(rel) {
            return *i;
        }
        let i = self.next_ino;
        self.next_ino += 1;
        self.paths.insert(i, rel.to_path_buf());
        self.inos.insert(rel.to_path_buf(), i);
        i
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Res<PathBuf> {
        Ok(self.rel(parent)?.join(name))
    }

    fn file(&mut self, ino: u64) -> Res<&File> {
        if !self.files.contains_key(&ino) {
            let rel = self.paths.get(&ino).ok_or(Errno::ENOENT)?;
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(self.real(rel))
                .map_err(io)?;
            self.files.insert(ino, f);
        }
        self.files.get(&ino).ok_or(Errno::ENOENT)
    }

    fn attr(&mut self, ino: u64) -> Res<FileAttr> {
        let m = match self.files.get(&ino) {
            Some(f) => f.metadata().map_err(io)?,
            None => {
                let rel = self.paths.get(&ino).ok_or(Errno::ENOENT)?;
                fs::symlink_metadata(self.real(rel)).map_err(io)?
            }
        };
        let size = self.vol.get(&ino).map_or(m.len(), |v| v.size);
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time(m.atime(), m.atime_nsec()),
            mtime: time(m.mtime(), m.mtime_nsec()),
            ctime: time(m.ctime(), m.ctime_nsec()),
            crtime: time(m.ctime(), m.ctime_nsec()),
            kind: kind_of(&m),
            perm: (m.mode() & 0o7777) as u16,
            nlink: m.nlink() as u32,
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev() as u32,
            blksize: PAGE as u32,
            flags: 0,
        })
    }

    /// The overlay of `ino`, created from the backing file's length on first change.
    fn vol(&mut self, ino: u64) -> Res<&mut Volatile> {
        if !self.vol.contains_key(&ino) {
            let len = self.file(ino)?.metadata().map_err(io)?.len();
            self.vol.insert(
                ino,
                Volatile {
                    size: len,
                    durable_len: len,
                    floor: len,
                    pages: BTreeMap::new(),
                },
            );
        }
        self.vol.get_mut(&ino).ok_or(Errno::EIO)
    }

    /// Reads `buf.len()` bytes of the backing file at `off`, zeros at or beyond `limit`.
    fn read_backing(&mut self, ino: u64, off: u64, buf: &mut [u8], limit: u64) -> Res<()> {
        buf.fill(0);
        if off >= limit {
            return Ok(());
        }
        let n = ((limit - off) as usize).min(buf.len());
        let f = self.file(ino)?;
        let mut done = 0;
        while done < n {
            let r = f
                .read_at(&mut buf[done..n], off + done as u64)
                .map_err(io)?;
            if r == 0 {
                break;
            }
            done += r;
        }
        Ok(())
    }

    fn read(&mut self, ino: u64, off: u64, len: u32) -> Res<Vec<u8>> {
        let (size, floor) = match self.vol.get(&ino) {
            Some(v) => (v.size, v.floor),
            None => {
                let l = self.file(ino)?.metadata().map_err(io)?.len();
                (l, l)
            }
        };
        if off >= size {
            return Ok(Vec::new());
        }
        let end = size.min(off + len as u64);
        let mut out = vec![0u8; (end - off) as usize];
        self.read_backing(ino, off, &mut out, floor)?;
        if let Some(v) = self.vol.get(&ino) {
            for (&p, page) in v.pages.range(off / PAGE..end.div_ceil(PAGE)) {
                let (ps, pe) = (p * PAGE, p * PAGE + PAGE);
                let (s, e) = (ps.max(off), pe.min(end));
                out[(s - off) as usize..(e - off) as usize]
                    .copy_from_slice(&page[(s - ps) as usize..(e - ps) as usize]);
            }
        }
        Ok(out)
    }

    fn write(&mut self, ino: u64, off: u64, data: &[u8]) -> Res<()> {
        let end = off + data.len() as u64;
        let floor = self.vol(ino)?.floor;
        for p in off / PAGE..end.div_ceil(PAGE) {
            if !self.vol(ino)?.pages.contains_key(&p) {
                let mut page = vec![0u8; PAGE as usize];
                self.read_backing(ino, p * PAGE, &mut page, floor)?;
                self.vol(ino)?.pages.insert(p, page);
            }
            let v = self.vol(ino)?;
            let Some(page) = v.pages.get_mut(&p) else {
                return Err(Errno::EIO);
            };
            let (ps, pe) = (p * PAGE, p * PAGE + PAGE);
            let (s, e) = (ps.max(off), pe.min(end));
            page[(s - ps) as usize..(e - ps) as usize]
                .copy_from_slice(&data[(s - off) as usize..(e - off) as usize]);
        }
        let v = self.vol(ino)?;
        v.size = v.size.max(end);
        Ok(())
    }

    fn truncate(&mut self, ino: u64, size: u64) -> Res<()> {
        let v = self.vol(ino)?;
        if size < v.size {
            // Pages wholly beyond the new end go; the tail of the last one is zeroed so a
            // later extension reads zeros there.
            let first_gone = size.div_ceil(PAGE);
            v.pages.retain(|&p, _| p < first_gone);
            if !size.is_multiple_of(PAGE)
                && let Some(page) = v.pages.get_mut(&(size / PAGE))
            {
                page[(size % PAGE) as usize..].fill(0);
            }
            v.floor = v.floor.min(size);
        }
        v.size = size;
        Ok(())
    }

    /// Makes the overlay of `ino` durable.
    fn sync(&mut self, ino: u64) -> Res<()> {
        let Some(v) = self.vol.remove(&ino) else {
            return Ok(());
        };
        self.persist(ino, &v)
    }

    /// [`FsyncMode::OneLate`]: persists the overlay as it was at the previous fsync of
    /// `ino` and keeps the current one (never cleared in this mode) for the next.
    fn sync_one_late(&mut self, ino: u64) -> Res<()> {
        let Some(now) = self.vol.get(&ino) else {
            return Ok(());
        };
        let snapshot = now.clone();
        match self.late.insert(ino, snapshot) {
            Some(previous) => self.persist(ino, &previous),
            None => Ok(()),
        }
    }

    /// Writes an overlay to the backing file: cut it where the file was cut, write the
    /// dirty pages, set the size.
    fn persist(&mut self, ino: u64, v: &Volatile) -> Res<()> {
        let f = self.file(ino)?;
        let r = (|| {
            if v.floor < f.metadata()?.len() {
                f.set_len(v.floor)?;
            }
            for (&p, page) in &v.pages {
                let ps = p * PAGE;
                if ps >= v.size {
                    continue;
                }
                let n = (v.size - ps).min(PAGE) as usize;
                f.write_all_at(&page[..n], ps)?;
            }
            f.set_len(v.size)
        })();
        r.map_err(io)
    }

    fn forget_path(&mut self, rel: &Path) {
        if let Some(i) = self.inos.remove(rel) {
            self.paths.remove(&i);
        }
    }
}

impl Layer {
    fn on(&self) -> Res<std::sync::MutexGuard<'_, Inner>> {
        if !self.powered.load(Ordering::SeqCst) {
            return Err(Errno::EIO);
        }
        Ok(self.fs.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn entry(&self, parent: INodeNo, name: &OsStr) -> Res<FileAttr> {
        let mut fs = self.on()?;
        let rel = fs.child(parent, name)?;
        fs::symlink_metadata(fs.real(&rel)).map_err(io)?;
        let ino = fs.ino_for(&rel);
        fs.attr(ino)
    }
}

fn reply_entry(reply: ReplyEntry, r: Res<FileAttr>) {
    match r {
        Ok(a) => reply.entry(&TTL, &a, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn reply_empty(reply: ReplyEmpty, r: Res<()>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for Layer {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        reply_entry(reply, self.entry(parent, name));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.on().and_then(|mut fs| fs.attr(ino.0)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = self.on().and_then(|mut fs| {
            if let Some(m) = mode {
                // Metadata: durable at once.
                let rel = fs.rel(ino)?;
                fs::set_permissions(fs.real(&rel), fs::Permissions::from_mode(m & 0o7777))
                    .map_err(io)?;
            }
            if let Some(s) = size {
                fs.truncate(ino.0, s)?;
            }
            fs.attr(ino.0)
        });
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self.on().and_then(|fs| {
            let real = fs.real(&fs.child(parent, name)?);
            fs::create_dir(&real).map_err(io)?;
            fs::set_permissions(&real, fs::Permissions::from_mode(mode & 0o7777)).map_err(io)
        });
        reply_entry(reply, r.and_then(|()| self.entry(parent, name)));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.on().and_then(|mut fs| {
            let rel = fs.child(parent, name)?;
            fs::remove_file(fs.real(&rel)).map_err(io)?;
            if let Some(&i) = fs.inos.get(&rel) {
                fs.vol.remove(&i);
            }
            fs.forget_path(&rel);
            Ok(())
        });
        reply_empty(reply, r);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.on().and_then(|mut fs| {
            let rel = fs.child(parent, name)?;
            fs::remove_dir(fs.real(&rel)).map_err(io)?;
            fs.forget_path(&rel);
            Ok(())
        });
        reply_empty(reply, r);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            // RENAME_NOREPLACE / RENAME_EXCHANGE: not needed by tuk; callers fall back.
            reply.error(Errno::EINVAL);
            return;
        }
        let r = self.on().and_then(|mut fs| {
            let from = fs.child(parent, name)?;
            let to = fs.child(newparent, newname)?;
            fs::rename(fs.real(&from), fs.real(&to)).map_err(io)?;
            // The replaced file's name is gone; its data (if open) stays with its inode.
            fs.forget_path(&to);
            // Move the renamed entry and everything under it.
            let moved: Vec<(u64, PathBuf)> = fs
                .paths
                .iter()
                .filter_map(|(&i, p)| {
                    p.strip_prefix(&from).ok().map(|rest| {
                        (
                            i,
                            if rest.as_os_str().is_empty() {
                                to.clone()
                            } else {
                                to.join(rest)
                            },
                        )
                    })
                })
                .collect();
            for (i, p) in moved {
                if let Some(old) = fs.paths.insert(i, p.clone()) {
                    fs.inos.remove(&old);
                }
                fs.inos.insert(p, i);
            }
            Ok(())
        });
        reply_empty(reply, r);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = self.on().and_then(|mut fs| {
            fs.file(ino.0)?;
            fs.next_fh += 1;
            Ok(fs.next_fh)
        });
        match r {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.on().and_then(|mut fs| {
            let rel = fs.child(parent, name)?;
            let real = fs.real(&rel);
            let mut o = OpenOptions::new();
            o.read(true).write(true);
            if flags & libc::O_EXCL != 0 {
                o.create_new(true);
            } else {
                o.create(true);
            }
            let f = o.open(&real).map_err(io)?;
            f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
                .map_err(io)?;
            let ino = fs.ino_for(&rel);
            fs.files.insert(ino, f);
            if flags & libc::O_TRUNC != 0 {
                fs.truncate(ino, 0)?;
            }
            fs.next_fh += 1;
            Ok((fs.attr(ino)?, fs.next_fh))
        });
        match r {
            Ok((a, fh)) => reply.created(
                &TTL,
                &a,
                Generation(0),
                FileHandle(fh),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.on().and_then(|mut fs| fs.read(ino.0, offset, size)) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.on().and_then(|mut fs| fs.write(ino.0, offset, data)) {
            Ok(()) => {
                self.counters.writes.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .bytes_written
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                reply.written(data.len() as u32)
            }
            Err(e) => reply.error(e),
        }
    }

    /// `close`: nothing becomes durable.
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.on().map(|_| ()));
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        std::thread::sleep(FLUSH_TIME);
        let r = self.on().and_then(|mut fs| {
            match self.fsync_mode.load(Ordering::SeqCst) {
                m if m == FsyncMode::NoOp as u8 => return Ok(()),
                m if m == FsyncMode::OneLate as u8 => fs.sync_one_late(ino.0)?,
                _ => fs.sync(ino.0)?,
            }
            self.counters.syncs.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        reply_empty(reply, r);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let r = self.on().and_then(|mut fs| {
            let rel = fs.rel(ino)?;
            let mut entries = vec![
                (ino.0, FileType::Directory, OsStr::new(".").to_os_string()),
                (1, FileType::Directory, OsStr::new("..").to_os_string()),
            ];
            let mut names: Vec<_> = fs::read_dir(fs.real(&rel))
                .map_err(io)?
                .filter_map(|e| e.ok())
                .collect();
            names.sort_by_key(|e| e.file_name());
            for e in names {
                let kind = e
                    .file_type()
                    .ok()
                    .and_then(FileType::from_std)
                    .unwrap_or(FileType::RegularFile);
                let i = fs.ino_for(&rel.join(e.file_name()));
                entries.push((i, kind, e.file_name()));
            }
            Ok(entries)
        });
        match r {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    /// Folders: names are durable at once, so there is nothing left to sync.
    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.on().map(|_| ()));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let r = self.on().and_then(|fs| {
            let c = std::ffi::CString::new(fs.backing.as_os_str().as_bytes())
                .map_err(|_| Errno::EINVAL)?;
            let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
            // SAFETY: a valid C string and a zeroed struct of the right type.
            if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
                return Err(io(std::io::Error::last_os_error()));
            }
            Ok(s)
        });
        match r {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply_empty(reply, self.on().map(|_| ()));
    }
}

//! The running server's control socket, `DATA/control.sock` (mode 0600 in the 0700 data
//! folder, so only the service's user and root can connect), and the clock watch.
//!
//! Why a socket: while `tuk serve` runs, the store file is locked by it; `tuk backup` and
//! `tuk doctor` on the same machine ask the server instead of opening the store. The
//! kernel checks who connects, so no password or HTTP endpoint is needed.
//!
//! Protocol: the client sends one line.
//! - `status` → one JSON line: [`Facts`] (what `tuk doctor` checks).
//! - `backup` → `ok` line, then the archive in frames (`D` + u32 length + bytes, ending
//!   with `E`, or `X` + u32 length + error text); the client then sends `done BYTES FILE`
//!   once the file is safely written, and the server records it in `backup-last.json`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::clock::now_ms;
use crate::exam::{Exam, SessionStatus};
use crate::store::{Store, Table};

pub(crate) const SOCKET: &str = "control.sock";
/// Longest path a Unix socket address can hold on Linux.
const SUN_PATH_MAX: usize = 107;

// ---------------------------------------------------------------------------------------
// Facts: what doctor needs to know about the exam data, from a running server or the store

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct PackageFact {
    pub(crate) id: String,
    pub(crate) version: u32,
    pub(crate) title: String,
    pub(crate) upt: String,
    pub(crate) created: String,
    pub(crate) participants: usize,
    /// The package's time zone (`+07:00`), in which its session times are written.
    #[serde(default)]
    pub(crate) timezone: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct SessionFact {
    pub(crate) key: String,
    pub(crate) state: String,
    pub(crate) date: String,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) room: String,
    pub(crate) participants: usize,
    pub(crate) items: u32,
    pub(crate) running: usize,
    pub(crate) finished: usize,
    pub(crate) release_code: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct Facts {
    /// Set when a running server answered.
    pub(crate) server_pid: Option<u32>,
    pub(crate) server_version: Option<String>,
    pub(crate) server_listen: Option<String>,
    pub(crate) server_tls: bool,
    pub(crate) server_started_ms: i64,
    pub(crate) clock_jump_max_ms: i64,
    pub(crate) clock_jump_at_ms: i64,
    pub(crate) now_ms: i64,
    /// Last durable "alive" heartbeat in the store.
    pub(crate) alive_ms: i64,
    pub(crate) trusted_keys: usize,
    pub(crate) packages: Vec<PackageFact>,
    pub(crate) sessions: Vec<SessionFact>,
    pub(crate) answers: usize,
    pub(crate) store_bytes: u64,
}

/// The facts of an exam state (shared by the server and the offline path).
pub(crate) fn facts(ex: &Exam, store: &Store, dir: &Path, trusted_keys: usize) -> Facts {
    let packages = ex
        .catalog
        .values()
        .map(|p| PackageFact {
            id: p.header.package_id.clone(),
            version: p.header.version,
            title: p.header.title.clone(),
            upt: p.header.upt.clone(),
            created: p.header.created.clone(),
            participants: p.roster.len(),
            timezone: p.manifest.timezone.clone(),
        })
        .collect();
    let sessions = ex
        .sessions
        .values()
        .map(|s| {
            let info = ex.catalog.get(&s.package);
            let spec = info.and_then(|p| p.manifest.sessions.iter().find(|x| x.id == s.id));
            let items = spec
                .and_then(|sp| info.and_then(|p| p.test(&sp.test)))
                .map_or(0, |t| t.items);
            let participants =
                info.map_or(0, |p| p.roster.iter().filter(|r| r.session == s.id).count());
            // A closed session held in the store only has no running attempt: its
            // finished ones are counted there, without decoding them (an attempt a rule
            // brought back into memory is in the store too).
            let (running, finished) = if ex.stored_only.contains(&s.key) {
                let n = store
                    .count_prefix(Table::Attempts, &format!("{}/", s.key))
                    .unwrap_or(0);
                (0, n)
            } else {
                ex.attempts
                    .values()
                    .filter(|a| a.session == s.key)
                    .fold((0, 0), |(r, f), a| {
                        if a.is_running() {
                            (r + 1, f)
                        } else {
                            (r, f + 1)
                        }
                    })
            };
            SessionFact {
                key: s.key.to_string(),
                state: match s.status {
                    SessionStatus::Scheduled => "scheduled",
                    SessionStatus::Open { .. } => "open",
                    SessionStatus::Paused { .. } => "paused",
                    SessionStatus::Closed { .. } => "closed",
                }
                .to_string(),
                date: spec.map(|x| x.date.clone()).unwrap_or_default(),
                start: spec.map(|x| x.start.clone()).unwrap_or_default(),
                end: spec.map(|x| x.end.clone()).unwrap_or_default(),
                room: spec.map(|x| x.room.clone()).unwrap_or_default(),
                participants,
                items,
                running,
                finished,
                release_code: info.is_some_and(|p| p.header.release_code),
            }
        })
        .collect();
    Facts {
        now_ms: now_ms(),
        alive_ms: Exam::last_alive(store).unwrap_or(0),
        trusted_keys,
        packages,
        sessions,
        answers: ex
            .attempts
            .values()
            .filter(|a| !ex.stored_only.contains(&a.session))
            .map(|a| a.answers.len())
            .sum::<usize>()
            + ex.stored_only
                .iter()
                .map(|k| {
                    store
                        .count_prefix(Table::Answers, &format!("{k}/"))
                        .unwrap_or(0)
                })
                .sum::<usize>(),
        store_bytes: std::fs::metadata(dir.join(crate::store::DB_FILE)).map_or(0, |m| m.len()),
        ..Facts::default()
    }
}

// ---------------------------------------------------------------------------------------
// Server side

/// The control socket and clock watch of a running server; stops and removes the socket
/// when dropped.
pub(crate) struct Control {
    path: Option<PathBuf>,
    /// The data folder's link to a socket in the runtime directory.
    link: Option<PathBuf>,
    stop: Arc<AtomicBool>,
}

impl Drop for Control {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(p) = &self.path {
            // Wake the accept loop so it sees `stop`.
            let _ = UnixStream::connect(p);
            let _ = std::fs::remove_file(p);
        }
        if let Some(l) = &self.link {
            let _ = std::fs::remove_file(l);
        }
    }
}

/// Where the server creates its control socket: in systemd's `RuntimeDirectory=`
/// (`$RUNTIME_DIRECTORY`, /run/tuk under tuk.service; removed by systemd when the service
/// stops), else in the data folder. In the first case the data folder gets a symbolic link
/// `control.sock` to it, so `tuk backup` and `tuk doctor` find the server the same way.
fn socket_path(dir: &Path) -> PathBuf {
    match std::env::var_os("RUNTIME_DIRECTORY") {
        Some(rt) if !rt.is_empty() => {
            let first = rt
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_string();
            PathBuf::from(first).join(SOCKET)
        }
        _ => dir.join(SOCKET),
    }
}

/// Starts the control socket for `app` (listening on `listen`, HTTPS or not) and the clock
/// watch. Failing to create the socket is logged, not fatal: the exam can run without it.
pub(crate) fn start(app: Arc<App>, listen: SocketAddr, tls: bool) -> Control {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = std::thread::Builder::new()
            .name("tuk-clock".into())
            .spawn(move || crate::clock::watch_clock(stop));
    }
    remove_stale_stages(&app.dir);
    let in_dir = app.dir.join(SOCKET);
    let path = socket_path(&app.dir);
    let mut link = None;
    let path = match bind(&path) {
        Ok(listener) => {
            let stop2 = stop.clone();
            let info = Arc::new(ServerInfo {
                listen: listen.to_string(),
                tls,
                started_ms: now_ms(),
            });
            let _ = std::thread::Builder::new()
                .name("tuk-control".into())
                .spawn(move || accept_loop(listener, app, info, stop2));
            if path != in_dir {
                let _ = std::fs::remove_file(&in_dir);
                match std::os::unix::fs::symlink(&path, &in_dir) {
                    Ok(()) => link = Some(in_dir),
                    Err(e) => tracing::warn!(
                        "cannot link {} to the control socket {}: {e}",
                        in_dir.display(),
                        path.display()
                    ),
                }
            }
            Some(path)
        }
        Err(e) => {
            tracing::warn!(
                "no control socket ({e:#}): `tuk backup` and `tuk doctor` cannot reach this server"
            );
            None
        }
    };
    Control { path, link, stop }
}

/// Removes snapshot folders (`.backup-*`, `.restore-*`) a crash left in the data folder.
/// Safe at start-up: this server holds the store lock, so no backup or restore can be
/// running on this folder.
fn remove_stale_stages(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if (name.starts_with(".backup-") || name.starts_with(".restore-"))
            && e.file_type().is_ok_and(|t| t.is_dir())
        {
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => tracing::info!(
                    "removed {name}, left over from an interrupted backup or restore"
                ),
                Err(err) => tracing::warn!("cannot remove {}: {err}", e.path().display()),
            }
        }
    }
}

fn bind(path: &Path) -> Result<UnixListener> {
    if path.as_os_str().len() > SUN_PATH_MAX {
        bail!("the path {} is too long for a Unix socket", path.display());
    }
    if path.exists() {
        // The store lock guarantees no other server uses this folder: the file is stale.
        let _ = std::fs::remove_file(path);
    }
    let l =
        UnixListener::bind(path).with_context(|| format!("cannot create {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

struct ServerInfo {
    listen: String,
    tls: bool,
    started_ms: i64,
}

fn accept_loop(l: UnixListener, app: Arc<App>, info: Arc<ServerInfo>, stop: Arc<AtomicBool>) {
    for conn in l.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let app = app.clone();
        let info = info.clone();
        let _ = std::thread::Builder::new()
            .name("tuk-control-conn".into())
            .spawn(move || {
                if let Err(e) = serve_conn(conn, &app, &info) {
                    tracing::warn!("control socket: {e:#}");
                }
            });
    }
}

fn server_facts(app: &App, info: &ServerInfo) -> Facts {
    let trusted = app.trust().map_or(0, |t| t.keys().len());
    let mut f = {
        let ex = app.read();
        facts(&ex, &app.store, &app.dir, trusted)
    };
    f.server_pid = Some(std::process::id());
    f.server_version = Some(env!("CARGO_PKG_VERSION").to_string());
    f.server_listen = Some(info.listen.clone());
    f.server_tls = info.tls;
    f.server_started_ms = info.started_ms;
    f.clock_jump_max_ms = crate::clock::clock_jump_max_ms();
    f.clock_jump_at_ms = crate::clock::clock_jump_at_ms();
    f
}

fn serve_conn(conn: UnixStream, app: &App, info: &ServerInfo) -> Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    (&mut reader).take(4096).read_line(&mut line)?;
    let mut w = conn;
    match line.trim() {
        "status" => {
            let mut j = serde_json::to_vec(&server_facts(app, info))?;
            j.push(b'\n');
            w.write_all(&j)?;
        }
        "backup" => {
            w.write_all(b"ok\n")?;
            let t0 = Instant::now();
            let mut frames = FrameWriter::new(&mut w);
            match super::backup::write_archive(&app.store, &app.dir, &mut frames) {
                Ok(m) => {
                    frames.finish()?;
                    let mut done = String::new();
                    (&mut reader).take(8192).read_line(&mut done)?;
                    let mut it = done.trim().splitn(3, ' ');
                    if it.next() == Some("done") {
                        let bytes = it.next().and_then(|b| b.parse().ok()).unwrap_or(0);
                        let file = it.next().unwrap_or("").to_string();
                        super::backup::write_last(
                            &app.dir,
                            &super::backup::LastBackup {
                                at_ms: m.created_ms,
                                at: crate::clock::rfc3339(m.created_ms),
                                file,
                                bytes,
                                answers: m.counts.answers,
                            },
                        )?;
                        tracing::info!(
                            bytes,
                            answers = m.counts.answers,
                            ms = t0.elapsed().as_millis() as u64,
                            "backup taken"
                        );
                        w.write_all(b"recorded\n")?;
                    }
                }
                Err(e) => {
                    tracing::error!("backup failed: {e:#}");
                    frames.fail(&format!("{e:#}"))?;
                }
            }
        }
        other => {
            w.write_all(format!("error unknown command {other:?}\n").as_bytes())?;
        }
    }
    Ok(())
}

/// Writes data in frames so the reader knows where the archive ends and whether it is
/// whole.
struct FrameWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

const FRAME: usize = 256 * 1024;

impl<W: Write> FrameWriter<W> {
    fn new(inner: W) -> Self {
        FrameWriter {
            inner,
            buf: Vec::with_capacity(FRAME),
        }
    }
    fn emit(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut head = [0u8; 5];
        head[0] = b'D';
        head[1..].copy_from_slice(&(self.buf.len() as u32).to_be_bytes());
        self.inner.write_all(&head)?;
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        self.emit()?;
        self.inner.write_all(b"E\0\0\0\0")?;
        self.inner.flush()
    }
    fn fail(&mut self, msg: &str) -> std::io::Result<()> {
        self.buf.clear();
        let b = msg.as_bytes();
        let mut head = [0u8; 5];
        head[0] = b'X';
        head[1..].copy_from_slice(&(b.len() as u32).to_be_bytes());
        self.inner.write_all(&head)?;
        self.inner.write_all(b)?;
        self.inner.flush()
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = FRAME - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == FRAME {
            self.emit()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.emit()?;
        self.inner.flush()
    }
}

// ---------------------------------------------------------------------------------------
// Client side

/// Connects to the server running on the data folder `dir`, if there is one.
pub(crate) fn connect(dir: &Path) -> Option<UnixStream> {
    let s = UnixStream::connect(dir.join(SOCKET)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(600)));
    Some(s)
}

/// Asks a running server for its facts.
pub(crate) fn status(dir: &Path) -> Option<Facts> {
    let mut s = connect(dir)?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    s.write_all(b"status\n").ok()?;
    let mut line = String::new();
    BufReader::new(s)
        .take(16 * 1024 * 1024)
        .read_line(&mut line)
        .ok()?;
    serde_json::from_str(&line).ok()
}

/// Asks a running server for a backup, writing the archive to `out`. Returns the bytes
/// written and the connection, to [`confirm`] once the file is safely stored.
pub(crate) fn backup(mut s: UnixStream, out: &mut impl Write) -> Result<(u64, UnixStream)> {
    s.write_all(b"backup\n")?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    if line.trim() != "ok" {
        bail!("the server refused the backup: {}", line.trim());
    }
    let mut total = 0u64;
    let mut buf = vec![0u8; FRAME];
    loop {
        let mut head = [0u8; 5];
        r.read_exact(&mut head)
            .context("the server closed the connection in the middle of the backup")?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        match head[0] {
            b'D' => {
                if len > FRAME {
                    bail!("the server sent a malformed backup stream");
                }
                r.read_exact(&mut buf[..len])?;
                out.write_all(&buf[..len])?;
                total += len as u64;
            }
            b'E' => break,
            b'X' => {
                let mut msg = vec![0u8; len.min(64 * 1024)];
                r.read_exact(&mut msg)?;
                return Err(anyhow!(
                    "the server could not take the backup: {}",
                    String::from_utf8_lossy(&msg)
                ));
            }
            _ => bail!("the server sent a malformed backup stream"),
        }
    }
    Ok((total, s))
}

/// Tells the server the backup is stored (it records it for `tuk doctor`).
pub(crate) fn confirm(mut s: UnixStream, bytes: u64, file: &Path) -> Result<()> {
    let name = file.display().to_string().replace('\n', " ");
    s.write_all(format!("done {bytes} {name}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    if line.trim() != "recorded" {
        bail!("the server did not record the backup");
    }
    Ok(())
}

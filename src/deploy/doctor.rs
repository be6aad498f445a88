//! `tuk doctor`: checks a TUK server and explains, in plain words, what would get in the way
//! of the exam. Each finding is OK, INFO, WARN or FAIL; FAIL means "the exam would stop or
//! could not start" and makes the command exit non-zero.
//!
//! What is checked: the data folder (exists, initialised, permissions, writable), free disk
//! against what the sessions still to run need, whether a server runs on the folder, the
//! imported packages and sessions, the clock (behind the package, jumped back, jumped while
//! running, NTP), the listen address and port, the last backup, and the TLS files.
//!
//! It works with the server running (it asks it over the control socket: the store is
//! locked then) or stopped (it opens the store itself).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::config::Config;
use super::control::{self, Facts};
use crate::clock::now_ms;
use crate::exam::Exam;
use crate::keys::SecretKey;
use crate::store::{DB_FILE, Store, Table};

/// Disk a participant's answers and events take per item. Measured (`tuk selftest`): the
/// store grows by about 0.7 KiB per saved answer (answer, hash-chained event, redb pages);
/// 8 KiB per item leaves room for several changes per item and for the store's growth.
pub(crate) const BYTES_PER_ITEM: u64 = 8 * 1024;
/// Always keep this much free besides the estimate (logs, the OS, a staged snapshot).
pub(crate) const BASE_FREE: u64 = 64 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Ok,
    Info,
    Warn,
    Fail,
}

#[derive(Clone, Debug)]
pub(crate) struct Finding {
    pub(crate) level: Level,
    pub(crate) topic: &'static str,
    pub(crate) text: String,
    pub(crate) fix: Option<String>,
}

#[derive(Default, Debug)]
pub(crate) struct Report {
    pub(crate) findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, level: Level, topic: &'static str, text: impl Into<String>) {
        self.findings.push(Finding {
            level,
            topic,
            text: text.into(),
            fix: None,
        });
    }
    fn fix(
        &mut self,
        level: Level,
        topic: &'static str,
        text: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.findings.push(Finding {
            level,
            topic,
            text: text.into(),
            fix: Some(fix.into()),
        });
    }
    pub(crate) fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let tag = match f.level {
                Level::Ok => "OK",
                Level::Info => "INFO",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
            };
            out.push_str(&format!("{tag:<5} {}: {}\n", f.topic, f.text));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("      → {fix}\n"));
            }
        }
        let fails = self.count(Level::Fail);
        let warns = self.count(Level::Warn);
        if fails == 0 && warns == 0 {
            out.push_str("\nAll good: nothing stands in the way of the exam.\n");
        } else if fails == 0 {
            out.push_str(&format!(
                "\nThe exam can run. {warns} warning(s) above are worth fixing.\n"
            ));
        } else {
            out.push_str(&format!(
                "\n{fails} problem(s) marked FAIL would stop the exam; fix them and run `tuk doctor` again. {warns} warning(s).\n"
            ));
        }
        out
    }
}

fn mib(b: u64) -> String {
    format!("{} MiB", b / (1024 * 1024))
}

/// The disk the sessions not yet closed still need.
pub(crate) fn disk_needed(f: &Facts) -> (u64, usize) {
    let mut bytes = BASE_FREE + 2 * f.store_bytes;
    let mut people = 0;
    for s in f.sessions.iter().filter(|s| s.state != "closed") {
        people += s.participants;
        bytes += s.participants as u64 * s.items as u64 * BYTES_PER_ITEM;
    }
    (bytes, people)
}

fn probe_write(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let p = dir.join(format!(".doctor-probe-{}", std::process::id()));
    let r = (|| {
        let mut f = std::fs::File::create(&p)?;
        f.write_all(&[0u8; 4096])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&p);
    r
}

/// Runs every check for this configuration.
pub(crate) fn run(cfg: &Config) -> Report {
    let mut r = Report::default();
    let dir = cfg.data.value.as_path();
    let d = dir.display().to_string();

    // --- data folder -------------------------------------------------------------------
    let meta = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            r.fix(
                Level::Fail,
                "data folder",
                format!("{d} is a file, not a folder"),
                "give --data the folder made by `tuk init`",
            );
            return r;
        }
        Err(e) => {
            r.fix(
                Level::Fail,
                "data folder",
                format!("{d} does not exist ({e})"),
                format!("create it: tuk init --data {d}"),
            );
            return r;
        }
    };
    if !dir.join("tuk.key").is_file() || !dir.join(DB_FILE).is_file() {
        r.fix(
            Level::Fail,
            "data folder",
            format!("{d} is not a tuk data folder (no tuk.key or {DB_FILE})"),
            format!("create it: tuk init --data {d}"),
        );
        return r;
    }
    {
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o777;
        let text = format!("{d} (owner uid {}, mode {mode:03o})", meta.uid());
        if mode & 0o077 != 0 {
            r.fix(
                Level::Warn,
                "data folder",
                format!("{text}: other users can look inside; it holds the TUK's secret key"),
                format!("chmod 700 {d}"),
            );
        } else {
            r.add(Level::Ok, "data folder", text);
        }
        if let Ok(k) = std::fs::metadata(dir.join("tuk.key"))
            && k.mode() & 0o077 != 0
        {
            r.fix(
                Level::Warn,
                "data folder",
                "tuk.key can be read by other users",
                format!("chmod 600 {d}/tuk.key"),
            );
        }
    }
    match probe_write(dir) {
        Ok(()) => r.add(Level::Ok, "data folder", "writable (a test file was written and synced)"),
        Err(e) => r.fix(
            Level::Fail,
            "data folder",
            format!("cannot write in {d}: {e}; answers could not be saved"),
            "check that the disk is not full or mounted read-only (mount | grep ' ro,'), and the folder's owner",
        ),
    }

    // --- server running? and the exam facts ---------------------------------------------
    let online = control::status(dir);
    let facts: Option<Facts> = match &online {
        Some(f) => {
            r.add(
                Level::Info,
                "server",
                format!(
                    "a tuk server (version {}, pid {}) is running on this folder since {}, listening on {}{}",
                    f.server_version.clone().unwrap_or_default(),
                    f.server_pid.unwrap_or(0),
                    crate::clock::rfc3339(f.server_started_ms),
                    f.server_listen.clone().unwrap_or_default(),
                    if f.server_tls { " (HTTPS)" } else { "" }
                ),
            );
            Some(f.clone())
        }
        None => match offline_facts(dir) {
            Ok(f) => {
                r.add(
                    Level::Info,
                    "server",
                    "no tuk server is running on this folder",
                );
                Some(f)
            }
            Err(e) => {
                r.fix(
                    Level::Fail,
                    "store",
                    format!("cannot read the store: {e:#}"),
                    "if a server runs on this folder, check it with `systemctl status tuk`; otherwise restore the last backup (tuk restore FILE)",
                );
                None
            }
        },
    };

    // --- disk ------------------------------------------------------------------------------
    let free = crate::fsutil::free_bytes(dir);
    if let (Some(free), Some(f)) = (free, &facts) {
        let (estimate, people) = disk_needed(f);
        let (need, why) = match &cfg.min_free_mb {
            Some(m) => (
                m.value * 1024 * 1024,
                format!("min_free_mb = {} ({})", m.value, m.source),
            ),
            None => (
                estimate,
                format!(
                    "{people} participant(s) in sessions not yet closed, a snapshot for backups and a margin"
                ),
            ),
        };
        let text = format!(
            "{} free on the disk of {d}; about {} needed for {why}",
            mib(free),
            mib(need)
        );
        if free < need {
            r.fix(Level::Fail, "disk", format!("{text}: not enough, saving answers would fail"), "free space (old backups, logs: journalctl --vacuum-size=100M) or move the data folder to a larger disk");
        } else if free < 2 * need {
            r.fix(
                Level::Warn,
                "disk",
                format!("{text}: tight"),
                "free some space before the exam",
            );
        } else {
            r.add(Level::Ok, "disk", text);
        }
    } else if free.is_none() {
        r.add(
            Level::Warn,
            "disk",
            format!("cannot read the free space of {d}"),
        );
    }

    write_cache_check(&mut r, dir);
    if let Some(f) = &facts {
        exam_checks(&mut r, f, online.is_some());
        clock_checks(&mut r, f, online.is_some());
    }
    listen_checks(&mut r, cfg.listen.value, online.as_ref());
    backup_checks(&mut r, dir, facts.as_ref());
    tls_checks(&mut r, cfg);
    r
}

/// The data folder's disk and whether it has a volatile write cache, from
/// `/sys/dev/block/MAJOR:MINOR/queue/write_cache` (of the whole disk for a partition):
/// `write back` means a flush must reach the platters/flash through a cache that a power
/// cut can lose unless the disk honours flushes (docs/time.md, "What a real power cut can
/// still lose"). `None` when the kernel does not say (tmpfs, some virtual disks).
pub(crate) fn write_cache(dir: &Path) -> Option<(String, String)> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let node = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    // A partition's queue/ is its parent disk's.
    for p in [node.clone(), node.parent()?.to_path_buf()] {
        if let Ok(mode) = std::fs::read_to_string(p.join("queue/write_cache")) {
            let name = p.file_name()?.to_string_lossy().into_owned();
            return Some((name, mode.trim().to_string()));
        }
    }
    None
}

fn write_cache_check(r: &mut Report, dir: &Path) {
    match write_cache(dir) {
        Some((disk, mode)) if mode == "write back" => r.fix(
            Level::Warn,
            "disk",
            format!(
                "disk {disk} has a volatile write cache (\"write back\"): answers are flushed with fsync, which is safe only if the disk honours flushes"
            ),
            "for a power cut without loss use a UPS, or a disk with power-loss protection; an old or USB disk that ignores flushes can lose the last seconds (docs/time.md)",
        ),
        Some((disk, mode)) => r.add(
            Level::Ok,
            "disk",
            format!("disk {disk} write cache: {mode}"),
        ),
        None => {}
    }
}

fn offline_facts(dir: &Path) -> Result<Facts> {
    let key = Arc::new(SecretKey::read(&dir.join("tuk.key"))?);
    let store = Arc::new(Store::open(dir)?);
    let trusted = store.scan(Table::Trust)?.len();
    let ex = Exam::load(&store, key)?;
    Ok(control::facts(&ex, &store, dir, trusted))
}

fn exam_checks(r: &mut Report, f: &Facts, _online: bool) {
    if f.packages.is_empty() {
        r.fix(
            Level::Fail,
            "package",
            "no question package is imported: the exam cannot start",
            if f.trusted_keys == 0 {
                "trust the UPT key, then import: tuk trust add UPT.pub; tuk package import FILE.tukpkg"
            } else {
                "import the package from the UPT: tuk package import FILE.tukpkg (or Admin → Impor)"
            },
        );
    }
    for p in &f.packages {
        r.add(
            Level::Ok,
            "package",
            format!(
                "{} version {} \"{}\" from {}: {} participant row(s)",
                p.id, p.version, p.title, p.upt, p.participants
            ),
        );
    }
    let left: Vec<_> = f.sessions.iter().filter(|s| s.state != "closed").collect();
    if !f.packages.is_empty() && left.is_empty() {
        r.fix(
            Level::Warn,
            "sessions",
            "every session is closed: nothing left to run",
            "import the next package from the UPT",
        );
    }
    for s in &f.sessions {
        let mut text = format!(
            "{} {} on {} {}–{} in {}: {} participant(s), {} item(s) each",
            s.key, s.state, s.date, s.start, s.end, s.room, s.participants, s.items
        );
        if s.running + s.finished > 0 {
            text.push_str(&format!("; {} running, {} finished", s.running, s.finished));
        }
        if s.release_code && s.state == "scheduled" {
            text.push_str("; needs the release code from the UPT to open");
        }
        r.add(Level::Info, "sessions", text);
    }
}

/// The name Indonesians use for a UTC offset in seconds: WIB (+07:00), WITA (+08:00), WIT
/// (+09:00), otherwise `UTC+hh:mm`.
pub(crate) fn zone_name(offset_s: i32) -> String {
    match offset_s {
        25_200 => "WIB".into(),
        28_800 => "WITA".into(),
        32_400 => "WIT".into(),
        o => format!("UTC{}", offset_text(o)),
    }
}

/// `+07:00` for 25200 s.
fn offset_text(o: i32) -> String {
    format!(
        "{}{:02}:{:02}",
        if o < 0 { '-' } else { '+' },
        o.abs() / 3600,
        o.abs() % 3600 / 60
    )
}

/// The time zone the clock is shown in: that of the newest imported package (its session
/// times are written in it), else WIB. The second value says where it came from.
fn lab_zone(f: &Facts) -> (i32, String) {
    let newest = f
        .packages
        .iter()
        .filter_map(|p| {
            let off = crate::package::model::parse_offset(&p.timezone).ok()?;
            Some((p.created.clone(), off, p.id.clone()))
        })
        .max();
    match newest {
        Some((_, off, id)) => (off, format!("the time zone of package {id}")),
        None => (
            7 * 3600,
            "no package imported yet; a package carries its own time zone".into(),
        ),
    }
}

fn clock_checks(r: &mut Report, f: &Facts, online: bool) {
    let now = now_ms();
    let (off, zone_source) = lab_zone(f);
    let zone = zone_name(off);
    let year = time::OffsetDateTime::from_unix_timestamp(now / 1000)
        .map(|t| t.year())
        .unwrap_or(1970);
    let newest_pkg = f
        .packages
        .iter()
        .filter_map(|p| {
            time::OffsetDateTime::parse(&p.created, &time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(|t| t.unix_timestamp() * 1000)
        .max();
    let mut bad = false;
    if year < 2024 {
        bad = true;
        r.fix(
            Level::Fail,
            "clock",
            format!(
                "the clock says {}: the date is wrong (flat BIOS battery?)",
                crate::clock::local(now, off)
            ),
            "set the date and time: sudo timedatectl set-time 'YYYY-MM-DD HH:MM:SS'",
        );
    } else if let Some(created) = newest_pkg
        && now + 86_400_000 < created
    {
        bad = true;
        r.fix(
            Level::Fail,
            "clock",
            format!(
                "the clock ({}) is earlier than the package was made ({}): the date is wrong",
                crate::clock::rfc3339(now),
                crate::clock::rfc3339(created)
            ),
            "set the date and time: sudo timedatectl set-time 'YYYY-MM-DD HH:MM:SS'",
        );
    }
    if !online && f.alive_ms > now + 5_000 {
        bad = true;
        r.fix(
            Level::Fail,
            "clock",
            format!(
                "the clock ({}) is earlier than when the server last ran ({}): it was set back; deadlines would be wrong",
                crate::clock::rfc3339(now),
                crate::clock::rfc3339(f.alive_ms)
            ),
            "set the correct time before starting the server (sudo timedatectl set-time 'YYYY-MM-DD HH:MM:SS'); `tuk serve` refuses to serve running attempts until then, or starts with every open session paused with `tuk serve --start-paused` (docs/time.md)",
        );
    }
    if online && f.clock_jump_max_ms != 0 {
        r.fix(
            Level::Warn,
            "clock",
            format!(
                "the clock jumped by {:+} s at {} while the server ran; running deadlines were shifted by the same amount, so nobody gained or lost time",
                f.clock_jump_max_ms / 1000,
                crate::clock::rfc3339(f.clock_jump_at_ms)
            ),
            "check that the time is right now; the step is in each running session's event log and minutes",
        );
    }
    if !bad {
        r.add(
            Level::Ok,
            "clock",
            format!(
                "server time now: {} {zone} (UTC{}, {zone_source}; compare it with your watch)",
                crate::clock::local(now, off),
                offset_text(off)
            ),
        );
    }
    match ntp_synchronized() {
        Some(true) => r.add(Level::Ok, "clock", "synchronised with NTP"),
        Some(false) => r.add(
            Level::Info,
            "clock",
            "not synchronised with NTP (normal without internet: check the time by hand)",
        ),
        None => {}
    }
}

/// `timedatectl show -p NTPSynchronized --value`, if it answers within 2 s.
fn ntp_synchronized() -> Option<bool> {
    let mut child = std::process::Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if t0.elapsed() > Duration::from_secs(2) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut out = String::new();
    use std::io::Read;
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    match out.trim() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn listen_checks(r: &mut Report, addr: SocketAddr, online: Option<&Facts>) {
    let ours = online
        .and_then(|f| f.server_listen.as_deref())
        .and_then(|l| l.parse::<SocketAddr>().ok())
        .is_some_and(|l| l.port() == addr.port());
    if ours {
        r.add(
            Level::Ok,
            "listen",
            format!("{addr} is served by the running tuk server"),
        );
    } else {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => {
                drop(l);
                r.add(Level::Ok, "listen", format!("{addr} is free"));
            }
            Err(e) => {
                let (text, fix) = match e.kind() {
                    std::io::ErrorKind::AddrInUse => (
                        format!("port {} is already used by another program", addr.port()),
                        format!("find it with `ss -ltnp 'sport = :{}'` and stop it, or choose another port (listen in /etc/tuk/tuk.toml)", addr.port()),
                    ),
                    std::io::ErrorKind::AddrNotAvailable => (
                        format!("{} is not an address of this machine", addr.ip()),
                        "use 0.0.0.0 (every network card) or one of the addresses `ip -br addr` shows".to_string(),
                    ),
                    std::io::ErrorKind::PermissionDenied => (
                        format!("port {} needs privileges (below 1024)", addr.port()),
                        "use port 8080, or give the service CAP_NET_BIND_SERVICE (see README)".to_string(),
                    ),
                    _ => (format!("cannot listen on {addr}: {e}"), "check the listen setting".to_string()),
                };
                r.fix(Level::Fail, "listen", text, fix);
            }
        }
    }
    let scheme = if online.is_some_and(|f| f.server_tls) {
        "https"
    } else {
        "http"
    };
    let urls: Vec<String> = crate::server::urls(addr)
        .into_iter()
        .map(|u| u.replacen("http", scheme, 1))
        .collect();
    let lan: Vec<&String> = urls.iter().filter(|u| !u.contains("//127.")).collect();
    if addr.ip().is_unspecified() && lan.is_empty() {
        r.fix(
            Level::Warn,
            "listen",
            "this machine has no network address besides 127.0.0.1: lab PCs cannot reach it",
            "plug in the LAN cable and check `ip -br addr`",
        );
    }
    for u in lan {
        r.add(Level::Info, "listen", format!("lab PCs open {u}"));
    }
}

fn backup_checks(r: &mut Report, dir: &Path, f: Option<&Facts>) {
    let running = f.is_some_and(|f| {
        f.sessions
            .iter()
            .any(|s| s.state == "open" || s.state == "paused")
    });
    match super::backup::read_last(dir) {
        None => r.fix(
            Level::Warn,
            "backup",
            "no backup has been taken of this data folder",
            "tuk backup -o /media/usb/tuk.tar (or enable the timer: systemctl enable --now tuk-backup.timer)",
        ),
        Some(b) => {
            let age_min = (now_ms() - b.at_ms).max(0) / 60_000;
            let text = format!("last backup {} ({} min ago): {} ({} answers, {} bytes)", b.at, age_min, b.file, b.answers, b.bytes);
            if running && age_min > 15 {
                r.fix(Level::Warn, "backup", format!("{text}; a session is open"), "take backups every few minutes during the exam: systemctl enable --now tuk-backup.timer");
            } else if age_min > 24 * 60 {
                r.fix(Level::Warn, "backup", format!("{text}: more than a day old"), "tuk backup -o FILE");
            } else {
                r.add(Level::Ok, "backup", text);
            }
        }
    }
}

fn tls_checks(r: &mut Report, cfg: &Config) {
    let Some((cert, key)) = cfg.tls() else {
        r.add(
            Level::Info,
            "tls",
            "plain HTTP (fine on an isolated wired LAN; HTTPS: tuk init --self-signed)",
        );
        return;
    };
    if let Err(e) = crate::server::tls::load(cert, key) {
        r.fix(
            Level::Fail,
            "tls",
            format!("{e:#}"),
            "fix the files, or make new ones: tuk init --self-signed",
        );
        return;
    }
    match crate::server::tls::read_cert_info(cert) {
        Err(e) => r.add(Level::Warn, "tls", format!("{e:#}")),
        Ok(info) => {
            let now = now_ms();
            let days = (info.not_after_ms - now) / 86_400_000;
            if now > info.not_after_ms {
                r.fix(
                    Level::Fail,
                    "tls",
                    format!(
                        "the certificate {} expired on {}",
                        cert.display(),
                        crate::clock::rfc3339(info.not_after_ms)
                    ),
                    "make a new one: tuk init --self-signed (after removing the old files)",
                );
            } else if now < info.not_before_ms {
                r.fix(
                    Level::Fail,
                    "tls",
                    format!(
                        "the certificate is valid only from {} (is the clock right?)",
                        crate::clock::rfc3339(info.not_before_ms)
                    ),
                    "check the date",
                );
            } else if days < 30 {
                r.fix(
                    Level::Warn,
                    "tls",
                    format!("the certificate expires in {days} day(s)"),
                    "make a new one before the exam",
                );
            } else {
                r.add(
                    Level::Ok,
                    "tls",
                    format!(
                        "certificate valid until {}, SHA-256 {}",
                        crate::clock::rfc3339(info.not_after_ms),
                        info.fingerprint
                    ),
                );
            }
            let missing: Vec<String> = crate::server::tls::local_names()
                .into_iter()
                .filter(|n| n.parse::<std::net::Ipv4Addr>().is_ok() && !n.starts_with("127."))
                .filter(|n| !info.names.contains(n))
                .collect();
            if !missing.is_empty() {
                r.fix(
                    Level::Warn,
                    "tls",
                    format!("the certificate does not name {} (the address changed?): browsers will refuse it there", missing.join(", ")),
                    "make a new certificate: remove the old files, then tuk init --self-signed",
                );
            }
        }
    }
}

//! The systemd unit started by a real systemd (issue 16): the test boots systemd as PID 1
//! of a container it makes itself, installs the freshly built `.deb` there with `dpkg -i`,
//! starts `tuk.service` (`Type=notify`: `systemctl start` returns when the server said
//! READY=1), logs a participant in on the container's own loopback, kills the server with
//! `kill -9`, sees systemd restart it and the downtime credited (API, journal, event log),
//! and stops it cleanly. It also prints `systemd-analyze security tuk.service`.
//!
//! systemd never runs on the host's root file system: `tests/fixtures/systemd-ns.sh` gives
//! it an overlay (lower layer: the host's `/`, read only; upper layer: a tmpfs) in new mount,
//! PID, network, UTS, IPC and cgroup namespaces, with private `/proc` (`/proc/sys` read
//! only), `/sys` (read only), `/sys/fs/cgroup`, `/dev`, `/tmp`, `/run` and `/var/tmp`, and
//! without the capabilities that act on the whole machine. Everything it writes vanishes
//! with the namespace. Needs root (CI runs as root); without it the test says why and
//! passes.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use common::{Client, Prepared, bin, repo};

const SESSION: &str = "demo-kk-a-2026/S1";
/// The package's maintainer for this build (`DEB_MAINTAINER`, packaging/build-deb.sh).
const MAINTAINER: &str = "Budi Santoso <budi.santoso@smkn1-contoh.sch.id>";
/// How long systemd may take to boot the basic system on a busy 2-core machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The host's cgroup2 hierarchy (`/sys/fs/cgroup` on a unified host,
/// `/sys/fs/cgroup/unified` on a hybrid one), from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next() != Some("cgroup2") {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// Removes a cgroup directory and every child cgroup systemd made in it, deepest first.
/// Cgroups of processes that just died may stay busy a moment: a few bounded retries.
fn remove_cgroup(dir: &Path) {
    fn dirs(d: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = fs::read_dir(d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs(&e.path(), out);
                }
            }
        }
        out.push(d.to_path_buf());
    }
    for _ in 0..50 {
        let mut all = Vec::new();
        dirs(dir, &mut all);
        for d in &all {
            let _ = fs::remove_dir(d);
        }
        if !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("note: could not remove the test cgroup {}", dir.display());
}

/// systemd as PID 1 of its own namespaces and root file system.
struct Container {
    unshare: Child,
    /// PID 1 of the container, as the host sees it.
    pid1: u32,
    cgroup: PathBuf,
    console: PathBuf,
}

impl Container {
    /// Boots systemd; `Err` carries what went wrong, with the console output.
    fn boot(work: &Path) -> Result<Container, String> {
        let cg2 = cgroup2_mount().ok_or("no cgroup2 hierarchy is mounted on this machine")?;
        let cgroup = cg2.join(format!("tuk-systemd-test-{}", std::process::id()));
        let console = work.join("console.log");
        let log = fs::File::create(&console).map_err(|e| e.to_string())?;
        let unshare = Command::new("unshare")
            .args([
                "--mount",
                "--pid",
                "--fork",
                "--uts",
                "--ipc",
                "--net",
                "--propagation",
                "private",
                "--",
                "bash",
            ])
            .arg(repo().join("tests/fixtures/systemd-ns.sh"))
            .arg(work)
            .arg(&cgroup)
            .arg(repo().join("tests/fixtures/systemd-boot.sh"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let upid = unshare.id();
        let mut c = Container {
            unshare,
            pid1: 0,
            cgroup,
            console,
        };
        // The container's PID 1 is unshare's only child; it becomes systemd after the
        // set-up script's exec chain.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(st)) = c.unshare.try_wait() {
                return Err(format!(
                    "the container ended before systemd ran ({st}):\n{}",
                    c.console()
                ));
            }
            let children = fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))
                .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next()
                && fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "systemd\n")
            {
                c.pid1 = pid.parse().map_err(|_| "bad pid")?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if c.pid1 == 0 {
            return Err(format!("systemd did not start:\n{}", c.console()));
        }
        // Booted: the manager reached its target (or says why not).
        let t0 = Instant::now();
        loop {
            let o = c.sh("systemctl is-system-running");
            let state = text(&o).trim().to_string();
            if state == "running" {
                return Ok(c);
            }
            if state == "degraded" {
                let failed = text(&c.sh("systemctl --failed --no-pager"));
                return Err(format!("systemd booted degraded:\n{failed}"));
            }
            if t0.elapsed() > BOOT_TIMEOUT {
                return Err(format!(
                    "systemd did not finish booting in {BOOT_TIMEOUT:?} (state {state:?}):\n{}\n{}",
                    text(&c.sh("systemctl list-jobs --no-pager")),
                    c.console()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn console(&self) -> String {
        fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Runs a shell command inside the container (all its namespaces, its root).
    fn sh(&self, cmd: &str) -> Output {
        Command::new("nsenter")
            .args([
                "--target",
                &self.pid1.to_string(),
                "--all",
                "--root",
                "--wd",
            ])
            .args(["--", "/bin/sh", "-c", cmd])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("SYSTEMD_PAGER", "")
            .env("SYSTEMD_COLORS", "0")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// Like [`Container::sh`], and panics with the output if the command fails.
    #[track_caller]
    fn ok(&self, cmd: &str) -> String {
        let o = self.sh(cmd);
        assert!(
            o.status.success(),
            "`{cmd}` failed in the container:\n{}",
            text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Properties of a unit (`systemctl show -p …`).
    fn show(&self, unit: &str, props: &[&str]) -> BTreeMap<String, String> {
        self.ok(&format!("systemctl show {unit} -p {}", props.join(",")))
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The container's view of a path, from the host (while the container runs).
    fn path(&self, p: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{p}", self.pid1))
    }

    /// Runs `f` on a thread inside the container's network namespace (its own loopback).
    fn in_net<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = fs::File::open(format!("/proc/{}/ns/net", self.pid1)).expect("net namespace");
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on a valid namespace descriptor changes only this thread's
                // network namespace; the thread ends with the scope.
                let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("thread in the container's network")
        })
    }

    /// Powers the container off (SIGRTMIN+4 to its systemd), bounded; then SIGKILL.
    fn power_off(&mut self) -> bool {
        if self.pid1 == 0 {
            return true;
        }
        // SAFETY: kill with a valid signal number to a PID we started.
        unsafe { libc::kill(self.pid1 as i32, libc::SIGRTMIN() + 4) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.unshare.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.unshare.try_wait().ok().flatten().is_none() {
            if self.pid1 != 0 {
                // SIGKILL to a PID namespace's init ends every process in it.
                // SAFETY: kill to a PID we started.
                unsafe { libc::kill(self.pid1 as i32, libc::SIGKILL) };
            }
            let _ = self.unshare.kill();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.unshare.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        remove_cgroup(&self.cgroup);
    }
}

/// The `.deb` of this tree: `packaging/build-deb.sh` with the release binary when it is
/// built (`.ci/run` builds it), else with a stripped copy of the test build.
fn build_deb(dir: &Path) -> PathBuf {
    let release = repo().join("target/x86_64-unknown-linux-gnu/release/tuk");
    let binary = dir.join("tuk");
    let from = if release.exists() {
        release
    } else {
        PathBuf::from(bin())
    };
    let cp = Command::new("cp").arg(&from).arg(&binary).status().unwrap();
    assert!(cp.success(), "cp {}", from.display());
    let st = Command::new("strip").arg(&binary).status().unwrap();
    assert!(st.success(), "strip");
    let o = Command::new(repo().join("packaging/build-deb.sh"))
        .env("TUK_DEB_BIN", &binary)
        .env("OUT", dir)
        .env("DEB_MAINTAINER", MAINTAINER)
        .env("DEB_COMPRESSION", "none")
        .output()
        .expect("packaging/build-deb.sh");
    assert!(o.status.success(), "{}", text(&o));
    dir.join(format!("tuk_{}-1_amd64.deb", env!("CARGO_PKG_VERSION")))
}

/// A participant: login, start, one saved answer.
async fn participant_begins(c: &Client, number: &str, password: &str, token: &str) {
    let v = c
        .post(
            "/api/v1/login",
            &json!({"participant": number, "password": password}),
        )
        .await
        .assert_ok();
    assert_eq!(v["participant"], number);
    c.post("/api/v1/start", &json!({"token": token}))
        .await
        .assert_ok();
    let item = c.get("/api/v1/items/1").await.assert_ok();
    let id = item["id"].as_str().expect("item id").to_string();
    let option = item["options"][0]["id"]
        .as_str()
        .expect("option id")
        .to_string();
    let saved = c
        .put(
            &format!("/api/v1/answers/{id}"),
            &json!({"choice": [option], "doubtful": false, "seq": 1}),
        )
        .await
        .assert_ok();
    assert_eq!(saved["saved"], true);
    let st = c.get("/api/v1/state").await.assert_ok();
    assert_eq!(st["answered"], 1);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn tuk_service_under_a_real_systemd() {
    if !is_root() {
        eprintln!(
            "note: not root: the container for systemd (mount, PID, network and cgroup \
             namespaces, an overlay root) needs root; tuk.service was not booted"
        );
        return;
    }
    for tool in ["unshare", "nsenter", "setpriv", "dpkg-deb"] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("note: {tool} is missing; tuk.service was not booted");
            return;
        }
    }
    if !Path::new("/lib/systemd/systemd").exists() {
        eprintln!("note: systemd is not installed (apt-get install systemd); not booted");
        return;
    }
    let t_all = Instant::now();
    // The work folder must be outside /tmp: the container has its own /tmp, and sees the
    // host's files only through the overlay's lower layer (the .deb and the data are read
    // from there).
    let work = tempfile::Builder::new()
        .prefix("systemd-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("work folder");
    let t = Instant::now();
    let deb = build_deb(work.path());
    eprintln!("packaging/build-deb.sh: {:?}", t.elapsed());
    let t = Instant::now();
    let p = Prepared::new(|_| {}, SESSION);
    eprintln!("prepared data folder: {:?}", t.elapsed());
    let data = work.path().join("data");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&p.data)
        .arg(&data)
        .status()
        .unwrap();
    assert!(cp.success());
    let (number, password) = p.logins[0].clone();

    let t_boot = Instant::now();
    let mut c = match Container::boot(work.path()) {
        Ok(c) => c,
        Err(e) => panic!("cannot boot systemd in a namespace on this machine: {e}"),
    };
    eprintln!("systemd booted in its container in {:?}", t_boot.elapsed());
    // Inside: the root is the overlay, /tmp is private.
    let mounts = c.ok(
        "for m in / /tmp /run /sys/fs/cgroup; do findmnt -n -o TARGET,FSTYPE --mountpoint $m; done",
    );
    assert!(mounts.contains("overlay"), "{mounts}");
    for m in ["/tmp", "/run"] {
        assert!(
            mounts
                .lines()
                .any(|l| l.starts_with(m) && l.contains("tmpfs")),
            "{m}: {mounts}"
        );
    }

    // Install the package as a technician does.
    // (man-db's index update, seconds of dpkg's time, is off in this throw-away root.)
    c.ok("rm -f /var/lib/man-db/auto-update");
    let t = Instant::now();
    let out = c.ok(&format!("dpkg -i {} 2>&1", deb.display()));
    eprintln!("dpkg -i: {:?}", t.elapsed());
    eprintln!("dpkg -i:\n{out}");
    assert!(out.contains("sudo tuk init"), "{out}");
    let field = c.ok("dpkg-query -W -f '${Maintainer}' tuk");
    assert_eq!(field, MAINTAINER);
    let unit = c.ok("systemctl cat tuk.service");
    assert!(unit.contains("Type=notify"), "{unit}");
    // The prepared store (package imported, session open) takes the place of `tuk init`;
    // the test shortens the watchdog so that a missing ping would show within seconds.
    c.ok(&format!(
        "cp -a {}/. /var/lib/private/tuk/ && mkdir -p /etc/systemd/system/tuk.service.d && \
         printf '[Service]\\nWatchdogSec=3\\n' > /etc/systemd/system/tuk.service.d/test.conf && \
         systemctl daemon-reload",
        data.display()
    ));

    // Type=notify: `systemctl start` returns once the server said READY=1, so the port
    // answers at once, without a retry.
    let t_start = Instant::now();
    c.ok("systemctl start tuk.service");
    let start_took = t_start.elapsed();
    let server = "127.0.0.1:8080".parse().unwrap();
    let first = c.in_net(|| runtime().block_on(async { Client::new(server).get("/cek").await }));
    assert_eq!(
        first.status,
        200,
        "/cek right after start: {}",
        first.text()
    );
    eprintln!("systemctl start tuk.service returned after {start_took:?}; /cek answered 200");
    let s = c.show(
        "tuk.service",
        &[
            "ActiveState",
            "SubState",
            "Type",
            "MainPID",
            "NRestarts",
            "WatchdogUSec",
            "StatusErrno",
        ],
    );
    assert_eq!(s["ActiveState"], "active", "{s:?}");
    assert_eq!(s["SubState"], "running", "{s:?}");
    assert_eq!(s["Type"], "notify");
    assert_eq!(s["WatchdogUSec"], "3s");
    let pid_a = s["MainPID"].clone();
    // DynamicUser: the server does not run as root; its state directory belongs to it.
    let status = c.ok(&format!("cat /proc/{pid_a}/status"));
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("")
        .to_string();
    assert!(!uid.is_empty() && uid != "0", "server uid {uid:?}");
    let owner = c.ok("stat -c %u /var/lib/private/tuk/");
    assert_eq!(owner.trim(), uid, "state directory owner");
    // RuntimeDirectory: the control socket lives in /run/tuk.
    c.ok("test -S /run/tuk/control.sock");

    // A participant logs in on the container's loopback and saves an answer.
    let client = Client::new(server);
    c.in_net(|| runtime().block_on(participant_begins(&client, &number, &password, &p.token)));

    // Past the 3 s watchdog: the pings keep the service alive.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(t_start.elapsed()));
    let s = c.show("tuk.service", &["ActiveState", "NRestarts", "MainPID"]);
    assert_eq!(
        (s["ActiveState"].as_str(), s["NRestarts"].as_str()),
        ("active", "0"),
        "the watchdog killed the server: {s:?}\n{}",
        c.sh("journalctl -u tuk --no-pager -o cat")
            .stdout
            .escape_ascii()
    );

    // kill -9: systemd restarts it (Restart=on-failure, RestartSec=2).
    let remaining = || {
        c.in_net(|| {
            runtime().block_on(async {
                let st = client.get("/api/v1/state").await.assert_ok();
                (st["remaining_ms"].as_i64().expect("remaining_ms"), st)
            })
        })
    };
    let (r0, _) = remaining();
    let t_kill = Instant::now();
    c.ok(&format!("kill -9 {pid_a}"));
    let mut restarted = None;
    while t_kill.elapsed() < Duration::from_secs(60) {
        let s = c.show(
            "tuk.service",
            &["ActiveState", "SubState", "NRestarts", "MainPID"],
        );
        if s["NRestarts"] == "1" && s["SubState"] == "running" && s["MainPID"] != pid_a {
            restarted = Some(t_kill.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let restarted = restarted.unwrap_or_else(|| {
        panic!(
            "not restarted within 60 s:\n{}",
            text(&c.sh("systemctl status tuk --no-pager; journalctl -u tuk --no-pager -o cat"))
        )
    });
    eprintln!("kill -9: systemd had tuk running again after {restarted:?}");
    let (r1, st) = remaining();
    let elapsed = t_kill.elapsed().as_millis() as i64;
    eprintln!("remaining {r0} ms before the kill, {r1} ms after, {elapsed} ms later");
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["answered"], 1, "the saved answer survived: {st}");
    assert!(
        r0 - r1 < elapsed - 1_000,
        "the downtime was not credited: {r0} → {r1} over {elapsed} ms"
    );
    let journal = c.ok("journalctl -u tuk --no-pager -o cat");
    assert!(
        journal.contains("the server was down for"),
        "the restart reports the credit:\n{journal}"
    );

    // systemd-analyze security: the exposure score of the unit, as installed.
    let sec = text(&c.sh("systemd-analyze security tuk.service --no-pager"));
    let overall = sec
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or("(no overall line)")
        .to_string();
    eprintln!("systemd-analyze security tuk.service: {overall}");
    for l in sec.lines().filter(|l| l.contains('✗')) {
        eprintln!("  exposed: {}", l.trim());
    }
    let score: f64 = overall
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score:\n{sec}"));
    assert!(score <= 2.0, "exposure {score} (was 1.x):\n{sec}");

    // A clean stop: SIGTERM, the store closed, result success.
    c.ok("systemctl stop tuk.service");
    let s = c.show("tuk.service", &["ActiveState", "Result", "ExecMainStatus"]);
    assert_eq!(s["ActiveState"], "inactive", "{s:?}");
    assert_eq!(s["Result"], "success", "{s:?}");
    let journal = c.ok("journalctl -u tuk --no-pager -o cat");
    assert!(journal.contains("stopped cleanly"), "{journal}");

    // The event log holds the credit (the store, read from the host while the container
    // still runs).
    let store = tuk::store::Store::open(&c.path("/var/lib/private/tuk")).expect("store");
    let credits: Vec<i64> = store
        .scan(tuk::store::Table::Events)
        .expect("events")
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice::<tuk::exam::events::Record>(&v).ok())
        .filter_map(|r| match r.event {
            tuk::exam::events::Event::DowntimeCredit { credited_ms, .. } => Some(credited_ms),
            _ => None,
        })
        .collect();
    drop(store);
    assert_eq!(credits.len(), 1, "one downtime credit: {credits:?}");
    let credited = credits[0];
    assert!(
        (1_000..=elapsed + 1_000).contains(&credited),
        "credited {credited} ms for a {elapsed} ms outage"
    );
    eprintln!("downtime_credit event: {credited} ms");

    assert!(
        c.power_off(),
        "the container did not power off:\n{}",
        c.console()
    );
    drop(c);
    let mut leftover = String::new();
    let _ = fs::File::open("/proc/self/mountinfo").map(|mut f| f.read_to_string(&mut leftover));
    assert!(
        !leftover.contains("tuk-ns-"),
        "a container mount is visible on the host"
    );
    eprintln!("whole systemd test: {:?}", t_all.elapsed());
}

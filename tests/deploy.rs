//! Deployment as a technician does it (issue 6): the static binary, the configuration's
//! precedence, `tuk doctor` on healthy and broken data folders, backup under load and
//! restore, SIGTERM under load, systemd readiness and journald logs, HTTPS with a
//! self-signed certificate, the lab check (`/cek`), `/metrics` and `tuk selftest`.
//!
//! Every test runs the real binary on its own temporary folder and port. Tests that need
//! root (a read-only bind mount, a small tmpfs) fall back to what an unprivileged user can
//! do and say so on stderr.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;

use common::{Prepared, Server, bin, free_port, repo};

const SESSION: &str = "demo-kk-a-2026/S1";

/// Runs `tuk` with a clean environment (no /etc/tuk/tuk.toml, no TUK_* from outside) plus
/// `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("TUK_") || k == "JOURNAL_STREAM" || k == "NOTIFY_SOCKET" {
            c.env_remove(k);
        }
    }
    c.env("TUK_CONFIG", "none");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run tuk")
}

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

/// The participants of S1 (the roster's session column), with their passwords.
fn s1_logins(p: &Prepared) -> Vec<(String, String)> {
    let roster = std::fs::read_to_string(p.src.join("roster.csv")).unwrap();
    let s1: Vec<String> = roster
        .lines()
        .skip(1)
        .filter(|l| l.contains(",S1,"))
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    p.logins
        .iter()
        .filter(|(n, _)| s1.contains(n))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. The static binary

fn assert_static(path: &Path) {
    let ldd = Command::new("ldd").arg(path).output().expect("ldd");
    let out = text(&ldd);
    assert!(
        out.contains("statically linked") || out.contains("not a dynamic executable"),
        "{} is not static; ldd says:\n{out}",
        path.display()
    );
    let file = Command::new("file")
        .arg(path)
        .output()
        .map(|o| text(&o))
        .unwrap_or_default();
    if !file.is_empty() {
        assert!(file.contains("static"), "file says: {file}");
    }
    // Runs from an empty folder with an empty environment: nothing to find, nothing to load.
    let empty = tempfile::tempdir().unwrap();
    let copy = empty.path().join("tuk");
    copy_binary(path, &copy);
    let jail = tempfile::tempdir().unwrap();
    let o = Command::new(&copy)
        .arg("--version")
        .current_dir(jail.path())
        .env_clear()
        .output()
        .expect("run the copied binary");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("tuk {}", env!("CARGO_PKG_VERSION"))
    );
    eprintln!(
        "static: {} ({} bytes): {}",
        path.display(),
        std::fs::metadata(path).unwrap().len(),
        out.trim()
    );
}

/// Copies an executable with `cp`, so no writable descriptor of the copy is ever open in
/// this process: another test thread forking meanwhile would inherit it and the copy could
/// not be started ("Text file busy").
fn copy_binary(from: &Path, to: &Path) {
    assert!(
        sh(&["cp", &from.display().to_string(), &to.display().to_string()]),
        "cp {}",
        from.display()
    );
}

/// Starts the binary copied into an empty folder, with an empty environment, as `tuk demo`,
/// and checks that the pages and everything they load come from the binary itself.
fn assert_self_contained(path: &Path) {
    let empty = tempfile::tempdir().unwrap();
    let copy = empty.path().join("tuk");
    copy_binary(path, &copy);
    let data = empty.path().join("data");
    let mut child = Command::new(&copy)
        .args(["demo", "--port", "0", "--data", &data.display().to_string()])
        .current_dir(empty.path())
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut port = 0u16;
    let mut line = String::new();
    use std::io::BufRead;
    while out.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(p) = line.trim().strip_prefix("listening: http://127.0.0.1:") {
            port = p.trim_end_matches('/').parse().unwrap();
            break;
        }
        line.clear();
    }
    assert!(port > 0, "the demo did not start");
    let get = |path: &str| -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let t = String::from_utf8_lossy(&buf).into_owned();
        let status = t
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, t)
    };
    let mut pages = vec!["/".to_string(), "/cek".to_string()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(p) = pages.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        let (status, body) = get(&p);
        assert_eq!(status, 200, "GET {p}");
        for bad in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "src='http",
            "@import",
        ] {
            assert!(
                !body.contains(bad),
                "{p} loads something from outside the binary ({bad})"
            );
        }
        for attr in ["src=\"", "href=\""] {
            for part in body.split(attr).skip(1) {
                let url = part.split('"').next().unwrap_or("");
                if url.starts_with("/static/") || url.starts_with("/cek/") {
                    pages.push(url.to_string());
                }
            }
        }
    }
    assert!(seen.iter().any(|p| p.ends_with(".css")), "{seen:?}");
    assert!(seen.iter().any(|p| p.ends_with(".js")), "{seen:?}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn binary_is_static_and_runs_from_an_empty_folder() {
    // The binary these tests run is built with the same .cargo/config.toml.
    assert_static(Path::new(bin()));
    assert_self_contained(Path::new(bin()));
    // The release binary that ships: `.ci/run` builds it before `cargo test`.
    let release = repo().join("target/x86_64-unknown-linux-gnu/release/tuk");
    if release.exists() {
        assert_static(&release);
        assert_self_contained(&release);
    } else {
        eprintln!(
            "note: {} is not built (cargo build --release --target x86_64-unknown-linux-gnu); checked the test build only",
            release.display()
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. Configuration precedence

#[test]
fn configuration_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tuk.toml");
    std::fs::write(
        &f,
        "data = \"/srv/tuk-from-file\"\nlisten = \"127.0.0.1:9001\"\nlog = \"warn\"\nbackup_keep = 5\n",
    )
    .unwrap();
    let cfg = f.display().to_string();

    let o = run(&["config", "show", "--config", &cfg], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("data = \"/srv/tuk-from-file\""), "{t}");
    assert!(t.contains("listen = \"127.0.0.1:9001\""), "{t}");
    assert!(t.contains(&format!("# file {cfg}")), "{t}");
    assert!(t.contains("backup_keep = 5"), "{t}");

    let env = [
        ("TUK_LISTEN", "127.0.0.1:9002"),
        ("TUK_DATA", "/srv/tuk-from-env"),
    ];
    let t = text(&run(&["config", "show", "--config", &cfg], &env));
    assert!(t.contains("listen = \"127.0.0.1:9002\""), "{t}");
    assert!(t.contains("# environment TUK_LISTEN"), "{t}");
    assert!(t.contains("data = \"/srv/tuk-from-env\""), "{t}");

    let t = text(&run(
        &[
            "config",
            "show",
            "--config",
            &cfg,
            "--listen",
            "127.0.0.1:9003",
        ],
        &env,
    ));
    assert!(t.contains("listen = \"127.0.0.1:9003\""), "{t}");
    assert!(t.contains("# flag --listen"), "{t}");
    assert!(t.contains("data = \"/srv/tuk-from-env\""), "{t}");

    // TUK_CONFIG names the file like --config does; the flag wins over it.
    let t = text(&run(&["config", "show"], &[("TUK_CONFIG", cfg.as_str())]));
    assert!(t.contains("listen = \"127.0.0.1:9001\""), "{t}");

    // Defaults, with no file.
    let t = text(&run(&["config", "show"], &[]));
    assert!(t.contains("data = \"/var/lib/tuk\""), "{t}");
    assert!(t.contains("listen = \"0.0.0.0:8080\""), "{t}");

    // A typo is an error that names the key, not a silent default.
    std::fs::write(&f, "lisen = \"0.0.0.0:80\"\n").unwrap();
    let o = run(&["config", "show", "--config", &cfg], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("lisen"), "{}", text(&o));
    // A missing named file is an error too.
    let o = run(
        &["config", "show", "--config", "/nonexistent/tuk.toml"],
        &[],
    );
    assert!(!o.status.success());
}

// ---------------------------------------------------------------------------------------
// 3. tuk doctor

fn doctor(data: &Path, extra_env: &[(&str, &str)]) -> (i32, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let o = run(
        &[
            "doctor",
            "--data",
            &data.display().to_string(),
            "--listen",
            &listen,
        ],
        extra_env,
    );
    (o.status.code().unwrap_or(-1), text(&o))
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn doctor_on_healthy_and_broken_data_folders() {
    let p = Prepared::new(|_| {}, SESSION);

    // Healthy: exit 0, the package and the open session are reported.
    let (code, t) = doctor(&p.data, &[]);
    assert_eq!(code, 0, "{t}");
    assert!(t.contains("OK    data folder"), "{t}");
    assert!(t.contains("writable"), "{t}");
    assert!(t.contains("OK    package: demo-kk-a-2026 version"), "{t}");
    assert!(t.contains("demo-kk-a-2026/S1 open"), "{t}");
    assert!(t.contains("OK    disk"), "{t}");
    assert!(t.contains("OK    listen"), "{t}");
    assert!(t.contains("WARN  backup: no backup"), "{t}");
    assert!(!t.contains("FAIL"), "{t}");

    // Missing package: a folder that was only initialised.
    let bare = p.root.path().join("bare");
    let pw = p.root.path().join("pw.txt");
    std::fs::write(&pw, "admin-password-for-tests\n").unwrap();
    common::tuk(&[
        "init",
        "--data",
        &bare.display().to_string(),
        "--admin-password-file",
        &pw.display().to_string(),
    ]);
    let (code, t) = doctor(&bare, &[]);
    assert_eq!(code, 1, "{t}");
    assert!(
        t.contains("FAIL  package: no question package is imported"),
        "{t}"
    );
    assert!(
        t.contains("tuk: error: 1 problem(s) would stop the exam"),
        "{t}"
    );

    // Not a data folder at all.
    let (code, t) = doctor(&p.root.path().join("nowhere"), &[]);
    assert_eq!(code, 1, "{t}");
    assert!(t.contains("does not exist"), "{t}");

    // Port taken by another program.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let o = run(
        &[
            "doctor",
            "--data",
            &p.data.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("FAIL  listen: port {port} is already used")),
        "{}",
        text(&o)
    );
    drop(held);

    // Read-only data folder.
    let ro = p.root.path().join("ro");
    copy_dir(&p.data, &ro);
    let ro_s = ro.display().to_string();
    let mounted = is_root()
        && sh(&["mount", "--bind", &ro_s, &ro_s])
        && sh(&["mount", "-o", "remount,bind,ro", &ro_s]);
    let _guard = mounted.then(|| Mount(ro.clone()));
    if !mounted {
        eprintln!("note: no read-only bind mount (not root?): using chmod 0500 instead");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let (code, t) = doctor(&ro, &[]);
    if mounted || !is_root() {
        assert_eq!(code, 1, "{t}");
        assert!(t.contains("FAIL  data folder: cannot write in"), "{t}");
    }
    drop(_guard);

    // Nearly full disk: a small filesystem of its own (tmpfs), filled up.
    let small = p.root.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let small_s = small.display().to_string();
    let tmpfs = is_root() && sh(&["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", &small_s]);
    if tmpfs {
        let _m = Mount(small.clone());
        let data = small.join("data");
        copy_dir(&p.data, &data);
        // Plenty of room first: OK (or a "tight" warning), never FAIL.
        let (code, t) = doctor(&data, &[]);
        assert_eq!(code, 0, "{t}");
        assert!(t.contains("free on the disk of"), "{t}");
        // Fill it to ~12 MiB free: less than the sessions need.
        let free = tuk::fsutil::free_bytes(&data).unwrap();
        let filler = vec![0xa5u8; 1 << 20];
        let mut f = std::fs::File::create(small.join("filler")).unwrap();
        use std::io::Write;
        for _ in 0..(free / (1 << 20)).saturating_sub(12) {
            f.write_all(&filler).unwrap();
        }
        f.sync_all().unwrap();
        drop(f);
        let (code, t) = doctor(&data, &[]);
        assert_eq!(code, 1, "{t}");
        assert!(
            t.contains("FAIL  disk:") && t.contains("not enough, saving answers would fail"),
            "{t}"
        );
        // Completely full: the test write fails too.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(small.join("filler"))
            .unwrap();
        while f.write_all(&filler).is_ok() {}
        let _ = f.sync_all();
        let (code, t) = doctor(&data, &[]);
        assert_eq!(code, 1, "{t}");
        assert!(t.contains("FAIL  data folder: cannot write in"), "{t}");
    } else {
        eprintln!(
            "note: cannot mount a small tmpfs (not root?): simulating a full disk with TUK_MIN_FREE_MB"
        );
    }
    // The same threshold set by the technician (or simulated): FAIL with the reason.
    let (code, t) = doctor(&p.data, &[("TUK_MIN_FREE_MB", "100000000")]);
    assert_eq!(code, 1, "{t}");
    assert!(
        t.contains("min_free_mb = 100000000 (environment TUK_MIN_FREE_MB)"),
        "{t}"
    );
}

// ---------------------------------------------------------------------------------------
// Load: participants saving answers as fast as they can, recording every acknowledgement

#[derive(Clone, Debug)]
struct Ack {
    participant: String,
    item: String,
    seq: u64,
    choice: String,
    at: Instant,
}

struct Conn {
    addr: SocketAddr,
    send: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    cookie: String,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            send: None,
            cookie: String::new(),
        }
    }

    /// One request on a keep-alive connection (reconnecting once); Err when the server
    /// is gone.
    async fn req(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), String> {
        for _ in 0..2 {
            if self.send.is_none() {
                let s = tokio::net::TcpStream::connect(self.addr)
                    .await
                    .map_err(|e| e.to_string())?;
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                self.send = Some(send);
            }
            let Some(send) = self.send.as_mut() else {
                continue;
            };
            let mut b = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("host", self.addr.to_string())
                .header("content-type", "application/json");
            if !self.cookie.is_empty() {
                b = b.header("cookie", format!("tuk={}", self.cookie));
            }
            let body = body.as_ref().map(|v| v.to_string()).unwrap_or_default();
            let req = b.body(Full::new(Bytes::from(body))).unwrap();
            if send.ready().await.is_err() {
                self.send = None;
                continue;
            }
            match send.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    for v in resp.headers().get_all("set-cookie") {
                        if let Some(c) = v.to_str().ok().and_then(|s| s.strip_prefix("tuk=")) {
                            self.cookie = c.split(';').next().unwrap_or("").to_string();
                        }
                    }
                    let bytes = resp
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                    return Ok((status, v));
                }
                Err(e) => {
                    self.send = None;
                    if e.is_canceled() || e.is_closed() || e.is_incomplete_message() {
                        // Not sent, or no answer: not acknowledged. Try a fresh connection.
                        continue;
                    }
                    return Err(e.to_string());
                }
            }
        }
        Err("connection closed".into())
    }
}

/// Logs in and starts every participant; returns the connections and their item ids with
/// option ids.
async fn start_all(
    addr: SocketAddr,
    token: &str,
    logins: &[(String, String)],
) -> Vec<(String, Conn, Vec<(String, Vec<String>)>)> {
    let mut out = Vec::new();
    for (n, pw) in logins {
        let mut c = Conn::new(addr);
        let (st, v) = c
            .req(
                "POST",
                "/api/v1/login",
                Some(json!({"participant": n, "password": pw})),
            )
            .await
            .unwrap();
        assert_eq!(st, 200, "login {n}: {v}");
        let (st, v) = c
            .req("POST", "/api/v1/start", Some(json!({"token": token})))
            .await
            .unwrap();
        assert_eq!(st, 200, "start {n}: {v}");
        let items = v["items"].as_u64().unwrap() as usize;
        let mut ids = Vec::new();
        for k in 1..=items.min(12) {
            let (st, v) = c
                .req("GET", &format!("/api/v1/items/{k}"), None)
                .await
                .unwrap();
            assert_eq!(st, 200, "{v}");
            let opts = v["options"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_string())
                .collect();
            ids.push((v["id"].as_str().unwrap().to_string(), opts));
        }
        out.push((n.clone(), c, ids));
    }
    out
}

/// Saves answers in a loop until `stop` (or until the server is gone).
async fn save_loop(
    participant: String,
    mut c: Conn,
    items: Vec<(String, Vec<String>)>,
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
) -> usize {
    let mut seq = 0u64;
    let mut errors = 0;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let (item, opts) = &items[(seq as usize) % items.len()];
        let choice = opts[(seq as usize / items.len()) % opts.len()].clone();
        let r = c
            .req(
                "PUT",
                &format!("/api/v1/answers/{item}"),
                Some(json!({"choice": [choice], "seq": seq})),
            )
            .await;
        match r {
            Ok((200, v)) if v["saved"] == json!(true) => acks.lock().unwrap().push(Ack {
                participant: participant.clone(),
                item: item.clone(),
                seq,
                choice,
                at: Instant::now(),
            }),
            Ok((503, _)) => errors += 1,
            // A loop this fast meets the per-attempt save limit (docs/security.md): refused,
            // not acknowledged; back off as the page script does.
            Ok((429, v)) if v["code"] == "too_many_saves" => {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok((st, v)) => panic!("unexpected answer to a save: {st} {v}"),
            Err(_) => break, // the server is gone
        }
    }
    errors
}

/// (participant, item) → (seq, choice) as stored.
fn stored_answers(store: &tuk::store::Store) -> BTreeMap<(String, String), (u64, String)> {
    let mut m = BTreeMap::new();
    for (k, v) in store.scan(tuk::store::Table::Answers).unwrap() {
        let (attempt, item) = k.split_once('\u{1f}').unwrap();
        let participant = attempt.rsplit('/').next().unwrap().to_string();
        let a: serde_json::Value = serde_json::from_slice(&v).unwrap();
        let choice = a["choice"][0].as_str().unwrap_or("").to_string();
        m.insert(
            (participant, item.to_string()),
            (a["seq"].as_u64().unwrap(), choice),
        );
    }
    m
}

/// Every acknowledged answer is in the store: the same seq and choice, or a later seq.
fn assert_all_acked_present(acks: &[Ack], stored: &BTreeMap<(String, String), (u64, String)>) {
    let mut last: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
    for a in acks {
        let e = last
            .entry((a.participant.clone(), a.item.clone()))
            .or_insert((0, String::new()));
        if a.seq > e.0 {
            *e = (a.seq, a.choice.clone());
        }
    }
    for (k, (seq, choice)) in &last {
        let got = stored
            .get(k)
            .unwrap_or_else(|| panic!("acknowledged answer {k:?} seq {seq} is missing"));
        assert!(
            got.0 >= *seq,
            "{k:?}: acknowledged seq {seq}, stored seq {}",
            got.0
        );
        if got.0 == *seq {
            assert_eq!(&got.1, choice, "{k:?} seq {seq}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 4. Backup under load, then restore

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_then_restore_keeps_every_acknowledged_answer() {
    let p = Prepared::new(|_| {}, SESSION);
    let logins = s1_logins(&p);
    let token = p.token.clone();
    let mut server = Server::serve(p);
    let addr = server.addr();
    let data = server.data.clone();
    let parts = start_all(addr, &token, &logins).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = parts
        .into_iter()
        .map(|(n, c, items)| tokio::spawn(save_loop(n, c, items, stop.clone(), acks.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Two backups while the answers keep coming.
    let backups = tempfile::tempdir().unwrap();
    let mut taken = Vec::new();
    for i in 0..2 {
        let file = backups.path().join(format!("b{i}.tar"));
        let before = Instant::now();
        let acked_before: Vec<Ack> = acks.lock().unwrap().clone();
        let d = data.display().to_string();
        let f = file.display().to_string();
        let o = tokio::task::spawn_blocking(move || run(&["backup", "--data", &d, "-o", &f], &[]))
            .await
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("from the running server"), "{}", text(&o));
        eprintln!(
            "backup {i} under load: {:?}: {}",
            before.elapsed(),
            text(&o).trim()
        );
        taken.push((file, acked_before));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let acks = acks.lock().unwrap().clone();
    assert!(acks.len() > 100, "too little load: {} saves", acks.len());

    // The last backup after the load: every acknowledged answer, exactly.
    let last = backups.path().join("final.tar");
    let o = run(
        &[
            "backup",
            "--data",
            &data.display().to_string(),
            "-o",
            &last.display().to_string(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    taken.push((last.clone(), acks.clone()));

    // Doctor now knows the last backup.
    let (_, t) = doctor(&data, &[]);
    assert!(t.contains("OK    backup: last backup"), "{t}");

    // Restore each into a fresh folder: every answer acknowledged before the backup
    // started is there.
    for (i, (file, acked)) in taken.iter().enumerate() {
        let dir = backups.path().join(format!("restored{i}"));
        let o = run(
            &[
                "restore",
                &file.display().to_string(),
                "--data",
                &dir.display().to_string(),
            ],
            &[],
        );
        assert!(o.status.success(), "{}", text(&o));
        let store = tuk::store::Store::open(&dir).unwrap();
        assert_all_acked_present(acked, &stored_answers(&store));
        assert!(dir.join("tuk.key").is_file());
        eprintln!(
            "restored {}: {} acknowledged answers checked",
            file.display(),
            acked.len()
        );
    }

    // Restore over the live folder: refused while the server runs …
    let o = run(
        &[
            "restore",
            &last.display().to_string(),
            "--data",
            &data.display().to_string(),
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("stop it first"), "{}", text(&o));
    // … and done with it stopped; the server starts on the restored data.
    tokio::task::block_in_place(|| server.stop());
    let o = run(
        &[
            "restore",
            &last.display().to_string(),
            "--data",
            &data.display().to_string(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("are kept in"), "{}", text(&o));
    {
        let store = tuk::store::Store::open(&data).unwrap();
        assert_all_acked_present(&acks, &stored_answers(&store));
    }
    tokio::task::block_in_place(|| server.restart());
    let r = server.client().get("/cek/ping").await;
    assert_eq!(r.status, 200);

    // A damaged backup is refused before anything is replaced.
    let mut bytes = std::fs::read(&last).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    let bad = backups.path().join("bad.tar");
    std::fs::write(&bad, bytes).unwrap();
    let o = run(
        &[
            "restore",
            &bad.display().to_string(),
            "--data",
            &backups.path().join("x").display().to_string(),
        ],
        &[],
    );
    assert!(!o.status.success(), "{}", text(&o));
}

// ---------------------------------------------------------------------------------------
// 5. SIGTERM under load

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_acknowledged_answer() {
    let p = Prepared::new(|_| {}, SESSION);
    let logins = s1_logins(&p);
    let token = p.token.clone();
    let mut server = Server::serve(p);
    let addr = server.addr();
    let parts = start_all(addr, &token, &logins).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = parts
        .into_iter()
        .map(|(n, c, items)| tokio::spawn(save_loop(n, c, items, stop.clone(), acks.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // `stop` sends SIGTERM (as systemd does) and waits for the process to exit.
    let t0 = Instant::now();
    tokio::task::block_in_place(|| server.stop());
    let stopped_in = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let acks = acks.lock().unwrap().clone();
    assert!(acks.len() > 100, "too little load: {}", acks.len());
    let last_ack = acks.iter().map(|a| a.at).max().unwrap();
    eprintln!(
        "SIGTERM under load: stopped in {stopped_in:?}; {} saves acknowledged, the last {:?} after the signal",
        acks.len(),
        last_ack.saturating_duration_since(t0)
    );
    assert!(
        stopped_in < Duration::from_secs(10),
        "took {stopped_in:?} to stop"
    );
    let store = server.open_store();
    assert_all_acked_present(&acks, &stored_answers(&store));
}

// ---------------------------------------------------------------------------------------
// 6. systemd readiness, journald lines, cold start, idle memory

#[test]
fn serve_notifies_systemd_and_logs_for_journald() {
    let p = Prepared::new(|_| {}, SESSION);
    let sock_dir = tempfile::tempdir().unwrap();
    let sock_path = sock_dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let port = free_port();
    let log = sock_dir.path().join("stderr.log");
    let t0 = Instant::now();
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--data",
            &p.data.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("TUK_CONFIG", "none")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("JOURNAL_STREAM", "8:12345")
        .env("TUK_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("READY=1 within 60 s");
    let ready_in = t0.elapsed();
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.contains("READY=1"), "{msg}");
    // Ready means listening: a request is answered at once.
    let s = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(s.is_ok(), "not listening after READY=1");
    drop(s);
    std::thread::sleep(Duration::from_millis(500));
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .map(|l| l.to_string())
        .unwrap_or_default();
    eprintln!("cold start to READY=1: {ready_in:?}; idle {rss}");
    assert!(sh(&["kill", "-TERM", &child.id().to_string()]));
    let n = sock.recv(&mut buf).expect("STOPPING=1");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        err.lines()
            .any(|l| l.starts_with("<6>") && l.contains("ready")),
        "{err}"
    );
    for l in err.lines().filter(|l| !l.is_empty()) {
        assert!(l.starts_with('<'), "not a journald line: {l:?}");
        assert!(!l.contains("\x1b["), "colours in the journal: {l:?}");
    }
}

// ---------------------------------------------------------------------------------------
// 7. HTTPS with a self-signed certificate

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_self_signed_certificate() {
    let p = Prepared::new(|_| {}, SESSION);
    let d = p.data.display().to_string();
    let o = run(&["init", "--self-signed", "--data", &d], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let fp = t
        .lines()
        .find_map(|l| l.strip_prefix("SHA-256 fingerprint: "))
        .expect("fingerprint line")
        .trim()
        .to_string();
    assert_eq!(fp.len(), 95, "{fp}");
    assert!(t.contains("localhost"), "{t}");
    let cert = p.data.join("tls/cert.pem");
    let key = p.data.join("tls/key.pem");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // openssl agrees on the fingerprint, if it is installed.
    if let Ok(o) = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            &cert.display().to_string(),
        ])
        .output()
        && o.status.success()
    {
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(&fp),
            "{}",
            text(&o)
        );
    }

    let port = free_port();
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--data",
            &d,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ])
        .env("TUK_CONFIG", "none")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("listening:") {
        line.clear();
    }
    assert!(
        line.contains(&format!("listening: https://127.0.0.1:{port}/")),
        "{line}"
    );

    // A client that trusts exactly this certificate gets the page over TLS.
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the self-signed certificate");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = send
        .send_request(
            hyper::Request::get("/cek/ping")
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("\"t\""));

    // Doctor checks the files and shows the fingerprint.
    let o = run(
        &[
            "doctor",
            "--data",
            &d,
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ],
        &[],
    );
    assert!(text(&o).contains(&format!("SHA-256 {fp}")), "{}", text(&o));
    let _ = sh(&["kill", "-TERM", &child.id().to_string()]);
    let _ = child.wait();

    // A key that does not belong to the certificate is refused with a plain message.
    let o = run(
        &[
            "serve",
            "--data",
            &d,
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &p.data.join("tuk.key").display().to_string(),
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("TLS key"), "{}", text(&o));
}

// ---------------------------------------------------------------------------------------
// 8. The lab check, the PC list, /metrics

#[tokio::test]
async fn lab_check_pc_list_and_metrics() {
    let server = Server::serve(Prepared::new(|_| {}, SESSION));
    let pc = server.client();
    let r = pc.get("/cek").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("/cek/cek.js"));
    assert!(pc.cookie("tuk_cek").is_some(), "the test cookie is set");
    let js = pc.get("/cek/cek.js").await;
    assert_eq!(js.status, 200);
    assert!(
        !js.text().contains("=>") && !js.text().contains("let "),
        "ES5 only"
    );
    let r = pc.get("/cek/unduh?kb=64").await;
    assert_eq!(r.body.len(), 64 * 1024);

    // What the script sends from a good PC, and a JavaScript-off PC without cookies.
    let r = pc
        .post_form(
            "/cek",
            &[
                ("pc", "PC-07"),
                ("js", "1"),
                ("es5", "1"),
                ("ck", "1"),
                ("ls", "1"),
                ("sw", "1366"),
                ("sh", "768"),
                ("off", "1200"),
                ("rtt", "1"),
                ("mbps", "94.2"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("PC-07: SIAP"), "{}", r.text());
    let bare = server.client();
    let r = bare
        .post_form("/cek", &[("pc", "PC-08"), ("js", "0")])
        .await;
    assert!(r.text().contains("PC-08: BELUM SIAP"), "{}", r.text());
    assert!(r.text().contains("cookie diblokir"), "{}", r.text());
    let r = bare
        .post_form("/cek", &[("pc", "<script>"), ("js", "0")])
        .await;
    assert_eq!(r.status, 422);

    // Staff see the list; others are sent to the login.
    let anon = server.client().get("/admin/pcs").await;
    assert_eq!(anon.status, 303);
    let admin = server.client();
    let r = admin
        .post_form(
            "/admin/masuk",
            &[("user", "admin"), ("password", "admin-password-for-tests")],
        )
        .await;
    assert!(r.status == 303 || r.status == 200, "{}", r.text());
    let r = admin.get("/admin/pcs").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert!(
        t.contains("PC-07") && t.contains("PC-08") && t.contains("2 PC: 1 OK"),
        "{t}"
    );
    assert!(server.data.join("lab-pcs.json").is_file());

    // /metrics from the server itself.
    let m = server.client().get("/metrics").await;
    assert_eq!(m.status, 200);
    let t = m.text();
    for name in [
        "tuk_http_requests_total{area=\"cek\",code=\"2xx\"}",
        "tuk_answer_saves_total",
        "tuk_answer_save_seconds_bucket{le=\"+Inf\"}",
        "tuk_participants_active",
        "tuk_store_commit_batch_max",
        "tuk_store_bytes",
    ] {
        assert!(t.contains(name), "{name} missing:\n{t}");
    }
}

// ---------------------------------------------------------------------------------------
// 9. tuk selftest

#[test]
fn selftest_holds_a_small_lab() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let o = run(
        &[
            "selftest",
            "--participants",
            "20",
            "--data",
            &dir.path().display().to_string(),
        ],
        &[],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("RESULT: this machine holds 20 participants."),
        "{t}"
    );
    assert!(t.contains("save ") && t.contains("p99"), "{t}");
    // The sandbox is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "sandbox left behind: {left:?}");
    eprintln!("selftest 20 in {:?}:\n{t}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------
// 10. The systemd units

#[test]
fn systemd_units_verify_and_are_hardened() {
    let Ok(v) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("note: systemd-analyze is not installed; skipped");
        return;
    };
    assert!(v.status.success());
    // The units name /usr/bin/tuk; verify them against the binary under test.
    let dir = tempfile::tempdir().unwrap();
    for u in ["tuk.service", "tuk-backup.service", "tuk-backup.timer"] {
        let text = std::fs::read_to_string(repo().join("systemd").join(u)).unwrap();
        std::fs::write(dir.path().join(u), text.replace("/usr/bin/tuk", bin())).unwrap();
    }
    let o = Command::new("systemd-analyze")
        .args([
            "verify",
            "tuk.service",
            "tuk-backup.service",
            "tuk-backup.timer",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success() && o.stderr.is_empty(), "{}", text(&o));
    for (u, limit) in [("tuk.service", 2.0), ("tuk-backup.service", 2.0)] {
        let o = Command::new("systemd-analyze")
            .args([
                "security",
                "--offline=yes",
                &dir.path().join(u).display().to_string(),
            ])
            .output()
            .unwrap();
        let t = text(&o);
        let score: f64 = t
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no score in:\n{t}"));
        eprintln!("systemd-analyze security {u}: {score}");
        assert!(score < limit, "{u}: exposure {score}\n{t}");
    }
}

// ---------------------------------------------------------------------------------------
// A disk that fills up during the exam

/// The data folder on a small filesystem of its own (tmpfs) that fills up while a
/// participant answers: every save is either acknowledged (and then survives `kill -9`) or
/// refused with `store_failed` and its Indonesian message; the server keeps answering
/// reads; once space is freed, saves are acknowledged again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_saves_clearly_and_loses_nothing() {
    if !is_root() {
        eprintln!("note: not root, so no tmpfs of our own: the full-disk test cannot run here");
        return;
    }
    let mut p = Prepared::new(|_| {}, SESSION);
    let (number, password) = s1_logins(&p)[0].clone();
    let small = p.root.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let small_s = small.display().to_string();
    assert!(
        sh(&["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", &small_s]),
        "mount a tmpfs"
    );
    let data = small.join("data");
    copy_dir(&p.data, &data);
    p.data = data;
    let mut srv = Server::serve(p);
    let _mount = Mount(small.clone());

    let c = srv.client();
    c.post(
        "/api/v1/login",
        &json!({"participant": number, "password": password}),
    )
    .await
    .assert_ok();
    let items = c
        .post("/api/v1/start", &json!({"token": srv.token}))
        .await
        .assert_ok()["items"]
        .as_u64()
        .unwrap() as usize;
    let mut ids = Vec::new();
    for n in 1..=items {
        let v = c.get(&format!("/api/v1/items/{n}")).await.assert_ok();
        let options: Vec<String> = v["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        ids.push((v["id"].as_str().unwrap().to_string(), options));
    }
    // Item number -> (choice, seq) of its last acknowledged save.
    let mut acked: BTreeMap<usize, (String, u64)> = BTreeMap::new();
    let mut seq = 0u64;
    let save = |n: usize, seq: u64| {
        let (id, options) = &ids[n];
        let choice = options[(seq as usize) % options.len()].clone();
        let c = &c;
        async move {
            let r = c
                .put(
                    &format!("/api/v1/answers/{id}"),
                    &json!({"choice": [choice], "doubtful": false, "seq": seq}),
                )
                .await;
            (r, choice)
        }
    };
    for n in 0..10 {
        seq += 1;
        let (r, choice) = save(n, seq).await;
        r.assert_ok();
        acked.insert(n, (choice, seq));
    }

    // Fill the disk to the last byte.
    let filler = small.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0x5au8; 1 << 16];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    // Keep saving: each save is acknowledged or refused clearly; soon all are refused.
    let (mut refused, mut last) = (0, 0);
    for k in 0..400 {
        seq += 1;
        let n = k % items;
        let (r, choice) = save(n, seq).await;
        if r.status == 200 {
            assert_eq!(r.json()["seq"], seq);
            acked.insert(n, (choice, seq));
            continue;
        }
        r.assert_refused(503, "store_failed");
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .contains("tidak dapat menyimpan ke disk"),
            "{}",
            r.text()
        );
        refused += 1;
        last = n;
        if refused == 5 {
            break;
        }
    }
    assert_eq!(refused, 5, "saves are refused once the disk is full");
    // Reads still work, and show what is stored: no refused save.
    let st = c.get("/api/v1/state").await.assert_ok();
    assert_eq!(st["status"], "running");
    assert_eq!(st["answered"], acked.len());
    for (n, (choice, _)) in &acked {
        let v = c.get(&format!("/api/v1/items/{}", n + 1)).await.assert_ok();
        assert_eq!(v["choice"], json!([choice]), "item {} while full", n + 1);
    }
    // The browser retries its newest refused save with the same seq: while the disk is
    // full it is refused again, never taken for a duplicate of a stored one.
    let (r, _) = save(last, seq).await;
    r.assert_refused(503, "store_failed");

    // Space again (the technician deletes a file): the same retried save is acknowledged
    // now, and stored.
    std::fs::remove_file(&filler).unwrap();
    let (r, choice) = save(last, seq).await;
    assert_eq!(
        r.assert_ok()["seq"],
        seq,
        "saves work again without a restart"
    );
    acked.insert(last, (choice, seq));
    for n in 10..15 {
        seq += 1;
        let (r, choice) = save(n, seq).await;
        r.assert_ok();
        acked.insert(n, (choice, seq));
    }

    // Everything acknowledged survives kill -9; nothing refused was stored.
    srv.kill9();
    srv.restart();
    let st = c.get("/api/v1/state").await.assert_ok();
    assert_eq!(st["answered"], acked.len());
    for (n, (choice, _)) in &acked {
        let v = c.get(&format!("/api/v1/items/{}", n + 1)).await.assert_ok();
        assert_eq!(v["choice"], json!([choice]), "item {}", n + 1);
    }
}

// ---------------------------------------------------------------------------------------
// Issue 16: the demo as a new user sees it, the UPT's certificate, the technician's CLI
// ---------------------------------------------------------------------------------------

/// A spawned `tuk` whose stdout lines are collected; SIGTERM and wait on drop.
struct Spawned {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Spawned {
    fn start(args: &[&str]) -> Spawned {
        use std::io::BufRead;
        let mut c = Command::new(bin());
        c.args(args)
            .env("TUK_CONFIG", "none")
            .env("TUK_LOG", "warn")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = c.spawn().expect("spawn tuk");
        let out = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        Spawned { child, lines }
    }

    /// Waits (at most 60 s) for a line starting with `prefix`; all lines so far.
    fn wait_for(&self, prefix: &str) -> Vec<String> {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            let l = self.lines.lock().unwrap().clone();
            if l.iter().any(|x| x.starts_with(prefix)) {
                return l;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no line starting with {prefix:?}; got {:?}",
            self.lines.lock().unwrap()
        );
    }

    fn stop(&mut self) -> Vec<String> {
        // SAFETY: kill with a valid pid and signal number.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn demo_listens_where_told_and_speaks_plainly() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut demo = Spawned::start(&["demo", "--listen", &listen]);
    let lines = demo.wait_for("press Ctrl-C");
    let all = lines.join("\n");
    assert!(
        all.contains(&format!("listening: http://127.0.0.1:{port}/")),
        "{all}"
    );
    // Only loopback: no LAN address is offered.
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("listening:")).count(),
        1,
        "{all}"
    );
    let session = lines
        .iter()
        .find(|l| l.starts_with("session: "))
        .expect("session line");
    assert!(session.contains("open (participants can log in)"), "{all}");
    assert!(session.contains("demo-kk-a-2026/S1"), "{all}");
    for debug in ["Open {", "opened_ms", "Some(", "{ ", "\"", "::"] {
        assert!(
            !all.contains(debug),
            "debug text {debug:?} in the demo's output:\n{all}"
        );
    }
    assert!(all.contains("data: temporary"), "{all}");
    assert!(all.contains("tuk demo --data DIR"), "{all}");
    assert!(all.contains("--listen 0.0.0.0:"), "{all}");
    assert!(!all.contains("tuk serve --data"), "{all}");
    let temp = lines
        .iter()
        .find_map(|l| l.strip_prefix("data: temporary ("))
        .and_then(|r| r.split(')').next())
        .map(PathBuf::from)
        .expect("temporary folder named");
    assert!(temp.is_dir(), "{}", temp.display());
    // It serves the login page on that address.
    let mut s = std::net::TcpStream::connect(&listen).expect("connect to the demo");
    use std::io::{Read, Write};
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut page = String::new();
    let _ = s.read_to_string(&mut page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let lines = demo.stop();
    assert_eq!(lines.last().map(String::as_str), Some("stopped cleanly"));
    assert!(!temp.exists(), "the temporary demo folder is removed");

    // --port stays a shorthand for 127.0.0.1:PORT; --data keeps the folder and says so.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let mut demo = Spawned::start(&[
        "demo",
        "--port",
        &port.to_string(),
        "--data",
        &d.display().to_string(),
    ]);
    let all = demo.wait_for("press Ctrl-C").join("\n");
    assert!(
        all.contains(&format!("listening: http://127.0.0.1:{port}/")),
        "{all}"
    );
    assert!(
        all.contains(&format!("tuk serve --data {}", d.display())),
        "{all}"
    );
    demo.stop();
    assert!(d.join(tuk::store::DB_FILE).is_file());
}

#[test]
fn demo_on_a_taken_port_names_the_flag_and_prints_nothing_else() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for args in [
        vec![
            "demo".to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ],
        vec!["demo".to_string(), "--port".into(), port.to_string()],
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&a, &[]);
        assert!(!o.status.success());
        assert_eq!(String::from_utf8_lossy(&o.stdout), "", "nothing on stdout");
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(err.contains("already in use"), "{err}");
        assert!(err.contains("--listen 127.0.0.1:"), "{err}");
        assert!(!err.contains("stopped"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    drop(taken);
}

/// Starts `tuk upt serve` with this certificate and key on a free port; its port.
fn upt_serve(upt: &Path, cert: &Path, key: &Path) -> (Spawned, u16) {
    let s = Spawned::start(&[
        "upt",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        &upt.display().to_string(),
        "--cert",
        &cert.display().to_string(),
        "--key",
        &key.display().to_string(),
    ]);
    let lines = s.wait_for("listening: https://127.0.0.1:");
    let port = lines
        .iter()
        .find_map(|l| l.strip_prefix("listening: https://127.0.0.1:"))
        .and_then(|r| r.trim_end_matches('/').parse().ok())
        .expect("port");
    (s, port)
}

fn openssl_fingerprint(cert: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    t.trim().rsplit('=').next().unwrap().to_string()
}

#[test]
fn upt_certificates_self_signed_openssl_and_a_wrong_one() {
    // A sealed bundle of the prepared TUK (keys upt-test / tuk-test).
    let p = Prepared::new(|_| {}, SESSION);
    let r = p.root.path();
    let d = p.data.display().to_string();
    let bundle = r.join("s1.tukres");
    let o = run(
        &[
            "seal",
            "--data",
            &d,
            "--session",
            SESSION,
            "--force",
            "-o",
            &bundle.display().to_string(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    // The UPT: its folder and a leaf certificate made by `tuk upt init --self-signed`.
    let upt = r.join("upt");
    let u = upt.display().to_string();
    let keys = r.join("keys");
    let o = run(
        &[
            "upt",
            "init",
            "--data",
            &u,
            "--key",
            &keys.join("upt-test.key").display().to_string(),
            "--self-signed",
            "--name",
            "127.0.0.1",
            "--name",
            "upt.example.id",
        ],
        &[],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let fp = t
        .lines()
        .find_map(|l| l.strip_prefix("SHA-256 fingerprint: "))
        .expect("fingerprint line")
        .trim()
        .to_string();
    assert!(t.contains("valid for: 127.0.0.1, upt.example.id"), "{t}");
    let cert = upt.join("tls/upt-cert.pem");
    let key = upt.join("tls/upt-key.pem");
    assert_eq!(openssl_fingerprint(&cert), fp);
    // A leaf, not a CA.
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let x = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(x.contains("CA:FALSE"), "{x}");
    assert!(x.contains("TLS Web Server Authentication"), "{x}");
    for a in [
        vec![
            "upt",
            "trust",
            &*keys.join("tuk-test.pub").display().to_string(),
            "--data",
            &u,
        ],
        vec![
            "upt",
            "package",
            "add",
            &*r.join("test.tukpkg").display().to_string(),
            "--data",
            &u,
        ],
    ] {
        let o = run(&a, &[]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let b = bundle.display().to_string();
    // The upload is signed with the TUK's key (the receiver takes no body without it).
    let tuk_key = p.data.join("tuk.key").display().to_string();
    // 1. Upload pinned by the printed fingerprint (typed in lower case without colons).
    let (mut rx, port) = upt_serve(&upt, &cert, &key);
    let to = format!("https://127.0.0.1:{port}");
    let typed = fp.replace(':', "").to_lowercase();
    let o = run(
        &[
            "upload",
            &b,
            "--key",
            &tuk_key,
            "--to",
            &to,
            "--upt-fingerprint",
            &typed,
            "--attempts",
            "1",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    rx.stop();

    // 2. The usual openssl one-liner (CA:TRUE, self-signed) works when pinned.
    let ocert = r.join("openssl-cert.pem");
    let okey = r.join("openssl-key.pem");
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=upt",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&okey)
        .arg("-out")
        .arg(&ocert)
        .output()
        .expect("openssl req");
    assert!(o.status.success(), "{}", text(&o));
    let ofp = openssl_fingerprint(&ocert);
    let (mut rx, port) = upt_serve(&upt, &ocert, &okey);
    let to = format!("https://127.0.0.1:{port}");
    let o = run(
        &[
            "upload",
            &b,
            "--key",
            &tuk_key,
            "--to",
            &to,
            "--upt-cert",
            &ocert.display().to_string(),
            "--attempts",
            "1",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));

    // 3. A different certificate is refused, and the message shows both fingerprints.
    let o = run(
        &[
            "upload",
            &b,
            "--key",
            &tuk_key,
            "--to",
            &to,
            "--upt-cert",
            &cert.display().to_string(),
            "--attempts",
            "3",
        ],
        &[],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains(&ofp), "the server's fingerprint: {t}");
    assert!(t.contains(&fp), "the pinned fingerprint: {t}");
    assert!(
        !t.contains("attempt 1 failed"),
        "a wrong certificate is final: {t}"
    );
    let o = run(
        &[
            "upload",
            &b,
            "--key",
            &tuk_key,
            "--to",
            &to,
            "--upt-fingerprint",
            &fp,
            "--attempts",
            "1",
        ],
        &[],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains(&ofp) && t.contains(&fp),
        "{t}"
    );
    // Without any pin, a self-signed certificate is not trusted.
    let o = run(
        &[
            "upload",
            &b,
            "--key",
            &tuk_key,
            "--to",
            &to,
            "--attempts",
            "1",
        ],
        &[],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("--upt-fingerprint"),
        "{t}"
    );
    rx.stop();
}

#[test]
fn doctor_names_the_time_zone_of_the_package() {
    let p = Prepared::new(
        |src| {
            common::edit_file(
                &src.join("package.toml"),
                "timezone = \"+07:00\"",
                "timezone = \"+08:00\"",
            )
        },
        SESSION,
    );
    let (_, out) = doctor(&p.data, &[]);
    let clock = out
        .lines()
        .find(|l| l.contains("server time now:"))
        .unwrap_or_else(|| panic!("no clock line:\n{out}"));
    assert!(clock.contains(" WITA (UTC+08:00"), "{clock}");
    assert!(!out.contains("WIB"), "{out}");
}

#[test]
fn debian_package_is_lintian_clean() {
    if Command::new("lintian").arg("--version").output().is_err() {
        eprintln!(
            "note: lintian is not installed (apt-get install lintian); the .deb was not checked"
        );
        return;
    }
    // The release binary when it is built (`.ci/run` builds it), else a stripped copy of the
    // test build: lintian looks at the package, not at how the binary was optimised.
    let dir = tempfile::tempdir().unwrap();
    let release = repo().join("target/x86_64-unknown-linux-gnu/release/tuk");
    let binary = dir.path().join("tuk");
    copy_binary(
        if release.exists() {
            release.as_path()
        } else {
            Path::new(bin())
        },
        &binary,
    );
    assert!(sh(&["strip", &binary.display().to_string()]), "strip");
    let out = dir.path().join("out");
    let o = Command::new(repo().join("packaging/build-deb.sh"))
        .env("TUK_DEB_BIN", &binary)
        .env("OUT", &out)
        .env_remove("DEBFULLNAME")
        .env_remove("DEBEMAIL")
        .env_remove("DEB_MAINTAINER")
        .output()
        .expect("packaging/build-deb.sh");
    assert!(o.status.success(), "{}", text(&o));
    let deb = out.join(format!("tuk_{}-1_amd64.deb", env!("CARGO_PKG_VERSION")));
    assert!(deb.is_file(), "{}", text(&o));
    // The Maintainer field is packaging/maintainer's line (DEB_MAINTAINER overrides it:
    // tests/systemd.rs); a malformed one is refused before anything is built.
    let field = Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .arg("Maintainer")
        .output()
        .unwrap();
    let configured = std::fs::read_to_string(repo().join("packaging/maintainer")).unwrap();
    let configured = configured
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap();
    assert_eq!(text(&field).trim(), configured);
    let bad = Command::new(repo().join("packaging/build-deb.sh"))
        .env("TUK_DEB_BIN", &binary)
        .env("OUT", &out)
        .env("DEB_MAINTAINER", "root@localhost")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        text(&bad)
            .contains("\"root@localhost\" (from DEB_MAINTAINER) is not \"Full Name <address>\""),
        "{}",
        text(&bad)
    );
    // What is inside: the man pages, changelog, copyright, conffile, units.
    let list = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    let list = text(&list);
    for f in [
        "./usr/bin/tuk",
        "./usr/share/man/man1/tuk.1.gz",
        "./usr/share/man/man1/tuk-serve.1.gz",
        "./usr/share/doc/tuk/changelog.Debian.gz",
        "./usr/share/doc/tuk/copyright",
        "./lib/systemd/system/tuk.service",
        "./etc/tuk/tuk.toml",
    ] {
        assert!(list.contains(f), "{f} missing:\n{list}");
    }
    let o = Command::new("lintian")
        .args(["--pedantic", "--display-info", "--tag-display-limit", "0"])
        .arg(&deb)
        .output()
        .unwrap();
    let t = text(&o);
    eprintln!("lintian --pedantic:\n{t}");
    let bad: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .collect();
    assert!(bad.is_empty(), "lintian errors/warnings:\n{t}");
    assert!(!t.contains("unused-override"), "{t}");
    for scripts in ["postinst", "prerm", "postrm"] {
        let s = std::fs::read_to_string(repo().join("packaging/debian").join(scripts)).unwrap();
        for l in s
            .lines()
            .filter(|l| l.trim_start().starts_with("systemctl"))
        {
            assert!(l.contains("daemon-reload"), "{scripts}: {l}");
        }
    }
}

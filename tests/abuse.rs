//! One hostile or broken PC on the lab LAN cannot stop the exam (issue 11).
//!
//! Each test starts the real server (`tuk demo`, a real redb store) on 127.0.0.1, keeps a
//! working participant saving answers from 127.0.0.2, and runs one attack from other
//! 127.x addresses (Linux routes all of 127.0.0.0/8 to loopback). Each asserts: the
//! victims still log in with their own passwords, the working participant's saves keep
//! succeeding, the server's RSS (from `/proc/PID/status`) grows by at most a small bound,
//! and every acknowledged answer is still there afterwards. Every loop is bounded in count
//! and in time.
//!
//! Also here: the UPT receiver (`tuk upt serve`) under attack (slow and 200 MiB unsigned
//! uploads, unknown, forged and replayed TUK signatures, a gzip bomb), a package re-signed
//! by another trusted UPT, the participant forms' token, the release code at a prompt, and
//! file modes under `umask 000`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::receiver::loopback as ip;
use common::receiver::*;
use common::{Client, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// RSS growth allowed during one attack.
const RSS_BOUND_KB: u64 = 64 * 1024;

fn rss_kb(srv: &Server) -> u64 {
    pid_rss_kb(srv.pid().expect("server pid"))
}

async fn login(c: &Client, number: &str, password: &str) -> common::Response {
    c.post(
        "/api/v1/login",
        &json!({"participant": number, "password": password}),
    )
    .await
}

/// The working participant: saves item 1 every 100 ms from 127.0.0.2 until stopped.
struct Worker {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<WorkerReport>,
    client: Client,
}

struct WorkerReport {
    ok: usize,
    failed: Vec<String>,
    last: Option<(String, u64)>,
    item: String,
    latencies_ms: Vec<f64>,
}

impl Worker {
    async fn start(srv: &Server) -> Worker {
        let (c, item, options) = participant_on_item_one(srv).await;
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, s2) = (c.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut r = WorkerReport {
                ok: 0,
                failed: Vec::new(),
                last: None,
                item: item.clone(),
                latencies_ms: Vec::new(),
            };
            let started = Instant::now();
            let mut seq = 1000u64;
            while !s2.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                seq += 1;
                let choice = options[(seq % options.len() as u64) as usize].clone();
                let t = Instant::now();
                let resp = c2
                    .put(
                        &format!("/api/v1/answers/{item}"),
                        &json!({"choice": [choice], "seq": seq}),
                    )
                    .await;
                r.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                if resp.status == 200 {
                    r.ok += 1;
                    r.last = Some((choice, seq));
                } else {
                    r.failed.push(format!("{} {}", resp.status, resp.text()));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            r
        });
        Worker {
            stop,
            task,
            client: c,
        }
    }

    /// Stops, then checks that every save was acknowledged and the last one is stored.
    async fn finish(self, what: &str) -> WorkerReport {
        // A few more saves after the attack, so a quick attack is also covered.
        tokio::time::sleep(Duration::from_millis(600)).await;
        self.stop.store(true, Ordering::Relaxed);
        let r = self.task.await.unwrap();
        assert!(r.ok >= 3, "{what}: only {} saves during the attack", r.ok);
        assert!(
            r.failed.is_empty(),
            "{what}: the working participant's saves failed: {:?}",
            r.failed
        );
        let it = self.client.get("/api/v1/items/1").await.assert_ok();
        assert_eq!(it["id"], r.item.as_str());
        let (choice, seq) = r.last.clone().unwrap();
        assert_eq!(
            it["choice"],
            json!([choice]),
            "{what}: last acknowledged answer"
        );
        assert_eq!(it["seq"], json!(seq), "{what}: last acknowledged seq");
        let mut l = r.latencies_ms.clone();
        l.sort_by(f64::total_cmp);
        eprintln!(
            "{what}: {} saves, p50 {:.1} ms, max {:.1} ms",
            r.ok,
            l[l.len() / 2],
            l[l.len() - 1]
        );
        r
    }
}

fn assert_rss(srv: &Server, base: u64, what: &str) {
    let now = rss_kb(srv);
    eprintln!("{what}: RSS {base} kB -> {now} kB");
    assert!(
        now <= base + RSS_BOUND_KB,
        "{what}: RSS grew from {base} kB to {now} kB"
    );
}

fn admin_password(srv: &Server) -> String {
    srv.stdout()
        .lines()
        .find_map(|l| l.strip_prefix("admin: admin "))
        .expect("tuk demo prints `admin: admin PASSWORD`")
        .trim()
        .to_string()
}

async fn admin_login(srv: &Server, from: Ipv4Addr, password: &str) -> (Client, u16) {
    let c = srv.client_from(from).with_header("origin", &srv.origin());
    let r = c
        .post_form("/admin/masuk", &[("user", "admin"), ("password", password)])
        .await;
    (c, r.status)
}

#[tokio::test]
async fn lockout_flood_cannot_lock_out_participants_or_staff() {
    let srv = Server::demo();
    let admin_pw = admin_password(&srv);
    let worker = Worker::start(&srv).await;
    let base = rss_kb(&srv);
    let attacker = srv.client_from(ip(0, 0, 9));
    let victim_no = srv.logins[1].0.clone();
    // 8 wrong passwords for one number: this address is locked for it.
    for i in 0..8 {
        login(&attacker, &victim_no, &format!("wrong{i}"))
            .await
            .assert_refused(401, "bad_login");
    }
    login(&attacker, &victim_no, "wrong-again")
        .await
        .assert_refused(429, "login_locked");
    // Then every number, and `admin`, a few times each, in parallel (bounded).
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (k, (number, _)) in srv.logins.iter().enumerate().skip(2) {
        for i in 0..3 {
            let (c, n) = (attacker.clone(), number.clone());
            set.spawn(async move { login(&c, &n, &format!("guess{k}-{i}")).await.status });
        }
    }
    for i in 0..10 {
        let (c, pw) = (
            srv.client_from(ip(0, 0, 9))
                .with_header("origin", &srv.origin()),
            format!("wrong-admin-{i}"),
        );
        set.spawn(async move {
            c.post_form("/admin/masuk", &[("user", "admin"), ("password", &pw)])
                .await
                .status
        });
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(s) = set.join_next().await {
        // 0: the server closed the attacker's connection unanswered (over the per-address
        // connection cap: the flood opens more than 64 at once). A refusal too.
        *statuses.entry(s.unwrap_or(0)).or_insert(0) += 1;
    }
    eprintln!("flood answers {statuses:?} in {:?}", t.elapsed());
    assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");
    // The attacker's address is now locked for everything.
    login(&attacker, &srv.logins[5].0, &srv.logins[5].1)
        .await
        .assert_refused(429, "login_locked");
    // Every participant at their own PC still gets in with their own password.
    for (k, (number, password)) in srv.logins.iter().enumerate().skip(1) {
        let c = srv.client_from(ip(0, 1, k as u8 + 1));
        login(&c, number, password).await.assert_ok();
    }
    // So does the admin, at the console's PC.
    let (admin, status) = admin_login(&srv, ip(0, 0, 3), &admin_pw).await;
    assert_eq!(status, 303, "the admin is not locked out by another PC");
    // The proctor sees the lock and its address on the board, and lifts it.
    let board = admin
        .get("/admin/sesi/demo-kk-a-2026/S1/board.json")
        .await
        .assert_ok();
    let row = board["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["participant"] == victim_no.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["locked_from"], json!(["127.0.0.9"]), "{row}");
    let page = admin.get("/admin/sesi/demo-kk-a-2026/S1").await;
    assert!(page.text().contains("login terkunci dari 127.0.0.9"));
    let csrf = input_value(&page.text(), "csrf");
    let r = admin
        .post_form(
            "/admin/sesi/demo-kk-a-2026/S1/aksi",
            &[("csrf", &csrf), ("do", "unlock"), ("ip", "127.0.0.9")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    // Lifted: the right password from that PC works again.
    login(&attacker, &victim_no, &srv.logins[1].1)
        .await
        .assert_ok();
    worker.finish("lock-out flood").await;
    assert_rss(&srv, base, "lock-out flood");
}

fn input_value(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let i = html.find(&key).expect("input") + key.len();
    html[i..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn large_unauthenticated_bodies_are_refused_unread() {
    let srv = Server::demo();
    let worker = Worker::start(&srv).await;
    let base = rss_kb(&srv);
    let paths = ["/admin/impor", "/masuk", "/api/v1/login"];
    let mut set = tokio::task::JoinSet::new();
    for (k, path) in paths.iter().enumerate() {
        let from = ip(0, 0, 10 + k as u8);
        let path = path.to_string();
        let port = srv.port;
        set.spawn(async move {
            let fake = FakeSrv { port };
            let (sent, status) = fake.push(from, &path, 200 << 20).await;
            (path, sent, status)
        });
    }
    while let Some(r) = set.join_next().await {
        let (path, sent, status) = r.unwrap();
        eprintln!("200 MiB to {path}: {sent} bytes written, answer {status:?}");
        assert!(
            status.starts_with("HTTP/1.1 303") || status.starts_with("HTTP/1.1 413"),
            "{path}: {status:?}"
        );
        assert!(sent < 64 << 20, "{path}: the server read {sent} bytes");
    }
    // The victims still log in.
    let c = srv.client_from(ip(0, 1, 1));
    login(&c, &srv.logins[3].0, &srv.logins[3].1)
        .await
        .assert_ok();
    worker.finish("200 MiB bodies").await;
    assert_rss(&srv, base, "200 MiB bodies");
}

/// The attack helpers need only the port (so they can run in spawned tasks).
struct FakeSrv {
    port: u16,
}

impl FakeSrv {
    async fn connect(&self, from: Ipv4Addr) -> std::io::Result<tokio::net::TcpStream> {
        let s = tokio::net::TcpSocket::new_v4()?;
        s.bind(SocketAddr::new(from.into(), 0))?;
        s.connect(SocketAddr::from(([127, 0, 0, 1], self.port)))
            .await
    }

    async fn push(&self, from: Ipv4Addr, path: &str, len: usize) -> (usize, String) {
        let mut s = self.connect(from).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
            self.port
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent < len && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(2), s.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len(),
                _ => break,
            }
        }
        let mut buf = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or(0);
        let status = String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        (sent, status)
    }
}

#[tokio::test]
async fn slow_bodies_are_cut_off_and_connections_are_capped() {
    let srv =
        Server::demo_with_env(&[("TUK_BODY_DEADLINE_S", "3"), ("TUK_HEADER_DEADLINE_S", "3")]);
    let worker = Worker::start(&srv).await;
    let base = rss_kb(&srv);
    // 1,100 connections from 22 addresses, each sending headers and one byte of a body.
    let t = Instant::now();
    let fake = FakeSrv { port: srv.port };
    let mut held = Vec::new();
    for a in 0..22u8 {
        for _ in 0..50 {
            let Ok(mut s) = fake.connect(ip(0, 2, a + 1)).await else {
                continue;
            };
            let head = format!(
                "POST /masuk HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\np",
                srv.port
            );
            if s.write_all(head.as_bytes()).await.is_ok() {
                held.push(s);
            }
        }
    }
    eprintln!(
        "{} slow connections open after {:?}",
        held.len(),
        t.elapsed()
    );
    assert!(held.len() >= 1000);
    // Meanwhile a participant logs in and the worker keeps saving.
    let c = srv.client_from(ip(0, 1, 1));
    login(&c, &srv.logins[4].0, &srv.logins[4].1)
        .await
        .assert_ok();
    // Within the body deadline (+ slack) every slow request is answered 408 and closed.
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    for s in &mut held {
        let mut buf = [0u8; 64];
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(Ok(n)) = tokio::time::timeout(left, s.read(&mut buf)).await
            && (n == 0 || buf.starts_with(b"HTTP/1.1 408"))
        {
            answered += 1;
        }
    }
    eprintln!("{answered} of {} slow connections cut off", held.len());
    assert_eq!(answered, held.len());
    drop(held);
    // One address cannot hold more than its share: past 64 connections it gets 503.
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..80 {
        let Ok(s) = fake.connect(ip(0, 0, 30)).await else {
            continue;
        };
        tries.spawn(async move {
            let mut s = s;
            let mut buf = [0u8; 256];
            match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => (s, Some(String::from_utf8_lossy(&buf[..n]).to_string())),
                _ => (s, None),
            }
        });
    }
    let mut mine = Vec::new();
    let mut busy = 0;
    while let Some(r) = tries.join_next().await {
        match r.unwrap() {
            (_, Some(text)) => {
                assert!(text.starts_with("HTTP/1.1 503"), "{text}");
                assert!(text.contains("Retry-After: 5"), "{text}");
                busy += 1;
            }
            (s, None) => mine.push(s),
        }
    }
    eprintln!("one address: {} held, {busy} refused with 503", mine.len());
    assert_eq!(mine.len(), 64);
    assert_eq!(busy, 16);
    drop(mine);
    worker.finish("slow bodies").await;
    assert_rss(&srv, base, "slow bodies");
}

#[tokio::test]
async fn cek_flood_is_bounded() {
    let srv = Server::demo_with_env(&[("TUK_MAX_LAB_PCS", "50")]);
    let worker = Worker::start(&srv).await;
    let base = rss_kb(&srv);
    // One address, 200 registrations of new names in a row: rate-limited.
    let c = srv.client_from(ip(0, 3, 1));
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..200 {
        let r = c
            .post_form("/cek", &[("pc", &format!("FLOOD-{i}")), ("js", "0")])
            .await;
        *codes.entry(r.status).or_insert(0) += 1;
    }
    eprintln!("one address: {codes:?}");
    assert!(codes.get(&429).copied().unwrap_or(0) >= 100, "{codes:?}");
    // Ten addresses with new names: the list stops at its maximum.
    let mut set = tokio::task::JoinSet::new();
    for a in 0..10u8 {
        let c = srv.client_from(ip(0, 3, 10 + a));
        set.spawn(async move {
            let mut full = 0;
            for i in 0..20 {
                let r = c
                    .post_form("/cek", &[("pc", &format!("PC-{a}-{i}")), ("js", "0")])
                    .await;
                if r.status == 503 {
                    full += 1;
                }
            }
            full
        });
    }
    let mut full = 0;
    while let Some(f) = set.join_next().await {
        full += f.unwrap();
    }
    assert!(full > 0, "the list never filled up");
    // A known name can still be checked again.
    let r = c.post_form("/cek", &[("pc", "FLOOD-0"), ("js", "0")]).await;
    assert!(r.status == 200 || r.status == 429, "{}", r.status);
    // The list on disk is bounded (written off the workers, shortly after).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while Instant::now() < deadline {
        let pcs: Value = std::fs::read(srv.data.join("lab-pcs.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        n = pcs.as_object().map_or(0, |m| m.len());
        if n == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 50);
    let l = srv.client_from(ip(0, 1, 1));
    login(&l, &srv.logins[2].0, &srv.logins[2].1)
        .await
        .assert_ok();
    worker.finish("/cek flood").await;
    assert_rss(&srv, base, "/cek flood");
}

#[tokio::test]
async fn save_loop_is_rate_limited_without_losing_answers() {
    let srv = Server::demo();
    let worker = Worker::start(&srv).await;
    let base = rss_kb(&srv);
    let c = srv.client_from(ip(0, 0, 20));
    login(&c, &srv.logins[6].0, &srv.logins[6].1)
        .await
        .assert_ok();
    c.post("/api/v1/start", &json!({"token": srv.token}))
        .await
        .assert_ok();
    let it = c.get("/api/v1/items/1").await.assert_ok();
    let item = it["id"].as_str().unwrap().to_string();
    let opt = it["options"][0]["id"].as_str().unwrap().to_string();
    let mut last_ok = 0;
    let mut limited = 0;
    for seq in 1..=300u64 {
        let r = c
            .put(
                &format!("/api/v1/answers/{item}"),
                &json!({"choice": [opt], "seq": seq}),
            )
            .await;
        match r.status {
            200 => last_ok = seq,
            429 => {
                r.assert_refused(429, "too_many_saves");
                limited += 1;
            }
            s => panic!("save {seq}: {s} {}", r.text()),
        }
    }
    eprintln!("save loop: {limited} of 300 refused, last acknowledged seq {last_ok}");
    assert!(limited > 0);
    let it = c.get("/api/v1/items/1").await.assert_ok();
    assert_eq!(it["seq"], json!(last_ok));
    worker.finish("save loop").await;
    assert_rss(&srv, base, "save loop");
}

#[tokio::test]
async fn host_rebinding_and_log_injection_are_refused() {
    let srv = Server::demo();
    let worker = Worker::start(&srv).await;
    let c = srv.client_from(ip(0, 0, 40));
    // A page of another site, pointed here by DNS rebinding.
    let r = c
        .request("GET", "/", &[("host", "exam.evil.example")], "")
        .await;
    assert_eq!(r.status, 421);
    let r = c
        .request(
            "POST",
            "/api/v1/login",
            &[
                ("host", "exam.evil.example:8080"),
                ("content-type", "application/json"),
            ],
            json!({"participant": srv.logins[0].0, "password": srv.logins[0].1}).to_string(),
        )
        .await;
    assert_eq!(r.status, 421);
    // localhost and IP literals are this server.
    let r = c.request("GET", "/", &[("host", "localhost")], "").await;
    assert_eq!(r.status, 200);
    // Control characters in what a client sends never reach a log line.
    let evil = "PC-1\nFAKE-LOG-LINE injected";
    c.post_form("/cek", &[("pc", evil)]).await;
    let a = c.clone().with_header("origin", &srv.origin());
    a.post_form(
        "/admin/masuk",
        &[("user", "x\nFAKE-LOG-LINE admin"), ("password", "nope")],
    )
    .await;
    let raw_path = "/api/v1/items/%0AFAKE-LOG-LINE";
    c.get(raw_path).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for line in srv.stderr().lines().chain(srv.stdout().lines()) {
        assert!(
            !line.starts_with("FAKE-LOG-LINE"),
            "a client wrote a log line: {line:?}"
        );
    }
    worker.finish("host and log").await;
}

// ---------------------------------------------------------------------------------------
// Local files: private whatever the umask (issue 11, item 6)
// ---------------------------------------------------------------------------------------

/// Runs the binary under `umask 000`, as from a careless shell.
fn tuk_umask_000(args: &[&str]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(common::bin())
        .args(args)
        .env("TUK_CONFIG", "none")
        .env_remove("TUK_DATA")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run tuk")
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn store_keys_and_restored_folders_are_private_under_umask_000() {
    let root = tempfile::tempdir().unwrap();
    let s = |p: &std::path::Path| p.display().to_string();
    // Keys.
    let keys = root.path().join("keys");
    ok_out(&tuk_umask_000(&[
        "keygen",
        "--out",
        &s(&keys),
        "--name",
        "tuk-x",
    ]));
    assert_eq!(mode(&keys), 0o700, "key folder");
    assert_eq!(mode(&keys.join("tuk-x.key")), 0o600, "secret key");
    assert_eq!(mode(&keys.join("tuk-x.pub")), 0o644, "public key");
    // A data folder and its store.
    let data = root.path().join("data");
    let pw = root.path().join("pw.txt");
    std::fs::write(&pw, "admin-password-1\n").unwrap();
    ok_out(&tuk_umask_000(&[
        "init",
        "--data",
        &s(&data),
        "--key",
        &s(&keys.join("tuk-x.key")),
        "--admin-password-file",
        &s(&pw),
    ]));
    assert_eq!(mode(&data), 0o700, "data folder");
    assert_eq!(mode(&data.join("tuk.redb")), 0o600, "store");
    assert_eq!(mode(&data.join("tuk.key")), 0o600, "TUK key");
    // A backup, restored into a new folder.
    let backup = root.path().join("backups/b.tar");
    ok_out(&tuk_umask_000(&[
        "backup",
        "--data",
        &s(&data),
        "-o",
        &s(&backup),
    ]));
    assert_eq!(mode(backup.parent().unwrap()), 0o700, "backup folder");
    assert_eq!(mode(&backup), 0o600, "backup file");
    let restored = root.path().join("restored");
    ok_out(&tuk_umask_000(&[
        "restore",
        &s(&backup),
        "--data",
        &s(&restored),
    ]));
    assert_eq!(mode(&restored), 0o700, "restored folder");
    assert_eq!(mode(&restored.join("tuk.redb")), 0o600, "restored store");
    assert_eq!(mode(&restored.join("tuk.key")), 0o600, "restored key");
    // A UPT folder.
    let upt = root.path().join("upt");
    ok_out(&tuk_umask_000(&[
        "upt",
        "init",
        "--data",
        &s(&upt),
        "--key",
        &s(&keys.join("tuk-x.key")),
    ]));
    assert_eq!(mode(&upt), 0o700, "UPT folder");
    assert_eq!(mode(&upt.join("upt.redb")), 0o600, "UPT store");
    assert_eq!(mode(&upt.join("upt.key")), 0o600, "UPT key");
    // The demo's admin password file.
    let demo = root.path().join("demo");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(common::bin())
        .args(["demo", "--port", "0", "--data", &s(&demo)])
        .env("TUK_CONFIG", "none")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let file = demo.join("demo-admin-password.txt");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = std::fs::metadata(&file).map(|_| mode(&file));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(m.ok(), Some(0o600), "demo admin password file");
    assert_eq!(mode(&demo), 0o700, "demo data folder");
    assert_eq!(mode(&demo.join("tuk.redb")), 0o600, "demo store");
}

// ---------------------------------------------------------------------------------------
// The UPT receiver (`tuk upt serve`): no body without a trusted TUK's signature
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upt_receiver_takes_no_body_without_a_trusted_tuk_signature() {
    let srv = Server::demo();
    let worker = Worker::start(&srv).await;
    let root = tempfile::tempdir().unwrap();
    let upt = demo_upt(root.path());
    let bundle = root.path().join("s1.tukres");
    let genuine = tokio::task::spawn_blocking({
        let r = root.path().to_path_buf();
        move || demo_bundle(&r)
    })
    .await
    .unwrap();
    std::fs::write(&bundle, &genuine).unwrap();
    let rx = common::upt_receiver(&upt, root.path(), 256);
    let port = rx.port;
    let base = pid_rss_kb(rx.pid());

    // 1. Two slow uploads without a signature (they used to hold both upload slots): each
    // is refused at its headers, 401, before one body byte is taken.
    let mut slow = tokio::task::JoinSet::new();
    for a in 1..=2u8 {
        slow.spawn(post_bundle(port, ip(0, 6, a), "", 100 << 20, 40, true));
    }
    // Meanwhile a real TUK uploads its bundle.
    let real = tokio::task::spawn_blocking({
        let (cert, file) = (rx.cert.clone(), bundle.clone());
        move || upload_cli(port, &cert, &file)
    });
    while let Some(r) = slow.join_next().await {
        let (sent, status, took) = r.unwrap();
        eprintln!("slow unsigned upload: {sent} bytes sent, answered in {took:?}: {status:.60}");
        assert!(status.starts_with("HTTP/1.1 401"), "{status}");
        assert!(status.contains("unauthenticated"), "{status}");
        assert!(took < Duration::from_secs(5), "answered after {took:?}");
    }
    let (good, out, took) = real.await.unwrap();
    eprintln!("real upload during the slow attack: {took:?}");
    assert!(good && out.contains("signature OK"), "{out}");

    // 2. An unsigned 200 MiB upload: refused at once, read no further.
    let (sent, status, took) =
        post_bundle(port, ip(0, 6, 3), "", 200 << 20, 200 << 20, false).await;
    eprintln!("unsigned 200 MiB: {sent} bytes written, answer in {took:?}: {status:.60}");
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert!(sent < 64 << 20, "the receiver took {sent} bytes");

    // 3. Signed by a TUK key this UPT does not trust (with a real challenge): 403; a
    // signature that does not match: 401; a challenge used twice: 401.
    let body = vec![b'x'; 1000];
    let stranger = tuk::keys::SecretKey::generate("tuk-asing").unwrap();
    let c = challenge(port, ip(0, 6, 4)).await;
    let h = tuk::upt::server::auth_header(&stranger, &body, &c);
    let (_, status, _) = post_bundle(
        port,
        ip(0, 6, 4),
        &format!("Tuk-Auth: {h}\r\n"),
        1000,
        1000,
        false,
    )
    .await;
    assert!(
        status.starts_with("HTTP/1.1 403") && status.contains("unknown_tuk"),
        "{status}"
    );
    let demo_tuk = tuk::keys::SecretKey::read(&demo_file("demo-keys/tuk.key")).unwrap();
    let c = challenge(port, ip(0, 6, 4)).await;
    let h = tuk::upt::server::auth_header(&demo_tuk, &body, &c);
    let forged = h.replace(" 1000 ", " 999 ");
    let (_, status, _) = post_bundle(
        port,
        ip(0, 6, 4),
        &format!("Tuk-Auth: {forged}\r\n"),
        999,
        999,
        false,
    )
    .await;
    assert!(
        status.starts_with("HTTP/1.1 401") && status.contains("bad_signature"),
        "{status}"
    );
    let (_, first, _) = post_bundle(
        port,
        ip(0, 6, 4),
        &format!("Tuk-Auth: {h}\r\n"),
        1000,
        1000,
        false,
    )
    .await;
    assert!(
        first.contains("bundle_invalid"),
        "signed junk is checked: {first}"
    );
    let (_, again, _) = post_bundle(
        port,
        ip(0, 6, 4),
        &format!("Tuk-Auth: {h}\r\n"),
        1000,
        1000,
        false,
    )
    .await;
    assert!(
        again.starts_with("HTTP/1.1 401") && again.contains("replayed_request"),
        "{again}"
    );

    // 4. A gzip bomb signed by the trusted TUK: 256 MiB of zeros in a payload whose signed
    // members declare a few KiB. Refused, not inflated.
    let bomb_file = root.path().join("bomb.tukres");
    let bomb = tokio::task::spawn_blocking(move || gzip_bomb(&genuine, 256 << 20))
        .await
        .unwrap();
    eprintln!("gzip bomb: {} bytes, inflates to 256 MiB", bomb.len());
    std::fs::write(&bomb_file, &bomb).unwrap();
    let (good, out, took) = tokio::task::spawn_blocking({
        let (cert, f) = (rx.cert.clone(), bomb_file.clone());
        move || upload_cli(port, &cert, &f)
    })
    .await
    .unwrap();
    eprintln!("gzip bomb answered in {took:?}");
    assert!(
        !good && out.contains("422 bundle_invalid") && out.contains("gzip bomb"),
        "{out}"
    );

    let now = pid_rss_kb(rx.pid());
    eprintln!("UPT receiver RSS {base} kB -> {now} kB");
    assert!(
        now <= base + RSS_BOUND_KB,
        "receiver RSS grew from {base} kB to {now} kB"
    );
    // The real TUK still uploads (the same bundle again: the same receipt).
    let (good, out, _) = upload_cli(port, &rx.cert, &bundle);
    assert!(good && out.contains("already had this bundle"), "{out}");
    worker.finish("UPT receiver attacks").await;
}

// ---------------------------------------------------------------------------------------
// A package id belongs to the UPT key that signed it first
// ---------------------------------------------------------------------------------------

/// A console upload of a package file (step 1 of the import: verify and show).
async fn console_upload(c: &Client, csrf: &str, bytes: &[u8]) -> common::Response {
    let boundary = "----tukAbuseBoundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"package\"; filename=\"p.tukpkg\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    c.request(
        "POST",
        &format!("/admin/impor?csrf={csrf}"),
        &[(
            "content-type",
            &format!("multipart/form-data; boundary={boundary}"),
        )],
        body,
    )
    .await
}

#[tokio::test]
async fn a_package_resigned_by_another_trusted_upt_is_refused() {
    use tuk::keys::SecretKey;
    let mut srv = Server::demo();
    let admin_pw = admin_password(&srv);
    // A second UPT, trusted by this TUK too, signs a newer "version" of the demo package.
    let root = tempfile::tempdir().unwrap();
    let other = SecretKey::generate("upt-lain").unwrap();
    let other_pub = root.path().join("upt-lain.pub");
    std::fs::write(&other_pub, other.public().to_line()).unwrap();
    let hijack = tokio::task::spawn_blocking(move || {
        let mut src = tuk::package::source::read(&demo_file("demo")).unwrap();
        src.manifest.version += 10;
        let tuk_pub = tuk::keys::PublicKey::read(&demo_file("demo-keys/tuk.pub")).unwrap();
        tuk::package::build(&src, &other, &[tuk_pub], None).unwrap()
    })
    .await
    .unwrap();
    srv.stop();
    tuk_cli(&[
        "trust",
        "add",
        &other_pub.display().to_string(),
        "--data",
        &srv.data.display().to_string(),
    ]);
    srv.restart();
    let worker = Worker::start(&srv).await;
    let base = rss_kb(&srv);
    let (admin, status) = admin_login(&srv, ip(0, 0, 3), &admin_pw).await;
    assert_eq!(status, 303);
    let page = admin.get("/admin").await;
    let csrf = input_value(&page.text(), "csrf");
    let r = console_upload(&admin, &csrf, &hijack).await;
    let text = r.text();
    assert!(
        text.contains("Paket DITOLAK")
            && text.contains("belongs to UPT key upt")
            && text.contains("upt-lain"),
        "{}",
        &text[text.len().saturating_sub(1500)..]
    );
    assert!(
        !text.contains("/admin/impor/konfirmasi"),
        "no import offered"
    );
    // The CLI says the same.
    worker.finish("package re-signed by another UPT").await;
    assert_rss(&srv, base, "package re-signed by another UPT");
    srv.stop();
    let file = root.path().join("hijack.tukpkg");
    std::fs::write(
        &file,
        tokio::task::spawn_blocking(move || hijack).await.unwrap(),
    )
    .unwrap();
    let o = std::process::Command::new(common::bin())
        .args(["package", "import"])
        .arg(&file)
        .arg("--data")
        .arg(&srv.data)
        .env("TUK_CONFIG", "none")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        !o.status.success() && err.contains("belongs to UPT key upt"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Participant forms carry the session's token
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn participant_form_posts_need_the_session_token() {
    let srv = Server::demo();
    let worker = Worker::start(&srv).await;
    let c = srv
        .client_from(ip(0, 7, 1))
        .with_header("origin", &srv.origin());
    let (number, password) = srv.logins[8].clone();
    let r = c
        .post_form(
            "/masuk",
            &[("participant", &number), ("password", &password)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page = c.get("/token").await;
    assert!(
        page.text().contains("name=\"form_token\""),
        "the form carries the token"
    );
    // A post made elsewhere (no token, or another session's): 403, in Indonesian, and
    // what was posted is kept for one more click.
    for bad in ["", "00ff"] {
        let r = c
            .post_form("/token", &[("token", &srv.token), ("form_token", bad)])
            .await;
        assert_eq!(r.status, 403);
        let t = r.text();
        assert!(
            t.contains("Isian belum terkirim") && t.contains("Kirim lagi"),
            "{t}"
        );
        assert!(
            t.contains(&format!("name=\"token\" value=\"{}\"", srv.token)),
            "{t}"
        );
    }
    // "Kirim lagi" posts it with this session's token (the client posts what the page holds).
    let r = c.post_form("/token", &[("token", &srv.token)]).await;
    assert_eq!(r.location().as_deref(), Some("/konfirmasi"), "{}", r.text());
    worker.finish("participant form token").await;
}

// ---------------------------------------------------------------------------------------
// The release code at a prompt, not in argv
// ---------------------------------------------------------------------------------------

#[test]
fn release_code_is_asked_at_the_terminal_without_echo() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("no `script` (util-linux) here: skipped");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let s = |p: &std::path::Path| p.display().to_string();
    let code = root.path().join("code.txt");
    std::fs::write(&code, "KODE-RILIS-77\n").unwrap();
    let pkg = root.path().join("p.tukpkg");
    tuk_cli(&[
        "package",
        "build",
        &s(&demo_file("demo")),
        "--sign",
        &s(&demo_file("demo-keys/upt.key")),
        "--to",
        &s(&demo_file("demo-keys/tuk.pub")),
        "--release-code-file",
        &s(&code),
        "-o",
        &s(&pkg),
    ]);
    let verify = |typed: &str| {
        let cmd = format!(
            "'{}' package verify '{}' --trust '{}' --key '{}'",
            common::bin(),
            s(&pkg),
            s(&demo_file("demo-keys/upt.pub")),
            s(&demo_file("demo-keys/tuk.key"))
        );
        let mut child = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("TUK_CONFIG", "none")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::{Read, Write};
        let mut out = child.stdout.take().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let reader = std::thread::spawn({
            let seen = seen.clone();
            move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = out.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    seen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        // Typed once the prompt is up (the terminal then does not echo it).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !String::from_utf8_lossy(&seen.lock().unwrap()).contains("not shown")
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{typed}\n").as_bytes()).unwrap();
        let _ = child.wait();
        drop(stdin);
        let _ = reader.join();
        String::from_utf8_lossy(&seen.lock().unwrap()).to_string()
    };
    let out = verify("KODE-RILIS-77");
    assert!(out.contains("release code of demo-kk-a-2026"), "{out}");
    assert!(!out.contains("KODE-RILIS-77"), "the code was echoed: {out}");
    assert!(out.contains("release layer: OK"), "{out}");
    let out = verify("SALAH");
    assert!(out.contains("release code is wrong"), "{out}");
    // --help warns against the code in argv.
    let help = tuk_cli(&["session", "open", "--help"]);
    assert!(help.contains("shows in `ps`"), "{help}");
}

//! What each attack of issue 11 costs the working participant: `cargo bench --bench abuse`.
//!
//! Starts `tuk demo` (real store) on 127.0.0.1, keeps one participant saving an answer
//! every 50 ms from 127.0.0.2, and runs, one after the other for `ABUSE_PHASE_S` seconds
//! each (default 6): nothing (baseline), a lock-out flood over every participant number and
//! `admin`, three 200 MiB unauthenticated bodies, 1,100 slow-body connections, a `/cek`
//! flood, a save loop of another participant. For each it prints the working
//! participant's save p50/p99/max, failed saves, and the server's RSS (max sampled during
//! the phase) next to the baseline. The attack runs on its own thread; load tool and server
//! still share the machine, so the figures are upper bounds of what the server alone would
//! show. Traffic only to 127.0.0.0/8.
//!
//! Then the UPT receiver (`tuk upt serve`): a real TUK uploads its bundle over and over
//! (in-process `tuk::upload::upload`, signed with the demo TUK key; the receiver answers
//! "already received" after checking it) while, for `ABUSE_PHASE_S` each: nothing, 20
//! slow unsigned uploads at a time, unsigned 200 MiB bodies, uploads signed by an unknown
//! TUK key, gzip bombs (256 MiB of zeros) signed by the trusted TUK. It prints the real
//! upload's p50/p99/max, its failures and the receiver's RSS next to the baseline.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Client, Server};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use common::receiver::{loopback as ip, pid_rss_kb as rss_kb};

async fn connect(port: u16, from: Ipv4Addr) -> std::io::Result<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from.into(), 0))?;
    s.connect(SocketAddr::from(([127, 0, 0, 1], port))).await
}

async fn login(c: &Client, n: &str, p: &str) -> u16 {
    c.post("/api/v1/login", &json!({"participant": n, "password": p}))
        .await
        .status
}

/// Prints one attack's row: request count (in a column `width` wide), p50/p99/max latency
/// in ms, failures, peak RSS in MiB, and the first row's p99/RSS as the baseline (kept in
/// `base`).
fn print_phase(
    kind: &str,
    width: usize,
    lat: &mut [f64],
    failed: usize,
    rss_kb: u64,
    base: &mut Option<(f64, u64)>,
) {
    if lat.is_empty() {
        println!("{kind:<20} no request finished");
        return;
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let (p99, rss_mib) = (q(0.99), rss_kb as f64 / 1024.0);
    let b = *base.get_or_insert((p99, rss_kb));
    println!(
        "{kind:<20} {:>width$} {:>8.1} {:>8.1} {:>8.1} {failed:>7} {rss_mib:>10.1} {:>10}",
        lat.len(),
        q(0.5),
        p99,
        lat[lat.len() - 1],
        format!("{:.1}/{:.0}", b.0, b.1 as f64 / 1024.0)
    );
}

/// Runs the attack until `stop`.
async fn attack(kind: &'static str, srv: Arc<ServerInfo>, stop: Arc<AtomicBool>) {
    let port = srv.port;
    match kind {
        "baseline" => {}
        "lock-out flood" => {
            let c = Client::new(SocketAddr::from(([127, 0, 0, 1], port))).bind(ip(0, 0, 9).into());
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (n, _) in &srv.logins {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    k += 1;
                    let _ = login(&c, n, &format!("wrong{k}")).await;
                }
                let _ = c
                    .clone()
                    .with_header("origin", &format!("http://127.0.0.1:{port}"))
                    .post_form("/admin/masuk", &[("user", "admin"), ("password", "x")])
                    .await;
            }
        }
        "3 x 200 MiB bodies" => {
            while !stop.load(Ordering::Relaxed) {
                let mut set = tokio::task::JoinSet::new();
                for (k, path) in ["/admin/impor", "/masuk", "/api/v1/login"]
                    .iter()
                    .enumerate()
                {
                    set.spawn(async move {
                        let Ok(mut s) = connect(port, ip(0, 0, 10 + k as u8)).await else {
                            return;
                        };
                        let head = format!(
                            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                            200u64 << 20
                        );
                        let _ = s.write_all(head.as_bytes()).await;
                        let chunk = vec![b'x'; 1 << 20];
                        for _ in 0..200 {
                            match tokio::time::timeout(Duration::from_secs(1), s.write_all(&chunk)).await {
                                Ok(Ok(())) => {}
                                _ => break,
                            }
                        }
                    });
                }
                while set.join_next().await.is_some() {}
            }
        }
        "1,100 slow bodies" => {
            let mut held = Vec::new();
            'outer: for a in 0..22u8 {
                for _ in 0..50 {
                    if stop.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                    if let Ok(mut s) = connect(port, ip(0, 2, a + 1)).await {
                        let head = format!(
                            "POST /masuk HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 100\r\n\r\np"
                        );
                        if s.write_all(head.as_bytes()).await.is_ok() {
                            held.push(s);
                        }
                    }
                }
            }
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        "/cek flood" => {
            let mut k = 0u64;
            let clients: Vec<Client> = (0..10u8)
                .map(|a| {
                    Client::new(SocketAddr::from(([127, 0, 0, 1], port)))
                        .bind(ip(0, 3, a + 1).into())
                })
                .collect();
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let c = &clients[(k % 10) as usize];
                let _ = c
                    .post_form("/cek", &[("pc", &format!("FLOOD-{k}")), ("js", "0")])
                    .await;
            }
        }
        "save loop" => {
            let c = Client::new(SocketAddr::from(([127, 0, 0, 1], port))).bind(ip(0, 0, 20).into());
            let (n, p) = &srv.logins[6];
            let _ = login(&c, n, p).await;
            let _ = c.post("/api/v1/start", &json!({"token": srv.token})).await;
            let it = c.get("/api/v1/items/1").await.json();
            let item = it["id"].as_str().unwrap_or("").to_string();
            let opt = it["options"][0]["id"].as_str().unwrap_or("").to_string();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let _ = c
                    .put(
                        &format!("/api/v1/answers/{item}"),
                        &json!({"choice": [opt], "seq": seq}),
                    )
                    .await;
            }
        }
        _ => {}
    }
}

struct ServerInfo {
    port: u16,
    token: String,
    logins: Vec<(String, String)>,
}

fn main() {
    let phase = Duration::from_secs(
        std::env::var("ABUSE_PHASE_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(6),
    );
    let srv = Server::demo_with_env(&[("TUK_BODY_DEADLINE_S", "3")]);
    let pid = srv.pid().expect("server pid");
    let info = Arc::new(ServerInfo {
        port: srv.port,
        token: srv.token.clone(),
        logins: srv.logins.clone(),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (c, item, opts) = common::receiver::participant_on_item_one(&srv).await;
        let mut seq = 0u64;
        let mut base: Option<(f64, u64)> = None;
        println!(
            "{:<20} {:>6} {:>8} {:>8} {:>8} {:>7} {:>10} {:>10}",
            "attack", "saves", "p50 ms", "p99 ms", "max ms", "failed", "RSS MiB", "baseline"
        );
        for kind in [
            "baseline",
            "lock-out flood",
            "3 x 200 MiB bodies",
            "1,100 slow bodies",
            "/cek flood",
            "save loop",
        ] {
            let stop = Arc::new(AtomicBool::new(false));
            // The attack runs on its own thread and runtime, so the working participant's
            // latencies measure the server, not this client's scheduling.
            let (i2, s2) = (info.clone(), stop.clone());
            let attacker = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(attack(kind, i2, s2));
            });
            tokio::time::sleep(Duration::from_millis(500)).await;
            let t = Instant::now();
            let (mut lat, mut failed, mut rss) = (Vec::new(), 0, 0u64);
            while t.elapsed() < phase {
                seq += 1;
                let choice = &opts[(seq % opts.len() as u64) as usize];
                let s = Instant::now();
                let r = c
                    .put(
                        &format!("/api/v1/answers/{item}"),
                        &json!({"choice": [choice], "seq": seq}),
                    )
                    .await;
                lat.push(s.elapsed().as_secs_f64() * 1000.0);
                if r.status != 200 {
                    failed += 1;
                }
                rss = rss.max(rss_kb(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop.store(true, Ordering::Relaxed);
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::task::spawn_blocking(move || attacker.join()),
            )
            .await;
            print_phase(kind, 6, &mut lat, failed, rss, &mut base);
            // Let the server settle (slow connections cut, counters quiet).
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        drop(srv);
    });
    receiver(phase);
}

/// Runs one receiver attack until `stop`.
async fn receiver_attack(kind: &'static str, port: u16, bomb: Arc<Vec<u8>>, stop: Arc<AtomicBool>) {
    use common::receiver::*;
    let demo_tuk = tuk::keys::SecretKey::read(&demo_file("demo-keys/tuk.key")).expect("key");
    let stranger = tuk::keys::SecretKey::generate("tuk-asing").expect("key");
    let mut k = 0u8;
    while !stop.load(Ordering::Relaxed) {
        k = k.wrapping_add(1);
        match kind {
            "20 slow unsigned" => {
                let mut set = tokio::task::JoinSet::new();
                for a in 1..=20u8 {
                    set.spawn(post_bundle(port, ip(0, 8, a), "", 100 << 20, 40, true));
                }
                while set.join_next().await.is_some() {}
            }
            "unsigned 200 MiB" => {
                post_bundle(port, ip(0, 8, 30), "", 200 << 20, 200 << 20, false).await;
            }
            "unknown TUK key" => {
                let body = vec![b'x'; 1000];
                let c = challenge(port, ip(0, 8, 40)).await;
                let h = tuk::upt::server::auth_header(&stranger, &body, &c);
                let extra = format!("Tuk-Auth: {h}\r\n");
                post_bundle(port, ip(0, 8, 40), &extra, 1000, 1000, false).await;
            }
            "signed gzip bombs" => {
                let c = challenge(port, ip(0, 8, 50)).await;
                let h = tuk::upt::server::auth_header(&demo_tuk, &bomb, &c);
                let extra = format!("Tuk-Auth: {h}\r\n");
                post_bundle(port, ip(0, 8, 50), &extra, bomb.len(), bomb.len(), false).await;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The receiver's phases (see the top of this file).
fn receiver(phase: Duration) {
    use common::receiver::*;
    let root = tempfile::tempdir().expect("tempdir");
    let upt = demo_upt(root.path());
    let genuine = demo_bundle(root.path());
    let bomb = Arc::new(gzip_bomb(&genuine, 256 << 20));
    let rx = common::upt_receiver(&upt, root.path(), 512);
    let (port, pid) = (rx.port, rx.pid());
    let key = tuk::keys::SecretKey::read(&demo_file("demo-keys/tuk.key")).expect("key");
    let target = tuk::upload::Target::parse(&format!("https://127.0.0.1:{port}"), Some(&rx.cert))
        .expect("target");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        println!();
        println!(
            "{:<20} {:>7} {:>8} {:>8} {:>8} {:>7} {:>10} {:>10}",
            "UPT receiver",
            "uploads",
            "p50 ms",
            "p99 ms",
            "max ms",
            "failed",
            "RSS MiB",
            "baseline"
        );
        let mut base: Option<(f64, u64)> = None;
        for kind in [
            "baseline",
            "20 slow unsigned",
            "unsigned 200 MiB",
            "unknown TUK key",
            "signed gzip bombs",
        ] {
            let stop = Arc::new(AtomicBool::new(false));
            let (s2, b2) = (stop.clone(), bomb.clone());
            let attacker = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(receiver_attack(kind, port, b2, s2));
            });
            tokio::time::sleep(Duration::from_millis(500)).await;
            let t = Instant::now();
            let (mut lat, mut failed, mut rss) = (Vec::new(), 0, 0u64);
            while t.elapsed() < phase {
                let s = Instant::now();
                let r = tuk::upload::upload(&genuine, &target, &key, &|_| {}).await;
                lat.push(s.elapsed().as_secs_f64() * 1000.0);
                if r.is_err() {
                    failed += 1;
                }
                rss = rss.max(rss_kb(pid));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            stop.store(true, Ordering::Relaxed);
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                tokio::task::spawn_blocking(move || attacker.join()),
            )
            .await;
            print_phase(kind, 7, &mut lat, failed, rss, &mut base);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        drop(rx);
    });
}

//! `tuk selftest --participants N`: does this machine hold N participants?
//!
//! It runs the standard exam scenario (the one `benches/loadgen.rs` measures) from the
//! server itself, on this machine's CPU and disk, and prints the numbers and a verdict.
//!
//! It never touches the real exam: the real store holds the signed roster (no test
//! participants can be added) and a hash-chained event log that goes to the UPT, so the
//! test runs on a **sandbox**: a hidden temporary data folder inside the real data folder
//! (the same disk, so fsync costs are real), with fresh keys, a generated package of 40
//! single-answer items and N participants, and its own server on 127.0.0.1 (same code as
//! `tuk serve`, in this process). The sandbox is deleted at the end. Run it before the
//! exam, not during: the sandbox competes with a running server for the same cores.
//!
//! Scenario, in phases (each waits for every participant):
//! 1. storm: every participant logs in (`POST /api/v1/login`) and starts with the token
//!    (`POST /api/v1/start`), all at once (at most 200 connects in flight);
//! 2. fetch: `GET /api/v1/items/1..=40`;
//! 3. answer: `PUT /api/v1/answers/{item}` for every item, back to back: the worst burst a
//!    lab can produce (real participants answer about once every 20–60 s);
//! 4. finish: `POST /api/v1/finish`.
//!
//! Verdict: holds N when no request failed, the whole login storm finished within
//! [`STORM_LIMIT`], save latency p99 stayed under [`SAVE_P99_LIMIT`] even in the burst, and
//! the save rate reached at least N / 20 per second (every participant saving once every
//! 20 s).

use crate::exam::SessionKey;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::app::App;
use crate::keys::SecretKey;

pub const ITEMS: usize = 40;
const PACKAGE: &str = "selftest";
/// The one session of [`write_load_source`]'s package.
pub const SESSION: &str = "S1";
const CONNECT_SLOTS: usize = 200;
pub(crate) const STORM_LIMIT: Duration = Duration::from_secs(120);
pub(crate) const SAVE_P99_LIMIT: Duration = Duration::from_secs(2);
const REQ_TIMEOUT: Duration = Duration::from_secs(120);

/// The numbers of one run.
#[derive(Debug, Default)]
pub(crate) struct SelftestReport {
    pub(crate) participants: usize,
    pub(crate) setup: Duration,
    pub(crate) storm: Phase,
    pub(crate) fetch: Phase,
    pub(crate) answer: Phase,
    pub(crate) finish: Phase,
    pub(crate) errors: usize,
    pub(crate) error_samples: Vec<String>,
    pub(crate) store_bytes_before: u64,
    pub(crate) store_bytes_after: u64,
    pub(crate) peak_rss: Option<u64>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Phase {
    pub(crate) wall: Duration,
    /// Request latencies in microseconds, sorted.
    pub(crate) lat_us: Vec<u64>,
}

impl Phase {
    fn pct(&self, p: f64) -> Duration {
        if self.lat_us.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        Duration::from_micros(self.lat_us[i.min(self.lat_us.len() - 1)])
    }
    fn rate(&self) -> f64 {
        self.lat_us.len() as f64 / self.wall.as_secs_f64().max(1e-6)
    }
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<11} {:>7} requests in {:>7.2} s = {:>8.0}/s   p50 {:>7.1} ms  p90 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
            self.lat_us.len(),
            self.wall.as_secs_f64(),
            self.rate(),
            ms(self.pct(0.5)),
            ms(self.pct(0.9)),
            ms(self.pct(0.99)),
            ms(self.pct(1.0)),
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl SelftestReport {
    /// The reasons this run does not hold N (empty: it holds).
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut v = Vec::new();
        let n = self.participants;
        if self.errors > 0 {
            v.push(format!("{} request(s) failed", self.errors));
        }
        if self.storm.wall > STORM_LIMIT {
            v.push(format!(
                "logging everyone in took {:.0} s (limit {} s)",
                self.storm.wall.as_secs_f64(),
                STORM_LIMIT.as_secs()
            ));
        }
        if self.answer.pct(0.99) > SAVE_P99_LIMIT {
            v.push(format!(
                "saving an answer took up to {:.0} ms (p99; limit {} ms)",
                ms(self.answer.pct(0.99)),
                SAVE_P99_LIMIT.as_millis()
            ));
        }
        let need = n as f64 / 20.0;
        if self.answer.rate() < need {
            v.push(format!(
                "{:.0} saves/s is less than the {need:.0}/s that {n} participants saving every 20 s need",
                self.answer.rate()
            ));
        }
        v
    }

    pub(crate) fn report(&self) -> String {
        let mut out = String::new();
        let n = self.participants;
        let _ = writeln!(
            out,
            "setup       {n} participants, {ITEMS} items each (package, passwords, session) in {:.1} s",
            self.setup.as_secs_f64()
        );
        let _ = writeln!(out, "{}", self.storm.line("login+start"));
        let _ = writeln!(out, "{}", self.fetch.line("items"));
        let _ = writeln!(out, "{}", self.answer.line("save"));
        let _ = writeln!(out, "{}", self.finish.line("finish"));
        let grown = self
            .store_bytes_after
            .saturating_sub(self.store_bytes_before);
        let _ = writeln!(
            out,
            "store       grew by {} KiB ({} bytes per participant for {ITEMS} answers)",
            grown / 1024,
            grown / n.max(1) as u64
        );
        if let Some(rss) = self.peak_rss {
            let _ = writeln!(
                out,
                "memory      peak {} MiB (server and test clients together)",
                rss / (1024 * 1024)
            );
        }
        let need = n as f64 / 20.0;
        let _ = writeln!(
            out,
            "capacity    {:.0} saves/s in the burst; an exam of {n} needs about {need:.1}/s (one save every 20 s each): margin ×{:.0}",
            self.answer.rate(),
            self.answer.rate() / need.max(0.05)
        );
        for e in &self.error_samples {
            let _ = writeln!(out, "error       {e}");
        }
        let problems = self.problems();
        if problems.is_empty() {
            let _ = writeln!(out, "\nRESULT: this machine holds {n} participants.");
        } else {
            let _ = writeln!(
                out,
                "\nRESULT: this machine does NOT hold {n} participants:"
            );
            for p in problems {
                let _ = writeln!(out, "  - {p}");
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Sandbox

/// Writes the package source of the standard load scenario into `src`: package `id` (UPT
/// `tuk load test`), one test `t1` of [`ITEMS`] single-answer items (key `a`, two
/// competencies), one session [`SESSION`] and `n` participants numbered by
/// [`participant_number`]. `tuk selftest` and `benches/loadgen.rs` both build their package
/// from it, so they put the same exam under load.
pub fn write_load_source(src: &Path, id: &str, n: usize) -> Result<()> {
    std::fs::create_dir_all(src.join("items"))?;
    std::fs::write(
        src.join("package.toml"),
        format!(
            r#"format = 1
id = "{id}"
version = 1
upt = "tuk load test"
title = "Load test package (not an exam)"
timezone = "+07:00"

[[test]]
id = "t1"
title = "Tes Akhir (load test)"
bank = "items/t1.toml"
duration_minutes = 120
items = {ITEMS}
shuffle_items = true
shuffle_options = true
show_score = true
instructions = """<p>Kerjakan semua soal.</p>"""

[[session]]
id = "{SESSION}"
test = "t1"
date = "2026-11-24"
start = "08:00"
end = "10:00"
room = "Lab Komputer 1"
"#
        ),
    )?;
    let mut bank = String::new();
    for i in 1..=ITEMS {
        let competency = if i <= ITEMS / 2 {
            "pedagogik"
        } else {
            "profesional"
        };
        let _ = write!(
            bank,
            r#"[[item]]
id = "L{i:02}"
type = "single"
competency = "{competency}"
indicator = "Indikator soal nomor {i}"
stem = """<p>Soal nomor {i}. Seorang guru merancang pembelajaran yang memperhatikan karakteristik peserta didik, tujuan pembelajaran dan asesmen yang sesuai. Dalam situasi yang digambarkan, langkah guru yang paling tepat adalah ....</p>"""
options = [
  {{ id = "a", html = "menyesuaikan tujuan pembelajaran dengan hasil asesmen awal (pilihan {i}a)" }},
  {{ id = "b", html = "menggunakan satu metode yang sama untuk semua peserta didik (pilihan {i}b)" }},
  {{ id = "c", html = "menunda asesmen sampai akhir semester agar hasilnya lengkap (pilihan {i}c)" }},
  {{ id = "d", html = "menyerahkan perencanaan sepenuhnya kepada kepala sekolah (pilihan {i}d)" }},
]
key = ["a"]

"#
        );
    }
    std::fs::write(src.join("items/t1.toml"), bank)?;
    let mut roster = String::from(
        "participant,name,institution,district,province,test,session,nilai_awal,extra_minutes\n",
    );
    for i in 0..n {
        let _ = writeln!(
            roster,
            "{},\"Peserta Uji Beban {i}, S.Pd.\",SMP Negeri {} Contoh,Kabupaten Contoh,Provinsi Contoh,t1,{SESSION},55.5,0",
            participant_number(i),
            i % 50 + 1
        );
    }
    std::fs::write(src.join("roster.csv"), roster)?;
    Ok(())
}

/// The participant number of the `i`-th (from 0) participant of [`write_load_source`].
pub(crate) fn participant_number(i: usize) -> String {
    format!("2099000{i:06}")
}

struct Sandbox {
    _dir: tempfile::TempDir,
    data: PathBuf,
    token: String,
    logins: Vec<(String, String)>,
}

fn prepare(base: &Path, n: usize) -> Result<Sandbox> {
    let dir = tempfile::Builder::new()
        .prefix(".tuk-selftest-")
        .tempdir_in(base)
        .with_context(|| format!("cannot make the sandbox in {}", base.display()))?;
    let src = dir.path().join("src");
    write_load_source(&src, PACKAGE, n)?;
    let upt = SecretKey::generate("selftest-upt")?;
    let tuk = SecretKey::generate("selftest-tuk")?;
    let source = crate::package::source::read(&src)?;
    let bytes = crate::package::build(&source, &upt, &[tuk.public()], None)?;
    let data = dir.path().join("data");
    let mut pw = crate::exam::secrets::new_password()?;
    pw.push_str(&crate::exam::secrets::new_password()?);
    App::init(&data, Some(tuk), &pw)?;
    let app = App::open(&data)?;
    let r = (|| -> Result<(String, Vec<(String, String)>)> {
        app.trust_add(&upt.public())?;
        app.import(&bytes, "selftest")?;
        let skey = SessionKey::of(PACKAGE, SESSION);
        if let Err(refusal) =
            app.open_session(&skey, None, crate::app::TOKEN_ROTATE_S, "selftest")?
        {
            bail!("cannot open the sandbox session: {refusal}");
        }
        let token = app
            .read()
            .sessions
            .get(&skey)
            .and_then(|s| s.token.as_ref().map(|t| t.current.clone()))
            .ok_or_else(|| anyhow!("the sandbox session has no token"))?;
        Ok((token, app.passwords(PACKAGE)?))
    })();
    app.shutdown();
    let (token, logins) = r?;
    Ok(Sandbox {
        _dir: dir,
        data,
        token,
        logins,
    })
}

// ---------------------------------------------------------------------------------------
// Client

type Sender = http1::SendRequest<Full<Bytes>>;

struct Part {
    number: String,
    send: Sender,
    cookie: String,
    items: Vec<(String, String)>,
}

async fn request(
    send: &mut Sender,
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    body: Option<String>,
) -> Result<(u16, Bytes, Option<String>)> {
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if !cookie.is_empty() {
        b = b.header("cookie", format!("tuk={cookie}"));
    }
    let body = match body {
        Some(s) => {
            b = b.header("content-type", "application/json");
            Bytes::from(s)
        }
        None => Bytes::new(),
    };
    let req = b.body(Full::new(body))?;
    let fut = async {
        send.ready().await?;
        let resp = send.send_request(req).await?;
        let status = resp.status().as_u16();
        let set = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("tuk=").and_then(|r| r.split(';').next()))
            .map(str::to_string);
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, body, set))
    };
    tokio::time::timeout(REQ_TIMEOUT, fut).await.map_err(|_| {
        anyhow!(
            "{method} {path}: no answer within {} s",
            REQ_TIMEOUT.as_secs()
        )
    })?
}

async fn connect(addr: SocketAddr, slots: &tokio::sync::Semaphore) -> Result<Sender> {
    let _permit = slots.acquire().await?;
    let stream = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .map_err(|_| anyhow!("connect: timed out"))??;
    let _ = stream.set_nodelay(true);
    let (send, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Ok(send)
}

fn ok_json(status: u16, body: &Bytes, what: &str) -> Result<serde_json::Value> {
    if status != 200 {
        bail!(
            "{what}: HTTP {status} {}",
            String::from_utf8_lossy(body)
                .chars()
                .take(120)
                .collect::<String>()
        );
    }
    serde_json::from_slice(body).map_err(|e| anyhow!("{what}: not JSON: {e}"))
}

/// Runs the scenario against a server at `addr`. Returns the outcome (errors counted).
async fn scenario(
    addr: SocketAddr,
    token: &str,
    logins: &[(String, String)],
    out: &mut SelftestReport,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECT_SLOTS));
    let mut errors: Vec<String> = Vec::new();
    let storm = logins
        .iter()
        .map(|(number, password)| log_in(addr, &slots, token, number, password));
    let mut parts;
    (out.storm, parts) = phase(storm, &mut errors).await;
    (out.fetch, _) = phase(parts.iter_mut().map(|p| fetch(addr, p)), &mut errors).await;
    (out.answer, _) = phase(parts.iter_mut().map(|p| answer(addr, p)), &mut errors).await;
    (out.finish, _) = phase(parts.iter_mut().map(|p| finish(addr, p)), &mut errors).await;
    out.errors = errors.len();
    out.error_samples = errors.into_iter().take(5).collect();
}

/// Runs one phase: every participant's requests at once; its wall time, the sorted
/// latencies of the participants that got through, and what each returned. A failed
/// participant adds its error to `errors`.
async fn phase<T>(
    participants: impl Iterator<Item = impl Future<Output = Result<(T, Vec<u64>)>>>,
    errors: &mut Vec<String>,
) -> (Phase, Vec<T>) {
    let t0 = Instant::now();
    let results = futures_util::future::join_all(participants).await;
    let mut phase = Phase {
        wall: t0.elapsed(),
        lat_us: Vec::new(),
    };
    let mut done = Vec::new();
    for r in results {
        match r {
            Ok((x, lat)) => {
                phase.lat_us.extend(lat);
                done.push(x);
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    phase.lat_us.sort_unstable();
    (phase, done)
}

/// A request timed: the answer's JSON (HTTP 200 only), the cookie it set, its latency.
async fn timed(
    send: &mut Sender,
    addr: SocketAddr,
    (method, path, what): (&str, &str, &str),
    cookie: &str,
    body: Option<String>,
) -> Result<(serde_json::Value, Option<String>, u64)> {
    let t = Instant::now();
    let (st, b, set) = request(send, addr, method, path, cookie, body).await?;
    let us = t.elapsed().as_micros() as u64;
    Ok((ok_json(st, &b, what)?, set, us))
}

/// 1. storm: a new connection, login and start with the token.
async fn log_in(
    addr: SocketAddr,
    slots: &tokio::sync::Semaphore,
    token: &str,
    number: &str,
    password: &str,
) -> Result<(Part, Vec<u64>)> {
    let mut send = connect(addr, slots).await?;
    let body = serde_json::json!({"participant": number, "password": password}).to_string();
    let login = ("POST", "/api/v1/login", "login");
    let (_, cookie, l1) = timed(&mut send, addr, login, "", Some(body)).await?;
    let cookie = cookie.ok_or_else(|| anyhow!("login: no cookie"))?;
    let body = serde_json::json!({"token": token}).to_string();
    let start = ("POST", "/api/v1/start", "start");
    let (_, _, l2) = timed(&mut send, addr, start, &cookie, Some(body)).await?;
    let part = Part {
        number: number.to_string(),
        send,
        cookie,
        items: Vec::new(),
    };
    Ok((part, vec![l1, l2]))
}

/// 2. fetch: every item, keeping its id and first option.
async fn fetch(addr: SocketAddr, p: &mut Part) -> Result<((), Vec<u64>)> {
    let mut lat = Vec::new();
    for n in 1..=ITEMS {
        let path = format!("/api/v1/items/{n}");
        let (v, _, l) = timed(&mut p.send, addr, ("GET", &path, "item"), &p.cookie, None).await?;
        lat.push(l);
        let id = v["id"]
            .as_str()
            .ok_or_else(|| anyhow!("item: no id"))?
            .to_string();
        let opt = v["options"][0]["id"]
            .as_str()
            .ok_or_else(|| anyhow!("item: no options"))?
            .to_string();
        p.items.push((id, opt));
    }
    Ok(((), lat))
}

/// 3. answer: every item, back to back.
async fn answer(addr: SocketAddr, p: &mut Part) -> Result<((), Vec<u64>)> {
    let mut lat = Vec::new();
    let items = p.items.clone();
    for (seq, (id, opt)) in items.iter().enumerate() {
        let path = format!("/api/v1/answers/{id}");
        let body = serde_json::json!({"choice": [opt], "seq": seq as u64 + 1}).to_string();
        let save = ("PUT", path.as_str(), "save");
        let (v, _, l) = timed(&mut p.send, addr, save, &p.cookie, Some(body)).await?;
        lat.push(l);
        if v["saved"] != serde_json::Value::Bool(true) {
            bail!("save of {} for {}: not saved", id, p.number);
        }
    }
    Ok(((), lat))
}

/// 4. finish.
async fn finish(addr: SocketAddr, p: &mut Part) -> Result<((), Vec<u64>)> {
    let finish = ("POST", "/api/v1/finish", "finish");
    let (_, _, l) = timed(&mut p.send, addr, finish, &p.cookie, Some("{}".into())).await?;
    Ok(((), vec![l]))
}

fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs the self-test with `n` participants in a sandbox under `base`.
pub(crate) fn run(base: &Path, n: usize, progress: impl Fn(&str)) -> Result<SelftestReport> {
    if n == 0 {
        bail!("--participants must be at least 1");
    }
    let t0 = Instant::now();
    progress(&format!(
        "preparing a sandbox in {} ({n} participants: passwords are hashed like the real ones, this takes a while)…",
        base.display()
    ));
    let sb = prepare(base, n)?;
    let mut out = SelftestReport {
        participants: n,
        setup: t0.elapsed(),
        ..SelftestReport::default()
    };
    let app = Arc::new(App::open(&sb.data)?);
    let db = sb.data.join(crate::store::DB_FILE);
    out.store_bytes_before = std::fs::metadata(&db).map_or(0, |m| m.len());

    // The server: the same accept loop as `tuk serve`, on its own runtime and threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tuk-selftest-server")
        .build()?;
    let listener =
        rt.block_on(async { crate::server::bind(SocketAddr::from(([127, 0, 0, 1], 0))) })?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(crate::site::serve(
        app.clone(),
        listener,
        None,
        async {
            let _ = stop_rx.await;
        },
        Duration::from_secs(5),
    ));
    progress(&format!("running the exam scenario against {addr}…"));

    // The clients: one thread, so the server keeps the other core(s).
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&client, scenario(addr, &sb.token, &sb.logins, &mut out));
    drop(client);

    let _ = stop_tx.send(());
    let _ = rt.block_on(server);
    drop(rt);
    app.shutdown();
    out.store_bytes_after = std::fs::metadata(&db).map_or(0, |m| m.len());
    out.peak_rss = peak_rss();
    drop(app);
    drop(sb);
    Ok(out)
}

//! Load generator: a whole exam, end to end, against a real `tuk serve` on 127.0.0.1.
//!
//! Run with `cargo bench --bench loadgen` (the standard set, a few minutes on 2 cores), or
//! pick runs:
//!
//! ```sh
//! cargo bench --bench loadgen -- --mode max --participants 40,500,2000
//! cargo bench --bench loadgen -- --mode paced --participants 2000 --duration 30 --interval 2000
//! cargo bench --bench loadgen -- --mode storm --participants 2000
//! ```
//!
//! (or the env vars `LOADGEN_MODE`, `LOADGEN_PARTICIPANTS`, `LOADGEN_DURATION_S`,
//! `LOADGEN_INTERVAL_MS`, `LOADGEN_SEED`; `--keep` / `LOADGEN_KEEP=1` keeps the temp folder).
//!
//! The standard set is N = 20, 100, 500 and 2,000, each `max` (stress) and `paced` (30 s):
//! about 10 minutes on 2 cores. `--quick` / `LOADGEN_QUICK=1` runs max 20, 100, 2,000 and
//! paced 2,000 for 10 s (a few minutes). `LOADGEN_PERF=DIR` records each run's server with
//! `perf record` (see `docs/performance.md`).
//!
//! The first table (RATIOS) gives, per run, the figures issue 17 compares: answers/s, save
//! p50/p99, server CPU ms per answer and per answered question (from `/proc/PID/stat`),
//! peak RSS, the login-storm time, the load average of the machine, and which side was the
//! bottleneck (the generator, the server's CPU or disk, or other processes).
//!
//! Every run sets up from scratch in a temporary folder, with the `tuk` CLI only: fresh UPT
//! and TUK keys, the package source `tuk selftest` also uses
//! (`deploy::selftest::write_load_source`: one test of 40 single-answer items with 4
//! options; N participants, all in one session), `package build`, `init`, `trust add`,
//! `package import`, `session open` (token), `session passwords`, then `tuk serve --listen
//! 127.0.0.1:0`. Then the standard scenario, in phases (each phase waits for every
//! participant before the next one starts):
//!
//! 1. **storm**: every participant at once connects (at most 200 connects in flight, to stay
//!    under the listen backlog; one keep-alive connection per participant), logs in
//!    (`POST /api/v1/login`) and starts (`POST /api/v1/start` with the token);
//! 2. **fetch**: `GET /api/v1/items/1..=40`; then one participant fetches `GET /soal/1` (its
//!    size is reported);
//! 3. **answer**: `PUT /api/v1/answers/{item}` for all 40 items, back to back (mode `max`),
//!    or one save every `interval` per participant for `duration`, start offsets spread
//!    at random over the first interval (mode `paced`); `storm` skips this and `fetch`;
//! 4. **finish**: `POST /api/v1/finish`.
//!
//! The client is tokio + hyper 1 (`client::conn::http1`) on a current-thread runtime, so the
//! server keeps the other core; load tool and server still share the machine, so the
//! numbers are lower bounds for the server alone. Latency is from sending the request to
//! the last byte of the response body. A response counts as an error unless it is 200 with
//! the expected body (a save must answer `{"saved":true,"seq":k}`).
//!
//! Besides latencies, every phase reports what it cost, from /proc: CPU of the server, of
//! this client and of every other process (the machine may be shared: then the numbers are
//! lower bounds), the `tuk-writer` thread's CPU and run-queue wait (`schedstat`), the
//! server's disk writes (`write_bytes`), minor page faults and RSS; and, from the server's
//! `/metrics` if it has one, commits, mean batch size, time in commits and store size.
//! Peak RSS is `VmHWM` of the server, read just before it is stopped (SIGTERM). The
//! process exits non-zero if any request failed.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tuk::deploy::selftest::{ITEMS, SESSION};

const TUK: &str = env!("CARGO_BIN_EXE_tuk");
const PACKAGE_ID: &str = "loadgen";
const OPTIONS: [&str; 4] = ["a", "b", "c", "d"];
/// Connects in flight at once (the server's backlog is 4096; this keeps far below it).
const CONNECT_SLOTS: usize = 200;
/// Any single request (or connect) that takes longer is an error.
const REQ_TIMEOUT: Duration = Duration::from_secs(60);
/// The whole bench is killed (server included) after this.
const WATCHDOG: Duration = Duration::from_secs(20 * 60);
/// Error messages kept per run, for the report.
const ERROR_SAMPLES: usize = 8;

/// The running server's pid, for the panic hook and the watchdog.
static SERVER_PID: AtomicU32 = AtomicU32::new(0);

type Sender = http1::SendRequest<Full<Bytes>>;

// ---------------------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Max,
    Paced,
    Storm,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Max => "max",
            Mode::Paced => "paced",
            Mode::Storm => "storm",
        }
    }
}

struct Opts {
    runs: Vec<(Mode, usize)>,
    /// `LOADGEN_PERF=DIR`: `perf record` the server of every run into DIR.
    perf: Option<PathBuf>,
    paced: Duration,
    interval: Duration,
    seed: u64,
    keep: bool,
}

fn opts() -> Opts {
    let mut mode: Option<String> = std::env::var("LOADGEN_MODE").ok();
    let mut participants: Option<String> = std::env::var("LOADGEN_PARTICIPANTS").ok();
    let mut duration_s: u64 = env_num("LOADGEN_DURATION_S").unwrap_or(30);
    let mut duration_given = std::env::var("LOADGEN_DURATION_S").is_ok();
    let mut interval_ms: u64 = env_num("LOADGEN_INTERVAL_MS").unwrap_or(2000);
    let mut seed: Option<u64> = env_num("LOADGEN_SEED");
    let mut keep = std::env::var("LOADGEN_KEEP").is_ok_and(|v| v == "1");
    let mut quick = std::env::var("LOADGEN_QUICK").is_ok_and(|v| v == "1");
    let perf = std::env::var_os("LOADGEN_PERF").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (k, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut val = |name: &str| -> String {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match k.as_str() {
            "--mode" => mode = Some(val("--mode")),
            "--participants" | "-n" => participants = Some(val("--participants")),
            "--duration" => {
                duration_s = val("--duration").parse().expect("--duration SECONDS");
                duration_given = true;
            }
            "--interval" => interval_ms = val("--interval").parse().expect("--interval MS"),
            "--seed" => seed = Some(val("--seed").parse().expect("--seed NUMBER")),
            "--keep" => keep = true,
            "--quick" => quick = true,
            "--help" | "-h" => {
                println!(
                    "cargo bench --bench loadgen -- [--quick] [--mode max|paced|storm|standard] \
                     [--participants N[,N..]] [--duration S] [--interval MS] [--seed N] [--keep]"
                );
                std::process::exit(0);
            }
            // `cargo bench` passes `--bench`; filters and other harness flags are ignored.
            _ => {}
        }
    }
    let ns: Option<Vec<usize>> = participants.map(|s| {
        s.split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .expect("--participants takes numbers, e.g. 40,500")
            })
            .collect()
    });
    if quick && !duration_given {
        duration_s = duration_s.min(10);
    }
    let runs = match mode.as_deref() {
        None | Some("standard") | Some("all") if ns.is_none() && quick => vec![
            (Mode::Max, 20),
            (Mode::Max, 100),
            (Mode::Max, 2000),
            (Mode::Paced, 2000),
        ],
        None | Some("standard") | Some("all") if ns.is_none() => [20, 100, 500, 2000]
            .into_iter()
            .flat_map(|n| [(Mode::Max, n), (Mode::Paced, n)])
            .collect(),
        None | Some("max") => ns
            .unwrap_or(vec![40, 500, 2000])
            .into_iter()
            .map(|n| (Mode::Max, n))
            .collect(),
        Some("paced") => ns
            .unwrap_or(vec![2000])
            .into_iter()
            .map(|n| (Mode::Paced, n))
            .collect(),
        Some("storm") => ns
            .unwrap_or(vec![2000])
            .into_iter()
            .map(|n| (Mode::Storm, n))
            .collect(),
        Some(m) => panic!("unknown --mode {m} (max, paced, storm, standard)"),
    };
    assert!(
        runs.iter().all(|(_, n)| (1..=20_000).contains(n)),
        "participants must be 1..=20000"
    );
    assert!(
        interval_ms >= 1 && duration_s >= 1,
        "duration and interval must be > 0"
    );
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    Opts {
        runs,
        perf,
        paced: Duration::from_secs(duration_s),
        interval: Duration::from_millis(interval_ms),
        seed,
        keep,
    }
}

/// The `tuk` binary under test: `LOADGEN_TUK=PATH` (e.g. a copy of an older build, to
/// compare two builds under the same load), else the one cargo built with this bench.
fn tuk_bin() -> PathBuf {
    std::env::var_os("LOADGEN_TUK").map_or_else(|| PathBuf::from(TUK), PathBuf::from)
}

fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------
// Setup: a package, a data folder and a running server, through the CLI

struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    token: String,
    logins: Vec<(String, String)>,
    _dir: Option<tempfile::TempDir>,
    dir: PathBuf,
    setup: Duration,
    import: Duration,
    /// VmRSS right after `listening:`, before any request.
    rss_idle_kb: Option<u64>,
}

fn tuk(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let mut c = Command::new(tuk_bin());
    for a in args {
        c.arg(a);
    }
    c.env("TUK_LOG", "warn");
    let out = c.output().expect("run tuk");
    if !out.status.success() {
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        panic!(
            "tuk {} failed: {}{}",
            shown.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn setup(n: usize, keep: bool) -> Server {
    let t0 = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("tuk-loadgen-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path().to_path_buf();
    let keys = dir.join("keys");
    let src = dir.join("src");
    let data = dir.join("data");
    let pkg = dir.join("load.tukpkg");
    let admin = dir.join("admin-password.txt");
    tuk(&[&"keygen", &"--out", &keys, &"--name", &"upt"]);
    tuk(&[&"keygen", &"--out", &keys, &"--name", &"tuk"]);
    tuk::deploy::selftest::write_load_source(&src, PACKAGE_ID, n)
        .expect("write the package source");
    tuk(&[
        &"package",
        &"build",
        &src,
        &"--sign",
        &keys.join("upt.key"),
        &"--to",
        &keys.join("tuk.pub"),
        &"-o",
        &pkg,
    ]);
    std::fs::write(&admin, "loadgen-admin-password\n").unwrap();
    tuk(&[
        &"init",
        &"--data",
        &data,
        &"--key",
        &keys.join("tuk.key"),
        &"--admin-password-file",
        &admin,
    ]);
    tuk(&[&"trust", &"add", &keys.join("upt.pub"), &"--data", &data]);
    let ti = Instant::now();
    tuk(&[&"package", &"import", &pkg, &"--data", &data]);
    let import = ti.elapsed();
    let session = format!("{PACKAGE_ID}/{SESSION}");
    let out = tuk(&[&"session", &"open", &session, &"--data", &data]);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("session open prints the token")
        .trim()
        .to_string();
    let out = tuk(&[&"session", &"passwords", &PACKAGE_ID, &"--data", &data]);
    let logins: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("login: "))
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.trim().to_string()))
        .collect();
    assert_eq!(logins.len(), n, "one login per participant");

    let log = std::fs::File::create(dir.join("server.log")).expect("server log");
    let mut child = Command::new(tuk_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("TUK_LOG", "warn")
        // `--mode max` saves far faster than a person: lift the per-attempt save limit
        // (docs/security.md) so the benchmark measures the server, not the limit.
        .env("TUK_SAVE_BURST", "1000000")
        .env("TUK_SAVE_RATE", "1000000")
        // Every participant connects from 127.0.0.1 here (one address per PC in a lab):
        // lift the per-address connection limit (issue 11) above N.
        .env("TUK_MAX_CONN_PER_ADDR", (n + CONNECT_SLOTS).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start tuk serve");
    let pid = child.id();
    SERVER_PID.store(pid, Ordering::SeqCst);
    let stdout = child.stdout.take().expect("server stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        // Drains the server's stdout for its whole life; forwards the lines.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr: SocketAddr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(u) = line.strip_prefix("listening: http://") {
                    break u.trim_end_matches('/').parse().expect("listening address");
                }
            }
            Err(_) => {
                kill_server();
                panic!(
                    "tuk serve did not say `listening:` within 30 s; see {}",
                    dir.join("server.log").display()
                );
            }
        }
    };
    let (tmp, dir) = if keep {
        (None, tmp.keep())
    } else {
        (Some(tmp), dir)
    };
    Server {
        child,
        pid,
        addr,
        token,
        logins,
        _dir: tmp,
        dir,
        setup: t0.elapsed(),
        import,
        rss_idle_kb: proc_status(pid, "VmRSS"),
    }
}

fn kill_server() {
    let pid = SERVER_PID.swap(0, Ordering::SeqCst);
    if pid != 0 {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

impl Server {
    /// SIGTERM (the server drains and closes its store), then SIGKILL after 15 s.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        let how = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break format!("stopped ({st})"),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break "did not stop within 15 s of SIGTERM: killed".to_string();
                }
            }
        };
        SERVER_PID.store(0, Ordering::SeqCst);
        how
    }
}

/// `VmHWM` / `VmRSS` / `Threads` from /proc/PID/status.
fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// utime + stime in seconds (clock ticks of 1/100 s) of a process (`self` or a pid).
fn cpu_s(pid: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = s.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (t(11) + t(12)) as f64 / 100.0
}

/// CPU seconds of each thread of `pid`, summed by thread name (`tuk-writer`, `tuk-http`, ...).
/// Threads that exited between two samples are not counted.
fn thread_cpu(pid: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in rd.flatten() {
        let tid = e.file_name().to_string_lossy().into_owned();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        *out.entry(comm).or_insert(0.0) += cpu_s(&format!("{pid}/task/{tid}"));
    }
    out
}

/// Seconds the `tuk-writer` thread spent waiting on a run queue (runnable, no CPU free),
/// from /proc/PID/task/TID/schedstat.
fn writer_runq_wait(pid: u32) -> f64 {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let mut total = 0.0;
    for e in rd.flatten() {
        let tid = e.file_name().to_string_lossy().into_owned();
        let comm =
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default();
        if comm.trim() != "tuk-writer" {
            continue;
        }
        let st = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"))
            .unwrap_or_default();
        total += st
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0) as f64
            / 1e9;
    }
    total
}

/// Minor page faults of a process so far (fresh memory the kernel had to map and zero).
fn minflt(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    s.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7)?.parse().ok())
        .unwrap_or(0)
}

/// Busy and total CPU seconds of the whole machine (all cores), from /proc/stat.
fn machine_cpu() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    ((total - idle) as f64 / 100.0, total as f64 / 100.0)
}

/// Bytes the server sent to the storage layer (`write_bytes` of /proc/PID/io).
fn write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A snapshot of what the machine and the server have used so far.
struct Usage {
    at: Instant,
    server: f64,
    client: f64,
    threads: BTreeMap<String, f64>,
    machine_busy: f64,
    written: u64,
    faults: u64,
    writer_wait: f64,
}

impl Usage {
    fn now(pid: u32) -> Usage {
        Usage {
            at: Instant::now(),
            server: cpu_s(&pid.to_string()),
            client: cpu_s("self"),
            threads: thread_cpu(pid),
            machine_busy: machine_cpu().0,
            written: write_bytes(pid),
            faults: minflt(pid),
            writer_wait: writer_runq_wait(pid),
        }
    }
}

/// Resource use over a phase, CPU in % of one core (200 = both cores of 2).
#[derive(Default)]
struct Res {
    server: f64,
    /// Server and client CPU seconds (utime + stime) over the phase.
    server_s: f64,
    client_s: f64,
    writer: f64,
    /// The writer thread runnable but waiting for a CPU.
    writer_wait: f64,
    client: f64,
    others: f64,
    written: u64,
    faults: u64,
    rss_after_kb: Option<u64>,
    /// From `/metrics`: commits, jobs committed and time in the writer over the phase.
    commits: Option<f64>,
    jobs: Option<f64>,
    commit_s: Option<f64>,
    store_bytes: Option<f64>,
}

fn res(a: &Usage, b: &Usage, pid: u32) -> Res {
    let wall = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let pc = |x: f64| 100.0 * x / wall;
    let writer = b.threads.get("tuk-writer").copied().unwrap_or(0.0)
        - a.threads.get("tuk-writer").copied().unwrap_or(0.0);
    let server = b.server - a.server;
    let client = b.client - a.client;
    Res {
        server: pc(server),
        server_s: server,
        client_s: client,
        writer: pc(writer),
        writer_wait: pc(b.writer_wait - a.writer_wait),
        client: pc(client),
        others: pc((b.machine_busy - a.machine_busy - server - client).max(0.0)),
        written: b.written.saturating_sub(a.written),
        faults: b.faults.saturating_sub(a.faults),
        rss_after_kb: proc_status(pid, "VmRSS"),
        ..Res::default()
    }
}

// ---------------------------------------------------------------------------------------
// Client

struct Participant {
    idx: usize,
    number: String,
    password: String,
    conn: Option<Sender>,
    cookie: Option<String>,
    /// Item id and option ids, in the participant's order.
    items: Vec<(String, Vec<String>)>,
    dead: bool,
}

#[derive(Default)]
struct Series {
    lat_us: Vec<u32>,
    errors: u64,
}

#[derive(Default)]
struct Rec {
    series: BTreeMap<&'static str, Series>,
    errors: Vec<String>,
    error_count: u64,
    reconnects: u64,
    /// Since the storm began: when the last participant had started.
    last_started: Duration,
    started: usize,
    /// Paced mode: how late a save went out after its scheduled time.
    late_us: Vec<u32>,
    soal_bytes: Option<usize>,
}

struct Ctx {
    addr: SocketAddr,
    host: String,
    token: String,
    connect_slots: tokio::sync::Semaphore,
    rec: RefCell<Rec>,
    rng: Cell<u64>,
    phase_t0: Cell<tokio::time::Instant>,
    interval: Duration,
    paced: Duration,
}

impl Ctx {
    fn rand(&self) -> u64 {
        // xorshift64*
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn ok(&self, what: &'static str, us: u32) {
        self.rec
            .borrow_mut()
            .series
            .entry(what)
            .or_default()
            .lat_us
            .push(us);
    }
    fn fail(&self, what: &'static str, p: &Participant, msg: String) {
        let mut r = self.rec.borrow_mut();
        r.series.entry(what).or_default().errors += 1;
        r.error_count += 1;
        if r.errors.len() < ERROR_SAMPLES {
            r.errors.push(format!("{what} ({}): {msg}", p.number));
        }
    }
}

struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    body: Bytes,
    us: u32,
}

async fn connect(ctx: &Ctx) -> Result<Sender, String> {
    let _slot = ctx
        .connect_slots
        .acquire()
        .await
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let s = tokio::time::timeout(REQ_TIMEOUT, TcpStream::connect(ctx.addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_nodelay(true);
    let (tx, conn) = http1::handshake(TokioIo::new(s))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    ctx.ok("connect", t.elapsed().as_micros() as u32);
    Ok(tx)
}

/// One request on the participant's own keep-alive connection. A connection the server
/// closed while idle (hyper's 30 s header-read timeout) is reopened and counted.
async fn call(
    ctx: &Ctx,
    p: &mut Participant,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<Reply, String> {
    // A kept-alive connection the server closes (its 10 s header deadline) just as a
    // request goes out fails with "canceled" before any response: like a browser, send it
    // once more on a new connection (saves carry their seq, so a repeat is harmless).
    let mut retried = false;
    let (t, parts, body) = loop {
        let usable = match p.conn.as_mut() {
            Some(c) if !c.is_closed() => c.ready().await.is_ok(),
            _ => false,
        };
        let reused = usable;
        if !usable {
            if p.conn.is_some() {
                ctx.rec.borrow_mut().reconnects += 1;
            }
            p.conn = None;
            let mut c = connect(ctx).await?;
            c.ready()
                .await
                .map_err(|e| format!("connection not ready: {e}"))?;
            p.conn = Some(c);
        }
        let tx = p.conn.as_mut().expect("connected");
        let mut b = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, &ctx.host);
        if let Some(c) = &p.cookie {
            b = b.header(header::COOKIE, format!("tuk={c}"));
        }
        let req = match &body {
            Some(s) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(s.clone()))),
            None => b.body(Full::new(Bytes::new())),
        }
        .map_err(|e| e.to_string())?;
        let t = Instant::now();
        let sent = match tokio::time::timeout(REQ_TIMEOUT, tx.send_request(req)).await {
            Err(_) => return Err(format!("no response within {REQ_TIMEOUT:?}")),
            Ok(Err(e)) if reused && !retried && e.is_canceled() => {
                retried = true;
                p.conn = None;
                ctx.rec.borrow_mut().reconnects += 1;
                continue;
            }
            Ok(r) => r.map_err(|e| format!("send: {e}"))?,
        };
        let (parts, b) = sent.into_parts();
        let b = tokio::time::timeout(REQ_TIMEOUT, b.collect())
            .await
            .map_err(|_| format!("no response within {REQ_TIMEOUT:?}"))?
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        break (t, parts, b);
    };
    let us = t.elapsed().as_micros() as u32;
    let set_cookie = parts
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("tuk="))
        .map(|v| v.split(';').next().unwrap_or("").to_string());
    Ok(Reply {
        status: parts.status,
        set_cookie,
        body,
        us,
    })
}

fn short(body: &Bytes) -> String {
    let s = String::from_utf8_lossy(body);
    s.chars().take(160).collect()
}

/// A request that must answer 200 with a JSON body; the body is returned.
async fn json_call(
    ctx: &Ctx,
    p: &mut Participant,
    what: &'static str,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Option<(serde_json::Value, Option<String>)> {
    match call(ctx, p, method, path, body.map(|b| b.to_string())).await {
        Ok(r) if r.status == StatusCode::OK => match serde_json::from_slice(&r.body) {
            Ok(v) => {
                ctx.ok(what, r.us);
                Some((v, r.set_cookie))
            }
            Err(e) => {
                ctx.fail(what, p, format!("bad JSON ({e}): {}", short(&r.body)));
                None
            }
        },
        Ok(r) => {
            ctx.fail(what, p, format!("{} {}", r.status, short(&r.body)));
            None
        }
        Err(e) => {
            ctx.fail(what, p, e);
            None
        }
    }
}

/// The server's `/metrics` counters (plain `name value` lines), on a connection of its own;
/// `None` if the server has no `/metrics`.
async fn scrape(addr: SocketAddr) -> Option<BTreeMap<String, f64>> {
    let s = tokio::time::timeout(REQ_TIMEOUT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let (mut tx, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(s))
        .await
        .ok()?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    let req = Request::get("/metrics")
        .header(header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .ok()?;
    let resp = tokio::time::timeout(REQ_TIMEOUT, tx.send_request(req))
        .await
        .ok()?
        .ok()?;
    if resp.status() != StatusCode::OK {
        return None;
    }
    let body = tokio::time::timeout(REQ_TIMEOUT, resp.into_body().collect())
        .await
        .ok()?
        .ok()?
        .to_bytes();
    Some(
        String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.contains('{'))
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// The scenario's phases, one task per participant

async fn storm(ctx: Rc<Ctx>, mut p: Participant) -> Participant {
    match connect(&ctx).await {
        Ok(c) => p.conn = Some(c),
        Err(e) => {
            ctx.fail("connect", &p, e);
            p.dead = true;
            return p;
        }
    }
    let body = serde_json::json!({"participant": p.number, "password": p.password});
    let Some((_, cookie)) = json_call(
        &ctx,
        &mut p,
        "login",
        Method::POST,
        "/api/v1/login",
        Some(body),
    )
    .await
    else {
        p.dead = true;
        return p;
    };
    let Some(cookie) = cookie else {
        ctx.fail("login", &p, "no tuk cookie in the reply".into());
        p.dead = true;
        return p;
    };
    p.cookie = Some(cookie);
    let body = serde_json::json!({"token": ctx.token});
    match json_call(
        &ctx,
        &mut p,
        "start",
        Method::POST,
        "/api/v1/start",
        Some(body),
    )
    .await
    {
        Some((v, _)) if v["items"].as_u64() == Some(ITEMS as u64) => {
            let mut r = ctx.rec.borrow_mut();
            r.started += 1;
            r.last_started = r.last_started.max(ctx.phase_t0.get().elapsed());
        }
        Some((v, _)) => {
            ctx.fail("start", &p, format!("unexpected reply {v}"));
            p.dead = true;
        }
        None => p.dead = true,
    }
    p
}

async fn fetch(ctx: Rc<Ctx>, mut p: Participant) -> Participant {
    if p.dead {
        return p;
    }
    for n in 1..=ITEMS {
        let path = format!("/api/v1/items/{n}");
        let Some((v, _)) = json_call(&ctx, &mut p, "get item", Method::GET, &path, None).await
        else {
            p.dead = true;
            return p;
        };
        let id = v["id"].as_str().unwrap_or("").to_string();
        let opts: Vec<String> = v["options"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if id.is_empty() || opts.len() != OPTIONS.len() {
            ctx.fail("get item", &p, format!("unexpected item {v}"));
            p.dead = true;
            return p;
        }
        p.items.push((id, opts));
    }
    p
}

async fn soal_page(ctx: Rc<Ctx>, mut p: Participant) -> Participant {
    if p.dead {
        return p;
    }
    match call(&ctx, &mut p, Method::GET, "/soal/1", None).await {
        Ok(r) if r.status == StatusCode::OK => {
            ctx.ok("GET /soal/1", r.us);
            ctx.rec.borrow_mut().soal_bytes = Some(r.body.len());
        }
        Ok(r) => ctx.fail("GET /soal/1", &p, format!("{}", r.status)),
        Err(e) => ctx.fail("GET /soal/1", &p, e),
    }
    p
}

async fn save(ctx: &Ctx, p: &mut Participant, k: usize, seq: u64) -> bool {
    let (id, opts) = p.items[k % p.items.len()].clone();
    let choice = &opts[(ctx.rand() % opts.len() as u64) as usize];
    let body = serde_json::json!({"choice": [choice], "doubtful": false, "seq": seq});
    let path = format!("/api/v1/answers/{id}");
    match call(ctx, p, Method::PUT, &path, Some(body.to_string())).await {
        Ok(r) if r.status == StatusCode::OK => {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if v["saved"] == serde_json::Value::Bool(true) && v["seq"].as_u64() == Some(seq) {
                ctx.ok("PUT answer", r.us);
                true
            } else {
                ctx.fail(
                    "PUT answer",
                    p,
                    format!("unexpected reply {}", short(&r.body)),
                );
                false
            }
        }
        Ok(r) => {
            ctx.fail("PUT answer", p, format!("{} {}", r.status, short(&r.body)));
            false
        }
        Err(e) => {
            ctx.fail("PUT answer", p, e);
            false
        }
    }
}

async fn answer_max(ctx: Rc<Ctx>, mut p: Participant) -> Participant {
    if p.dead {
        return p;
    }
    for k in 0..p.items.len() {
        if !save(&ctx, &mut p, k, 1).await {
            p.dead = true;
            break;
        }
    }
    p
}

async fn answer_paced(ctx: Rc<Ctx>, mut p: Participant) -> Participant {
    if p.dead {
        return p;
    }
    let t0 = ctx.phase_t0.get();
    let offset = Duration::from_micros(ctx.rand() % ctx.interval.as_micros().max(1) as u64);
    let mut k = 0usize;
    loop {
        let at_offset = offset + ctx.interval * k as u32;
        if at_offset >= ctx.paced {
            break;
        }
        let at = t0 + at_offset;
        tokio::time::sleep_until(at).await;
        let late = tokio::time::Instant::now().saturating_duration_since(at);
        ctx.rec.borrow_mut().late_us.push(late.as_micros() as u32);
        // Each item comes round again only after all 40, with a higher seq: a real change.
        if !save(&ctx, &mut p, k, k as u64 + 1).await {
            p.dead = true;
            break;
        }
        k += 1;
    }
    p
}

async fn finish(ctx: Rc<Ctx>, mut p: Participant) -> Participant {
    if p.dead {
        return p;
    }
    match json_call(
        &ctx,
        &mut p,
        "finish",
        Method::POST,
        "/api/v1/finish",
        // Every non-GET API request must be `application/json` (CSRF guard), even empty.
        Some(serde_json::json!({})),
    )
    .await
    {
        Some((v, _)) if v["status"] == "finished" => {}
        Some((v, _)) => ctx.fail("finish", &p, format!("unexpected reply {v}")),
        None => {}
    }
    p
}

// ---------------------------------------------------------------------------------------
// Running phases and measuring them

struct PhaseStat {
    name: &'static str,
    wall: Duration,
    /// Requests that succeeded, by kind, and their latencies.
    series: BTreeMap<&'static str, Series>,
    res: Res,
}

async fn phase<F, Fut>(
    ctx: &Rc<Ctx>,
    server_pid: u32,
    name: &'static str,
    ps: Vec<Participant>,
    f: F,
) -> (Vec<Participant>, PhaseStat)
where
    F: Fn(Rc<Ctx>, Participant) -> Fut,
    Fut: Future<Output = Participant> + 'static,
{
    let before = std::mem::take(&mut ctx.rec.borrow_mut().series);
    let m0 = scrape(ctx.addr).await;
    let u0 = Usage::now(server_pid);
    let t = Instant::now();
    ctx.phase_t0.set(tokio::time::Instant::now());
    let mut set = tokio::task::JoinSet::new();
    for p in ps {
        set.spawn_local(f(ctx.clone(), p));
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("participant task"));
    }
    let wall = t.elapsed();
    out.sort_by_key(|p| p.idx);
    let series = std::mem::replace(&mut ctx.rec.borrow_mut().series, before);
    let u1 = Usage::now(server_pid);
    let m1 = scrape(ctx.addr).await;
    let mut res = res(&u0, &u1, server_pid);
    if let (Some(a), Some(b)) = (&m0, &m1) {
        let d = |k: &str| Some(b.get(k)? - a.get(k)?);
        res.commits = d("tuk_store_commits_total");
        res.jobs = d("tuk_store_commit_jobs_total");
        res.commit_s = d("tuk_store_commit_seconds_total");
        res.store_bytes = b.get("tuk_store_bytes").copied();
    }
    let stat = PhaseStat {
        name,
        wall,
        series,
        res,
    };
    (out, stat)
}

struct RunResult {
    mode: Mode,
    n: usize,
    setup: Duration,
    import: Duration,
    phases: Vec<PhaseStat>,
    rec: Rec,
    hwm_kb: Option<u64>,
    rss_idle_kb: Option<u64>,
    rss_end_kb: Option<u64>,
    threads: Option<u64>,
    stopped: String,
    dir: Option<PathBuf>,
    /// 1-minute load average of the machine (/proc/loadavg) when the run's storm began and
    /// when its last phase ended.
    load: (f64, f64),
}

impl RunResult {
    fn phase(&self, name: &str) -> Option<&PhaseStat> {
        self.phases.iter().find(|p| p.name == name)
    }
    fn lat(&self, phase: &str, kind: &str) -> Option<&Series> {
        self.phase(phase)?.series.get(kind)
    }
}

fn run(mode: Mode, n: usize, o: &Opts, seed: u64) -> RunResult {
    eprintln!("[loadgen] {} N={n}: setting up ...", mode.name());
    let server = setup(n, o.keep);
    eprintln!(
        "[loadgen] {} N={n}: setup {:.1} s (import {:.1} s), server pid {} on {}",
        mode.name(),
        server.setup.as_secs_f64(),
        server.import.as_secs_f64(),
        server.pid,
        server.addr
    );
    let ctx = Rc::new(Ctx {
        addr: server.addr,
        host: server.addr.to_string(),
        token: server.token.clone(),
        connect_slots: tokio::sync::Semaphore::new(CONNECT_SLOTS),
        rec: RefCell::new(Rec::default()),
        rng: Cell::new(seed),
        phase_t0: Cell::new(tokio::time::Instant::now()),
        interval: o.interval,
        paced: o.paced,
    });
    let participants: Vec<Participant> = server
        .logins
        .iter()
        .enumerate()
        .map(|(idx, (number, password))| Participant {
            idx,
            number: number.clone(),
            password: password.clone(),
            conn: None,
            cookie: None,
            items: Vec::new(),
            dead: false,
        })
        .collect();
    let pid = server.pid;
    let load0 = loadavg();
    let perf = o.perf.as_ref().map(|d| perf_attach(d, mode, n, pid));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let local = tokio::task::LocalSet::new();
    let phases = local.block_on(&rt, async {
        let mut phases = Vec::new();
        let (ps, st) = phase(&ctx, pid, "storm", participants, storm).await;
        phases.push(st);
        let ps = if mode == Mode::Storm {
            ps
        } else {
            let (mut ps, st) = phase(&ctx, pid, "fetch", ps, fetch).await;
            phases.push(st);
            // One participant's question page, for its size (outside the timed phases).
            if let Some(i) = ps.iter().position(|p| !p.dead) {
                let p = ps.remove(i);
                let p = soal_page(ctx.clone(), p).await;
                ps.insert(i, p);
            }
            let (ps, st) = match mode {
                Mode::Paced => phase(&ctx, pid, "answer", ps, answer_paced).await,
                _ => phase(&ctx, pid, "answer", ps, answer_max).await,
            };
            phases.push(st);
            let (ps, st) = phase(&ctx, pid, "finish", ps, finish).await;
            phases.push(st);
            ps
        };
        drop(ps); // closes every connection
        phases
    });
    drop(local);
    drop(rt);
    let load1 = loadavg();
    if let Some(p) = perf {
        perf_stop(p);
    }
    let hwm_kb = proc_status(pid, "VmHWM");
    let rss_end_kb = proc_status(pid, "VmRSS");
    let rss_idle_kb = server.rss_idle_kb;
    let threads = proc_status(pid, "Threads");
    let dir = o.keep.then(|| server.dir.clone());
    let (setup, import) = (server.setup, server.import);
    let stopped = server.stop();
    let rec = std::mem::take(&mut *ctx.rec.borrow_mut());
    RunResult {
        mode,
        n,
        setup,
        import,
        phases,
        rec,
        hwm_kb,
        rss_idle_kb,
        rss_end_kb,
        threads,
        stopped,
        dir,
        load: (load0, load1),
    }
}

/// The 1-minute load average of the machine.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// `LOADGEN_PERF=DIR`: samples the server's CPU with `perf record` (software clock, 499 Hz,
/// no call graphs) for the whole run, into `DIR/perf-MODE-N.data`; read it with
/// `perf report -i FILE --no-children --sort symbol`.
fn perf_attach(dir: &Path, mode: Mode, n: usize, pid: u32) -> Child {
    std::fs::create_dir_all(dir).expect("perf output folder");
    let out = dir.join(format!("perf-{}-{n}.data", mode.name()));
    let child = Command::new("perf")
        .args([
            "record",
            "-e",
            "cpu-clock",
            "-F",
            "499",
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("LOADGEN_PERF is set but `perf` cannot be started");
    // perf needs a moment to attach before the storm begins.
    std::thread::sleep(Duration::from_millis(500));
    child
}

/// Stops `perf record` with SIGINT so it writes its file, and waits for it (at most 20 s).
fn perf_stop(mut p: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &p.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = p.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = p.kill();
    let _ = p.wait();
}

// ---------------------------------------------------------------------------------------
// Report

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

struct Lat {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn lat(s: Option<&Series>) -> Lat {
    let mut v = s.map(|s| s.lat_us.clone()).unwrap_or_default();
    v.sort_unstable();
    Lat {
        n: v.len(),
        p50: pct(&v, 50.0),
        p90: pct(&v, 90.0),
        p99: pct(&v, 99.0),
        max: pct(&v, 100.0),
    }
}

fn ms(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn mib(kb: Option<u64>) -> String {
    kb.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// Which side limited a run's answer phase, from CPU use: the generator (its one thread
/// near a full core), the machine (every core busy, others included), the server's store
/// (the writer thread in commits most of the time), or nobody (a paced run that kept up).
fn bottleneck(r: &RunResult) -> &'static str {
    let Some(a) = r.phase("answer").or_else(|| r.phase("storm")) else {
        return "-";
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    let busy = a.res.server + a.res.client + a.res.others;
    let in_commits = a
        .res
        .commit_s
        .map_or(0.0, |t| 100.0 * t / a.wall.as_secs_f64().max(1e-9));
    if a.res.client >= 85.0 {
        "GENERATOR (its core is full: the server can take more)"
    } else if busy >= 90.0 * cores {
        if a.res.others > a.res.server {
            "machine (other processes took the cores)"
        } else {
            "server CPU (the cores are full, mostly with the server)"
        }
    } else if in_commits >= 80.0 {
        "server disk (the writer is in commits most of the time)"
    } else if r.mode == Mode::Paced {
        "none (the server kept up with the offered load)"
    } else {
        "server latency (neither CPU nor disk full)"
    }
}

/// The summary table of issue 17: one row per run with the figures that are compared.
fn ratios(w: &mut String, results: &[RunResult]) {
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "RATIOS (CPU = utime + stime from /proc/PID/stat; per answer = server CPU of the phase / answers saved; per answered question = server CPU of the fetch and answer phases / answers saved, as an item is fetched once per answer)"
    );
    let _ = writeln!(
        w,
        "| run | N | answers/s | save p50 ms | save p99 ms | server CPU ms per answer | per answered question (fetch + save) | generator CPU ms per answer | peak RSS (VmHWM) MiB | login storm s | server CPU % | generator CPU % | others CPU % | load avg 1 min start/end | errors | bottleneck |"
    );
    let _ = writeln!(
        w,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in results {
        let l = lat(r.lat("answer", "PUT answer"));
        let a = r.phase("answer");
        let f = r.phase("fetch");
        let wall = a.map_or(f64::NAN, |a| a.wall.as_secs_f64());
        let answers = l.n.max(1) as f64;
        let per = a.map_or(f64::NAN, |a| 1000.0 * a.res.server_s / answers);
        let gen_per = a.map_or(f64::NAN, |a| 1000.0 * a.res.client_s / answers);
        let per_q = match (a, f) {
            (Some(a), Some(f)) => 1000.0 * (a.res.server_s + f.res.server_s) / answers,
            _ => f64::NAN,
        };
        let show = |x: f64| {
            if x.is_nan() {
                "-".to_string()
            } else {
                format!("{x:.3}")
            }
        };
        let ph = a.or_else(|| r.phase("storm"));
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.0} | {:.0} | {:.1} / {:.1} | {} | {} |",
            r.mode.name(),
            r.n,
            if l.n == 0 {
                "-".into()
            } else {
                format!("{:.0}", l.n as f64 / wall)
            },
            ms(l.p50),
            ms(l.p99),
            show(per),
            show(per_q),
            show(gen_per),
            mib(r.hwm_kb),
            r.rec.last_started.as_secs_f64(),
            ph.map_or(f64::NAN, |p| p.res.server),
            ph.map_or(f64::NAN, |p| p.res.client),
            ph.map_or(f64::NAN, |p| p.res.others),
            r.load.0,
            r.load.1,
            r.rec.error_count,
            bottleneck(r),
        );
    }
}

fn report(results: &[RunResult], o: &Opts) {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "tuk loadgen: server `tuk serve` (release) and this client (1 thread) on the same {} cores, 127.0.0.1; latencies in ms",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (busy, wall) =
        results
            .iter()
            .flat_map(|r| r.phases.iter())
            .fold((0.0, 0.0), |(b, w), p| {
                (
                    b + p.res.others * p.wall.as_secs_f64(),
                    w + p.wall.as_secs_f64(),
                )
            });
    let others = busy / wall.max(1e-9);
    let _ = writeln!(
        w,
        "other processes on this machine used {others:.0}% of one core on average during the measured phases{}",
        if others > 20.0 {
            " (shared machine: server and client had less than 2 cores; treat the numbers as lower bounds)"
        } else {
            ""
        }
    );
    ratios(w, results);
    let max: Vec<&RunResult> = results.iter().filter(|r| r.mode == Mode::Max).collect();
    if !max.is_empty() {
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "MAX (every participant saves its 40 answers back to back)"
        );
        let _ = writeln!(
            w,
            "| N | answers | answer phase s | answers/s | PUT p50 | p90 | p99 | max | errors | server CPU % | peak RSS MiB | /soal/1 bytes |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &max {
            let a = r.phase("answer");
            let l = lat(r.lat("answer", "PUT answer"));
            let wall = a.map_or(f64::NAN, |a| a.wall.as_secs_f64());
            let _ = writeln!(
                w,
                "| {} | {} | {:.2} | {:.0} | {} | {} | {} | {} | {} | {:.0} | {} | {} |",
                r.n,
                l.n,
                wall,
                l.n as f64 / wall,
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max),
                r.rec.error_count,
                a.map_or(f64::NAN, |a| a.res.server),
                mib(r.hwm_kb),
                r.rec.soal_bytes.map_or("-".into(), |b| b.to_string()),
            );
        }
    }
    let paced: Vec<&RunResult> = results.iter().filter(|r| r.mode == Mode::Paced).collect();
    if !paced.is_empty() {
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "PACED (each participant saves one answer every {} ms for {} s; start offsets random over the first interval; target p99 < 25 ms)",
            o.interval.as_millis(),
            o.paced.as_secs()
        );
        let _ = writeln!(
            w,
            "| N | saves | offered/s | achieved/s | PUT p50 | p90 | p99 | max | send late p99 | errors | server CPU % | peak RSS MiB | p99 < 25 ms |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &paced {
            let a = r.phase("answer");
            let l = lat(r.lat("answer", "PUT answer"));
            let wall = a.map_or(f64::NAN, |a| a.wall.as_secs_f64());
            let mut late = r.rec.late_us.clone();
            late.sort_unstable();
            let _ = writeln!(
                w,
                "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} |",
                r.n,
                l.n,
                r.n as f64 * 1000.0 / o.interval.as_millis() as f64,
                l.n as f64 / wall,
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max),
                ms(pct(&late, 99.0)),
                r.rec.error_count,
                a.map_or(f64::NAN, |a| a.res.server),
                mib(r.hwm_kb),
                if l.p99 < 25.0 { "yes" } else { "NO" },
            );
        }
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "LOGIN STORM (phase 1 of every run: all N connect [<= {CONNECT_SLOTS} connects in flight], log in and start at once; target for 2000: last started < 20 s)"
    );
    let _ = writeln!(
        w,
        "| run | N | last started s | login p50 | login p99 | login max | start p50 | start p99 | connect p99 | started | errors | server CPU % | < 20 s |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let Some(s) = r.phase("storm") else { continue };
        let lg = lat(s.series.get("login"));
        let stt = lat(s.series.get("start"));
        let cn = lat(s.series.get("connect"));
        let errors: u64 = s.series.values().map(|x| x.errors).sum();
        let _ = writeln!(
            w,
            "| {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {}/{} | {} | {:.0} | {} |",
            r.mode.name(),
            r.n,
            r.rec.last_started.as_secs_f64(),
            ms(lg.p50),
            ms(lg.p99),
            ms(lg.max),
            ms(stt.p50),
            ms(stt.p99),
            ms(cn.p99),
            r.rec.started,
            r.n,
            errors,
            s.res.server,
            if r.rec.last_started.as_secs_f64() < 20.0 {
                "yes"
            } else {
                "NO"
            },
        );
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "PHASES (every request kind)");
    let _ = writeln!(
        w,
        "| run | N | phase | wall s | request | ok | errors | req/s | p50 | p90 | p99 | max |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        for ph in &r.phases {
            for (kind, s) in &ph.series {
                let l = lat(Some(s));
                let wall = ph.wall.as_secs_f64();
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {:.2} | {} | {} | {} | {:.0} | {} | {} | {} | {} |",
                    r.mode.name(),
                    r.n,
                    ph.name,
                    wall,
                    kind,
                    l.n,
                    s.errors,
                    l.n as f64 / wall,
                    ms(l.p50),
                    ms(l.p90),
                    ms(l.p99),
                    ms(l.max),
                );
            }
        }
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "RESOURCES per phase (CPU in % of one core, 200 = both cores; `others` = every other process on the machine)"
    );
    let _ = writeln!(
        w,
        "| run | N | phase | wall s | server CPU % | tuk-writer: in commits % | on CPU % | waiting for a CPU % | client CPU % | others CPU % | server disk writes MB | KB per request | server page faults per request | commits | mean batch | ms per commit | store MB | server RSS after MiB |"
    );
    let _ = writeln!(
        w,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in results {
        for ph in &r.phases {
            let reqs: usize = ph.series.values().map(|s| s.lat_us.len()).sum();
            let _ = writeln!(
                w,
                "| {} | {} | {} | {:.2} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {} | {} |",
                r.mode.name(),
                r.n,
                ph.name,
                ph.wall.as_secs_f64(),
                ph.res.server,
                ph.res.commit_s.map_or("-".into(), |t| format!(
                    "{:.0}",
                    100.0 * t / ph.wall.as_secs_f64()
                )),
                ph.res.writer,
                ph.res.writer_wait,
                ph.res.client,
                ph.res.others,
                ph.res.written as f64 / 1e6,
                ph.res.written as f64 / 1e3 / reqs.max(1) as f64,
                ph.res.faults as f64 / reqs.max(1) as f64,
                ph.res.commits.map_or("-".into(), |c| format!("{c:.0}")),
                match (ph.res.jobs, ph.res.commits) {
                    (Some(j), Some(c)) if c > 0.0 => format!("{:.1}", j / c),
                    _ => "-".into(),
                },
                match (ph.res.commit_s, ph.res.commits) {
                    (Some(t), Some(c)) if c > 0.0 => format!("{:.2}", 1000.0 * t / c),
                    _ => "-".into(),
                },
                ph.res
                    .store_bytes
                    .map_or("-".into(), |b| format!("{:.1}", b / 1e6)),
                mib(ph.res.rss_after_kb),
            );
        }
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "| run | N | setup s (import s) | total errors | reconnects | server RSS idle MiB | peak (VmHWM) MiB | at end MiB | server threads | server stop |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let _ = writeln!(
            w,
            "| {} | {} | {:.1} ({:.1}) | {} | {} | {} | {} | {} | {} | {} |",
            r.mode.name(),
            r.n,
            r.setup.as_secs_f64(),
            r.import.as_secs_f64(),
            r.rec.error_count,
            r.rec.reconnects,
            mib(r.rss_idle_kb),
            mib(r.hwm_kb),
            mib(r.rss_end_kb),
            r.threads.map_or("-".into(), |t| t.to_string()),
            r.stopped,
        );
    }
    for r in results {
        if !r.rec.errors.is_empty() {
            let _ = writeln!(w);
            let _ = writeln!(
                w,
                "errors in {} N={} ({} in all; first {}):",
                r.mode.name(),
                r.n,
                r.rec.error_count,
                r.rec.errors.len()
            );
            for e in &r.rec.errors {
                let _ = writeln!(w, "  {e}");
            }
        }
        if let Some(d) = &r.dir {
            let _ = writeln!(w, "kept: {}", d.display());
        }
    }
    print!("{out}");
}

fn main() {
    let o = opts();
    std::panic::set_hook({
        let default = std::panic::take_hook();
        Box::new(move |info| {
            kill_server();
            default(info);
        })
    });
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!(
            "[loadgen] watchdog: still running after {WATCHDOG:?}; killing the server and exiting"
        );
        kill_server();
        std::process::exit(2);
    });
    eprintln!(
        "[loadgen] tuk: {}\n[loadgen] runs: {}; seed {}",
        tuk_bin().display(),
        o.runs
            .iter()
            .map(|(m, n)| format!("{} N={n}", m.name()))
            .collect::<Vec<_>>()
            .join(", "),
        o.seed
    );
    let t0 = Instant::now();
    let mut results = Vec::new();
    for (i, &(mode, n)) in o.runs.iter().enumerate() {
        let r = run(
            mode,
            n,
            &o,
            o.seed.wrapping_add(i as u64 * 0x9E37_79B9_7F4A_7C15) | 1,
        );
        eprintln!(
            "[loadgen] {} N={n}: done, {} errors",
            mode.name(),
            r.rec.error_count
        );
        results.push(r);
    }
    report(&results, &o);
    println!();
    println!("total wall time {:.0} s", t0.elapsed().as_secs_f64());
    let errors: u64 = results.iter().map(|r| r.rec.error_count).sum();
    if errors > 0 {
        println!("FAILED: {errors} errors");
        std::process::exit(1);
    }
}

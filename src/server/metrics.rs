//! `/metrics` in the Prometheus text format (version 0.0.4): requests, answer saves and
//! their latency, active participants, commit batches, store size, memory.
//!
//! Who may read it: requests from the server itself (loopback) and logged-in admins. The
//! counters are process-wide atomics fed by one call per request from the HTTP layer
//! ([`observe`]); the exam's own counters (commits, batch sizes, acknowledged saves) come
//! from `Exam.metrics`, which the writer thread maintains.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::{Method, StatusCode};

use crate::app::App;
use crate::clock::now_ms;
use crate::exam::Role;
use crate::server::http::{self, Req, Resp};

const KINDS: [&str; 8] = [
    "page", "api", "static", "media", "admin", "cek", "metrics", "other",
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Upper bounds (seconds) of the save-latency histogram buckets.
const SAVE_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

struct Counters {
    requests: [[AtomicU64; 5]; 8],
    saves: [AtomicU64; 13],
    save_sum_us: AtomicU64,
    save_count: AtomicU64,
    save_errors: AtomicU64,
    started_ms: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ROW: [AtomicU64; 5] = [ZERO; 5];

static C: Counters = Counters {
    requests: [ROW; 8],
    saves: [ZERO; 13],
    save_sum_us: ZERO,
    save_count: ZERO,
    save_errors: ZERO,
    started_ms: ZERO,
};

fn kind_of(path: &str) -> usize {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "api" => 1,
        "static" => 2,
        "media" => 3,
        "admin" => 4,
        "cek" => 5,
        "metrics" => 6,
        "" | "masuk" | "token" | "konfirmasi" | "mulai" | "soal" | "selesai" | "kuesioner"
        | "hasil" | "keluar" | "pref" => 0,
        _ => 7,
    }
}

/// Is this request an answer save (the JSON API's PUT, or the no-JavaScript form post)?
fn is_save(method: &Method, path: &str) -> bool {
    (method == Method::PUT && path.starts_with("/api/v1/answers/"))
        || (method == Method::POST && path.starts_with("/soal/"))
}

/// Records one finished request. Called by the HTTP layer for every request.
pub(crate) fn observe(method: &Method, path: &str, status: u16, elapsed: Duration) {
    let class = ((status / 100) as usize).clamp(1, 5) - 1;
    C.requests[kind_of(path)][class].fetch_add(1, Ordering::Relaxed);
    if is_save(method, path) {
        if status >= 400 {
            C.save_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let s = elapsed.as_secs_f64();
        let bucket = SAVE_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(SAVE_BUCKETS.len());
        C.saves[bucket].fetch_add(1, Ordering::Relaxed);
        C.save_sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        C.save_count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Marks the server's start (for `tuk_start_time_seconds`).
pub(crate) fn started() {
    C.started_ms
        .store(now_ms().max(0) as u64, Ordering::Relaxed);
}

/// Resident memory of this process in bytes (Linux `/proc/self/statm`).
pub(crate) fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    static P: OnceLock<u64> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *P.get_or_init(|| {
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if v > 0 { v as u64 } else { 4096 }
    })
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A metric with one sample: its HELP and TYPE lines, then `name value`.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    head(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// The metrics text for this server.
pub(crate) fn render(app: &App) -> String {
    let mut out = String::with_capacity(4096);
    let m = exam_figures(app, now_ms());
    requests(&mut out);
    saves(&mut out, m.store.answers_saved);
    let gauges = [
        (
            "tuk_participants_active",
            "Attempts running (started, not finished).",
            m.running,
        ),
        (
            "tuk_participants_online",
            "Browsers seen in the last 60 seconds.",
            m.online,
        ),
        ("tuk_sessions_open", "Sessions open now.", m.sessions_open),
    ];
    for (name, help, value) in gauges {
        metric(&mut out, name, "gauge", help, value);
    }
    store(&mut out, app, &m.store);
    process(&mut out);
    out
}

/// What `/metrics` reads from the exam state, under one read lock.
struct ExamFigures {
    store: crate::exam::Metrics,
    running: usize,
    online: usize,
    sessions_open: usize,
}

fn exam_figures(app: &App, now: i64) -> ExamFigures {
    let ex = app.read();
    ExamFigures {
        store: ex.metrics.clone(),
        running: ex.attempts.values().filter(|a| a.is_running()).count(),
        online: ex
            .live
            .values()
            .filter(|l| now - l.last_seen_ms <= 60_000)
            .count(),
        sessions_open: ex
            .sessions
            .values()
            .filter(|s| matches!(s.status, crate::exam::SessionStatus::Open { .. }))
            .count(),
    }
}

/// `tuk_http_requests_total`, by area and status class (only the non-zero ones).
fn requests(out: &mut String) {
    head(
        out,
        "tuk_http_requests_total",
        "counter",
        "HTTP requests answered, by area and status class.",
    );
    for (k, kind) in KINDS.iter().enumerate() {
        for (c, class) in CLASSES.iter().enumerate() {
            let n = C.requests[k][c].load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "tuk_http_requests_total{{area=\"{kind}\",code=\"{class}\"}} {n}"
                );
            }
        }
    }
}

/// The answer saves: counts, errors and the latency histogram.
fn saves(out: &mut String, answers_saved: u64) {
    metric(
        out,
        "tuk_answer_saves_total",
        "counter",
        "Answers saved durably (acknowledged by the writer) since start.",
        answers_saved,
    );
    metric(
        out,
        "tuk_answer_save_errors_total",
        "counter",
        "Answer save requests refused or failed.",
        C.save_errors.load(Ordering::Relaxed),
    );
    head(
        out,
        "tuk_answer_save_seconds",
        "histogram",
        "Time to save an answer, request read to response (includes the fsync).",
    );
    let mut cum = 0u64;
    for (i, b) in SAVE_BUCKETS.iter().enumerate() {
        cum += C.saves[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "tuk_answer_save_seconds_bucket{{le=\"{b}\"}} {cum}");
    }
    cum += C.saves[SAVE_BUCKETS.len()].load(Ordering::Relaxed);
    let _ = writeln!(out, "tuk_answer_save_seconds_bucket{{le=\"+Inf\"}} {cum}");
    let _ = writeln!(
        out,
        "tuk_answer_save_seconds_sum {}",
        C.save_sum_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "tuk_answer_save_seconds_count {}",
        C.save_count.load(Ordering::Relaxed)
    );
}

/// The writer's commits and the store file's size.
fn store(out: &mut String, app: &App, m: &crate::exam::Metrics) {
    let counters = [
        (
            "tuk_store_commits_total",
            "counter",
            "Durable commits (one fsync each).",
            m.commits,
        ),
        (
            "tuk_store_commit_jobs_total",
            "counter",
            "Changes committed; divided by commits it is the mean batch size.",
            m.jobs,
        ),
        (
            "tuk_store_commit_batch_max",
            "gauge",
            "Largest number of changes in one commit since start.",
            m.batch_max as u64,
        ),
    ];
    for (name, kind, help, value) in counters {
        metric(out, name, kind, help, value);
    }
    metric(
        out,
        "tuk_store_commit_seconds_total",
        "counter",
        "Time spent committing.",
        m.commit_us_total as f64 / 1e6,
    );
    let db = std::fs::metadata(app.dir.join(crate::store::DB_FILE)).map_or(0, |x| x.len());
    metric(
        out,
        "tuk_store_bytes",
        "gauge",
        "Size of the store file.",
        db,
    );
}

/// Memory, start time, clock jumps and the version.
fn process(out: &mut String) {
    if let Some(rss) = rss_bytes() {
        metric(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory.",
            rss,
        );
    }
    let started = C.started_ms.load(Ordering::Relaxed);
    if started > 0 {
        metric(
            out,
            "process_start_time_seconds",
            "gauge",
            "When the server started (Unix time).",
            started / 1000,
        );
    }
    metric(
        out,
        "tuk_clock_jump_max_seconds",
        "gauge",
        "Largest wall-clock jump seen while running (0: none).",
        crate::clock::clock_jump_max_ms() as f64 / 1000.0,
    );
    head(out, "tuk_build_info", "gauge", "The running version.");
    let _ = writeln!(
        out,
        "tuk_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
}

/// Is this peer the server itself (loopback, also as an IPv4-mapped IPv6 address)?
pub(crate) fn is_local(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `GET /metrics`: loopback or an admin's browser; everyone else gets 403.
pub(crate) fn handle(app: &App, req: &Req) -> Resp {
    let admin = || super::staff(app, req).is_some_and(|s| s.role == Role::Admin);
    if !is_local(req.ip) && !admin() {
        return http::response(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            "metrics: only from the server itself or for a logged-in admin\n",
        );
    }
    http::response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        render(app),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_and_saves_are_classified() {
        assert_eq!(KINDS[kind_of("/api/v1/answers/q1")], "api");
        assert_eq!(KINDS[kind_of("/soal/3")], "page");
        assert_eq!(KINDS[kind_of("/")], "page");
        assert_eq!(KINDS[kind_of("/cek/ping")], "cek");
        assert!(is_save(&Method::PUT, "/api/v1/answers/q1"));
        assert!(is_save(&Method::POST, "/soal/3"));
        assert!(!is_save(&Method::GET, "/soal/3"));
    }

    #[test]
    fn only_the_server_itself_without_login() {
        assert!(is_local("127.0.0.1".parse().unwrap()));
        assert!(is_local("::1".parse().unwrap()));
        assert!(is_local("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_local("192.168.1.20".parse().unwrap()));
        assert!(!is_local("::ffff:192.168.1.20".parse().unwrap()));
    }
}

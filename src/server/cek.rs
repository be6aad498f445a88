//! The lab readiness check (*cek kesiapan*), the day before the exam.
//!
//! Every lab PC opens `/cek`, the technician types the PC's name once (e.g. `PC-07`; the
//! browser remembers it in a cookie) and presses the button. The page's script
//! (`/cek/cek.js`, ES5) measures what only the browser knows: local storage, screen size,
//! the clock's offset from the server (from `/cek/ping` answers), round-trip time (10
//! pings) and download speed (`/cek/unduh?kb=1024`); the server checks that the test
//! cookie it set came back. With JavaScript off the form still posts: the PC is registered
//! with "JavaScript off" (a warning: pages work without it, but autosave needs it) and
//! without measurements.
//!
//! Results are kept in `DATA/lab-pcs.json` (one record per PC name, the last check wins) and
//! listed for staff at `/admin/pcs`, with pass / warning / fail and the reasons.
//!
//! API (used by the page; plain HTTP, no login): `GET /cek/ping` → `{"t": server_ms}`;
//! `GET /cek/unduh?kb=N` → N KiB (≤ 4096) of incompressible bytes; `POST /cek` (form) →
//! the result page.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use maud::html;
use serde::{Deserialize, Serialize};

use super::http::{self, Req, Resp};
use super::i18n::Lang;
use super::refusal::{self, Refusal};
use super::shell::{self, Area, Bar, Frame, Problem};
use crate::app::App;
use crate::clock::now_ms;
use crate::exam::Role;

/// The page's script, served at [`shell::CEK_JS_URL`].
const SCRIPT: &str = include_str!("assets/cek.js");
const TEST_COOKIE: &str = "tuk_cek";
const PC_COOKIE: &str = "tuk_pc";

/// Thresholds, in one place.
pub(crate) const MIN_SCREEN: (u32, u32) = (1024, 768);
pub(crate) const RTT_WARN_MS: f64 = 50.0;
pub(crate) const RTT_FAIL_MS: f64 = 500.0;
pub(crate) const SPEED_WARN_MBPS: f64 = 5.0;
pub(crate) const SPEED_FAIL_MBPS: f64 = 1.0;
pub(crate) const CLOCK_WARN_MS: i64 = 2 * 60 * 1000;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Check {
    pub(crate) what: String,
    pub(crate) level: Level,
    pub(crate) detail: String,
}

/// One PC's last check.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct PcRecord {
    pub(crate) name: String,
    pub(crate) ip: String,
    pub(crate) browser: String,
    pub(crate) at_ms: i64,
    pub(crate) verdict: Level,
    pub(crate) checks: Vec<Check>,
    pub(crate) screen: Option<(u32, u32)>,
    pub(crate) rtt_ms: Option<f64>,
    pub(crate) download_mbps: Option<f64>,
    pub(crate) clock_offset_ms: Option<i64>,
}

fn tr(lang: Lang, id: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        _ => id,
    }
}

/// Routes `/cek` and `/cek/…`.
pub(crate) async fn route(app: &App, req: &Req, rest: &[&str]) -> Resp {
    if !allowed(req) {
        return refused(req, refusal::TOO_MANY_REQUESTS);
    }
    match (&req.method, rest) {
        (&Method::GET, []) => page(req),
        (&Method::POST, []) => register(app, req),
        (&Method::GET, ["cek.js"]) => {
            http::asset("application/javascript; charset=utf-8", SCRIPT.as_bytes())
        }
        (&Method::GET, ["ping"]) => http::json(StatusCode::OK, &serde_json::json!({"t": now_ms()})),
        (&Method::GET, ["unduh"]) => download(req),
        _ => super::not_found(req),
    }
}

/// The frame of the public `/cek` pages (in the language of the page's switch).
fn frame(req: &Req) -> Frame<'static> {
    Frame::new(Area::Cek, req.lang)
}

fn page(req: &Req) -> Resp {
    let l = req.lang;
    let name = req.cookie(PC_COOKIE).unwrap_or_default();
    let body = html! {
        main.box {
            h1 { (tr(l, "Cek kesiapan komputer", "Check this computer")) }
            p { (tr(l,
                "Buka halaman ini di setiap komputer lab sehari sebelum ujian. Ketik nama komputer (mis. PC-07), lalu tekan tombol. Hasilnya tampil di sini dan di halaman admin.",
                "Open this page on every lab PC the day before the exam. Type the PC's name (e.g. PC-07) and press the button. The result shows here and on the admin page.")) }
            form #cek method="post" action="/cek" {
                label for="pc" { (tr(l, "Nama komputer", "Computer name")) }
                input #pc type="text" name="pc" value=(name) maxlength="32" required autocomplete="off" placeholder="PC-07";
                input #js type="hidden" name="js" value="0";
                input #es5 type="hidden" name="es5" value="";
                input #ck type="hidden" name="ck" value="";
                input #ls type="hidden" name="ls" value="";
                input #sw type="hidden" name="sw" value="";
                input #sh type="hidden" name="sh" value="";
                input #off type="hidden" name="off" value="";
                input #rtt type="hidden" name="rtt" value="";
                input #mbps type="hidden" name="mbps" value="";
                p #progress .small {
                    (tr(l, "JavaScript mati: kecepatan jaringan tidak diukur.", "JavaScript is off: the network is not measured."))
                }
                button #go .primary type="submit" { (tr(l, "Periksa dan daftarkan", "Check and register")) }
            }
        }
    };
    let bar = Bar::Label(tr(l, "Cek kesiapan lab", "Lab readiness check"));
    let mut r = http::html(
        StatusCode::OK,
        frame(req)
            .bar(bar)
            .page(tr(l, "Cek kesiapan", "Readiness check"), body),
    );
    http::set_cookie(&mut r, TEST_COOKIE, "1", 3600);
    r
}

/// N KiB of bytes that do not compress (a fixed xorshift stream).
fn download(req: &Req) -> Resp {
    static BLOCK: OnceLock<Bytes> = OnceLock::new();
    let block = BLOCK.get_or_init(|| {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut v = Vec::with_capacity(1 << 20);
        while v.len() < (1 << 20) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        Bytes::from(v)
    });
    let kb: usize = req
        .query_param("kb")
        .and_then(|k| k.parse().ok())
        .unwrap_or(256)
        .clamp(1, 4096);
    let want = kb * 1024;
    let body = if want <= block.len() {
        block.slice(..want)
    } else {
        let mut v = Vec::with_capacity(want);
        while v.len() < want {
            let n = (want - v.len()).min(block.len());
            v.extend_from_slice(&block[..n]);
        }
        Bytes::from(v)
    };
    http::response(StatusCode::OK, "application/octet-stream", body)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars().count() <= 32
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
}

/// The browser and its major version, from the User-Agent (for the list, and to flag
/// browsers older than the minimum the pages are tested with).
fn browser_of(ua: &str) -> (String, Option<(&'static str, u32)>) {
    let major = |key: &str| -> Option<u32> {
        let i = ua.find(key)? + key.len();
        ua[i..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    if let Some(v) = major("Firefox/") {
        return (format!("Firefox {v}"), Some(("Firefox", v)));
    }
    if let Some(v) = major("Edg/") {
        return (format!("Edge {v}"), None);
    }
    if let Some(v) = major("Chrome/") {
        return (format!("Chrome {v}"), Some(("Chrome", v)));
    }
    if ua.contains("Trident/") || ua.contains("MSIE ") {
        return ("Internet Explorer".into(), None);
    }
    let short: String = ua.chars().take(40).collect();
    (if short.is_empty() { "?".into() } else { short }, None)
}

/// What one PC's check submitted (the form of `/cek`, its cookie and User-Agent), each
/// measurement already bounded to a plausible range (`None`: not measured).
#[derive(Clone, Debug, Default)]
pub(crate) struct Probe {
    /// JavaScript ran, and it has ES5.
    pub(crate) js: bool,
    pub(crate) es5: bool,
    /// The test cookie set by the check page came back.
    pub(crate) cookie_back: bool,
    pub(crate) local_storage: Option<bool>,
    /// Screen width and height in CSS pixels.
    pub(crate) screen: Option<(u32, u32)>,
    /// This PC's clock minus the server's, in ms.
    pub(crate) offset_ms: Option<i64>,
    /// Round trip in ms and download speed in Mbit/s.
    pub(crate) rtt_ms: Option<f64>,
    pub(crate) mbps: Option<f64>,
    /// The browser and its major version, when it is one with a tested minimum.
    pub(crate) browser: Option<(&'static str, u32)>,
}

impl Probe {
    /// Reads the submission of `/cek` (form fields `js`, `es5`, `ls`, `sw`, `sh`, `off`,
    /// `rtt`, `mbps`; the test cookie; the User-Agent). Returns it with the browser's name
    /// for the list.
    fn from_request(req: &Req) -> (Probe, String) {
        let form = req.form();
        let get = |k: &str| form.get(k).and_then(|v| v.first()).map(|s| s.trim());
        let num = |k: &str| {
            get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        let screen = match (num("sw"), num("sh")) {
            (Some(w), Some(h))
                if (100.0..=20_000.0).contains(&w) && (100.0..=20_000.0).contains(&h) =>
            {
                Some((w as u32, h as u32))
            }
            _ => None,
        };
        let ua = req
            .headers
            .get(hyper::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (name, browser) = browser_of(ua);
        let probe = Probe {
            js: get("js") == Some("1"),
            es5: get("es5") == Some("1"),
            cookie_back: req.cookie(TEST_COOKIE).is_some(),
            local_storage: match get("ls") {
                Some("1") => Some(true),
                Some("0") => Some(false),
                _ => None,
            },
            screen,
            offset_ms: num("off")
                .filter(|o| o.abs() < 20.0 * 365.0 * 86_400_000.0)
                .map(|o| o as i64),
            rtt_ms: num("rtt").filter(|r| (0.0..=120_000.0).contains(r)),
            mbps: num("mbps").filter(|m| (0.0..=1_000_000.0).contains(m)),
            browser,
        };
        (probe, name)
    }
}

/// Judges one submission. Pure, so it is tested without a server.
pub(crate) fn judge(l: Lang, p: &Probe) -> Vec<Check> {
    let mut c = Vec::new();
    let mut add = |what: &str, level: Level, detail: String| {
        c.push(Check {
            what: what.to_string(),
            level,
            detail,
        })
    };
    browser_checks(l, p, &mut add);
    screen_and_clock(l, p, &mut add);
    network_checks(l, p, &mut add);
    c
}

/// Cookies, JavaScript, the browser's version, local storage.
fn browser_checks(l: Lang, p: &Probe, add: &mut impl FnMut(&str, Level, String)) {
    if p.cookie_back {
        add(
            "cookies",
            Level::Ok,
            tr(l, "cookie aktif", "cookies work").into(),
        );
    } else {
        add("cookies", Level::Fail, tr(l,
            "cookie diblokir: peserta tidak bisa tetap masuk. Izinkan cookie untuk alamat server ini.",
            "cookies are blocked: participants cannot stay logged in. Allow cookies for this server's address.").into());
    }
    if !p.js {
        add("javascript", Level::Warn, tr(l,
            "JavaScript mati: halaman ujian tetap bisa dipakai, tetapi jawaban baru tersimpan saat peserta menekan tombol Simpan/Berikutnya. Aktifkan JavaScript.",
            "JavaScript is off: the test still works, but an answer is saved only when the participant presses Save/Next. Turn JavaScript on.").into());
    } else if !p.es5 {
        add("javascript", Level::Fail, tr(l,
            "peramban terlalu lama (tidak mendukung ES5): pasang Firefox 52 ESR atau Chrome 49 ke atas.",
            "the browser is too old (no ES5): install Firefox 52 ESR or Chrome 49 or newer.").into());
    } else {
        add(
            "javascript",
            Level::Ok,
            tr(l, "JavaScript aktif", "JavaScript works").into(),
        );
    }
    if let Some((b, v)) = p.browser {
        let min = if b == "Firefox" { 52 } else { 49 };
        if v < min {
            add(
                "browser",
                Level::Warn,
                format!(
                    "{b} {v} < {b} {min}: {}",
                    tr(
                        l,
                        "lebih lama dari versi minimum yang diuji; perbarui jika bisa.",
                        "older than the minimum tested version; update it if you can."
                    )
                ),
            );
        }
    }
    match p.local_storage {
        Some(true) => add("local_storage", Level::Ok, tr(l, "penyimpanan lokal aktif", "local storage works").into()),
        Some(false) => add("local_storage", Level::Warn, tr(l,
            "penyimpanan lokal mati (mode privat?): jawaban yang belum terkirim hilang jika tab ditutup saat jaringan putus.",
            "local storage is off (private mode?): unsent answers are lost if the tab is closed while the network is down.").into()),
        None => {}
    }
}

/// The screen's size and the PC's clock.
fn screen_and_clock(l: Lang, p: &Probe, add: &mut impl FnMut(&str, Level, String)) {
    if let Some((w, h)) = p.screen {
        if w < MIN_SCREEN.0 || h < MIN_SCREEN.1 {
            add(
                "screen",
                Level::Fail,
                format!(
                    "{w}×{h} < {}×{}: {}",
                    MIN_SCREEN.0,
                    MIN_SCREEN.1,
                    tr(
                        l,
                        "layar terlalu kecil untuk halaman soal; naikkan resolusi layar.",
                        "the screen is too small for the question page; raise the screen resolution."
                    )
                ),
            );
        } else {
            add("screen", Level::Ok, format!("{w}×{h}"));
        }
    }
    if let Some(o) = p.offset_ms {
        let s = o / 1000;
        if o.abs() > CLOCK_WARN_MS {
            add(
                "clock",
                Level::Warn,
                format!(
                    "{s:+} s: {}",
                    tr(
                        l,
                        "jam komputer ini berbeda dengan server. Ujian memakai jam server, tetapi setel jam ini (sertifikat HTTPS bisa ditolak).",
                        "this PC's clock differs from the server's. The exam uses the server's clock, but set this one (HTTPS certificates may be refused)."
                    )
                ),
            );
        } else {
            add("clock", Level::Ok, format!("{s:+} s"));
        }
    }
}

/// Round trip and download speed, against their warn and fail limits.
fn network_checks(l: Lang, p: &Probe, add: &mut impl FnMut(&str, Level, String)) {
    // The level of a measurement, and its detail: the value, and the advice when not OK.
    let judged = |level: Level, value: String, advice: &str| match level {
        Level::Ok => value,
        _ => format!("{value}: {advice}"),
    };
    if let Some(r) = p.rtt_ms {
        let level = if r > RTT_FAIL_MS {
            Level::Fail
        } else if r > RTT_WARN_MS {
            Level::Warn
        } else {
            Level::Ok
        };
        let value = if level == Level::Ok {
            format!("{r:.1} ms")
        } else {
            format!("{r:.0} ms")
        };
        let advice = tr(
            l,
            "jaringan lambat; periksa kabel, switch, atau apakah PC memakai Wi-Fi.",
            "slow network; check the cable, the switch, or whether the PC is on Wi-Fi.",
        );
        add("round_trip", level, judged(level, value, advice));
    }
    if let Some(m) = p.mbps {
        let level = if m < SPEED_FAIL_MBPS {
            Level::Fail
        } else if m < SPEED_WARN_MBPS {
            Level::Warn
        } else {
            Level::Ok
        };
        let advice = tr(
            l,
            "unduhan lambat; gambar soal akan lama tampil.",
            "slow download; question images will load slowly.",
        );
        add(
            "download",
            level,
            judged(level, format!("{m:.1} Mbit/s"), advice),
        );
    }
    if p.js && p.rtt_ms.is_none() {
        add(
            "network",
            Level::Warn,
            tr(
                l,
                "pengukuran jaringan tidak selesai; ulangi.",
                "the network measurement did not finish; try again.",
            )
            .into(),
        );
    }
}

/// The lab readiness list (`/cek`), in the data folder.
pub(crate) const LAB_PCS: &str = "lab-pcs.json";

/// Registered PCs at most (`TUK_MAX_LAB_PCS`, 300): a flood of made-up names is refused
/// once the list is full; re-checking a known name always works.
pub(crate) const MAX_LAB_PCS: usize = 300;

/// `/cek` requests per address: a burst of 60, then 5 per second (`TUK_CEK_BURST`,
/// `TUK_CEK_RATE`). One check is about 15 requests.
pub(crate) const CEK_RATE: (u32, f64) = (60, 5.0);

/// The list in memory, per data folder; written to disk by one background task at a time
/// (a burst of registrations becomes one write), never on the async workers.
#[derive(Default)]
struct Lab {
    pcs: Option<BTreeMap<String, PcRecord>>,
    dirty: bool,
    flushing: bool,
}

fn labs() -> &'static Mutex<std::collections::HashMap<std::path::PathBuf, Lab>> {
    static L: OnceLock<Mutex<std::collections::HashMap<std::path::PathBuf, Lab>>> = OnceLock::new();
    L.get_or_init(Default::default)
}

fn rate() -> &'static crate::auth::Rate {
    static R: OnceLock<crate::auth::Rate> = OnceLock::new();
    R.get_or_init(|| {
        crate::auth::Rate::new(
            crate::limits::env_limit("TUK_CEK_BURST", CEK_RATE.0),
            crate::limits::env_limit("TUK_CEK_RATE", CEK_RATE.1),
        )
    })
}

/// Every registered PC, by name (what is in memory, else the file).
pub(crate) fn load(dir: &std::path::Path) -> BTreeMap<String, PcRecord> {
    {
        let l = labs().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pcs) = l.get(dir).and_then(|x| x.pcs.as_ref()) {
            return pcs.clone();
        }
    }
    read_file(dir)
}

fn read_file(dir: &std::path::Path) -> BTreeMap<String, PcRecord> {
    std::fs::read(dir.join(LAB_PCS))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Changes the list with `f` and schedules a write; `f`'s answer is returned.
fn update<T>(dir: &std::path::Path, f: impl FnOnce(&mut BTreeMap<String, PcRecord>) -> T) -> T {
    let mut l = labs().lock().unwrap_or_else(|p| p.into_inner());
    let lab = l.entry(dir.to_path_buf()).or_default();
    let pcs = lab.pcs.get_or_insert_with(|| read_file(dir));
    let out = f(pcs);
    lab.dirty = true;
    if !lab.flushing {
        lab.flushing = true;
        let dir = dir.to_path_buf();
        let flush = move || flush(&dir);
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::spawn_blocking(flush);
        } else {
            std::thread::spawn(flush);
        }
    }
    out
}

/// Writes the list until nothing new is pending (runs on a blocking thread).
fn flush(dir: &std::path::Path) {
    loop {
        let snapshot = {
            let mut l = labs().lock().unwrap_or_else(|p| p.into_inner());
            let Some(lab) = l.get_mut(dir) else { return };
            if !lab.dirty {
                lab.flushing = false;
                return;
            }
            lab.dirty = false;
            lab.pcs.clone().unwrap_or_default()
        };
        let r = serde_json::to_vec_pretty(&snapshot)
            .map_err(anyhow::Error::from)
            .and_then(|b| crate::fsutil::write_atomic(&dir.join(LAB_PCS), &b));
        if let Err(e) = r {
            tracing::warn!("cannot save the lab check list: {e:#}");
        }
    }
}

/// Is `/cek` from this address within its rate?
fn allowed(req: &Req) -> bool {
    rate().allow(&req.ip_string())
}

/// A refused `/cek` request on the shell's error page; the browser may try again in 5 s.
fn refused(req: &Req, r: Refusal) -> Resp {
    let mut resp = shell::refusal_page(frame(req), r, "/cek");
    resp.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from_static("5"),
    );
    resp
}

fn register(app: &App, req: &Req) -> Resp {
    let l = req.lang;
    let form = req.form();
    let get = |k: &str| {
        form.get(k)
            .and_then(|v| v.first())
            .map(|s| s.trim().to_string())
    };
    let name = get("pc").unwrap_or_default();
    if !valid_name(&name) {
        return shell::error_page(
            frame(req),
            StatusCode::UNPROCESSABLE_ENTITY,
            Problem {
                heading: tr(l, "Nama komputer tidak valid", "Invalid computer name"),
                message: tr(
                    l,
                    "Pakai huruf, angka, spasi, - _ . (maks. 32), mis. PC-07.",
                    "Use letters, digits, space, - _ . (at most 32), e.g. PC-07.",
                ),
                back: "/cek",
                back_label: tr(l, "Kembali", "Back"),
            },
        );
    }
    let (probe, browser) = Probe::from_request(req);
    let checks = judge(l, &probe);
    let verdict = checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok);
    let record = PcRecord {
        name: name.clone(),
        ip: req.ip_string(),
        browser,
        at_ms: now_ms(),
        verdict,
        checks,
        screen: probe.screen,
        rtt_ms: probe.rtt_ms,
        download_mbps: probe.mbps,
        clock_offset_ms: probe.offset_ms,
    };
    let Some(other_ip) = remember(app, &record) else {
        return refused(req, refusal::LAB_FULL);
    };
    tracing::info!(pc = %crate::auth::log_safe(&name, 32), ip = %record.ip, verdict = ?verdict, "lab PC checked");
    let word = |v: Level| match v {
        Level::Ok => tr(l, "SIAP", "READY"),
        Level::Warn => tr(l, "SIAP, DENGAN CATATAN", "READY, WITH NOTES"),
        Level::Fail => tr(l, "BELUM SIAP", "NOT READY"),
    };
    let body = html! {
        main.box {
            h1 { (name) ": " (word(verdict)) }
            @if verdict == Level::Fail {
                p.error role="alert" { (tr(l, "Perbaiki yang bertanda GAGAL, lalu periksa lagi.", "Fix what is marked FAIL, then check again.")) }
            }
            @if let Some(ip) = other_ip {
                p.warn { (tr(l, "Nama ini sebelumnya didaftarkan dari alamat lain: ", "This name was registered before from another address: ")) (ip) }
            }
            table.facts {
                @for c in &record.checks {
                    tr {
                        th { (c.what) }
                        td { (level_word(l, c.level)) }
                        td { (c.detail) }
                    }
                }
                tr { th { "IP" } td { "" } td { (record.ip) } }
                tr { th { "browser" } td { "" } td { (record.browser) } }
            }
            p { a.button href="/cek" { (tr(l, "Periksa lagi", "Check again")) } }
        }
    };
    let bar = Bar::Label(tr(l, "Cek kesiapan lab", "Lab readiness check"));
    let mut r = http::html(StatusCode::OK, frame(req).bar(bar).page(&name, body));
    http::set_cookie(&mut r, PC_COOKIE, &name.replace(' ', "_"), 365 * 86_400);
    r
}

/// Puts `record` in the lab list (replacing the PC's earlier check). `None` when the list
/// is full ([`MAX_LAB_PCS`]) and the name is new; else the address the name was checked
/// from before, when it was another.
fn remember(app: &App, record: &PcRecord) -> Option<Option<String>> {
    let max = crate::limits::env_limit("TUK_MAX_LAB_PCS", MAX_LAB_PCS);
    let name = &record.name;
    let added = update(&app.dir, |pcs| {
        if !pcs.contains_key(name) && pcs.len() >= max {
            return None;
        }
        let other = pcs
            .get(name)
            .filter(|p| p.ip != record.ip)
            .map(|p| p.ip.clone());
        pcs.insert(name.clone(), record.clone());
        Some(other)
    });
    if added.is_none() {
        tracing::warn!(
            "the lab PC list is full ({max}); a new name from {} was refused",
            record.ip
        );
    }
    added
}

fn level_word(l: Lang, v: Level) -> &'static str {
    match v {
        Level::Ok => "OK",
        Level::Warn => tr(l, "PERINGATAN", "WARNING"),
        Level::Fail => tr(l, "GAGAL", "FAIL"),
    }
}

/// `/admin/pcs`: the list of checked PCs, for staff (admins may clear it).
pub(crate) async fn admin(app: &App, req: &Req, rest: &[&str]) -> Resp {
    let Some(s) = super::staff(app, req) else {
        return http::redirect("/admin");
    };
    let l = req.lang;
    match (&req.method, rest) {
        (&Method::GET, []) => {}
        (&Method::POST, []) => {
            let form = req.form();
            let get = |k: &str| {
                form.get(k)
                    .and_then(|v| v.first())
                    .cloned()
                    .unwrap_or_default()
            };
            let refused = |r| shell::refusal_page(Frame::new(Area::Console, l), r, "/admin/pcs");
            if get("csrf") != s.csrf {
                return refused(refusal::CSRF);
            }
            if s.role != Role::Admin {
                return refused(crate::exam::Refused::Forbidden.into());
            }
            let (action, pc) = (get("action"), get("pc"));
            update(&app.dir, |pcs| match action.as_str() {
                "clear" => pcs.clear(),
                "delete" => {
                    pcs.remove(&pc);
                }
                _ => {}
            });
            return http::redirect("/admin/pcs");
        }
        _ => return super::not_found(req),
    }
    let pcs = load(&app.dir);
    let count = |v: Level| pcs.values().filter(|p| p.verdict == v).count();
    // Times in the packages' time zone (WIB when none is imported).
    let offset = app
        .read()
        .catalog
        .values()
        .next()
        .map_or(7 * 3600, |p| p.offset_s());
    let body = html! {
        main.box.wide {
            h1 { (tr(l, "Komputer lab yang sudah dicek", "Lab PCs checked")) }
            p {
                (pcs.len()) " PC: " (count(Level::Ok)) " OK, "
                (count(Level::Warn)) " " (tr(l, "dengan catatan", "with notes")) ", "
                (count(Level::Fail)) " " (tr(l, "gagal", "failed")) ". "
                (tr(l, "Buka ", "Open ")) code { "/cek" } (tr(l, " di setiap PC untuk menambah atau memperbarui.", " on every PC to add or update it."))
            }
            table.facts {
                tr {
                    th { "PC" } th { (tr(l, "hasil", "result")) } th { (tr(l, "alasan", "reasons")) }
                    th { "IP" } th { "browser" } th { (tr(l, "layar", "screen")) } th { "RTT" } th { "Mbit/s" } th { (tr(l, "jam", "clock")) } th { (tr(l, "waktu cek", "checked at")) }
                }
                @for p in pcs.values() {
                    tr {
                        td { (p.name) }
                        td { (level_word(l, p.verdict)) }
                        td {
                            @for c in p.checks.iter().filter(|c| c.level != Level::Ok) {
                                (c.what) ": " (c.detail) br;
                            }
                        }
                        td.mono { (p.ip) }
                        td { (p.browser) }
                        td { @if let Some((w, h)) = p.screen { (w) "×" (h) } @else { "–" } }
                        td { @if let Some(r) = p.rtt_ms { (format!("{r:.1} ms")) } @else { "–" } }
                        td { @if let Some(m) = p.download_mbps { (format!("{m:.0}")) } @else { "–" } }
                        td { @if let Some(o) = p.clock_offset_ms { (format!("{:+} s", o / 1000)) } @else { "–" } }
                        td { (crate::clock::local(p.at_ms, offset)) }
                    }
                }
            }
            @if s.role == Role::Admin && !pcs.is_empty() {
                form method="post" action="/admin/pcs" {
                    input type="hidden" name="csrf" value=(s.csrf);
                    input type="hidden" name="action" value="clear";
                    button type="submit" { (tr(l, "Kosongkan daftar", "Clear the list")) }
                }
            }
        }
    };
    let label = tr(l, "Kesiapan lab", "Lab readiness");
    let frame =
        Frame::new(Area::Console, l).bar(Bar::staff(&s, shell::CONSOLE_HOME, html! { (label) }));
    http::html(StatusCode::OK, frame.page(label, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging() {
        let ok = judge(
            Lang::En,
            &Probe {
                js: true,
                es5: true,
                cookie_back: true,
                local_storage: Some(true),
                screen: Some((1366, 768)),
                offset_ms: Some(300),
                rtt_ms: Some(0.8),
                mbps: Some(90.0),
                browser: Some(("Firefox", 52)),
            },
        );
        assert!(ok.iter().all(|c| c.level == Level::Ok), "{ok:?}");
        let bad = judge(
            Lang::En,
            &Probe {
                js: true,
                es5: true,
                cookie_back: false,
                local_storage: Some(false),
                screen: Some((800, 600)),
                offset_ms: Some(600_000),
                rtt_ms: Some(900.0),
                mbps: Some(0.5),
                browser: Some(("Chrome", 40)),
            },
        );
        let fails: Vec<_> = bad
            .iter()
            .filter(|c| c.level == Level::Fail)
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(fails, ["cookies", "screen", "round_trip", "download"]);
        let nojs = judge(
            Lang::Id,
            &Probe {
                cookie_back: true,
                ..Probe::default()
            },
        );
        assert_eq!(nojs.iter().map(|c| c.level).max(), Some(Level::Warn));
        assert!(valid_name("PC-07") && !valid_name("") && !valid_name("<b>"));
        assert_eq!(
            browser_of("Mozilla/5.0 (Windows NT 5.1; rv:52.0) Gecko/20100101 Firefox/52.0").1,
            Some(("Firefox", 52))
        );
    }
}

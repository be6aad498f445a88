//! Helpers for integration tests that run the real `tuk` binary as a server.
//!
//! - [`Server`] spawns `tuk demo` or `tuk serve` on 127.0.0.1 in its own temporary folder,
//!   reads what it prints (port, token, `login:` lines) on a thread, and kills it on drop.
//!   [`Server::kill9`] and [`Server::restart`] simulate a crash and the technician starting
//!   it again on the same data folder and port.
//! - [`Prepared`] builds a package from a copy of the demo source (edited by the test),
//!   signs it with fresh keys and prepares a data folder with the CLI, as a TUK would.
//! - [`Client`] is a small HTTP/1.1 client (hyper's `client::conn::http1`) with a cookie
//!   jar; it can bind to a chosen local address (127.0.0.2, …) to look like another PC.
//!
//! Nothing here shares ports or folders between tests: every server has its own temporary
//! folder and an ephemeral port.

#![allow(dead_code)]

pub mod receiver;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;

/// The repository root (where `exam-packages/` lives).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tuk")
}

/// How long a server may take to print its start-up lines (a cold, busy 2-core box).
const START_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// stdout capture
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    eof: bool,
}

type Shared = Arc<(Mutex<Lines>, Condvar)>;

fn capture(child: &mut Child) -> Shared {
    let shared: Shared = Arc::new((Mutex::new(Lines::default()), Condvar::new()));
    let out = child.stdout.take().expect("piped stdout");
    let s = shared.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let (m, cv) = &*s;
            m.lock().unwrap().lines.push(line);
            cv.notify_all();
        }
        let (m, cv) = &*s;
        m.lock().unwrap().eof = true;
        cv.notify_all();
    });
    shared
}

/// Waits until a printed line satisfies `done`; returns every line so far.
fn wait_lines(
    shared: &Shared,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<Vec<String>, Vec<String>> {
    let (m, cv) = &**shared;
    let deadline = Instant::now() + timeout;
    let mut g = m.lock().unwrap();
    loop {
        if g.lines.iter().any(|l| done(l)) {
            return Ok(g.lines.clone());
        }
        let now = Instant::now();
        if g.eof || now >= deadline {
            return Err(g.lines.clone());
        }
        g = cv.wait_timeout(g, deadline - now).unwrap().0;
    }
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

/// A running `tuk` server on 127.0.0.1, in its own temporary folder.
pub struct Server {
    /// Holds `data/` and the stderr logs; removed on drop.
    root: tempfile::TempDir,
    pub data: PathBuf,
    pub port: u16,
    /// Current session token (of demo-kk-a-2026/S1).
    pub token: String,
    /// `(participant number, password)` of the open session, as printed.
    pub logins: Vec<(String, String)>,
    child: Option<Child>,
    out: Shared,
    runs: usize,
    born: Instant,
    /// Extra environment for the server process (limits in tests/abuse.rs).
    env: Vec<(String, String)>,
}

impl Server {
    /// `tuk demo --port 0 --data DIR`: the demo package, session S1 open.
    pub fn demo() -> Server {
        Server::demo_with_env(&[])
    }

    /// [`Server::demo`] with extra environment variables for the server process.
    pub fn demo_with_env(env: &[(&str, &str)]) -> Server {
        let root = tempfile::Builder::new()
            .prefix("tuk-it-")
            .tempdir()
            .expect("tempdir");
        let data = root.path().join("data");
        let mut s = Server {
            root,
            data,
            port: 0,
            token: String::new(),
            logins: Vec::new(),
            child: None,
            out: Arc::new((Mutex::new(Lines::default()), Condvar::new())),
            runs: 0,
            born: Instant::now(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let data = s.data.display().to_string();
        s.spawn(&["demo", "--port", "0", "--data", &data], |l| {
            l.starts_with("press Ctrl-C")
        })
        .unwrap_or_else(|e| panic!("tuk demo did not start: {e}"));
        s
    }

    /// `tuk serve` on a data folder made by [`Prepared::new`], on a free port.
    pub fn serve(p: Prepared) -> Server {
        Server::serve_with_env(p, &[])
    }

    /// [`Server::serve`] with extra environment variables for the server process (also
    /// on every [`Server::restart`]).
    pub fn serve_with_env(p: Prepared, env: &[(&str, &str)]) -> Server {
        let mut s = Server {
            root: p.root,
            data: p.data,
            port: 0,
            token: p.token,
            logins: p.logins,
            child: None,
            out: Arc::new((Mutex::new(Lines::default()), Condvar::new())),
            runs: 0,
            born: Instant::now(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.port = free_port();
        s.start_serve();
        s
    }

    fn start_serve(&mut self) {
        let data = self.data.display().to_string();
        let listen = format!("127.0.0.1:{}", self.port);
        // The port was free a moment ago; if something took it meanwhile (a client's
        // ephemeral port), try again shortly.
        let mut last = String::new();
        for _ in 0..20 {
            match self.spawn(&["serve", "--data", &data, "--listen", &listen], |l| {
                l.starts_with("listening:")
            }) {
                Ok(()) => return,
                Err(e) => {
                    last = e;
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        }
        panic!("tuk serve did not start: {last}");
    }

    /// Spawns the binary and waits for the line that says it is ready; parses what it printed.
    fn spawn(&mut self, args: &[&str], ready: impl Fn(&str) -> bool) -> Result<(), String> {
        self.runs += 1;
        let log = self.stderr_path(self.runs);
        let err = fs::File::create(&log).expect("stderr log");
        let mut child = Command::new(bin())
            .args(args)
            .env("TUK_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn tuk");
        let out = capture(&mut child);
        match wait_lines(&out, START_TIMEOUT, ready) {
            Ok(lines) => {
                self.parse(&lines);
                self.child = Some(child);
                self.out = out;
                Ok(())
            }
            Err(lines) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "`tuk {}`\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    args.join(" "),
                    lines.join("\n"),
                    fs::read_to_string(&log).unwrap_or_default()
                ))
            }
        }
    }

    fn parse(&mut self, lines: &[String]) {
        let mut logins = Vec::new();
        for l in lines {
            if let Some(rest) = l.strip_prefix("listening: http://127.0.0.1:") {
                self.port = rest.trim_end_matches('/').parse().expect("port");
            } else if let Some(t) = l.strip_prefix("token: ") {
                self.token = t.trim().to_string();
            } else if let Some(rest) = l.strip_prefix("login: ") {
                let mut it = rest.split_whitespace();
                if let (Some(n), Some(p)) = (it.next(), it.next()) {
                    logins.push((n.to_string(), p.to_string()));
                }
            }
        }
        if !logins.is_empty() {
            self.logins = logins;
        }
        assert_ne!(
            self.port, 0,
            "no `listening: http://127.0.0.1:PORT/` line in {lines:?}"
        );
    }

    fn stderr_path(&self, run: usize) -> PathBuf {
        self.root.path().join(format!("stderr-{run}.log"))
    }

    /// Everything the current process printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.out.0.lock().unwrap().lines.join("\n")
    }

    /// The current process's stderr (logs), for failure messages.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path(self.runs)).unwrap_or_default()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client on 127.0.0.1 (a lab PC).
    pub fn client(&self) -> Client {
        Client::new(self.addr())
    }

    /// A client whose connections come from `local` (e.g. 127.0.0.2: another PC).
    pub fn client_from(&self, local: Ipv4Addr) -> Client {
        Client::new(self.addr()).bind(IpAddr::V4(local))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `kill -9`: no shutdown, no final commit.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean stop (the store is closed after this).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts `tuk serve` again on the same data folder and port (after [`Server::kill9`]
    /// or [`Server::stop`]).
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "stop or kill the server before restarting it"
        );
        self.start_serve();
    }

    /// Opens the store of a stopped server, to check what is on disk.
    pub fn open_store(&self) -> tuk::store::Store {
        assert!(
            self.child.is_none(),
            "stop the server before opening its store"
        );
        tuk::store::Store::open(&self.data).expect("open store")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Visible with `--nocapture`: roughly how long the test using this server ran.
        eprintln!(
            "[{}] server on port {} ran {:.1} s",
            std::thread::current().name().unwrap_or("?"),
            self.port,
            self.born.elapsed().as_secs_f64()
        );
        self.kill9();
    }
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, drop the listener).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

// ---------------------------------------------------------------------------------------
// Prepared data folder from an edited copy of the demo package
// ---------------------------------------------------------------------------------------

/// A TUK data folder made with the CLI from an edited copy of `exam-packages/demo`, signed
/// with fresh keys: keygen → package build → init → trust add → package import →
/// session open → session passwords. The server is not running yet: pass it to
/// [`Server::serve`].
pub struct Prepared {
    pub root: tempfile::TempDir,
    pub data: PathBuf,
    pub src: PathBuf,
    pub token: String,
    pub logins: Vec<(String, String)>,
}

/// Runs the binary to completion; panics with its output if it fails.
pub fn tuk(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().expect("run tuk");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`tuk {}` failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

impl Prepared {
    /// `edit` gets the copied source folder (package.toml, items/, roster.csv, …) and may
    /// change it; `session` (e.g. `demo-kk-a-2026/S1`) is opened.
    pub fn new(edit: impl FnOnce(&Path), session: &str) -> Prepared {
        let root = tempfile::Builder::new()
            .prefix("tuk-it-")
            .tempdir()
            .expect("tempdir");
        let r = root.path();
        let src = r.join("src");
        copy_dir(&repo().join("exam-packages/demo"), &src);
        edit(&src);
        let keys = r.join("keys");
        let k = keys.display().to_string();
        tuk(&["keygen", "--out", &k, "--name", "upt-test"]);
        tuk(&["keygen", "--out", &k, "--name", "tuk-test"]);
        let pkg = r.join("test.tukpkg").display().to_string();
        tuk(&[
            "package",
            "build",
            &src.display().to_string(),
            "--sign",
            &keys.join("upt-test.key").display().to_string(),
            "--to",
            &keys.join("tuk-test.pub").display().to_string(),
            "-o",
            &pkg,
        ]);
        let pw = r.join("admin-password.txt");
        fs::write(&pw, "admin-password-for-tests\n").unwrap();
        let data = r.join("data");
        let d = data.display().to_string();
        tuk(&[
            "init",
            "--data",
            &d,
            "--key",
            &keys.join("tuk-test.key").display().to_string(),
            "--admin-password-file",
            &pw.display().to_string(),
        ]);
        tuk(&[
            "trust",
            "add",
            &keys.join("upt-test.pub").display().to_string(),
            "--data",
            &d,
        ]);
        tuk(&["package", "import", &pkg, "--data", &d]);
        let opened = tuk(&["session", "open", session, "--data", &d]);
        let token = opened
            .lines()
            .find_map(|l| l.strip_prefix("token: "))
            .expect("token line")
            .trim()
            .to_string();
        let package = session.split('/').next().unwrap();
        let logins = tuk(&["session", "passwords", package, "--data", &d])
            .lines()
            .filter_map(|l| l.strip_prefix("login: "))
            .map(|l| {
                let mut it = l.split_whitespace();
                (
                    it.next().unwrap().to_string(),
                    it.next().unwrap().to_string(),
                )
            })
            .collect();
        Prepared {
            root,
            data,
            src,
            token,
            logins,
        }
    }
}

/// Replaces exactly one occurrence of `from` in a text file (panics otherwise, so a changed
/// demo source is noticed).
pub fn edit_file(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} in {}",
        path.display()
    );
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

// ---------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------

/// A response, fully read.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// The stable error code of an API error (`{"code": ..., "message": ...}`).
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_string()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn location(&self) -> Option<String> {
        self.header("location")
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }

    /// Asserts an API refusal: the status and the stable code, with a message.
    #[track_caller]
    pub fn assert_refused(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "body: {}",
            self.text()
        );
        let v = self.json();
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without a message: {v}"
        );
        assert_eq!(
            v.as_object().map(|o| o.len()),
            Some(2),
            "error has exactly code and message: {v}"
        );
    }

    #[track_caller]
    pub fn assert_ok(&self) -> serde_json::Value {
        assert_eq!(self.status, 200, "body: {}", self.text());
        self.json()
    }
}

/// A browser-like HTTP/1.1 client: one connection per request, a cookie jar, optional
/// local address and extra headers (e.g. `Origin`).
#[derive(Clone)]
pub struct Client {
    server: SocketAddr,
    local: Option<IpAddr>,
    jar: Arc<Mutex<BTreeMap<String, String>>>,
    extra: Vec<(String, String)>,
    /// The participant form token of the last page that had one (as a browser's form
    /// would post it).
    form_token: Arc<Mutex<Option<String>>>,
}

impl Client {
    pub fn new(server: SocketAddr) -> Client {
        Client {
            server,
            local: None,
            jar: Arc::new(Mutex::new(BTreeMap::new())),
            extra: Vec::new(),
            form_token: Arc::new(Mutex::new(None)),
        }
    }

    /// Connect from this local address (any 127.x.y.z works on Linux loopback).
    pub fn bind(mut self, local: IpAddr) -> Client {
        self.local = Some(local);
        self
    }

    /// Sends this header with every request (e.g. `Origin`, `Accept-Language`).
    pub fn with_header(mut self, name: &str, value: &str) -> Client {
        self.extra.push((name.to_string(), value.to_string()));
        self
    }

    /// A copy with its own, independent cookie jar (starting from the current cookies).
    pub fn fork(&self) -> Client {
        let mut c = self.clone();
        c.jar = Arc::new(Mutex::new(self.jar.lock().unwrap().clone()));
        c.form_token = Arc::new(Mutex::new(self.form_token.lock().unwrap().clone()));
        c
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar.lock().unwrap().insert(name.into(), value.into());
    }

    pub fn clear_cookies(&self) {
        self.jar.lock().unwrap().clear();
    }

    fn store_cookies(&self, r: &Response) {
        let mut jar = self.jar.lock().unwrap();
        for sc in r.set_cookies() {
            let mut parts = sc.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let expired = parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
    }

    /// Sends a request with a raw body; `headers` add to (or override) the defaults.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Response {
        let body: Bytes = body.into();
        tokio::time::timeout(
            Duration::from_secs(60),
            self.send(method, path, headers, body),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no response within 60 s"))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Client::request`] that returns connection errors (a server that was killed
    /// mid-request) instead of panicking; gives up after `timeout`.
    pub async fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Response, String> {
        let body: Bytes = body.into();
        tokio::time::timeout(timeout, self.send(method, path, headers, body))
            .await
            .unwrap_or_else(|_| Err(format!("{method} {path}: no response within {timeout:?}")))
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Response, String> {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(ip) = self.local {
            socket
                .bind(SocketAddr::new(ip, 0))
                .expect("bind client address");
        }
        let stream = socket
            .connect(self.server)
            .await
            .map_err(|e| format!("{method} {path}: cannot connect to {}: {e}", self.server))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{method} {path}: handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .body(Full::new(body.clone()))
            .expect("request");
        let h = req.headers_mut();
        let set = |h: &mut HeaderMap, k: &str, v: &str| {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                HeaderValue::from_str(v).expect("header value"),
            );
        };
        set(h, "host", &self.server.to_string());
        set(h, "connection", "close");
        if method != "GET" && method != "HEAD" {
            set(h, "content-length", &body.len().to_string());
        }
        let cookies = {
            let jar = self.jar.lock().unwrap();
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !cookies.is_empty() {
            set(h, "cookie", &cookies);
        }
        for (k, v) in &self.extra {
            set(h, k, v);
        }
        for (k, v) in headers {
            set(h, k, v);
        }
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let (parts, incoming) = resp.into_parts();
        let body = incoming
            .collect()
            .await
            .map_err(|e| format!("{method} {path}: reading the body: {e}"))?
            .to_bytes();
        let r = Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        };
        self.store_cookies(&r);
        let marker = "name=\"form_token\" value=\"";
        let text = r.text();
        if let Some(at) = text.find(marker) {
            let rest = &text[at + marker.len()..];
            let token = rest.split('"').next().unwrap_or("").to_string();
            *self.form_token.lock().unwrap() = Some(token);
        }
        Ok(r)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], Bytes::new()).await
    }

    /// Sends `body` as JSON text (any bytes: tests send malformed JSON on purpose).
    pub async fn send_json(&self, method: &str, path: &str, body: impl Into<Bytes>) -> Response {
        self.request(method, path, &[("content-type", "application/json")], body)
            .await
    }

    pub async fn post(&self, path: &str, v: &serde_json::Value) -> Response {
        self.send_json("POST", path, v.to_string()).await
    }

    pub async fn put(&self, path: &str, v: &serde_json::Value) -> Response {
        self.send_json("PUT", path, v.to_string()).await
    }

    /// A form post as a browser sends it (repeated keys allowed).
    /// A participant's post carries the form token of the last page seen, unless `fields`
    /// name one.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            ser.extend_pairs(fields);
            if !fields.iter().any(|(k, _)| *k == "form_token")
                && let Some(t) = self.form_token.lock().unwrap().clone()
            {
                ser.append_pair("form_token", &t);
            }
            ser.finish()
        };
        self.request(
            "POST",
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------
// The UPT receiver (`tuk upt serve`), with a certificate made by rcgen
// ---------------------------------------------------------------------------------------

/// A running `tuk upt serve` on 127.0.0.1; killed on drop.
pub struct UptReceiver {
    child: Child,
    pub port: u16,
    /// Its self-signed certificate (PEM), for `tuk upload --upt-cert`.
    pub cert: PathBuf,
}

impl UptReceiver {
    /// The receiver's process id (for its RSS in tests/abuse.rs).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for UptReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tuk upt serve --data UPT` on a free port with a new certificate for
/// `localhost` and `127.0.0.1` (written into `dir`), accepting bundles up to `max_mb` MiB.
pub fn upt_receiver(upt: &Path, dir: &Path, max_mb: u64) -> UptReceiver {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = dir.join("upt-cert.pem");
    let key = dir.join("upt-tls-key.pem");
    fs::write(&cert, ck.cert.pem()).unwrap();
    fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mut child = Command::new(bin())
        .args(["upt", "serve", "--listen", "127.0.0.1:0", "--max-mb"])
        .arg(max_mb.to_string())
        .arg("--data")
        .arg(upt)
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .env("TUK_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Keep reading: a closed pipe would end the server at its next line.
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("listening: https://127.0.0.1:") {
                let _ = tx.send(rest.trim_end_matches('/').parse::<u16>().unwrap_or(0));
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(60)).unwrap_or(0);
    assert_ne!(port, 0, "tuk upt serve did not start");
    UptReceiver { child, port, cert }
}

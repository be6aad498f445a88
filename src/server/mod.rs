//! The HTTP server: accept connections, route requests, shut down cleanly.
//!
//! Lifecycle: [`serve`] accepts on a bound listener until the shutdown future resolves,
//! then stops accepting and lets requests in flight finish (each one that saves an answer
//! has its commit already queued, so draining loses nothing). Routing is one `match` on
//! method and path segments in [`route`]; each feature's handlers and pages live in their
//! own module.

pub(crate) mod api;
pub(crate) mod assets;
pub(crate) mod cek;
pub(crate) mod http;
pub(crate) mod i18n;
pub(crate) mod metrics;
pub(crate) mod participant;
pub(crate) mod refusal;
pub(crate) mod shell;
pub(crate) mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;
use hyper::StatusCode;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::app::App;
use crate::clock::now_ms;
use crate::exam::{CookieId, Exam, Outcome, ParticipantNo, Refused, Role, Who, secrets};
use http::{Req, Resp, STAFF_COOKIE};
pub(crate) use refusal::Refusal;

/// Connection limits of one server (issue 11, `docs/security.md`); each default can be
/// changed with the environment variable named beside it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnLimits {
    /// Open connections from one address (`TUK_MAX_CONN_PER_ADDR`, 64: a browser opens
    /// about 6).
    pub(crate) per_addr: usize,
    /// Open connections in all (`TUK_MAX_CONN`; default 3/4 of the file-descriptor limit,
    /// at most 8,192).
    pub(crate) total: usize,
    /// Time a client has to send a request's headers (`TUK_HEADER_DEADLINE_S`, 10 s).
    pub(crate) header_s: u64,
}

/// Time a client has to send a small request body once its headers are in
/// (`TUK_BODY_DEADLINE_S`, 10 s).
pub(crate) fn body_deadline() -> Duration {
    Duration::from_secs(crate::limits::env_limit("TUK_BODY_DEADLINE_S", 10u64).max(1))
}

/// Time an admin has to send a package (`TUK_UPLOAD_DEADLINE_S`, 600 s).
pub(crate) fn upload_deadline() -> Duration {
    Duration::from_secs(crate::limits::env_limit("TUK_UPLOAD_DEADLINE_S", 600u64).max(1))
}

impl ConnLimits {
    /// The limits from the environment, after raising the open-files limit.
    pub(crate) fn from_env() -> ConnLimits {
        let nofile = raise_nofile();
        let default_total = (nofile.saturating_sub(64) * 3 / 4).clamp(32, 8_192) as usize;
        ConnLimits {
            per_addr: crate::limits::env_limit("TUK_MAX_CONN_PER_ADDR", 64usize).max(1),
            total: crate::limits::env_limit("TUK_MAX_CONN", default_total).max(1),
            header_s: crate::limits::env_limit("TUK_HEADER_DEADLINE_S", 10u64).max(1),
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (a shell-started server often has
/// 1,024) and logs both numbers once. Returns the soft limit in force.
pub(crate) fn raise_nofile() -> u64 {
    static DONE: OnceLock<u64> = OnceLock::new();
    *DONE.get_or_init(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return 1024;
        }
        let before = lim.rlim_cur;
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        tracing::info!(
            "open-files limit: {} (was {before}, hard limit {})",
            lim.rlim_cur,
            lim.rlim_max
        );
        lim.rlim_cur
    })
}

/// Counts open connections per address and in all; a slot is given back when dropped.
#[derive(Default)]
struct Counts {
    total: usize,
    per: std::collections::HashMap<std::net::IpAddr, usize>,
}

struct Slot {
    counts: Arc<std::sync::Mutex<Counts>>,
    ip: std::net::IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per.remove(&self.ip);
            }
        }
    }
}

fn take_slot(
    counts: &Arc<std::sync::Mutex<Counts>>,
    ip: std::net::IpAddr,
    limits: &ConnLimits,
) -> Option<Slot> {
    let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
    let mine = c.per.get(&ip).copied().unwrap_or(0);
    if c.total >= limits.total || mine >= limits.per_addr {
        return None;
    }
    c.total += 1;
    *c.per.entry(ip).or_insert(0) += 1;
    Some(Slot {
        counts: counts.clone(),
        ip,
    })
}

/// What an over-limit plain-HTTP client reads before the connection is closed.
fn busy() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| {
        let body = "Server sibuk: terlalu banyak koneksi dari komputer ini atau dari semua komputer. Coba lagi sebentar lagi.\n";
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

/// The accept loop every `tuk` server shares (the exam server, and the UPT receiver):
/// accepts until `shutdown` resolves, gives each connection its own task (TLS handshake
/// first when `tls` is given, at most 10 s), answers each request with `handler`; then
/// stops accepting and lets connections finish their requests for at most `drain`.
///
/// A connection over [`ConnLimits`] (per address or in all) is answered `503` with
/// `Retry-After: 5` (plain HTTP; a TLS one is closed) and closed at once, so accept never
/// stalls and the server never runs out of file descriptors.
pub(crate) async fn accept<H, F>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: H,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Result<()>
where
    H: Fn(hyper::Request<hyper::body::Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    let limits = ConnLimits::from_env();
    tracing::info!(
        "connection limits: {} per address, {} in all; {} s for headers, {} s for a body",
        limits.per_addr,
        limits.total,
        limits.header_s,
        body_deadline().as_secs()
    );
    let counts = Arc::new(std::sync::Mutex::new(Counts::default()));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = take_slot(&counts, peer.ip(), &limits) else {
                    if acceptor.is_none() {
                        let _ = stream.try_write(busy());
                    }
                    refused += 1;
                    if refused.is_power_of_two() {
                        tracing::warn!("refused {refused} connection(s) over the limits so far (last from {})", peer.ip());
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (handler, acceptor, watcher) = (handler.clone(), acceptor.clone(), graceful.watcher());
                let header_s = limits.header_s;
                tokio::spawn(async move {
                    let _slot = slot;
                    match acceptor {
                        None => connection(TokioIo::new(stream), peer, handler, watcher, header_s).await,
                        // Boxed: a TLS connection's state (rustls, several KiB) would
                        // otherwise size every plain-HTTP connection's task too (dhat)
                        Some(acceptor) => Box::pin(async move {
                            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => connection(TokioIo::new(tls), peer, handler, watcher, header_s).await,
                                Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                                Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                            }
                        }).await,
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(drain) => tracing::warn!("some connections were still open after {drain:?}"),
    }
    Ok(())
}

/// One HTTP/1.1 connection (keep-alive; a client has `header_s` seconds to send a
/// request's headers).
async fn connection<I, H, F>(
    io: I,
    peer: SocketAddr,
    handler: H,
    watcher: hyper_util::server::graceful::Watcher,
    header_s: u64,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Fn(hyper::Request<hyper::body::Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    let conn = http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(Duration::from_secs(header_s))
        // hyper's minimum (8 KiB): the read buffer each open connection keeps between
        // requests is then at most 8 KiB (64 KiB let it grow to 13 KiB on average at
        // N=2,000, dhat: docs/performance.md); a request's headers over 8 KiB get 431
        .max_buf_size(8 * 1024)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(
            io,
            service_fn(move |req| {
                let response = handler(req, peer);
                async move { Ok::<_, Infallible>(response.await) }
            }),
        );
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!("connection with {peer}: {e}");
    }
}

/// Binds a listener with a large backlog, so a lab's login storm is not dropped at SYN.
pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr).map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {addr}: {e} (is another tuk or web server using the port? choose another with --listen)"
        )
    })?;
    Ok(socket.listen(4096)?)
}

/// Every address a lab PC could use to reach a listener on `addr`.
pub(crate) fn urls(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    if !addr.ip().is_unspecified() {
        return vec![format!("http://{addr}/")];
    }
    let mut v = vec![format!("http://127.0.0.1:{port}/")];
    if let Ok(ifs) = if_addrs::get_if_addrs() {
        for i in ifs {
            if let std::net::IpAddr::V4(ip) = i.ip()
                && !ip.is_loopback()
            {
                v.push(format!("http://{ip}:{port}/"));
            }
        }
    }
    v
}

/// Unauthenticated bodies (logins, `/cek`, anything without a valid cookie) are refused
/// past this size.
pub(crate) const ANON_BODY: usize = 8 * 1024;

/// Is the `Host` header one of this server's names (an IP literal, `localhost`, this
/// machine's host name, or one listed in `TUK_HOSTNAMES`)? Anything else is a page of
/// another site pointed at this server by DNS rebinding.
pub(crate) fn host_allowed(req: &Req) -> bool {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    let Some(host) = req.host_name() else {
        return true;
    };
    if host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" {
        return true;
    }
    NAMES
        .get_or_init(|| {
            let mut v: Vec<String> = tls::local_names()
                .into_iter()
                .map(|n| n.to_ascii_lowercase())
                .collect();
            if let Ok(extra) = std::env::var("TUK_HOSTNAMES") {
                v.extend(
                    extra
                        .split(',')
                        .map(|n| n.trim().to_ascii_lowercase())
                        .filter(|n| !n.is_empty()),
                );
            }
            v
        })
        .contains(&host)
}

/// API paths answer errors in JSON, pages in HTML.
pub(crate) fn error(req: &Req, r: impl Into<Refusal>) -> Resp {
    let r = r.into();
    if req.path.starts_with("/api/") {
        http::api_error(r, req.lang)
    } else {
        participant::error_page(req, r)
    }
}

/// The logged-in staff member behind a request.
pub(crate) struct Staff {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) csrf: String,
}

/// The staff member of a request's cookie, if any.
pub(crate) fn staff(app: &App, req: &Req) -> Option<Staff> {
    let id = secrets::cookie_id(&req.cookie(STAFF_COOKIE)?);
    let ex = app.read();
    let Who::Staff { user, csrf } = &ex.web.get(&id)?.who else {
        return None;
    };
    let u = ex.users.get(user)?;
    Some(Staff {
        name: user.clone(),
        role: u.role,
        csrf: csrf.clone(),
    })
}

/// Checks a participant password through the shared login routine
/// ([`crate::auth::check_password`]: per-(number, address) backoff and lock, decoy hash for
/// unknown numbers) and, if right, creates the browser session. Returns the new cookie.
pub(crate) async fn login(
    app: &App,
    number: &str,
    password: &str,
    current: Option<CookieId>,
    ip: String,
) -> Outcome<String> {
    let number = ParticipantNo::new(number.trim());
    let (phc, guard) = {
        let ex = app.read();
        (
            ex.credentials.get(&number).map(|c| c.phc.clone()),
            ex.logins.clone(),
        )
    };
    let checked = crate::auth::check_password(
        &guard,
        &app.hash_slots,
        &number,
        &ip,
        phc,
        dummy_hash(),
        password.trim().to_string(),
    )
    .await;
    match checked {
        Ok(()) => {}
        Err(crate::auth::LoginRefused::Locked) => return Err(Refused::LoginLocked),
        Err(crate::auth::LoginRefused::Unavailable) => return Err(Refused::StoreFailed),
        Err(crate::auth::LoginRefused::Wrong {
            pair_locked,
            addr_locked,
        }) => {
            if addr_locked {
                tracing::warn!("address {ip} is locked for every login after repeated failures");
            }
            if pair_locked {
                let (n, ip) = (number.clone(), ip.clone());
                let _ = app
                    .writer
                    .run(move |ex: &mut Exam| (ex.login_locked_events(&n, &ip, now_ms()), ()))
                    .await;
            }
            return Err(Refused::BadLogin);
        }
    }
    let cookie = secrets::new_cookie().map_err(|_| Refused::StoreFailed)?;
    let id = secrets::cookie_id(&cookie);
    let r = app
        .writer
        .run(move |ex: &mut Exam| ex.login(&number, &id, current.as_ref(), &ip, now_ms()))
        .await;
    match r {
        Ok(Ok(())) => Ok(cookie),
        Ok(Err(refusal)) => Err(refusal),
        Err(_) => Err(Refused::StoreFailed),
    }
}

/// A participant-cost hash to check unknown numbers against.
pub(crate) fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        secrets::hash_password("not-a-password", secrets::participant_params()).unwrap_or_default()
    })
}

/// Runs `f` on the exam state inside the single writer and returns its outcome once the
/// writes it asked for are committed; a failed commit becomes `Refused::StoreFailed` (503).
pub(crate) async fn commit_change<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&mut Exam) -> (Vec<crate::store::Put>, Outcome<T>) + Send + 'static,
) -> Outcome<T> {
    match app.writer.run(f).await {
        Ok(r) => r,
        Err(_) => Err(Refused::StoreFailed),
    }
}

pub(crate) fn not_found(req: &Req) -> Resp {
    error(req, crate::server::refusal::NOT_FOUND)
}

pub(crate) fn status_of(r: impl Into<Refusal>) -> StatusCode {
    r.into().status_code()
}

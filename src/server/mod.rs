//! The HTTP server: accept connections, route requests, shut down cleanly.
//!
//! Lifecycle: [`serve`] accepts on a bound listener until the shutdown future resolves,
//! then stops accepting and lets requests in flight finish (each one that saves an answer
//! has its commit already queued, so draining loses nothing). Routing is one `match` on
//! method and path segments in [`route`]; each feature's handlers and pages live in their
//! own module.

pub mod api;
pub mod assets;
pub mod cek;
pub mod http;
pub mod i18n;
pub mod participant;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::app::App;
use crate::clock::now_ms;
use crate::exam::{self, Exam, Outcome, secrets};
use http::{BodyError, Req, Resp};

/// Serves the exam (participant pages, API, console) on `listener`, over TLS when `tls` is
/// given, until `shutdown` resolves; then drains for at most `drain`.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Result<()> {
    let handler = move |req, peer| handle(app.clone(), req, peer);
    accept(listener, tls, handler, shutdown, drain).await
}

/// The accept loop every `tuk` server shares (the exam server, and the UPT receiver):
/// accepts until `shutdown` resolves, gives each connection its own task (TLS handshake
/// first when `tls` is given, at most 10 s), answers each request with `handler`; then
/// stops accepting and lets connections finish their requests for at most `drain`.
pub async fn accept<H, F>(
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
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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
                let _ = stream.set_nodelay(true);
                let (handler, acceptor, watcher) = (handler.clone(), acceptor.clone(), graceful.watcher());
                tokio::spawn(async move {
                    match acceptor {
                        None => connection(TokioIo::new(stream), peer, handler, watcher).await,
                        Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => connection(TokioIo::new(tls), peer, handler, watcher).await,
                            Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                            Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                        },
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

/// One HTTP/1.1 connection (keep-alive; a client has 30 s to send a request's headers).
async fn connection<I, H, F>(
    io: I,
    peer: SocketAddr,
    handler: H,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Fn(hyper::Request<hyper::body::Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    let conn = http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(Duration::from_secs(30))
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
pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
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

pub(crate) async fn handle(
    app: Arc<App>,
    req: hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> Resp {
    let started = std::time::Instant::now();
    // Package uploads are the one large body a browser sends.
    let limit = if req.uri().path() == "/admin/impor" {
        crate::package::MAX_PACKAGE_BYTES as usize
    } else {
        http::SMALL_BODY
    };
    let req = match Req::read(req, peer.ip(), limit).await {
        Ok(r) => r,
        Err((r, BodyError::TooLarge)) => return error(&r, exam::Refusal::new(413, "too_large")),
        Err((r, BodyError::Broken)) => return error(&r, exam::Refusal::new(400, "invalid_input")),
    };
    let resp = route(&app, &req).await;
    crate::deploy::metrics::observe(
        &req.method,
        &req.path,
        resp.status().as_u16(),
        started.elapsed(),
    );
    tracing::debug!(
        method = %req.method,
        path = %req.path,
        status = resp.status().as_u16(),
        us = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

/// API paths answer errors in JSON, pages in HTML.
pub fn error(req: &Req, r: exam::Refusal) -> Resp {
    if req.path.starts_with("/api/") {
        http::api_error(r, req.lang)
    } else {
        participant::error_page(req, r)
    }
}

async fn route(app: &App, req: &Req) -> Resp {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let changes = !matches!(req.method, Method::GET | Method::HEAD);
    if changes && !req.same_origin() {
        return error(req, exam::Refusal::new(403, "cross_site"));
    }
    match (&req.method, segs.as_slice()) {
        (&Method::GET, ["static", name]) => assets::serve(name),
        (&Method::GET, ["media", package, name]) => participant::media(app, req, package, name),
        (_, ["api", "v1", rest @ ..]) => api::route(app, req, rest).await,
        (_, ["api", ..]) => not_found(req),
        (_, ["cek", rest @ ..]) => cek::route(app, req, rest).await,
        (&Method::GET, ["metrics"]) => crate::deploy::metrics::handle(app, req),
        (_, ["admin", "pcs", rest @ ..]) => cek::admin(app, req, rest).await,
        (_, ["admin", rest @ ..]) => crate::console::route(app, req, rest).await,
        _ => participant::route(app, req, &segs).await,
    }
}

/// Checks a participant password on the bounded hashing pool and, if right, creates the
/// browser session. Returns the new cookie value.
pub async fn login(
    app: &App,
    number: &str,
    password: &str,
    current: Option<String>,
    ip: String,
) -> Outcome<String> {
    let number = number.trim().to_string();
    let (phc, locked) = {
        let ex = app.read();
        (
            ex.credentials.get(&number).map(|c| c.phc.clone()),
            ex.login_locked(&number, now_ms()),
        )
    };
    if locked {
        return Err(exam::LOCKED);
    }
    let password = password.trim().to_string();
    let ok = {
        let Ok(_permit) = app.hash_slots.acquire().await else {
            return Err(exam::STORE_FAILED);
        };
        // Guesses sent in parallel all passed the first check; look again now.
        if app.read().login_locked(&number, now_ms()) {
            return Err(exam::LOCKED);
        }
        tokio::task::spawn_blocking(move || match phc {
            Some(h) => secrets::verify_password(&password, &h),
            None => {
                // Same cost for unknown numbers, so timing does not reveal who exists.
                secrets::verify_password(&password, dummy_hash());
                false
            }
        })
        .await
        .unwrap_or(false)
    };
    if !ok {
        let n = number.clone();
        let _ = app
            .writer
            .run(move |ex: &mut Exam| (ex.login_failed(&n, &ip, now_ms()), ()))
            .await;
        // Each failure in a row makes the next answer slower (up to 2 s).
        let failures = app.read().failures.get(&number).map_or(1, |f| f.count);
        tokio::time::sleep(Duration::from_millis(250 * u64::from(failures.min(8)))).await;
        return Err(exam::BAD_LOGIN);
    }
    let cookie = secrets::new_cookie().map_err(|_| exam::STORE_FAILED)?;
    let id = secrets::cookie_id(&cookie);
    let r = app
        .writer
        .run(move |ex: &mut Exam| ex.login(&number, &id, current.as_deref(), &ip, now_ms()))
        .await;
    match r {
        Ok(Ok(())) => Ok(cookie),
        Ok(Err(refusal)) => Err(refusal),
        Err(_) => Err(exam::STORE_FAILED),
    }
}

fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        secrets::hash_password("not-a-password", secrets::participant_params()).unwrap_or_default()
    })
}

/// Runs a writer job that returns `(puts, Outcome<T>)`, mapping a failed commit to 503.
pub async fn change<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&mut Exam) -> (Vec<crate::store::Put>, Outcome<T>) + Send + 'static,
) -> Outcome<T> {
    match app.writer.run(f).await {
        Ok(r) => r,
        Err(_) => Err(exam::STORE_FAILED),
    }
}

pub fn not_found(req: &Req) -> Resp {
    error(req, exam::Refusal::new(404, "not_found"))
}

pub fn status_of(r: exam::Refusal) -> StatusCode {
    StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST)
}

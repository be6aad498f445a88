//! `tuk upt serve`: the UPT's HTTPS receiver for sealed bundles.
//!
//! - `POST /upt/v1/bundles` with the bundle file as the body (`application/octet-stream`):
//!   `200 {"already": bool, "message": ..., "receipt": ..., "signature": ...}` or an error
//!   `{"code": ..., "message": ...}` with 403 (`unknown_tuk`, `unknown_package`), 409
//!   (`replayed`, `conflict`), 413 (`too_large`), 422 (`bundle_invalid`) or 500.
//! - `GET /upt/v1/` → `{"service": "tuk-upt", "upt": NAME, "fingerprint": ..., "max_bytes": N}`;
//!   the client asks first, so an oversized bundle is refused before it is sent.
//! - everything else: the staff's report pages ([`super::web`], login required).
//!
//! TLS only (`server::tls::load`), on the accept loop the exam server uses
//! (`server::accept`). The check and the store write run on a blocking thread, one import
//! at a time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::Upt;
use super::web::{self, Web};
use crate::server::http::{self, BodyError, Req, Resp};

pub const BUNDLES_PATH: &str = "/upt/v1/bundles";

static UPLOAD_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Uploads in flight from one address at most: one PC cannot take both slots.
pub const UPLOADS_PER_ADDR: usize = 1;
/// A bundle body must arrive within 10 s plus one second per this many bytes (256 KiB/s,
/// far below any LAN or school uplink); slower uploads are cut off so they cannot hold a
/// slot.
pub const MIN_UPLOAD_BYTES_PER_S: u64 = 256 * 1024;

/// How long to wait for a free upload slot before answering 503 + `Retry-After`.
const SLOT_WAIT: Duration = Duration::from_secs(20);

fn per_addr() -> &'static std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>> {
    static M: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    > = std::sync::OnceLock::new();
    M.get_or_init(Default::default)
}

/// One upload from an address; given back when dropped.
struct AddrSlot(std::net::IpAddr);

impl AddrSlot {
    fn take(ip: std::net::IpAddr) -> Option<AddrSlot> {
        let mut m = per_addr().lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= UPLOADS_PER_ADDR {
            return None;
        }
        *n += 1;
        Some(AddrSlot(ip))
    }
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        let mut m = per_addr().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.0);
            }
        }
    }
}

fn busy(message: &str) -> Resp {
    let mut r = error(503, "busy", message);
    r.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from_static("10"),
    );
    r
}

fn json(status: u16, v: &serde_json::Value) -> Resp {
    http::json(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        v,
    )
}

fn error(status: u16, code: &str, message: &str) -> Resp {
    json(
        status,
        &serde_json::json!({"code": code, "message": message}),
    )
}

async fn handle(
    upt: Arc<Upt>,
    web: Arc<Web>,
    max_bytes: u64,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Resp {
    if !req.uri().path().starts_with("/upt/") {
        // The login decides how much form is read: 8 KiB without one (nothing large is
        // read before the staff member is known), up to `FORM_LIMIT` with one.
        let (parts, body) = req.into_parts();
        let mut r = Req::head(parts, peer.ip());
        let limit = if web.logged_in_request(&r) {
            web::FORM_LIMIT
        } else {
            crate::server::ANON_BODY
        };
        let read =
            tokio::time::timeout(crate::server::upload_deadline(), r.read_body(body, limit)).await;
        return match read {
            Ok(Ok(())) => web::route(&upt, &web, r).await,
            Ok(Err(BodyError::TooLarge)) => http::response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain; charset=utf-8",
                "the form is too large",
            ),
            Ok(Err(BodyError::Broken)) | Err(_) => http::response(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                "the request body was cut off",
            ),
        };
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/upt/v1/" | "/upt/v1") => json(
            200,
            &serde_json::json!({"service": "tuk-upt", "upt": upt.key.name, "fingerprint": upt.key.public().fingerprint(), "max_bytes": max_bytes}),
        ),
        (&Method::POST, BUNDLES_PATH) => {
            let declared = req
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let Some(declared) = declared else {
                return error(
                    411,
                    "length_required",
                    "send the bundle with a Content-Length header (tuk upload does)",
                );
            };
            if declared > max_bytes {
                return error(
                    413,
                    "too_large",
                    &format!("the bundle is larger than this receiver accepts ({max_bytes} bytes)"),
                );
            }
            // One upload per address, at most two bodies in memory at once: a burst of
            // uploads queues instead of exhausting the UPT's memory, and one PC cannot hold
            // both slots.
            let Some(_mine) = AddrSlot::take(peer.ip()) else {
                return busy(
                    "another upload from this address is in progress; try again when it ends",
                );
            };
            let _slot = match tokio::time::timeout(SLOT_WAIT, UPLOAD_SLOTS.acquire()).await {
                Ok(Ok(s)) => s,
                Ok(Err(_)) => return busy("the receiver is shutting down; try again"),
                Err(_) => {
                    return busy("the receiver is busy with other uploads; try again shortly");
                }
            };
            // Slow bodies are cut off: they must not hold a slot.
            let deadline = Duration::from_secs(10 + declared / MIN_UPLOAD_BYTES_PER_S);
            let read = Limited::new(req.into_body(), declared as usize).collect();
            let body = match tokio::time::timeout(deadline, read).await {
                Err(_) => {
                    tracing::warn!("an upload from {} was too slow and was cut off", peer.ip());
                    return error(
                        408,
                        "too_slow",
                        &format!("the bundle did not arrive within {} s", deadline.as_secs()),
                    );
                }
                Ok(r) => r,
            };
            let body = match body {
                Ok(b) => b.to_bytes(),
                Err(e)
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some() =>
                {
                    return error(
                        413,
                        "too_large",
                        &format!(
                            "the bundle is larger than this receiver accepts ({max_bytes} bytes)"
                        ),
                    );
                }
                Err(_) => {
                    return error(400, "bad_request", "the upload was cut off; try again");
                }
            };
            let via = format!("upload from {}", peer.ip());
            let u = upt.clone();
            let r = tokio::task::spawn_blocking(move || u.import(&body, &via)).await;
            match r {
                Ok(Ok(done)) => {
                    let message = if done.already {
                        format!(
                            "bundle {} was already received; this is the same receipt",
                            done.blake3
                        )
                    } else {
                        format!(
                            "bundle {} received: {} participants of {} {}",
                            done.blake3,
                            done.header.participants,
                            done.header.package_id,
                            done.header.sessions.join(", ")
                        )
                    };
                    tracing::info!("{} ({})", crate::auth::log_safe(&message, 300), peer);
                    json(
                        200,
                        &serde_json::json!({
                            "already": done.already,
                            "message": message,
                            "receipt": done.receipt.receipt,
                            "signature": done.receipt.signature,
                        }),
                    )
                }
                Ok(Err(refusal)) => {
                    tracing::warn!(
                        "refused an upload from {}: {} ({})",
                        peer,
                        crate::auth::log_safe(&refusal.message, 300),
                        refusal.code
                    );
                    error(refusal.status, refusal.code, &refusal.message)
                }
                Err(e) => error(500, "internal", &format!("the import failed: {e}")),
            }
        }
        _ => error(
            404,
            "not_found",
            "unknown path; bundles go to POST /upt/v1/bundles",
        ),
    }
}

/// Serves until `shutdown` resolves; uploads in progress then have 60 s to finish (an
/// import is one transaction: it lands whole or not at all).
pub async fn serve(
    upt: Arc<Upt>,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    max_bytes: u64,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let web = Arc::new(Web::default());
    let handler = move |req, peer| handle(upt.clone(), web.clone(), max_bytes, peer, req);
    crate::server::accept(
        listener,
        Some(tls),
        handler,
        shutdown,
        Duration::from_secs(60),
    )
    .await
}

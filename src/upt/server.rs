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
        return match Req::read(req, peer.ip(), web::FORM_LIMIT).await {
            Ok(r) => web::route(&upt, &web, r).await,
            Err((_, BodyError::TooLarge)) => http::response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain; charset=utf-8",
                "the form is too large",
            ),
            Err((_, BodyError::Broken)) => http::response(
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
            if declared.is_some_and(|n| n > max_bytes) {
                return error(
                    413,
                    "too_large",
                    &format!("the bundle is larger than this receiver accepts ({max_bytes} bytes)"),
                );
            }
            // At most two bodies in memory at once: a burst of uploads queues instead of
            // exhausting the UPT's memory.
            let Ok(_slot) = UPLOAD_SLOTS.acquire().await else {
                return error(503, "busy", "the receiver is shutting down; try again");
            };
            let body = match Limited::new(req.into_body(), max_bytes as usize)
                .collect()
                .await
            {
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
                Err(e) => {
                    return error(400, "bad_request", &format!("the upload was cut off: {e}"));
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
                    tracing::info!("{message} ({})", peer);
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
                        refusal.message,
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

//! `tuk upt serve`: the UPT's HTTPS receiver for sealed bundles.
//!
//! - `POST /upt/v1/bundles` with the bundle file as the body (`application/octet-stream`):
//!   `200 {"already": bool, "message": ..., "receipt": ..., "signature": ...}` or an error
//!   `{"code": ..., "message": ...}` with 403 (`unknown_tuk`, `unknown_package`), 409
//!   (`replayed`, `conflict`), 413 (`too_large`), 422 (`bundle_invalid`) or 500.
//! - `GET /upt/v1/` → `{"service": "tuk-upt", "upt": NAME, "fingerprint": ..., "max_bytes": N}`;
//!   the client asks first, so an oversized bundle is refused before it is sent.
//!
//! - everything else: the staff's report pages ([`super::web`], login required).
//!
//! TLS only (rustls, ring). The check and the store write run on a blocking thread, one
//! import at a time.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::Upt;
use super::web::{self, Web};
use crate::server::http::{self, BodyError, Req, Resp};

pub const BUNDLES_PATH: &str = "/upt/v1/bundles";

static UPLOAD_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Reads a PEM certificate chain and private key into a rustls server configuration.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let cert_pem =
        std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let key_pem = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{} is not a PEM certificate: {e:?}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow!("{} is not a PEM private key: {e:?}", key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| anyhow!("{e}"))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| anyhow!("the certificate and key do not fit together: {e}"))?;
    Ok(Arc::new(cfg))
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

/// Serves until `shutdown` resolves.
pub async fn serve(
    upt: Arc<Upt>,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    max_bytes: u64,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let web = Arc::new(Web::default());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let upt = upt.clone();
        let web = web.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(20), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake with {peer} failed: {e}");
                        return;
                    }
                    Err(_) => return,
                };
            let svc = hyper::service::service_fn(move |req| {
                let (upt, web) = (upt.clone(), web.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(handle(upt, web, max_bytes, peer, req).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = conn.await {
                tracing::debug!("connection with {peer}: {e}");
            }
        });
    }
}

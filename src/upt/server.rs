//! `tuk upt serve`: the UPT's HTTPS receiver for sealed bundles.
//!
//! - `GET /upt/v1/` → `{"service": "tuk-upt", "upt": NAME, "fingerprint": ..., "max_bytes": N,
//!   "challenge": C}`; the client asks first, so an oversized bundle is refused before it is
//!   sent, and it signs its upload over the fresh challenge `C`.
//! - `POST /upt/v1/bundles` with the bundle file as the body (`application/octet-stream`) and
//!   the header `Tuk-Auth: tuk-upload-v1 SIGNER LENGTH BLAKE3 CHALLENGE SIGNATURE` (see
//!   [`auth_message`]): the receiver checks that a TUK it trusts signed exactly this request
//!   **before it reads one byte of the body**. Answers `200 {"already": bool, "message": ...,
//!   "receipt": ..., "signature": ...}` or an error `{"code": ..., "message": ...}` with 401
//!   (`unauthenticated`, `bad_signature`, `stale_challenge`, `replayed_request`), 403
//!   (`unknown_tuk`, `unknown_package`), 409 (`replayed`, `conflict`), 413 (`too_large`),
//!   422 (`bundle_invalid`), 503 (`busy`) or 500.
//! - everything else: the staff's report pages ([`super::web`], login required).
//!
//! TLS only (`server::tls::load`), on the accept loop the exam server uses
//! (`server::accept`). The check and the store write run on a blocking thread, one import
//! at a time. Limits ([`UploadLimits`]) are in `docs/security.md`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::Upt;
use super::web::{self, Web};
use crate::keys::{self, SecretKey};
use crate::server::http::{self, BodyError, Req, Resp};

pub(crate) const BUNDLES_PATH: &str = "/upt/v1/bundles";

/// The request header that carries a TUK's signature over an upload.
pub(crate) const AUTH_HEADER: &str = "tuk-auth";
/// First word of [`AUTH_HEADER`] and of the signed message: the protocol version.
pub(crate) const AUTH_VERSION: &str = "tuk-upload-v1";
/// How long a challenge from `GET /upt/v1/` may be used (the receiver's own clock: the
/// TUK's clock does not matter).
pub(crate) const CHALLENGE_TTL_MS: i64 = 10 * 60 * 1000;

/// The exact bytes a TUK signs with its key to upload a bundle: method, path, its signer id,
/// the body's length and BLAKE3 (hex), and the receiver's challenge, one per line.
pub(crate) fn auth_message(signer: &str, length: u64, blake3: &str, challenge: &str) -> Vec<u8> {
    format!("{AUTH_VERSION}\nPOST\n{BUNDLES_PATH}\n{signer}\n{length}\n{blake3}\n{challenge}\n")
        .into_bytes()
}

/// The [`AUTH_HEADER`] value a TUK sends with `body`, signed with its key over the
/// receiver's `challenge`.
pub fn auth_header(key: &SecretKey, body: &[u8], challenge: &str) -> String {
    let signer = key.public().signer_id();
    let hash = blake3::hash(body).to_hex().to_string();
    let sig = key.sign(&auth_message(&signer, body.len() as u64, &hash, challenge));
    format!(
        "{AUTH_VERSION} {signer} {} {hash} {challenge} {}",
        body.len(),
        keys::signature_to_text(&sig)
    )
}

/// Limits of the upload route, each changed with the environment variable named beside it
/// (`docs/security.md`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct UploadLimits {
    /// Bodies being received at once, in all (`TUK_UPT_UPLOADS`, 2): each is held in memory
    /// up to `--max-mb`.
    pub(crate) total: usize,
    /// Uploads in flight from one address (`TUK_UPT_UPLOADS_PER_ADDR`, 1).
    pub(crate) per_addr: usize,
    /// Uploads in flight signed by one TUK key (`TUK_UPT_UPLOADS_PER_TUK`, 1).
    pub(crate) per_tuk: usize,
    /// A body must arrive within 10 s plus one second per this many bytes
    /// (`TUK_UPT_MIN_UPLOAD_KBPS`, 256 KiB/s: far below any LAN or school uplink); slower
    /// uploads are cut off (408) so they cannot hold a slot.
    pub(crate) min_bytes_per_s: u64,
    /// How long an upload waits for a free slot before `503` + `Retry-After`
    /// (`TUK_UPT_SLOT_WAIT_S`, 20 s).
    pub(crate) slot_wait: Duration,
}

impl UploadLimits {
    pub(crate) fn from_env() -> UploadLimits {
        use crate::limits::env_limit;
        UploadLimits {
            total: env_limit("TUK_UPT_UPLOADS", 2usize).max(1),
            per_addr: env_limit("TUK_UPT_UPLOADS_PER_ADDR", 1usize).max(1),
            per_tuk: env_limit("TUK_UPT_UPLOADS_PER_TUK", 1usize).max(1),
            min_bytes_per_s: env_limit("TUK_UPT_MIN_UPLOAD_KBPS", 256u64).max(1) * 1024,
            slot_wait: Duration::from_secs(env_limit("TUK_UPT_SLOT_WAIT_S", 20u64)),
        }
    }
}

/// Counts in-flight uploads per key (address or TUK).
type Counts<K> = Arc<Mutex<HashMap<K, usize>>>;

/// One in-flight upload counted under `key`; given back when dropped.
struct Slot<K: Hash + Eq + Clone> {
    counts: Counts<K>,
    key: K,
}

impl<K: Hash + Eq + Clone> Slot<K> {
    fn take(counts: &Counts<K>, key: K, max: usize) -> Option<Slot<K>> {
        let mut m = counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: counts.clone(),
            key,
        })
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut m = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

/// Stateless challenges: `MILLIS.MAC`, the MAC a keyed BLAKE3 with a secret made at start.
/// A challenge used by a verified upload is remembered until it expires, so a signed
/// request cannot be sent twice.
struct Challenges {
    secret: [u8; 32],
    spent: Mutex<HashMap<String, i64>>,
}

/// Most spent challenges remembered (only verified uploads add one).
const MAX_SPENT: usize = 10_000;

impl Challenges {
    fn new() -> Result<Challenges> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        Ok(Challenges {
            secret,
            spent: Mutex::new(HashMap::new()),
        })
    }

    fn mac(&self, at: i64) -> blake3::Hash {
        blake3::keyed_hash(&self.secret, format!("tuk-upt-challenge {at}").as_bytes())
    }

    fn issue(&self, now: i64) -> String {
        format!("{now}.{}", self.mac(now).to_hex())
    }

    /// Made by this receiver less than [`CHALLENGE_TTL_MS`] ago.
    fn fresh(&self, c: &str, now: i64) -> bool {
        let Some((at, mac)) = c.split_once('.') else {
            return false;
        };
        let (Ok(at), Ok(mac)) = (at.parse::<i64>(), blake3::Hash::from_hex(mac)) else {
            return false;
        };
        // `Hash` compares in constant time.
        self.mac(at) == mac && at <= now + 1_000 && now - at <= CHALLENGE_TTL_MS
    }

    /// Marks a challenge used; false if it was used before (or too many are remembered).
    fn spend(&self, c: &str, now: i64) -> bool {
        let mut m = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, at| now - *at <= CHALLENGE_TTL_MS + 1_000);
        if m.contains_key(c) || m.len() >= MAX_SPENT {
            return false;
        }
        let at = c
            .split_once('.')
            .and_then(|(a, _)| a.parse().ok())
            .unwrap_or(now);
        m.insert(c.to_string(), at);
        true
    }
}

/// Everything one receiver shares between its connections.
struct Receiver {
    upt: Arc<Upt>,
    web: Web,
    max_bytes: u64,
    limits: UploadLimits,
    challenges: Challenges,
    slots: tokio::sync::Semaphore,
    per_addr: Counts<IpAddr>,
    per_tuk: Counts<String>,
}

/// The TUK that signed an upload request.
struct Authed {
    signer: String,
    name: String,
    length: u64,
    blake3: String,
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

/// A refusal sent before the body was read: the connection is closed after it, so the
/// unread body is never taken in. The log line holds no client text.
fn refuse_unread(peer: SocketAddr, status: u16, code: &str, message: &str) -> Resp {
    tracing::warn!(
        "refused an upload from {} before reading its body: {status} {code}",
        peer.ip()
    );
    let mut r = error(status, code, message);
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    r
}

/// Checks the [`AUTH_HEADER`] of an upload against the TUK keys this UPT trusts. Reads no
/// body.
async fn authenticate(
    rx: &Arc<Receiver>,
    headers: &hyper::HeaderMap,
    declared: u64,
    peer: SocketAddr,
) -> std::result::Result<Authed, Resp> {
    let Some(value) = headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(refuse_unread(
            peer,
            401,
            "unauthenticated",
            "this receiver takes bundles only from a TUK it trusts, signed with the TUK's key; this request carries no TUK signature. Upload with `tuk upload FILE --to URL --data TUK-DATA-DIR` (the folder with tuk.key) of this tuk version, or take the file to the UPT on a USB stick",
        ));
    };
    let bad = |why: &str| {
        refuse_unread(
            peer,
            401,
            "bad_signature",
            &format!(
                "the TUK signature of this upload is not valid ({why}); upload again with `tuk upload`"
            ),
        )
    };
    let f: Vec<&str> = value.split(' ').collect();
    let [version, signer, length, hash, challenge, sig] = f[..] else {
        return Err(bad("the Tuk-Auth header does not have six fields"));
    };
    if version != AUTH_VERSION {
        return Err(bad("unknown signature version; update tuk"));
    }
    let Ok(length) = length.parse::<u64>() else {
        return Err(bad("the signed length is not a number"));
    };
    if length != declared {
        return Err(bad("the signed length is not the Content-Length"));
    }
    let (Ok(verifying), Ok(signature)) = (
        keys::parse_verifying(signer),
        keys::signature_from_text(sig),
    ) else {
        return Err(bad("the key or signature is not readable"));
    };
    if blake3::Hash::from_hex(hash).is_err() {
        return Err(bad("the signed BLAKE3 is not 64 hex digits"));
    }
    let now = crate::clock::now_ms();
    if !rx.challenges.fresh(challenge, now) {
        return Err(refuse_unread(
            peer,
            401,
            "stale_challenge",
            "the upload's challenge is older than 10 minutes or was not made by this receiver (was it restarted?); try again",
        ));
    }
    let upt = rx.upt.clone();
    let tuks = tokio::task::spawn_blocking(move || upt.tuks()).await;
    let Ok(Ok(tuks)) = tuks else {
        return Err(error(
            500,
            "internal",
            "the UPT store cannot be read; try again",
        ));
    };
    let Some(tuk) = tuks.find(signer) else {
        return Err(refuse_unread(
            peer,
            403,
            "unknown_tuk",
            &format!(
                "this upload is signed by TUK key {} which this UPT does not trust; if the TUK is genuine, the UPT adds its public key with `tuk upt trust TUK.pub --data DIR`",
                keys::fingerprint(&verifying)
            ),
        ));
    };
    if !keys::verify(
        &tuk.verifying,
        &auth_message(signer, length, hash, challenge),
        &signature,
    ) {
        return Err(bad(&format!(
            "it does not verify with the key of TUK {}",
            tuk.fingerprint()
        )));
    }
    if !rx.challenges.spend(challenge, now) {
        return Err(refuse_unread(
            peer,
            401,
            "replayed_request",
            "this signed upload request was already used; `tuk upload` signs each request anew: try again",
        ));
    }
    Ok(Authed {
        signer: signer.to_string(),
        name: tuk.name.clone(),
        length,
        blake3: hash.to_string(),
    })
}

async fn handle(rx: Arc<Receiver>, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    if !req.uri().path().starts_with("/upt/") {
        // The login decides how much form is read: 8 KiB without one (nothing large is
        // read before the staff member is known), up to `FORM_LIMIT` with one.
        let (parts, body) = req.into_parts();
        let mut r = Req::head(parts, peer.ip());
        let limit = if rx.web.logged_in_request(&r) {
            web::FORM_LIMIT
        } else {
            crate::server::ANON_BODY
        };
        let read =
            tokio::time::timeout(crate::server::upload_deadline(), r.read_body(body, limit)).await;
        return match read {
            Ok(Ok(())) => web::route(&rx.upt, &rx.web, r).await,
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
            &serde_json::json!({
                "service": "tuk-upt",
                "upt": rx.upt.key.name,
                "fingerprint": rx.upt.key.public().fingerprint(),
                "max_bytes": rx.max_bytes,
                "challenge": rx.challenges.issue(crate::clock::now_ms()),
            }),
        ),
        (&Method::POST, BUNDLES_PATH) => upload(rx, peer, req).await,
        _ => error(
            404,
            "not_found",
            "unknown path; bundles go to POST /upt/v1/bundles",
        ),
    }
}

/// `POST /upt/v1/bundles`: who is sending is checked before the body is read; then the
/// per-address, per-TUK and global slots; then the body within its deadline.
async fn upload(rx: Arc<Receiver>, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    let max_bytes = rx.max_bytes;
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(declared) = declared else {
        return refuse_unread(
            peer,
            411,
            "length_required",
            "send the bundle with a Content-Length header (tuk upload does)",
        );
    };
    if declared > max_bytes {
        return refuse_unread(
            peer,
            413,
            "too_large",
            &format!("the bundle is larger than this receiver accepts ({max_bytes} bytes)"),
        );
    }
    let who = match authenticate(&rx, req.headers(), declared, peer).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    // One upload per address and per TUK, at most `total` bodies in memory at once: a burst
    // of uploads queues instead of exhausting the UPT's memory, and one PC or one TUK key
    // cannot hold every slot.
    let Some(_mine) = Slot::take(&rx.per_addr, peer.ip(), rx.limits.per_addr) else {
        return busy("another upload from this address is in progress; try again when it ends");
    };
    let Some(_tuk) = Slot::take(&rx.per_tuk, who.signer.clone(), rx.limits.per_tuk) else {
        return busy(
            "another upload signed by this TUK's key is in progress; try again when it ends",
        );
    };
    let _slot = match tokio::time::timeout(rx.limits.slot_wait, rx.slots.acquire()).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return busy("the receiver is shutting down; try again"),
        Err(_) => return busy("the receiver is busy with other uploads; try again shortly"),
    };
    // Slow bodies are cut off: they must not hold a slot.
    let deadline = Duration::from_secs(10 + declared / rx.limits.min_bytes_per_s);
    let read = Limited::new(req.into_body(), declared as usize).collect();
    let body = match tokio::time::timeout(deadline, read).await {
        Err(_) => {
            tracing::warn!(
                "an upload from {} (TUK {}) was too slow and was cut off",
                peer.ip(),
                crate::auth::log_safe(&who.name, 64)
            );
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
                &format!("the bundle is larger than this receiver accepts ({max_bytes} bytes)"),
            );
        }
        Err(_) => {
            return error(400, "bad_request", "the upload was cut off; try again");
        }
    };
    if body.len() as u64 != who.length || blake3::hash(&body).to_hex().as_str() != who.blake3 {
        tracing::warn!(
            "refused an upload from {}: its body is not the one TUK {} signed",
            peer.ip(),
            crate::auth::log_safe(&who.name, 64)
        );
        return error(
            400,
            "body_mismatch",
            "the body is not the bundle the TUK signed (changed on the way?); try again",
        );
    }
    let via = format!("upload from {}", peer.ip());
    let u = rx.upt.clone();
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

/// Serves until `shutdown` resolves; uploads in progress then have 60 s to finish (an
/// import is one transaction: it lands whole or not at all).
pub(crate) async fn serve(
    upt: Arc<Upt>,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    max_bytes: u64,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let limits = UploadLimits::from_env();
    tracing::info!(
        "uploads: {} at once, {} per address, {} per TUK key, bodies at least {} KiB/s",
        limits.total,
        limits.per_addr,
        limits.per_tuk,
        limits.min_bytes_per_s / 1024
    );
    let rx = Arc::new(Receiver {
        upt,
        web: Web::default(),
        max_bytes,
        limits,
        challenges: Challenges::new()?,
        slots: tokio::sync::Semaphore::new(limits.total),
        per_addr: Default::default(),
        per_tuk: Default::default(),
    });
    let handler = move |req, peer| handle(rx.clone(), peer, req);
    crate::server::accept(
        listener,
        Some(tls),
        handler,
        shutdown,
        Duration::from_secs(60),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_fresh_once_and_forged_ones_fail() {
        let c = Challenges::new().unwrap();
        let now = 1_700_000_000_000;
        let ch = c.issue(now);
        assert!(c.fresh(&ch, now + 1_000));
        assert!(!c.fresh(&ch, now + CHALLENGE_TTL_MS + 1));
        let other = Challenges::new().unwrap();
        assert!(!other.fresh(&ch, now), "another receiver's challenge");
        assert!(!c.fresh(&format!("{}.{}", now + 5, &ch[14..]), now + 10));
        assert!(!c.fresh("garbage", now));
        assert!(c.spend(&ch, now));
        assert!(!c.spend(&ch, now + 1), "a challenge is spent once");
    }

    #[test]
    fn the_signed_message_names_every_part() {
        let k = SecretKey::generate("tuk1").unwrap();
        let h = auth_header(&k, b"body", "1.ab");
        let f: Vec<&str> = h.split(' ').collect();
        assert_eq!(f.len(), 6);
        let sig = keys::signature_from_text(f[5]).unwrap();
        let msg = auth_message(f[1], 4, f[3], "1.ab");
        assert!(keys::verify(&k.public().verifying, &msg, &sig));
        let other = auth_message(f[1], 5, f[3], "1.ab");
        assert!(!keys::verify(&k.public().verifying, &other, &sig));
    }
}

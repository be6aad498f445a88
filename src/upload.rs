//! Uploading a sealed bundle to the UPT's receiver (`tuk upt serve`) over HTTPS.
//!
//! The client knows the path (`POST /upt/v1/bundles`); the user gives only
//! `https://HOST[:PORT]`. The server is checked in one of two ways:
//!
//! - **pinned** (`--upt-cert CERT.pem` or `--upt-fingerprint SHA256`): the certificate the
//!   server presents (its end-entity certificate) must be exactly the given one, compared by
//!   SHA-256 ([`Pinned`]). Name, expiry and CA flags are not looked at, so any self-signed
//!   certificate a UPT has works, including the `openssl req -x509` one-liner's (which is
//!   marked CA:TRUE); the handshake signature is still checked, so only the holder of the
//!   certificate's key can pass. A `--upt-cert` file that is a CA (own CA) also works: the
//!   chain is then checked against it the usual way.
//! - **public/system roots** (neither option): the public web roots plus the machine's own
//!   bundle (`/etc/ssl/certs/ca-certificates.crt`, or `SSL_CERT_FILE`), so Let's Encrypt and
//!   a UPT's own CA installed with `update-ca-certificates` work.
//!
//! The TUK proves who it is with every upload: the request carries a `Tuk-Auth` header,
//! its key's signature over the method, path, its key id, the body's length and BLAKE3 and a
//! fresh challenge from the receiver ([`crate::upt::server::auth_message`]); the receiver
//! checks it before it reads the body.
//!
//! Uploads are idempotent, so a failed attempt (no network, a 5xx) is
//! simply repeated with backoff; a refusal (4xx) is final and its message is shown.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::keys::SecretKey;
use crate::seal::receipt::{Receipt, SignedReceipt};
use crate::seal::{self, BundleHeader};
use crate::upt::server::{AUTH_HEADER, BUNDLES_PATH, auth_header};

/// Where to upload and how hard to try.
pub struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Trust only this certificate (PEM) instead of the public roots.
    pub(crate) cert: Option<Vec<u8>>,
    /// Trust only a certificate with this SHA-256 (as [`normalise_fingerprint`] gives it).
    pub(crate) fingerprint: Option<String>,
    pub(crate) attempts: u32,
    /// First wait between attempts; doubles each time, at most 60 s.
    pub(crate) backoff: Duration,
}

impl Target {
    /// Parses `https://HOST[:PORT][/]`.
    pub fn parse(url: &str, cert: Option<&Path>) -> Result<Target> {
        let rest = url.trim().strip_prefix("https://").ok_or_else(|| {
            anyhow!("--to must be an https:// address of the UPT receiver, e.g. https://upt.example.id:8443 (results never travel over plain http)")
        })?;
        let hostport = rest.split('/').next().unwrap_or("");
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse::<u16>()
                    .map_err(|_| anyhow!("the port in {url:?} is not a number"))?,
            ),
            _ => (hostport.trim_matches(['[', ']']).to_string(), 443),
        };
        if host.is_empty() {
            bail!("--to {url:?} has no host name");
        }
        let cert = cert
            .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
            .transpose()?;
        Ok(Target {
            host,
            port,
            cert,
            fingerprint: None,
            attempts: 6,
            backoff: Duration::from_secs(1),
        })
    }

    /// Pins the server's certificate to this SHA-256 (`AB:CD:…`, plain hex, or openssl's
    /// `sha256 Fingerprint=…` line).
    pub(crate) fn with_fingerprint(mut self, fp: Option<&str>) -> Result<Target> {
        self.fingerprint = fp.map(normalise_fingerprint).transpose()?;
        Ok(self)
    }

    /// The TLS client configuration, and the pin when one was given.
    fn tls(&self) -> Result<(Arc<rustls::ClientConfig>, Option<Arc<Pinned>>)> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow!("{e}"))?;
        if self.cert.is_none() && self.fingerprint.is_none() {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let system = std::env::var_os("SSL_CERT_FILE")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| SYSTEM_ROOTS.into());
            if let Ok(iter) = CertificateDer::pem_file_iter(&system) {
                // A bad entry in the system bundle is skipped, as openssl does.
                roots.add_parsable_certificates(iter.filter_map(|c| c.ok()));
            }
            let cfg = builder.with_root_certificates(roots).with_no_client_auth();
            return Ok((Arc::new(cfg), None));
        }
        let mut pins = Vec::new();
        let mut chain = None;
        if let Some(pem) = &self.cert {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("--upt-cert is not a PEM certificate: {e:?}"))?;
            let Some(first) = certs.first() else {
                bail!("--upt-cert holds no certificate (expected -----BEGIN CERTIFICATE-----)");
            };
            pins.push(crate::server::tls::fingerprint(first));
            // The same file as a CA, for a UPT that signs its receiver's certificate with
            // its own CA and hands out the CA.
            let mut roots = rustls::RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added > 0 {
                chain = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider.clone(),
                )
                .build()
                .ok();
            }
        }
        if let Some(fp) = &self.fingerprint {
            pins.push(fp.clone());
        }
        let pinned = Arc::new(Pinned {
            pins,
            chain,
            algorithms: provider.signature_verification_algorithms,
            seen: std::sync::Mutex::new(None),
        });
        let cfg = builder
            .dangerous()
            .with_custom_certificate_verifier(pinned.clone())
            .with_no_client_auth();
        Ok((Arc::new(cfg), Some(pinned)))
    }
}

/// The machine's CA bundle on Debian and its derivatives (`update-ca-certificates`).
pub(crate) const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A SHA-256 fingerprint as the user typed or pasted it, in the form
/// [`crate::server::tls::fingerprint`] prints (`AB:CD:…`, 32 bytes). Accepts colons, spaces,
/// lower case, and openssl's `sha256 Fingerprint=` / `SHA256:` prefixes.
pub(crate) fn normalise_fingerprint(text: &str) -> Result<String> {
    let t = text.trim();
    let t = t.rsplit_once('=').map_or(t, |(_, v)| v);
    let t = t
        .strip_prefix("SHA256:")
        .or_else(|| t.strip_prefix("sha256:"))
        .unwrap_or(t);
    let hex: String = t
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(
            "--upt-fingerprint {text:?} is not a SHA-256 fingerprint (64 hex digits, e.g. as `tuk upt init --self-signed` or `openssl x509 -noout -fingerprint -sha256 -in CERT.pem` prints it)"
        );
    }
    Ok(hex
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(":"))
}

/// Accepts the server when its end-entity certificate is one of the pinned ones (SHA-256),
/// or, for a `--upt-cert` that is a CA, when the chain checks out against it. The handshake
/// signature is always checked with the certificate's key, so a copy of the certificate
/// without its key does not pass.
#[derive(Debug)]
pub(crate) struct Pinned {
    /// Accepted fingerprints, `AB:CD:…`.
    pins: Vec<String>,
    /// The `--upt-cert` file as trust anchors (own CA), when it can be one.
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    /// The fingerprint of the last certificate the server presented.
    seen: std::sync::Mutex<Option<String>>,
}

impl Pinned {
    /// The last certificate the server presented, when it was refused.
    pub(crate) fn seen(&self) -> Option<String> {
        self.seen.lock().ok().and_then(|s| s.clone())
    }

    /// The fingerprints this upload accepts, for messages.
    pub(crate) fn pins(&self) -> String {
        self.pins.join(" or ")
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let fp = crate::server::tls::fingerprint(end_entity);
        if self.pins.contains(&fp) {
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(chain) = &self.chain
            && let Ok(v) =
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            return Ok(v);
        }
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(fp);
        }
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The UPT's answer to an upload.
pub struct Uploaded {
    pub(crate) signed: SignedReceipt,
    pub(crate) receipt: Receipt,
    pub(crate) already: bool,
    pub(crate) message: String,
    pub(crate) attempts: u32,
}

enum Failure {
    /// Worth trying again (network, 5xx).
    Retry(anyhow::Error),
    /// The UPT refused, or TLS says this is not the UPT: stop.
    Final(anyhow::Error),
}

/// Uploads a bundle and checks the receipt: signed by the UPT that signed the package, for
/// exactly this file. Each request is signed with `key`, the TUK's key (the receiver takes
/// no body from a TUK it does not trust; see [`crate::upt::server::auth_message`]).
pub async fn upload(
    bundle: &[u8],
    target: &Target,
    key: &SecretKey,
    progress: &dyn Fn(&str),
) -> Result<Uploaded> {
    let header = seal::peek_header(bundle)?;
    let (tls, pinned) = target.tls()?;
    let body = Bytes::copy_from_slice(bundle);
    let mut wait = target.backoff;
    let mut last = None;
    for attempt in 1..=target.attempts.max(1) {
        match once(&body, target, key, tls.clone(), pinned.as_deref()).await {
            Ok((200, v)) => {
                let signed = SignedReceipt {
                    receipt: v["receipt"].as_str().unwrap_or("").to_string(),
                    signature: v["signature"].as_str().unwrap_or("").to_string(),
                };
                let receipt = check_receipt(&signed, &header, bundle)?;
                return Ok(Uploaded {
                    signed,
                    receipt,
                    already: v["already"].as_bool().unwrap_or(false),
                    message: v["message"].as_str().unwrap_or("").to_string(),
                    attempts: attempt,
                });
            }
            Ok((status, v)) => {
                let msg = v["message"].as_str().unwrap_or("(no message)").to_string();
                let code = v["code"].as_str().unwrap_or("").to_string();
                let e = anyhow!("the UPT refused the bundle ({status} {code}): {msg}");
                if status >= 500 || status == 429 || code == "stale_challenge" {
                    last = Some(e);
                } else {
                    return Err(e);
                }
            }
            Err(Failure::Final(e)) => return Err(e),
            Err(Failure::Retry(e)) => last = Some(e),
        }
        if attempt < target.attempts {
            if let Some(e) = &last {
                progress(&format!(
                    "attempt {attempt} failed ({}); trying again in {} s",
                    crate::error_chain(e),
                    wait.as_secs()
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(60));
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow!("no attempt was made"))
        .context(format!("the upload failed after {} attempts; the file is unchanged, try again later or take it to the UPT on a USB stick", target.attempts)))
}

/// A receipt is good when the package's UPT signed it, for this very file.
pub(crate) fn check_receipt(
    signed: &SignedReceipt,
    header: &BundleHeader,
    bundle: &[u8],
) -> Result<Receipt> {
    let r = signed
        .verify(&header.package_signer)
        .context("the receiver's receipt is not signed by the UPT that signed the package")?;
    let mine = blake3::hash(bundle).to_hex().to_string();
    if r.bundle_blake3 != mine
        || r.chains != header.chains
        || r.package_blake3 != header.package_blake3
    {
        bail!(
            "the receipt is for another bundle ({}), not this file ({mine})",
            r.bundle_blake3
        );
    }
    Ok(r)
}

async fn once(
    body: &Bytes,
    target: &Target,
    key: &SecretKey,
    tls: Arc<rustls::ClientConfig>,
    pinned: Option<&Pinned>,
) -> std::result::Result<(u16, serde_json::Value), Failure> {
    let addr = format!("{}:{}", target.host, target.port);
    let tcp = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .map_err(|_| Failure::Retry(anyhow!("no answer from {addr} within 20 s")))?
    .map_err(|e| Failure::Retry(anyhow!("cannot connect to {addr}: {e}")))?;
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| Failure::Final(anyhow!("{:?} is not a host name: {e}", target.host)))?;
    let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.map_err(|e| {
        let tls_problem = e.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        if let Some(p) = pinned.filter(|_| tls_problem)
            && let Some(seen) = p.seen()
        {
            Failure::Final(anyhow!(
                "the server at {addr} is not the UPT this upload trusts: its certificate has SHA-256 {seen}, but this upload expects {} (--upt-cert / --upt-fingerprint); ask the UPT for its current certificate or fingerprint, and do not send results to a server you do not know",
                p.pins()
            ))
        } else if tls_problem {
            Failure::Final(anyhow!(
                "the server at {addr} is not the UPT this upload trusts ({e}); give the UPT's certificate with --upt-cert CERT.pem or its fingerprint with --upt-fingerprint SHA256"
            ))
        } else {
            Failure::Retry(anyhow!("TLS with {addr} failed: {e}"))
        }
    })?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::Retry(anyhow!("{e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    // Ask first: an oversized bundle is refused before 500 MB go over the wire.
    let hello = hyper::Request::builder()
        .method("GET")
        .uri("/upt/v1/")
        .header("host", &target.host)
        .body(Full::new(Bytes::new()))
        .map_err(|e| Failure::Final(anyhow!("{e}")))?;
    let resp = tokio::time::timeout(Duration::from_secs(60), send.send_request(hello))
        .await
        .map_err(|_| Failure::Retry(anyhow!("no answer within 60 s")))?
        .map_err(|e| Failure::Retry(anyhow!("the connection broke: {e}")))?;
    let info = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::Retry(anyhow!("the answer was cut off: {e}")))?
        .to_bytes();
    let info: serde_json::Value = serde_json::from_slice(&info)
        .map_err(|_| Failure::Final(anyhow!("the server at {addr} is not a tuk UPT receiver")))?;
    if info["service"] != "tuk-upt" {
        return Err(Failure::Final(anyhow!(
            "the server at {addr} is not a tuk UPT receiver"
        )));
    }
    if let Some(max) = info["max_bytes"].as_u64()
        && body.len() as u64 > max
    {
        return Ok((
            413,
            serde_json::json!({"code": "too_large", "message": format!("the bundle has {} bytes; this receiver accepts at most {max} (its --max-mb)", body.len())}),
        ));
    }
    send.ready()
        .await
        .map_err(|e| Failure::Retry(anyhow!("the connection broke: {e}")))?;
    let mut req = hyper::Request::builder().method("POST").uri(BUNDLES_PATH);
    // The receiver checks this signature before it reads the body.
    if let Some(challenge) = info["challenge"].as_str() {
        req = req.header(AUTH_HEADER, auth_header(key, body, challenge));
    }
    let req = req
        .header("host", &target.host)
        .header("content-type", "application/octet-stream")
        .header("content-length", body.len().to_string())
        .header("user-agent", concat!("tuk/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(body.clone()))
        .map_err(|e| Failure::Final(anyhow!("{e}")))?;
    let resp = tokio::time::timeout(Duration::from_secs(600), send.send_request(req))
        .await
        .map_err(|_| Failure::Retry(anyhow!("no answer within 10 minutes")))?
        .map_err(|e| Failure::Retry(anyhow!("the connection broke: {e}")))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::Retry(anyhow!("the answer was cut off: {e}")))?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
        let f = anyhow!(
            "the server at {addr} did not answer like a tuk UPT receiver (status {status})"
        );
        if status >= 500 {
            Failure::Retry(f)
        } else {
            Failure::Final(f)
        }
    })?;
    Ok((status, v))
}

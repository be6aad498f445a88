//! The UPT receiver's attackers and a real TUK's upload, for tests/abuse.rs and
//! benches/abuse.rs: raw TLS uploads with any headers (the attacker does not check who
//! answers), a genuine demo bundle, a gzip bomb signed by the demo TUK, and `tuk upload`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn ok_out(o: &std::process::Output) -> String {
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{t}");
    t
}

pub fn demo_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("exam-packages")
        .join(rel)
}

pub fn pid_rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// 127.a.b.c: a source address of its own on the loopback (all of 127/8 reaches `lo`), so
/// that each attacker and the working participant look like different PCs.
pub fn loopback(a: u8, b: u8, c: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, a, b, c)
}

/// The working participant of both abuse runs: participant 0 logs in from 127.0.0.2 and
/// starts; returns its client, item 1's id and that item's option ids (to save answers to).
pub async fn participant_on_item_one(srv: &super::Server) -> (super::Client, String, Vec<String>) {
    let c = srv.client_from(loopback(0, 0, 2));
    let (number, password) = srv.logins[0].clone();
    c.post(
        "/api/v1/login",
        &serde_json::json!({"participant": number, "password": password}),
    )
    .await
    .assert_ok();
    c.post("/api/v1/start", &serde_json::json!({"token": srv.token}))
        .await
        .assert_ok();
    let it = c.get("/api/v1/items/1").await.assert_ok();
    let item = it["id"].as_str().expect("item 1 has an id").to_string();
    let options: Vec<String> = it["options"]
        .as_array()
        .expect("item 1 has options")
        .iter()
        .map(|o| o["id"].as_str().expect("an option has an id").to_string())
        .collect();
    (c, item, options)
}

pub fn tuk_cli(args: &[&str]) -> String {
    let o = std::process::Command::new(super::bin())
        .args(args)
        .env("TUK_CONFIG", "none")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run tuk");
    ok_out(&o)
}

/// A UPT folder that trusts the demo TUK and knows the demo package.
pub fn demo_upt(root: &std::path::Path) -> std::path::PathBuf {
    upt_folder(
        &root.join("upt"),
        &demo_file("demo-keys/upt.key"),
        &demo_file("demo-keys/tuk.pub"),
        &demo_file("demo.tukpkg"),
    )
}

/// `tuk upt init` of the UPT folder `d` with the key `upt_key`, trusting the TUK key
/// `tuk_pub`, with the package `pkg` registered.
pub fn upt_folder(
    d: &std::path::Path,
    upt_key: &std::path::Path,
    tuk_pub: &std::path::Path,
    pkg: &std::path::Path,
) -> std::path::PathBuf {
    let s = |p: &std::path::Path| p.display().to_string();
    tuk_cli(&["upt", "init", "--data", &s(d), "--key", &s(upt_key)]);
    tuk_cli(&["upt", "trust", &s(tuk_pub), "--data", &s(d)]);
    let out = tuk_cli(&["upt", "package", "add", &s(pkg), "--data", &s(d)]);
    assert!(out.contains("registered"), "{out}");
    d.to_path_buf()
}

/// A genuine bundle of the demo package's S1, sealed by the demo TUK (in-process).
pub fn demo_bundle(root: &std::path::Path) -> Vec<u8> {
    use tuk::keys::{PublicKey, SecretKey};
    let data = root.join("tuk");
    let tuk_key = SecretKey::read(&demo_file("demo-keys/tuk.key")).unwrap();
    tuk::app::App::init(&data, Some(tuk_key), "admin-password-1").unwrap();
    let app = tuk::app::App::open(&data).unwrap();
    app.trust_add(&PublicKey::read(&demo_file("demo-keys/upt.pub")).unwrap())
        .unwrap();
    app.import(&std::fs::read(demo_file("demo.tukpkg")).unwrap(), "test")
        .unwrap();
    app.open_session("demo-kk-a-2026/S1", None, 0, "test")
        .unwrap()
        .unwrap();
    let sealed =
        tuk::seal::tuk::seal(&app, &["demo-kk-a-2026/S1".to_string()], true, "test").unwrap();
    app.shutdown();
    sealed.bytes
}

/// The same bundle, re-signed by the demo TUK, with a payload whose gzip inflates to
/// `inflated` bytes of zeros: a bomb far past the tar size its signed members declare.
pub fn gzip_bomb(genuine: &[u8], inflated: usize) -> Vec<u8> {
    use std::io::Write;
    let parts = tuk::container::split(genuine, tuk::seal::MAGIC, "bundle").unwrap();
    let mut h: Value = serde_json::from_slice(parts.header_line).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..inflated >> 20 {
        gz.write_all(&zeros).unwrap();
    }
    let plain = gz.finish().unwrap();
    let upt = tuk::keys::PublicKey::read(&demo_file("demo-keys/upt.pub")).unwrap();
    let payload = tuk::container::age_encrypt_to(&[upt.recipient], &plain).unwrap();
    h["payload"] = serde_json::to_value(tuk::container::member("payload", &payload)).unwrap();
    let key = tuk::keys::SecretKey::read(&demo_file("demo-keys/tuk.key")).unwrap();
    tuk::container::write(
        tuk::seal::MAGIC,
        &serde_json::to_vec(&h).unwrap(),
        &key,
        &payload,
    )
}

/// Accepts any server certificate: the attacker's client (it does not care who answers).
#[derive(Debug)]
pub struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

pub async fn tls_connect(port: u16, from: Ipv4Addr) -> Tls {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(from.into(), 0)).unwrap();
    let tcp = s
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .unwrap()
}

/// Reads what the server answers (up to 4 KiB, at most `wait`): the status line and the
/// body's text.
pub async fn answer(s: &mut Tls, wait: Duration) -> String {
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    let deadline = Instant::now() + wait;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf[got..])).await {
            Ok(Ok(n)) if n > 0 => {
                got += n;
                if String::from_utf8_lossy(&buf[..got]).contains("\"message\"") {
                    break;
                }
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf[..got]).to_string()
}

/// A bundle upload: `extra` header lines, `len` announced; sends `send` bytes in 1 MiB
/// pieces (or one byte every 500 ms with `slow`), at most 20 s, and returns the bytes the
/// server took and its answer.
pub async fn post_bundle(
    port: u16,
    from: Ipv4Addr,
    extra: &str,
    len: usize,
    send: usize,
    slow: bool,
) -> (usize, String, Duration) {
    let t = Instant::now();
    let mut s = tls_connect(port, from).await;
    let head = format!(
        "POST /upt/v1/bundles HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n{extra}\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let chunk = vec![b'x'; if slow { 1 } else { 1 << 20 }];
    while sent < send && Instant::now() < deadline {
        let w = tokio::time::timeout(Duration::from_secs(2), async {
            s.write_all(&chunk).await?;
            s.flush().await
        })
        .await;
        match w {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
        if slow {
            // The answer may already be there: a slow sender still reads it.
            let a = answer(&mut s, Duration::from_millis(500)).await;
            if !a.is_empty() {
                return (sent, a, t.elapsed());
            }
        }
    }
    let a = answer(&mut s, Duration::from_secs(5)).await;
    (sent, a, t.elapsed())
}

/// A challenge from the receiver (what `tuk upload` asks first).
pub async fn challenge(port: u16, from: Ipv4Addr) -> String {
    let mut s = tls_connect(port, from).await;
    let req =
        format!("GET /upt/v1/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all)).await;
    let text = String::from_utf8_lossy(&all).to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{text}"));
    v["challenge"].as_str().expect("challenge").to_string()
}

pub fn upload_cli(
    port: u16,
    cert: &std::path::Path,
    file: &std::path::Path,
) -> (bool, String, Duration) {
    let t = Instant::now();
    let o = std::process::Command::new(super::bin())
        .args(["upload"])
        .arg(file)
        .args(["--to", &format!("https://127.0.0.1:{port}"), "--upt-cert"])
        .arg(cert)
        .arg("--key")
        .arg(demo_file("demo-keys/tuk.key"))
        .args(["--attempts", "3"])
        .env("TUK_CONFIG", "none")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("tuk upload");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text, t.elapsed())
}

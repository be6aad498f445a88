//! HTTPS for the lab, when the technician wants it (plain HTTP stays the default on an
//! isolated wired LAN), and for the UPT receiver: loading a PEM certificate and key into
//! rustls (ring provider only, TLS 1.2 and 1.3, so Chrome 49 and Firefox 52 connect), and
//! the self-signed certificate `tuk init --self-signed` makes for the server's LAN
//! addresses. The accept loop, handshake included, is [`super::accept`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Reads the certificate chain and key and builds the rustls configuration (checks that
/// the key belongs to the certificate).
pub(crate) fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow!("cannot read the TLS certificate {}: {e}", cert.display()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            anyhow!(
                "the TLS certificate {} is not valid PEM: {e}",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        bail!(
            "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            cert.display()
        );
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow!("cannot read the TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            anyhow!(
                "the TLS key {} does not fit the certificate {}: {e}",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

// ---------------------------------------------------------------------------------------
// Self-signed certificate

/// Where `tuk init --self-signed` writes the certificate and key, inside the data folder.
pub(crate) fn default_paths(data: &Path) -> (PathBuf, PathBuf) {
    (data.join("tls/cert.pem"), data.join("tls/key.pem"))
}

/// The names a lab PC may use for this server: every non-loopback address of its network
/// cards, the host name, and localhost.
pub(crate) fn local_names() -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    if let Ok(ifs) = if_addrs::get_if_addrs() {
        for i in ifs {
            let ip = i.ip();
            let skip = ip.is_loopback()
                || matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
            if !skip {
                v.push(ip.to_string());
            }
        }
    }
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim().to_string();
        if !h.is_empty() && h != "localhost" {
            v.push(format!("{h}.local"));
            v.push(h);
        }
    }
    v.extend(["localhost".into(), "127.0.0.1".into(), "::1".into()]);
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

/// SHA-256 of a certificate as browsers show it (`AB:CD:…`).
pub(crate) fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What was made.
pub(crate) struct SelfSigned {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) names: Vec<String>,
    pub(crate) fingerprint: String,
    pub(crate) not_after: String,
}

/// Makes a self-signed certificate for `names` (valid 10 years from yesterday) and writes
/// it to `cert` (0644) and `key` (0600). Refuses to overwrite existing files.
pub(crate) fn make_self_signed(cert: &Path, key: &Path, names: &[String]) -> Result<SelfSigned> {
    make_self_signed_as(cert, key, names, "TUK (self-signed)", "tuk")
}

/// [`make_self_signed`] with the organisation and common-name prefix written into the
/// certificate (`tuk upt init --self-signed` uses "UPT (self-signed)", "tuk-upt"). The
/// certificate is a leaf: CA:FALSE, digital signature, server authentication only.
pub(crate) fn make_self_signed_as(
    cert: &Path,
    key: &Path,
    names: &[String],
    org: &str,
    cn_prefix: &str,
) -> Result<SelfSigned> {
    for p in [cert, key] {
        if p.exists() {
            bail!(
                "{} already exists; remove it first to make a new certificate",
                p.display()
            );
        }
    }
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| anyhow!("cannot make a certificate for {names:?}: {e}"))?;
    let host = names
        .iter()
        .find(|n| n.parse::<IpAddr>().is_err() && *n != "localhost")
        .cloned()
        .unwrap_or_else(|| cn_prefix.into());
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{cn_prefix} {host}"));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, org);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let pair = rcgen::KeyPair::generate().map_err(|e| anyhow!("cannot make a key: {e}"))?;
    let c = params
        .self_signed(&pair)
        .map_err(|e| anyhow!("cannot sign the certificate: {e}"))?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if let Some(dir) = key.parent() {
        crate::fsutil::create_private_dir(dir)?;
    }
    crate::keys::write_new_file(key, pair.serialize_pem().as_bytes(), 0o600)?;
    crate::keys::write_new_file(cert, c.pem().as_bytes(), 0o644)?;
    Ok(SelfSigned {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        names: names.to_vec(),
        fingerprint: fingerprint(c.der()),
        not_after: crate::clock::rfc3339(params.not_after.unix_timestamp() * 1000),
    })
}

// ---------------------------------------------------------------------------------------
// Reading a certificate back (for `tuk doctor`): validity and names, with a small DER reader.

/// What `tuk doctor` shows of a certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    pub(crate) not_before_ms: i64,
    pub(crate) not_after_ms: i64,
    pub(crate) names: Vec<String>,
    pub(crate) fingerprint: String,
}

/// One DER element: (tag, content, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn der_time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?;
    let digits = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i32 = digits.get(0..2)?.parse().ok()?;
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                digits.get(2..)?,
            )
        }
        0x18 => (digits.get(0..4)?.parse().ok()?, digits.get(4..)?),
        _ => return None,
    };
    let n = |a: usize| -> Option<u8> { rest.get(a..a + 2)?.parse().ok() };
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(n(0)?).ok()?, n(2)?).ok()?;
    let t = time::Time::from_hms(n(4)?, n(6)?, n(8)?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp()
            * 1000,
    )
}

/// Validity and subject alternative names of a DER certificate.
pub(crate) fn cert_info(cert_der: &[u8]) -> Option<CertInfo> {
    let (_, cert, _) = der(cert_der)?;
    let (_, tbs, _) = der(cert)?;
    let mut rest = tbs;
    let (tag, _, r) = der(rest)?;
    if tag == 0xa0 {
        rest = r; // version
    }
    let (_, _, r) = der(rest)?; // serial
    let (_, _, r) = der(r)?; // signature algorithm
    let (_, _, r) = der(r)?; // issuer
    let (_, validity, r) = der(r)?;
    let (t1, nb, vr) = der(validity)?;
    let (t2, na, _) = der(vr)?;
    let (_, _, r) = der(r)?; // subject
    let (_, _, mut r) = der(r)?; // public key
    let mut names = Vec::new();
    while let Some((tag, content, next)) = der(r) {
        if tag == 0xa3 {
            // extensions: [3] { SEQUENCE OF Extension }
            let (_, list, _) = der(content)?;
            let mut exts = list;
            while let Some((_, ext, next_ext)) = der(exts) {
                let (_, oid, er) = der(ext)?;
                if oid == [0x55, 0x1d, 0x11] {
                    let (mut t, mut v, _) = der(er)?;
                    if t == 0x01 {
                        // critical flag, then the value
                        let (_, _, after) = der(er)?;
                        (t, v, _) = der(after)?;
                    }
                    if t == 0x04 {
                        let (_, seq, _) = der(v)?;
                        let mut g = seq;
                        while let Some((gt, gv, gn)) = der(g) {
                            match gt {
                                0x82 => names.push(String::from_utf8_lossy(gv).into_owned()),
                                0x87 if gv.len() == 4 => names
                                    .push(IpAddr::from([gv[0], gv[1], gv[2], gv[3]]).to_string()),
                                0x87 if gv.len() == 16 => {
                                    let mut a = [0u8; 16];
                                    a.copy_from_slice(gv);
                                    names.push(IpAddr::from(a).to_string())
                                }
                                _ => {}
                            }
                            g = gn;
                        }
                    }
                }
                exts = next_ext;
            }
        }
        r = next;
    }
    Some(CertInfo {
        not_before_ms: der_time(t1, nb)?,
        not_after_ms: der_time(t2, na)?,
        names,
        fingerprint: fingerprint(cert_der),
    })
}

/// Reads the first certificate of a PEM file and describes it.
pub(crate) fn read_cert_info(cert: &Path) -> Result<CertInfo> {
    let first = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow!("cannot read {}: {e}", cert.display()))?
        .next()
        .ok_or_else(|| anyhow!("{} holds no certificate", cert.display()))?
        .map_err(|e| anyhow!("{} is not valid PEM: {e}", cert.display()))?;
    cert_info(first.as_ref())
        .ok_or_else(|| anyhow!("{} is not a certificate tuk can read", cert.display()))
}

/// The `https://` address lines for a listener.
pub(crate) fn https_urls(addr: SocketAddr) -> Vec<String> {
    super::urls(addr)
        .into_iter()
        .map(|u| u.replacen("http://", "https://", 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = default_paths(dir.path());
        let names = vec!["192.168.1.10".to_string(), "localhost".to_string()];
        let made = make_self_signed(&c, &k, &names).unwrap();
        assert_eq!(made.fingerprint.len(), 32 * 3 - 1);
        load(&c, &k).unwrap();
        let info = read_cert_info(&c).unwrap();
        assert_eq!(info.fingerprint, made.fingerprint);
        assert!(
            info.names.contains(&"192.168.1.10".to_string()),
            "{:?}",
            info.names
        );
        assert!(info.names.contains(&"localhost".to_string()));
        let now = crate::clock::now_ms();
        assert!(info.not_before_ms < now && info.not_after_ms > now + 3000 * 86_400_000);
        assert!(make_self_signed(&c, &k, &names).is_err(), "no overwrite");
        // A key that does not belong to the certificate is refused.
        let other = dir.path().join("other");
        let (c2, k2) = default_paths(&other);
        make_self_signed(&c2, &k2, &names).unwrap();
        assert!(load(&c, &k2).is_err());
    }
}

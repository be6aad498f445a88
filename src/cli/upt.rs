//! `tuk upt ...`: what UPT staff run.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::keys::PublicKey;
use crate::upt::report::{self, Options};
use crate::upt::{Upt, server};

/// Where `tuk upt init --self-signed` writes the receiver's certificate and key.
pub(crate) fn default_tls_paths(data: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    (data.join("tls/upt-cert.pem"), data.join("tls/upt-key.pem"))
}

/// `tuk upt init`: the UPT data folder (with `key`), and with `self_signed` a leaf
/// certificate for the receiver named `names` (default: this machine's addresses and host
/// name). On a folder that exists, `--self-signed` only makes the certificate.
pub fn init(data: &Path, key: Option<&Path>, self_signed: bool, names: &[String]) -> Result<()> {
    let exists = data.join(crate::upt::KEY_FILE).exists();
    if !(self_signed && exists) {
        let key = key.ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not a UPT data folder yet: give the UPT's secret key with --key UPT.key",
                data.display()
            )
        })?;
        Upt::init(data, key)?;
        let u = Upt::open(data)?;
        println!(
            "initialised UPT data folder {} for {}",
            data.display(),
            u.key.public()
        );
    }
    let (cert, tls_key) = default_tls_paths(data);
    if self_signed {
        let names = if names.is_empty() {
            crate::server::tls::local_names()
        } else {
            names.to_vec()
        };
        let made = crate::server::tls::make_self_signed_as(
            &cert,
            &tls_key,
            &names,
            "UPT (self-signed)",
            "tuk-upt",
        )?;
        println!(
            "receiver certificate: {} (key {}, keep it on this machine)",
            made.cert.display(),
            made.key.display()
        );
        println!("valid for: {}", made.names.join(", "));
        println!("valid until: {}", made.not_after);
        println!("SHA-256 fingerprint: {}", made.fingerprint);
        println!(
            "give each TUK the certificate file or this fingerprint; they upload with\n  tuk upload FILE.tukres --to https://HOST:8443 --upt-fingerprint {}",
            made.fingerprint
        );
    }
    let tls_hint = if cert.exists() {
        format!("--cert {} --key {}", cert.display(), tls_key.display())
    } else {
        "--cert CERT.pem --key KEY.pem".to_string()
    };
    println!(
        "next: tuk upt trust TUK.pub --data {d}; tuk upt package add FILE.tukpkg --data {d}; tuk upt serve --data {d} {tls_hint}",
        d = data.display()
    );
    Ok(())
}

pub fn trust(data: &Path, file: &Path) -> Result<()> {
    let key = PublicKey::read(file)?;
    let u = Upt::open(data)?;
    if u.trust(&key)? {
        println!(
            "now accepting bundles from TUK {} (fingerprint {})",
            key.name,
            key.fingerprint()
        );
    } else {
        println!(
            "TUK {} (fingerprint {}) was already trusted",
            key.name,
            key.fingerprint()
        );
    }
    Ok(())
}

pub fn package_add(data: &Path, file: &Path) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let u = Upt::open(data)?;
    let (h, new) = u
        .add_package(&bytes)
        .with_context(|| file.display().to_string())?;
    println!(
        "package {} version {} {} (for TUKs: {})",
        h.package_id,
        h.version,
        if new {
            "registered: its results will be accepted"
        } else {
            "was already registered"
        },
        h.recipients
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

pub fn import(data: &Path, file: &Path) -> Result<()> {
    let t0 = Instant::now();
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if meta.len() > crate::seal::MAX_BUNDLE_BYTES {
        anyhow::bail!("{} is larger than any bundle may be", file.display());
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let u = Upt::open(data)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let done = u
        .import(&bytes, &format!("file {name}"))
        .map_err(|r| anyhow::anyhow!("{}: {} ({})", file.display(), r.message, r.code))?;
    let h = &done.header;
    if done.already {
        println!(
            "bundle {} was already imported; nothing changed",
            done.blake3
        );
    } else {
        println!(
            "imported {} sessions {} from TUK {}: {} participants, every signature, hash, event chain and score checked ({} ms)",
            h.package_id,
            h.sessions.join(", "),
            h.tuk,
            h.participants,
            t0.elapsed().as_millis()
        );
        for s in &done.superseded {
            println!(
                "session {s}: this bundle replaces an earlier one (its log continues the earlier log)"
            );
        }
    }
    let rp = super::seal::receipt_path(file);
    if !rp.exists() {
        crate::fsutil::write_atomic(&rp, &done.receipt.to_json())?;
        println!(
            "receipt: {} (give it back to the TUK: `tuk purge --receipt`)",
            rp.display()
        );
    }
    Ok(())
}

pub fn report(
    data: &Path,
    kind: &str,
    out: &Path,
    pdts: Option<&Path>,
    weights: Option<&str>,
    excel: bool,
) -> Result<()> {
    let u = Upt::open(data)?;
    let opts = Options {
        pdts: pdts
            .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
            .transpose()?,
        weights: weights.map(str::to_string),
    };
    let table = report::build(&u, kind, &opts)?;
    report::write(&table, kind, out, excel, &report::letterhead(&u))?;
    println!(
        "{kind}: {} rows written to {}",
        table.rows.len(),
        out.display()
    );
    Ok(())
}

/// What `tuk upt letterhead` changes: `Some` sets a key (an empty value clears it).
#[derive(Default)]
pub struct LetterheadEdit {
    pub name: Option<String>,
    pub address: Option<String>,
    pub head: Option<String>,
    pub head_nip: Option<String>,
    pub logo: Option<String>,
}

/// `tuk upt letterhead`: sets the UPT's letterhead (name, address, head and NIP, logo) in
/// `UDIR/letterhead.toml`, then prints what is in effect. Does not open the store, so it
/// works while `tuk upt serve` runs (the report pages read the file on every request).
pub fn letterhead(data: &Path, edit: LetterheadEdit) -> Result<()> {
    if !data.join(crate::upt::KEY_FILE).exists() {
        anyhow::bail!(
            "{} is not a UPT data folder (no {}); create it with `tuk upt init --data {} --key UPT.key`",
            data.display(),
            crate::upt::KEY_FILE,
            data.display()
        );
    }
    let mut lh = report::letterhead_at(data)?;
    let changed = edit.name.is_some()
        || edit.address.is_some()
        || edit.head.is_some()
        || edit.head_nip.is_some()
        || edit.logo.is_some();
    for (slot, v) in [
        (&mut lh.name, edit.name),
        (&mut lh.address, edit.address),
        (&mut lh.head, edit.head),
        (&mut lh.head_nip, edit.head_nip),
        (&mut lh.logo, edit.logo),
    ] {
        if let Some(v) = v {
            let v = v.trim().to_string();
            if v.chars().count() > 400 || v.contains(['\n', '\r']) {
                anyhow::bail!("{v:?}: a letterhead value is one line of at most 400 characters");
            }
            *slot = v;
        }
    }
    if !lh.logo.is_empty() {
        // The receiver may run in another folder: keep the logo's full path.
        if let Ok(full) = std::fs::canonicalize(&lh.logo) {
            lh.logo = full.display().to_string();
        }
    }
    if !lh.logo.is_empty() && lh.logo_data_url().is_none() {
        anyhow::bail!(
            "the logo {} cannot be used: give a PNG or JPEG file of at most 512 KiB that this user can read",
            lh.logo
        );
    }
    let path = data.join(report::LETTERHEAD_FILE);
    if changed {
        crate::fsutil::write_atomic(&path, toml::to_string(&lh)?.as_bytes())?;
        println!("saved {}", path.display());
    }
    if lh.is_empty() {
        println!(
            "no letterhead: set one with `tuk upt letterhead --data {} --name NAME --address ADDRESS`",
            data.display()
        );
    } else {
        for (k, v) in [
            ("name", &lh.name),
            ("address", &lh.address),
            ("head", &lh.head),
            ("head_nip", &lh.head_nip),
            ("logo", &lh.logo),
        ] {
            if !v.is_empty() {
                println!("{k} = {}", toml::Value::String(v.clone()));
            }
        }
    }
    Ok(())
}

pub fn list(data: &Path) -> Result<()> {
    let u = Upt::open(data)?;
    for c in u.current()? {
        println!(
            "{} {} from {}: {} participants, sealed {} (bundle {})",
            c.doc.package.id,
            c.doc
                .sessions
                .iter()
                .map(|s| s.id.clone())
                .collect::<Vec<_>>()
                .join(","),
            c.doc.tuk.name,
            c.doc.participants.len(),
            c.doc.sealed,
            c.blake3
        );
    }
    Ok(())
}

pub fn user_add(
    data: &Path,
    name: &str,
    password_file: Option<&Path>,
    replace: bool,
) -> Result<()> {
    let u = Upt::open(data)?;
    let password = super::read_password(password_file, &format!("password for {name}"))?;
    if u.add_staff(name, &password, replace)? {
        println!("staff account {name} created: it can log in at https://HOST:PORT/laporan");
    } else if replace {
        println!("staff account {name}: new password set");
    } else {
        anyhow::bail!("staff account {name} already exists; add --replace to set a new password");
    }
    Ok(())
}

pub fn user_list(data: &Path) -> Result<()> {
    let u = Upt::open(data)?;
    let names = u.staff_names()?;
    if names.is_empty() {
        println!(
            "no staff accounts; add one with `tuk upt user add NAME --data {}`",
            data.display()
        );
    }
    for n in names {
        println!("{n}");
    }
    Ok(())
}

pub fn serve(data: &Path, listen: SocketAddr, cert: &Path, key: &Path, max_mb: u64) -> Result<()> {
    let tls = crate::server::tls::load(cert, key)?;
    let upt = Arc::new(Upt::open(data)?);
    let staff = upt.staff_names()?.len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tuk-upt")
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr()?;
        println!("UPT receiver for {}", upt.key.public());
        println!("listening: https://{local}/");
        println!(
            "TUKs upload with: tuk upload FILE.tukres --to https://HOST:{} --upt-cert CERT.pem",
            local.port()
        );
        println!("reports: https://{local}/laporan");
        if staff == 0 {
            println!(
                "no staff accounts yet: stop this receiver and run `tuk upt user add NAME --data {}` to read reports in a browser",
                data.display()
            );
        }
        server::serve(upt, listener, tls, max_mb << 20, async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await
    })?;
    println!("stopped");
    Ok(())
}

//! What each subcommand does, as plain functions the binary and the tests call.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::fsutil;
use crate::keys::{self, PublicKey, SecretKey, TrustSet};
use crate::package::{self, source};

/// One line: the error and its causes, most specific last.
pub fn error_chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

pub fn keygen(out: &Path, name: &str) -> Result<()> {
    let (key, public) = keys::keygen(out, name)?;
    let p = PublicKey::read(&public)?;
    println!("secret key: {} (keep it secret, mode 0600)", key.display());
    println!("public key: {} (share it)", public.display());
    println!("fingerprint: {}", p.fingerprint());
    Ok(())
}

pub fn package_build(
    src: &Path,
    sign: &Path,
    to: &[PathBuf],
    release_code: Option<&str>,
    out: &Path,
) -> Result<()> {
    let t0 = Instant::now();
    let signer = SecretKey::read(sign)?;
    let recipients = to
        .iter()
        .map(|p| PublicKey::read(p))
        .collect::<Result<Vec<_>>>()?;
    let source = source::read(src).with_context(|| format!("package source {}", src.display()))?;
    let bytes = package::build(&source, &signer, &recipients, release_code)?;
    fsutil::write_atomic(out, &bytes)?;
    println!(
        "built {} ({} bytes, {} items, {} participants) in {} ms",
        out.display(),
        bytes.len(),
        source.items.len(),
        source.roster.len(),
        t0.elapsed().as_millis()
    );
    Ok(())
}

fn read_package(file: &Path) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if meta.len() > package::MAX_PACKAGE_BYTES {
        anyhow::bail!("{} is larger than any package may be", file.display());
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

pub fn package_verify(
    file: &Path,
    trust: &[PathBuf],
    key: Option<&Path>,
    release_code: Option<&str>,
) -> Result<()> {
    let t0 = Instant::now();
    let trust = TrustSet::read_files(trust)?;
    let bytes = read_package(file)?;
    let pkg = package::verify(&bytes, &trust).with_context(|| file.display().to_string())?;
    println!(
        "signature: OK, signed by {} ({})",
        pkg.signer().name,
        pkg.signer().fingerprint()
    );
    println!("hashes: OK ({} members)", pkg.header().members.len());
    if let Some(key) = key {
        let key = SecretKey::read(key)?;
        let contents = pkg.open(&key).with_context(|| file.display().to_string())?;
        println!("payload: OK, opens with {} and is valid", key.public());
        if let Some(code) = release_code {
            let bank = pkg.unlock(&contents, Some(code))?;
            println!("release layer: OK, {} items", bank.items.len());
        }
    }
    println!("verified in {} ms", t0.elapsed().as_millis());
    Ok(())
}

pub fn package_inspect(file: &Path, key: Option<&Path>) -> Result<()> {
    let bytes = read_package(file)?;
    let pkg = package::verify_self(&bytes).with_context(|| file.display().to_string())?;
    let h = pkg.header();
    println!("package: {} version {}", h.package_id, h.version);
    println!("title: {}", h.title);
    println!("upt: {}", h.upt);
    println!("created: {}", h.created);
    println!(
        "signed by: {} (not checked against trusted keys; use `tuk package verify --trust`)",
        keys::fingerprint(&pkg.signer().verifying)
    );
    for r in &h.recipients {
        println!("for TUK: {} ({})", r.name, r.fingerprint);
    }
    println!(
        "release code: {}",
        if h.release_code {
            "required on the exam day"
        } else {
            "none"
        }
    );
    println!("file blake3: {}", pkg.file_hash());
    println!(
        "payload: {} bytes, blake3 {}",
        h.payload.size, h.payload.blake3
    );
    if let Some(key) = key {
        let key = SecretKey::read(key)?;
        let contents = pkg.open(&key)?;
        let (tests, items, participants, sessions) = contents.counts();
        println!("tests: {tests}");
        match items {
            Some(n) => println!("items: {n}"),
            None => println!("items: locked until the release code is given"),
        }
        println!("participants: {participants}");
        println!("sessions: {sessions}");
        for t in &contents.manifest.tests {
            println!(
                "test {}: {} ({} items, {} minutes)",
                t.id, t.title, t.items, t.duration_minutes
            );
        }
        for s in &contents.manifest.sessions {
            println!(
                "session {}: test {} on {} {}-{} in {}",
                s.id, s.test, s.date, s.start, s.end, s.room
            );
        }
    }
    Ok(())
}

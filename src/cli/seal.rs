//! `tuk seal`, `tuk upload` and `tuk purge`: what the TUK technician runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::app::App;
use crate::exam::events::{Actor, Event};
use crate::fsutil;
use crate::seal::receipt::SignedReceipt;
use crate::seal::tuk;
use crate::upload::{self, Target};

/// A session sealed before is sealed again only when asked for (`--reseal`, issue 13): the
/// earlier bundle is then superseded, and a `reseal` event naming it goes into the
/// session's log (so into the new bundle and the minutes); both bundles stay in the store.
fn supersede(app: &App, skeys: &[String], reseal: bool) -> Result<()> {
    let mut earlier = Vec::new();
    for k in skeys {
        if tuk::is_purged(app, k) {
            continue; // `seal` says why there is nothing to seal
        }
        let records = tuk::sealed_records(app, k)?;
        if let Some(last) = records.last() {
            earlier.push((k.clone(), last.clone(), records.len()));
        }
    }
    if earlier.is_empty() {
        return Ok(());
    }
    if !reseal {
        let (k, last, _) = &earlier[0];
        bail!(
            "session {k} was sealed already (bundle {}, blake3 {}…, made {}): sealing again supersedes that bundle; if that is what you want, run the same command with --reseal (both bundles stay in the log)",
            last.bundle_id,
            last.blake3.chars().take(16).collect::<String>(),
            last.created
        );
    }
    for (k, last, before) in earlier {
        let ev = Event::Reseal {
            superseded: last.blake3.clone(),
            superseded_created: last.created.clone(),
            bundles_before: before,
        };
        app.writer
            .run_blocking(move |ex: &mut crate::exam::Exam| {
                (vec![ex.log(&k, crate::clock::now_ms(), Actor::Cli, ev)], ())
            })
            .context("cannot record the re-seal in the event log")?;
    }
    Ok(())
}

/// Where the receipt of `file` is kept: `FILE.receipt.json` beside it.
pub(crate) fn receipt_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".receipt.json");
    PathBuf::from(s)
}

pub fn seal(
    data: &Path,
    sessions: &[String],
    all: bool,
    out: &Path,
    force: bool,
    reseal: bool,
) -> Result<()> {
    let t0 = Instant::now();
    let app = App::open(data)?;
    let r = seal_with(&app, sessions, all, out, force, reseal);
    app.shutdown();
    r?;
    println!("done in {} ms", t0.elapsed().as_millis());
    Ok(())
}

fn seal_with(
    app: &App,
    sessions: &[String],
    all: bool,
    out: &Path,
    force: bool,
    reseal: bool,
) -> Result<()> {
    let groups: Vec<Vec<String>> = if all {
        let g: Vec<Vec<String>> = tuk::sealable_sessions(app).into_values().collect();
        if g.is_empty() {
            bail!("no session has been opened yet: there is nothing to seal");
        }
        g
    } else if sessions.is_empty() {
        bail!(
            "name the session to seal with --session PACKAGE/SESSION (see `tuk session list`), or use --all"
        );
    } else {
        vec![sessions.to_vec()]
    };
    let to_dir = groups.len() > 1 || out.is_dir();
    if to_dir && !out.is_dir() {
        bail!(
            "--all found sessions of {} packages, and each package gets its own bundle: give a folder with -o (it exists: {})",
            groups.len(),
            out.display()
        );
    }
    for g in groups {
        supersede(app, &g, reseal)?;
        let sealed = tuk::seal(app, &g, force, "cli")?;
        let h = &sealed.header;
        let file = if to_dir {
            out.join(format!("{}-{}.tukres", h.package_id, h.sessions.join("-")))
        } else {
            out.to_path_buf()
        };
        fsutil::write_atomic(&file, &sealed.bytes)?;
        for k in &sealed.closed {
            println!("closed {k} and submitted its running attempts (recorded in the event log)");
        }
        let events: u64 = h.chains.iter().map(|c| c.events).sum();
        println!(
            "sealed {} sessions {}: {} participants, {} events, for UPT {} ({})",
            h.package_id,
            h.sessions.join(", "),
            h.participants,
            events,
            h.recipient.name,
            h.recipient.fingerprint
        );
        println!(
            "bundle: {} ({} bytes, blake3 {})",
            file.display(),
            sealed.bytes.len(),
            sealed.blake3
        );
        println!(
            "next: tuk upload {} --to https://UPT-HOST:PORT --data {}  (or take the file to the UPT on a USB stick)",
            file.display(),
            app.dir.display()
        );
    }
    Ok(())
}

/// The TUK key that signs an upload: `--key FILE`, else `tuk.key` of `--data DIR`, else of
/// the configured data folder (`TUK_DATA`, the configuration file, `/var/lib/tuk`).
pub(crate) fn upload_key(
    key: Option<&Path>,
    data: Option<&Path>,
) -> Result<crate::keys::SecretKey> {
    let path = match (key, data) {
        (Some(k), _) => k.to_path_buf(),
        (None, Some(d)) => d.join("tuk.key"),
        (None, None) => crate::deploy::data_dir(&Default::default())
            .map(|d| d.join("tuk.key"))
            .unwrap_or_else(|_| PathBuf::from("/var/lib/tuk/tuk.key")),
    };
    crate::keys::SecretKey::read(&path).with_context(|| {
        format!(
            "the UPT takes uploads only signed with the TUK's key, and it cannot be read from {}: give the TUK's data folder with --data DIR (the folder with tuk.key) or the key with --key tuk.key",
            path.display()
        )
    })
}

#[allow(clippy::too_many_arguments)]
pub fn upload(
    file: &Path,
    to: &str,
    cert: Option<&Path>,
    fingerprint: Option<&str>,
    data: Option<&Path>,
    key: Option<&Path>,
    attempts: u32,
) -> Result<()> {
    let t0 = Instant::now();
    let bytes = read_bundle(file)?;
    let mut target = Target::parse(to, cert)?.with_fingerprint(fingerprint)?;
    let key = upload_key(key, data)?;
    target.attempts = attempts.max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let up = rt.block_on(upload::upload(&bytes, &target, &key, &|m| {
        eprintln!("tuk: {m}")
    }))?;
    let rp = receipt_path(file);
    fsutil::write_atomic(&rp, &up.signed.to_json())?;
    let r = &up.receipt;
    if up.already {
        println!("the UPT already had this bundle; its receipt:");
    } else {
        println!(
            "uploaded in {} ms ({} attempt(s)); the UPT's receipt:",
            t0.elapsed().as_millis(),
            up.attempts
        );
    }
    println!("  {}", up.message);
    println!("  bundle {} (blake3 {})", r.bundle_id, r.bundle_blake3);
    println!(
        "  package {} sessions {}, {} participants",
        r.package_id,
        r.sessions.join(", "),
        r.participants
    );
    println!("  received by {} at {}, signature OK", r.upt, r.received);
    println!("receipt: {}", rp.display());
    if let Some(d) = data {
        match App::open(d) {
            Ok(app) => {
                let stored = tuk::store_receipt(&app, &up.signed);
                app.shutdown();
                stored?;
                println!(
                    "receipt stored in {}; `tuk purge --data {} --session ...` may now remove the session's personal data",
                    d.display(),
                    d.display()
                );
            }
            Err(e) => println!(
                "note: could not store the receipt in {} ({}); store it later with `tuk purge --data {} --session ... --receipt {}`",
                d.display(),
                crate::error_chain(&e),
                d.display(),
                rp.display()
            ),
        }
    }
    Ok(())
}

fn read_bundle(file: &Path) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if meta.len() > crate::seal::MAX_BUNDLE_BYTES {
        bail!("{} is larger than any bundle may be", file.display());
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

pub fn purge(data: &Path, session: &str, receipt: Option<&Path>) -> Result<()> {
    let app = App::open(data)?;
    let r = (|| -> Result<tuk::Purged> {
        if let Some(p) = receipt {
            let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            let signed = SignedReceipt::parse(&bytes).with_context(|| p.display().to_string())?;
            let (r, new) =
                tuk::store_receipt(&app, &signed).with_context(|| p.display().to_string())?;
            println!(
                "receipt for bundle {} {}",
                r.bundle_blake3,
                if new { "stored" } else { "was already stored" }
            );
        }
        tuk::purge(&app, session)
    })();
    app.shutdown();
    let p = r?;
    let rec = &p.record;
    if p.already {
        println!(
            "{session} was already purged on {}; nothing to do",
            rec.purged
        );
    } else {
        println!(
            "purged {session}: {} attempts, {} answers, {} events, {} participant logins removed; the sealed bundle {} and the UPT's receipt are kept",
            rec.attempts, rec.answers, rec.events, rec.credentials, rec.bundle_blake3
        );
    }
    Ok(())
}

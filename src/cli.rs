//! What each subcommand does, as plain functions the binary and the tests call.
//! `deploy` (the technician's), `seal` (`tuk seal`, `upload`, `purge`) and `upt` (`tuk upt ...`)
//! hold three command families.

pub mod deploy;
pub mod seal;
pub mod upt;

use crate::exam::SessionKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::app::App;
use crate::exam::{self, Role};
use crate::fsutil;
use crate::keys::{self, PublicKey, SecretKey, TrustSet};
use crate::package::{self, source};

/// `tuk man`: one manual page per command of `cmd` (the binary's clap definitions) into
/// `out`.
pub fn man(cmd: clap::Command, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    clap_mangen::generate_to(cmd, out)?;
    println!("manual pages written to {}", out.display());
    Ok(())
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
    lenient: bool,
) -> Result<()> {
    let t0 = Instant::now();
    let signer = SecretKey::read(sign)?;
    let recipients = to
        .iter()
        .map(|p| PublicKey::read(p))
        .collect::<Result<Vec<_>>>()?;
    let source = read_source(src, lenient)?;
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

/// Reads a package source and prints what the author must read: what `--lenient` dropped
/// (one line each, then a count) and the author-check warnings.
fn read_source(src: &Path, lenient: bool) -> Result<source::Source> {
    let read = if lenient {
        source::read_lenient
    } else {
        source::read
    };
    let source = read(src).with_context(|| format!("package source {}", src.display()))?;
    for d in &source.dropped {
        eprintln!("dropped: {d}");
    }
    if !source.dropped.is_empty() {
        eprintln!(
            "--lenient dropped {} piece(s) of HTML outside the subset (listed above); check them in `tuk package preview`",
            source.dropped.len()
        );
    }
    for w in &source.warnings {
        eprintln!("warning: {w}");
    }
    Ok(source)
}

/// `tuk package template`: the empty Excel item bank ([`package::import::xlsx`]).
pub fn package_template(out: &Path) -> Result<()> {
    let bytes = package::import::xlsx::template()?;
    fsutil::write_atomic(out, &bytes)?;
    println!(
        "wrote {}: fill in the sheet Soal (instructions on the sheet Petunjuk), save it under items/ and name it in package.toml as bank = \"items/{}\"",
        out.display(),
        out.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("bank.xlsx")
    );
    Ok(())
}

/// `tuk package preview`: the static review copy ([`package::preview`]).
pub fn package_preview(
    src: &Path,
    key: Option<&Path>,
    release_code: Option<&str>,
    out: &Path,
    lenient: bool,
) -> Result<()> {
    let source = if src.is_file() {
        let key = key.ok_or_else(|| {
            anyhow::anyhow!(
                "{} is a package file: give --key TUK.key of a TUK it is encrypted to (or preview the source folder)",
                src.display()
            )
        })?;
        let key = SecretKey::read(key)?;
        let bytes = read_package(src)?;
        let s = package::preview::source_from_package(&bytes, &key, release_code)
            .with_context(|| src.display().to_string())?;
        for w in &s.warnings {
            eprintln!("warning: {w}");
        }
        s
    } else {
        read_source(src, lenient)?
    };
    package::preview::write(&source, out)?;
    println!(
        "wrote {} ({} items): open it in a browser or print it for the review meeting; it is not part of the package",
        out.join("index.html").display(),
        source.items.len()
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
        let asked = match release_code {
            None if pkg.header().release_code => prompt_release_code(&pkg.header().package_id)?,
            _ => None,
        };
        if let Some(code) = release_code.or(asked.as_deref()) {
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

/// The release code of `what`, typed at the terminal without echo: asked when neither
/// `--release-code` nor `--release-code-file` was given and standard input is a terminal
/// (issue 11: the code never has to be in the command line, where `ps` and the shell
/// history show it). `None` when standard input is not a terminal.
pub(crate) fn prompt_release_code(what: &str) -> Result<Option<String>> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let code = rpassword::prompt_password(format!(
        "release code of {what} (announced by the UPT; not shown): "
    ))
    .context("cannot read the release code from the terminal")?;
    let code = code.trim().to_string();
    Ok((!code.is_empty()).then_some(code))
}

/// Reads a password from a file (first line) or, if none is given, from the terminal
/// without showing it (or, when standard input is not a terminal, its first line, for
/// scripts: `tuk init … < FILE`).
pub(crate) fn read_password(file: Option<&Path>, prompt: &str) -> Result<String> {
    use std::io::IsTerminal;
    let text = match file {
        Some(f) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        None if std::io::stdin().is_terminal() => rpassword::prompt_password(format!("{prompt}: "))
            .context("cannot read the password from the terminal")?,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line
        }
    };
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

/// A new password: from the file, or typed twice on the terminal (not shown) until both
/// agree (at most 3 tries).
pub(crate) fn read_new_password(file: Option<&Path>, prompt: &str) -> Result<String> {
    use std::io::IsTerminal;
    if file.is_some() || !std::io::stdin().is_terminal() {
        return read_password(file, prompt);
    }
    for _ in 0..3 {
        let first = read_password(None, prompt)?;
        let again = read_password(None, "the same password again")?;
        if first == again {
            return Ok(first);
        }
        eprintln!("the two passwords differ; type them again");
    }
    anyhow::bail!("the passwords differed three times; nothing was changed")
}

/// `tuk init`, with `--self-signed` also (or only, on an initialised folder) making an
/// HTTPS certificate.
pub fn init(
    data: &Path,
    key: Option<&Path>,
    admin_password_file: Option<&Path>,
    self_signed: bool,
) -> Result<()> {
    let initialised = data.join(crate::store::DB_FILE).exists();
    if !(self_signed && initialised) {
        init_folder(data, key, admin_password_file)?;
    }
    if self_signed {
        let (cert, keyf) = crate::server::tls::default_paths(data);
        let names = crate::server::tls::local_names();
        let made = crate::server::tls::make_self_signed(&cert, &keyf, &names)?;
        println!(
            "HTTPS certificate: {} (key {})",
            made.cert.display(),
            made.key.display()
        );
        println!("valid for: {}", made.names.join(", "));
        println!("valid until: {}", made.not_after);
        println!("SHA-256 fingerprint: {}", made.fingerprint);
        println!(
            "check this fingerprint on each lab PC when the browser shows its warning (padlock → certificate → SHA-256)."
        );
        println!(
            "to use it, add to /etc/tuk/tuk.toml:\n  tls_cert = \"{}\"\n  tls_key = \"{}\"\nor run: tuk serve --tls-cert {} --tls-key {}",
            made.cert.display(),
            made.key.display(),
            made.cert.display(),
            made.key.display()
        );
    }
    Ok(())
}

/// The store, key and admin account of a new data folder (`tuk init` without
/// `--self-signed`).
fn init_folder(data: &Path, key: Option<&Path>, admin_password_file: Option<&Path>) -> Result<()> {
    let key = key.map(SecretKey::read).transpose()?;
    let pw = read_new_password(
        admin_password_file,
        "password for the admin account (at least 8 characters)",
    )?;
    App::init(data, key, &pw)?;
    let public = PublicKey::read(&data.join("tuk.pub"))?;
    println!("initialised {}", data.display());
    println!(
        "TUK public key: {} (send it to the UPT), fingerprint {}",
        data.join("tuk.pub").display(),
        public.fingerprint()
    );
    println!("admin account: admin");
    println!(
        "next: tuk trust add UPT.pub --data {d}; tuk package import FILE.tukpkg --data {d}; tuk serve --data {d}",
        d = data.display()
    );
    Ok(())
}

pub fn trust_add(data: &Path, file: &Path) -> Result<()> {
    let key = PublicKey::read(file)?;
    let app = App::open(data)?;
    let added = app.trust_add(&key)?;
    app.shutdown();
    if added {
        println!(
            "now trusting {} (fingerprint {})",
            key.name,
            key.fingerprint()
        );
    } else {
        println!(
            "{} (fingerprint {}) was already trusted",
            key.name,
            key.fingerprint()
        );
    }
    Ok(())
}

pub fn trust_list(data: &Path) -> Result<()> {
    let app = App::open(data)?;
    let trust = app.trust()?;
    app.shutdown();
    if trust.keys().is_empty() {
        println!(
            "no trusted UPT keys; add one with `tuk trust add UPT.pub --data {}`",
            data.display()
        );
    }
    for k in trust.keys() {
        println!("{} {}", k.fingerprint(), k.name);
    }
    Ok(())
}

pub fn import(data: &Path, file: &Path) -> Result<()> {
    let t0 = Instant::now();
    let bytes = read_package(file)?;
    let app = App::open(data)?;
    let r = app.import(&bytes, "cli");
    app.shutdown();
    let s = r.with_context(|| file.display().to_string())?;
    if s.already {
        println!(
            "package {} version {} was already imported; nothing changed",
            s.package_id, s.version
        );
    } else {
        println!(
            "imported package {} version {} from {}: {} sessions, {} participants, {} new passwords ({} ms)",
            s.package_id,
            s.version,
            s.upt,
            s.sessions,
            s.participants,
            s.new_credentials,
            t0.elapsed().as_millis()
        );
    }
    Ok(())
}

pub fn user_add(data: &Path, name: &str, role: Role, password_file: Option<&Path>) -> Result<()> {
    let pw = read_new_password(
        password_file,
        &format!("password for {name} (at least 8 characters)"),
    )?;
    if pw.chars().count() < 8 {
        anyhow::bail!("the password must have at least 8 characters");
    }
    let app = App::open(data)?;
    let r = app.add_user_blocking(name, role, &pw, "cli");
    app.shutdown();
    r?;
    println!("user {name} ({role:?}) added");
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tuk-http")
        .build()?)
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// `tuk serve`: the exam server with the effective configuration.
pub fn serve(flags: &crate::deploy::config::ServeFlags, start_paused: bool) -> Result<()> {
    let cfg = crate::deploy::config::Config::resolve(flags)?;
    let tls = match cfg.tls() {
        Some((c, k)) => Some(crate::server::tls::load(c, k)?),
        None => None,
    };
    let app = Arc::new(App::open(&cfg.data.value)?);
    if let (Some(file), Some(lh)) = (&cfg.file, &cfg.letterhead) {
        if !lh.logo.trim().is_empty() && lh.logo_data_url().is_none() {
            tracing::warn!(
                "{}: [letterhead] logo {} is not a readable PNG or JPEG of at most 512 KiB; printing without logo (fix the path or the file)",
                file.display(),
                lh.logo
            );
        }
        let _ = app.config_letterhead.set((file.clone(), lh.clone()));
    }
    run_server_with(app, cfg.listen.value, tls, start_paused, |_| {})
}

fn run_server(app: Arc<App>, listen: SocketAddr, on_ready: impl FnOnce(&Arc<App>)) -> Result<()> {
    run_server_with(app, listen, None, false, on_ready)
}

/// Runs the exam server (HTTPS when `tls` is given) until SIGINT/SIGTERM, then drains and
/// closes the store. Tells systemd it is ready once the store is open and the listener
/// bound, and starts the control socket `tuk backup` and `tuk doctor` use.
pub(crate) fn run_server_with(
    app: Arc<App>,
    listen: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    start_paused: bool,
    on_ready: impl FnOnce(&Arc<App>),
) -> Result<()> {
    match app.begin_serving(start_paused)? {
        crate::app::ServingStart::Credited { ms } if ms > 0 => println!(
            "the server was down for {:.1} s: that time was given back to every running attempt (see the event log)",
            ms as f64 / 1000.0
        ),
        crate::app::ServingStart::Credited { .. } => {}
        crate::app::ServingStart::Paused { sessions, why } => println!(
            "started with {sessions} session(s) PAUSED: {why}.\nSet the correct time, then the proctor resumes each session on the board."
        ),
    }
    app.start_ticker();
    let rt = runtime()?;
    let result = rt.block_on(async {
        let listener = crate::server::bind(listen)?;
        let local = listener.local_addr()?;
        let shown = match tls {
            Some(_) => crate::server::tls::https_urls(local),
            None => crate::server::urls(local),
        };
        for u in shown {
            println!("listening: {u}");
        }
        let _control = crate::deploy::control::start(app.clone(), local, tls.is_some());
        on_ready(&app);
        crate::deploy::notify_ready(local, tls.is_some());
        crate::deploy::spawn_watchdog();
        let stop = async {
            shutdown_signal().await;
            crate::deploy::notify_stopping();
        };
        crate::site::serve(app.clone(), listener, tls, stop, Duration::from_secs(5)).await
    });
    drop(rt);
    app.shutdown();
    if result.is_ok() {
        println!("stopped cleanly");
    }
    result
}

const DEMO_PACKAGE: &[u8] = include_bytes!("../exam-packages/demo.tukpkg");
const DEMO_TUK_KEY: &str = include_str!("../exam-packages/demo-keys/tuk.key");
const DEMO_UPT_PUB: &str = include_str!("../exam-packages/demo-keys/upt.pub");

/// The state of a session in words, as `tuk session list` and `tuk demo` print it.
pub(crate) fn session_state(s: &exam::SessionStatus) -> &'static str {
    match s {
        exam::SessionStatus::Scheduled => "scheduled (not open yet)",
        exam::SessionStatus::Open { .. } => "open (participants can log in)",
        exam::SessionStatus::Paused { .. } => "paused",
        exam::SessionStatus::Closed { .. } => "closed",
    }
}

/// Checks that `listen` is free before anything is printed, so a taken port is the only
/// thing the user sees. `flag` names the option that changes the address.
pub(crate) fn check_port_free(listen: SocketAddr, flag: &str) -> Result<()> {
    match std::net::TcpListener::bind(listen) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let mut other = listen;
            other.set_port(listen.port().wrapping_add(1).max(1024));
            anyhow::bail!(
                "port {} on {} is already in use (another tuk demo or web server?); stop it, or choose another address with {flag} {other}",
                listen.port(),
                listen.ip()
            )
        }
        Err(e) => anyhow::bail!(
            "cannot listen on {listen}: {e}; choose another address with {flag} 127.0.0.1:8081"
        ),
    }
}

/// `tuk demo`: a ready server with the demo package, its first session open, listening on
/// `listen` (127.0.0.1:8080 unless told otherwise; 0.0.0.0:PORT opens it to the lab). With
/// `data`, the demo lives in that folder and `tuk serve --data` continues it; without, in a
/// temporary folder that is deleted when the demo stops.
pub fn demo(listen: SocketAddr, data: Option<&Path>) -> Result<()> {
    check_port_free(listen, "--listen")?;
    let temp;
    let dir: PathBuf = match data {
        Some(d) => d.to_path_buf(),
        None => {
            temp = tempfile::Builder::new().prefix("tuk-demo-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let kept = data.is_some();
    let admin_file = dir.join("demo-admin-password.txt");
    if !dir.join(crate::store::DB_FILE).exists() {
        let pw = exam::secrets::new_password()? + &exam::secrets::new_password()?;
        App::init(&dir, Some(SecretKey::parse(DEMO_TUK_KEY)?), &pw)?;
        crate::fsutil::write_private(&admin_file, format!("{pw}\n").as_bytes())?;
    }
    let app = Arc::new(App::open(&dir)?);
    app.trust_add(&PublicKey::parse(DEMO_UPT_PUB)?)?;
    let imported = app.import(DEMO_PACKAGE, "demo")?;
    let first = open_first_session(&app, &imported.package_id)?;
    let passwords = app.passwords(&imported.package_id)?;
    let admin_pw = std::fs::read_to_string(&admin_file).unwrap_or_default();
    run_server(app, listen, move |app| {
        let ex = app.read();
        if let Some(s) = ex.sessions.get(&first) {
            let info = ex.catalog.get(&s.package);
            let title = info
                .and_then(|i| {
                    let sess = i.manifest.sessions.iter().find(|x| x.id == s.id)?;
                    let test = i.manifest.tests.iter().find(|t| t.id == sess.test)?;
                    Some(format!(
                        "{} — session {} in {}",
                        test.title, sess.id, sess.room
                    ))
                })
                .unwrap_or_else(|| s.key.to_string());
            println!("session: {title} ({}), {}", s.key, session_state(&s.status));
            if let Some(t) = &s.token {
                println!("token: {}", t.current);
            }
            for (number, pw) in &passwords {
                if info.is_some_and(|i| i.participant(&number.as_str().into(), &s.id).is_some()) {
                    println!("login: {number} {pw}");
                }
            }
        }
        println!("admin: admin {}", admin_pw.trim());
        if kept {
            println!(
                "data: {} (kept; `tuk serve --data {}` continues this demo)",
                dir.display(),
                dir.display()
            );
        } else {
            println!(
                "data: temporary ({}), deleted when the demo stops; to keep it, run `tuk demo --data DIR`",
                dir.display()
            );
        }
        if listen.ip().is_loopback() {
            println!(
                "only this computer can open it; for the lab's PCs use `tuk demo --listen 0.0.0.0:{}`",
                listen.port()
            );
        }
        println!("press Ctrl-C to stop");
        drop(ex);
        watch_token(app.clone(), first.clone());
    })
}

/// Opens the first session of the demo package `package` if it is still scheduled (a kept
/// demo folder may have run it already); returns its key.
fn open_first_session(app: &App, package: &str) -> Result<SessionKey> {
    let first = {
        let ex = app.read();
        let info = ex.package(package)?;
        let sid = info
            .manifest
            .sessions
            .first()
            .map(|s| s.id.clone())
            .ok_or_else(|| anyhow::anyhow!("the demo package has no session"))?;
        SessionKey::of(package, &sid)
    };
    let scheduled = app
        .read()
        .sessions
        .get(&first)
        .is_some_and(|s| s.status == exam::SessionStatus::Scheduled);
    if scheduled
        && let Err(r) = app.open_session(&first, None, crate::app::TOKEN_ROTATE_S, "demo")?
    {
        anyhow::bail!("cannot open the demo session: {r}");
    }
    Ok(first)
}

/// Prints the new token whenever it rotates, so the demo's console stays useful.
fn watch_token(app: Arc<App>, session: SessionKey) {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let now = app
                .read()
                .sessions
                .get(session.as_str())
                .and_then(|s| s.token.as_ref().map(|t| t.current.clone()));
            if last.is_some()
                && now != last
                && let Some(t) = &now
            {
                println!("token: {t}");
            }
            last = now;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}

/// Opens a session from the command line (server stopped); `tuk serve` continues it.
pub fn session_open(
    data: &Path,
    session: &str,
    release_code: Option<&str>,
    token_minutes: u64,
) -> Result<()> {
    let app = App::open(data)?;
    let needs_code = {
        let ex = app.read();
        ex.sessions
            .get(session)
            .and_then(|s| ex.catalog.get(&s.package))
            .is_some_and(|p| p.header.release_code)
    };
    let asked = match release_code {
        None if needs_code => prompt_release_code(session)?,
        _ => None,
    };
    let release_code = release_code.or(asked.as_deref());
    // A sealed session is re-opened only on the console, by an admin with a reason that
    // goes into the log and the minutes (issue 13).
    if !crate::seal::tuk::sealed_records(&app, session)?.is_empty() {
        app.shutdown();
        anyhow::bail!(
            "session {session} was sealed already: re-open it on the console (/admin, as an admin, with a reason that goes into the log and the minutes), then seal it again"
        );
    }
    let r = app.open_session(session, release_code, token_minutes * 60, "cli");
    let token = app
        .read()
        .sessions
        .get(session)
        .and_then(|s| s.token.as_ref().map(|t| t.current.clone()));
    app.shutdown();
    if let Err(refusal) = r? {
        anyhow::bail!("cannot open {session}: {refusal}");
    }
    println!("opened {session}");
    if let Some(t) = token {
        println!("token: {t}");
    }
    Ok(())
}

/// Lists sessions with their state and current token.
pub fn session_list(data: &Path) -> Result<()> {
    let app = App::open(data)?;
    {
        let ex = app.read();
        for s in ex.sessions.values() {
            let state = match s.status {
                exam::SessionStatus::Scheduled => "scheduled",
                exam::SessionStatus::Open { .. } => "open",
                exam::SessionStatus::Paused { .. } => "paused",
                exam::SessionStatus::Closed { .. } => "closed",
            };
            let token = s.token.as_ref().map(|t| t.current.as_str()).unwrap_or("-");
            println!("{} {state} token {token}", s.key);
        }
    }
    app.shutdown();
    Ok(())
}

/// Prints `login: NUMBER PASSWORD` for every participant of a package (for login cards).
pub fn passwords(data: &Path, package: &str) -> Result<()> {
    let app = App::open(data)?;
    let r = app.passwords(package);
    app.shutdown();
    for (n, p) in r? {
        println!("login: {n} {p}");
    }
    Ok(())
}

//! The `tuk` command line. Each subcommand is a thin shell over a library function; the
//! help text is written for technicians and UPT staff, not programmers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use tuk::cli;

#[derive(Parser)]
#[command(
    name = "tuk",
    version,
    about = "LAN exam server for TUK computer labs (tes akhir), and the UPT tools around it",
    long_about = "tuk runs the final test (tes akhir) of the teacher competency programme in a TUK \
computer lab: it imports a signed question package from the UPT, serves the test to the lab's \
browsers, keeps every answer safe on disk, and produces a sealed result bundle for the UPT.\n\n\
Quick start on the demo: `tuk demo`."
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a key pair (NAME.key, secret, and NAME.pub, to share) for a UPT or a TUK
    Keygen {
        /// Folder to write the key files into
        #[arg(long)]
        out: PathBuf,
        /// Name of the key, e.g. upt-jabar or tuk-smpn1-sleman
        #[arg(long)]
        name: String,
    },
    /// Build, verify, inspect and import question packages (.tukpkg)
    #[command(subcommand)]
    Package(PackageCmd),
    /// Create a TUK data folder: the store, this TUK's keys and the first admin account
    Init {
        #[command(flatten)]
        data: tuk::deploy::config::DataFlags,
        /// Use this TUK key instead of generating one (e.g. a key the UPT already knows)
        #[arg(long)]
        key: Option<PathBuf>,
        /// Read the admin password from this file instead of the terminal
        #[arg(long)]
        admin_password_file: Option<PathBuf>,
        /// Also make a self-signed HTTPS certificate for this server's LAN addresses and
        /// print its fingerprint (on an initialised folder: only the certificate)
        #[arg(long)]
        self_signed: bool,
    },
    /// Run the exam server for the lab (settings: /etc/tuk/tuk.toml, TUK_* environment, flags)
    Serve {
        #[command(flatten)]
        flags: tuk::deploy::config::ServeFlags,
        /// Start with every open session paused, for when the clock looked wrong at start
        /// (attempts running and the time before the server last ran); see docs/time.md
        #[arg(long)]
        start_paused: bool,
    },
    /// Start a ready-to-use demo: the demo package imported, its first session open
    Demo {
        /// Address and port to listen on; 0.0.0.0:8080 opens the demo to every PC of the lab
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Shorthand for --listen 127.0.0.1:PORT
        #[arg(long, value_name = "PORT", conflicts_with = "listen")]
        port: Option<u16>,
        /// Keep the demo in this folder (default: a temporary folder removed on exit)
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// Manage the UPT keys this TUK trusts to sign packages
    #[command(subcommand)]
    Trust(TrustCmd),
    /// Manage admin and proctor accounts
    #[command(subcommand)]
    User(UserCmd),
    /// Open and list exam sessions from the command line (server stopped)
    #[command(subcommand)]
    Session(SessionCmd),
    /// Seal the results of closed sessions into one signed bundle encrypted to the UPT
    /// (.tukres), for upload or a USB stick (server stopped)
    Seal {
        #[command(flatten)]
        data: tuk::deploy::config::DataFlags,
        /// The session to seal, PACKAGE/SESSION (repeat for several sessions of a package)
        #[arg(long = "session", required_unless_present = "all")]
        sessions: Vec<String>,
        /// Seal every session that was opened (one bundle per package)
        #[arg(long, conflicts_with = "sessions")]
        all: bool,
        /// The bundle file (with --all and several packages: a folder)
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Close sessions still open and submit running attempts first (logged)
        #[arg(long)]
        force: bool,
        /// Seal a session that was sealed before: the earlier bundle is superseded (a
        /// `reseal` event names it; both stay in the log). Without it, such a session is
        /// refused
        #[arg(long)]
        reseal: bool,
    },
    /// Send a sealed bundle to the UPT's receiver over HTTPS and keep its signed receipt
    Upload {
        /// The sealed bundle (.tukres)
        file: PathBuf,
        /// The UPT receiver, https://HOST[:PORT]
        #[arg(long)]
        to: String,
        /// The UPT receiver's certificate (PEM, as the UPT hands it out): only a server
        /// showing exactly this certificate (or one signed by it, if it is a CA) is trusted.
        /// Without this and --upt-fingerprint: the public roots and the system's CA bundle
        #[arg(long, value_name = "CERT.pem")]
        upt_cert: Option<PathBuf>,
        /// The SHA-256 fingerprint of the UPT receiver's certificate (AB:CD:…, as
        /// `tuk upt init --self-signed` prints it): only that certificate is trusted
        #[arg(long, value_name = "SHA256")]
        upt_fingerprint: Option<String>,
        /// Also store the receipt in this TUK data folder (needed by `tuk purge`); its
        /// tuk.key signs the upload (the UPT takes bundles only from TUKs it trusts)
        #[arg(long)]
        data: Option<PathBuf>,
        /// The TUK's key that signs the upload (default: tuk.key of --data, else of the
        /// configured data folder)
        #[arg(long, value_name = "tuk.key")]
        key: Option<PathBuf>,
        /// How many times to try before giving up (waits 1, 2, 4, ... s in between)
        #[arg(long, default_value_t = 6)]
        attempts: u32,
    },
    /// Remove a session's answers and personal data once the UPT's receipt is stored
    Purge {
        #[command(flatten)]
        data: tuk::deploy::config::DataFlags,
        /// PACKAGE/SESSION
        #[arg(long)]
        session: String,
        /// The UPT's receipt file (FILE.tukres.receipt.json), if not stored yet
        #[arg(long)]
        receipt: Option<PathBuf>,
    },
    /// The UPT side: receive, check and import sealed bundles, and make reports
    #[command(subcommand)]
    Upt(UptCmd),
    /// Show the configuration in effect (/etc/tuk/tuk.toml, TUK_* environment, flags)
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Check this server and say in plain words what would get in the way of the exam
    /// (exit code 1 when something would stop it)
    Doctor {
        #[command(flatten)]
        flags: tuk::deploy::config::ServeFlags,
    },
    /// Re-check every event chain of the data folder from its first event (server stopped)
    Verify {
        #[command(flatten)]
        flags: tuk::deploy::config::DataFlags,
    },
    /// Back up the data folder to one file; works while the server runs
    Backup {
        #[command(flatten)]
        flags: tuk::deploy::config::DataFlags,
        /// The backup file (default: backup_dir/tuk-backup-TIME.tar, keeping the newest
        /// backup_keep files there)
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// Restore a backup file into the data folder (stop the server first)
    Restore {
        /// The backup file made by `tuk backup`
        file: PathBuf,
        #[command(flatten)]
        flags: tuk::deploy::config::DataFlags,
    },
    /// Run the standard exam scenario with N participants on a sandbox and say whether this
    /// machine holds them
    Selftest {
        #[command(flatten)]
        flags: tuk::deploy::config::DataFlags,
        /// How many participants to simulate
        #[arg(long, default_value_t = 40)]
        participants: usize,
    },
    /// Write the manual pages (tuk.1, tuk-serve.1, …) into a folder, from these very
    /// definitions (the Debian package ships them in /usr/share/man/man1)
    Man {
        /// The folder to write the pages into (created if missing)
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the effective configuration, each value with where it came from
    Show {
        #[command(flatten)]
        flags: tuk::deploy::config::ServeFlags,
    },
}

/// The `--config` flag of the commands that have one (for the log level).
fn config_flag(c: &Command) -> Option<&std::path::Path> {
    match c {
        Command::Serve { flags, .. }
        | Command::Doctor { flags }
        | Command::Config(ConfigCmd::Show { flags }) => flags.base.config.as_deref(),
        Command::Backup { flags, .. }
        | Command::Verify { flags }
        | Command::Restore { flags, .. }
        | Command::Selftest { flags, .. } => flags.config.as_deref(),
        _ => None,
    }
}

#[derive(Subcommand)]
enum UptCmd {
    /// Create a UPT data folder holding a copy of the UPT's key; with --self-signed also
    /// (or, on an existing folder, only) a certificate for the receiver
    Init {
        /// The UPT data folder to create
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The UPT's secret key (UPT.key), the one that signs packages
        #[arg(long, value_name = "UPT.key", required_unless_present = "self_signed")]
        key: Option<PathBuf>,
        /// Make a self-signed leaf certificate for `tuk upt serve` (DIR/tls/upt-cert.pem)
        /// and print its SHA-256 fingerprint for the TUKs
        #[arg(long)]
        self_signed: bool,
        /// A host name or IP address the TUKs use to reach the receiver (repeat; default:
        /// this machine's addresses and host name)
        #[arg(long = "name", value_name = "HOST", requires = "self_signed")]
        names: Vec<String>,
    },
    /// Accept bundles signed by this TUK public key (TUK.pub)
    Trust {
        /// The TUK's public key file (TUK.pub) it sent to the UPT
        file: PathBuf,
        /// The UPT data folder (made by `tuk upt init`)
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Register packages this UPT signed; bundles for other packages are refused
    #[command(subcommand)]
    Package(UptPackageCmd),
    /// Run the HTTPS receiver TUKs upload bundles to
    Serve {
        /// The UPT data folder (made by `tuk upt init`)
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Address and port to listen on (0.0.0.0 means every network card)
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: std::net::SocketAddr,
        /// TLS certificate chain (PEM)
        #[arg(long)]
        cert: PathBuf,
        /// TLS private key (PEM)
        #[arg(long)]
        key: PathBuf,
        /// Largest upload accepted, in MiB
        #[arg(long, default_value_t = 512)]
        max_mb: u64,
    },
    /// Import a bundle that came on a USB stick (same checks as an upload)
    Import {
        /// The sealed bundle (.tukres) from the USB stick
        file: PathBuf,
        /// The UPT data folder (made by `tuk upt init`)
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// List the imported results (newest bundle of each session)
    List {
        /// The UPT data folder (made by `tuk upt init`)
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Manage the UPT staff accounts for the report pages of `tuk upt serve`
    #[command(subcommand)]
    User(UptUserCmd),
    /// Set or show the UPT's letterhead (name, address, head, logo) printed on its report
    /// pages and above the table of its XLSX reports (kept in DIR/letterhead.toml)
    Letterhead {
        /// The UPT data folder (made by `tuk upt init`)
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The UPT's name, e.g. "BBGTK Daerah Istimewa Yogyakarta" (empty clears it)
        #[arg(long)]
        name: Option<String>,
        /// One line: street, town, phone (empty clears it)
        #[arg(long)]
        address: Option<String>,
        /// The head of the UPT, who signs (empty clears it)
        #[arg(long)]
        head: Option<String>,
        /// The head's NIP (empty clears it)
        #[arg(long)]
        head_nip: Option<String>,
        /// A PNG or JPEG logo of at most 512 KiB (empty clears it)
        #[arg(long, value_name = "FILE")]
        logo: Option<String>,
    },
    /// Write a report: recap, summary, na, prepost, items, reliability, questionnaire, logins
    Report {
        /// Which report: recap, summary, na, prepost, items, reliability, questionnaire or logins
        kind: String,
        /// The UPT data folder (made by `tuk upt init`)
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// FILE.csv or FILE.xlsx
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// For `na`: CSV with columns participant,pd,ts (and optionally test)
        #[arg(long)]
        pdts: Option<PathBuf>,
        /// For `na`: weights of PD,TS,TA in percent, summing to 100
        #[arg(long)]
        weights: Option<String>,
        /// CSV for an Indonesian Excel: `;` between cells and decimal commas
        #[arg(long)]
        excel: bool,
    },
}

#[derive(Subcommand)]
enum UptUserCmd {
    /// Create a staff account (password read from the terminal or --password-file)
    Add {
        /// The staff member's login name
        name: String,
        /// The UPT data folder (made by `tuk upt init`)
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Read the password from the first line of this file
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Set a new password if the account exists
        #[arg(long)]
        replace: bool,
    },
    /// List the staff accounts
    List {
        /// The UPT data folder (made by `tuk upt init`)
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum UptPackageCmd {
    /// Register a .tukpkg signed by this UPT
    Add {
        /// The package file (.tukpkg) this UPT built and signed
        file: PathBuf,
        /// The UPT data folder (made by `tuk upt init`)
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum SessionCmd {
    /// Open a session (PACKAGE/SESSION, e.g. demo-kk-a-2026/S1) and print its token
    Open {
        /// The session, PACKAGE/SESSION (e.g. demo-kk-a-2026/S1)
        session: String,
        #[command(flatten)]
        data: tuk::deploy::config::DataFlags,
        /// The release code announced by the UPT, if the package has one. Avoid: a code on
        /// the command line shows in `ps` and the shell history; without this and
        /// --release-code-file, tuk asks for it at the terminal (not shown)
        #[arg(long, conflicts_with = "release_code_file")]
        release_code: Option<String>,
        /// Read the release code from this file instead (keeps it out of the process list)
        #[arg(long)]
        release_code_file: Option<PathBuf>,
        /// Minutes between token changes (0: the token never changes)
        #[arg(long, default_value_t = 15)]
        token_minutes: u64,
    },
    /// List sessions, their state and current token
    List {
        #[command(flatten)]
        data: tuk::deploy::config::DataFlags,
    },
    /// Print every participant's login of a package, for login cards
    Passwords {
        /// The package id
        package: String,
        #[command(flatten)]
        data: tuk::deploy::config::DataFlags,
    },
}

#[derive(Subcommand)]
enum TrustCmd {
    /// Trust packages signed by this UPT public key
    Add {
        /// The UPT's public key file (UPT.pub)
        file: PathBuf,
        #[command(flatten)]
        data: tuk::deploy::config::DataFlags,
    },
    /// List the trusted UPT keys
    List {
        #[command(flatten)]
        data: tuk::deploy::config::DataFlags,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add an admin (technician) or proctor account
    Add {
        /// The account's login name
        name: String,
        /// admin (technician: packages, users, settings) or proctor (one room's board)
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        data: tuk::deploy::config::DataFlags,
        /// Read the password from this file instead of the terminal
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Admin,
    Proctor,
}

impl From<RoleArg> for tuk::exam::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => tuk::exam::Role::Admin,
            RoleArg::Proctor => tuk::exam::Role::Proctor,
        }
    }
}

#[derive(Subcommand)]
enum PackageCmd {
    /// Check a package source folder and write one signed, encrypted package file
    Build {
        /// The package source folder (package.toml, items/, roster.csv, media/)
        src: PathBuf,
        /// The UPT's secret key (UPT.key) that signs the package
        #[arg(long)]
        sign: PathBuf,
        /// Public key of a TUK that may open the package (repeat for each TUK)
        #[arg(long = "to", required = true)]
        to: Vec<PathBuf>,
        /// Also lock items and keys with a code announced on the exam day. Avoid typing it
        /// here: a code on the command line shows in `ps` and the shell history; prefer
        /// --release-code-file
        #[arg(long, conflicts_with = "release_code_file")]
        release_code: Option<String>,
        /// Read the release code from this file instead (keeps it out of the process list)
        #[arg(long)]
        release_code_file: Option<PathBuf>,
        /// Where to write the package
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Drop HTML outside the safe subset (listed on stderr) instead of refusing it
        #[arg(long)]
        lenient: bool,
    },
    /// Check a package's signature and hashes (and, with --key, that it opens and is valid)
    Verify {
        /// The package file (.tukpkg)
        file: PathBuf,
        /// Public key of a UPT you trust (repeat for several UPTs)
        #[arg(long = "trust", required = true)]
        trust: Vec<PathBuf>,
        /// This TUK's secret key: also decrypt and validate the content
        #[arg(long)]
        key: Option<PathBuf>,
        /// With --key: also open the item layer with the release code. Avoid: it shows in
        /// `ps` and the shell history; without this and --release-code-file, tuk asks for it
        /// at the terminal (not shown) when the package has one
        #[arg(long, conflicts_with = "release_code_file")]
        release_code: Option<String>,
        /// Read the release code from this file instead (keeps it out of the process list)
        #[arg(long)]
        release_code_file: Option<PathBuf>,
    },
    /// Print a package's header and, with --key, its counts (never item texts or keys)
    Inspect {
        /// The package file (.tukpkg)
        file: PathBuf,
        /// This TUK's secret key, to show the counts inside
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Import a package into a TUK data folder (with the server stopped)
    Import {
        /// The package file (.tukpkg) from the UPT
        file: PathBuf,
        #[command(flatten)]
        data: tuk::deploy::config::DataFlags,
    },
    /// Write a static HTML review copy of a package source (items as participants see them, keys marked)
    Preview {
        /// The package source folder, or a built .tukpkg (then give --key)
        src: PathBuf,
        /// For a built package: the secret key of a TUK it is encrypted to
        #[arg(long)]
        key: Option<PathBuf>,
        /// For a built package with a release code: the code (shows in `ps` and the shell
        /// history: for an author's own test code only)
        #[arg(long)]
        release_code: Option<String>,
        /// The folder to write index.html and media/ into
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Drop HTML outside the safe subset (listed on stderr) instead of refusing it
        #[arg(long)]
        lenient: bool,
    },
    /// Write the empty Excel item-bank template (one row per item, instructions inside)
    Template {
        /// Where to write it (e.g. items/bank.xlsx)
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

/// The heap-profile build (`--features dhat-heap`, docs/performance.md): every allocation
/// goes through dhat, which writes `dhat-heap.json` into the working folder when the
/// profiler is dropped at the end of `main` (after `tuk serve` stops on SIGTERM/SIGINT).
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    #[cfg(feature = "dhat-heap")]
    // 10 frames (dhat's default) end inside std's allocation helpers; 40 reach tuk's code
    let _profiler = dhat::Profiler::builder().trim_backtraces(Some(40)).build();
    fix_mmap_threshold();
    let args = Args::parse();
    tuk::deploy::logging::init(config_flag(&args.command));
    let result = run(args.command);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tuk: error: {}", tuk::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Makes glibc's `malloc` map every block of 1 MiB or more on its own and unmap it on
/// `free`, always. By default the threshold moves up to the largest block freed so far
/// (up to 32 MiB): after the first argon2 buffer (8 MiB) is freed, the next ones come from
/// the heap, and freeing them no longer gives the memory back (issue 17). A fixed threshold
/// also fixes the heap's trim threshold at its 128 KiB default. Only big, rare blocks are
/// affected (argon2's working memory, the largest maps and vectors of the exam state).
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "dhat-heap")))]
    // SAFETY: mallopt only sets a malloc parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// The data folder of a TUK-side command: --data, else TUK_DATA, else `data` in the
/// configuration file, else /var/lib/tuk.
fn dir(d: &tuk::deploy::config::DataFlags) -> anyhow::Result<PathBuf> {
    tuk::deploy::data_dir(d)
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Keygen { out, name } => cli::keygen(&out, &name),
        Command::Package(p) => package(p),
        Command::Init {
            data,
            key,
            admin_password_file,
            self_signed,
        } => cli::init(
            &dir(&data)?,
            key.as_deref(),
            admin_password_file.as_deref(),
            self_signed,
        ),
        Command::Serve {
            flags,
            start_paused,
        } => cli::serve(&flags, start_paused),
        Command::Config(ConfigCmd::Show { flags }) => cli::deploy::config_show(&flags),
        Command::Doctor { flags } => cli::deploy::doctor(&flags),
        Command::Backup { flags, out } => cli::deploy::backup(&flags, out.as_deref()),
        Command::Verify { flags } => cli::deploy::verify(&flags),
        Command::Restore { file, flags } => cli::deploy::restore(&flags, &file),
        Command::Selftest {
            flags,
            participants,
        } => cli::deploy::selftest(&flags, participants),
        Command::Man { out } => cli::man(Args::command(), &out),
        Command::Demo { listen, port, data } => {
            let listen = port.map_or(listen, |p| std::net::SocketAddr::from(([127, 0, 0, 1], p)));
            cli::demo(listen, data.as_deref())
        }
        Command::Session(c) => session(c),
        Command::Seal {
            data,
            sessions,
            all,
            out,
            force,
            reseal,
        } => cli::seal::seal(&dir(&data)?, &sessions, all, &out, force, reseal),
        Command::Upload {
            file,
            to,
            upt_cert,
            upt_fingerprint,
            data,
            key,
            attempts,
        } => cli::seal::upload(
            &file,
            &to,
            upt_cert.as_deref(),
            upt_fingerprint.as_deref(),
            data.as_deref(),
            key.as_deref(),
            attempts,
        ),
        Command::Purge {
            data,
            session,
            receipt,
        } => cli::seal::purge(&dir(&data)?, &session, receipt.as_deref()),
        Command::Upt(u) => upt(u),
        Command::Trust(TrustCmd::Add { file, data }) => cli::trust_add(&dir(&data)?, &file),
        Command::Trust(TrustCmd::List { data }) => cli::trust_list(&dir(&data)?),
        Command::User(UserCmd::Add {
            name,
            role,
            data,
            password_file,
        }) => cli::user_add(&dir(&data)?, &name, role.into(), password_file.as_deref()),
    }
}

/// `tuk session ...`.
fn session(command: SessionCmd) -> anyhow::Result<()> {
    match command {
        SessionCmd::Open {
            session,
            data,
            release_code,
            release_code_file,
            token_minutes,
        } => code(release_code, release_code_file)
            .and_then(|c| cli::session_open(&dir(&data)?, &session, c.as_deref(), token_minutes)),
        SessionCmd::List { data } => cli::session_list(&dir(&data)?),
        SessionCmd::Passwords { package, data } => cli::passwords(&dir(&data)?, &package),
    }
}

/// `tuk package ...`.
fn package(command: PackageCmd) -> anyhow::Result<()> {
    match command {
        PackageCmd::Build {
            src,
            sign,
            to,
            release_code,
            release_code_file,
            out,
            lenient,
        } => code(release_code, release_code_file)
            .and_then(|c| cli::package_build(&src, &sign, &to, c.as_deref(), &out, lenient)),
        PackageCmd::Verify {
            file,
            trust,
            key,
            release_code,
            release_code_file,
        } => code(release_code, release_code_file)
            .and_then(|c| cli::package_verify(&file, &trust, key.as_deref(), c.as_deref())),
        PackageCmd::Inspect { file, key } => cli::package_inspect(&file, key.as_deref()),
        PackageCmd::Import { file, data } => cli::import(&dir(&data)?, &file),
        PackageCmd::Template { out } => cli::package_template(&out),
        PackageCmd::Preview {
            src,
            key,
            release_code,
            out,
            lenient,
        } => cli::package_preview(&src, key.as_deref(), release_code.as_deref(), &out, lenient),
    }
}

/// `tuk upt ...`.
fn upt(command: UptCmd) -> anyhow::Result<()> {
    match command {
        UptCmd::Init {
            data,
            key,
            self_signed,
            names,
        } => cli::upt::init(&data, key.as_deref(), self_signed, &names),
        UptCmd::Trust { file, data } => cli::upt::trust(&data, &file),
        UptCmd::Package(UptPackageCmd::Add { file, data }) => cli::upt::package_add(&data, &file),
        UptCmd::Serve {
            data,
            listen,
            cert,
            key,
            max_mb,
        } => cli::upt::serve(&data, listen, &cert, &key, max_mb),
        UptCmd::Import { file, data } => cli::upt::import(&data, &file),
        UptCmd::List { data } => cli::upt::list(&data),
        UptCmd::User(UptUserCmd::Add {
            name,
            data,
            password_file,
            replace,
        }) => cli::upt::user_add(&data, &name, password_file.as_deref(), replace),
        UptCmd::User(UptUserCmd::List { data }) => cli::upt::user_list(&data),
        UptCmd::Letterhead {
            data,
            name,
            address,
            head,
            head_nip,
            logo,
        } => cli::upt::letterhead(
            &data,
            cli::upt::LetterheadEdit {
                name,
                address,
                head,
                head_nip,
                logo,
            },
        ),
        UptCmd::Report {
            kind,
            data,
            out,
            pdts,
            weights,
            excel,
        } => cli::upt::report(
            &data,
            &kind,
            &out,
            pdts.as_deref(),
            weights.as_deref(),
            excel,
        ),
    }
}

/// The release code from `--release-code` or, better, `--release-code-file` (first line,
/// trimmed), so it need not appear in the process list.
fn code(arg: Option<String>, file: Option<PathBuf>) -> anyhow::Result<Option<String>> {
    match file {
        None => Ok(arg),
        Some(f) => {
            let text = std::fs::read_to_string(&f).map_err(|e| {
                anyhow::anyhow!("cannot read the release code file {}: {e}", f.display())
            })?;
            let line = text.lines().next().unwrap_or("").trim().to_string();
            if line.is_empty() {
                anyhow::bail!(
                    "the release code file {} is empty; write the code the UPT announced on its first line",
                    f.display()
                );
            }
            Ok(Some(line))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option, argument and subcommand a technician can type has help text.
    fn missing_help(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            if a.is_hide_set() {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("{path} --{}", a.get_id()));
            }
        }
        for s in cmd.get_subcommands() {
            let p = format!("{path} {}", s.get_name());
            if s.get_about().is_none() && s.get_long_about().is_none() {
                missing.push(p.clone());
            }
            missing_help(s, &p, missing);
        }
    }

    #[test]
    fn every_option_has_help_text() {
        let cmd = Args::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        missing_help(&cmd, "tuk", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    #[test]
    fn data_is_an_option_with_the_same_default_everywhere() {
        fn walk(cmd: &clap::Command, path: &str, seen: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if a.get_id() == "data" {
                    seen.push(path.to_string());
                    let upt = path.starts_with("tuk upt");
                    let optional = !a.is_required_set();
                    // TUK side: optional (TUK_DATA / config / /var/lib/tuk); UPT side: its
                    // own folder, always named.
                    assert!(upt || optional, "{path}: --data is required");
                }
            }
            for s in cmd.get_subcommands() {
                walk(s, &format!("{path} {}", s.get_name()), seen);
            }
        }
        let mut seen = Vec::new();
        walk(&Args::command(), "tuk", &mut seen);
        assert!(seen.len() > 15, "{seen:?}");
    }
}

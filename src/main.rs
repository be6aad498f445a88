//! The `tuk` command line. Each subcommand is a thin shell over a library function; the
//! help text is written for technicians and UPT staff, not programmers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
        /// The data folder (e.g. /var/lib/tuk)
        #[arg(long)]
        data: PathBuf,
        /// Use this TUK key instead of generating one (e.g. a key the UPT already knows)
        #[arg(long)]
        key: Option<PathBuf>,
        /// Read the admin password from this file instead of the terminal
        #[arg(long)]
        admin_password_file: Option<PathBuf>,
    },
    /// Run the exam server for the lab
    Serve {
        #[arg(long)]
        data: PathBuf,
        /// Address and port to listen on; 0.0.0.0 means every network card
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
    },
    /// Start a ready-to-use demo: the demo package imported, its first session open
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Keep the demo in this folder (default: a temporary folder removed on exit)
        #[arg(long)]
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
}

#[derive(Subcommand)]
enum SessionCmd {
    /// Open a session (PACKAGE/SESSION, e.g. demo-kk-a-2026/S1) and print its token
    Open {
        session: String,
        #[arg(long)]
        data: PathBuf,
        /// The release code announced by the UPT, if the package has one
        #[arg(long)]
        release_code: Option<String>,
    },
    /// List sessions, their state and current token
    List {
        #[arg(long)]
        data: PathBuf,
    },
    /// Print every participant's login of a package, for login cards
    Passwords {
        /// The package id
        package: String,
        #[arg(long)]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum TrustCmd {
    /// Trust packages signed by this UPT public key
    Add {
        /// The UPT's public key file (UPT.pub)
        file: PathBuf,
        #[arg(long)]
        data: PathBuf,
    },
    /// List the trusted UPT keys
    List {
        #[arg(long)]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add an admin (technician) or proctor account
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        data: PathBuf,
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
        /// Also lock items and keys with a code announced on the exam day
        #[arg(long)]
        release_code: Option<String>,
        /// Where to write the package
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// Check a package's signature and hashes (and, with --key, that it opens and is valid)
    Verify {
        file: PathBuf,
        /// Public key of a UPT you trust (repeat for several UPTs)
        #[arg(long = "trust", required = true)]
        trust: Vec<PathBuf>,
        /// This TUK's secret key: also decrypt and validate the content
        #[arg(long)]
        key: Option<PathBuf>,
        /// With --key: also open the item layer with the release code
        #[arg(long)]
        release_code: Option<String>,
    },
    /// Print a package's header and, with --key, its counts (never item texts or keys)
    Inspect {
        file: PathBuf,
        /// This TUK's secret key, to show the counts inside
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Import a package into a TUK data folder (with the server stopped)
    Import {
        file: PathBuf,
        #[arg(long)]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TUK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let result = match args.command {
        Command::Keygen { out, name } => cli::keygen(&out, &name),
        Command::Package(p) => match p {
            PackageCmd::Build {
                src,
                sign,
                to,
                release_code,
                out,
            } => cli::package_build(&src, &sign, &to, release_code.as_deref(), &out),
            PackageCmd::Verify {
                file,
                trust,
                key,
                release_code,
            } => cli::package_verify(&file, &trust, key.as_deref(), release_code.as_deref()),
            PackageCmd::Inspect { file, key } => cli::package_inspect(&file, key.as_deref()),
            PackageCmd::Import { file, data } => cli::import(&data, &file),
        },
        Command::Init {
            data,
            key,
            admin_password_file,
        } => cli::init(&data, key.as_deref(), admin_password_file.as_deref()),
        Command::Serve { data, listen } => cli::serve(&data, listen),
        Command::Demo { port, data } => cli::demo(port, data.as_deref()),
        Command::Session(SessionCmd::Open {
            session,
            data,
            release_code,
        }) => cli::session_open(&data, &session, release_code.as_deref()),
        Command::Session(SessionCmd::List { data }) => cli::session_list(&data),
        Command::Session(SessionCmd::Passwords { package, data }) => {
            cli::passwords(&data, &package)
        }
        Command::Trust(TrustCmd::Add { file, data }) => cli::trust_add(&data, &file),
        Command::Trust(TrustCmd::List { data }) => cli::trust_list(&data),
        Command::User(UserCmd::Add {
            name,
            role,
            data,
            password_file,
        }) => {
            let role = match role {
                RoleArg::Admin => tuk::exam::Role::Admin,
                RoleArg::Proctor => tuk::exam::Role::Proctor,
            };
            cli::user_add(&data, &name, role, password_file.as_deref())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tuk: error: {}", cli::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

//! The `tuk` command line. Each subcommand is a thin shell over a library function; the
//! help text is written for technicians and UPT staff, not programmers.

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
    /// Build, verify and inspect question packages (.tukpkg)
    #[command(subcommand)]
    Package(PackageCmd),
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
}

fn main() -> ExitCode {
    let args = Args::parse();
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
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tuk: error: {}", cli::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

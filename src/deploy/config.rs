//! Where the server's settings come from: built-in defaults, then the configuration file
//! (`/etc/tuk/tuk.toml`, or `--config FILE` / `TUK_CONFIG`), then the environment
//! (`TUK_*`), then the command-line flags. Each later source overrides the earlier ones, and
//! `tuk config show` prints the result with the source of every value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

/// The configuration file read when neither `--config` nor `TUK_CONFIG` names one.
pub(crate) const DEFAULT_FILE: &str = "/etc/tuk/tuk.toml";
/// The data folder the Debian package and the systemd unit use.
pub(crate) const DEFAULT_DATA: &str = "/var/lib/tuk";
pub(crate) const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub(crate) const DEFAULT_BACKUP_DIR: &str = "/var/backups/tuk";
/// Backups kept in `backup_dir` by `tuk backup` without `-o` (2 hours at one every 5 min).
pub(crate) const DEFAULT_BACKUP_KEEP: u32 = 24;

/// Flags every command that works on a data folder accepts.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DataFlags {
    /// Configuration file (default /etc/tuk/tuk.toml if it exists; `none` reads no file)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data folder (default: `data` in the configuration, else /var/lib/tuk)
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
}

/// Flags of `tuk serve`, `tuk doctor` and `tuk config show`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ServeFlags {
    #[command(flatten)]
    pub base: DataFlags,
    /// Address and port to listen on; 0.0.0.0 means every network card (default 0.0.0.0:8080)
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) listen: Option<SocketAddr>,
    /// Serve HTTPS with this certificate (PEM; with --tls-key)
    #[arg(long, value_name = "CERT.pem")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM; with --tls-cert)
    #[arg(long, value_name = "KEY.pem")]
    pub(crate) tls_key: Option<PathBuf>,
}

impl From<&DataFlags> for ServeFlags {
    fn from(d: &DataFlags) -> ServeFlags {
        ServeFlags {
            base: d.clone(),
            ..ServeFlags::default()
        }
    }
}

/// The configuration file's keys (all optional; unknown keys are an error, so a typo is
/// reported instead of silently ignored).
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    log: Option<String>,
    backup_dir: Option<PathBuf>,
    backup_keep: Option<u32>,
    min_free_mb: Option<u64>,
    /// `[letterhead]`: the TUK's name, address, head and logo for printouts.
    letterhead: Option<crate::export::Letterhead>,
}

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Default,
    File(PathBuf),
    Env(&'static str),
    Flag(&'static str),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "environment {v}"),
            Source::Flag(n) => write!(f, "flag {n}"),
        }
    }
}

/// A value and where it came from.
#[derive(Clone, Debug)]
pub(crate) struct Setting<T> {
    pub(crate) value: T,
    pub(crate) source: Source,
}

impl<T> Setting<T> {
    fn new(value: T, source: Source) -> Setting<T> {
        Setting { value, source }
    }
}

/// The effective configuration.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// The configuration file that was read, if any.
    pub(crate) file: Option<PathBuf>,
    pub(crate) data: Setting<PathBuf>,
    pub(crate) listen: Setting<SocketAddr>,
    pub(crate) tls_cert: Option<Setting<PathBuf>>,
    pub(crate) tls_key: Option<Setting<PathBuf>>,
    pub(crate) log: Setting<String>,
    pub(crate) backup_dir: Setting<PathBuf>,
    pub(crate) backup_keep: Setting<u32>,
    /// Overrides the free-disk estimate of `tuk doctor` (MiB).
    pub(crate) min_free_mb: Option<Setting<u64>>,
    /// The `[letterhead]` table of the configuration file: the TUK's name, address, head
    /// and NIP, logo for every printout (the admin page `/admin/kop`, saved in the data
    /// folder, wins over it).
    pub(crate) letterhead: Option<crate::export::Letterhead>,
}

/// Reads the environment through a function, so tests can resolve without touching the
/// process environment.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_listen(text: &str, what: &str) -> Result<SocketAddr> {
    text.trim().parse().map_err(|_| {
        anyhow!("{what}: {text:?} is not an address and port like 0.0.0.0:8080 or 192.168.1.10:80")
    })
}

impl Config {
    /// The configuration for these flags, from the real environment.
    pub(crate) fn resolve(flags: &ServeFlags) -> Result<Config> {
        Config::resolve_with(flags, &process_env)
    }

    /// The file named by `--config` or `TUK_CONFIG`, else `/etc/tuk/tuk.toml` if present.
    fn file_path(flags: &DataFlags, env: Env) -> Result<Option<PathBuf>> {
        let named = flags
            .config
            .clone()
            .or_else(|| env("TUK_CONFIG").map(PathBuf::from));
        match named {
            Some(p) if p.as_os_str() == "none" => Ok(None),
            Some(p) => {
                if !p.is_file() {
                    bail!(
                        "the configuration file {} does not exist (write it, or leave out --config / TUK_CONFIG)",
                        p.display()
                    );
                }
                Ok(Some(p))
            }
            None => {
                let d = PathBuf::from(DEFAULT_FILE);
                Ok(d.is_file().then_some(d))
            }
        }
    }

    pub(crate) fn resolve_with(flags: &ServeFlags, env: Env) -> Result<Config> {
        let path = Config::file_path(&flags.base, env)?;
        let file: FileConfig = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| {
                    format!("cannot read the configuration file {}", p.display())
                })?;
                toml::from_str(&text).with_context(|| {
                    format!("the configuration file {} is not valid", p.display())
                })?
            }
            None => FileConfig::default(),
        };
        let from_file = || Source::File(path.clone().unwrap_or_default());

        // data
        let mut data = Setting::new(PathBuf::from(DEFAULT_DATA), Source::Default);
        if let Some(d) = file.data {
            data = Setting::new(d, from_file());
        }
        if let Some(d) = env("TUK_DATA") {
            data = Setting::new(PathBuf::from(d), Source::Env("TUK_DATA"));
        }
        if let Some(d) = &flags.base.data {
            data = Setting::new(d.clone(), Source::Flag("--data"));
        }

        // listen
        let mut listen = Setting::new(parse_listen(DEFAULT_LISTEN, "default")?, Source::Default);
        if let Some(l) = &file.listen {
            listen = Setting::new(
                parse_listen(l, "listen in the configuration file")?,
                from_file(),
            );
        }
        if let Some(l) = env("TUK_LISTEN") {
            listen = Setting::new(parse_listen(&l, "TUK_LISTEN")?, Source::Env("TUK_LISTEN"));
        }
        if let Some(l) = flags.listen {
            listen = Setting::new(l, Source::Flag("--listen"));
        }

        // TLS: both or neither, from whichever source set them.
        let pick = |flag: &Option<PathBuf>,
                    flag_name: &'static str,
                    var: &'static str,
                    filev: &Option<PathBuf>|
         -> Option<Setting<PathBuf>> {
            if let Some(f) = flag {
                return Some(Setting::new(f.clone(), Source::Flag(flag_name)));
            }
            if let Some(v) = env(var) {
                return Some(Setting::new(PathBuf::from(v), Source::Env(var)));
            }
            filev.clone().map(|f| Setting::new(f, from_file()))
        };
        let tls_cert = pick(
            &flags.tls_cert,
            "--tls-cert",
            "TUK_TLS_CERT",
            &file.tls_cert,
        );
        let tls_key = pick(&flags.tls_key, "--tls-key", "TUK_TLS_KEY", &file.tls_key);
        match (&tls_cert, &tls_key) {
            (Some(_), None) => {
                bail!("a TLS certificate is set but no key: set tls_key (or --tls-key) too")
            }
            (None, Some(_)) => {
                bail!("a TLS key is set but no certificate: set tls_cert (or --tls-cert) too")
            }
            _ => {}
        }

        let mut log = Setting::new("info".to_string(), Source::Default);
        if let Some(l) = file.log {
            log = Setting::new(l, from_file());
        }
        if let Some(l) = env("TUK_LOG") {
            log = Setting::new(l, Source::Env("TUK_LOG"));
        }

        let mut backup_dir = Setting::new(PathBuf::from(DEFAULT_BACKUP_DIR), Source::Default);
        if let Some(b) = file.backup_dir {
            backup_dir = Setting::new(b, from_file());
        }
        if let Some(b) = env("TUK_BACKUP_DIR") {
            backup_dir = Setting::new(PathBuf::from(b), Source::Env("TUK_BACKUP_DIR"));
        }

        let mut backup_keep = Setting::new(DEFAULT_BACKUP_KEEP, Source::Default);
        if let Some(k) = file.backup_keep {
            backup_keep = Setting::new(k, from_file());
        }
        if let Some(k) = env("TUK_BACKUP_KEEP") {
            let n = k
                .trim()
                .parse()
                .map_err(|_| anyhow!("TUK_BACKUP_KEEP: {k:?} is not a whole number"))?;
            backup_keep = Setting::new(n, Source::Env("TUK_BACKUP_KEEP"));
        }
        if backup_keep.value == 0 {
            bail!("backup_keep must be at least 1");
        }

        let mut min_free_mb = file.min_free_mb.map(|m| Setting::new(m, from_file()));
        if let Some(m) = env("TUK_MIN_FREE_MB") {
            let n = m
                .trim()
                .parse()
                .map_err(|_| anyhow!("TUK_MIN_FREE_MB: {m:?} is not a whole number of MiB"))?;
            min_free_mb = Some(Setting::new(n, Source::Env("TUK_MIN_FREE_MB")));
        }

        Ok(Config {
            file: path,
            data,
            listen,
            tls_cert,
            tls_key,
            log,
            backup_dir,
            backup_keep,
            min_free_mb,
            letterhead: file.letterhead,
        })
    }

    /// The TLS certificate and key paths, if HTTPS is configured.
    pub(crate) fn tls(&self) -> Option<(&Path, &Path)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((c.value.as_path(), k.value.as_path())),
            _ => None,
        }
    }

    /// The configuration as TOML, each value commented with its source.
    pub(crate) fn show(&self) -> String {
        fn q(s: &str) -> String {
            toml::Value::String(s.to_string()).to_string()
        }
        fn line(out: &mut String, key: &str, value: String, source: &Source) {
            let left = format!("{key} = {value}");
            out.push_str(&format!("{left:<44} # {source}\n"));
        }
        let mut out = String::new();
        out.push_str("# tuk: the configuration in effect\n");
        match &self.file {
            Some(p) => out.push_str(&format!("# configuration file: {}\n", p.display())),
            None => out.push_str(&format!(
                "# configuration file: none ({DEFAULT_FILE} does not exist or was not asked for)\n"
            )),
        }
        out.push_str(
            "# order: default < configuration file < environment (TUK_*) < command-line flags\n",
        );
        line(
            &mut out,
            "data",
            q(&self.data.value.display().to_string()),
            &self.data.source,
        );
        line(
            &mut out,
            "listen",
            q(&self.listen.value.to_string()),
            &self.listen.source,
        );
        match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => {
                line(
                    &mut out,
                    "tls_cert",
                    q(&c.value.display().to_string()),
                    &c.source,
                );
                line(
                    &mut out,
                    "tls_key",
                    q(&k.value.display().to_string()),
                    &k.source,
                );
            }
            _ => out.push_str("# tls_cert, tls_key: not set (plain HTTP)\n"),
        }
        line(&mut out, "log", q(&self.log.value), &self.log.source);
        line(
            &mut out,
            "backup_dir",
            q(&self.backup_dir.value.display().to_string()),
            &self.backup_dir.source,
        );
        line(
            &mut out,
            "backup_keep",
            self.backup_keep.value.to_string(),
            &self.backup_keep.source,
        );
        match &self.min_free_mb {
            Some(m) => line(&mut out, "min_free_mb", m.value.to_string(), &m.source),
            None => out
                .push_str("# min_free_mb: not set (tuk doctor estimates what the sessions need)\n"),
        }
        match &self.letterhead {
            Some(l) => {
                let src = Source::File(self.file.clone().unwrap_or_default());
                out.push_str(&format!(
                    "[letterhead]{:<32} # {src}; /admin/kop (DATA/letterhead.toml) wins when saved\n",
                    ""
                ));
                for (k, v) in [
                    ("name", &l.name),
                    ("address", &l.address),
                    ("head", &l.head),
                    ("head_nip", &l.head_nip),
                    ("logo", &l.logo),
                ] {
                    if !v.is_empty() {
                        line(&mut out, k, q(v), &src);
                    }
                }
            }
            None => {
                out.push_str("# [letterhead]: not in the file (set it there or on /admin/kop)\n")
            }
        }
        out
    }
}

/// The log filter to use before a command has resolved its configuration: `TUK_LOG`, else
/// `log` in the configuration file, else `info`. Never fails (a broken file is reported by
/// the command itself).
pub(crate) fn early_log_filter(config_flag: Option<&Path>) -> String {
    if let Some(l) = process_env("TUK_LOG") {
        return l;
    }
    let flags = ServeFlags {
        base: DataFlags {
            config: config_flag.map(Path::to_path_buf),
            data: None,
        },
        ..ServeFlags::default()
    };
    Config::resolve(&flags)
        .map(|c| c.log.value)
        .unwrap_or_else(|_| "info".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn precedence_default_file_env_flag() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tuk.toml");
        std::fs::write(
            &f,
            "data = \"/srv/from-file\"\nlisten = \"127.0.0.1:9001\"\nbackup_keep = 7\n",
        )
        .unwrap();
        let mut flags = ServeFlags::default();
        flags.base.config = Some(f.clone());
        let none = env_of(&[]);
        let c = Config::resolve_with(&flags, &|k| none.get(k).cloned()).unwrap();
        assert_eq!(c.data.value, PathBuf::from("/srv/from-file"));
        assert_eq!(c.data.source, Source::File(f.clone()));
        assert_eq!(c.listen.value.port(), 9001);
        assert_eq!(c.backup_keep.value, 7);
        assert_eq!(c.log.source, Source::Default);

        let env = env_of(&[("TUK_LISTEN", "127.0.0.1:9002"), ("TUK_LOG", "debug")]);
        let c = Config::resolve_with(&flags, &|k| env.get(k).cloned()).unwrap();
        assert_eq!(c.listen.value.port(), 9002);
        assert_eq!(c.listen.source, Source::Env("TUK_LISTEN"));
        assert_eq!(c.data.source, Source::File(f.clone()));

        flags.listen = Some("127.0.0.1:9003".parse().unwrap());
        let c = Config::resolve_with(&flags, &|k| env.get(k).cloned()).unwrap();
        assert_eq!(c.listen.value.port(), 9003);
        assert_eq!(c.listen.source, Source::Flag("--listen"));
        assert!(c.show().contains("# flag --listen"));
    }

    #[test]
    fn letterhead_table_of_the_named_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tuk.toml");
        std::fs::write(
            &f,
            "[letterhead]\nname = \"TUK SMK Negeri 1 Contoh\"\nhead_nip = \"1968\"\n",
        )
        .unwrap();
        let mut flags = ServeFlags::default();
        flags.base.config = Some(f.clone());
        let none = env_of(&[]);
        let c = Config::resolve_with(&flags, &|k| none.get(k).cloned()).unwrap();
        let lh = c.letterhead.clone().expect("the [letterhead] table");
        assert_eq!(lh.name, "TUK SMK Negeri 1 Contoh");
        assert_eq!(lh.head_nip, "1968");
        assert!(c.show().contains("name = \"TUK SMK Negeri 1 Contoh\""));
        // A misspelt key in the table is an error too.
        std::fs::write(&f, "[letterhead]\nnama = \"x\"\n").unwrap();
        let e = Config::resolve_with(&flags, &|k| none.get(k).cloned()).unwrap_err();
        assert!(format!("{e:#}").contains("nama"), "{e:#}");
    }

    #[test]
    fn typos_and_half_tls_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tuk.toml");
        std::fs::write(&f, "lisen = \"0.0.0.0:80\"\n").unwrap();
        let mut flags = ServeFlags::default();
        flags.base.config = Some(f.clone());
        let none = env_of(&[]);
        let e = Config::resolve_with(&flags, &|k| none.get(k).cloned()).unwrap_err();
        assert!(format!("{e:#}").contains("lisen"), "{e:#}");
        std::fs::write(&f, "tls_cert = \"/x.pem\"\n").unwrap();
        let e = Config::resolve_with(&flags, &|k| none.get(k).cloned()).unwrap_err();
        assert!(format!("{e:#}").contains("no key"), "{e:#}");
        flags.base.config = Some(dir.path().join("missing.toml"));
        assert!(Config::resolve_with(&flags, &|k| none.get(k).cloned()).is_err());
    }
}

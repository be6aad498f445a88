//! Logging through `tracing`, in a form journald reads well.
//!
//! Under systemd (`JOURNAL_STREAM` is set when stderr is the journal) every event is one
//! line that starts with its syslog priority (`<3>` error, `<4>` warning, `<6>` info,
//! `<7>` debug), without a timestamp or colours: journald stores the priority and the time
//! itself, so `journalctl -u tuk -p warning` works. Elsewhere the usual human format with a
//! timestamp goes to stderr. The filter is `TUK_LOG` (or `log` in the configuration file),
//! e.g. `info`, `debug`, `warn,tuk=debug`.
//!
//! What is never logged: passwords, tokens, cookies, keys, answer choices. Request lines
//! (at `debug`) carry the method, path, status and duration only.

use std::fmt;
use std::path::Path;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// One line per event: `<priority>message key=value …`.
struct Journald;

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let prio = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(writer, "<{prio}>")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Whether to colour output on a stream: only on a terminal, and never when `NO_COLOR` is
/// set to anything but the empty string (<https://no-color.org>) or `TERM=dumb`.
pub(crate) fn colour(stream_is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    stream_is_terminal && !no_color && !dumb
}

/// True when stderr is connected to the journal (systemd sets `JOURNAL_STREAM`).
pub(crate) fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}

/// Installs the global subscriber. `config` is the `--config` flag of the command, if any,
/// so the file's `log` setting applies; `TUK_LOG` overrides it.
pub fn init(config: Option<&Path>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = super::config::early_log_filter(config);
    // `Targets` reads the same `level` / `target=level` lists without a regex engine
    // (tracing-subscriber's `env-filter` feature costs a clean build ~regex-automata).
    let targets: Targets = filter
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(Level::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(targets);
    let _ = if under_journald() {
        registry
            .with(layer.with_ansi(false).event_format(Journald))
            .try_init()
    } else {
        use std::io::IsTerminal;
        registry
            .with(layer.with_ansi(colour(std::io::stderr().is_terminal())))
            .try_init()
    };
}

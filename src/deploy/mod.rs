//! Deployment: what a TUK technician needs around the exam server (the commands that use it,
//! `tuk config show`, `doctor`, `verify`, `backup`, `restore`, `selftest`, are in `cli::deploy`).
//!
//! - [`config`]: `/etc/tuk/tuk.toml` → `TUK_*` environment → flags, and `tuk config show`;
//! - [`doctor`]: `tuk doctor`, plain-words checks with a non-zero exit when the exam would stop;
//! - [`backup`]: `tuk backup` / `tuk restore` (a consistent snapshot while the server runs);
//! - [`control`]: the running server's control socket (backup, status) and clock watch;
//! - [`selftest`]: `tuk selftest --participants N` on a sandbox;
//! - [`logging`]: journald-friendly `tracing` output;
//! - systemd readiness ([`notify_ready`]).
//!
//! The systemd units are in `systemd/`, the Debian packaging in `packaging/` and
//! `[package.metadata.deb]`, the static build in `.cargo/config.toml`.

pub(crate) mod backup;
pub mod config;
pub(crate) mod control;
pub(crate) mod doctor;
pub mod logging;
pub mod selftest;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;

use config::{Config, DataFlags, ServeFlags};

/// Tells systemd (`Type=notify`) the server is ready: the store is open and the listener
/// bound. Does nothing when not started by systemd.
pub(crate) fn notify_ready(listen: SocketAddr, tls: bool) {
    let status = format!("serving {}://{listen}/", if tls { "https" } else { "http" });
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&status),
    ]);
    crate::server::metrics::started();
    tracing::info!(%listen, tls, "ready");
}

/// Sends systemd's watchdog pings (`WatchdogSec=` in tuk.service) from the server's async
/// runtime at half the interval, so a server whose runtime hangs is restarted by systemd.
/// Does nothing when systemd asked for no watchdog.
pub(crate) fn spawn_watchdog() {
    let Some(every) = sd_notify::watchdog_enabled() else {
        return;
    };
    let half = (every / 2).max(std::time::Duration::from_millis(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(half);
        loop {
            tick.tick().await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
    });
}

/// Tells systemd the server is stopping (draining requests, then closing the store).
pub(crate) fn notify_stopping() {
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("draining requests and closing the store"),
    ]);
}

/// The data folder for `flags`, the same way for every command: `--data`, else `TUK_DATA`,
/// else `data` in the configuration file, else /var/lib/tuk.
pub fn data_dir(flags: &DataFlags) -> Result<PathBuf> {
    Ok(Config::resolve(&ServeFlags::from(flags))?.data.value)
}

//! `tuk`: the LAN exam server for TUK computer labs.
//!
//! See `ARCHITECTURE.md` for the map. In short: [`package`] is the signed question package
//! (UPT side builds, TUK side verifies and opens), [`keys`] holds the key files both sides use.

pub mod app;
pub(crate) mod auth;
pub mod cli;
pub mod clock;
pub(crate) mod console;
pub mod container;
pub mod deploy;
pub mod exam;
pub(crate) mod export;
pub mod fsutil;
pub(crate) mod ids;
pub mod keys;
pub(crate) mod limits;
pub mod package;
pub mod seal;
pub(crate) mod server;
pub(crate) mod site;
pub mod store;
pub mod upload;
pub mod upt;

/// One line: the error and its causes, most specific last.
pub fn error_chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

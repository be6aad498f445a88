//! `tuk`: the LAN exam server for TUK computer labs.
//!
//! See `ARCHITECTURE.md` for the map. In short: [`package`] is the signed question package
//! (UPT side builds, TUK side verifies and opens), [`keys`] holds the key files both sides use.

pub mod app;
pub mod cli;
pub mod clock;
pub mod console;
pub mod exam;
pub mod fsutil;
pub mod keys;
pub mod package;
pub mod server;
pub mod store;

//! Limits an operator may change through the environment (`TUK_MAX_CONN`,
//! `TUK_SAVE_RATE`, `TUK_STORE_CACHE_MB`, …; every one is listed with its default in
//! `docs/security.md` or `docs/performance.md`). One reader, so that every limit is parsed
//! the same way: a value that is unset or not a number means the default.

/// Reads a limit from the environment variable `name`, or `default` when it is unset or
/// not a number (surrounding spaces are ignored).
pub(crate) fn env_limit<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

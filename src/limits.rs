//! Limits an operator may change through the environment (`TUK_MAX_CONN`,
//! `TUK_SAVE_RATE`, `TUK_STORE_CACHE_MB`, …; every one is listed with its default in
//! `docs/security.md` or `docs/performance.md`). One reader, so that every limit is parsed
//! the same way: a value that is unset or not a number means the default.

/// Reads a limit from the environment variable `name`, or `default` when it is unset or
/// not a number (surrounding spaces are ignored).
pub fn env_limit<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Sets glibc's allocator up for a long-running server with a few busy threads (issue 17;
/// `docs/performance.md` has the measurements). Call it before the server's threads start.
///
/// - `TUK_MALLOC_ARENAS` (default 2, `0` = glibc's own limit of 8 per core): how many
///   malloc arenas the threads share. glibc gives each thread that meets a locked arena one
///   of its own, up to 8 per core; the HTTP workers, the writer and the two password-hash
///   threads then each keep their freed memory to themselves (the hash threads 8 MiB each
///   after the login storm), and the peak RSS is the sum of the arenas' peaks.
/// - `TUK_MALLOC_MMAP_KB` (default 0 = glibc's dynamic threshold): blocks of at least this
///   many KiB are mapped on their own and returned to the system when freed.
///
/// A setting glibc refuses is logged and otherwise ignored: the server runs either way.
pub fn tune_malloc() {
    let arenas: i32 = env_limit("TUK_MALLOC_ARENAS", 2);
    let mmap_kb: i32 = env_limit("TUK_MALLOC_MMAP_KB", 0);
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    if arenas > 0 && unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) } != 1 {
        tracing::warn!("glibc refused TUK_MALLOC_ARENAS={arenas}; using its default");
    }
    if mmap_kb > 0
        && unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, mmap_kb.saturating_mul(1024)) } != 1
    {
        tracing::warn!("glibc refused TUK_MALLOC_MMAP_KB={mmap_kb}; using its default");
    }
}

//! Time as the server sees it. The exam clock is the server's: browsers only display what
//! the server computed, so one place owns "now" and its formatting.
//!
//! Two clocks, on purpose (rules in `docs/time.md`):
//! - [`wall_ms`] is the system clock. It can step: a flat CMOS battery brings a lab server
//!   back from a power cut years in the past, and the technician (or NTP) then corrects it.
//! - [`now_ms`] is the **exam clock**: the wall clock as it was at the last [`rebase`], moved
//!   on by the monotonic clock since then. A step of the system clock does not move it, so
//!   no deadline is reached early and nobody is auto-submitted by a step. The server's
//!   ticker notices the difference ([`step_ms`]), shifts every running deadline by it in one
//!   writer batch (logged as a `clock_step` event) and only then rebases, so deadlines and
//!   "now" move together.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A difference between the system clock and the exam clock above this is a clock step
/// (ms). Below it the two are the same clock read a few milliseconds apart (or NTP slewing).
pub(crate) const STEP_MIN_MS: i64 = 2_000;

/// The monotonic origin of the exam clock, and the exam clock's value there (ms).
static ORIGIN: OnceLock<Instant> = OnceLock::new();
static ORIGIN_MS: AtomicI64 = AtomicI64::new(0);
/// Added to the system clock: 0 in production; tests set it to simulate a step without
/// touching the machine's clock ([`skew_wall_for_tests`]).
static WALL_SKEW_MS: AtomicI64 = AtomicI64::new(0);

/// The system clock, in milliseconds since the Unix epoch (0 if it is before 1970).
pub(crate) fn wall_ms() -> i64 {
    let sys = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    sys + WALL_SKEW_MS.load(Ordering::Relaxed)
}

fn origin() -> Instant {
    *ORIGIN.get_or_init(|| {
        ORIGIN_MS.store(wall_ms(), Ordering::Relaxed);
        Instant::now()
    })
}

/// The exam clock, in milliseconds since the Unix epoch: the system clock as of the last
/// [`rebase`] plus monotonic time since. Deadlines, events and the alive mark use it.
pub fn now_ms() -> i64 {
    let o = origin();
    ORIGIN_MS.load(Ordering::Relaxed) + o.elapsed().as_millis() as i64
}

/// How far the system clock has stepped away from the exam clock (ms, positive = forward).
/// Near 0 unless someone or something set the time since the last [`rebase`].
pub(crate) fn step_ms() -> i64 {
    wall_ms() - now_ms()
}

/// Makes the exam clock follow the system clock again. The caller first shifts everything
/// that holds an exam-clock time by [`step_ms`] (see `Exam::shift_clock`).
pub(crate) fn rebase() {
    let o = origin();
    ORIGIN_MS.store(
        wall_ms() - o.elapsed().as_millis() as i64,
        Ordering::Relaxed,
    );
}

/// Takes back a [`rebase`] that moved the exam clock by `step_ms`, when the batch that
/// shifted the deadlines with it was not stored (disk full): the next tick tries again.
pub(crate) fn undo_rebase(step_ms: i64) {
    ORIGIN_MS.fetch_sub(step_ms, Ordering::Relaxed);
}

/// `2026-11-24T01:02:03Z`
pub(crate) fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// `2026-11-24 08:02:03` in the given UTC offset (seconds east), for people.
pub(crate) fn local(ms: i64, offset_s: i32) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let off = time::UtcOffset::from_whole_seconds(offset_s).unwrap_or(time::UtcOffset::UTC);
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t.to_offset(off))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// `08:02:03` in the given offset.
pub(crate) fn local_time(ms: i64, offset_s: i32) -> String {
    local(ms, offset_s).split_off(11)
}

// Clock watch (the running server's control socket starts it; `tuk doctor` and `/metrics`
// show what it saw)

static JUMP_MAX_MS: AtomicI64 = AtomicI64::new(0);
static JUMP_AT_MS: AtomicI64 = AtomicI64::new(0);

/// The largest wall-clock jump (signed, ms) seen while this server ran; 0 if none.
pub(crate) fn clock_jump_max_ms() -> i64 {
    JUMP_MAX_MS.load(Ordering::Relaxed)
}

/// When that largest jump was seen (exam clock, ms); 0 if none.
pub(crate) fn clock_jump_at_ms() -> i64 {
    JUMP_AT_MS.load(Ordering::Relaxed)
}

/// Compares the wall clock with the monotonic clock every 2 s; a difference over 2 s is a
/// jump (someone set the clock, or NTP stepped it), logged and kept for `tuk doctor`.
pub(crate) fn watch_clock(stop: Arc<AtomicBool>) {
    let mut mono = Instant::now();
    let mut wall = now_ms();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(2));
        let (m2, w2) = (Instant::now(), now_ms());
        let expected = m2.duration_since(mono).as_millis() as i64;
        let jump = (w2 - wall) - expected;
        if jump.abs() > 2_000 {
            tracing::warn!(
                jump_s = jump / 1000,
                "the system clock jumped by {} s; running deadlines are shifted by the same amount (docs/time.md), check the time",
                jump / 1000
            );
            if jump.abs() > JUMP_MAX_MS.load(Ordering::Relaxed).abs() {
                JUMP_MAX_MS.store(jump, Ordering::Relaxed);
                JUMP_AT_MS.store(w2, Ordering::Relaxed);
            }
        }
        mono = m2;
        wall = w2;
    }
}

/// Moves the *system* clock as this process sees it by `ms` (tests only: this is how a
/// test simulates a technician setting the time, without changing the machine's clock).
#[cfg(test)]
pub(crate) fn skew_wall_for_tests(ms: i64) {
    WALL_SKEW_MS.fetch_add(ms, Ordering::Relaxed);
}

//! The one login routine every `tuk` login goes through (participants at `/` and
//! `/api/v1/login`, staff at `/admin`, UPT staff at `/laporan`), and the small rate
//! limiters the servers share.
//!
//! Rule (issue 11, `docs/security.md`): failed logins are counted per *(account, source
//! address)* and per *source address*. Each failure in a row from one address makes the
//! next answer slower ([`Policy::backoff_step_ms`] per failure, at most
//! [`Policy::backoff_max_ms`]); after [`Policy::pair_lock_after`] failures that address is
//! locked **for that account only**, after [`Policy::addr_lock_after`] failures (any
//! accounts) that address is locked for every account. A lock lasts [`Policy::lock_ms`]
//! or until the proctor lifts it. An account is never locked for everyone: the right
//! password typed at another PC always gets in, so one hostile PC cannot lock the room out.
//! Unknown names are checked against a decoy hash, so they cost the same time as a wrong
//! password and do not tell which accounts exist.
//!
//! Counters live in memory only (a restart forgets them) and are bounded: at most
//! [`MAX_ENTRIES`] entries; expired ones are dropped first, then the oldest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, Version};

/// Counters kept at most (pairs and addresses together), so guesses at made-up names
/// cannot grow memory without end.
pub(crate) const MAX_ENTRIES: usize = 20_000;

/// The numbers behind the lock-out rule.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// Failures from one address for one account before that pair is locked (8).
    pub(crate) pair_lock_after: u32,
    /// Failures from one address, all accounts together, before the address is locked (40).
    pub(crate) addr_lock_after: u32,
    /// How long a lock lasts, in milliseconds (5 minutes). A failure older than this
    /// no longer counts.
    pub(crate) lock_ms: i64,
    /// Extra delay per failure in a row from one address for one account (250 ms).
    pub(crate) backoff_step_ms: u64,
    /// The longest such delay (2 s).
    pub(crate) backoff_max_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            pair_lock_after: 8,
            addr_lock_after: 40,
            lock_ms: 5 * 60_000,
            backoff_step_ms: 250,
            backoff_max_ms: 2_000,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Counter {
    count: u32,
    last_ms: i64,
}

/// One lock, as the proctor's board shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Lock {
    /// The account locked from `ip`, or `None` when the whole address is locked.
    pub(crate) account: Option<String>,
    /// The source address whose failures caused it.
    pub(crate) ip: String,
    pub(crate) failures: u32,
    /// When it ends by itself (ms since the epoch).
    pub(crate) until_ms: i64,
}

/// What a failed attempt changed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Failed {
    /// How long to wait before answering (backoff).
    pub(crate) delay: Duration,
    /// This failure locked the (account, address) pair.
    pub(crate) pair_locked: bool,
    /// This failure locked the whole address.
    pub(crate) addr_locked: bool,
}

/// Failure counters of one server (in memory).
#[derive(Default)]
pub(crate) struct Guard {
    policy: Policy,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    pairs: HashMap<(String, String), Counter>,
    addrs: HashMap<String, Counter>,
}

impl Inner {
    fn prune(&mut self, now: i64, lock_ms: i64) {
        if self.pairs.len() + self.addrs.len() <= MAX_ENTRIES {
            return;
        }
        self.pairs.retain(|_, c| now - c.last_ms < lock_ms);
        self.addrs.retain(|_, c| now - c.last_ms < lock_ms);
        // Still too many live counters: forget the oldest half of the pairs.
        if self.pairs.len() + self.addrs.len() > MAX_ENTRIES {
            let mut ages: Vec<i64> = self.pairs.values().map(|c| c.last_ms).collect();
            ages.sort_unstable();
            let cut = ages.get(ages.len() / 2).copied().unwrap_or(i64::MAX);
            self.pairs.retain(|_, c| c.last_ms > cut);
        }
    }
}

impl Guard {
    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live(&self, c: Option<&Counter>, limit: u32, now: i64) -> bool {
        c.is_some_and(|c| c.count >= limit && now - c.last_ms < self.policy.lock_ms)
    }

    /// Is `account` locked for attempts from `ip` (the pair, or the whole address)?
    pub(crate) fn locked(&self, account: &str, ip: &str, now: i64) -> bool {
        let g = self.inner();
        self.live(
            g.pairs.get(&(account.to_string(), ip.to_string())),
            self.policy.pair_lock_after,
            now,
        ) || self.live(g.addrs.get(ip), self.policy.addr_lock_after, now)
    }

    /// Counts a wrong password for `account` from `ip`.
    pub(crate) fn failed(&self, account: &str, ip: &str, now: i64) -> Failed {
        let p = self.policy;
        let mut g = self.inner();
        g.prune(now, p.lock_ms);
        let bump = |c: &mut Counter| {
            if now - c.last_ms >= p.lock_ms {
                c.count = 0;
            }
            c.count = c.count.saturating_add(1);
            c.last_ms = now;
            c.count
        };
        let pair = bump(
            g.pairs
                .entry((account.to_string(), ip.to_string()))
                .or_default(),
        );
        let addr = bump(g.addrs.entry(ip.to_string()).or_default());
        Failed {
            delay: Duration::from_millis(
                (p.backoff_step_ms * u64::from(pair)).min(p.backoff_max_ms),
            ),
            pair_locked: pair == p.pair_lock_after,
            addr_locked: addr == p.addr_lock_after,
        }
    }

    /// The right password: this pair starts again from zero (the address counter stays,
    /// so one PC cannot reset its own count by logging in to an account it owns).
    pub(crate) fn succeeded(&self, account: &str, ip: &str) {
        self.inner()
            .pairs
            .remove(&(account.to_string(), ip.to_string()));
    }

    /// Every lock in force, oldest first.
    pub(crate) fn locks(&self, now: i64) -> Vec<Lock> {
        let p = self.policy;
        let g = self.inner();
        let mut v: Vec<Lock> = g
            .pairs
            .iter()
            .filter(|(_, c)| self.live(Some(c), p.pair_lock_after, now))
            .map(|((a, ip), c)| Lock {
                account: Some(a.clone()),
                ip: ip.clone(),
                failures: c.count,
                until_ms: c.last_ms + p.lock_ms,
            })
            .chain(
                g.addrs
                    .iter()
                    .filter(|(_, c)| self.live(Some(c), p.addr_lock_after, now))
                    .map(|(ip, c)| Lock {
                        account: None,
                        ip: ip.clone(),
                        failures: c.count,
                        until_ms: c.last_ms + p.lock_ms,
                    }),
            )
            .collect();
        v.sort_by(|a, b| (a.until_ms, &a.ip).cmp(&(b.until_ms, &b.ip)));
        v
    }

    /// The locks that stop `account`: its pair locks and the whole-address locks of the
    /// addresses it was tried from.
    pub(crate) fn locks_for(&self, account: &str, now: i64) -> Vec<Lock> {
        self.locks(now)
            .into_iter()
            .filter(|l| l.account.as_deref() == Some(account))
            .collect()
    }

    /// Is the whole address `ip` locked?
    pub(crate) fn addr_locked(&self, ip: &str, now: i64) -> bool {
        self.live(self.inner().addrs.get(ip), self.policy.addr_lock_after, now)
    }

    /// The proctor lifts every lock `ip` caused (its pairs and the address); returns how
    /// many counters were cleared.
    pub(crate) fn lift(&self, ip: &str) -> usize {
        let mut g = self.inner();
        let before = g.pairs.len() + g.addrs.len();
        g.pairs.retain(|(_, i), _| i != ip);
        g.addrs.remove(ip);
        before - (g.pairs.len() + g.addrs.len())
    }

    /// Forgets every failure of `account` (from any address): the proctor moved the
    /// participant to another PC.
    pub(crate) fn forget_account(&self, account: &str) {
        self.inner().pairs.retain(|(a, _), _| a != account);
    }
}

/// Why a login was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginRefused {
    /// This address is locked for this account (or entirely): 429.
    Locked,
    /// Wrong name or password: 401. `locked_now` tells the caller to log the lock.
    Wrong {
        pair_locked: bool,
        addr_locked: bool,
    },
    /// The hashing pool is closed (server stopping): 503.
    Unavailable,
}

/// The shared login routine: checks the lock, checks `password` against `phc` (or a
/// decoy hash of the same cost when the account does not exist) on the bounded hashing
/// pool `slots`, counts a failure with its backoff, and clears the pair on success.
/// `decoy` must be a PHC string made with the same parameters as real accounts.
pub(crate) async fn check_password(
    guard: &Guard,
    slots: &tokio::sync::Semaphore,
    account: &str,
    ip: &str,
    phc: Option<String>,
    decoy: &str,
    password: String,
) -> Result<(), LoginRefused> {
    let now = crate::clock::now_ms;
    if guard.locked(account, ip, now()) {
        return Err(LoginRefused::Locked);
    }
    let ok = {
        let Ok(_permit) = slots.acquire().await else {
            return Err(LoginRefused::Unavailable);
        };
        // Guesses sent in parallel all passed the first check; look again now.
        if guard.locked(account, ip, now()) {
            return Err(LoginRefused::Locked);
        }
        let known = phc.is_some();
        let hash = phc.unwrap_or_else(|| decoy.to_string());
        on_hash_thread(move || verify_password(&password, &hash) && known)
            .await
            .unwrap_or(false)
    };
    if ok {
        guard.succeeded(account, ip);
        return Ok(());
    }
    let f = guard.failed(account, ip, now());
    tokio::time::sleep(f.delay).await;
    Err(LoginRefused::Wrong {
        pair_locked: f.pair_locked,
        addr_locked: f.addr_locked,
    })
}

type Job = Box<dyn FnOnce() + Send>;

/// How long a hashing thread waits for a job before it frees the idle argon2 working
/// memory (2 s; a buffer given back just after a sweep waits for the next one, so memory
/// leaves 2–4 s after the last check): a login storm reuses it, a quiet exam gives it back
/// (issue 17). The thread holding the queue wakes every 2 s while idle, at no cost that
/// shows.
const KEEP_WORK_MEMORY: Duration = Duration::from_secs(2);

/// argon2's working memory (8 MiB per check for participants, 19 MiB for staff), at most
/// one buffer per hashing thread. A check takes a buffer and puts it back; the hashing
/// threads free the idle ones 2–4 s after the last check ([`KEEP_WORK_MEMORY`]). Kept here rather than
/// allocated per check because `free` does not give an 8 MiB block back to the system
/// reliably (glibc's dynamic mmap threshold; `main` fixes the threshold so that this
/// pool's `Vec`s are mapped and unmapped whole), and rather than forever per thread
/// because that held 16 MiB through the whole exam, the largest single item in the heap
/// profile (docs/performance.md).
static WORK_MEMORY: Mutex<Vec<Vec<argon2::Block>>> = Mutex::new(Vec::new());

/// Frees the idle argon2 buffers (see [`WORK_MEMORY`]).
fn free_work_memory() {
    let idle = std::mem::take(&mut *WORK_MEMORY.lock().unwrap_or_else(|p| p.into_inner()));
    drop(idle);
}

/// Runs `f` on one of a few long-lived hashing threads (as many as cores) and waits for
/// it. The threads are few so that at most that many argon2 buffers exist at once; a
/// thread that waited [`KEEP_WORK_MEMORY`] without a job frees the idle ones.
pub(crate) async fn on_hash_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    static POOL: std::sync::OnceLock<std::sync::mpsc::Sender<Job>> = std::sync::OnceLock::new();
    let tx = POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..n {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("tuk-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let Ok(rx) = rx.lock() else { return };
                            match rx.recv_timeout(KEEP_WORK_MEMORY) {
                                Ok(j) => Some(j),
                                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                            }
                        };
                        match job {
                            Some(job) => job(),
                            None => free_work_memory(),
                        }
                    }
                });
        }
        tx
    });
    let (done, wait) = tokio::sync::oneshot::channel();
    tx.send(Box::new(move || {
        let _ = done.send(f());
    }))
    .ok()?;
    wait.await.ok()
}

/// A token bucket per key (an attempt, an address): `burst` requests at once, then
/// `per_s` per second. Bounded to [`MAX_ENTRIES`] keys (idle full buckets are dropped).
pub(crate) struct Rate {
    burst: f64,
    per_s: f64,
    buckets: Mutex<HashMap<String, (f64, std::time::Instant)>>,
}

impl Rate {
    pub(crate) fn new(burst: u32, per_s: f64) -> Rate {
        Rate {
            burst: f64::from(burst.max(1)),
            per_s: per_s.max(0.001),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `false` when the bucket is empty (refuse with 429).
    pub(crate) fn allow(&self, key: &str) -> bool {
        let now = std::time::Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > MAX_ENTRIES {
            let full = self.burst / self.per_s;
            b.retain(|_, (_, t)| now.duration_since(*t).as_secs_f64() < full);
        }
        let (tokens, last) = b.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_s).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Makes client-controlled text safe for one log line: control characters (newlines,
/// escape sequences) are escaped and the text is cut at `max` characters.
pub(crate) fn log_safe(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks a password against its PHC string (`$argon2id$v=19$m=…`), with the parameters
/// the string names. Same result as argon2's `PasswordVerifier`, but the 8–19 MiB of
/// working memory comes from [`WORK_MEMORY`] and goes back to it.
pub(crate) fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::phc::{Output, PasswordHash};
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let blocks = params.block_count();
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    let mut memory = WORK_MEMORY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::new());
    }
    let computed = argon.hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        &mut memory[..blocks],
    );
    WORK_MEMORY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(memory);
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|o| &o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_lock_does_not_lock_the_account_for_others() {
        let g = Guard::default();
        for i in 0..8 {
            let f = g.failed("p1", "10.0.0.9", 1000 + i);
            assert_eq!(f.pair_locked, i == 7);
        }
        assert!(g.locked("p1", "10.0.0.9", 2000));
        assert!(!g.locked("p1", "10.0.0.2", 2000));
        assert!(!g.locked("p2", "10.0.0.9", 2000));
        assert_eq!(g.locks_for("p1", 2000).len(), 1);
        // It ends by itself.
        assert!(!g.locked("p1", "10.0.0.9", 2000 + 5 * 60_000));
        // Or the proctor lifts it.
        assert_eq!(g.lift("10.0.0.9"), 2);
        assert!(!g.locked("p1", "10.0.0.9", 2000));
    }

    #[test]
    fn address_lock_after_many_accounts() {
        let g = Guard::default();
        for i in 0..40 {
            let f = g.failed(&format!("p{i}"), "10.0.0.9", 1000);
            assert_eq!(f.addr_locked, i == 39);
        }
        assert!(g.locked("anyone", "10.0.0.9", 1001));
        assert!(!g.locked("anyone", "10.0.0.8", 1001));
        assert!(g.addr_locked("10.0.0.9", 1001));
    }

    #[test]
    fn counters_are_bounded() {
        let g = Guard::default();
        for i in 0..(MAX_ENTRIES + 100) {
            g.failed(&format!("n{i}"), &format!("ip{}", i % 7), i as i64);
        }
        let inner = g.inner();
        assert!(inner.pairs.len() + inner.addrs.len() <= MAX_ENTRIES + 1);
    }

    #[test]
    fn rate_bucket() {
        let r = Rate::new(3, 0.001);
        assert!(r.allow("a") && r.allow("a") && r.allow("a"));
        assert!(!r.allow("a"));
        assert!(r.allow("b"));
    }

    #[test]
    fn log_text_has_no_control_characters() {
        assert_eq!(log_safe("a\nb\x1b[31m", 100), "a\\nb\\u{1b}[31m");
        assert_eq!(log_safe("abcdef", 3), "abc…");
    }

    /// argon2's working memory is reused while checks come and freed once they stop
    /// (issue 17: 16 MiB held through a whole exam was the heap's largest single item).
    #[tokio::test]
    async fn working_memory_is_freed_when_logins_stop() {
        use crate::exam::secrets;
        let phc = secrets::hash_password("abcdefgh", secrets::participant_params()).unwrap();
        let blocks = secrets::participant_params().block_count();
        let ok = on_hash_thread(move || verify_password("abcdefgh", &phc)).await;
        assert_eq!(ok, Some(true));
        let held = || -> usize {
            let pool = WORK_MEMORY.lock().unwrap_or_else(|p| p.into_inner());
            pool.iter().map(Vec::len).sum()
        };
        assert!(held() >= blocks, "kept for the next check");
        let until = std::time::Instant::now() + KEEP_WORK_MEMORY * 5;
        while held() > 0 && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(held(), 0, "freed {KEEP_WORK_MEMORY:?} after the last check");
    }

    /// The reusing verifier agrees with argon2's own `PasswordVerifier` on hashes of both
    /// strengths (the buffer is reused from a larger to a smaller one and back), a known
    /// RFC 9106-style PHC string, and broken strings.
    #[test]
    fn verify_agrees_with_argon2s_verifier() {
        use crate::exam::secrets;
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let reference = |pw: &str, phc: &str| {
            Argon2::default()
                .verify_password(pw.as_bytes(), phc)
                .is_ok()
        };
        let staff = secrets::hash_password("Staff-Password-1", secrets::staff_params()).unwrap();
        let part = secrets::hash_password("abcdefgh", secrets::participant_params()).unwrap();
        // argon2id, v=19, m=64 KiB, t=3, p=4: a different lane count and output length.
        let lanes = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 3, 4, Some(24)).unwrap(),
        )
        .hash_password(b"lanes")
        .unwrap()
        .to_string();
        let cases = [
            ("Staff-Password-1", staff.as_str()),
            ("staff-password-1", staff.as_str()),
            ("abcdefgh", part.as_str()),
            ("abcdefgH", part.as_str()),
            ("Staff-Password-1", staff.as_str()),
            ("lanes", lanes.as_str()),
            ("lane", lanes.as_str()),
            ("x", "$argon2id$v=19$m=8192,t=1,p=1$bm90YXNhbHQ"),
            ("x", "not a hash"),
            ("x", ""),
        ];
        for (pw, phc) in cases {
            assert_eq!(verify_password(pw, phc), reference(pw, phc), "{pw} {phc}");
        }
        assert!(verify_password("lanes", &lanes));
        let mut truncated = part.clone();
        truncated.pop();
        assert!(!verify_password("abcdefgh", &truncated));
    }
}

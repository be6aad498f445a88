//! Start-up time against the number of stored events (issue 12): a data folder whose event
//! log holds 10k, 100k and 1M events (50 session chains plus the TUK chain) is opened the
//! way `tuk serve` opens it (`App::open`: store, state, chain heads, the item bank of the
//! running session, writer), and the time to ready is printed. Whole-chain verification
//! (`tuk verify`) is timed beside it, since start-up no longer does it.
//!
//! Each size is measured in three shapes:
//! - `events only`: the events alone;
//! - `history`: a realistic store: 49 closed sessions holding the attempts and answers those
//!   events left (one answer row per two events, 60 items per attempt), plus one running
//!   session of 40 participants × 60 answered items (the demo package's bank is unlocked
//!   for it, as at a real restart). Start-up decodes only the running session's attempts;
//!   the closed ones stay in the store (issue 12, item 6);
//! - `all open`: the same store with every session marked open, so start-up decodes every
//!   attempt and answer row (the worst case, and what every start cost before item 6).
//!
//! Figures (best of three opens, warm cache) are in `docs/performance.md`.
//!
//! `cargo bench --bench startup [-- 10000 100000 1000000]`

use std::time::Instant;

use tuk::app::App;
use tuk::exam::events::{self, Actor, Event, Head};
use tuk::exam::form::{FormItem, Id, Ids};
use tuk::exam::score::{Hundredths, Score};
use tuk::exam::{Answer, Attempt, AttemptStatus, FinishedBy, Session, SessionStatus};
use tuk::keys::{PublicKey, SecretKey};
use tuk::store::{Put, Store, Table, join_key};

const CHAINS: usize = 50;
/// The running session's participants in the `history` shape (each answered [`ITEMS`]).
const LIVE: usize = 40;

const DEMO_PACKAGE: &[u8] = include_bytes!("../exam-packages/demo.tukpkg");
const DEMO_TUK_KEY: &str = include_str!("../exam-packages/demo-keys/tuk.key");
const DEMO_UPT_PUB: &str = include_str!("../exam-packages/demo-keys/upt.pub");

/// A data folder with the demo package imported and `n` events over [`CHAINS`] session
/// chains; returns the package id.
fn make(dir: &std::path::Path, n: usize) -> String {
    let data = dir.join("data");
    let key = SecretKey::parse(DEMO_TUK_KEY).expect("demo key");
    App::init(&data, Some(key), "benchmark-admin").expect("init");
    let pkg = {
        let app = App::open(&data).expect("open");
        app.trust_add(&PublicKey::parse(DEMO_UPT_PUB).expect("demo upt key"))
            .expect("trust");
        let id = app
            .import(DEMO_PACKAGE, "bench")
            .expect("import")
            .package_id;
        app.shutdown();
        id
    };
    let store = Store::open(&data).expect("open");
    let mut heads: Vec<(String, Head)> = (0..CHAINS)
        .map(|i| (format!("{pkg}/S{i}"), Head::default()))
        .collect();
    let mut puts: Vec<Put> = Vec::with_capacity(50_000);
    for i in 0..n {
        let (chain, head) = &mut heads[i % CHAINS];
        let ev = Event::Answer {
            attempt: format!("{chain}/2026050100001"),
            item: format!("ITEM-{:03}", i % 100),
            choice: vec!["b".to_string()],
            doubtful: false,
            seq: i as u64,
        };
        puts.push(events::append(
            head,
            chain,
            1_795_900_000_000 + i as i64,
            Actor::Participant("2026050100001".into()),
            ev,
        ));
        if puts.len() == 50_000 {
            store.commit(std::mem::take(&mut puts)).expect("commit");
        }
    }
    store.commit(puts).expect("commit");
    pkg
}

/// Writes the [`CHAINS`] session records: the last one running, the others closed, or
/// every one open (`all_open`).
fn set_sessions(dir: &std::path::Path, pkg: &str, all_open: bool) {
    let store = Store::open(&dir.join("data")).expect("open");
    let puts = (0..CHAINS)
        .map(|i| {
            let status = if all_open || i == CHAINS - 1 {
                SessionStatus::Open {
                    opened_ms: 1_795_900_000_000,
                }
            } else {
                SessionStatus::Closed {
                    opened_ms: 1_795_900_000_000,
                    closed_ms: 1_795_905_400_000,
                }
            };
            let s = Session {
                status,
                ..Session::scheduled(format!("{pkg}/S{i}").into(), pkg, &format!("S{i}"))
            };
            Put::json(Table::Sessions, s.key.clone(), &s)
        })
        .collect();
    store.commit(puts).expect("commit");
}

/// Items per attempt in [`add_answers`].
const ITEMS: usize = 60;

/// Adds `rows` answer rows and the finished attempts they belong to (`rows / ITEMS`
/// attempts over the first `CHAINS - 1` sessions), and [`LIVE`] running attempts with
/// [`ITEMS`] answers each in the last session.
fn add_answers(dir: &std::path::Path, pkg: &str, rows: usize) {
    let store = Store::open(&dir.join("data")).expect("open");
    let form: Vec<FormItem> = (0..ITEMS)
        .map(|i| FormItem {
            item: Id::new(&format!("ITEM-{i:03}")),
            options: Ids::new(&["a", "b", "c", "d"].map(Id::new)),
        })
        .collect();
    let mut puts: Vec<Put> = Vec::with_capacity(50_000);
    let closed = rows.div_ceil(ITEMS);
    for p in 0..closed + LIVE {
        let live = p >= closed;
        let session = if live {
            format!("{pkg}/S{}", CHAINS - 1)
        } else {
            format!("{pkg}/S{}", p % (CHAINS - 1))
        };
        let participant = format!("2026{p:09}");
        let key = format!("{session}/{participant}");
        let status = if live {
            AttemptStatus::Running
        } else {
            AttemptStatus::Finished {
                at_ms: 1_795_905_000_000,
                by: FinishedBy::Participant,
                score: Score {
                    total: Hundredths(7500),
                    by_competency: Default::default(),
                    items: form.iter().map(|f| (f.item.clone(), 6000)).collect(),
                    passed: true,
                    predicate: "Baik".into(),
                },
            }
        };
        let n_answers = if live {
            ITEMS
        } else {
            ITEMS.min(rows - p * ITEMS)
        };
        let a = Attempt {
            key: key.clone().into(),
            session: session.into(),
            package: pkg.to_string(),
            participant: participant.into(),
            test: "t1".into(),
            form: form.clone(),
            started_ms: 1_795_900_000_000,
            deadline_ms: 1_795_905_400_000,
            status,
            browser: Some("cookie-id".into()),
            questionnaire: None,
            answers: Default::default(),
        };
        puts.push(Put::json(Table::Attempts, key.clone(), &a));
        for (i, f) in form.iter().enumerate().take(n_answers) {
            let ans = Answer {
                choice: Ids::new(&[Id::new("b")]),
                doubtful: false,
                seq: i as u64 + 1,
                at_ms: 1_795_900_000_000 + i as i64,
            };
            puts.push(Put::json(Table::Answers, join_key(&key, &f.item), &ans));
        }
        if puts.len() >= 50_000 {
            store.commit(std::mem::take(&mut puts)).expect("commit");
        }
    }
    store.commit(puts).expect("commit");
}

/// Best of three `App::open` (ms), and the first.
fn open_times(data: &std::path::Path) -> (f64, f64) {
    // The first open warms the page cache, as a restart after a crash usually finds it
    // warm too; the cold figure is printed as well.
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let app = App::open(data).expect("open");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        app.shutdown();
    }
    (times.iter().cloned().fold(f64::MAX, f64::min), times[0])
}

fn store_mib(data: &std::path::Path) -> f64 {
    std::fs::metadata(data.join(tuk::store::DB_FILE)).map_or(0, |m| m.len()) as f64 / 1_048_576.0
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000, 1_000_000];
    }
    println!(
        "events   shape         answer rows   store MiB   build s   open (ready) ms         tuk verify ms"
    );
    for n in sizes {
        let tmp = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        let pkg = make(tmp.path(), n);
        let build = t.elapsed().as_secs_f64();
        let data = tmp.path().join("data");
        let (best, first) = open_times(&data);
        let store = Store::open(&data).expect("open");
        let t = Instant::now();
        let checks = events::verify_store(&store).expect("verify");
        let verify = t.elapsed().as_secs_f64() * 1000.0;
        assert!(checks.iter().all(|c| c.result.is_ok()));
        drop(store);
        let size = store_mib(&data);
        println!(
            "{n:>8}   events only   {:>11}   {size:>9.1}   {build:>7.1}   {best:>7.1} (first {first:>7.1})   {verify:>12.0}",
            0
        );
        // A realistic history: closed sessions with what their events left, one running.
        let rows = n / 2;
        let t = Instant::now();
        set_sessions(tmp.path(), &pkg, false);
        add_answers(tmp.path(), &pkg, rows);
        let build = build + t.elapsed().as_secs_f64();
        let all_rows = rows + LIVE * ITEMS;
        let size = store_mib(&data);
        let (best, first) = open_times(&data);
        println!(
            "{n:>8}   history       {all_rows:>11}   {size:>9.1}   {build:>7.1}   {best:>7.1} (first {first:>7.1})   {:>12}",
            "-"
        );
        // The worst case: every session open, so every attempt and answer is decoded.
        set_sessions(tmp.path(), &pkg, true);
        let (best, first) = open_times(&data);
        println!(
            "{n:>8}   all open      {all_rows:>11}   {size:>9.1}   {build:>7.1}   {best:>7.1} (first {first:>7.1})   {:>12}",
            "-"
        );
    }
}

//! Start-up time against the number of stored events (issue 12): a data folder whose event
//! log holds 10k, 100k and 1M events (50 session chains plus the TUK chain) is opened the
//! way `tuk serve` opens it (`App::open`: store, state, chain heads, writer), and the time
//! to ready is printed. Whole-chain verification (`tuk verify`) is timed beside it, since
//! start-up no longer does it.
//!
//! Each size is measured twice: with the events alone, and with the attempts and answers
//! those events would have left (one answer row per two events, 60 items per attempt, the
//! attempts spread over the 50 session chains). Start-up still reads every attempt and
//! answer row, those of closed sessions too (issue 12, item 6 is not done for them): the
//! second figure shows what that costs.
//!
//! Measured 2026-11-30 on the 2-core development VM (best of three opens, warm cache):
//! 10k/100k/1M events alone 8.0/8.7/4.1 ms; with 5k/50k/500k answer rows 17/117/989 ms.
//!
//! `cargo bench --bench startup [-- 10000 100000 1000000]`

use std::time::Instant;

use tuk::app::App;
use tuk::exam::events::{self, Actor, Event, Head};
use tuk::exam::form::{FormItem, Id};
use tuk::exam::{Answer, Attempt, AttemptStatus};
use tuk::store::{Put, Store, Table, join_key};

const CHAINS: usize = 50;

fn make(dir: &std::path::Path, n: usize) {
    let data = dir.join("data");
    App::init(&data, None, "benchmark-admin").expect("init");
    let store = Store::open(&data).expect("open");
    let mut heads: Vec<(String, Head)> = (0..CHAINS)
        .map(|i| (format!("bench-pkg/S{i}"), Head::default()))
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
}

/// Items per attempt in [`add_answers`].
const ITEMS: usize = 60;

/// Adds `rows` answer rows and the attempts they belong to (`rows / ITEMS` attempts over
/// the [`CHAINS`] sessions).
fn add_answers(dir: &std::path::Path, rows: usize) {
    let store = Store::open(&dir.join("data")).expect("open");
    let form: Vec<FormItem> = (0..ITEMS)
        .map(|i| FormItem {
            item: Id::new(&format!("ITEM-{i:03}")),
            options: Box::from(["a", "b", "c", "d"].map(Id::new)),
        })
        .collect();
    let mut puts: Vec<Put> = Vec::with_capacity(50_000);
    for p in 0..rows.div_ceil(ITEMS) {
        let session = format!("bench-pkg/S{}", p % CHAINS);
        let participant = format!("2026{p:09}");
        let key = format!("{session}/{participant}");
        let a = Attempt {
            key: key.clone().into(),
            session: session.into(),
            package: "bench-pkg".into(),
            participant: participant.into(),
            test: "t1".into(),
            form: form.clone(),
            started_ms: 1_795_900_000_000,
            deadline_ms: 1_795_905_400_000,
            status: AttemptStatus::Running,
            browser: Some("cookie-id".into()),
            questionnaire: None,
            answers: Default::default(),
        };
        puts.push(Put::json(Table::Attempts, key.clone(), &a));
        for (i, f) in form.iter().enumerate().take(rows - p * ITEMS) {
            let ans = Answer {
                choice: Box::new([Id::new("b")]),
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

fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000, 1_000_000];
    }
    println!("events   answer rows   store MiB   build s   open (ready) ms   tuk verify ms");
    for n in sizes {
        let tmp = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        make(tmp.path(), n);
        let build = t.elapsed().as_secs_f64();
        let data = tmp.path().join("data");
        let size = std::fs::metadata(data.join(tuk::store::DB_FILE)).map_or(0, |m| m.len()) as f64
            / 1_048_576.0;
        let (best, first) = open_times(&data);
        let store = Store::open(&data).expect("open");
        let t = Instant::now();
        let checks = events::verify_store(&store).expect("verify");
        let verify = t.elapsed().as_secs_f64() * 1000.0;
        assert!(checks.iter().all(|c| c.result.is_ok()));
        drop(store);
        println!(
            "{n:>8}   {:>11}   {size:>9.1}   {build:>7.1}   {best:>7.1} (first {first:.1})   {verify:>12.0}",
            0
        );
        // The same events plus the attempts and answers they would have left.
        let rows = n / 2;
        let t = Instant::now();
        add_answers(tmp.path(), rows);
        let build = build + t.elapsed().as_secs_f64();
        let size = std::fs::metadata(data.join(tuk::store::DB_FILE)).map_or(0, |m| m.len()) as f64
            / 1_048_576.0;
        let (best, first) = open_times(&data);
        println!(
            "{n:>8}   {rows:>11}   {size:>9.1}   {build:>7.1}   {best:>7.1} (first {first:.1})   {:>12}",
            "-"
        );
    }
}

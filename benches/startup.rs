//! Start-up time against the number of stored events (issue 12): a data folder whose event
//! log holds 10k, 100k and 1M events (50 session chains plus the TUK chain) is opened the
//! way `tuk serve` opens it (`App::open`: store, state, chain heads, writer), and the time
//! to ready is printed. Whole-chain verification (`tuk verify`) is timed beside it, since
//! start-up no longer does it.
//!
//! `cargo bench --bench startup [-- 10000 100000 1000000]`

use std::time::Instant;

use tuk::app::App;
use tuk::exam::events::{self, Actor, Event, Head};
use tuk::store::{Put, Store};

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
            Actor::Participant("2026050100001".to_string()),
            ev,
        ));
        if puts.len() == 50_000 {
            store.commit(std::mem::take(&mut puts)).expect("commit");
        }
    }
    store.commit(puts).expect("commit");
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000, 1_000_000];
    }
    println!("events   store MiB   build s   open (ready) ms   tuk verify ms");
    for n in sizes {
        let tmp = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        make(tmp.path(), n);
        let build = t.elapsed().as_secs_f64();
        let data = tmp.path().join("data");
        let size = std::fs::metadata(data.join(tuk::store::DB_FILE)).map_or(0, |m| m.len()) as f64
            / 1_048_576.0;
        // Best of three opens (the first warms the page cache, as a restart after a crash
        // usually finds it warm too; the cold figure is printed as well).
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let app = App::open(&data).expect("open");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            app.shutdown();
        }
        let store = Store::open(&data).expect("open");
        let t = Instant::now();
        let checks = events::verify_store(&store).expect("verify");
        let verify = t.elapsed().as_secs_f64() * 1000.0;
        assert!(checks.iter().all(|c| c.result.is_ok()));
        let best = times.iter().cloned().fold(f64::MAX, f64::min);
        println!(
            "{n:>8}   {size:>9.1}   {build:>7.1}   {best:>7.1} (first {:.1})   {verify:>12.0}",
            times[0]
        );
    }
}

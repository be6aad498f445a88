//! The power-cut test (issue 12): the real `tuk serve` keeps its data folder on a FUSE
//! filesystem that holds written-but-unsynced data only in memory
//! (`tests/common/powerfs.rs`); participants on 127.0.0.1 save answers over HTTP; at a
//! random moment the power is cut (the layer stops at once and throws away everything
//! not fsynced, the server is killed), the filesystem is mounted again and the server
//! restarted on the same folder. After every cut: the store opens, `tuk verify` passes, and
//! every answer the server acknowledged (200 with its seq) is in the store with that seq
//! (or a newer one). At the end the restarted server serves every acknowledged answer.
//!
//! Cut times come from a seeded generator; the seed is printed (`TUK_POWERCUT_SEED=N`
//! repeats a run). `TUK_POWERCUT_CUTS=N` runs a longer soak (default 50). The test fails,
//! with the reason, when FUSE cannot be mounted (it never skips).
//!
//! `broken_fsync_loses_acknowledged_answers` and
//! `one_flush_late_loses_the_last_acknowledged_answers` (ignored: run them by hand) make
//! fsync lie inside the layer (a no-op; one flush late) and show that the same checks then
//! find lost answers: the test can see a durability bug. See docs/durability.md.

mod common;
#[path = "common/powerfs.rs"]
mod powerfs;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Prepared, Server, bin};
use powerfs::{FsyncMode, Mounted, PowerDisk};
use serde_json::{Value, json};

/// Participants saving at once.
const PARTICIPANTS: usize = 12;
/// Whole-test bound: the cuts stop (and the test fails) past this, or past 3 s per cut for
/// a longer soak. 50 cuts take about 45 s on 2 cores.
const TIME_LIMIT: Duration = Duration::from_secs(240);
/// How long one request may take before the participant gives up on it (not acknowledged).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// splitmix64: a small seeded generator (cut times and choices; nothing secret).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One participant's form as the API shows it: (item id, option ids).
type Form = Vec<(String, Vec<String>)>;

/// The latest acknowledged save of every (participant, item): (choice, seq).
type Acked = BTreeMap<(String, String), (Vec<String>, u64)>;

struct Participant {
    number: String,
    client: Client,
    form: Form,
    /// The next seq to send: always above every seq sent before, so a save that was sent
    /// but not acknowledged (and may or may not be stored) never makes a later one stale.
    next_seq: u64,
}

/// What a run saw.
#[derive(Debug, Default)]
struct Report {
    cuts: usize,
    acked_saves: u64,
    refused: u64,
    failed: u64,
    /// (participant, item) pairs whose latest acknowledged answer was checked, summed
    /// over every check.
    checked: u64,
    lost: Vec<String>,
    verify_failures: Vec<String>,
}

/// Cuts the power, kills the server, unmounts (unsynced data is gone) and mounts again.
/// The tests of this file run one at a time: a server spawned by one test (fork, then exec)
/// briefly holds copies of the other test's open files on its FUSE mount, and the kernel
/// then refuses that unmount as busy.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn power_cycle(srv: &mut Server, disk: &PowerDisk, mounted: Mounted) -> Mounted {
    mounted.cut();
    srv.kill9();
    let mp = mounted.mountpoint.clone();
    mounted
        .unmount()
        .unwrap_or_else(|e| panic!("after a cut: {e}"));
    disk.mount(&mp)
        .unwrap_or_else(|e| panic!("remount after a cut: {e}"))
}

/// `tuk verify` on the data folder (server stopped): every chain re-checked.
fn verify(data: &Path) -> Result<(), String> {
    let out = Command::new(bin())
        .args(["verify", "--config", "none", "--data"])
        .arg(data)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Reads every stored answer through the crate's public store API and compares it with
/// what was acknowledged. The store must open.
fn check_store(data: &Path, package_session: &str, acked: &Acked, report: &mut Report) {
    let store = tuk::store::Store::open(data)
        .unwrap_or_else(|e| panic!("after cut {}: the store does not open: {e:#}", report.cuts));
    let mut stored: BTreeMap<(String, String), (Vec<String>, u64)> = BTreeMap::new();
    for (k, v) in store
        .scan(tuk::store::Table::Answers)
        .expect("scan answers")
    {
        let Some((akey, item)) = k.split_once('\u{1f}') else {
            continue;
        };
        let Some(number) = akey.strip_prefix(&format!("{package_session}/")) else {
            continue;
        };
        let a: tuk::exam::Answer = serde_json::from_slice(&v).expect("stored answer");
        stored.insert(
            (number.to_string(), item.to_string()),
            (a.choice_strings(), a.seq),
        );
    }
    drop(store);
    for (key, (choice, seq)) in acked {
        report.checked += 1;
        match stored.get(key) {
            Some((_, s)) if s > seq => {}
            Some((c, s)) if s == seq && {
                let mut want = choice.clone();
                want.sort();
                *c == want
            } => {}
            other => report.lost.push(format!(
                "cut {}: participant {} item {}: acknowledged {choice:?} seq {seq}, stored {other:?}",
                report.cuts, key.0, key.1
            )),
        }
    }
}

/// Logs in and starts; reads the form (item ids, option ids) through the API.
async fn join(client: Client, number: &str, password: &str, token: &str) -> Participant {
    client
        .post(
            "/api/v1/login",
            &json!({"participant": number, "password": password}),
        )
        .await
        .assert_ok();
    client
        .post("/api/v1/start", &json!({"token": token}))
        .await
        .assert_ok();
    let state = client.get("/api/v1/state").await.assert_ok();
    let total = state["grid"].as_array().map_or(0, Vec::len);
    assert!(total > 0, "no items: {state}");
    let mut form = Vec::new();
    for n in 1..=total {
        let v = client.get(&format!("/api/v1/items/{n}")).await.assert_ok();
        let opts = v["options"]
            .as_array()
            .map(|o| {
                o.iter()
                    .filter_map(|x| x["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        form.push((v["id"].as_str().unwrap_or_default().to_string(), opts));
    }
    Participant {
        number: number.to_string(),
        client,
        form,
        next_seq: 1,
    }
}

/// Saves answers until `stop`, recording what the server acknowledged. Returns when a
/// request fails after `stop` (the server is gone) or at once when stopped.
async fn save_loop(
    mut p: Participant,
    seed: u64,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
    counts: Arc<Mutex<(u64, u64, u64)>>,
    lost: Arc<Mutex<Vec<String>>>,
) -> Participant {
    let mut rng = Rng(seed);
    while !stop.load(Ordering::SeqCst) {
        let i = rng.below(p.form.len() as u64) as usize;
        let (item, opts) = &p.form[i];
        let choice: Vec<String> = if opts.is_empty() || rng.below(10) == 0 {
            Vec::new()
        } else {
            vec![opts[rng.below(opts.len() as u64) as usize].clone()]
        };
        let seq = p.next_seq;
        p.next_seq += 1;
        let body = json!({"choice": choice, "doubtful": false, "seq": seq}).to_string();
        let r = p
            .client
            .try_request(
                "PUT",
                &format!("/api/v1/answers/{item}"),
                &[("content-type", "application/json")],
                body,
                REQUEST_TIMEOUT,
            )
            .await;
        match r {
            Ok(r) if r.status == 200 => {
                let v: Value = r.json();
                assert_eq!(v["seq"], seq, "acknowledged with another seq: {v}");
                let mut a = acked.lock().unwrap();
                let e = a
                    .entry((p.number.clone(), item.clone()))
                    .or_insert((Vec::new(), 0));
                if seq > e.1 {
                    *e = (choice, seq);
                }
                counts.lock().unwrap().0 += 1;
            }
            Ok(r) => {
                // Refused (e.g. 503 while the store is failing): not acknowledged.
                counts.lock().unwrap().1 += 1;
                if r.status == 401 {
                    // The acknowledged login (or start) is gone: a loss of its own.
                    lost.lock().unwrap().push(format!(
                        "participant {}: logged out by a cut ({})",
                        p.number,
                        r.text()
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                counts.lock().unwrap().2 += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    p
}

/// Runs `cuts` power cuts under load, with fsync in the layer doing `fsync` once the
/// participants have logged in and started.
fn run(cuts: usize, fsync: FsyncMode) -> Report {
    let broken_fsync = fsync != FsyncMode::Honest;
    let started = Instant::now();
    let seed: u64 = std::env::var("TUK_POWERCUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("power-cut test: seed {seed} (repeat with TUK_POWERCUT_SEED={seed}), {cuts} cuts");
    let mut rng = Rng(seed);

    // A data folder made by the CLI on the real disk, then copied onto the backing folder
    // (durable from the start).
    let session = "demo-kk-a-2026/S1";
    let prepared = Prepared::new(|_| {}, session);
    let dirs = tempfile::Builder::new()
        .prefix("tuk-powercut-")
        .tempdir()
        .expect("tempdir");
    let backing = dirs.path().join("backing");
    let mnt = dirs.path().join("mnt");
    std::fs::create_dir_all(&backing).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    for e in std::fs::read_dir(&prepared.data).unwrap() {
        let e = e.unwrap();
        assert!(e.file_type().unwrap().is_file(), "{:?}", e.path());
        std::fs::copy(e.path(), backing.join(e.file_name())).unwrap();
    }
    let disk = PowerDisk::new(&backing);
    let mut mounted = disk.mount(&mnt).unwrap_or_else(|e| panic!("{e}"));
    let logins = prepared.logins.clone();
    let token = prepared.token.clone();
    let prepared = Prepared {
        data: mnt.clone(),
        ..prepared
    };
    // Participants save much faster than people: lift the per-attempt save limit.
    let mut srv = Server::serve_with_env(
        prepared,
        &[("TUK_SAVE_BURST", "100000"), ("TUK_SAVE_RATE", "100000")],
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut people: Vec<Participant> = rt.block_on(async {
        let mut v = Vec::new();
        for (i, (number, password)) in logins.iter().take(PARTICIPANTS).enumerate() {
            // Every participant from its own address, like a lab PC.
            let c =
                Client::new(srv.addr()).bind(IpAddr::V4(Ipv4Addr::new(127, 0, 2, (i + 1) as u8)));
            v.push(join(c, number, password, &token).await);
        }
        v
    });
    assert_eq!(people.len(), PARTICIPANTS, "the demo roster is too small");
    // The broken disk only from here: logins and starts are durable, the answers are not.
    if broken_fsync {
        mounted.set_fsync(fsync);
    }

    let acked: Arc<Mutex<Acked>> = Arc::default();
    let counts: Arc<Mutex<(u64, u64, u64)>> = Arc::default();
    let lost_logins: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut report = Report::default();
    let limit = TIME_LIMIT.max(Duration::from_secs(3 * cuts as u64));
    while report.cuts < cuts {
        assert!(
            started.elapsed() < limit,
            "only {} of {cuts} cuts within {limit:?}",
            report.cuts
        );
        // Load, then a cut at a random moment: mostly under load, sometimes right after
        // the start (while the server writes its start-up events and downtime credit).
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = people
            .drain(..)
            .map(|p| {
                rt.spawn(save_loop(
                    p,
                    rng.next(),
                    stop.clone(),
                    acked.clone(),
                    counts.clone(),
                    lost_logins.clone(),
                ))
            })
            .collect();
        let delay = if rng.below(10) == 0 {
            rng.below(40)
        } else {
            50 + rng.below(600)
        };
        std::thread::sleep(Duration::from_millis(delay));
        mounted.cut();
        stop.store(true, Ordering::SeqCst);
        mounted = power_cycle(&mut srv, &disk, mounted);
        if broken_fsync {
            mounted.set_fsync(fsync);
        }
        people = rt.block_on(async {
            let mut v = Vec::new();
            for t in tasks {
                v.push(t.await.expect("participant task"));
            }
            v
        });
        report.cuts += 1;

        if let Err(e) = verify(&mnt) {
            report
                .verify_failures
                .push(format!("cut {}: {e}", report.cuts));
        }
        check_store(&mnt, session, &acked.lock().unwrap(), &mut report);
        report.lost.append(&mut lost_logins.lock().unwrap());
        if !broken_fsync {
            assert!(
                report.lost.is_empty() && report.verify_failures.is_empty(),
                "after cut {} (seed {seed}, delay {delay} ms): lost {:?}, verify {:?}",
                report.cuts,
                report.lost,
                report.verify_failures
            );
        }
        srv.restart();
    }

    // The restarted server serves every acknowledged answer.
    rt.block_on(async {
        let a = acked.lock().unwrap().clone();
        for p in &people {
            for (n, (item, _)) in p.form.iter().enumerate() {
                let Some((choice, seq)) = a.get(&(p.number.clone(), item.clone())) else {
                    continue;
                };
                let v = p
                    .client
                    .get(&format!("/api/v1/items/{}", n + 1))
                    .await
                    .assert_ok();
                let mut want = choice.clone();
                want.sort();
                let got_seq = v["seq"].as_u64().unwrap_or(0);
                let got: Vec<String> = serde_json::from_value(v["choice"].clone()).unwrap_or_default();
                report.checked += 1;
                if got_seq < *seq || (got_seq == *seq && got != want) {
                    report.lost.push(format!(
                        "API after the last restart: participant {} item {item}: acknowledged {choice:?} seq {seq}, served {got:?} seq {got_seq}",
                        p.number
                    ));
                }
            }
        }
    });
    srv.kill9();
    drop(mounted);
    let (ok, refused, failed) = *counts.lock().unwrap();
    report.acked_saves = ok;
    report.refused = refused;
    report.failed = failed;
    let s = disk.stats();
    eprintln!(
        "power-cut test: {} cuts in {:.1} s, {} saves acknowledged ({} refused, {} cut off), \
         {} latest answers checked, {} lost, verify failures {}; layer: {} writes ({} KiB), \
         {} fsyncs, {} unsynced pages and {} unsynced sizes thrown away by {} cuts that \
         landed inside a write",
        report.cuts,
        started.elapsed().as_secs_f64(),
        report.acked_saves,
        report.refused,
        report.failed,
        report.checked,
        report.lost.len(),
        report.verify_failures.len(),
        s.writes,
        s.bytes_written / 1024,
        s.syncs,
        s.pages_lost,
        s.sizes_lost,
        s.cuts_losing_data,
    );
    assert!(
        s.pages_lost > 0,
        "no cut threw away unsynced data: the cuts did not test anything"
    );
    drop(srv);
    drop(dirs);
    report
}

#[test]
fn acknowledged_answers_survive_power_cuts() {
    let _serial = one_at_a_time();
    let cuts = std::env::var("TUK_POWERCUT_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let r = run(cuts, FsyncMode::Honest);
    assert!(r.cuts >= cuts);
    assert!(r.acked_saves > 0, "no save was acknowledged: {r:?}");
    assert!(r.lost.is_empty(), "{:?}", r.lost);
    assert!(r.verify_failures.is_empty(), "{:?}", r.verify_failures);
}

/// The proof that the test above can fail: with fsync turned into a no-op inside the layer
/// (a disk that lies), acknowledged answers are lost at the cuts and the same checks see it.
/// Ignored in CI (it expects loss); run by hand:
/// `cargo test --test powercut -- --ignored --nocapture`.
#[test]
#[ignore = "proof that the check can fail: fsync is made a no-op, so answers ARE lost; run by hand with --ignored --nocapture"]
fn broken_fsync_loses_acknowledged_answers() {
    let _serial = one_at_a_time();
    let r = run(3, FsyncMode::NoOp);
    eprintln!(
        "with fsync a no-op: {} of {} checked answers lost, e.g. {:?}",
        r.lost.len(),
        r.checked,
        r.lost.first()
    );
    assert!(
        !r.lost.is_empty(),
        "no acknowledged answer was lost although fsync did nothing: the power-cut test \
         cannot see a durability bug"
    );
}

/// The layer itself: what was synced survives a cut, nothing else does (contents, sizes,
/// truncations); names are durable at once; after a cut every operation fails until the
/// remount.
#[test]
fn the_layer_keeps_only_what_was_synced() {
    let _serial = one_at_a_time();
    use std::fs::{self, File, OpenOptions};
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    let dirs = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dirs.path().join("backing"), dirs.path().join("mnt"));
    fs::create_dir_all(&backing).unwrap();
    fs::create_dir_all(&mnt).unwrap();
    let disk = PowerDisk::new(&backing);
    let m = disk.mount(&mnt).unwrap_or_else(|e| panic!("{e}"));
    // a: synced, then appended and closed without a sync.
    let mut a = File::create(mnt.join("a")).unwrap();
    a.write_all(b"synced").unwrap();
    a.sync_data().unwrap();
    a.write_all(b" then lost").unwrap();
    drop(a);
    assert_eq!(fs::read(mnt.join("a")).unwrap(), b"synced then lost");
    // b: created and written, never synced.
    fs::write(mnt.join("b"), vec![7u8; 10_000]).unwrap();
    // c: 10,000 bytes synced, then cut to 10 without a sync.
    let c = File::create(mnt.join("c")).unwrap();
    c.write_all_at(&[1u8; 10_000], 0).unwrap();
    c.sync_all().unwrap();
    c.set_len(10).unwrap();
    drop(c);
    // d: the "write a temporary file, rename it" pattern without a sync.
    fs::write(mnt.join("d.tmp"), b"new").unwrap();
    fs::rename(mnt.join("d.tmp"), mnt.join("d")).unwrap();

    m.cut();
    assert!(
        fs::read(mnt.join("a")).is_err(),
        "after a cut nothing answers"
    );
    m.unmount().unwrap();
    let m = disk.mount(&mnt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fs::read(mnt.join("a")).unwrap(), b"synced");
    assert_eq!(
        fs::read(mnt.join("b")).unwrap(),
        b"",
        "the name is durable, the data not"
    );
    assert_eq!(fs::read(mnt.join("c")).unwrap(), vec![1u8; 10_000]);
    assert_eq!(fs::read(mnt.join("d")).unwrap(), b"");
    assert!(!mnt.join("d.tmp").exists());

    // Cut, re-extend and write past the old end, then sync: the gap reads as zeros, also
    // after the next cut.
    let c = OpenOptions::new()
        .read(true)
        .write(true)
        .open(mnt.join("c"))
        .unwrap();
    c.set_len(3).unwrap();
    c.set_len(5_000).unwrap();
    c.write_all_at(b"x", 4_096).unwrap();
    c.sync_data().unwrap();
    drop(c);
    m.unmount().unwrap();
    let m = disk.mount(&mnt).unwrap_or_else(|e| panic!("{e}"));
    let got = fs::read(mnt.join("c")).unwrap();
    let mut want = vec![0u8; 5_000];
    want[..3].fill(1);
    want[4_096] = b'x';
    assert_eq!(got, want);
    m.unmount().unwrap();
    let s = disk.stats();
    assert!(s.pages_lost >= 2 && s.cuts_losing_data == 1, "{s:?}");
}

/// Subtler: fsync reports success at once but makes the file durable only as it was at the
/// previous fsync (a write cache one flush behind). Only the last commit before each cut is
/// lost, and the checks still see it. Ignored in CI (it expects loss); run by hand.
#[test]
#[ignore = "proof that the check can fail: fsync lands one flush late, so the last answers ARE lost; run by hand with --ignored --nocapture"]
fn one_flush_late_loses_the_last_acknowledged_answers() {
    let _serial = one_at_a_time();
    let r = run(5, FsyncMode::OneLate);
    eprintln!(
        "with fsync one flush late: {} of {} checked answers lost, e.g. {:?}",
        r.lost.len(),
        r.checked,
        r.lost.first()
    );
    assert!(
        !r.lost.is_empty(),
        "no acknowledged answer was lost although every flush came one commit late"
    );
}

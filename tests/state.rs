//! The edges of a TUK data folder (issue 12): a store from the previous release opens and
//! keeps its answers, a store from a newer tuk or a folder with a key but no store is
//! refused with the reason and the fix, and a partial file left by an interrupted write is
//! removed by the next writer. Time rules (clock steps, the start-up check, downtime
//! credit) are tested on a real store in `src/app.rs`; see docs/time.md.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, repo, tuk};
use tuk::store::{Put, SCHEMA_VERSION, Store, Table};

/// A copy of the data folder that the previous release (0.1.0, before schema versions)
/// wrote: demo package imported, S1 open, participant 2026050100001 started and answered
/// KKA-P03 = benar (ragu-ragu) with seq 1.
fn previous_release_folder() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let fixture = repo().join("tests/fixtures/store-0.1.0");
    for f in ["tuk.redb", "tuk.pub"] {
        fs::copy(fixture.join(f), data.join(f)).unwrap();
    }
    fs::copy(
        repo().join("exam-packages/demo-keys/tuk.key"),
        data.join("tuk.key"),
    )
    .unwrap();
    (tmp, data)
}

fn run(args: &[&str]) -> (bool, String) {
    let o = Command::new(bin()).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

#[test]
fn a_store_from_the_previous_release_opens_with_its_answers() {
    let (_tmp, data) = previous_release_folder();
    {
        let store = Store::open(&data).unwrap();
        assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
    }
    let app = tuk::app::App::open(&data).unwrap();
    {
        let ex = app.read();
        let a = &ex.attempts["demo-kk-a-2026/S1/2026050100001"];
        let ans = a
            .answers
            .get("KKA-P03")
            .expect("the saved answer to KKA-P03");
        assert_eq!(ans.choice_strings(), vec!["benar".to_string()]);
        assert!(ans.doubtful);
        assert_eq!(ans.seq, 1);
    }
    app.shutdown();
    drop(app);
    // The CLI reads it too: the login cards' passwords come back.
    let d = data.display().to_string();
    let out = tuk(&["session", "passwords", "demo-kk-a-2026", "--data", &d]);
    assert!(out.contains("login: 2026050100001 "), "{out}");
}

#[test]
fn a_store_from_a_newer_tuk_is_refused_with_the_fix() {
    let (_tmp, data) = previous_release_folder();
    {
        let store = Store::open(&data).unwrap();
        store
            .commit(vec![Put::bytes(
                Table::Meta,
                "schema_version",
                b"99".to_vec(),
            )])
            .unwrap();
    }
    let d = data.display().to_string();
    let (ok, text) = run(&["serve", "--data", &d, "--listen", "127.0.0.1:0"]);
    assert!(!ok, "{text}");
    assert!(text.contains("written by a newer tuk"), "{text}");
    assert!(text.contains("store schema 99"), "{text}");
}

#[test]
fn a_folder_with_a_key_but_no_store_is_refused() {
    let (_tmp, data) = previous_release_folder();
    fs::remove_file(data.join("tuk.redb")).unwrap();
    let d = data.display().to_string();
    let (ok, text) = run(&["serve", "--data", &d, "--listen", "127.0.0.1:0"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("has the TUK key (tuk.key) but no store"),
        "{text}"
    );
    assert!(text.contains("tuk restore"), "{text}");
    assert!(!data.join("tuk.redb").exists(), "no empty store was made");
}

#[test]
fn a_partial_backup_left_by_a_killed_run_is_removed_by_the_next_one() {
    let (tmp, data) = previous_release_folder();
    let out_dir = tmp.path().join("usb");
    fs::create_dir_all(&out_dir).unwrap();
    // What `kill -9` during a backup and during a seal leave behind.
    let stale = [
        out_dir.join("tuk-backup-20261129-080000.tar.partial"),
        out_dir.join(".tuk-partial-Ab12Cd"),
    ];
    for s in &stale {
        fs::write(s, vec![0u8; 4096]).unwrap();
    }
    let d = data.display().to_string();
    let file = out_dir.join("backup.tar");
    let f = file.display().to_string();
    tuk(&["backup", "--data", &d, "--out", &f]);
    assert!(file.is_file());
    for s in &stale {
        assert!(!s.exists(), "{} was left behind", s.display());
    }
    assert_no_partials(&out_dir);
}

fn assert_no_partials(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("partial"), "a partial file is left: {name}");
    }
}

/// A 2 s outage (kill -9, restart) is credited to the running attempt: the remaining time
/// drops by at most the time the server was really up in between.
#[tokio::test(flavor = "multi_thread")]
async fn a_two_second_outage_is_credited() {
    let mut srv = common::Server::demo();
    let (number, password) = srv.logins[2].clone();
    let c = srv.client();
    c.post(
        "/api/v1/login",
        &serde_json::json!({"participant": number, "password": password}),
    )
    .await
    .assert_ok();
    c.post("/api/v1/start", &serde_json::json!({"token": srv.token}))
        .await
        .assert_ok();
    let remaining = |v: serde_json::Value| v["remaining_ms"].as_i64().unwrap();
    let r0 = remaining(c.get("/api/v1/state").await.assert_ok());
    let t0 = std::time::Instant::now();
    tokio::task::block_in_place(|| {
        srv.kill9();
        std::thread::sleep(std::time::Duration::from_millis(2_000));
        srv.restart();
    });
    let out = srv.stdout();
    assert!(out.contains("the server was down for"), "{out}");
    let r1 = remaining(c.get("/api/v1/state").await.assert_ok());
    let elapsed = t0.elapsed().as_millis() as i64;
    eprintln!("remaining {r0} → {r1} ms over {elapsed} ms with a 2 s outage");
    // Uncredited, the remaining time would have dropped by the whole elapsed time (> 2 s);
    // credited, it drops only by the time the server was up (start-up, the alive mark's
    // 0.5 s period and the requests).
    assert!(
        r0 - r1 < elapsed - 1_500,
        "the outage was not credited: {r0} → {r1} over {elapsed} ms"
    );
    assert!(
        r0 - r1 > -1_000,
        "credited more than the outage: {r0} → {r1}"
    );
}

/// `tuk verify` re-checks every chain from its first event, and names a changed one.
#[test]
fn verify_checks_every_chain_and_names_a_changed_one() {
    let (_tmp, data) = previous_release_folder();
    let d = data.display().to_string();
    let out = tuk(&["verify", "--config", "none", "--data", &d]);
    assert!(out.contains("OK    demo-kk-a-2026/S1:"), "{out}");
    assert!(out.contains("OK    _tuk:"), "{out}");
    // Change one stored event in the middle of the chain (its time) as a tamperer would.
    // (The last event of a chain is covered by the sealed bundle's signature instead.)
    {
        let store = Store::open(&data).unwrap();
        let key = tuk::exam::events::event_key("demo-kk-a-2026/S1", 1);
        let bytes = store.get(Table::Events, &key).unwrap().expect("event 1");
        let mut ev: tuk::exam::events::Stored = serde_json::from_slice(&bytes).unwrap();
        ev.at_ms -= 60_000;
        store
            .commit(vec![Put::bytes(
                Table::Events,
                key,
                serde_json::to_vec(&ev).unwrap(),
            )])
            .unwrap();
    }
    let (ok, text) = run(&["verify", "--config", "none", "--data", &d]);
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL  demo-kk-a-2026/S1:"), "{text}");
    assert!(text.contains("do not hold"), "{text}");
}

/// Start-up no longer decodes closed sessions' answers (issue 12 item 6): `tuk verify`
/// does, and names the session whose stored attempts or answers are damaged.
#[test]
fn verify_names_a_session_whose_stored_answers_are_damaged() {
    let (_tmp, data) = previous_release_folder();
    let d = data.display().to_string();
    {
        let store = Store::open(&data).unwrap();
        let key = "demo-kk-a-2026/S1/2026050100001\u{1f}X-ITEM";
        store
            .commit(vec![Put::bytes(Table::Answers, key, b"{not json".to_vec())])
            .unwrap();
    }
    let (ok, text) = run(&["verify", "--config", "none", "--data", &d]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL  attempts of demo-kk-a-2026/S1:") && text.contains("damaged record"),
        "{text}"
    );
    assert!(text.contains("restore the last backup"), "{text}");
}

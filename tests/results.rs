//! Sealed results: seal at the TUK → upload over real TLS → receipt → import at the UPT →
//! reports; tampering, unknown keys and packages, replays; the statistics against SciPy.
//!
//! Most tests build a TUK data folder with the library (the demo package, participants
//! answering through the exam rules on the writer, as the server would), which is fast;
//! `end_to_end_demo_40_participants` runs the real `tuk demo` server and the participant
//! API. The UPT receiver is always the real `tuk upt serve` child process on 127.0.0.1 with
//! a certificate made by rcgen.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::json;

use tuk::app::App;
use tuk::exam::{CookieId, Exam, ParticipantNo, SessionKey, score};
use tuk::keys::{PublicKey, SecretKey};
use tuk::package::model::{Item, ItemKind};
use tuk::seal::receipt::SignedReceipt;
use tuk::upt::Upt;

const PKG: &str = "demo-kk-a-2026";
const S1: &str = "demo-kk-a-2026/S1";
const S2: &str = "demo-kk-a-2026/S2";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
fn demo(p: &str) -> PathBuf {
    repo().join("exam-packages").join(p)
}

/// Runs `tuk`; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tuk"))
        .args(args)
        .output()
        .expect("run tuk");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn ok(args: &[&str]) -> String {
    let (good, out, err) = run(args);
    assert!(good, "`tuk {}` failed\n{out}\n{err}", args.join(" "));
    out
}

#[track_caller]
fn fails(args: &[&str]) -> String {
    let (good, out, err) = run(args);
    assert!(!good, "`tuk {}` should fail\n{out}\n{err}", args.join(" "));
    assert!(err.starts_with("tuk: error: "), "{err}");
    err
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

// ---------------------------------------------------------------------------------------
// A TUK with results, made through the library
// ---------------------------------------------------------------------------------------

/// Whether participant `i` answers the item at position `j` right: a fixed pattern with a
/// spread of abilities, so scores, difficulties and correlations are not degenerate.
fn right(i: usize, j: usize) -> bool {
    let ability = 25 + (i * 37) % 70;
    (i * 7 + j * 13 + (i * j) % 11) % 100 < ability
}

fn choice_for(item: &Item, good: bool) -> Vec<String> {
    let mut c = if good {
        item.key.clone()
    } else {
        item.options
            .iter()
            .find(|o| !item.key.contains(&o.id))
            .map(|o| vec![o.id.clone()])
            .unwrap_or_default()
    };
    c.sort();
    c
}

/// Logs in, starts, answers every item (skipping every 9th), finishes and fills the
/// questionnaire, all as the server does on its writer thread. Returns the expected
/// answers (item → choice) for checking.
fn take_test(
    app: &App,
    skey: &str,
    number: &str,
    i: usize,
    finish: bool,
) -> HashMap<String, Vec<String>> {
    let skey = SessionKey::new(skey);
    let number = ParticipantNo::new(number);
    app.writer
        .run_blocking(move |ex: &mut Exam| {
            let now = tuk::clock::now_ms();
            let cookie = CookieId::new(format!("cookie-{number}"));
            let ip = format!("10.0.0.{}", 10 + i % 40);
            let mut puts = Vec::new();
            let (p, r) = ex.login(&number, &cookie, None, &ip, now);
            puts.extend(p);
            r.expect("login");
            let token = ex.sessions[&skey].token.as_ref().unwrap().current.clone();
            let (p, r) = ex.start(&cookie, &token, &ip, now);
            puts.extend(p);
            r.expect("start");
            let a = ex.attempt_of(&cookie).unwrap().into_owned();
            let bank = ex.banks[PKG].clone();
            let mut given = HashMap::new();
            for (j, f) in a.form.iter().enumerate() {
                if j % 9 == 4 {
                    continue;
                }
                let item = bank.item(&f.item).unwrap();
                let c = choice_for(item, right(i, j));
                // A change of mind first, then the final answer.
                let (p, r) = ex.save(
                    &cookie,
                    &f.item,
                    choice_for(item, !right(i, j)),
                    true,
                    1,
                    now,
                );
                puts.extend(p);
                r.expect("save");
                let (p, r) = ex.save(&cookie, &f.item, c.clone(), j % 10 == 0, 2, now + 1);
                puts.extend(p);
                r.expect("save");
                given.insert(f.item.to_string(), c);
            }
            if finish {
                let (p, r) = ex.finish_by_participant(&cookie, now + 2);
                puts.extend(p);
                r.expect("finish");
                let labels = ["Sangat Baik", "Baik", "Cukup", "Kurang", "Sangat Kurang"];
                let mut q = BTreeMap::new();
                for (k, e) in ["e1", "e2", "e3", "e4", "e5", "e6"].iter().enumerate() {
                    q.insert(e.to_string(), labels[(i + k) % 5].to_string());
                }
                q.insert("o1".into(), format!("Materi bagus {i}"));
                let (p, r) = ex.questionnaire(&cookie, q, now + 3);
                puts.extend(p);
                r.expect("questionnaire");
            }
            (puts, given)
        })
        .expect("writer")
}

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    app: Option<App>,
    /// Participant → answers given.
    given: BTreeMap<String, HashMap<String, Vec<String>>>,
}

impl Fixture {
    /// The demo package at a TUK with the demo keys; `sessions` opened and taken by their
    /// participants (the 6th of each session absent, and with `leave_running`, the last one
    /// still working).
    fn new(sessions: &[&str], leave_running: bool) -> Fixture {
        Fixture::with_limit(sessions, leave_running, usize::MAX)
    }

    /// Only the first `limit` participants of each session take the test.
    fn with_limit(sessions: &[&str], leave_running: bool, limit: usize) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("tuk-res-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("tuk");
        App::init(
            &data,
            Some(SecretKey::read(&demo("demo-keys/tuk.key")).unwrap()),
            "admin-password",
        )
        .unwrap();
        let app = App::open(&data).unwrap();
        app.trust_add(&PublicKey::read(&demo("demo-keys/upt.pub")).unwrap())
            .unwrap();
        app.import(&std::fs::read(demo("demo.tukpkg")).unwrap(), "test")
            .unwrap();
        let mut given = BTreeMap::new();
        let mut i = 0;
        for skey in sessions {
            app.open_session(skey, None, tuk::app::TOKEN_ROTATE_S, "test")
                .unwrap()
                .unwrap();
            let sid = skey.split('/').nth(1).unwrap().to_string();
            let numbers: Vec<String> = app.read().catalog[PKG]
                .roster
                .iter()
                .filter(|p| p.session == sid)
                .map(|p| p.participant.to_string())
                .collect();
            let last = numbers.len() - 1;
            for (k, n) in numbers.iter().enumerate() {
                i += 1;
                if k == 5 || k >= limit {
                    continue; // absent
                }
                let finish = !(leave_running && k == last);
                given.insert(n.clone(), take_test(&app, skey, n, i, finish));
            }
        }
        Fixture {
            _dir: dir,
            data,
            app: Some(app),
            given,
        }
    }

    fn app(&self) -> &App {
        self.app.as_ref().unwrap()
    }

    fn close(&self, skey: &str) {
        let k = skey.to_string();
        self.app()
            .writer
            .run_blocking(move |ex: &mut Exam| {
                match ex.close_session(
                    &SessionKey::new(k),
                    true,
                    "staff:proctor",
                    tuk::clock::now_ms(),
                ) {
                    Ok(p) => (p, ()),
                    Err(r) => panic!("close: {r:?}"),
                }
            })
            .unwrap();
    }

    /// Stops the writer so the CLI can open the data folder.
    fn stop(&mut self) {
        if let Some(a) = self.app.take() {
            a.shutdown();
        }
    }
}

/// A UPT data folder (library) that trusts the demo TUK and knows the demo package.
fn upt_folder(root: &Path) -> PathBuf {
    common::receiver::demo_upt(root)
}

// ---------------------------------------------------------------------------------------
// Uploading to the UPT receiver (`common::upt_receiver`: `tuk upt serve` with an rcgen certificate)
// ---------------------------------------------------------------------------------------

impl common::UptReceiver {
    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
    fn upload(&self, file: &Path, data: Option<&Path>) -> (bool, String, String) {
        let mut args = vec![
            "upload".to_string(),
            s(file),
            "--to".into(),
            self.url(),
            "--upt-cert".into(),
            s(&self.cert),
            "--attempts".into(),
            "2".into(),
        ];
        // The upload is signed with the TUK's key: the data folder's, else the demo TUK's.
        match data {
            Some(d) => args.extend(["--data".to_string(), s(d)]),
            None => args.extend(["--key".to_string(), s(&demo("demo-keys/tuk.key"))]),
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a)
    }
}

/// Re-signs a bundle's header (after `edit`) with `key`: a bundle made by someone holding
/// that key.
fn resign(bytes: &[u8], key: &SecretKey, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let parts = tuk::container::split(bytes, tuk::seal::MAGIC, "bundle").unwrap();
    let mut h: serde_json::Value = serde_json::from_slice(parts.header_line).unwrap();
    edit(&mut h);
    let line = serde_json::to_vec(&h).unwrap();
    tuk::container::write(tuk::seal::MAGIC, &line, key, parts.payload)
}

/// A session sealed before is sealed again only with `--reseal` (issue 13): without it the
/// command says which bundle would be superseded and writes nothing; with it the new
/// bundle is made and the `reseal` event names the earlier one.
#[test]
fn sealing_again_needs_reseal_and_is_logged() {
    let mut f = Fixture::new(&[S1], true);
    f.stop();
    let root = f._dir.path().to_path_buf();
    let d = s(&f.data);
    let first = root.join("first.tukres");
    ok(&[
        "seal",
        "--data",
        &d,
        "--session",
        S1,
        "-o",
        &s(&first),
        "--force",
    ]);
    let again = root.join("again.tukres");
    let err = fails(&["seal", "--data", &d, "--session", S1, "-o", &s(&again)]);
    assert!(
        err.contains("sealed already") && err.contains("--reseal"),
        "{err}"
    );
    assert!(!again.exists(), "nothing written without --reseal");
    let out = ok(&[
        "seal",
        "--data",
        &d,
        "--session",
        S1,
        "-o",
        &s(&again),
        "--reseal",
    ]);
    assert!(out.contains("sealed demo-kk-a-2026 sessions S1"), "{out}");
    let first_hash = blake3::hash(&std::fs::read(&first).unwrap())
        .to_hex()
        .to_string();
    let store = tuk::store::Store::open(&f.data).unwrap();
    let superseded: Vec<String> = store
        .scan_prefix(tuk::store::Table::Events, &format!("{S1}\u{1f}"))
        .unwrap()
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice::<tuk::exam::events::Record>(&v).ok())
        .filter_map(|r| match r.event {
            tuk::exam::events::Event::Reseal { superseded, .. } => Some(superseded),
            _ => None,
        })
        .collect();
    assert_eq!(
        superseded,
        vec![first_hash],
        "one reseal event naming the first bundle"
    );
}

// ---------------------------------------------------------------------------------------
// 1. Seal → upload over TLS → receipt → import; refusals; purge
// ---------------------------------------------------------------------------------------

#[test]
fn seal_upload_over_tls_receipt_import_and_purge() {
    let mut f = Fixture::new(&[S1], true);
    f.stop();
    let root = f._dir.path().to_path_buf();
    let d = s(&f.data);
    let bundle = root.join("s1.tukres");

    // Still open, one attempt running: refused without --force, nothing written.
    let err = fails(&["seal", "--data", &d, "--session", S1, "-o", &s(&bundle)]);
    assert!(
        err.contains("still open") && err.contains("--force"),
        "{err}"
    );
    assert!(!bundle.exists());
    let err = fails(&[
        "seal",
        "--data",
        &d,
        "--session",
        "demo-kk-a-2026/S2",
        "-o",
        &s(&bundle),
    ]);
    assert!(err.contains("never opened"), "{err}");
    let err = fails(&["purge", "--data", &d, "--session", S1]);
    assert!(
        err.contains("running") || err.contains("not been sealed"),
        "{err}"
    );

    let out = ok(&[
        "seal",
        "--data",
        &d,
        "--session",
        S1,
        "-o",
        &s(&bundle),
        "--force",
    ]);
    assert!(out.contains("closed demo-kk-a-2026/S1"), "{out}");
    assert!(
        out.contains("sealed demo-kk-a-2026 sessions S1: 20 participants"),
        "{out}"
    );
    let bytes = std::fs::read(&bundle).unwrap();
    assert!(bytes.starts_with(b"tuk-results v1\n{"));

    // The force-close is in the log: session_close forced, the running attempt force-finished.
    {
        let store = tuk::store::Store::open(&f.data).unwrap();
        let evs: Vec<tuk::exam::events::Stored> = store
            .scan_prefix(tuk::store::Table::Events, &format!("{S1}\u{1f}"))
            .unwrap()
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).unwrap())
            .collect();
        assert!(
            evs.iter()
                .any(|e| e.kind == "session_close" && e.data["forced"] == true)
        );
        assert_eq!(evs.iter().filter(|e| e.kind == "force_finish").count(), 1);
    }
    let err = fails(&["purge", "--data", &d, "--session", S1]);
    assert!(
        err.contains("no receipt") && err.contains("nothing was removed"),
        "{err}"
    );

    let upt = upt_folder(&root);
    let rx = common::upt_receiver(&upt, &root, 8);

    // Upload: the receipt is printed, verified, kept beside the file and in the TUK store.
    let (good, out, err) = rx.upload(&bundle, Some(&f.data));
    assert!(good, "{out}\n{err}");
    assert!(
        out.contains("signature OK") && out.contains("receipt stored"),
        "{out}"
    );
    let rpath = root.join("s1.tukres.receipt.json");
    let signed = SignedReceipt::parse(&std::fs::read(&rpath).unwrap()).unwrap();
    let upt_pub = PublicKey::read(&demo("demo-keys/upt.pub")).unwrap();
    let r = signed.verify(&upt_pub.signer_id()).unwrap();
    assert_eq!(r.bundle_blake3, blake3::hash(&bytes).to_hex().to_string());
    assert_eq!(
        (r.package_id.as_str(), r.sessions.clone(), r.participants),
        (PKG, vec!["S1".to_string()], 20)
    );

    // Second upload: accepted once, same receipt.
    let (good, out, _) = rx.upload(&bundle, None);
    assert!(good && out.contains("already had this bundle"), "{out}");
    let again = SignedReceipt::parse(&std::fs::read(&rpath).unwrap()).unwrap();
    assert_eq!(again, signed, "the same receipt");

    // Refusals, each with a clear message.
    let other = SecretKey::generate("tuk-unknown").unwrap();
    let tuk_key = SecretKey::read(&demo("demo-keys/tuk.key")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "unknown-tuk",
            resign(&bytes, &other, |h| {
                h["signer"] = json!(other.public().signer_id())
            }),
            "403 unknown_tuk",
        ),
        (
            "unknown-pkg",
            resign(&bytes, &tuk_key, |h| {
                h["package_blake3"] = json!("00".repeat(32))
            }),
            "403 unknown_package",
        ),
        (
            "truncated",
            bytes[..bytes.len() - 100].to_vec(),
            "truncated",
        ),
        (
            "flipped",
            {
                let mut b = bytes.clone();
                let n = b.len();
                b[n / 2] ^= 0x20;
                b
            },
            "changed after signing",
        ),
        (
            "oversized",
            {
                let mut b = bytes.clone();
                b.extend(std::iter::repeat_n(b'x', 9 << 20));
                b
            },
            "413 too_large",
        ),
    ];
    for (name, b, want) in cases {
        let p = root.join(format!("{name}.tukres"));
        std::fs::write(&p, b).unwrap();
        let (good, out, err) = rx.upload(&p, None);
        assert!(!good && err.contains(want), "{name}: {out}\n{err}");
        assert!(
            !err.contains("trying again"),
            "{name}: a refusal is final: {err}"
        );
    }
    // Plain http and an unknown certificate are refused by the client.
    let err = fails(&[
        "upload",
        &s(&bundle),
        "--to",
        &format!("http://127.0.0.1:{}", rx.port),
    ]);
    assert!(err.contains("https://"), "{err}");
    let err = fails(&[
        "upload",
        &s(&bundle),
        "--key",
        &s(&demo("demo-keys/tuk.key")),
        "--to",
        &rx.url(),
        "--attempts",
        "1",
    ]);
    assert!(err.contains("--upt-cert"), "{err}");
    drop(rx);

    // The stick path: the same file again is "already imported", exit 0.
    let out = ok(&["upt", "import", &s(&bundle), "--data", &s(&upt)]);
    assert!(out.contains("already imported"), "{out}");
    let out = ok(&["upt", "list", "--data", &s(&upt)]);
    assert!(
        out.contains("demo-kk-a-2026 S1 from tuk: 20 participants"),
        "{out}"
    );
    let recap = root.join("recap.csv");
    ok(&[
        "upt",
        "report",
        "recap",
        "--data",
        &s(&upt),
        "-o",
        &s(&recap),
    ]);
    let text = std::fs::read_to_string(&recap).unwrap();
    assert!(
        // A byte-order mark first, so that Excel reads UTF-8 (docs/reports.md).
        text.starts_with(
            "\u{feff}participant,name,tuk,test,session,score,predicate,passed,nilai_awal,"
        ),
        "{text}"
    );
    assert_eq!(text.lines().count(), 21);

    // Purge: allowed now; answers and personal data gone, bundle and receipt kept.
    let out = ok(&["purge", "--data", &d, "--session", S1]);
    assert!(
        out.contains("purged demo-kk-a-2026/S1: 19 attempts"),
        "{out}"
    );
    let out = ok(&["purge", "--data", &d, "--session", S1]);
    assert!(out.contains("already purged"), "{out}");
    let err = fails(&[
        "seal",
        "--data",
        &d,
        "--session",
        S1,
        "-o",
        &s(&root.join("again.tukres")),
    ]);
    assert!(err.contains("was purged"), "{err}");
    let app = App::open(&f.data).unwrap();
    {
        let ex = app.read();
        assert!(ex.attempts.values().all(|a| a.session != S1));
        assert!(ex.catalog[PKG].roster.iter().all(|p| p.session != "S1"));
        assert_eq!(
            ex.credentials.len(),
            20,
            "only S2's participants keep a login"
        );
    }
    assert!(
        app.store
            .scan_prefix(tuk::store::Table::Answers, &format!("{S1}/"))
            .unwrap()
            .is_empty()
    );
    assert!(
        app.store
            .scan_prefix(tuk::store::Table::Events, &format!("{S1}\u{1f}"))
            .unwrap()
            .is_empty()
    );
    let kept = tuk::seal::tuk::bundle_bytes(&app, &r.bundle_blake3)
        .unwrap()
        .unwrap();
    assert_eq!(kept, bytes, "the sealed bundle is kept");
    assert!(
        app.store
            .get(
                tuk::store::Table::Results,
                &format!("receipt\u{1f}{}", r.bundle_blake3)
            )
            .unwrap()
            .is_some()
    );
    app.shutdown();
}

// ---------------------------------------------------------------------------------------
// 2. Any changed byte is detected; content checks; replays
// ---------------------------------------------------------------------------------------

fn sealed(f: &Fixture, skeys: &[&str]) -> Vec<u8> {
    let keys: Vec<String> = skeys.iter().map(|k| k.to_string()).collect();
    tuk::seal::tuk::seal(f.app(), &keys, false, "test")
        .unwrap()
        .bytes
}

#[test]
fn a_byte_changed_anywhere_is_detected() {
    let f = Fixture::new(&[S1], false);
    f.close(S1);
    let bytes = sealed(&f, &[S1]);
    let upt_dir = upt_folder(f._dir.path());
    let upt = Upt::open(&upt_dir).unwrap();
    // Every byte of the magic, header and signature lines and of the age header; then a
    // stride through the payload; then the last bytes.
    let header_end = bytes.windows(8).position(|w| w == b"ed25519:").unwrap() + 200;
    let mut positions: Vec<usize> = (0..header_end + 400).collect();
    positions.extend((header_end + 400..bytes.len()).step_by((bytes.len() / 1500).max(1)));
    positions.extend(bytes.len() - 64..bytes.len());
    let mut codes = BTreeMap::new();
    for &i in &positions {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            match upt.import(&b, "test") {
                Ok(_) => panic!(
                    "a flip of bit {bit:#x} at byte {i} of {} was not detected",
                    bytes.len()
                ),
                Err(r) => *codes.entry(r.code).or_insert(0) += 1,
            }
        }
    }
    assert!(positions.len() > 2000, "{}", positions.len());
    assert!(
        upt.current().unwrap().is_empty(),
        "nothing was stored: {codes:?}"
    );
    // Appended and removed bytes too.
    let mut longer = bytes.clone();
    longer.push(b'\n');
    assert!(
        upt.import(&longer, "test")
            .unwrap_err()
            .message
            .contains("bytes added")
    );
    assert!(upt.import(&bytes[..bytes.len() - 1], "test").is_err());
    let done = upt.import(&bytes, "test").unwrap();
    assert!(!done.already);
    assert!(upt.import(&bytes, "test").unwrap().already);
}

/// Opens a bundle with the UPT key into the parts it was written from.
fn parts_of(bytes: &[u8]) -> tuk::seal::BundleParts {
    let upt = SecretKey::read(&demo("demo-keys/upt.key")).unwrap();
    let p = tuk::container::split(bytes, tuk::seal::MAGIC, "bundle").unwrap();
    let h: tuk::seal::BundleHeader = serde_json::from_slice(p.header_line).unwrap();
    let plain = tuk::container::age_decrypt_with(p.payload, &upt.identity, 1 << 30).unwrap();
    let plain = {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(plain.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let files = tuk::container::untar_checked(&plain, &h.members, &|_| Ok(1 << 30)).unwrap();
    let doc = serde_json::from_slice(&files["bundle.json"]).unwrap();
    let mut events = BTreeMap::new();
    for sid in &h.sessions {
        let text = &files[&format!("events/{sid}.jsonl")];
        events.insert(
            sid.clone(),
            text.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| l.to_vec())
                .collect(),
        );
    }
    let package_members = ["manifest.json", "roster.json", "items.json"]
        .iter()
        .map(|n| (n.to_string(), files[&format!("package/{n}")].clone()))
        .collect();
    tuk::seal::BundleParts {
        doc,
        events,
        package_members,
    }
}

#[test]
fn a_tuk_signed_bundle_must_agree_with_its_log_roster_and_key() {
    let f = Fixture::new(&[S1], false);
    f.close(S1);
    let bytes = sealed(&f, &[S1]);
    let upt_dir = upt_folder(f._dir.path());
    let upt = Upt::open(&upt_dir).unwrap();
    let tuk_key = SecretKey::read(&demo("demo-keys/tuk.key")).unwrap();
    let upt_pub = PublicKey::read(&demo("demo-keys/upt.pub")).unwrap();
    type Edit = Box<dyn Fn(&mut tuk::seal::BundleParts)>;
    let edits: Vec<(&str, Edit, &str)> = vec![
        (
            "answer changed",
            Box::new(|p| {
                let a = p.doc.participants[0].attempt.as_mut().unwrap();
                let x = a.answers.values_mut().next().unwrap();
                x.choice = vec!["zz".into()];
            }),
            "answers of participant",
        ),
        (
            "score raised",
            Box::new(|p| {
                let a = p.doc.participants[1].attempt.as_mut().unwrap();
                a.score.as_mut().unwrap().total = "99.00".into();
            }),
            "finish of participant",
        ),
        (
            "score and log agree, key does not",
            Box::new(|p| {
                let a = p.doc.participants[1].attempt.as_mut().unwrap();
                let sc = a.score.as_mut().unwrap();
                let first = sc.items.keys().next().unwrap().clone();
                sc.items.insert(first, 6000 * 7);
            }),
            "is not what the package's key gives",
        ),
        (
            "walk-in added",
            Box::new(|p| {
                let mut extra = p.doc.participants[0].clone();
                extra.roster.participant = "9999999999999".into();
                p.doc.participants.push(extra);
            }),
            "roster of session S1",
        ),
        (
            "name changed",
            Box::new(|p| p.doc.participants[2].roster.name = "Someone Else".into()),
            "roster entry",
        ),
        (
            "last events dropped",
            Box::new(|p| {
                let e = p.events.get_mut("S1").unwrap();
                e.truncate(e.len() - 3);
            }),
            "event chain of session S1",
        ),
        (
            "login hidden",
            Box::new(|p| {
                p.doc.participants[3].logins.clear();
            }),
            "logins of participant",
        ),
        (
            "roster swapped",
            Box::new(|p| {
                let r = p.package_members.get_mut("roster.json").unwrap();
                r.push(b' ');
            }),
            "differs from the package this UPT signed",
        ),
    ];
    for (name, edit, want) in edits {
        let mut parts = parts_of(&bytes);
        edit(&mut parts);
        let (forged, _) = tuk::seal::write(&parts, &tuk_key, &upt_pub).unwrap();
        let r = upt
            .import(&forged, "test")
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert!(r.message.contains(want), "{name}: {}", r.message);
        assert_eq!(r.code, "bundle_invalid");
    }
    // Unchanged parts re-sealed by the TUK are accepted.
    let (fine, _) = tuk::seal::write(&parts_of(&bytes), &tuk_key, &upt_pub).unwrap();
    upt.import(&fine, "test").unwrap();
    assert_eq!(upt.current().unwrap().len(), 1);
}

#[test]
fn older_bundle_is_a_replay_newer_supersedes() {
    let f = Fixture::new(&[S1], false);
    f.close(S1);
    let first = sealed(&f, &[S1]);
    // The proctor records attendance after sealing: the log grows, a new seal follows.
    f.app()
        .writer
        .run_blocking(|ex: &mut Exam| {
            let n = ex.catalog[PKG].roster[5].participant.clone();
            (
                ex.mark_attendance(
                    &SessionKey::new(S1),
                    &n,
                    false,
                    "staff:proctor",
                    tuk::clock::now_ms(),
                )
                .unwrap(),
                (),
            )
        })
        .unwrap();
    let second = sealed(&f, &[S1]);
    let upt_dir = upt_folder(f._dir.path());
    let upt = Upt::open(&upt_dir).unwrap();
    upt.import(&second, "test").unwrap();
    let r = upt.import(&first, "test").unwrap_err();
    assert_eq!((r.status, r.code), (409, "replayed"), "{}", r.message);
    assert!(r.message.contains("older"), "{}", r.message);

    let upt2 = Upt::open(&upt_folder(&f._dir.path().join("b"))).unwrap();
    upt2.import(&first, "test").unwrap();
    let done = upt2.import(&second, "test").unwrap();
    assert_eq!(done.superseded, vec!["S1".to_string()]);
    let cur = upt2.current().unwrap();
    assert_eq!(cur.len(), 1);
    assert_eq!(cur[0].blake3, done.blake3);
    let absent = &cur[0].doc.participants[5];
    assert_eq!(absent.present, Some(false));
}

// ---------------------------------------------------------------------------------------
// 3. Grades: predicates, NA, statistics against SciPy
// ---------------------------------------------------------------------------------------

#[test]
fn predicates_at_the_boundaries() {
    use score::{Hundredths, predicate};
    for (h, p) in [
        (6000, "Kurang"),
        (6001, "Sedang"),
        (7000, "Sedang"),
        (7001, "Cukup"),
        (8000, "Cukup"),
        (8001, "Baik"),
        (9000, "Baik"),
        (9001, "Amat Baik"),
        (10000, "Amat Baik"),
    ] {
        assert_eq!(predicate(Hundredths(h)), p, "{}", Hundredths(h));
    }
    // Through scoring: weights 70.01 + 29.99, only the first right → 70.01, passes (> 70).
    let item = |id: &str, w: f64| -> Item {
        serde_json::from_value(
            json!({"id": id, "type": "single", "competency": "c", "weight": w, "stem": "s",
            "options": [{"id": "a", "html": "a"}, {"id": "b", "html": "b"}], "key": ["a"]}),
        )
        .unwrap()
    };
    let (a, b) = (item("A", 70.01), item("B", 29.99));
    let right = |id: &str| Some(vec![if id == "A" { "a" } else { "b" }.to_string()]);
    let s = score::score(&[&a, &b], &right, 70.0);
    assert_eq!(
        (s.total.to_string().as_str(), s.predicate.as_str(), s.passed),
        ("70.01", "Cukup", true)
    );
    let (a, b) = (item("A", 70.0), item("B", 30.0));
    let s = score::score(&[&a, &b], &right, 70.0);
    assert_eq!(
        (s.total.to_string().as_str(), s.predicate.as_str(), s.passed),
        ("70.00", "Sedang", false)
    );
    let (a, b) = (item("A", 60.01), item("B", 39.99));
    assert_eq!(score::score(&[&a, &b], &right, 70.0).predicate, "Sedang");
    let (a, b) = (item("A", 60.0), item("B", 40.0));
    assert_eq!(score::score(&[&a, &b], &right, 70.0).predicate, "Kurang");
    let (a, b) = (item("A", 90.01), item("B", 9.99));
    assert_eq!(score::score(&[&a, &b], &right, 70.0).predicate, "Amat Baik");
    let (a, b) = (item("A", 90.0), item("B", 10.0));
    assert_eq!(score::score(&[&a, &b], &right, 70.0).predicate, "Baik");
    let (a, b) = (item("A", 80.0), item("B", 20.0));
    assert_eq!(score::score(&[&a, &b], &right, 70.0).predicate, "Cukup");
    // NA, exact: 10% PD + 50% TS + 40% TA.
    use tuk::upt::report::{na_hundredths, parse_micro, parse_weights};
    let w = parse_weights("10,50,40").unwrap();
    for (pd, ts, ta, na, p) in [
        ("60", "60", "60", "60.00", "Kurang"),
        ("60.1", "60", "60", "60.01", "Sedang"),
        ("70", "70", "70", "70.00", "Sedang"),
        ("80", "80", "80", "80.00", "Cukup"),
        ("90", "90", "90", "90.00", "Baik"),
        ("90.1", "90", "90", "90.01", "Amat Baik"),
        ("100", "100", "100", "100.00", "Amat Baik"),
        ("75", "70", "69.99", "70.50", "Cukup"),
    ] {
        let v = na_hundredths(
            &w,
            &[
                parse_micro(pd).unwrap(),
                parse_micro(ts).unwrap(),
                parse_micro(ta).unwrap(),
            ],
        );
        assert_eq!(
            (v.to_string().as_str(), predicate(v)),
            (na, p),
            "{pd} {ts} {ta}"
        );
    }
}

/// The fixture of `/tmp/ref/fixture.py` (recorded below): 42 participants × 20 items,
/// rows of 0/1, and the earlier UKG score (nilai awal) of each.
const X: &str = "10011111110011101100;01010110011010001101;01111100110101110111;00110000000000011011;00000000001111011000;01100001000101100011;11011011100011010010;00011001101010110101;11011010001011000010;01000010001010101111;11110111011111011011;00010110100110000010;10111010000000111100;00111111011111111100;11010111000110011111;00101111111101111111;11011110111110110001;00001010111011001010;10000010101101001101;00011110010100001001;10001110001001101100;11011000101110111011;10111110101101110001;10001100101111100001;00000110011011010001;11010100000011011000;11101110100110010100;01000110001010110011;00010101001100000010;10010000100001000010;01110011110101100011;00110100001001111010;00010001101010100011;01101110000010010010;10001010110101100011;00011010101100011100;11010001011011000110;00001000100010011001;01011100100011011111;11010111011101010011;00011110101011101010;11001111111110110011";
const PRE: [f64; 42] = [
    59.56, 45.20, 59.96, 26.46, 41.01, 43.33, 41.11, 34.60, 43.34, 32.40, 61.14, 43.90, 42.33,
    45.48, 56.52, 58.67, 52.69, 46.28, 42.86, 55.99, 32.07, 47.69, 56.23, 65.47, 45.94, 34.47,
    54.64, 52.49, 39.41, 22.44, 48.61, 32.40, 51.70, 44.62, 47.64, 41.17, 47.36, 44.56, 43.51,
    45.56, 39.86, 63.38,
];

/// Reference values from SciPy 1.17.1 / NumPy 2.4.6 on Python 3.11.7, computed by this
/// script (post = 100 × items right / 20, rounded to 2 decimals):
///
/// ```python
/// import numpy as np; from scipy import stats
/// X = np.array([[int(c) for c in row] for row in X_TEXT.split(";")]); pre = np.array(PRE)
/// post = np.round(100 * X.sum(axis=1) / 20, 2)
/// t, p = stats.ttest_rel(post, pre); d = post - pre; dz = d.mean() / d.std(ddof=1)
/// pq = (X.mean(axis=0) * (1 - X.mean(axis=0))).sum()
/// kr20 = 20 / 19 * (1 - pq / X.sum(axis=1).var(ddof=0))
/// r0 = stats.pointbiserialr(X[:, 0], post)[0]; r7 = stats.pointbiserialr(X[:, 7], post)[0]
/// ```
#[test]
fn statistics_match_scipy() {
    use tuk::upt::stats;
    let rows: Vec<Vec<bool>> = X
        .split(';')
        .map(|r| r.bytes().map(|b| b == b'1').collect())
        .collect();
    assert_eq!((rows.len(), rows[0].len()), (42, 20));
    let post: Vec<f64> = rows
        .iter()
        .map(|r| (100.0 * r.iter().filter(|&&x| x).count() as f64 / 20.0 * 100.0).round() / 100.0)
        .collect();
    let r = stats::paired_t(&PRE, &post).unwrap();
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() < 1e-9 * b.abs().max(1.0),
            "{what}: {a} vs scipy {b}"
        )
    };
    close(r.t.unwrap(), 2.799281603729, "t");
    assert_eq!(r.df, 41);
    close(r.p.unwrap(), 7.772880534518e-03, "p");
    close(r.cohen_dz.unwrap(), 0.431938528943, "cohen dz");
    close(r.mean_gain, 4.784523809524, "mean gain");
    close(stats::kr20(&rows).unwrap(), 0.430256612596, "kr20");
    let col = |j: usize| {
        rows.iter()
            .map(|r| if r[j] { 1.0 } else { 0.0 })
            .collect::<Vec<f64>>()
    };
    close(
        stats::point_biserial(&col(0), &post).unwrap(),
        0.299904834242,
        "r_pb item 0",
    );
    close(
        stats::point_biserial(&col(7), &post).unwrap(),
        0.420228708002,
        "r_pb item 7",
    );
}

// ---------------------------------------------------------------------------------------
// 4. Reports from imported results; PD/TS errors
// ---------------------------------------------------------------------------------------

/// A PD/TS file (`participant,pd,ts`) for every participant of the recap with a score.
fn pdts_for(recap: &[BTreeMap<String, String>]) -> String {
    let mut text = String::from("participant,pd,ts\n");
    for (k, r) in recap.iter().filter(|r| !r["score"].is_empty()).enumerate() {
        text += &format!("{},{},{}\n", r["participant"], 60 + k % 40, 70.5);
    }
    text
}

fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|rec| {
            h.iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect()
}

#[test]
fn reports_and_pdts_errors() {
    let f = Fixture::new(&[S1, S2], false);
    f.close(S1);
    f.close(S2);
    let bytes = sealed(&f, &[S1, S2]);
    let root = f._dir.path();
    let upt = upt_folder(root);
    let file = root.join("all.tukres");
    std::fs::write(&file, &bytes).unwrap();
    let out = ok(&["upt", "import", &s(&file), "--data", &s(&upt)]);
    assert!(
        out.contains("imported demo-kk-a-2026 sessions S1, S2 from TUK tuk: 40 participants"),
        "{out}"
    );
    let u = s(&upt);
    // Every report kind the UPT offers, but NA (it needs a PD/TS file).
    for kind in tuk::upt::report::KINDS.into_iter().filter(|k| *k != "na") {
        let p = root.join(format!("{kind}.csv"));
        ok(&["upt", "report", kind, "--data", &u, "-o", &s(&p)]);
        let x = root.join(format!("{kind}.xlsx"));
        ok(&["upt", "report", kind, "--data", &u, "-o", &s(&x)]);
        assert!(
            std::fs::read(&x).unwrap().starts_with(b"PK"),
            "{kind}.xlsx is a zip"
        );
    }
    // `TUK_KEEP_REPORTS=DIR` keeps a copy of the reports (for the samples in the notes).
    if let Ok(keep) = std::env::var("TUK_KEEP_REPORTS") {
        std::fs::create_dir_all(&keep).unwrap();
        for e in std::fs::read_dir(root).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "csv") {
                std::fs::copy(e.path(), Path::new(&keep).join(e.file_name())).unwrap();
            }
        }
    }
    let recap = csv_rows(&root.join("recap.csv"));
    assert_eq!(recap.len(), 40);
    assert_eq!(recap.iter().filter(|r| r["status"] == "absent").count(), 2);
    // Every score is the key's score of the answers given (every participant has all 60).
    let items = demo_items();
    let all: Vec<&Item> = items.values().collect();
    for r in &recap {
        match f.given.get(&r["participant"]) {
            Some(given) => {
                let e = score::score(&all, &|id: &str| given.get(id).cloned(), 70.0);
                assert_eq!(
                    (r["score"].as_str(), r["predicate"].as_str()),
                    (e.total.to_string().as_str(), e.predicate.as_str())
                );
            }
            None => assert_eq!((r["score"].as_str(), r["present"].as_str()), ("", "no")),
        }
    }
    let prepost = csv_rows(&root.join("prepost.csv"));
    assert_eq!(prepost.len(), 1, "one test: no separate ALL row");
    assert_eq!(prepost[0]["n"], "38");
    let items = csv_rows(&root.join("items.csv"));
    assert_eq!(items.len(), 60);
    let rel = csv_rows(&root.join("reliability.csv"));
    assert_eq!(
        (rel[0]["participants"].as_str(), rel[0]["items"].as_str()),
        ("38", "60")
    );
    let q = csv_rows(&root.join("questionnaire.csv"));
    assert_eq!(q.iter().filter(|r| r["type"] == "scale").count(), 6);
    assert_eq!(q.iter().filter(|r| r["type"] == "open").count(), 38);
    let logins = csv_rows(&root.join("logins.csv"));
    assert_eq!(logins.len(), 38);
    assert!(logins.iter().all(|l| l["ip"].starts_with("10.0.0.")));

    // NA: a good PD/TS file, then each kind of mistake. Nothing is written on an error.
    let good = pdts_for(&recap);
    let pdts = root.join("pdts.csv");
    std::fs::write(&pdts, &good).unwrap();
    let na = root.join("na.csv");
    ok(&[
        "upt",
        "report",
        "na",
        "--data",
        &u,
        "--pdts",
        &s(&pdts),
        "-o",
        &s(&na),
    ]);
    let rows = csv_rows(&na);
    assert_eq!(rows.len(), 38);
    if let Ok(keep) = std::env::var("TUK_KEEP_REPORTS") {
        std::fs::copy(&na, Path::new(&keep).join("na.csv")).unwrap();
    }
    for r in &rows {
        let (pd, ts, ta): (f64, f64, f64) = (
            r["pd"].parse().unwrap(),
            r["ts"].parse().unwrap(),
            r["ta"].parse().unwrap(),
        );
        let want = ((0.1 * pd + 0.5 * ts + 0.4 * ta) * 100.0).round() / 100.0;
        assert!(
            (r["na"].parse::<f64>().unwrap() - want).abs() < 0.0051,
            "{r:?}"
        );
        assert_eq!(
            r["predicate"],
            score::predicate(score::Hundredths(
                (r["na"].parse::<f64>().unwrap() * 100.0).round() as u32
            ))
        );
    }
    let bad_cases: Vec<(String, Vec<&str>, &str)> = vec![
        (
            good.lines()
                .take(good.lines().count() - 1)
                .collect::<Vec<_>>()
                .join("\n"),
            vec![],
            "has no row for 1 participant",
        ),
        (
            good.replacen(",70.5\n", ",7O.5\n", 1),
            vec![],
            "line 2: ts \"7O.5\" is not a number from 0 to 100",
        ),
        (
            good.replacen(",70.5\n", ",170\n", 1),
            vec![],
            "is not a number from 0 to 100",
        ),
        (
            good.clone() + "1234567890123,80,80\n",
            vec![],
            "no result at this UPT: 1234567890123 (line 40)",
        ),
        (
            good.clone() + good.lines().nth(1).unwrap(),
            vec![],
            "appears twice",
        ),
        (
            "nomor,pd,ts\n1,2,3\n".into(),
            vec![],
            "needs a header row with the columns participant,pd,ts",
        ),
        (
            good.clone(),
            vec!["--weights", "10,50,50"],
            "sum to 110.00, not 100",
        ),
        (good.clone(), vec!["--weights", "10,90"], "three numbers"),
    ];
    for (text, extra, want) in bad_cases {
        std::fs::write(&pdts, text).unwrap();
        let out = root.join("na-bad.csv");
        let mut args = vec!["upt", "report", "na", "--data", &u, "--pdts"];
        let p = s(&pdts);
        let o = s(&out);
        args.push(&p);
        args.extend(extra.iter().copied());
        args.extend(["-o", &o]);
        let err = fails(&args);
        assert!(err.contains(want), "want {want:?}: {err}");
        assert!(!out.exists(), "nothing written on an error");
    }
    let err = fails(&["upt", "report", "na", "--data", &u, "-o", &s(&na)]);
    assert!(err.contains("--pdts"), "{err}");
    let err = fails(&[
        "upt",
        "report",
        "recap",
        "--data",
        &u,
        "-o",
        &s(&root.join("x.pdf")),
    ]);
    assert!(err.contains(".csv or .xlsx"), "{err}");
    let err = fails(&["upt", "report", "everything", "--data", &u, "-o", &s(&na)]);
    assert!(err.contains("recap, summary, na"), "{err}");
}

// ---------------------------------------------------------------------------------------
// 4b. The report pages of `tuk upt serve`: login required, same tables as the CLI
// ---------------------------------------------------------------------------------------

/// A one-request-per-connection HTTPS client that trusts only the receiver's certificate
/// and keeps the login cookie.
struct Browser {
    port: u16,
    tls: std::sync::Arc<rustls::ClientConfig>,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

impl Page {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Browser {
    fn new(rx: &common::UptReceiver) -> Browser {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let pem = std::fs::read(&rx.cert).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&pem) {
            roots.add(c.unwrap()).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Browser {
            port: rx.port,
            tls: std::sync::Arc::new(tls),
            cookie: None,
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        ct: Option<&str>,
        body: Vec<u8>,
        origin: &str,
    ) -> Page {
        use http_body_util::BodyExt;
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .unwrap();
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("localhost:{}", self.port));
        if method == "POST" {
            b = b.header("origin", origin);
        }
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        if let Some(c) = &self.cookie {
            b = b.header("cookie", format!("tuk_upt={c}"));
        }
        let req = b
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            if let Some(rest) = v.strip_prefix("tuk_upt=") {
                let value = rest.split(';').next().unwrap();
                self.cookie = (!value.is_empty()).then(|| value.to_string());
            }
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None, Vec::new(), "").await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let origin = format!("https://localhost:{}", self.port);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            body.into_bytes(),
            &origin,
        )
        .await
    }

    async fn post_multipart(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let origin = format!("https://localhost:{}", self.port);
        let mut body = String::new();
        for (k, v) in fields {
            let file = if *k == "pdts" {
                "; filename=\"pdts.csv\"\r\nContent-Type: text/csv"
            } else {
                ""
            };
            body += &format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"{file}\r\n\r\n{v}\r\n"
            );
        }
        body += "--XyZ--\r\n";
        self.send(
            "POST",
            path,
            Some("multipart/form-data; boundary=XyZ"),
            body.into_bytes(),
            &origin,
        )
        .await
    }
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_pages_need_a_login_and_show_the_cli_tables() {
    let f = Fixture::new(&[S1, S2], false);
    f.close(S1);
    f.close(S2);
    let bytes = sealed(&f, &[S1, S2]);
    let root = f._dir.path();
    let upt = upt_folder(root);
    let u = s(&upt);
    let file = root.join("all.tukres");
    std::fs::write(&file, &bytes).unwrap();
    ok(&["upt", "import", &s(&file), "--data", &u]);

    // Accounts: made on the command line; a short password or a second add is refused.
    let pw = root.join("pw.txt");
    std::fs::write(&pw, "short\n").unwrap();
    let err = fails(&[
        "upt",
        "user",
        "add",
        "sri",
        "--data",
        &u,
        "--password-file",
        &s(&pw),
    ]);
    assert!(err.contains("at least 8 characters"), "{err}");
    std::fs::write(&pw, "laporan-rahasia-1\n").unwrap();
    let out = ok(&[
        "upt",
        "user",
        "add",
        "sri",
        "--data",
        &u,
        "--password-file",
        &s(&pw),
    ]);
    assert!(out.contains("staff account sri created"), "{out}");
    let err = fails(&[
        "upt",
        "user",
        "add",
        "sri",
        "--data",
        &u,
        "--password-file",
        &s(&pw),
    ]);
    assert!(err.contains("already exists; add --replace"), "{err}");
    assert_eq!(ok(&["upt", "user", "list", "--data", &u]).trim(), "sri");

    // What the command line writes, to compare with the pages.
    let recap_csv = root.join("recap.csv");
    ok(&["upt", "report", "recap", "--data", &u, "-o", &s(&recap_csv)]);
    let recap = csv_rows(&recap_csv);
    let pdts = pdts_for(&recap);
    let takers = recap.iter().filter(|r| !r["score"].is_empty()).count();
    let pdts_file = root.join("pdts.csv");
    std::fs::write(&pdts_file, &pdts).unwrap();
    let na_csv = root.join("na.csv");
    ok(&[
        "upt",
        "report",
        "na",
        "--data",
        &u,
        "--pdts",
        &s(&pdts_file),
        "-o",
        &s(&na_csv),
    ]);

    let rx = common::upt_receiver(&upt, root, 64);
    let mut b = Browser::new(&rx);

    // Nothing without a login: the login form, or a redirect to it; no data.
    let p = b.get("/").await;
    assert_eq!((p.status, p.location()), (303, "/laporan"));
    let p = b.get("/laporan").await;
    assert_eq!(p.status, 200);
    assert!(
        p.text().contains("action=\"/laporan/masuk\""),
        "{}",
        p.text()
    );
    for path in ["/laporan/recap", "/laporan/recap?format=csv", "/laporan/na"] {
        let p = b.get(path).await;
        assert_eq!((p.status, p.location()), (303, "/laporan"), "{path}");
        assert!(p.body.is_empty(), "{path}");
    }
    let p = b.post("/laporan/keluar", &[]).await;
    assert_eq!(p.status, 401);
    // The receiver's API is unchanged beside the pages.
    let p = b.get("/upt/v1/").await;
    assert!(p.text().contains("\"service\":\"tuk-upt\""), "{}", p.text());

    // Wrong password, unknown user, another site's form: refused, no cookie.
    let p = b
        .post(
            "/laporan/masuk",
            &[("user", "sri"), ("password", "salah-sekali")],
        )
        .await;
    assert_eq!(p.status, 401);
    assert!(p.text().contains("Nama pengguna atau kata sandi salah"));
    let p = b
        .post(
            "/laporan/masuk",
            &[("user", "budi"), ("password", "laporan-rahasia-1")],
        )
        .await;
    assert_eq!(p.status, 401);
    let p = b
        .send(
            "POST",
            "/laporan/masuk",
            Some("application/x-www-form-urlencoded"),
            b"user=sri&password=laporan-rahasia-1".to_vec(),
            "https://evil.example",
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(b.cookie.is_none());

    // The right password: a Secure, HttpOnly, SameSite=Strict cookie.
    let p = b
        .post(
            "/laporan/masuk",
            &[("user", "sri"), ("password", "laporan-rahasia-1")],
        )
        .await;
    assert_eq!((p.status, p.location()), (303, "/laporan"));
    let set = p
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(flag), "{set}");
    }
    let index = b.get("/laporan").await;
    assert_eq!(index.status, 200);
    let html = index.text();
    assert!(
        html.contains("Rekap nilai peserta")
            && html.contains("Hasil yang sudah diterima (1 bundel)"),
        "{html}"
    );
    let csrf = csrf_of(&html);

    // Every report renders; the recap page has one row per participant with their score;
    // the downloads are the command line's files.
    for kind in tuk::upt::report::KINDS {
        let p = b.get(&format!("/laporan/{kind}")).await;
        assert_eq!(p.status, 200, "{kind}: {}", p.text());
    }
    let page = b.get("/laporan/recap").await.text();
    assert_eq!(page.matches("<tr>").count(), 1 + recap.len());
    for r in &recap {
        assert!(
            page.contains(&format!("<td>{}</td>", r["participant"])),
            "{}",
            r["participant"]
        );
    }
    let csv = b.get("/laporan/recap?format=csv").await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename=\"laporan-recap-"),
        "the file name says which report"
    );
    assert_eq!(csv.body, std::fs::read(&recap_csv).unwrap());
    let xlsx = b.get("/laporan/items?format=xlsx").await;
    assert!(xlsx.body.starts_with(b"PK"), "xlsx is a zip");

    // NA from an uploaded PD/TS file: the same table as `tuk upt report na`; a mistake is
    // shown on the form.
    let na_path = format!("/laporan/na?csrf={csrf}");
    let p = b
        .post_multipart(
            &na_path,
            &[("pdts", &pdts), ("weights", "10,50,40"), ("format", "csv")],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text());
    assert_eq!(p.body, std::fs::read(&na_csv).unwrap());
    let p = b
        .post_multipart(
            &na_path,
            &[("pdts", &pdts), ("weights", "10,50,40"), ("format", "html")],
        )
        .await;
    assert_eq!(p.text().matches("<tr>").count(), 1 + takers);
    let p = b
        .post_multipart(
            &na_path,
            &[("pdts", &pdts), ("weights", "10,50,50"), ("format", "html")],
        )
        .await;
    assert_eq!(p.status, 422);
    assert!(p.text().contains("sum to 110.00, not 100"), "{}", p.text());
    let p = b
        .post_multipart(
            "/laporan/na?csrf=wrong",
            &[("pdts", &pdts), ("weights", "10,50,40")],
        )
        .await;
    assert_eq!(p.status, 403);

    // Logging out needs the CSRF token, and ends the login.
    let p = b.post("/laporan/keluar", &[]).await;
    assert_eq!(p.status, 403);
    let p = b.post("/laporan/keluar", &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 303);
    assert!(b.cookie.is_none());
    let p = b.get("/laporan/recap?format=csv").await;
    assert_eq!(p.status, 303);

    // Repeated wrong passwords lock the account, even for the right one.
    for _ in 0..tuk::exam::LOGIN_LOCK_AFTER {
        b.post(
            "/laporan/masuk",
            &[("user", "sri"), ("password", "tebak-tebak")],
        )
        .await;
    }
    let p = b
        .post(
            "/laporan/masuk",
            &[("user", "sri"), ("password", "laporan-rahasia-1")],
        )
        .await;
    assert_eq!(p.status, 429);
    assert!(b.cookie.is_none());
}

// ---------------------------------------------------------------------------------------
// 5. End to end on the demo: 40 participants through the API of the real server
// ---------------------------------------------------------------------------------------

/// The demo's items (with keys) from the committed source.
fn demo_items() -> HashMap<String, Item> {
    tuk::package::source::read(&demo("demo"))
        .unwrap()
        .items
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect()
}

async fn answer_all(
    c: &common::Client,
    number: &str,
    password: &str,
    token: &str,
    i: usize,
    items: &HashMap<String, Item>,
) -> score::Score {
    c.post(
        "/api/v1/login",
        &json!({"participant": number, "password": password}),
    )
    .await
    .assert_ok();
    let st = c
        .post("/api/v1/start", &json!({"token": token}))
        .await
        .assert_ok();
    let n = st["items"].as_u64().unwrap() as usize;
    let mut form = Vec::new();
    let mut given = HashMap::new();
    for k in 1..=n {
        let v = c.get(&format!("/api/v1/items/{k}")).await.assert_ok();
        let id = v["id"].as_str().unwrap().to_string();
        let it = &items[&id];
        form.push(it);
        if (i + k).is_multiple_of(11) {
            continue; // left blank
        }
        let mut choice = choice_for(it, right(i, k));
        if it.kind == ItemKind::Multiple && (i + k).is_multiple_of(3) {
            choice.truncate(1); // half right
        }
        c.put(
            &format!("/api/v1/answers/{id}"),
            &json!({"choice": choice, "doubtful": false, "seq": k}),
        )
        .await
        .assert_ok();
        given.insert(id, choice);
    }
    c.post("/api/v1/finish", &json!({})).await.assert_ok();
    c.post(
        "/api/v1/questionnaire",
        &json!({"answers": {"e1": "Baik", "e2": "Sangat Baik", "o1": format!("peserta {i}")}}),
    )
    .await
    .assert_ok();
    score::score(&form, &|id: &str| given.get(id).cloned(), 70.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_demo_40_participants() {
    let items = demo_items();
    let mut srv = common::Server::demo();
    let mut expected: BTreeMap<String, score::Score> = BTreeMap::new();
    let logins = srv.logins.clone();
    assert_eq!(logins.len(), 20);
    for (i, (n, pw)) in logins.iter().enumerate() {
        let c = srv.client_from(std::net::Ipv4Addr::new(127, 0, 0, 10 + i as u8));
        expected.insert(
            n.clone(),
            answer_all(&c, n, pw, &srv.token, i, &items).await,
        );
    }
    // Session 2: opened from the command line while the server is stopped.
    srv.stop();
    let d = s(&srv.data);
    let opened = ok(&["session", "open", S2, "--data", &d]);
    let token2 = opened
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap()
        .trim()
        .to_string();
    let passwords: HashMap<String, String> = ok(&["session", "passwords", PKG, "--data", &d])
        .lines()
        .filter_map(|l| l.strip_prefix("login: "))
        .map(|l| {
            let mut it = l.split_whitespace();
            (
                it.next().unwrap().to_string(),
                it.next().unwrap().to_string(),
            )
        })
        .collect();
    srv.restart();
    let s2: Vec<String> = tuk::package::source::read(&demo("demo"))
        .unwrap()
        .roster
        .iter()
        .filter(|p| p.session == "S2")
        .map(|p| p.participant.to_string())
        .collect();
    assert_eq!(s2.len(), 20);
    for (k, n) in s2.iter().enumerate() {
        let i = 20 + k;
        let c = srv.client_from(std::net::Ipv4Addr::new(127, 0, 1, 10 + k as u8));
        expected.insert(
            n.clone(),
            answer_all(&c, n, &passwords[n], &token2, i, &items).await,
        );
    }
    srv.stop();

    // Seal both sessions (still open: --force closes them), upload over TLS, import again.
    let root = tempfile::tempdir().unwrap();
    let bundle = root.path().join("demo.tukres");
    let t0 = Instant::now();
    let out = ok(&["seal", "--data", &d, "--all", "-o", &s(&bundle), "--force"]);
    let seal_ms = t0.elapsed().as_millis();
    assert!(
        out.contains("sealed demo-kk-a-2026 sessions S1, S2: 40 participants"),
        "{out}"
    );
    let upt = upt_folder(root.path());
    let rx = common::upt_receiver(&upt, root.path(), 64);
    let t0 = Instant::now();
    let (good, out, err) = rx.upload(&bundle, Some(&srv.data));
    assert!(good, "{out}\n{err}");
    eprintln!(
        "demo, 40 participants: seal {seal_ms} ms (CLI, incl. start-up), upload {} ms",
        t0.elapsed().as_millis()
    );
    drop(rx);
    let out = ok(&["upt", "import", &s(&bundle), "--data", &s(&upt)]);
    assert!(out.contains("already imported"), "{out}");

    // The recap says what the answers given say.
    let recap_path = root.path().join("recap.csv");
    ok(&[
        "upt",
        "report",
        "recap",
        "--data",
        &s(&upt),
        "-o",
        &s(&recap_path),
    ]);
    let recap = csv_rows(&recap_path);
    assert_eq!(recap.len(), 40);
    let roster: HashMap<String, tuk::package::model::Participant> =
        tuk::package::source::read(&demo("demo"))
            .unwrap()
            .roster
            .into_iter()
            .map(|p| (p.participant.to_string(), p))
            .collect();
    let mut passed = 0;
    for r in &recap {
        let n = &r["participant"];
        let e = &expected[n];
        let p = &roster[n];
        assert_eq!(r["score"], e.total.to_string(), "{n}");
        assert_eq!(r["predicate"], e.predicate, "{n}");
        assert_eq!(r["passed"], if e.passed { "yes" } else { "no" }, "{n}");
        assert_eq!(r["name"], p.name);
        assert_eq!(r["session"], p.session);
        assert_eq!(
            (r["tuk"].as_str(), r["test"].as_str(), r["status"].as_str()),
            ("tuk", "kka", "finished")
        );
        assert_eq!(
            r["nilai_awal"],
            p.nilai_awal.map(|x| format!("{x:.2}")).unwrap_or_default()
        );
        let comp: Vec<String> = e
            .by_competency
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(r["competency_scores"], comp.join(";"));
        passed += e.passed as usize;
    }
    assert!(
        passed > 0 && passed < 40,
        "a mix of pass and fail: {passed}"
    );

    // prepost equals the statistics of the (nilai awal, score) pairs; summary counts.
    let pp = root.path().join("prepost.csv");
    ok(&[
        "upt",
        "report",
        "prepost",
        "--data",
        &s(&upt),
        "-o",
        &s(&pp),
    ]);
    let row = &csv_rows(&pp)[0];
    let (pre, post): (Vec<f64>, Vec<f64>) = recap
        .iter()
        .map(|r| {
            (
                r["nilai_awal"].parse::<f64>().unwrap(),
                r["score"].parse::<f64>().unwrap(),
            )
        })
        .unzip();
    let st = tuk::upt::stats::paired_t(&pre, &post).unwrap();
    assert_eq!(row["n"], "40");
    assert_eq!(row["t"], format!("{:.4}", st.t.unwrap()));
    assert_eq!(row["df"], "39");
    assert_eq!(row["cohen_dz"], format!("{:.4}", st.cohen_dz.unwrap()));
    let sm = root.path().join("summary.csv");
    ok(&[
        "upt",
        "report",
        "summary",
        "--data",
        &s(&upt),
        "-o",
        &s(&sm),
    ]);
    let all = csv_rows(&sm)
        .into_iter()
        .find(|r| r["scope"] == "all")
        .unwrap();
    assert_eq!(
        (all["registered"].as_str(), all["finished"].as_str()),
        ("40", "40")
    );
    assert_eq!(all["passed"], passed.to_string());
    // Every login came from the PC the test used.
    let lg = root.path().join("logins.csv");
    ok(&["upt", "report", "logins", "--data", &s(&upt), "-o", &s(&lg)]);
    let lrows = csv_rows(&lg);
    assert_eq!(lrows.len(), 40);
    assert!(
        lrows.iter().any(|r| r["ip"] == "127.0.0.10")
            && lrows.iter().any(|r| r["ip"] == "127.0.1.29"),
        "{lrows:?}"
    );
    // The TUK may now purge S1.
    let out = ok(&["purge", "--data", &d, "--session", S1]);
    assert!(
        out.contains("purged demo-kk-a-2026/S1: 20 attempts"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// 6. Measurement: 2,000 participants × 100 items (run with --ignored)
// ---------------------------------------------------------------------------------------

/// `cargo test --test results -- --ignored --nocapture measure_2000_participants`
///
/// A package of 100 items and 2,000 participants (one session) is built with fresh keys and
/// imported; every participant logs in, answers all 100 items and finishes through the
/// exam rules on the writer (one writer job per participant, as the server would batch
/// them); then seal, upload over TLS to `tuk upt serve`, and import are timed.
#[test]
#[ignore = "measurement, not a check: 2,000 participants × 100 items takes minutes; run with --ignored --nocapture measure"]
fn measure_2000_participants() {
    let root = tempfile::Builder::new()
        .prefix("tuk-measure-")
        .tempdir()
        .unwrap();
    let r = root.path();
    let mut src = tuk::package::source::read(&demo("demo")).unwrap();
    let template = src.items[0].clone();
    src.items = (0..100)
        .map(|k| {
            let mut it = template.clone();
            it.id = format!("M-{k:03}");
            it.competency = if k < 50 {
                "pedagogik".into()
            } else {
                "profesional".into()
            };
            it.key = vec![["a", "b", "c", "d"][k % 4].to_string()];
            it
        })
        .collect();
    src.manifest.tests[0].items = 100;
    src.manifest.sessions.truncate(1);
    let base = src.roster[0].clone();
    src.roster = (0..2000)
        .map(|k| {
            let mut p = base.clone();
            p.participant = format!("2026{k:09}").into();
            p.name = format!("Peserta {k}");
            p.nilai_awal = Some(30.0 + (k % 50) as f64);
            p
        })
        .collect();
    let upt_key = SecretKey::generate("upt-m").unwrap();
    let tuk_key = SecretKey::generate("tuk-m").unwrap();
    let pkg = tuk::package::build(&src, &upt_key, &[tuk_key.public()], None).unwrap();
    std::fs::write(r.join("upt.key"), upt_key.to_text()).unwrap();
    std::fs::write(r.join("tuk.pub"), tuk_key.public().to_line()).unwrap();
    std::fs::write(r.join("m.tukpkg"), &pkg).unwrap();
    let data = r.join("tuk");
    App::init(
        &data,
        Some(SecretKey::parse(&tuk_key.to_text()).unwrap()),
        "admin-password",
    )
    .unwrap();
    let app = App::open(&data).unwrap();
    app.trust_add(&upt_key.public()).unwrap();
    let t0 = Instant::now();
    app.import(&pkg, "test").unwrap();
    eprintln!(
        "import of the package (2,000 argon2 passwords): {:?}",
        t0.elapsed()
    );
    app.open_session(&format!("{PKG}/S1"), None, tuk::app::TOKEN_ROTATE_S, "test")
        .unwrap()
        .unwrap();
    let t0 = Instant::now();
    let numbers: Vec<String> = src
        .roster
        .iter()
        .map(|p| p.participant.to_string())
        .collect();
    for (i, n) in numbers.iter().enumerate() {
        take_test_generic(&app, &format!("{PKG}/S1"), n, i);
    }
    eprintln!("2,000 × 100 answers through the writer: {:?}", t0.elapsed());
    app.shutdown();
    drop(app);

    let bundle = r.join("m.tukres");
    let t0 = Instant::now();
    ok(&[
        "seal",
        "--data",
        &s(&data),
        "--all",
        "-o",
        &s(&bundle),
        "--force",
    ]);
    let seal = t0.elapsed();
    let size = std::fs::metadata(&bundle).unwrap().len();
    let upt = common::receiver::upt_folder(
        &r.join("upt"),
        &r.join("upt.key"),
        &r.join("tuk.pub"),
        &r.join("m.tukpkg"),
    );
    let rx = common::upt_receiver(&upt, r, 512);
    let t0 = Instant::now();
    let (good, out, err) = rx.upload(&bundle, Some(&data));
    assert!(good, "{out}{err}");
    let upload = t0.elapsed();
    drop(rx);
    let upt2 = common::receiver::upt_folder(
        &r.join("upt2"),
        &r.join("upt.key"),
        &r.join("tuk.pub"),
        &r.join("m.tukpkg"),
    );
    let t0 = Instant::now();
    ok(&["upt", "import", &s(&bundle), "--data", &s(&upt2)]);
    let import = t0.elapsed();
    let t0 = Instant::now();
    ok(&[
        "upt",
        "report",
        "items",
        "--data",
        &s(&upt2),
        "-o",
        &s(&r.join("items.csv")),
    ]);
    let items = t0.elapsed();
    eprintln!(
        "MEASURED 2,000 participants × 100 items: bundle {} MiB; seal {:?}; upload (TLS, verify, import, receipt) {:?}; import from file {:?}; items report {:?}",
        size >> 20,
        seal,
        upload,
        import,
        items
    );
}

fn take_test_generic(app: &App, skey: &str, number: &str, i: usize) {
    let skey = SessionKey::new(skey);
    let number = ParticipantNo::new(number);
    app.writer
        .run_blocking(move |ex: &mut Exam| {
            let now = tuk::clock::now_ms();
            let cookie = CookieId::new(format!("cookie-{number}"));
            let mut puts = Vec::new();
            let (p, r) = ex.login(&number, &cookie, None, "10.1.2.3", now);
            puts.extend(p);
            r.unwrap();
            let token = ex.sessions[&skey].token.as_ref().unwrap().current.clone();
            let (p, r) = ex.start(&cookie, &token, "10.1.2.3", now);
            puts.extend(p);
            r.unwrap();
            let a = ex.attempt_of(&cookie).unwrap().into_owned();
            let bank = ex.banks[PKG].clone();
            for (j, f) in a.form.iter().enumerate() {
                let item = bank.item(&f.item).unwrap();
                let (p, r) = ex.save(
                    &cookie,
                    &f.item,
                    choice_for(item, right(i, j)),
                    false,
                    1,
                    now,
                );
                puts.extend(p);
                r.unwrap();
            }
            let (p, r) = ex.finish_by_participant(&cookie, now);
            puts.extend(p);
            r.unwrap();
            (puts, ())
        })
        .unwrap();
}

/// `docs/check-bundle.sh` checks a real bundle with openssl, b3sum, age, tar and jq, and
/// rejects a changed one. Skipped (with a note) where those tools are not installed.
#[test]
fn standard_tools_check_a_bundle() {
    let missing: Vec<&str> = ["openssl", "b3sum", "age", "jq", "tar"]
        .into_iter()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped: {} not installed (apt-get install age b3sum jq openssl)",
            missing.join(", ")
        );
        return;
    }
    // Three participants: the shell loop runs jq and b3sum once per event.
    let f = Fixture::with_limit(&[S1], false, 3);
    f.close(S1);
    let bytes = sealed(&f, &[S1]);
    let file = f._dir.path().join("s1.tukres");
    std::fs::write(&file, &bytes).unwrap();
    let script = repo().join("docs/check-bundle.sh");
    let check = |p: &Path| {
        Command::new("sh")
            .arg(&script)
            .arg(p)
            .arg(demo("demo-keys/tuk.pub"))
            .arg(demo("demo-keys/upt.key"))
            .output()
            .unwrap()
    };
    let out = check(&file);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Signature Verified Successfully")
            && text.contains("members: OK")
            && text.contains("chain demo-kk-a-2026/S1: OK"),
        "{text}"
    );
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 10] ^= 1;
    let badf = f._dir.path().join("bad.tukres");
    std::fs::write(&badf, &bad).unwrap();
    assert!(!check(&badf).status.success());
}

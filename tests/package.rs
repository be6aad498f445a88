//! Integration tests of the question package: the real `tuk` binary for what users type,
//! and the library (`tuk::package`, `tuk::keys`) where thousands of cases must run fast.
//!
//! Everything runs in temporary folders; the committed demo (`exam-packages/demo`,
//! `exam-packages/demo.tukpkg`, `exam-packages/demo-keys/`) is only read.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use tuk::keys::{self, PublicKey, SecretKey, TrustSet};
use tuk::package::{self, Bank, Header, Member};

const MAGIC: &[u8] = b"tuk-package v1\n";

// ---------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn demo_src() -> PathBuf {
    repo().join("exam-packages/demo")
}

fn demo_pkg() -> PathBuf {
    repo().join("exam-packages/demo.tukpkg")
}

fn demo_key(file: &str) -> PathBuf {
    repo().join("exam-packages/demo-keys").join(file)
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit ok: {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.ok, self.stdout, self.stderr
        )
    }
}

/// Runs the real binary.
fn tuk<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_tuk"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run tuk");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_ok(r: &Run) {
    assert!(r.ok, "expected success:\n{r:?}");
}

/// The command failed with exactly one line `tuk: error: ...` containing every `needle`.
fn assert_one_line_error(r: &Run, needles: &[&str]) {
    assert!(!r.ok, "expected failure:\n{r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{r:?}");
    assert!(
        lines[0].starts_with("tuk: error: "),
        "error line must start with `tuk: error: `:\n{r:?}"
    );
    for n in needles {
        assert!(lines[0].contains(n), "error should mention {n:?}:\n{r:?}");
    }
}

/// `tuk keygen --out DIR --name NAME`, returning (NAME.key, NAME.pub).
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let r = tuk([
        OsStr::new("keygen"),
        OsStr::new("--out"),
        dir.as_os_str(),
        OsStr::new("--name"),
        OsStr::new(name),
    ]);
    assert_ok(&r);
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

/// `tuk package build SRC --sign KEY --to PUB... -o OUT [--release-code CODE]`.
fn build(src: &Path, sign: &Path, to: &[&Path], out: &Path, code: Option<&str>) -> Run {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("package"),
        OsStr::new("build"),
        src.as_os_str(),
        OsStr::new("--sign"),
        sign.as_os_str(),
    ];
    for t in to {
        args.push(OsStr::new("--to"));
        args.push(t.as_os_str());
    }
    args.push(OsStr::new("-o"));
    args.push(out.as_os_str());
    if let Some(c) = code {
        args.push(OsStr::new("--release-code"));
        args.push(OsStr::new(c));
    }
    tuk(args)
}

/// `tuk package verify FILE --trust PUB [--key KEY] [--release-code CODE]`.
fn verify_cli(file: &Path, trust: &Path, key: Option<&Path>, code: Option<&str>) -> Run {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("package"),
        OsStr::new("verify"),
        file.as_os_str(),
        OsStr::new("--trust"),
        trust.as_os_str(),
    ];
    if let Some(k) = key {
        args.push(OsStr::new("--key"));
        args.push(k.as_os_str());
    }
    if let Some(c) = code {
        args.push(OsStr::new("--release-code"));
        args.push(OsStr::new(c));
    }
    tuk(args)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Replaces the first occurrence of `from` (which must be there) in a file.
fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// 1-based line of the first occurrence of `needle` in a file.
fn line_of(path: &Path, needle: &str) -> usize {
    let text = fs::read_to_string(path).unwrap();
    let at = text.find(needle).expect("needle in file");
    text[..at].matches('\n').count() + 1
}

fn demo_trust() -> TrustSet {
    TrustSet::new(vec![PublicKey::read(&demo_key("upt.pub")).unwrap()])
}

fn demo_bytes() -> Vec<u8> {
    fs::read(demo_pkg()).unwrap()
}

/// Splits a package into (header line, signature line, payload), without checking anything.
fn split(bytes: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let rest = bytes.strip_prefix(MAGIC).expect("magic");
    let nl = rest.iter().position(|&b| b == b'\n').unwrap();
    let (header, rest) = (&rest[..nl], &rest[nl + 1..]);
    let nl = rest.iter().position(|&b| b == b'\n').unwrap();
    (header, &rest[..nl], &rest[nl + 1..])
}

/// Assembles a package the documented way: magic, header line, Ed25519 signature over
/// magic + header line, payload.
fn assemble(magic: &[u8], header_line: &[u8], signer: &SecretKey, payload: &[u8]) -> Vec<u8> {
    let sig = signer.sign(&[magic, header_line].concat());
    let mut out = Vec::new();
    out.extend_from_slice(magic);
    out.extend_from_slice(header_line);
    out.push(b'\n');
    out.extend_from_slice(keys::signature_to_text(&sig).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload);
    out
}

fn resign(h: &Header, signer: &SecretKey, payload: &[u8]) -> Vec<u8> {
    assemble(MAGIC, &serde_json::to_vec(h).unwrap(), signer, payload)
}

fn demo_header() -> Header {
    let bytes = demo_bytes();
    serde_json::from_slice(split(&bytes).0).unwrap()
}

fn upt_key() -> SecretKey {
    SecretKey::read(&demo_key("upt.key")).unwrap()
}

fn tuk_key() -> SecretKey {
    SecretKey::read(&demo_key("tuk.key")).unwrap()
}

fn verify_err(bytes: &[u8]) -> String {
    match package::verify(bytes, &demo_trust()) {
        Ok(_) => panic!("a damaged or hostile package verified"),
        Err(e) => tuk::error_chain(&e),
    }
}

fn hash_member(path: &str, bytes: &[u8]) -> Member {
    Member {
        path: path.into(),
        size: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// round trips
// ---------------------------------------------------------------------------------------

#[test]
fn round_trip_to_two_tuks_and_a_foreign_tuk_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let (upt_key, upt_pub) = keygen(&keys_dir, "upt-test");
    let (a_key, a_pub) = keygen(&keys_dir, "tuk-a");
    let (b_key, b_pub) = keygen(&keys_dir, "tuk-b");
    let (c_key, _c_pub) = keygen(&keys_dir, "tuk-foreign");
    let out = dir.path().join("demo.tukpkg");

    let r = build(&demo_src(), &upt_key, &[&a_pub, &b_pub], &out, None);
    assert_ok(&r);
    assert!(r.stdout.contains("60 items, 40 participants"), "{r:?}");

    for key in [&a_key, &b_key] {
        let r = verify_cli(&out, &upt_pub, Some(key), None);
        assert_ok(&r);
        assert!(r.stdout.contains("signature: OK"), "{r:?}");
        assert!(r.stdout.contains("payload: OK"), "{r:?}");
    }

    let r = verify_cli(&out, &upt_pub, Some(&c_key), None);
    assert_one_line_error(&r, &["not for this TUK", "tuk-foreign", "tuk-a", "tuk-b"]);

    // Another UPT's key is not the signer: the signature is refused before anything else.
    let r = verify_cli(&out, &demo_key("upt.pub"), Some(&a_key), None);
    assert_one_line_error(&r, &["does not trust"]);
}

#[test]
fn committed_demo_verifies_and_rebuilds_to_the_same_members() {
    let r = verify_cli(
        &demo_pkg(),
        &demo_key("upt.pub"),
        Some(&demo_key("tuk.key")),
        None,
    );
    assert_ok(&r);
    assert!(r.stdout.contains("payload: OK"), "{r:?}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo.tukpkg");
    let r = build(
        &demo_src(),
        &demo_key("upt.key"),
        &[&demo_key("tuk.pub")],
        &out,
        None,
    );
    assert_ok(&r);
    let r = verify_cli(&out, &demo_key("upt.pub"), Some(&demo_key("tuk.key")), None);
    assert_ok(&r);

    let committed = demo_bytes();
    let rebuilt = fs::read(&out).unwrap();
    assert_ne!(committed, rebuilt, "age encryption is randomised");
    let trust = demo_trust();
    let a = package::verify(&committed, &trust).unwrap();
    let b = package::verify(&rebuilt, &trust).unwrap();
    assert_eq!(
        a.header().members,
        b.header().members,
        "exam-packages/demo.tukpkg is out of date with exam-packages/demo: rebuild it (see exam-packages/README.md)"
    );
    assert_eq!(a.header().package_id, b.header().package_id);
    assert_eq!(a.header().version, b.header().version);
    assert_eq!(a.header().signer, b.header().signer);
    assert_eq!(a.header().recipients, b.header().recipients);
    assert!(!a.header().release_code);
}

// ---------------------------------------------------------------------------------------
// tampering
// ---------------------------------------------------------------------------------------

#[test]
fn flipping_any_single_bit_is_detected() {
    let mut bytes = demo_bytes();
    assert!(package::verify(&bytes, &demo_trust()).is_ok());
    let trust = demo_trust();
    let (header, sig, payload) = split(&bytes);
    let payload_start = MAGIC.len() + header.len() + 1 + sig.len() + 1;
    assert_eq!(payload_start + payload.len(), bytes.len());

    // Every bit of the magic, header and signature lines (and their newlines).
    let mut positions: Vec<(usize, u8)> = Vec::new();
    for pos in 0..payload_start {
        for bit in 0..8 {
            positions.push((pos, 1 << bit));
        }
    }
    // At least 200 positions spread over the payload, with its first and last byte.
    let n = 256;
    let len = bytes.len() - payload_start;
    for i in 0..n {
        let pos = payload_start + i * (len - 1) / (n - 1);
        positions.push((pos, 1 << (i % 8)));
    }
    assert!(positions.iter().any(|&(p, _)| p == payload_start));
    assert!(positions.iter().any(|&(p, _)| p == bytes.len() - 1));

    let mut passed = Vec::new();
    for &(pos, mask) in &positions {
        bytes[pos] ^= mask;
        if package::verify(&bytes, &trust).is_ok() {
            passed.push((pos, mask));
        }
        bytes[pos] ^= mask;
    }
    assert!(
        passed.is_empty(),
        "{} of {} single-bit flips verified, e.g. {:?}",
        passed.len(),
        positions.len(),
        &passed[..passed.len().min(10)]
    );
}

#[test]
fn truncated_or_extended_packages_are_refused() {
    let bytes = demo_bytes();
    let (header, sig, _) = split(&bytes);
    let payload_start = MAGIC.len() + header.len() + 1 + sig.len() + 1;
    for cut in [
        0,
        1,
        MAGIC.len() - 1,
        MAGIC.len(),
        MAGIC.len() + 10,
        MAGIC.len() + header.len(),
        MAGIC.len() + header.len() + 1,
        MAGIC.len() + header.len() + 40,
        payload_start - 1,
        payload_start,
        payload_start + 1,
        payload_start + 1000,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let err = verify_err(&bytes[..cut]);
        assert!(!err.is_empty(), "cut at {cut}");
    }
    let err = verify_err(&bytes[..bytes.len() - 1]);
    assert!(err.contains("truncated"), "{err}");

    let mut longer = bytes.clone();
    longer.push(0);
    let err = verify_err(&longer);
    assert!(err.contains("bytes added"), "{err}");
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"\n");
    verify_err(&longer);
}

#[test]
fn package_resigned_by_an_untrusted_key_is_refused() {
    let bytes = demo_bytes();
    let (_, _, payload) = split(&bytes);
    let mallory = SecretKey::generate("mallory").unwrap();

    // An honest-looking header naming the impostor as signer.
    let mut h = demo_header();
    h.signer = mallory.public().signer_id();
    let err = verify_err(&resign(&h, &mallory, payload));
    assert!(err.contains("does not trust"), "{err}");
    assert!(err.contains(&mallory.public().fingerprint()), "{err}");

    // The header still names the UPT, but the impostor signed it.
    let err = verify_err(&resign(&demo_header(), &mallory, payload));
    assert!(err.contains("signature does not match"), "{err}");

    // And the CLI says the same.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("evil.tukpkg");
    fs::write(&f, resign(&h, &mallory, payload)).unwrap();
    let r = verify_cli(&f, &demo_key("upt.pub"), None, None);
    assert_one_line_error(&r, &["does not trust", "evil.tukpkg"]);
}

#[test]
fn unknown_format_version_asks_to_update_tuk() {
    let bytes = demo_bytes();
    let (header, _, payload) = split(&bytes);
    let upt = upt_key();

    // A v2 magic line, signed as v2 would be.
    let v2 = assemble(b"tuk-package v2\n", header, &upt, payload);
    let err = verify_err(&v2);
    assert!(err.contains("update tuk"), "{err}");

    // `"format":2` in the header, re-signed with the trusted UPT key.
    let mut h = demo_header();
    h.format = 2;
    let err = verify_err(&resign(&h, &upt, payload));
    assert!(err.contains("update tuk"), "{err}");

    // A newer format will also carry fields this tuk does not know: still "update tuk",
    // not "damaged".
    let mut v = serde_json::to_value(demo_header()).unwrap();
    v["format"] = 2.into();
    v["minimum_tuk"] = "2.0.0".into();
    let line = serde_json::to_vec(&v).unwrap();
    let newer = assemble(MAGIC, &line, &upt, payload);
    let err = verify_err(&newer);
    assert!(err.contains("update tuk"), "{err}");
    // `inspect` (self-verifying) says the same.
    let err = match package::verify_self(&newer) {
        Ok(_) => panic!("format 2 inspected"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("update tuk"), "{err}");

    // Not a package at all.
    let err = verify_err(b"PK\x03\x04 not a package");
    assert!(err.contains("not a tuk package"), "{err}");
}

// ---------------------------------------------------------------------------------------
// hostile members
// ---------------------------------------------------------------------------------------

#[test]
fn header_members_with_traversal_or_absurd_sizes_are_refused() {
    let bytes = demo_bytes();
    let (_, _, payload) = split(&bytes);
    let upt = upt_key();
    let fake = "0".repeat(64);
    let bad = |path: &str, size: u64| Member {
        path: path.into(),
        size,
        blake3: fake.clone(),
    };

    // Sanity: re-signing the unchanged header with the UPT key verifies.
    assert!(package::verify(&resign(&demo_header(), &upt, payload), &demo_trust()).is_ok());

    for (member, needle) in [
        (bad("../etc/passwd", 10), "../etc/passwd"),
        (bad("media/../../x", 10), "media/../../x"),
        (bad("media/../../x.png", 10), "media/../../x.png"),
        (bad("/etc/passwd", 10), "/etc/passwd"),
        (bad("media/sub/x.png", 10), "media/sub/x.png"),
        (bad("media/evil.exe", 10), "media/evil.exe"),
        (bad("media/.hidden.png", 10), "media/.hidden.png"),
        (bad("MANIFEST.JSON", 10), "MANIFEST.JSON"),
        (bad("", 10), "\"\""),
        (bad("media/big.png", 1 << 40), "media/big.png"),
        (bad("questionnaire.json", 1 << 40), "questionnaire.json"),
    ] {
        let mut h = demo_header();
        h.members.retain(|m| m.path != member.path);
        h.members.push(member);
        let err = verify_err(&resign(&h, &upt, payload));
        assert!(err.contains(needle), "{needle}: {err}");

        // The same in the release layer's member list.
        let mut h = demo_header();
        h.release_members
            .push(bad(needle.trim_matches('"'), 1 << 40));
        let err = verify_err(&resign(&h, &upt, payload));
        assert!(err.contains(needle), "release layer {needle}: {err}");
    }

    // An existing member claiming 1 TiB.
    let mut h = demo_header();
    h.members
        .iter_mut()
        .find(|m| m.path == "items.json")
        .unwrap()
        .size = 1 << 40;
    let err = verify_err(&resign(&h, &upt, payload));
    assert!(
        err.contains("items.json") && err.contains("absurd size"),
        "{err}"
    );

    // A member listed twice.
    let mut h = demo_header();
    let roster = h.members[1].clone();
    h.members.push(roster);
    let err = verify_err(&resign(&h, &upt, payload));
    assert!(
        err.contains("roster.json") && err.contains("twice"),
        "{err}"
    );

    // Absurdly many members.
    let mut h = demo_header();
    for i in 0..10_001 {
        h.members.push(bad(&format!("media/m{i}.png"), 1));
    }
    let err = verify_err(&resign(&h, &upt, payload));
    assert!(err.contains("at most"), "{err}");

    // A payload that claims to be 1 TiB.
    let mut h = demo_header();
    h.payload.size = 1 << 40;
    let err = verify_err(&resign(&h, &upt, payload));
    assert!(err.contains("truncated or has bytes added"), "{err}");
}

/// The demo payload's tar members, decrypted with the demo TUK key.
fn demo_members() -> Vec<(String, Vec<u8>)> {
    members_of(&demo_bytes())
}

/// A package's payload members, decrypted with the demo TUK key, without any check.
fn members_of(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let (_, _, payload) = split(bytes);
    let key = tuk_key();
    let d = age::Decryptor::new(payload).unwrap();
    let mut plain = Vec::new();
    d.decrypt(std::iter::once(&key.identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let mut out = Vec::new();
    let mut a = tar::Archive::new(plain.as_slice());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        out.push((path, b));
    }
    out
}

/// A tar entry written byte by byte, so names the `tar` crate would refuse get through.
fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(kind);
    if kind == tar::EntryType::Symlink {
        h.set_link_name("/etc/passwd").unwrap();
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// Re-encrypts `members` (plus `extra` raw entries) to the demo TUK and signs a header
/// that lists `listed`.
fn craft_payload(
    members: &[(String, Vec<u8>)],
    extra: &[(&str, tar::EntryType, &[u8])],
    listed: Vec<Member>,
) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in members {
        raw_entry(&mut b, path, tar::EntryType::Regular, data);
    }
    for (path, kind, data) in extra {
        raw_entry(&mut b, path, *kind, data);
    }
    let plain = b.into_inner().unwrap();
    let recipient = tuk_key().identity.to_public();
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .unwrap();
    let mut payload = Vec::new();
    let mut w = enc.wrap_output(&mut payload).unwrap();
    w.write_all(&plain).unwrap();
    w.finish().unwrap();
    let mut h = demo_header();
    h.payload = hash_member("payload", &payload);
    h.members = listed;
    resign(&h, &upt_key(), &payload)
}

fn open_err(bytes: &[u8]) -> String {
    let pkg = package::verify(bytes, &demo_trust()).expect("the crafted header verifies");
    match pkg.open(&tuk_key()) {
        Ok(_) => panic!("a hostile payload opened"),
        Err(e) => tuk::error_chain(&e),
    }
}

#[test]
fn payload_entries_with_traversal_links_or_wrong_sizes_are_refused_at_open() {
    let members = demo_members();
    let listed: Vec<Member> = members.iter().map(|(p, b)| hash_member(p, b)).collect();

    // Sanity: the same members re-packed open fine.
    let ok = craft_payload(&members, &[], listed.clone());
    let pkg = package::verify(&ok, &demo_trust()).unwrap();
    assert!(pkg.open(&tuk_key()).is_ok());

    let regular = tar::EntryType::Regular;
    for (name, kind, needle) in [
        ("../etc/passwd", regular, "../etc/passwd"),
        ("media/../../x.png", regular, "media/../../x.png"),
        ("/etc/cron.d/x", regular, "/etc/cron.d/x"),
        (
            "media/extra.png",
            regular,
            "not listed in the signed header",
        ),
        (
            "media/link.png",
            tar::EntryType::Symlink,
            "not a plain file",
        ),
        ("media", tar::EntryType::Directory, "not a plain file"),
    ] {
        let err = open_err(&craft_payload(
            &members,
            &[(name, kind, b"x".as_slice())],
            listed.clone(),
        ));
        assert!(err.contains(needle), "{name}: {err}");
        assert!(err.contains(name), "{name}: {err}");
    }

    // A listed member that is missing.
    let without_media: Vec<_> = members
        .iter()
        .filter(|(p, _)| !p.starts_with("media/garis-bilangan"))
        .cloned()
        .collect();
    let err = open_err(&craft_payload(&without_media, &[], listed.clone()));
    assert!(
        err.contains("media/garis-bilangan.svg") && err.contains("missing"),
        "{err}"
    );

    // A member whose content differs from the signed hash, same size.
    let mut changed = members.clone();
    let items = changed.iter_mut().find(|(p, _)| p == "items.json").unwrap();
    let i = items.1.len() / 2;
    items.1[i] ^= 1;
    let err = open_err(&craft_payload(&changed, &[], listed.clone()));
    assert!(err.contains("items.json") && err.contains("hash"), "{err}");

    // A member with another size than the signed header says.
    let mut longer = members.clone();
    longer
        .iter_mut()
        .find(|(p, _)| p == "roster.json")
        .unwrap()
        .1
        .push(b' ');
    let err = open_err(&craft_payload(&longer, &[], listed.clone()));
    assert!(
        err.contains("roster.json") && err.contains("bytes"),
        "{err}"
    );

    // A member appearing twice.
    let mut twice = members.clone();
    twice.push(members[0].clone());
    let err = open_err(&craft_payload(&twice, &[], listed));
    assert!(
        err.contains("manifest.json") && err.contains("twice"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// bad sources: each fails with one line naming the place, and writes nothing
// ---------------------------------------------------------------------------------------

struct Broken {
    dir: tempfile::TempDir,
}

impl Broken {
    /// A copy of the demo source to break.
    fn new() -> Broken {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&demo_src(), &dir.path().join("src"));
        fs::create_dir(dir.path().join("out")).unwrap();
        Broken { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("src").join(rel)
    }

    fn items(&self) -> PathBuf {
        self.path("items/kka.toml")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out/demo.tukpkg")
    }

    fn build(&self) -> Run {
        build(
            &self.dir.path().join("src"),
            &demo_key("upt.key"),
            &[&demo_key("tuk.pub")],
            &self.out(),
            None,
        )
    }

    /// Build fails with one line naming every needle, and leaves no file behind.
    fn fails_with(&self, needles: &[&str]) {
        let r = self.build();
        assert_one_line_error(&r, needles);
        assert!(r.stdout.is_empty(), "{r:?}");
        assert!(!self.out().exists(), "a failed build left {:?}", self.out());
        let left: Vec<_> = fs::read_dir(self.dir.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "a failed build left {left:?}");
    }
}

#[test]
fn unbroken_copy_of_the_demo_builds() {
    let b = Broken::new();
    assert_ok(&b.build());
    assert!(b.out().exists());
}

#[test]
fn bad_source_duplicate_item_id() {
    let b = Broken::new();
    edit(&b.items(), r#"id = "KKA-P02""#, r#"id = "KKA-P01""#);
    b.fails_with(&["item KKA-P01", "used twice"]);
}

#[test]
fn bad_source_missing_media_file() {
    let b = Broken::new();
    fs::remove_file(b.path("media/garis-bilangan.svg")).unwrap();
    b.fails_with(&["item KKA-M04", "media/garis-bilangan.svg", "missing"]);
}

#[test]
fn bad_source_item_without_key() {
    let b = Broken::new();
    let line = line_of(&b.items(), "[[item]]");
    edit(&b.items(), "key = [\"d\"]\n", "");
    b.fails_with(&["kka.toml, line ", "missing field `key`"]);
    // The parser points at the table of the first item (or inside it).
    let r = b.build();
    assert!(
        (line..line + 16).any(|n| r.stderr.contains(&format!("kka.toml, line {n}:"))),
        "expected a line of item KKA-P01 (from line {line}): {r:?}"
    );

    let b = Broken::new();
    edit(&b.items(), "key = [\"d\"]\n", "key = []\n");
    b.fails_with(&["item KKA-P01", "has no key"]);
}

#[test]
fn bad_source_key_not_among_options() {
    let b = Broken::new();
    edit(&b.items(), "key = [\"d\"]\n", "key = [\"f\"]\n");
    b.fails_with(&["item KKA-P01", "\"f\"", "not among the options"]);
}

#[test]
fn bad_source_roster_unknown_test() {
    let b = Broken::new();
    edit(&b.path("roster.csv"), ",kka,S1,", ",kkb,S1,");
    b.fails_with(&["participant 2026050100001", "unknown test", "kkb"]);
}

#[test]
fn bad_source_roster_unknown_session() {
    let b = Broken::new();
    edit(&b.path("roster.csv"), ",kka,S1,", ",kka,S9,");
    b.fails_with(&["participant 2026050100001", "unknown session", "S9"]);
}

#[test]
fn bad_source_roster_wrong_header() {
    let b = Broken::new();
    edit(
        &b.path("roster.csv"),
        "nilai_awal,extra_minutes",
        "nilai,extra_minutes",
    );
    b.fails_with(&["roster.csv, line 1", "header must be exactly"]);

    let b = Broken::new();
    edit(
        &b.path("roster.csv"),
        "participant,name,",
        "name,participant,",
    );
    b.fails_with(&["roster.csv, line 1", "header must be exactly"]);
}

#[test]
fn bad_source_roster_nilai_awal_not_a_number() {
    let b = Broken::new();
    edit(&b.path("roster.csv"), ",61.43,", ",enam puluh,");
    b.fails_with(&[
        "roster.csv, line 3",
        "nilai_awal",
        "enam puluh",
        "not a number",
    ]);

    let b = Broken::new();
    edit(&b.path("roster.csv"), ",61.43,", ",NaN,");
    b.fails_with(&["roster.csv, line 3", "nilai_awal"]);

    let b = Broken::new();
    edit(&b.path("roster.csv"), ",61.43,", ",161.43,");
    b.fails_with(&[
        "participant 2026050100002",
        "nilai_awal",
        "between 0 and 100",
    ]);
}

#[test]
fn bad_source_roster_row_with_too_few_fields() {
    let b = Broken::new();
    let roster = b.path("roster.csv");
    let mut text = fs::read_to_string(&roster).unwrap();
    let lines = text.lines().count();
    text.push_str("2026050199999,Budi Santoso,SMP Negeri 9\n");
    fs::write(&roster, text).unwrap();
    b.fails_with(&["roster.csv", &format!("line: {}", lines + 1), "fields"]);
}

#[test]
fn bad_source_html_script() {
    let b = Broken::new();
    edit(
        &b.items(),
        "<p>Menurut teori perkembangan kognitif Piaget",
        "<p><script>alert(1)</script>Menurut teori perkembangan kognitif Piaget",
    );
    b.fails_with(&["item KKA-P01", "stem", "<script>", "not allowed"]);
}

#[test]
fn bad_source_html_event_handler() {
    let b = Broken::new();
    edit(
        &b.items(),
        "<p>Menurut teori perkembangan kognitif Piaget",
        "<p onclick=\"alert(1)\">Menurut teori perkembangan kognitif Piaget",
    );
    b.fails_with(&["item KKA-P01", "onclick", "not allowed"]);

    // In an option too.
    let b = Broken::new();
    edit(
        &b.items(),
        r#"html = "sensorimotor""#,
        r#"html = "<img src='media/garis-bilangan.svg' onerror='alert(1)'>""#,
    );
    b.fails_with(&["item KKA-P01", "option a", "onerror"]);

    // And in the test instructions.
    let b = Broken::new();
    edit(
        &b.path("package.toml"),
        "<p><strong>Petunjuk Pengerjaan",
        "<p style=\"x\"><strong>Petunjuk Pengerjaan",
    );
    b.fails_with(&["test \"kka\" instructions", "style"]);
}

#[test]
fn bad_source_toml_syntax_error_names_file_and_line() {
    let b = Broken::new();
    let line = line_of(&b.items(), r#"indicator = "Menentukan layanan"#);
    edit(
        &b.items(),
        r#"indicator = "Menentukan layanan"#,
        r#"indicator = = "Menentukan layanan"#,
    );
    b.fails_with(&["items/kka.toml", &format!("kka.toml, line {line}:")]);

    let b = Broken::new();
    let line = line_of(&b.path("package.toml"), "duration_minutes = 90");
    edit(
        &b.path("package.toml"),
        "duration_minutes = 90",
        "duration_minutes = ninety",
    );
    b.fails_with(&[&format!("package.toml, line {line}:")]);
}

#[test]
fn bad_source_too_many_options() {
    let b = Broken::new();
    edit(
        &b.items(),
        "  { id = \"e\", html = \"pascaoperasional\" },\n",
        "  { id = \"e\", html = \"pascaoperasional\" },\n  { id = \"f\", html = \"metaoperasional\" },\n",
    );
    b.fails_with(&["item KKA-P01", "2 to 5 options", "has 6"]);
}

#[test]
fn bad_source_draw_counts_do_not_match() {
    let draw = |a: u32, b: u32| {
        format!(
            "[[test.draw]]\npool = \"pedagogik\"\ncount = {a}\n\n[[test.draw]]\npool = \"profesional\"\ncount = {b}\n\n[[session]]"
        )
    };
    // Sanity: a matching draw builds.
    let b = Broken::new();
    edit(&b.path("package.toml"), "[[session]]", &draw(30, 30));
    assert_ok(&b.build());

    let b = Broken::new();
    edit(&b.path("package.toml"), "[[session]]", &draw(30, 20));
    b.fails_with(&["test \"kka\"", "add up to 50", "items = 60"]);

    let b = Broken::new();
    edit(&b.path("package.toml"), "[[session]]", &draw(31, 29));
    b.fails_with(&["test \"kka\"", "pool \"pedagogik\"", "only 30"]);
}

#[test]
fn bad_source_draw_pool_listed_twice() {
    // 20 + 20 from a pool of 30 cannot be drawn, though each entry alone fits.
    let b = Broken::new();
    edit(
        &b.path("package.toml"),
        "[[session]]",
        "[[test.draw]]\npool = \"pedagogik\"\ncount = 20\n\n[[test.draw]]\npool = \"pedagogik\"\ncount = 20\n\n\
         [[test.draw]]\npool = \"profesional\"\ncount = 20\n\n[[session]]",
    );
    b.fails_with(&["test \"kka\"", "pool \"pedagogik\"", "two [[test.draw]]"]);
}

#[test]
fn weights_with_two_decimals_are_accepted_and_three_are_not() {
    // 0.29 × 100 is 28.999999999999996 in floating point: still two decimals.
    let b = Broken::new();
    let text = fs::read_to_string(b.items()).unwrap();
    let mut weights = ["0.29", "0.57", "1.15", "2.35", "0.01", "99.99"]
        .iter()
        .cycle();
    let text = text
        .lines()
        .map(|l| {
            if l == "weight = 1" {
                format!("weight = {}", weights.next().unwrap())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(b.items(), text).unwrap();
    assert_ok(&b.build());

    let b = Broken::new();
    edit(&b.items(), "weight = 1\n", "weight = 1.005\n");
    b.fails_with(&["item KKA-P01", "at most 2 decimals"]);

    let b = Broken::new();
    edit(&b.items(), "weight = 1\n", "weight = 0\n");
    b.fails_with(&["item KKA-P01", "weight must be more than 0"]);
}

#[test]
fn failed_build_leaves_an_existing_package_untouched() {
    let b = Broken::new();
    fs::write(b.out(), b"previous package").unwrap();
    edit(&b.items(), r#"id = "KKA-P02""#, r#"id = "KKA-P01""#);
    let r = b.build();
    assert_one_line_error(&r, &["KKA-P01"]);
    assert_eq!(fs::read(b.out()).unwrap(), b"previous package");
    assert_eq!(fs::read_dir(b.dir.path().join("out")).unwrap().count(), 1);
}

// ---------------------------------------------------------------------------------------
// release code
// ---------------------------------------------------------------------------------------

#[test]
fn release_code_locks_the_items_until_the_exam_day() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("locked.tukpkg");
    let code = "pagi-senin-24-nov";

    let r = build(
        &demo_src(),
        &demo_key("upt.key"),
        &[&demo_key("tuk.pub")],
        &dir.path().join("short.tukpkg"),
        Some("1234567"),
    );
    assert_one_line_error(&r, &["at least 8 characters"]);
    assert!(!dir.path().join("short.tukpkg").exists());

    let r = build(
        &demo_src(),
        &demo_key("upt.key"),
        &[&demo_key("tuk.pub")],
        &out,
        Some(code),
    );
    assert_ok(&r);

    let upt_pub = demo_key("upt.pub");
    let tuk_key_path = demo_key("tuk.key");
    let r = verify_cli(&out, &upt_pub, Some(&tuk_key_path), Some(code));
    assert_ok(&r);
    assert!(r.stdout.contains("release layer: OK, 60 items"), "{r:?}");

    let r = verify_cli(
        &out,
        &upt_pub,
        Some(&tuk_key_path),
        Some("pagi-selasa-25-nov"),
    );
    assert_one_line_error(&r, &["release code is wrong"]);

    // Without the code, the outer layer still verifies and opens.
    let r = verify_cli(&out, &upt_pub, Some(&tuk_key_path), None);
    assert_ok(&r);
    assert!(!r.stdout.contains("release layer"), "{r:?}");

    let bytes = fs::read(&out).unwrap();
    let pkg = package::verify(&bytes, &demo_trust()).unwrap();
    assert!(pkg.header().release_code);
    assert!(!pkg.header().release_members.is_empty());
    assert!(
        pkg.header()
            .members
            .iter()
            .all(|m| m.path != "items.json" && !m.path.starts_with("media/"))
    );
    let contents = pkg.open(&tuk_key()).unwrap();
    assert!(matches!(contents.bank, Bank::Locked(_)));
    assert_eq!(contents.roster.len(), 40);
    let err = match pkg.unlock(&contents, None) {
        Ok(_) => panic!("locked items opened without the code"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("needs the release code"), "{err}");
    let bank = pkg.unlock(&contents, Some(code)).unwrap();
    assert_eq!(bank.items.len(), 60);
    assert_eq!(bank.media.len(), 5);

    // The release layer is a standard age scrypt file with a fixed work factor (the TUK
    // server's memory and CPU pay for it, not the builder's).
    let members = members_of(&bytes);
    let names: Vec<&str> = members.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "manifest.json",
            "roster.json",
            "questionnaire.json",
            "release.age"
        ]
    );
    let sealed = &members[3].1;
    let stanza = sealed.split(|&b| b == b'\n').nth(1).unwrap();
    let stanza = String::from_utf8_lossy(stanza);
    let fields: Vec<&str> = stanza.split(' ').collect();
    assert_eq!(fields[..2], ["->", "scrypt"], "{stanza}");
    assert_eq!(
        fields[3],
        package::RELEASE_CODE_LOG_N.to_string(),
        "{stanza}"
    );

    let r = tuk([
        OsStr::new("package"),
        OsStr::new("inspect"),
        out.as_os_str(),
        OsStr::new("--key"),
        tuk_key_path.as_os_str(),
    ]);
    assert_ok(&r);
    assert!(r.stdout.contains("items: locked"), "{r:?}");
    assert!(r.stdout.contains("release code: required"), "{r:?}");
}

// ---------------------------------------------------------------------------------------
// confidentiality
// ---------------------------------------------------------------------------------------

/// Text of an HTML fragment without its tags, whitespace collapsed.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Distinctive secrets of the demo bank: a piece of every stem, and the text of every key
/// option long enough to be unmistakable.
fn demo_secrets() -> Vec<String> {
    let text = fs::read_to_string(demo_src().join("items/kka.toml")).unwrap();
    let bank: toml::Table = toml::from_str(&text).unwrap();
    let mut secrets = Vec::new();
    for item in bank["item"].as_array().unwrap() {
        let stem = text_of(item["stem"].as_str().unwrap());
        let piece: String = stem.chars().take(40).collect();
        assert!(piece.chars().count() >= 20, "{stem}");
        secrets.push(piece);
        let keys: Vec<&str> = item["key"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        if let Some(options) = item.get("options").and_then(|o| o.as_array()) {
            for o in options {
                if keys.contains(&o["id"].as_str().unwrap()) {
                    let t = text_of(o["html"].as_str().unwrap());
                    if t.chars().count() >= 12 {
                        secrets.push(t);
                    }
                }
            }
        }
    }
    assert!(secrets.len() >= 90, "{}", secrets.len());
    secrets
}

#[test]
fn inspect_prints_counts_and_no_item_text_or_keys() {
    let r = tuk([
        OsStr::new("package"),
        OsStr::new("inspect"),
        demo_pkg().as_os_str(),
        OsStr::new("--key"),
        demo_key("tuk.key").as_os_str(),
    ]);
    assert_ok(&r);
    let out = &r.stdout;
    assert!(out.lines().any(|l| l == "items: 60"), "{r:?}");
    assert!(out.lines().any(|l| l == "participants: 40"), "{r:?}");
    assert!(out.lines().any(|l| l == "tests: 1"), "{r:?}");
    assert!(out.contains("release code: none"), "{r:?}");

    // A few stems by hand, then all of them.
    for s in [
        "perkembangan kognitif Piaget",
        "Dimas, peserta didik kelas VII",
        "zona perkembangan proksimal",
        "operasional formal",
        "Howard Gardner",
        "memberikan tugas pengayaan",
    ] {
        assert!(!out.contains(s), "inspect printed {s:?}:\n{out}");
    }
    for s in demo_secrets() {
        assert!(!out.contains(&s), "inspect printed {s:?}:\n{out}");
    }
    for word in [
        "\"key\"",
        "key =",
        "kunci",
        "partial_credit",
        "\"options\"",
        "stem",
    ] {
        assert!(!out.contains(word), "inspect printed {word:?}:\n{out}");
    }
    // Nor does it leak anything through stderr.
    assert!(r.stderr.is_empty(), "{r:?}");

    // Without a key it shows the header only.
    let r = tuk([
        OsStr::new("package"),
        OsStr::new("inspect"),
        demo_pkg().as_os_str(),
    ]);
    assert_ok(&r);
    assert!(
        r.stdout.contains("package: demo-kk-a-2026 version 1"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("items:"), "{r:?}");
}

#[test]
fn package_file_holds_no_item_text_in_the_clear() {
    let bytes = demo_bytes();
    let text = String::from_utf8_lossy(&bytes);
    for s in demo_secrets() {
        assert!(!text.contains(&s), "demo.tukpkg holds {s:?} in the clear");
    }
    assert!(!text.contains("KKA-P01"));
}

// ---------------------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------------------

#[test]
fn keygen_refuses_to_overwrite_and_keeps_the_secret_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "tuk-smpn1-sleman");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600, "the secret key must be 0600");
    assert_eq!(mode(&public), 0o644);
    let key_text = fs::read(&key).unwrap();
    let pub_text = fs::read(&public).unwrap();

    let again = tuk([
        OsStr::new("keygen"),
        OsStr::new("--out"),
        dir.path().as_os_str(),
        OsStr::new("--name"),
        OsStr::new("tuk-smpn1-sleman"),
    ]);
    assert_one_line_error(&again, &["already exists", "never overwritten"]);
    assert_eq!(fs::read(&key).unwrap(), key_text);
    assert_eq!(fs::read(&public).unwrap(), pub_text);

    // Only the .pub left behind still blocks a new pair of that name.
    fs::remove_file(&key).unwrap();
    let again = tuk([
        OsStr::new("keygen"),
        OsStr::new("--out"),
        dir.path().as_os_str(),
        OsStr::new("--name"),
        OsStr::new("tuk-smpn1-sleman"),
    ]);
    assert_one_line_error(&again, &["tuk-smpn1-sleman.pub", "already exists"]);
    assert!(!key.exists());

    // The files parse, and the public key matches the secret one.
    let (key2, public2) = keygen(dir.path(), "upt-jabar");
    let s = SecretKey::read(&key2).unwrap();
    let p = PublicKey::read(&public2).unwrap();
    assert_eq!(s.public().signer_id(), p.signer_id());
    assert_eq!(p.name, "upt-jabar");

    let bad = tuk([
        OsStr::new("keygen"),
        OsStr::new("--out"),
        dir.path().as_os_str(),
        OsStr::new("--name"),
        OsStr::new("../escape"),
    ]);
    assert_one_line_error(&bad, &["not allowed"]);
}

//! The signed, encrypted container shared by question packages (`.tukpkg`) and sealed
//! result bundles (`.tukres`).
//!
//! ```text
//! <magic line>\n                          e.g. `tuk-package v1` or `tuk-results v1`
//! {"format":1,...}\n                      header: one line of JSON
//! ed25519:<base64 signature>\n            Ed25519 over the magic line + the header line
//! <age file to end of file>               payload: a tar, encrypted with age
//! ```
//!
//! The header names the payload's size and blake3 and every member of the tar with its
//! size and blake3, so one signature covers every byte. This module knows the layout only;
//! what a header means and which member names are allowed belongs to the format using it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read, Write};

use anyhow::{Context, Result, anyhow, bail};
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::keys::{self, SecretKey};

/// Largest header line any container may have.
pub(crate) const MAX_HEADER_BYTES: usize = 4 << 20;

/// One file inside the payload (or the payload itself), as the signed header lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub path: String,
    pub size: u64,
    pub blake3: String,
}

pub fn member(path: &str, bytes: &[u8]) -> Member {
    Member {
        path: path.to_string(),
        size: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    }
}

/// The three parts of a container file, split but not yet trusted.
#[derive(Debug)]
pub struct Parts<'a> {
    pub header_line: &'a [u8],
    pub(crate) signature: Signature,
    pub payload: &'a [u8],
}

/// What the message signed: the magic line followed by the header line.
pub(crate) fn signed_message(magic: &[u8], header_line: &[u8]) -> Vec<u8> {
    [magic, header_line].concat()
}

/// Assembles a container: signs magic + header with `signer`.
pub fn write(magic: &[u8], header_line: &[u8], signer: &SecretKey, payload: &[u8]) -> Vec<u8> {
    let sig = signer.sign(&signed_message(magic, header_line));
    let mut out = Vec::with_capacity(payload.len() + header_line.len() + 200);
    out.extend_from_slice(magic);
    out.extend_from_slice(header_line);
    out.push(b'\n');
    out.extend_from_slice(keys::signature_to_text(&sig).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload);
    out
}

/// Splits a container into header line, signature and payload. `kind` is the word used in
/// messages ("package", "bundle"); `magic` is e.g. `b"tuk-package v1\n"`.
pub fn split<'a>(bytes: &'a [u8], magic: &[u8], kind: &str) -> Result<Parts<'a>> {
    let magic_text =
        String::from_utf8_lossy(magic.strip_suffix(b"\n").unwrap_or(magic)).to_string();
    let family = magic_text
        .rsplit_once(' ')
        .map(|(f, _)| format!("{f} v"))
        .unwrap_or_default();
    let rest = bytes.strip_prefix(magic).ok_or_else(|| {
        if !family.is_empty() && bytes.starts_with(family.as_bytes()) {
            anyhow!("unknown {kind} format version; this tuk reads `{magic_text}`: update tuk")
        } else {
            anyhow!("not a tuk {kind} (the file does not start with `{magic_text}`)")
        }
    })?;
    let nl = rest
        .iter()
        .take(MAX_HEADER_BYTES)
        .position(|&b| b == b'\n')
        .ok_or_else(|| anyhow!("damaged {kind}: the header line is missing or too long"))?;
    let header_line = &rest[..nl];
    let rest = &rest[nl + 1..];
    let nl = rest
        .iter()
        .take(200)
        .position(|&b| b == b'\n')
        .ok_or_else(|| anyhow!("damaged {kind}: the signature line is missing"))?;
    let sig_text = std::str::from_utf8(&rest[..nl])
        .map_err(|_| anyhow!("damaged {kind}: the signature line is not text"))?;
    let signature =
        keys::signature_from_text(sig_text).map_err(|e| anyhow!("damaged {kind}: {e}"))?;
    Ok(Parts {
        header_line,
        signature,
        payload: &rest[nl + 1..],
    })
}

/// Checks the payload against the size and hash the signed header gives for it.
pub(crate) fn check_payload(payload: &[u8], claimed: &Member) -> Result<()> {
    if payload.len() as u64 != claimed.size {
        bail!(
            "the payload is {} bytes but the signed header says {}: the file is truncated or has bytes added",
            payload.len(),
            claimed.size
        );
    }
    if blake3::hash(payload).to_hex().as_str() != claimed.blake3 {
        bail!(
            "the payload's hash does not match the signed header: the file was changed after signing"
        );
    }
    Ok(())
}

/// Checks a member list: not too long, no duplicates, every path allowed by `limit` (which
/// returns the largest size a member of that name may have, or an error for a bad name).
pub(crate) fn check_member_list(
    members: &[Member],
    max_members: usize,
    kind: &str,
    limit: &dyn Fn(&str) -> Result<u64>,
) -> Result<()> {
    if members.len() > max_members {
        bail!(
            "the {kind} lists {} members; at most {max_members}",
            members.len()
        );
    }
    let mut seen = BTreeSet::new();
    for m in members {
        if m.size > limit(&m.path)? {
            bail!(
                "{kind} member {} claims an absurd size ({} bytes)",
                m.path,
                m.size
            );
        }
        if !seen.insert(&m.path) {
            bail!("{kind} member {} is listed twice", m.path);
        }
    }
    Ok(())
}

/// Encrypts `plain` with an age encryptor.
pub(crate) fn age_encrypt(enc: age::Encryptor, plain: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(plain.len() + 1024);
    let mut w = enc.wrap_output(&mut out)?;
    w.write_all(plain)?;
    w.finish()?;
    Ok(out)
}

/// Encrypts `plain` to X25519 age recipients.
pub fn age_encrypt_to(recipients: &[age::x25519::Recipient], plain: &[u8]) -> Result<Vec<u8>> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| anyhow!("cannot encrypt: {e}"))?;
    age_encrypt(enc, plain)
}

/// Decrypts an age file, refusing plaintexts longer than `max` bytes.
pub fn age_decrypt_with(cipher: &[u8], identity: &dyn age::Identity, max: u64) -> Result<Vec<u8>> {
    let d = age::Decryptor::new(cipher).map_err(|e| anyhow!("{e}"))?;
    let mut r = d
        .decrypt(std::iter::once(identity))
        .map_err(|e| anyhow!("{e}"))?;
    let mut out = Vec::new();
    r.by_ref()
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| anyhow!("{e}"))?;
    if out.len() as u64 > max {
        bail!("the decrypted payload is absurdly large");
    }
    Ok(out)
}

/// A deterministic tar: fixed mode, owner and time, so the same members give the same bytes.
pub(crate) fn tar_bytes(members: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, bytes) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, bytes.as_slice())?;
    }
    Ok(b.into_inner()?)
}

/// Unpacks a tar, accepting only the members the signed header lists, each with the size
/// and hash it claims, and nothing else. `limit` rejects names the format does not allow.
pub fn untar_checked(
    tar_bytes: &[u8],
    expected: &[Member],
    limit: &dyn Fn(&str) -> Result<u64>,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let want: BTreeMap<&str, &Member> = expected.iter().map(|m| (m.path.as_str(), m)).collect();
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(Cursor::new(tar_bytes));
    for entry in archive.entries().context("damaged payload")? {
        let mut entry = entry.context("damaged payload")?;
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| anyhow!("a payload member has a non-UTF-8 name"))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            bail!("payload member {path:?} is not a plain file");
        }
        limit(&path)?;
        let m = want
            .get(path.as_str())
            .ok_or_else(|| anyhow!("payload member {path:?} is not listed in the signed header"))?;
        let size = entry.header().size().context("damaged payload")?;
        if size != m.size {
            bail!(
                "payload member {path} has {size} bytes; the signed header says {}",
                m.size
            );
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.by_ref().take(size).read_to_end(&mut bytes)?;
        if blake3::hash(&bytes).to_hex().as_str() != m.blake3 {
            bail!("payload member {path} does not match its hash in the signed header");
        }
        if out.insert(path.clone(), bytes).is_some() {
            bail!("payload member {path} appears twice");
        }
    }
    if let Some(missing) = want.keys().find(|p| !out.contains_key(**p)) {
        bail!("payload member {missing} listed in the header is missing");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_the_problem() {
        let k = SecretKey::generate("t").unwrap();
        let file = write(b"tuk-x v1\n", b"{}", &k, b"payload");
        let p = split(&file, b"tuk-x v1\n", "thing").unwrap();
        assert_eq!(p.header_line, b"{}");
        assert_eq!(p.payload, b"payload");
        let e = split(b"tuk-x v2\n{}", b"tuk-x v1\n", "thing").unwrap_err();
        assert!(e.to_string().contains("update tuk"), "{e}");
        let e = split(b"PK\x03\x04", b"tuk-x v1\n", "thing").unwrap_err();
        assert!(e.to_string().contains("not a tuk thing"), "{e}");
        let e = split(b"tuk-x v1\n{}", b"tuk-x v1\n", "thing").unwrap_err();
        assert!(e.to_string().contains("header line"), "{e}");
    }
}

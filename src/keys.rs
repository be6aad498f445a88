//! Key pairs of a UPT or a TUK, and the two small text files that hold them.
//!
//! Every party has two keys: an Ed25519 key that *signs* (packages for a UPT, result bundles
//! for a TUK) and an X25519 age identity that *receives* encrypted files (packages for a TUK,
//! result bundles for a UPT). Both live in one private file `NAME.key` (mode 0600, never
//! overwritten) and one public file `NAME.pub`, a single line that survives being pasted into
//! an email:
//!
//! ```text
//! tuk-public-key-v1 NAME ed25519:<base64 32 bytes> age1...
//! ```

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

const PUB_MAGIC: &str = "tuk-public-key-v1";
const SECRET_MAGIC: &str = "tuk-secret-key-v1";

/// A party's public keys, as read from `NAME.pub`.
#[derive(Clone)]
pub struct PublicKey {
    /// Human name given at `keygen` (e.g. `upt-jabar`, `tuk-smpn1-sleman`).
    pub name: String,
    /// Verifies what this party signed.
    pub(crate) verifying: VerifyingKey,
    /// Encrypts files only this party can read.
    pub recipient: age::x25519::Recipient,
}

/// A party's private keys, as read from `NAME.key`.
pub struct SecretKey {
    pub(crate) name: String,
    pub(crate) signing: SigningKey,
    pub identity: age::x25519::Identity,
}

impl PublicKey {
    /// A short, stable id for the signing key: `ed25519:` plus the base64 key. Headers and
    /// bundles name the signer this way so a reader can pick the right trusted key.
    pub fn signer_id(&self) -> String {
        signer_id(&self.verifying)
    }

    /// 16 hex digits of blake3 over the signing key: easy to read aloud or compare on paper.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.verifying)
    }

    /// Parses the one meaningful line of a `.pub` file (comment lines start with `#`).
    pub fn parse(text: &str) -> Result<PublicKey> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| anyhow!("the public key file is empty"))?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 4 || fields[0] != PUB_MAGIC {
            bail!("not a tuk public key: expected a line `{PUB_MAGIC} NAME ed25519:... age1...`");
        }
        let verifying = parse_verifying(fields[2])?;
        let recipient = fields[3]
            .parse::<age::x25519::Recipient>()
            .map_err(|e| anyhow!("bad age recipient in public key: {e}"))?;
        Ok(PublicKey {
            name: fields[1].to_string(),
            verifying,
            recipient,
        })
    }

    /// Reads a `.pub` file, naming the file in any error.
    pub fn read(path: &Path) -> Result<PublicKey> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read public key {}", path.display()))?;
        PublicKey::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn to_line(&self) -> String {
        format!(
            "{PUB_MAGIC} {} {} {}",
            self.name,
            self.signer_id(),
            self.recipient
        )
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.fingerprint())
    }
}

impl SecretKey {
    /// Makes a fresh key pair from the operating system's random source.
    pub fn generate(name: &str) -> Result<SecretKey> {
        validate_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow!("no randomness available: {e}"))?;
        Ok(SecretKey {
            name: name.to_string(),
            signing: SigningKey::from_bytes(&seed),
            identity: age::x25519::Identity::generate(),
        })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            verifying: self.signing.verifying_key(),
            recipient: self.identity.to_public(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }

    pub fn parse(text: &str) -> Result<SecretKey> {
        let mut magic = false;
        let (mut name, mut signing, mut identity) = (None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line == SECRET_MAGIC {
                magic = true;
            } else if let Some(v) = line.strip_prefix("name:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("ed25519-seed:") {
                let bytes = B64
                    .decode(v.trim())
                    .map_err(|_| anyhow!("the ed25519-seed line is not base64"))?;
                let seed: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| anyhow!("the ed25519-seed must be 32 bytes"))?;
                signing = Some(SigningKey::from_bytes(&seed));
            } else if let Some(v) = line.strip_prefix("age:") {
                identity = Some(
                    v.trim()
                        .parse::<age::x25519::Identity>()
                        .map_err(|e| anyhow!("bad age identity: {e}"))?,
                );
            } else {
                bail!("unexpected line in secret key file");
            }
        }
        if !magic {
            bail!("not a tuk secret key (missing `{SECRET_MAGIC}` line)");
        }
        Ok(SecretKey {
            name: name.ok_or_else(|| anyhow!("secret key has no name line"))?,
            signing: signing.ok_or_else(|| anyhow!("secret key has no ed25519-seed line"))?,
            identity: identity.ok_or_else(|| anyhow!("secret key has no age line"))?,
        })
    }

    pub fn read(path: &Path) -> Result<SecretKey> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read secret key {}", path.display()))?;
        SecretKey::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn to_text(&self) -> String {
        format!(
            "# tuk secret key \"{name}\". KEEP SECRET: whoever has this file can sign and decrypt as {name}.\n\
             {SECRET_MAGIC}\nname: {name}\ned25519-seed: {seed}\nage: {age}\n",
            name = self.name,
            seed = B64.encode(self.signing.to_bytes()),
            age = self.identity.to_string().expose_secret(),
        )
    }
}

/// Writes `DIR/NAME.key` (0600) and `DIR/NAME.pub`, refusing to overwrite either.
pub(crate) fn keygen(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    validate_name(name)?;
    crate::fsutil::create_private_dir(dir)?;
    let key_path = dir.join(format!("{name}.key"));
    let pub_path = dir.join(format!("{name}.pub"));
    for p in [&key_path, &pub_path] {
        if p.exists() {
            bail!(
                "{} already exists; keys are never overwritten. Choose another --name or move the old files away first",
                p.display()
            );
        }
    }
    let key = SecretKey::generate(name)?;
    write_new_file(&key_path, key.to_text().as_bytes(), 0o600)?;
    let public = key.public();
    let pub_text = format!(
        "# tuk public key \"{}\", fingerprint {}. Safe to share.\n{}\n",
        name,
        public.fingerprint(),
        public.to_line()
    );
    write_new_file(&pub_path, pub_text.as_bytes(), 0o644)?;
    Ok((key_path, pub_path))
}

/// Creates a file that must not exist yet, with the given mode, and syncs it.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // The mode given, whatever the umask (it can only remove bits; this makes it exact).
    crate::fsutil::set_mode(path, mode)?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub(crate) fn signer_id(key: &VerifyingKey) -> String {
    format!("ed25519:{}", B64.encode(key.to_bytes()))
}

pub(crate) fn fingerprint(key: &VerifyingKey) -> String {
    blake3::hash(&key.to_bytes()).to_hex()[..16].to_string()
}

pub(crate) fn parse_verifying(field: &str) -> Result<VerifyingKey> {
    let b64 = field
        .strip_prefix("ed25519:")
        .ok_or_else(|| anyhow!("signing key must start with `ed25519:`"))?;
    let bytes: [u8; 32] = B64
        .decode(b64)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("signing key is not 32 bytes of base64"))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| anyhow!("signing key is not a valid Ed25519 point"))
}

pub fn signature_to_text(sig: &Signature) -> String {
    format!("ed25519:{}", B64.encode(sig.to_bytes()))
}

pub(crate) fn signature_from_text(text: &str) -> Result<Signature> {
    let b64 = text
        .strip_prefix("ed25519:")
        .ok_or_else(|| anyhow!("signature must start with `ed25519:`"))?;
    let bytes: [u8; 64] = B64
        .decode(b64)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("signature is not 64 bytes of base64"))?;
    Ok(Signature::from_bytes(&bytes))
}

/// Strict verification (rejects malleable and small-order signatures).
pub(crate) fn verify(key: &VerifyingKey, message: &[u8], sig: &Signature) -> bool {
    key.verify_strict(message, sig).is_ok() && key.verify(message, sig).is_ok()
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if !ok {
        bail!(
            "key name {name:?} is not allowed: use 1-64 letters, digits, '-', '_' or '.' (e.g. upt-jabar)"
        );
    }
    Ok(())
}

/// A set of public keys trusted to sign (UPT keys at a TUK, TUK keys at a UPT).
#[derive(Clone, Default)]
pub struct TrustSet {
    keys: Vec<PublicKey>,
}

impl TrustSet {
    pub fn new(keys: Vec<PublicKey>) -> TrustSet {
        TrustSet { keys }
    }

    pub(crate) fn read_files(paths: &[PathBuf]) -> Result<TrustSet> {
        let keys = paths
            .iter()
            .map(|p| PublicKey::read(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(TrustSet { keys })
    }

    pub(crate) fn find(&self, signer_id: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.signer_id() == signer_id)
    }

    pub(crate) fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip() {
        let k = SecretKey::generate("upt-test").unwrap();
        let again = SecretKey::parse(&k.to_text()).unwrap();
        assert_eq!(again.signing.to_bytes(), k.signing.to_bytes());
        let p = PublicKey::parse(&k.public().to_line()).unwrap();
        assert_eq!(p.verifying, k.signing.verifying_key());
        assert_eq!(p.recipient.to_string(), k.identity.to_public().to_string());
        let sig = k.sign(b"hello");
        assert!(verify(&p.verifying, b"hello", &sig));
        assert!(!verify(&p.verifying, b"hellp", &sig));
    }

    #[test]
    fn keygen_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        keygen(dir.path(), "tuk1").unwrap();
        let err = keygen(dir.path(), "tuk1").unwrap_err().to_string();
        assert!(err.contains("never overwritten"), "{err}");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("tuk1.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(SecretKey::generate("../x").is_err());
        assert!(SecretKey::generate("").is_err());
    }
}

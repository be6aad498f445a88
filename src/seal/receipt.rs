//! The UPT's signed receipt for a bundle.
//!
//! A receipt file (`FILE.tukres.receipt.json`) is one JSON object:
//!
//! ```json
//! {"receipt": "<the receipt as a JSON string>", "signature": "ed25519:<base64>"}
//! ```
//!
//! The signature is Ed25519 by the UPT's key over `tuk-receipt v1\n` followed by the exact
//! bytes of the `receipt` string, so any Ed25519 tool can check it without re-encoding JSON.

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::ChainHead;
use crate::keys::{self, SecretKey};

pub(crate) const RECEIPT_MAGIC: &[u8] = b"tuk-receipt v1\n";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub(crate) format: u32,
    pub(crate) bundle_id: String,
    /// blake3 of the bundle file as received.
    pub bundle_blake3: String,
    pub package_id: String,
    pub(crate) package_blake3: String,
    pub sessions: Vec<String>,
    pub(crate) chains: Vec<ChainHead>,
    pub participants: u64,
    pub(crate) tuk: String,
    pub(crate) tuk_signer: String,
    pub(crate) upt: String,
    pub(crate) upt_signer: String,
    /// When the UPT first received the bundle (UTC, RFC 3339).
    pub(crate) received: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    pub(crate) receipt: String,
    pub(crate) signature: String,
}

impl Receipt {
    pub(crate) fn sign(&self, upt: &SecretKey) -> Result<SignedReceipt> {
        let text = serde_json::to_string(self)?;
        let sig = upt.sign(&[RECEIPT_MAGIC, text.as_bytes()].concat());
        Ok(SignedReceipt {
            receipt: text,
            signature: keys::signature_to_text(&sig),
        })
    }
}

impl SignedReceipt {
    pub fn parse(bytes: &[u8]) -> Result<SignedReceipt> {
        serde_json::from_slice(bytes)
            .context("not a tuk receipt (expected {\"receipt\": ..., \"signature\": ...})")
    }

    /// Checks the signature against `upt_signer` (`ed25519:<base64>`) and returns the receipt.
    pub fn verify(&self, upt_signer: &str) -> Result<Receipt> {
        let key = keys::parse_verifying(upt_signer)?;
        let sig = keys::signature_from_text(&self.signature)?;
        if !keys::verify(
            &key,
            &[RECEIPT_MAGIC, self.receipt.as_bytes()].concat(),
            &sig,
        ) {
            bail!(
                "the receipt's signature is not the UPT's: do not purge anything on the strength of it"
            );
        }
        let r: Receipt = serde_json::from_str(&self.receipt)
            .map_err(|e| anyhow!("the receipt is not valid: {e}"))?;
        if r.upt_signer != upt_signer {
            bail!("the receipt names another UPT key than the one that signed it");
        }
        Ok(r)
    }

    /// The receipt without checking the signature (to find which key to check it with).
    pub(crate) fn unverified(&self) -> Result<Receipt> {
        serde_json::from_str(&self.receipt).map_err(|e| anyhow!("the receipt is not valid: {e}"))
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_verify_and_detect_changes() {
        let k = SecretKey::generate("upt").unwrap();
        let r = Receipt {
            format: 1,
            bundle_id: "b".into(),
            bundle_blake3: "h".into(),
            package_id: "p".into(),
            package_blake3: "ph".into(),
            sessions: vec!["S1".into()],
            chains: vec![],
            participants: 3,
            tuk: "t".into(),
            tuk_signer: "x".into(),
            upt: "upt".into(),
            upt_signer: k.public().signer_id(),
            received: "2026-01-01T00:00:00Z".into(),
        };
        let s = r.sign(&k).unwrap();
        let back = SignedReceipt::parse(&s.to_json()).unwrap();
        assert_eq!(back.verify(&k.public().signer_id()).unwrap(), r);
        let mut bad = back.clone();
        bad.receipt = bad
            .receipt
            .replace("\"participants\":3", "\"participants\":4");
        assert!(bad.verify(&k.public().signer_id()).is_err());
        let other = SecretKey::generate("other").unwrap();
        assert!(back.verify(&other.public().signer_id()).is_err());
    }
}

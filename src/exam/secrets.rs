//! Passwords, session tokens and cookies: generated readable, checked slowly, stored hashed.
//!
//! Participant passwords and tokens use an alphabet without look-alike characters (no
//! 0/O, 1/I/l) because they are read off a printed card or a projector by people who are
//! not used to computers.

use anyhow::{Result, anyhow};
use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};

/// For participant passwords (lowercase is easier to type for beginners).
const PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// For session tokens read aloud or from a projector.
const TOKEN_ALPHABET: &[u8] = b"ACDEFHJKLMNPRTUVWXY3479";

/// 8 characters from 31: about 39.6 bits; with the argon2id cost below, guessing a
/// password offline from a stolen store takes on the order of 10^9 hashes ≈ 5 core-years,
/// far longer than the one day a participant password matters. Online guessing is cut off
/// by the lock-out.
pub(crate) const PASSWORD_LEN: usize = 8;
pub(crate) const TOKEN_LEN: usize = 6;

/// argon2id parameters for participant passwords: 8 MiB, 1 pass, 1 lane. Chosen so that a
/// login storm of 2,000 participants fits in a few seconds on a 2-core server (measured in
/// `benches/`), while each guess still costs 8 MiB of memory traffic. Staff passwords,
/// which live longer and are chosen by people, use the stronger [`staff_params`].
pub(crate) fn participant_params() -> Params {
    Params::new(8 * 1024, 1, 1, None).unwrap_or_default()
}

/// argon2id's recommended defaults (19 MiB, 2 passes): staff passwords are few.
pub(crate) fn staff_params() -> Params {
    Params::default()
}

pub(crate) fn random_string(alphabet: &[u8], len: usize) -> Result<String> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| anyhow!("no randomness available: {e}"))?;
        // Rejection sampling keeps every character equally likely.
        let zone = 256 - (256 % alphabet.len());
        for &b in &buf {
            if (b as usize) < zone && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

pub(crate) fn new_password() -> Result<String> {
    random_string(PASSWORD_ALPHABET, PASSWORD_LEN)
}

pub(crate) fn new_token() -> Result<String> {
    random_string(TOKEN_ALPHABET, TOKEN_LEN)
}

/// A cookie value: 128 random bits, URL-safe.
pub(crate) fn new_cookie() -> Result<String> {
    random_string(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        22,
    )
}

/// What the store keeps for a cookie: its blake3, so a copied store cannot be used to
/// hijack a browser session.
pub(crate) fn cookie_id(cookie: &str) -> super::CookieId {
    super::CookieId::new(blake3::hash(cookie.as_bytes()).to_hex().to_string())
}

pub(crate) fn hash_password(password: &str, params: Params) -> Result<String> {
    let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    a.hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow!("cannot hash password: {e}"))
}

/// Participants type tokens and passwords in any case, with stray spaces.
pub(crate) fn normalise_token(s: &str) -> String {
    s.trim().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let p = new_password().unwrap();
        assert_eq!(p.len(), PASSWORD_LEN);
        assert!(!p.contains(['0', 'o', '1', 'l', 'i']));
        let h = hash_password(&p, participant_params()).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(crate::auth::verify_password(&p, &h));
        assert!(!crate::auth::verify_password("wrong", &h));
        let t = new_token().unwrap();
        assert!(!t.contains(['0', 'O', '1', 'I']));
    }
}

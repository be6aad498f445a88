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
pub const PASSWORD_LEN: usize = 8;
pub const TOKEN_LEN: usize = 6;

/// argon2id parameters for participant passwords: 8 MiB, 1 pass, 1 lane. Chosen so that a
/// login storm of 2,000 participants fits in a few seconds on a 2-core server (measured in
/// `benches/`), while each guess still costs 8 MiB of memory traffic. Staff passwords,
/// which live longer and are chosen by people, use the stronger [`staff_params`].
pub fn participant_params() -> Params {
    Params::new(8 * 1024, 1, 1, None).unwrap_or_default()
}

/// argon2id's recommended defaults (19 MiB, 2 passes): staff passwords are few.
pub fn staff_params() -> Params {
    Params::default()
}

pub fn random_string(alphabet: &[u8], len: usize) -> Result<String> {
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

pub fn new_password() -> Result<String> {
    random_string(PASSWORD_ALPHABET, PASSWORD_LEN)
}

pub fn new_token() -> Result<String> {
    random_string(TOKEN_ALPHABET, TOKEN_LEN)
}

/// A cookie value: 128 random bits, URL-safe.
pub fn new_cookie() -> Result<String> {
    random_string(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        22,
    )
}

/// What the store keeps for a cookie: its blake3, so a copied store cannot be used to
/// hijack a browser session.
pub fn cookie_id(cookie: &str) -> String {
    blake3::hash(cookie.as_bytes()).to_hex().to_string()
}

pub fn hash_password(password: &str, params: Params) -> Result<String> {
    let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    a.hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow!("cannot hash password: {e}"))
}

/// Checks a password against its PHC string (`$argon2id$v=19$m=…`), with the parameters
/// the string names. Same result as argon2's `PasswordVerifier`, but the 8–19 MiB of
/// working memory is kept per thread and reused: allocating it afresh for each of 2,000
/// logins left the allocator holding hundreds of MiB after a login storm.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::phc::{Output, PasswordHash};
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let blocks = params.block_count();
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    let computed = BLOCKS.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < blocks {
            b.resize(blocks, argon2::Block::new());
        }
        argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut b[..blocks])
    });
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|o| &o == expected)
}

/// Participants type tokens and passwords in any case, with stray spaces.
pub fn normalise_token(s: &str) -> String {
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
        assert!(verify_password(&p, &h));
        assert!(!verify_password("wrong", &h));
        let t = new_token().unwrap();
        assert!(!t.contains(['0', 'O', '1', 'I']));
    }

    /// The reusing verifier agrees with argon2's own `PasswordVerifier` on hashes of both
    /// strengths (the buffer is reused from a larger to a smaller one and back), a known
    /// RFC 9106-style PHC string, and broken strings.
    #[test]
    fn verify_agrees_with_argon2s_verifier() {
        use argon2::password_hash::PasswordVerifier;
        let reference = |pw: &str, phc: &str| {
            Argon2::default()
                .verify_password(pw.as_bytes(), phc)
                .is_ok()
        };
        let staff = hash_password("Staff-Password-1", staff_params()).unwrap();
        let part = hash_password("abcdefgh", participant_params()).unwrap();
        // argon2id, v=19, m=64 KiB, t=3, p=4: a different lane count and output length.
        let lanes = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 3, 4, Some(24)).unwrap(),
        )
        .hash_password(b"lanes")
        .unwrap()
        .to_string();
        let cases = [
            ("Staff-Password-1", staff.as_str()),
            ("staff-password-1", staff.as_str()),
            ("abcdefgh", part.as_str()),
            ("abcdefgH", part.as_str()),
            ("Staff-Password-1", staff.as_str()),
            ("lanes", lanes.as_str()),
            ("lane", lanes.as_str()),
            ("x", "$argon2id$v=19$m=8192,t=1,p=1$bm90YXNhbHQ"),
            ("x", "not a hash"),
            ("x", ""),
        ];
        for (pw, phc) in cases {
            assert_eq!(verify_password(pw, phc), reference(pw, phc), "{pw} {phc}");
        }
        assert!(verify_password("lanes", &lanes));
        let mut truncated = part.clone();
        truncated.pop();
        assert!(!verify_password("abcdefgh", &truncated));
    }
}

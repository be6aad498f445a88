//! Every refusal the server answers with, in one place: the HTTP status and the stable
//! `code` (API clients and tests switch on it; `docs/api.md` lists them) of each exam rule's
//! [`Refused`], and the refusals of the HTTP layer itself. The Indonesian and English
//! message of each code is in [`super::i18n::msg`] (the one table a translator edits); a
//! unit test checks that every code has one.
//!
//! **Adding a refusal**: add the variant to [`Refused`] (in `src/exam/mod.rs`, with what
//! it means), give it its status and code in [`Refusal::from`] below (the match has no
//! catch-all, so it does not compile until you do), and its words in `i18n::msg`.

use hyper::StatusCode;

use crate::exam::Refused;

/// A refusal as the server answers it: an HTTP status and a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
}

impl Refusal {
    pub(crate) const fn new(status: u16, code: &'static str) -> Refusal {
        Refusal { status, code }
    }

    /// The HTTP status (400 if the number were not a status, which no entry here is).
    pub(crate) fn status_code(self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST)
    }
}

impl From<Refused> for Refusal {
    fn from(r: Refused) -> Refusal {
        let (status, code) = match r {
            Refused::BadLogin => (401, "bad_login"),
            Refused::LoginLocked => (429, "login_locked"),
            Refused::TooManySaves => (429, "too_many_saves"),
            Refused::AlreadyActive => (409, "already_active"),
            Refused::NotLoggedIn => (401, "not_logged_in"),
            Refused::BadToken => (403, "bad_token"),
            Refused::NotRegistered => (403, "not_registered"),
            Refused::NotStarted => (409, "not_started"),
            Refused::SessionPaused => (409, "session_paused"),
            Refused::SessionClosed => (409, "session_closed"),
            Refused::Finished => (409, "finished"),
            Refused::DeadlinePassed => (410, "deadline_passed"),
            Refused::StaleSeq => (409, "stale_seq"),
            Refused::UnknownItem => (404, "unknown_item"),
            Refused::InvalidChoice => (422, "invalid_choice"),
            Refused::MovedToOtherPc => (409, "moved_to_other_pc"),
            Refused::NotFinished => (409, "not_finished"),
            Refused::InvalidInput => (422, "invalid_input"),
            Refused::StoreFailed => (503, "store_failed"),
            Refused::Forbidden => (403, "forbidden"),
            Refused::NotFound => (404, "not_found"),
            Refused::AlreadyOpen => (409, "already_open"),
            Refused::NotOpen => (409, "not_open"),
            Refused::NotPaused => (409, "not_paused"),
            Refused::AttemptsRunning => (409, "attempts_running"),
            Refused::NoSuchProctor => (422, "no_such_proctor"),
            Refused::SessionRunning => (409, "session_running"),
            Refused::MinutesConfirmed => (409, "minutes_confirmed"),
            Refused::ReasonRequired => (422, "reason_required"),
            Refused::SessionSealed => (409, "session_sealed"),
            Refused::AlreadySealed => (409, "already_sealed"),
        };
        Refusal { status, code }
    }
}

/// The English words and the code, for the command line (`cannot open S1: The session is
/// not open. (not_open)`).
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = Refusal::from(*self);
        write!(
            f,
            "{} ({})",
            super::i18n::msg(super::i18n::Lang::En, r.code),
            r.code
        )
    }
}

// Refusals of the HTTP layer (before or beside any exam rule).

/// The `Host` header names neither this server's address nor a configured name.
pub(crate) const BAD_HOST: Refusal = Refusal::new(421, "bad_host");
/// A body over the route's limit.
pub(crate) const TOO_LARGE: Refusal = Refusal::new(413, "too_large");
/// A body that broke off before its end.
pub(crate) const BROKEN_BODY: Refusal = Refusal::new(400, "invalid_input");
/// A body slower than the route's deadline.
pub(crate) const TOO_SLOW: Refusal = Refusal::new(408, "too_slow");
/// A POST from another origin.
pub(crate) const CROSS_SITE: Refusal = Refusal::new(403, "cross_site");
/// A staff POST without this login's CSRF token.
pub(crate) const CSRF: Refusal = Refusal::new(403, "csrf");
/// An API POST whose body is not `application/json`.
pub(crate) const JSON_REQUIRED: Refusal = Refusal::new(415, "json_required");
pub(crate) const MALFORMED_JSON: Refusal = Refusal::new(400, "malformed_json");
pub(crate) const MALFORMED_FORM: Refusal = Refusal::new(400, "malformed_form");
/// The console could not unlock the item bank with the release code typed.
pub(crate) const RELEASE_CODE_WRONG: Refusal = Refusal::new(422, "release_code_wrong");
pub(crate) const NOT_FOUND: Refusal = Refusal::new(404, "not_found");
/// More `/cek` requests from one address than its rate allows.
pub(crate) const TOO_MANY_REQUESTS: Refusal = Refusal::new(429, "too_many_requests");
/// The lab PC list is full (`TUK_MAX_LAB_PCS`): a new name is refused.
pub(crate) const LAB_FULL: Refusal = Refusal::new(503, "lab_full");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::i18n::{Lang, msg};

    /// `Refused::ALL` lists every variant once (a new variant fails to compile here).
    #[test]
    fn all_lists_every_refusal_once() {
        let codes: std::collections::BTreeSet<&str> = Refused::ALL
            .iter()
            .map(|&r| Refusal::from(r).code)
            .collect();
        assert_eq!(codes.len(), Refused::ALL.len(), "two refusals share a code");
        for r in Refused::ALL {
            // Exhaustive on purpose: add the new variant to `Refused::ALL`, then here.
            match r {
                Refused::BadLogin
                | Refused::LoginLocked
                | Refused::TooManySaves
                | Refused::AlreadyActive
                | Refused::NotLoggedIn
                | Refused::BadToken
                | Refused::NotRegistered
                | Refused::NotStarted
                | Refused::SessionPaused
                | Refused::SessionClosed
                | Refused::Finished
                | Refused::DeadlinePassed
                | Refused::StaleSeq
                | Refused::UnknownItem
                | Refused::InvalidChoice
                | Refused::MovedToOtherPc
                | Refused::NotFinished
                | Refused::InvalidInput
                | Refused::StoreFailed
                | Refused::Forbidden
                | Refused::NotFound
                | Refused::AlreadyOpen
                | Refused::NotOpen
                | Refused::NotPaused
                | Refused::AttemptsRunning
                | Refused::NoSuchProctor
                | Refused::SessionRunning
                | Refused::SessionSealed
                | Refused::AlreadySealed
                | Refused::MinutesConfirmed
                | Refused::ReasonRequired => {}
            }
        }
        assert_eq!(Refused::ALL.len(), 31);
    }

    /// Every refusal has its words in both languages (not the generic fallback).
    #[test]
    fn every_refusal_has_a_message() {
        let http = [
            BAD_HOST,
            TOO_LARGE,
            BROKEN_BODY,
            TOO_SLOW,
            CROSS_SITE,
            CSRF,
            JSON_REQUIRED,
            MALFORMED_JSON,
            MALFORMED_FORM,
            RELEASE_CODE_WRONG,
            NOT_FOUND,
            TOO_MANY_REQUESTS,
            LAB_FULL,
        ];
        let fallback = msg(Lang::Id, "no such code, surely");
        for r in Refused::ALL.iter().map(|&r| Refusal::from(r)).chain(http) {
            assert!(r.status_code().as_u16() >= 400, "{r:?}");
            assert_ne!(msg(Lang::Id, r.code), fallback, "no words for {}", r.code);
            assert_ne!(msg(Lang::En, r.code), msg(Lang::Id, r.code), "{}", r.code);
        }
    }
}

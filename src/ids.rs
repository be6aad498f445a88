//! Typed ids: the strings that name a session, a participant, an attempt or a browser
//! session, each in a type of its own so that two of them passed in the wrong order do not
//! compile (issue 10: many rule functions took three or four `&str` ids in a row).
//!
//! Each is parsed once at the edge (a URL path, a form field, a cookie, a stored key) and
//! typed after that. The stored bytes do not change: every id serialises as the plain
//! string it wraps (`#[serde(transparent)]`), and maps keyed by `String` are looked up with
//! [`str`] through `Borrow<str>`.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps `s` as this kind of id (no check: the rules refuse an id they do not know).
            pub fn new(s: impl Into<String>) -> $name {
                $name(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        // Lookups with a `&String` in hand (a form field, a test's variable) find the
        // same entries: the hash and order are those of the string.
        impl Borrow<String> for $name {
            fn borrow(&self) -> &String {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                $name(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> $name {
                $name(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl From<&$name> for String {
            fn from(id: &$name) -> String {
                id.0.clone()
            }
        }

        impl PartialEq<&$name> for $name {
            fn eq(&self, other: &&$name) -> bool {
                self.0 == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<&$name> for String {
            fn eq(&self, other: &&$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

string_id! {
    /// A session as `package-id/session-id` (the package's id, then the session's id in
    /// its manifest): the key of the sessions table and the name of the session's event
    /// chain. Made by [`SessionKey::of`].
    SessionKey
}

string_id! {
    /// A participant's number (*nomor peserta*) as the package's roster gives it.
    ParticipantNo
}

string_id! {
    /// An attempt as `package-id/session-id/number`: the key of the attempts table. Made by
    /// [`AttemptKey::of`].
    AttemptKey
}

string_id! {
    /// A browser session: the random id its cookie carries (the key of the web-sessions
    /// table), participant or staff.
    CookieId
}

impl SessionKey {
    /// The key of session `session` of package `package`.
    pub fn of(package: &str, session: &str) -> SessionKey {
        SessionKey(format!("{package}/{session}"))
    }
}

impl AttemptKey {
    /// The key of `number`'s attempt in session `skey`.
    pub fn of(skey: &SessionKey, number: &ParticipantNo) -> AttemptKey {
        AttemptKey(format!("{skey}/{number}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_the_stored_shape() {
        let s = SessionKey::of("PKG-1", "S1");
        let a = AttemptKey::of(&s, &ParticipantNo::from("2401"));
        assert_eq!(a, "PKG-1/S1/2401");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"PKG-1/S1\"");
        let back: SessionKey = serde_json::from_str("\"PKG-1/S1\"").unwrap();
        assert_eq!(back, s);
    }
}

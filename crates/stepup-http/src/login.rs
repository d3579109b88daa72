//! What the login-crate integrations of both adapters share (axum-login on
//! axum, actix-identity on actix-web): the per-login binding kept in the
//! session, and the epoch that a password change moves.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The session key under which a login's binding is kept.
pub const LOGIN_SESSION_KEY: &str = "stepup.login";

/// What a login-crate integration keeps in the session: the user it was
/// made for and a random value. The value is the [`Subject`](stepup_core::Subject)'s
/// session: it lives as long as the login (a logout clears the session),
/// survives session-id changes within it, and is replaced when another
/// user logs in on the same session.
///
/// ```
/// use stepup_http::LoginBinding;
///
/// let kept = LoginBinding::fresh("42").unwrap();
/// assert_eq!(kept.value_for("42"), Some(kept.value()));
/// assert_eq!(kept.value_for("43"), None, "made for another user");
/// assert_ne!(kept.value(), LoginBinding::fresh("42").unwrap().value());
/// ```
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginBinding {
    user: String,
    value: String,
}

impl std::fmt::Debug for LoginBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginBinding")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl LoginBinding {
    /// A new binding for `user`: 128 random bits. `None` without
    /// randomness.
    pub fn fresh(user: &str) -> Option<LoginBinding> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).ok()?;
        Some(LoginBinding {
            user: user.to_owned(),
            value: raw.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// The value, if this binding was made for `user`.
    pub fn value_for(&self, user: &str) -> Option<&str> {
        (self.user == user).then_some(self.value.as_str())
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A subject's epoch from a value that changes with the user's password
/// (the password hash, axum-login's `session_auth_hash`) and an
/// application number (stepup's factor epoch): 64 bits of a SHA-256 over
/// both. Equal inputs give equal epochs on every instance; any change gives
/// another, which ends every assurance made under the old one.
///
/// The epoch travels in the assurance token, readable by its holder: pass
/// a salted hash (argon2's), never an unsalted digest of the password.
///
/// ```
/// use stepup_http::login_epoch;
///
/// let before = login_epoch(b"$argon2id$old", 3);
/// assert_eq!(before, login_epoch(b"$argon2id$old", 3));
/// assert_ne!(before, login_epoch(b"$argon2id$new", 3), "the password changed");
/// assert_ne!(before, login_epoch(b"$argon2id$old", 4), "a factor changed");
/// ```
pub fn login_epoch(password_hash: &[u8], extra: u64) -> u64 {
    let mut digest = Sha256::new();
    digest.update(b"stepup/login/epoch\0");
    digest.update((password_hash.len() as u64).to_be_bytes());
    digest.update(password_hash);
    digest.update(extra.to_be_bytes());
    let out = digest.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&out[..8]);
    u64::from_be_bytes(first)
}

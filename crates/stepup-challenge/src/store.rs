//! Where state lives. The store traits and the in-memory stores are
//! `stepup-store`'s, re-exported: the short-lived server state
//! ([`StateStore`]), what the application owns per user ([`FactorStore`],
//! and [`PasskeyStore`] for its passkeys). Here stays the application's
//! password check ([`PasswordVerifier`]): not a store, the application's own
//! check against its user table.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use stepup_core::Subject;

#[cfg(feature = "passkey")]
pub use stepup_store::PasskeyStore;
pub use stepup_store::{FactorStore, MemoryFactorStore, MemoryStateStore, StateStore};

use crate::error::StoreError;

/// The application's password check against its own user table: `stepup`
/// never stores passwords. Not a store, so it stays here rather than in
/// `stepup-store`; it answers with the same [`StoreError`] when the user
/// table cannot answer.
///
/// ```
/// use stepup_challenge::{PasswordVerifier, StoreError};
/// use stepup_core::Subject;
///
/// /// Checks against the application's own user table (here: one user).
/// struct Users;
///
/// impl PasswordVerifier for Users {
///     async fn verify(&self, subject: &Subject, password: &str) -> Result<bool, StoreError> {
///         // A real check compares a password hash (argon2, …).
///         Ok(subject.id() == "bob" && password == "builder")
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// assert!(Users.verify(&Subject::new("bob"), "builder").await?);
/// assert!(Users.is_configured());
/// # Ok::<(), StoreError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait PasswordVerifier: Send + Sync + 'static {
    /// Whether `password` is the subject's current password.
    fn verify(
        &self,
        subject: &Subject,
        password: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether password step-ups are offered at all (the challenge page shows
    /// the password form only then).
    fn is_configured(&self) -> bool {
        true
    }
}

/// **For tests and demos only** (hence the name): a [`PasswordVerifier`]
/// with one fixed password per user id, held in memory in the clear and
/// compared in constant time. Check passwords against your user table's
/// password hashes instead.
///
/// ```
/// use stepup_challenge::{InsecureFixedPasswords, PasswordVerifier};
/// use stepup_core::Subject;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let passwords = InsecureFixedPasswords::new([("bob", "builder")]);
/// assert!(passwords.verify(&Subject::new("bob"), "builder").await?);
/// assert!(!passwords.verify(&Subject::new("bob"), "guess").await?);
/// assert_eq!(format!("{passwords:?}"), "InsecureFixedPasswords(1 users, [redacted])");
/// # Ok::<(), stepup_challenge::StoreError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct InsecureFixedPasswords {
    passwords: Arc<HashMap<String, String>>,
}

impl InsecureFixedPasswords {
    /// Accepts `password` for user `id`.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> InsecureFixedPasswords {
        InsecureFixedPasswords {
            passwords: Arc::new(
                pairs
                    .into_iter()
                    .map(|(u, p)| (u.to_owned(), p.to_owned()))
                    .collect(),
            ),
        }
    }
}

impl std::fmt::Debug for InsecureFixedPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "InsecureFixedPasswords({} users, [redacted])",
            self.passwords.len()
        )
    }
}

impl PasswordVerifier for InsecureFixedPasswords {
    async fn verify(&self, subject: &Subject, password: &str) -> Result<bool, StoreError> {
        Ok(self.passwords.get(subject.id()).is_some_and(|p| {
            stepup_core::ct::eq_as(
                stepup_core::ct::Comparison::Password,
                p.as_bytes(),
                password.as_bytes(),
            )
        }))
    }
}

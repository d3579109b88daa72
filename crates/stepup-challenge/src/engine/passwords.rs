//! Password step-ups: the application checks the password.

use stepup_core::{IssuedToken, Method};

use super::{Attempt, Engine};
use crate::error::ChallengeError;
use crate::store::{FactorStore, PasswordVerifier, StateStore};

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Steps up with the account password, checked by the application.
    pub async fn step_up_password(
        &self,
        attempt: Attempt<'_>,
        password: &str,
    ) -> Result<IssuedToken, ChallengeError> {
        let outcome = async {
            if password.is_empty() || password.len() > 4096 {
                return Err(ChallengeError::Format("enter your password"));
            }
            self.counted(
                attempt,
                Method::Password,
                self.passwords.verify(attempt.subject, password),
            )
            .await
        }
        .await;
        self.finish(attempt, Method::Password, outcome).await
    }
}

//! The engine's part of a trip to an upstream identity provider
//! ([`Upstream`](crate::Upstream)): starts rationed, and the page's reason
//! and way back kept for the answer.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stepup_core::{ReturnTo, Subject};

use super::Engine;
use crate::error::ChallengeError;
use crate::keys::StoreKeys;
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// Trips to identity providers (all of them together) one session may
/// start per window (each stores a request and may push it to the
/// provider)…
const SESSION_STARTS: u64 = 10;
/// …and one subject, over all sessions.
const SUBJECT_STARTS: u64 = 30;
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long the way back is kept (the provider's requests live 10 minutes
/// by default).
const TRIP_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// What the page that started a trip knew: its reason and way back.
#[derive(Serialize, Deserialize)]
pub(crate) struct Trip {
    pub(crate) why: Option<String>,
    pub(crate) return_to: String,
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Counts one more use in each of `budgets` (counter key, uses
    /// allowed per `window`): locked out — until the window from now, the
    /// latest it can end — once one is spent. Approval starts and trips
    /// to identity providers are rationed this way.
    pub(super) async fn ration(
        &self,
        budgets: &[(String, u64)],
        window: Duration,
    ) -> Result<(), ChallengeError> {
        for (key, allowed) in budgets {
            if self.state.increment(key, window).await? > *allowed {
                return Err(ChallengeError::LockedOut {
                    until: self.clock.now() + window,
                });
            }
        }
        Ok(())
    }

    /// Counts a trip of `subject` to `upstream` and keeps the page's `why`
    /// and `return_to` for its answer; refused (locked out until the
    /// window ends) past the session's or the subject's ration.
    pub(crate) async fn upstream_trip_start(
        &self,
        subject: &Subject,
        upstream: &str,
        why: Option<&str>,
        return_to: &ReturnTo,
    ) -> Result<(), ChallengeError> {
        let name = self.keys.subject(subject);
        let session = self.keys.session_digest(subject);
        let budgets = [
            (
                StoreKeys::upstream_starts(&name, Some(&session)),
                SESSION_STARTS,
            ),
            (StoreKeys::upstream_starts(&name, None), SUBJECT_STARTS),
        ];
        self.ration(&budgets, WINDOW).await?;
        let trip = Trip {
            why: why.map(str::to_owned),
            return_to: return_to.as_str().to_owned(),
        };
        let record = serde_json::to_vec(&trip).unwrap_or_default();
        self.state
            .put(
                &StoreKeys::upstream_trip(&name, upstream, &session),
                record,
                TRIP_LIFETIME,
            )
            .await?;
        Ok(())
    }

    /// Forgets `subject`'s trip to `upstream` in this session (it ended
    /// well; a failure to forget only leaves it to expire).
    pub(crate) async fn upstream_trip_done(&self, subject: &Subject, upstream: &str) {
        let name = self.keys.subject(subject);
        let session = self.keys.session_digest(subject);
        let key = StoreKeys::upstream_trip(&name, upstream, &session);
        if let Err(e) = self.state.remove(&key).await {
            tracing::warn!(target: "stepup", kind = e.store(), "an upstream trip record was not removed");
        }
    }

    /// The page's reason and way back of `subject`'s trip to `upstream`
    /// in this session, if it is still kept.
    pub(crate) async fn upstream_trip(
        &self,
        subject: &Subject,
        upstream: &str,
    ) -> Result<Option<Trip>, ChallengeError> {
        let name = self.keys.subject(subject);
        let session = self.keys.session_digest(subject);
        Ok(self
            .state
            .get(&StoreKeys::upstream_trip(&name, upstream, &session))
            .await?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }
}

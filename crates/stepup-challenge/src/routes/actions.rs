//! Bound actions, on the web: [`Confirmations`], the [`Grants`] store
//! every bound route of the application asks.

use stepup_http::{BoundAction, BoxFuture, Grants, Opening, Taken};

use super::*;
use crate::engine::ActionOpened;

/// The [`Grants`] store of an application: opens a confirmation ceremony
/// per bound action in the engine's state store (its digest and summary
/// sealed, bound to the subject and session) and takes each grant at most
/// once — across instances too, on a shared store. The adapters' `StepUp`
/// sets it up; give it to
/// [`Settings::with_grants`](stepup_http::Settings::with_grants) when
/// wiring by hand. The limits are the engine's
/// ([`Engine::with_action_limits`](crate::Engine::with_action_limits)).
pub struct Confirmations<F, S, P> {
    engine: Arc<Engine<F, S, P>>,
}

impl<F, S, P> fmt::Debug for Confirmations<F, S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Confirmations").finish_non_exhaustive()
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Confirmations<F, S, P> {
    /// Bound actions confirmed through `engine`.
    pub fn new(engine: Arc<Engine<F, S, P>>) -> Self {
        Confirmations { engine }
    }

    /// `settings` with bound actions confirmed through `engine` (replacing
    /// any store set before): what the adapters' `StepUp` does.
    pub fn attach(settings: Settings, engine: &Arc<Engine<F, S, P>>) -> Settings
    where
        F: 'static,
        S: 'static,
        P: 'static,
    {
        settings.with_grants(Arc::new(Confirmations::new(engine.clone())))
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Grants for Confirmations<F, S, P> {
    fn open<'a>(
        &'a self,
        subject: &'a Subject,
        action: &'a BoundAction,
        policy: &'a Policy,
    ) -> BoxFuture<'a, Opening> {
        Box::pin(async move {
            match self
                .engine
                .open_action(subject, &action.digest(), action.summary(), policy)
                .await
            {
                Ok(ActionOpened::Id(id)) => {
                    tracing::info!(target: "stepup", outcome = "action_opened", "a bound action waits for its step-up");
                    Opening::Opened(id)
                }
                Ok(ActionOpened::TooMany) => {
                    tracing::warn!(target: "stepup", outcome = "too_many_actions", "a session opened too many bound actions");
                    Opening::TooMany
                }
                Err(e) => {
                    tracing::warn!(target: "stepup", error = %e, "a bound action's ceremony could not be opened");
                    Opening::Unavailable
                }
            }
        })
    }

    fn take<'a>(
        &'a self,
        subject: &'a Subject,
        action: &'a BoundAction,
        presented: Option<&'a str>,
    ) -> BoxFuture<'a, Taken> {
        Box::pin(async move {
            match self
                .engine
                .take_grant(subject, &action.digest(), presented)
                .await
            {
                Ok(Some(proofs)) => Taken::Granted(proofs),
                Ok(None) => Taken::Missing,
                Err(e) => {
                    tracing::warn!(target: "stepup", error = %e, "a bound action's grant could not be read");
                    Taken::Unavailable
                }
            }
        })
    }
}

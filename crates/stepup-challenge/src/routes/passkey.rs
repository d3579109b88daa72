//! The passkey routes: step-up and registration ceremonies, removal.

use super::*;
use crate::webauthn::{PublicKeyCredential, RegisterPublicKeyCredential};

#[derive(Deserialize)]
struct Finish<C> {
    ceremony: String,
    credential: C,
    return_to: Option<String>,
    name: Option<String>,
    /// The bound action's ceremony the step-up is made for.
    confirmation: Option<String>,
}

/// A passkey step-up's start: optionally for a bound action.
#[derive(Deserialize, Default)]
pub(in crate::routes) struct Start {
    pub(in crate::routes) confirmation: Option<String>,
}

/// The start's JSON body; an empty body starts one for no action.
pub(in crate::routes) fn start_input(request: &Incoming<'_>) -> Result<Start, Reply> {
    let body = body_bytes(request)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Start::default());
    }
    serde_json::from_slice(body).map_err(|_| malformed())
}

fn read<T: serde::de::DeserializeOwned>(request: &Incoming<'_>) -> Result<T, Reply> {
    serde_json::from_slice(body_bytes(request)?).map_err(|_| malformed())
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> ChallengeRoutes<F, S, P> {
    /// The answer to a ceremony start: its id and the options for
    /// `navigator.credentials`, or the refusal as JSON.
    pub(in crate::routes) fn ceremony_started<O: serde::Serialize>(
        &self,
        started: Result<(String, O), ChallengeError>,
    ) -> Reply {
        self.answer(started, |(ceremony, options)| {
            json_reply(200, &json!({"ceremony": ceremony, "options": options}))
        })
    }

    pub(in crate::routes) async fn passkey_finish(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
    ) -> Result<Reply, Reply> {
        let input: Finish<PublicKeyCredential> = read(request)?;
        let attempt = self
            .attempt_for(request, subject, input.confirmation.as_deref())
            .previous_token(Self::previous_token(request));
        let outcome = self
            .engine
            .step_up_passkey_dyn(attempt, &input.ceremony, &input.credential)
            .await;
        let back = self.settings.return_path(input.return_to.as_deref());
        let confirmed = match &outcome {
            Ok(_) => self.confirmed(subject, input.confirmation.as_deref()).await,
            Err(_) => None,
        };
        Ok(self.answer(outcome, |token| {
            self.succeeded(&token, true, &back, confirmed)
        }))
    }

    pub(in crate::routes) async fn passkey_remove(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        input: StepUpInput,
    ) -> Result<Reply, Reply> {
        use base64::Engine as _;
        let id = input
            .id
            .as_deref()
            .and_then(|id| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(id)
                    .ok()
            })
            .ok_or_else(|| error_reply(400, "id", "Name the passkey by its `id`."))?;
        let method = self
            .engine
            .passkey_method_dyn(subject, &id)
            .await
            .map_err(|e| self.failed_json(&e))?
            .ok_or_else(|| self.failed_json(&ChallengeError::NotEnrolled(Method::Passkey)))?;
        self.fresh_enough(request, subject, FactorChange::Remove(method))
            .await?;
        let outcome = self.engine.remove_passkey_dyn(subject, &id).await;
        Ok(self.changed(request, outcome, "passkey", Text::PasskeyRemoved))
    }

    pub(in crate::routes) async fn passkey_enroll_finish(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
    ) -> Result<Reply, Reply> {
        let input: Finish<RegisterPublicKeyCredential> = read(request)?;
        let name = input.name.as_deref().unwrap_or("Passkey");
        let outcome = self
            .engine
            .finish_passkey_registration_dyn(
                self.attempt(request, subject),
                &input.ceremony,
                &input.credential,
                name,
            )
            .await;
        let back = self.settings.return_path(input.return_to.as_deref());
        Ok(self.answer(outcome, |()| {
            json_reply(
                200,
                &json!({"enrolled": "passkey", "return_to": back.as_str()}),
            )
        }))
    }
}

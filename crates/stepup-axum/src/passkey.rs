//! Passkey routes: step-up and registration ceremonies (JSON, driven by the
//! served script or by an application's own front end).

use axum::extract::{Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stepup_challenge::webauthn::{PublicKeyCredential, RegisterPublicKeyCredential};
use stepup_challenge::{Attempt, FactorStore, PasswordVerifier, StateStore};

use crate::enroll::{html, open_fresh_page, open_fresh_post, page};
use crate::routes::{failed_json, no_store, open_post, read_body, return_path};
use crate::stepup::StepUp;

#[derive(Deserialize)]
struct Finish<C> {
    ceremony: String,
    credential: C,
    return_to: Option<String>,
    name: Option<String>,
}

pub(crate) async fn start<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let subject = match open_post(&stepup, &parts) {
        Ok(s) => s,
        Err(r) => return r,
    };
    ceremony_started(
        stepup
            .engine
            .start_passkey_step_up(Attempt::new(&subject))
            .await,
    )
}

/// The answer to a ceremony start: its id and the options for
/// `navigator.credentials`, or the refusal as JSON.
fn ceremony_started<O: serde::Serialize>(
    started: Result<(String, O), stepup_challenge::ChallengeError>,
) -> Response {
    match started {
        Ok((ceremony, options)) => {
            no_store(axum::Json(json!({"ceremony": ceremony, "options": options})).into_response())
        }
        Err(e) => failed_json(&e),
    }
}

pub(crate) async fn finish<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let subject = match open_post(&stepup, &parts) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let input: Finish<PublicKeyCredential> = match read_body(body).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let context = &stepup.context;
    let previous = stepup_tower::find_token(&parts.headers, context.inner.cookie.name())
        .ok()
        .flatten();
    let attempt = Attempt::new(&subject).previous_token(previous);
    match stepup
        .engine
        .step_up_passkey(attempt, &input.ceremony, &input.credential)
        .await
    {
        Ok(token) => {
            let back = return_path(context, input.return_to.as_deref());
            let a = token.assurance();
            let mut response = axum::Json(json!({
                "ok": true,
                "level": a.level(),
                "acr": a.acr(),
                "expires_at": a.expires_at().as_unix_seconds(),
                "return_to": back.as_str(),
            }))
            .into_response();
            if let Ok(cookie) = HeaderValue::from_str(
                &context
                    .inner
                    .cookie
                    .set_cookie(token.value(), token.max_age()),
            ) {
                response.headers_mut().insert(SET_COOKIE, cookie);
            }
            no_store(response)
        }
        Err(e) => failed_json(&e),
    }
}

pub(crate) async fn enroll_page<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if let Err(response) = open_fresh_page(&stepup, &parts).await {
        return response;
    }
    html(StatusCode::OK, &page(&stepup).offer_passkey())
}

pub(crate) async fn enroll_start<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let subject = match open_fresh_post(&stepup, &parts).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    ceremony_started(
        stepup
            .engine
            .start_passkey_registration(&subject, subject.id())
            .await,
    )
}

pub(crate) async fn enroll_finish<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let subject = match open_post(&stepup, &parts) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let input: Finish<RegisterPublicKeyCredential> = match read_body(body).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let name = input.name.as_deref().unwrap_or("Passkey");
    match stepup
        .engine
        .finish_passkey_registration(
            Attempt::new(&subject),
            &input.ceremony,
            &input.credential,
            name,
        )
        .await
    {
        Ok(()) => {
            let back = return_path(&stepup.context, input.return_to.as_deref());
            no_store(
                axum::Json(json!({"enrolled": "passkey", "return_to": back.as_str()}))
                    .into_response(),
            )
        }
        Err(e) => failed_json(&e),
    }
}

/// `GET <base>/assets/passkey.js`.
pub(crate) async fn script() -> Response {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                axum::http::header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        stepup_challenge::PASSKEY_JS,
    )
        .into_response()
}

//! Enrollment routes: set up an authenticator app, get recovery codes.
//! Enrolling needs a fresh step-up when the user already has a second factor.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use stepup_challenge::{
    Attempt, ChallengeError, EnrollPage, FactorStore, PasswordVerifier, StateStore,
};
use stepup_core::{ChallengeReason, Method, Policy, ReturnTo, Subject};
use stepup_tower::find_token;

use crate::routes::{
    failed_json, failure_status, is_json, no_store, open_post, read_input, service_unavailable,
};
use crate::stepup::StepUp;

/// How fresh a step-up must be to add or replace a factor.
const ENROLL_MAX_AGE: Duration = Duration::from_secs(300);
/// How many recovery codes a user gets.
const RECOVERY_CODES: usize = 10;

fn enroll_policy() -> Policy {
    Policy::level(2)
        .max_age(ENROLL_MAX_AGE)
        .with_reason("Confirm it's you before changing how you sign in.")
}

/// A user who already has a second factor must have stepped up recently to
/// add or replace one; a user without one may enroll the first.
pub(crate) async fn fresh_enough<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    stepup: &StepUp<F, S, P>,
    parts: &Parts,
    subject: &Subject,
) -> Result<(), Response> {
    let methods = stepup
        .engine
        .enrolled_methods(subject)
        .await
        .map_err(|e| service_unavailable(&e))?;
    let has_second_factor = methods
        .iter()
        .any(|m| matches!(m, Method::Totp | Method::RecoveryCode | Method::Passkey));
    if !has_second_factor {
        return Ok(());
    }
    let c = &stepup.context.inner;
    let policy = enroll_policy();
    let now = c.clock.now();
    let verified = match find_token(&parts.headers, c.cookie.name()) {
        Ok(token) => c.gate.verify(subject.clone(), token, now),
        Err(()) => Err(ChallengeReason::Invalid),
    };
    let challenge = match verified {
        Ok(assurance) => match assurance.require(&policy, now) {
            Ok(()) => return Ok(()),
            Err(challenge) => challenge,
        },
        Err(reason) => c.gate.challenge(reason, &policy),
    };
    // Inside the nested router the path has lost its mount prefix: put it back
    // so the step-up returns here.
    let back = ReturnTo::parse_or(
        &format!("{}{}", c.target.page.as_str(), parts.uri.path()),
        &c.target.fallback,
    );
    Err(c
        .target
        .respond_to(stepup_tower::is_navigation(parts), &back, &challenge))
}

pub(crate) fn html(status: StatusCode, page: &EnrollPage) -> Response {
    match page.html() {
        Ok(body) => no_store(
            (
                status,
                [(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )],
                body,
            )
                .into_response(),
        ),
        Err(e) => service_unavailable(&ChallengeError::Store(e)),
    }
}

/// Opens an enrollment POST: origin, subject, and a fresh enough step-up.
pub(crate) async fn open_fresh_post<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    stepup: &StepUp<F, S, P>,
    parts: &Parts,
) -> Result<Subject, Response> {
    let subject = open_post(stepup, parts)?;
    fresh_enough(stepup, parts, &subject).await?;
    Ok(subject)
}

/// Opens an enrollment page: a logged-in subject with a fresh enough step-up.
pub(crate) async fn open_fresh_page<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    stepup: &StepUp<F, S, P>,
    parts: &Parts,
) -> Result<Subject, Response> {
    let subject = stepup
        .context
        .subject(parts)
        .ok_or_else(stepup_tower::login_required)?;
    fresh_enough(stepup, parts, &subject).await?;
    Ok(subject)
}

pub(crate) fn page<F, S, P>(stepup: &StepUp<F, S, P>) -> EnrollPage {
    let c = &stepup.context.inner;
    EnrollPage::new(c.target.page.as_str(), &c.target.fallback)
}

pub(crate) async fn totp_page<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if let Err(response) = open_fresh_page(&stepup, &parts).await {
        return response;
    }
    html(StatusCode::OK, &page(&stepup).start())
}

pub(crate) async fn totp_start<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let subject = match open_fresh_post(&stepup, &parts).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let enrollment = match stepup
        .engine
        .start_totp_enrollment(&subject, subject.id())
        .await
    {
        Ok(e) => e,
        Err(e) => return service_unavailable(&e),
    };
    let qr = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(enrollment.qr_png())
    );
    if is_json(&parts) {
        return no_store(
            axum::Json(json!({
                "otpauth_uri": enrollment.otpauth_uri(),
                "manual_entry_key": enrollment.manual_entry_key(),
                "qr_png_data_url": qr,
            }))
            .into_response(),
        );
    }
    html(
        StatusCode::OK,
        &page(&stepup).scan(qr, enrollment.manual_entry_key().to_owned()),
    )
}

pub(crate) async fn totp_confirm<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let subject = match open_post(&stepup, &parts) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let input = match read_input(&parts, body).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let code = input.code.as_deref().unwrap_or("");
    let outcome = stepup
        .engine
        .confirm_totp_enrollment(Attempt::new(&subject), code)
        .await;
    match (outcome, is_json(&parts)) {
        (Ok(()), true) => no_store(axum::Json(json!({"enrolled": "totp"})).into_response()),
        (Ok(()), false) => html(
            StatusCode::OK,
            &page(&stepup).done("Your authenticator app is set up."),
        ),
        (Err(e), true) => failed_json(&e),
        (Err(e), false) => {
            let status = failure_status(&e);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                return service_unavailable(&e);
            }
            html(status, &page(&stepup).error(e.to_string()).start())
        }
    }
}

pub(crate) async fn recovery_codes<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let subject = match open_fresh_post(&stepup, &parts).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let codes = match stepup
        .engine
        .generate_recovery_codes(&subject, RECOVERY_CODES)
        .await
    {
        Ok(codes) => codes.iter().map(|c| c.grouped()).collect::<Vec<_>>(),
        Err(e) => return service_unavailable(&e),
    };
    if is_json(&parts) {
        return no_store(axum::Json(json!({"recovery_codes": codes})).into_response());
    }
    html(StatusCode::OK, &page(&stepup).codes(codes))
}

//! The challenge routes: the page, the three step-up POSTs, status and drop.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use stepup_challenge::{
    Attempt, ChallengeError, ChallengePage, Channel, FactorStore, PAGE_CSS, PasswordVerifier,
    StateStore,
};
use stepup_core::{ChallengeReason, IssuedToken, Method, Policy, ReturnTo, Subject};
use stepup_tower::find_token;

use crate::context::StepUpContext;
use crate::enroll;
use crate::passkey;
use crate::stepup::StepUp;

/// The most a challenge POST body may hold.
const MAX_BODY: usize = 16 * 1024;

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> StepUp<F, S, P> {
    /// The challenge routes, to `nest` at the path given to
    /// [`mounted_at`](StepUp::mounted_at) (default `/step-up`):
    ///
    /// | route | what |
    /// |---|---|
    /// | `GET /` | the challenge page (`?return_to=…&reason=…`) |
    /// | `GET /assets/page.css` | its stylesheet |
    /// | `POST /totp`, `/password`, `/recovery` | a step-up, form (`code` or `password`, `return_to`) or JSON |
    /// | `POST /passkey/start`, `/passkey/finish` | a passkey step-up (JSON; the page's script drives it) |
    /// | `GET /enroll/passkey`, `POST /enroll/passkey/start`, `/finish` | register a passkey |
    /// | `GET /assets/passkey.js` | the page's passkey script |
    /// | `POST /code/send` | send a one-time code (`channel`: `email` or `sms`) to the user's registered address |
    /// | `POST /code/verify` | a step-up with that code (`channel`, `challenge_id`, `code`) |
    /// | `GET /status` | the current assurance as JSON; `?policy=<expression>` adds `satisfied` |
    /// | `POST /drop` | leave the elevated state (deletes the cookie) |
    /// | `GET /enroll/totp`, `POST /enroll/totp` | set up an authenticator app: the page, then the QR code and manual key |
    /// | `POST /enroll/totp/confirm` | confirm it with a first code |
    /// | `POST /enroll/recovery-codes` | replace the recovery codes, shown once |
    ///
    /// Enrolling needs a step-up at level 2 within 5 minutes when the user
    /// already has a second factor (TOTP or recovery codes).
    ///
    /// Every POST must come from the configured origin (403 otherwise); no
    /// GET changes state. A form POST answers like a browser expects (`303`
    /// to the validated `return_to`, or the page again with the error); a
    /// JSON POST answers with JSON.
    ///
    /// The router has no state left to provide, so it nests into a router of
    /// any state type.
    pub fn routes<AppState: Clone + Send + Sync + 'static>(&self) -> Router<AppState> {
        Router::new()
            .route("/", get(page::<F, S, P>))
            .route("/assets/page.css", get(stylesheet))
            .route("/totp", post(step_up::<F, S, P>))
            .route("/password", post(step_up::<F, S, P>))
            .route("/recovery", post(step_up::<F, S, P>))
            .route("/code/send", post(send_code::<F, S, P>))
            .route("/passkey/start", post(passkey::start::<F, S, P>))
            .route("/passkey/finish", post(passkey::finish::<F, S, P>))
            .route("/enroll/passkey", get(passkey::enroll_page::<F, S, P>))
            .route(
                "/enroll/passkey/start",
                post(passkey::enroll_start::<F, S, P>),
            )
            .route(
                "/enroll/passkey/finish",
                post(passkey::enroll_finish::<F, S, P>),
            )
            .route("/assets/passkey.js", get(passkey::script))
            .route("/code/verify", post(step_up::<F, S, P>))
            .route("/status", get(status::<F, S, P>))
            .route("/drop", post(drop_assurance::<F, S, P>))
            .route(
                "/enroll/totp",
                get(enroll::totp_page::<F, S, P>).post(enroll::totp_start::<F, S, P>),
            )
            .route(
                "/enroll/totp/confirm",
                post(enroll::totp_confirm::<F, S, P>),
            )
            .route(
                "/enroll/recovery-codes",
                post(enroll::recovery_codes::<F, S, P>),
            )
            .with_state(self.clone())
    }
}

#[derive(Deserialize, Default)]
struct PageQuery {
    return_to: Option<String>,
    reason: Option<String>,
    why: Option<String>,
}

const GENERIC_MESSAGE: &str = "We need to confirm it's really you before you continue.";

pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn reason_detail(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "stale" | "expired" => "Your last confirmation was a while ago.",
        "insufficient_level" | "missing_method" => {
            "This needs a stronger confirmation than the last one."
        }
        "revoked" => "Your earlier confirmations were reset.",
        "other_binding" => "Your earlier confirmation belongs to another sign-in.",
        _ => return None,
    })
}

async fn page<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    Query(query): Query<PageQuery>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let context = &stepup.context;
    let Some(subject) = context.subject(&parts) else {
        return stepup_tower::login_required();
    };
    let return_to = return_path(context, query.return_to.as_deref());
    // Only configured text: `why` is an identifier, never the sentence itself.
    let message = query
        .why
        .as_deref()
        .and_then(|id| context.inner.reasons.get(id))
        .unwrap_or_else(|| GENERIC_MESSAGE.to_owned());
    let mut page = ChallengePage::new(context.inner.target.page.as_str(), &return_to, message);
    if let Some(detail) = reason_detail(query.reason.as_deref()) {
        page = page.detail(detail);
    }
    render_page(&stepup, &subject, page, StatusCode::OK).await
}

async fn render_page<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    stepup: &StepUp<F, S, P>,
    subject: &Subject,
    mut page: ChallengePage,
    status: StatusCode,
) -> Response {
    let methods = match stepup.engine.enrolled_methods(subject).await {
        Ok(m) => m,
        Err(e) => return service_unavailable(&e),
    };
    for method in &methods {
        page = match method {
            Method::Totp => page.with_totp(stepup.engine.totp_config().digits()),
            Method::Password => page.with_password(),
            Method::RecoveryCode => page.with_recovery_code(),
            Method::Passkey => page.with_passkey(),
            Method::EmailCode => page.with_code_channel(Channel::Email),
            Method::SmsCode => page.with_code_channel(Channel::Sms),
            _ => page,
        };
        stepup.engine.challenge_issued(subject, *method);
    }
    let rendered = match &stepup.context.inner.renderer {
        Some(render) => Ok(render(&page)),
        None => page.html(),
    };
    match rendered {
        Ok(html) => no_store(
            (
                status,
                [(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )],
                html,
            )
                .into_response(),
        ),
        Err(e) => service_unavailable(&ChallengeError::Store(e)),
    }
}

async fn stylesheet() -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        PAGE_CSS,
    )
        .into_response()
}

/// The form or JSON body of a step-up POST.
#[derive(Deserialize, Default)]
pub(crate) struct StepUpInput {
    pub(crate) code: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) return_to: Option<String>,
    pub(crate) channel: Option<String>,
    pub(crate) challenge_id: Option<String>,
}

/// Whether a challenge POST comes from our own origin: `Origin` equal to the
/// configured one, or (browsers that send no `Origin`) `Sec-Fetch-Site:
/// same-origin`. Anything else — another origin, or neither header — is
/// refused: API clients send `Origin`.
fn same_origin(parts: &Parts, context: &StepUpContext) -> bool {
    stepup_core::web::same_origin(
        &context.inner.origin,
        parts.headers.get("origin").map(HeaderValue::as_bytes),
        parts
            .headers
            .get("sec-fetch-site")
            .map(HeaderValue::as_bytes),
    )
}

/// Opens a POST: the origin check and the logged-in subject. (The error is
/// the response the handler returns as it is; boxing it would gain nothing.)
#[allow(clippy::result_large_err)]
pub(crate) fn open_post<F, S, P>(
    stepup: &StepUp<F, S, P>,
    parts: &Parts,
) -> Result<Subject, Response> {
    if !same_origin(parts, &stepup.context) {
        return Err(forbidden());
    }
    stepup
        .context
        .subject(parts)
        .ok_or_else(stepup_tower::login_required)
}

fn forbidden() -> Response {
    no_store(
        (
            StatusCode::FORBIDDEN,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            stepup_core::web::FORBIDDEN_BODY,
        )
            .into_response(),
    )
}

pub(crate) fn is_json(parts: &Parts) -> bool {
    parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| stepup_core::web::is_json(v.as_bytes()))
}

pub(crate) fn return_path(context: &StepUpContext, input: Option<&str>) -> ReturnTo {
    let fallback = &context.inner.target.fallback;
    input.map_or_else(|| fallback.clone(), |p| ReturnTo::parse_or(p, fallback))
}

/// The body's bytes, at most `MAX_BODY` of them.
async fn body_bytes(body: Body) -> Result<axum::body::Bytes, Response> {
    to_bytes(body, MAX_BODY).await.map_err(|_| {
        bad_request(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "The request is too large.",
        )
    })
}

fn malformed() -> Response {
    bad_request(
        StatusCode::BAD_REQUEST,
        "malformed",
        "The request body could not be read.",
    )
}

/// Reads a JSON body of any shape (the passkey routes speak JSON only).
pub(crate) async fn read_body<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, Response> {
    let bytes = body_bytes(body).await?;
    serde_json::from_slice(&bytes).map_err(|_| malformed())
}

/// Reads a challenge form: JSON or `application/x-www-form-urlencoded`.
pub(crate) async fn read_input(parts: &Parts, body: Body) -> Result<StepUpInput, Response> {
    let bytes = body_bytes(body).await?;
    if is_json(parts) {
        serde_json::from_slice(&bytes).map_err(|_| malformed())
    } else {
        serde_urlencoded::from_bytes(&bytes).map_err(|_| malformed())
    }
}

pub(crate) fn bad_request(status: StatusCode, code: &str, message: &str) -> Response {
    no_store(
        (
            status,
            axum::Json(json!({"error": code, "message": message})),
        )
            .into_response(),
    )
}

pub(crate) fn service_unavailable(error: &ChallengeError) -> Response {
    tracing::warn!(target: "stepup", error = %error, "step-up unavailable");
    bad_request(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Confirming is not possible right now; please try again in a moment.",
    )
}

async fn step_up<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let context = &stepup.context;
    let subject = match open_post(&stepup, &parts) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let input = match read_input(&parts, body).await {
        Ok(input) => input,
        Err(response) => return response,
    };
    let json = is_json(&parts);
    let previous = find_token(&parts.headers, context.inner.cookie.name())
        .ok()
        .flatten();
    let attempt = Attempt::new(&subject).previous_token(previous);
    let channel = input
        .channel
        .as_deref()
        .and_then(Channel::parse)
        .unwrap_or(Channel::Email);
    let (method, form) = match parts.uri.path().rsplit('/').next() {
        Some("password") => (Method::Password, "password"),
        Some("recovery") => (Method::RecoveryCode, "recovery"),
        Some("verify") => (channel.method(), "code"),
        _ => (Method::Totp, "totp"),
    };
    let secret = match method {
        Method::Password => input.password.as_deref(),
        _ => input.code.as_deref(),
    }
    .unwrap_or("");
    let outcome = match method {
        Method::Password => stepup.engine.step_up_password(attempt, secret).await,
        Method::RecoveryCode => stepup.engine.step_up_recovery_code(attempt, secret).await,
        Method::EmailCode | Method::SmsCode => {
            let challenge_id = input.challenge_id.as_deref().unwrap_or("");
            stepup
                .engine
                .step_up_code(attempt, channel, challenge_id, secret)
                .await
        }
        _ => stepup.engine.step_up_totp(attempt, secret).await,
    };
    let return_to = return_path(context, input.return_to.as_deref());
    match outcome {
        Ok(token) => succeeded(context, &token, json, &return_to),
        Err(error) if json => failed_json(&error),
        Err(error) => {
            let status = failure_status(&error);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                return service_unavailable(&error);
            }
            let mut page = ChallengePage::new(
                context.inner.target.page.as_str(),
                &return_to,
                GENERIC_MESSAGE,
            )
            .error(user_message(&error, context), form);
            // A wrong code keeps the code form up, for the same challenge.
            if let (Method::EmailCode | Method::SmsCode, Some(id), ChallengeError::Wrong { .. }) =
                (method, input.challenge_id.as_deref(), &error)
            {
                page = page.awaiting_code(channel, id, "your registered address");
            }
            render_page(&stepup, &subject, page, status).await
        }
    }
}

async fn send_code<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let context = &stepup.context;
    let subject = match open_post(&stepup, &parts) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let input = match read_input(&parts, body).await {
        Ok(input) => input,
        Err(response) => return response,
    };
    let Some(channel) = input.channel.as_deref().and_then(Channel::parse) else {
        return bad_request(
            StatusCode::BAD_REQUEST,
            "channel",
            "Choose `email` or `sms`.",
        );
    };
    let return_to = return_path(context, input.return_to.as_deref());
    let json = is_json(&parts);
    match stepup
        .engine
        .send_code(Attempt::new(&subject), channel)
        .await
    {
        Ok(sent) if json => no_store(
            axum::Json(json!({
                "challenge_id": sent.challenge_id,
                "channel": channel.as_str(),
                "destination_hint": sent.destination_hint,
                "expires_at": sent.expires_at.as_unix_seconds(),
            }))
            .into_response(),
        ),
        Ok(sent) => {
            let page = ChallengePage::new(
                context.inner.target.page.as_str(),
                &return_to,
                GENERIC_MESSAGE,
            )
            .awaiting_code(channel, &sent.challenge_id, &sent.destination_hint);
            render_page(&stepup, &subject, page, StatusCode::OK).await
        }
        Err(error) if json => failed_json(&error),
        Err(error) => {
            let status = failure_status(&error);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                return service_unavailable(&error);
            }
            let page = ChallengePage::new(
                context.inner.target.page.as_str(),
                &return_to,
                GENERIC_MESSAGE,
            )
            .error(user_message(&error, context), "code");
            render_page(&stepup, &subject, page, status).await
        }
    }
}

fn succeeded(
    context: &StepUpContext,
    token: &IssuedToken,
    json: bool,
    return_to: &ReturnTo,
) -> Response {
    let cookie = HeaderValue::from_str(
        &context
            .inner
            .cookie
            .set_cookie(token.value(), token.max_age()),
    )
    .ok();
    let mut response = if json {
        let a = token.assurance();
        axum::Json(json!({
            "ok": true,
            "level": a.level(),
            "acr": a.acr(),
            "amr": a.amr(),
            "expires_at": a.expires_at().as_unix_seconds(),
            "return_to": return_to.as_str(),
        }))
        .into_response()
    } else {
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(location) = HeaderValue::from_str(return_to.as_str()) {
            r.headers_mut().insert(LOCATION, location);
        }
        r
    };
    if let Some(cookie) = cookie {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    no_store(response)
}

/// The error as the page says it: whole sentences, a lockout in minutes
/// rather than a timestamp.
fn user_message(error: &ChallengeError, context: &StepUpContext) -> String {
    match error {
        ChallengeError::LockedOut { until } => {
            let seconds = until
                .as_unix_seconds()
                .saturating_sub(context.inner.clock.now().as_unix_seconds());
            let minutes = seconds.div_ceil(60).max(1);
            format!(
                "Too many attempts. Please wait {minutes} minute{} and try again.",
                if minutes == 1 { "" } else { "s" }
            )
        }
        ChallengeError::Wrong { attempts_left: 0 } => {
            "That was not right. Please wait a moment before trying again.".to_owned()
        }
        ChallengeError::Wrong { attempts_left } => format!(
            "That was not right. You can try {attempts_left} more time{}.",
            if *attempts_left == 1 { "" } else { "s" }
        ),
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
                None => text,
            }
        }
    }
}

pub(crate) fn failure_status(error: &ChallengeError) -> StatusCode {
    match error {
        ChallengeError::LockedOut { .. } => StatusCode::TOO_MANY_REQUESTS,
        ChallengeError::Store(_) | ChallengeError::Issue(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

pub(crate) fn failed_json(error: &ChallengeError) -> Response {
    let status = failure_status(error);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return service_unavailable(error);
    }
    let (code, extra) = match error {
        ChallengeError::Wrong { attempts_left } => {
            ("wrong", json!({"attempts_left": attempts_left}))
        }
        ChallengeError::LockedOut { until } => (
            "locked_out",
            json!({"locked_until": until.as_unix_seconds()}),
        ),
        ChallengeError::AlreadyUsed => ("already_used", json!({})),
        ChallengeError::Format(_) => ("format", json!({})),
        ChallengeError::NotEnrolled(_) => ("not_enrolled", json!({})),
        ChallengeError::NoPendingCode => ("no_pending_code", json!({})),
        ChallengeError::NoPendingCeremony => ("no_pending_ceremony", json!({})),
        ChallengeError::PasskeyRejected => ("passkey_rejected", json!({})),
        _ => ("failed", json!({})),
    };
    let mut body = json!({"error": code, "message": error.to_string()});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let mut response = (status, axum::Json(body)).into_response();
    if let ChallengeError::LockedOut { until } = error {
        let wait = until
            .as_unix_seconds()
            .saturating_sub(stepup_core::Clock::now(&stepup_core::SystemClock).as_unix_seconds());
        if let Ok(v) = HeaderValue::from_str(&wait.max(1).to_string()) {
            response.headers_mut().insert(RETRY_AFTER, v);
        }
    }
    no_store(response)
}

#[derive(Deserialize, Default)]
struct StatusQuery {
    policy: Option<String>,
}

async fn status<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    Query(query): Query<StatusQuery>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let c = &stepup.context.inner;
    let Some(subject) = stepup.context.subject(&parts) else {
        return stepup_tower::login_required();
    };
    let policy = match query.policy.as_deref().map(Policy::parse) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => return bad_request(StatusCode::BAD_REQUEST, "policy", &e.to_string()),
    };
    let now = c.clock.now();
    let verified = match find_token(&parts.headers, c.cookie.name()) {
        Ok(token) => c.gate.verify(subject, token, now),
        Err(()) => Err(ChallengeReason::Invalid),
    };
    let body = match verified {
        Ok(a) => {
            let methods: Vec<_> = a
                .proofs()
                .iter()
                .map(|p| {
                    json!({
                        "method": p.method().to_string(),
                        "proven_at": p.at().as_unix_seconds(),
                        "age": now.duration_since(p.at()).as_secs(),
                    })
                })
                .collect();
            let mut body = json!({
                "assured": true,
                "level": a.level(),
                "acr": a.acr(),
                "methods": methods,
                "expires_at": a.expires_at().as_unix_seconds(),
            });
            if let (Some(policy), Some(obj)) = (&policy, body.as_object_mut()) {
                obj.insert("policy".into(), json!(policy.to_string()));
                obj.insert("satisfied".into(), json!(a.satisfies(policy, now)));
            }
            body
        }
        Err(reason) => {
            let mut body = json!({"assured": false, "reason": reason.code()});
            if let (Some(policy), Some(obj)) = (&policy, body.as_object_mut()) {
                obj.insert("policy".into(), json!(policy.to_string()));
                obj.insert("satisfied".into(), json!(false));
            }
            body
        }
    };
    no_store(axum::Json(body).into_response())
}

async fn drop_assurance<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(stepup): State<StepUp<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let context = &stepup.context;
    if !same_origin(&parts, context) {
        return forbidden();
    }
    let input = read_input(&parts, body).await.unwrap_or_default();
    let mut response = if is_json(&parts) {
        axum::Json(json!({"dropped": true})).into_response()
    } else {
        let mut r = StatusCode::SEE_OTHER.into_response();
        let back = return_path(context, input.return_to.as_deref());
        if let Ok(location) = HeaderValue::from_str(back.as_str()) {
            r.headers_mut().insert(LOCATION, location);
        }
        r
    };
    if let Ok(cookie) = HeaderValue::from_str(&context.inner.cookie.delete_cookie()) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    no_store(response)
}

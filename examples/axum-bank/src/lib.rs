//! axum-bank: the smallest bank that shows stepup with axum. Alice logs in
//! with her password; moving money or reading statements asks her to confirm
//! it's really her, for a while. The bank itself (users, sessions, balances,
//! policies, pages) is `bank-core`, shared with `actix-bank`: this crate is
//! only the axum wiring.
//!
//! `cargo run -p axum-bank`, then open the printed URL. Users' factors
//! (Alice's passkey, Bob's new TOTP) survive restarts: they are kept in
//! `bank-data/axum-bank` under the working directory; delete it to start
//! afresh. `bank-core` documents the environment variables.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bank_core::{
    Bank, LOGOUT_COOKIE, LoginInput, LoginOutcome, TRANSFER_REFUSED, TransferInput, pages,
};
use serde_json::json;
use stepup_axum::{Assurance, ClientAddress, CookieSettings, StepUp};
use stepup_core::Subject;
use stepup_http::BoundAction;
use stepup_tower::FromExtension;

pub use bank_core::BankConfig;

/// Builds the bank's router.
pub async fn app(config: BankConfig) -> Result<Router, Box<dyn std::error::Error>> {
    let engine = bank_core::stepup(&config).await?;
    let bank = Bank::with_extra_users(config.extra_users)
        .with_epochs_from(engine.factors())
        .with_login_throttle(&config);
    // Plain http on localhost: the `__Host-` prefix and `Secure` need https,
    // so the demo uses the development cookie. Never do this in production.
    let stepup = StepUp::new(engine, FromExtension::<Subject>::new(), &config.origin)
        .with_cookie(CookieSettings::insecure_local_development());
    // The bank's own state-changing routes take requests from its origin
    // only (`SameSite` cookies let a sibling subdomain through); added
    // after `require`, the check runs first. The challenge routes check
    // their own.
    let from_us = stepup.same_origin();
    Ok(Router::new()
        .route("/", get(home))
        .route("/account", get(account))
        .route(
            "/statements",
            get(statements).route_layer(stepup.require(bank_core::statements_policy())),
        )
        .route(
            "/transfer",
            post(transfer)
                .route_layer(
                    // Bound: the amount and payee are read once, here; over
                    // 10,000 the step-up confirms exactly them, once.
                    stepup
                        .require(bank_core::transfer_policy())
                        .bind(bank_core::transfer_action()?)
                        .bound_policy(bank_core::bound_transfer_policy(Arc::new(
                            bank_core::big_transfer_policy(),
                        ))),
                )
                .route_layer(from_us.clone()),
        )
        .route("/settings", get(settings))
        .route(
            "/settings/close-account",
            post(close_account)
                .route_layer(
                    stepup
                        .require(bank_core::close_policy())
                        .summary(bank_core::close_summary),
                )
                .route_layer(from_us.clone()),
        )
        .route("/login", post(login).route_layer(from_us.clone()))
        .route("/logout", post(logout).route_layer(from_us))
        .merge(stepup.routes())
        .layer(stepup.layer())
        .layer(middleware::from_fn_with_state(
            bank.clone(),
            who_is_logged_in,
        ))
        .with_state(bank))
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes)
}

/// The bank's own login: a session cookie names the user. It tells stepup
/// the subject *and the session*, so an assurance never outlives the login.
async fn who_is_logged_in(State(bank): State<Bank>, mut request: Request, next: Next) -> Response {
    if let Some(subject) = bank.subject(cookies(request.headers())).await {
        request.extensions_mut().insert(subject);
    }
    next.run(request).await
}

fn see_other(to: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_static(to))],
    )
        .into_response()
}

async fn home(State(bank): State<Bank>, subject: Option<Extension<Subject>>) -> Html<String> {
    Html(match subject {
        Some(Extension(s)) => pages::home(s.id(), bank.balance_of(s.id())),
        None => pages::login(),
    })
}

async fn account(State(bank): State<Bank>, subject: Option<Extension<Subject>>) -> Response {
    // A balance is nobody else's business: no cache keeps it.
    let no_store = [(CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    match subject {
        Some(Extension(s)) => (
            no_store,
            Json(json!({"user": s.id(), "balance": bank.balance_of(s.id())})),
        )
            .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            no_store,
            Json(json!({"error": "log in first"})),
        )
            .into_response(),
    }
}

async fn statements(assurance: Assurance) -> Html<String> {
    Html(pages::statements(assurance.level()))
}

/// `POST /transfer`: the layer read the amount and payee once (the
/// [`BoundAction`]); the handler uses them, never the body.
async fn transfer(
    State(bank): State<Bank>,
    Extension(subject): Extension<Subject>,
    Extension(action): Extension<BoundAction>,
    headers: HeaderMap,
) -> Response {
    let json = headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| stepup_http::is_json(v.as_bytes()));
    let input = match TransferInput::from_action(&action) {
        Ok(input) => input,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response();
        }
    };
    match bank.transfer(subject.id(), &input) {
        Some(balance) if json => Json(json!({"ok": true, "balance": balance})).into_response(),
        Some(_) => see_other("/"),
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": TRANSFER_REFUSED})),
        )
            .into_response(),
    }
}

async fn settings(subject: Option<Extension<Subject>>) -> Response {
    match subject {
        Some(_) => Html(pages::settings()).into_response(),
        None => see_other("/"),
    }
}

async fn close_account(
    State(bank): State<Bank>,
    Extension(subject): Extension<Subject>,
    headers: HeaderMap,
) -> Response {
    bank.close(&subject);
    let page = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .any(|v| stepup_http::accepts_html(v.as_bytes()));
    // This browser's session cookie goes too (the bank ended every session).
    let logout = [(SET_COOKIE, HeaderValue::from_static(LOGOUT_COOKIE))];
    if page {
        (logout, Html(pages::closed())).into_response()
    } else {
        (logout, Json(json!({"closed": true}))).into_response()
    }
}

async fn login(
    State(bank): State<Bank>,
    address: Option<ClientAddress>,
    axum::extract::Form(input): axum::extract::Form<LoginInput>,
) -> Response {
    match bank.login(&input, address.map(|a| a.0)).await {
        LoginOutcome::LoggedIn(cookie) => {
            let mut response = see_other("/");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(SET_COOKIE, v);
            }
            response
        }
        LoginOutcome::Refused => {
            (StatusCode::UNAUTHORIZED, Html(pages::login_failed())).into_response()
        }
        LoginOutcome::Throttled { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1))),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            Html(pages::login_throttled(retry_after)),
        )
            .into_response(),
        LoginOutcome::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn logout(State(bank): State<Bank>, headers: HeaderMap) -> Response {
    bank.logout(cookies(&headers));
    let mut response = see_other("/");
    response
        .headers_mut()
        .insert(SET_COOKIE, HeaderValue::from_static(LOGOUT_COOKIE));
    response
}

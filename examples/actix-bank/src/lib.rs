//! actix-bank: the same bank as axum-bank — same users, routes, policies,
//! pages and environment variables — wired with actix-web, so any client
//! that works against one works against the other (the conformance suite in
//! `tests/` runs the same scenarios against both).
//!
//! `cargo run -p actix-bank`, then open the printed URL. Users' factors
//! (Alice's passkey, Bob's new TOTP) survive restarts: they are kept in
//! `bank-data/actix-bank` under the working directory; delete it to start
//! afresh. `bank-core` documents the environment variables.

use std::net::TcpListener;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, COOKIE, HeaderValue, LOCATION, RETRY_AFTER, SET_COOKIE,
};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage as _, HttpRequest, HttpResponse, HttpServer, web};
use bank_core::{
    Bank, LOGOUT_COOKIE, LoginInput, LoginOutcome, TRANSFER_REFUSED, TransferInput, pages,
};
use serde_json::json;
use stepup_actix::{Assurance, ClientAddress, StepUp};
use stepup_core::Subject;
use stepup_http::{BoundAction, CookieSettings};

pub use bank_core::BankConfig;

/// Builds the bank and returns its server, listening on `listener` with
/// `workers` worker threads; await it (or spawn it) to serve.
pub async fn serve(
    config: BankConfig,
    listener: TcpListener,
    workers: usize,
) -> Result<Server, Box<dyn std::error::Error>> {
    let engine = bank_core::stepup(&config).await?;
    let bank = Bank::with_extra_users(config.extra_users)
        .with_epochs_from(engine.factors())
        .with_login_throttle(&config);
    // Plain http on localhost: the `__Host-` prefix and `Secure` need https,
    // so the demo uses the development cookie. Never do this in production.
    // Who is logged in is what `who_is_logged_in` found.
    let stepup = StepUp::new(engine, subject, &config.origin)
        .with_cookie(CookieSettings::insecure_local_development());
    let transfer_action = bank_core::transfer_action()?;
    let big = std::sync::Arc::new(bank_core::big_transfer_policy());
    let server = HttpServer::new(move || {
        // The bank's own state-changing routes take requests from its origin
        // only (`SameSite` cookies let a sibling subdomain through); wrapped
        // last, the check runs first. The challenge routes check their own.
        let from_us = stepup.same_origin();
        App::new()
            .wrap(from_fn(who_is_logged_in))
            .app_data(web::Data::new(bank.clone()))
            .app_data(stepup.app_data())
            .configure(|c| stepup.configure(c))
            .route("/", web::get().to(home))
            .route("/account", web::get().to(account))
            .service(
                web::resource("/statements")
                    .wrap(stepup.require(bank_core::statements_policy()))
                    .route(web::get().to(statements)),
            )
            .service(
                web::resource("/transfer")
                    .wrap(
                        // Bound: the amount and payee are read once, here;
                        // over 10,000 the step-up confirms exactly them, once.
                        stepup
                            .require(bank_core::transfer_policy())
                            .bind(transfer_action.clone())
                            .bound_policy(bank_core::bound_transfer_policy(big.clone())),
                    )
                    .wrap(from_us.clone())
                    .route(web::post().to(transfer)),
            )
            .route("/settings", web::get().to(settings))
            .service(
                web::resource("/settings/close-account")
                    .wrap(
                        stepup
                            .require(bank_core::close_policy())
                            .summary(bank_core::close_summary),
                    )
                    .wrap(from_us.clone())
                    .route(web::post().to(close_account)),
            )
            .service(
                web::resource("/login")
                    .wrap(from_us.clone())
                    .route(web::post().to(login)),
            )
            .service(
                web::resource("/logout")
                    .wrap(from_us)
                    .route(web::post().to(logout)),
            )
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}

fn cookies(request: &HttpRequest) -> impl Iterator<Item = &[u8]> {
    request.headers().get_all(COOKIE).map(HeaderValue::as_bytes)
}

/// The bank's own login: a session cookie names the user. It tells stepup
/// the subject *and the session*, so an assurance never outlives the login.
/// Reading the user's epoch is asynchronous, so this middleware (around the
/// whole app) resolves the subject once per request and leaves it in the
/// request's extensions, where stepup's subject source ([`subject`]) and
/// the handlers read it — as axum-bank's middleware does.
async fn who_is_logged_in(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let found = request
        .app_data::<web::Data<Bank>>()
        .map(|bank| bank.subject(cookies(request.request())));
    if let Some(found) = found
        && let Some(subject) = found.await
    {
        request.extensions_mut().insert(subject);
    }
    next.call(request).await
}

/// The subject [`who_is_logged_in`] found for this request.
fn subject(request: &HttpRequest) -> Option<Subject> {
    request.extensions().get::<Subject>().cloned()
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn json_reply(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

fn see_other(to: &'static str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, to))
        .finish()
}

async fn home(bank: web::Data<Bank>, request: HttpRequest) -> HttpResponse {
    html(
        StatusCode::OK,
        match subject(&request) {
            Some(s) => pages::home(s.id(), bank.balance_of(s.id())),
            None => pages::login(),
        },
    )
}

async fn account(bank: web::Data<Bank>, request: HttpRequest) -> HttpResponse {
    let mut response = match subject(&request) {
        Some(s) => json_reply(
            StatusCode::OK,
            &json!({"user": s.id(), "balance": bank.balance_of(s.id())}),
        ),
        None => json_reply(StatusCode::UNAUTHORIZED, &json!({"error": "log in first"})),
    };
    // A balance is nobody else's business: no cache keeps it.
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn statements(assurance: Assurance) -> HttpResponse {
    html(StatusCode::OK, pages::statements(assurance.level()))
}

/// `POST /transfer`: the middleware read the amount and payee once (the
/// [`BoundAction`]); the handler uses them, never the body.
async fn transfer(
    bank: web::Data<Bank>,
    request: HttpRequest,
    action: web::ReqData<BoundAction>,
) -> HttpResponse {
    let json = request
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| stepup_http::is_json(v.as_bytes()));
    let Some(subject) = subject(&request) else {
        return json_reply(StatusCode::UNAUTHORIZED, &json!({"error": "log in first"}));
    };
    let input = match TransferInput::from_action(&action) {
        Ok(input) => input,
        Err(error) => return json_reply(StatusCode::BAD_REQUEST, &json!({"error": error})),
    };
    match bank.transfer(subject.id(), &input) {
        Some(balance) if json => {
            json_reply(StatusCode::OK, &json!({"ok": true, "balance": balance}))
        }
        Some(_) => see_other("/"),
        None => json_reply(StatusCode::BAD_REQUEST, &json!({"error": TRANSFER_REFUSED})),
    }
}

async fn settings(request: HttpRequest) -> HttpResponse {
    match subject(&request) {
        Some(_) => html(StatusCode::OK, pages::settings()),
        None => see_other("/"),
    }
}

async fn close_account(bank: web::Data<Bank>, request: HttpRequest) -> HttpResponse {
    if let Some(subject) = subject(&request) {
        bank.close(&subject);
    }
    let page = request
        .headers()
        .get_all(actix_web::http::header::ACCEPT)
        .any(|v| stepup_http::accepts_html(v.as_bytes()));
    let mut response = if page {
        html(StatusCode::OK, pages::closed())
    } else {
        json_reply(StatusCode::OK, &json!({"closed": true}))
    };
    // This browser's session cookie goes too (the bank ended every session).
    response.headers_mut().insert(
        SET_COOKIE,
        actix_web::http::header::HeaderValue::from_static(LOGOUT_COOKIE),
    );
    response
}

async fn login(
    bank: web::Data<Bank>,
    address: Option<ClientAddress>,
    input: web::Form<LoginInput>,
) -> HttpResponse {
    match bank.login(&input, address.map(|a| a.0)).await {
        LoginOutcome::LoggedIn(cookie) => HttpResponse::SeeOther()
            .insert_header((LOCATION, "/"))
            .insert_header((SET_COOKIE, cookie))
            .finish(),
        LoginOutcome::Refused => html(StatusCode::UNAUTHORIZED, pages::login_failed()),
        LoginOutcome::Throttled { retry_after } => HttpResponse::TooManyRequests()
            .insert_header((RETRY_AFTER, retry_after.as_secs().max(1)))
            .insert_header((CACHE_CONTROL, "no-store"))
            .content_type("text/html; charset=utf-8")
            .body(pages::login_throttled(retry_after)),
        LoginOutcome::Unavailable => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn logout(bank: web::Data<Bank>, request: HttpRequest) -> HttpResponse {
    bank.logout(cookies(&request));
    HttpResponse::SeeOther()
        .insert_header((LOCATION, "/"))
        .insert_header((SET_COOKIE, LOGOUT_COOKIE))
        .finish()
}

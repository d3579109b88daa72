//! The challenge routes: the framework-neutral
//! [`ChallengeRoutes`](stepup_challenge::routes::ChallengeRoutes) behind one
//! axum handler.

use axum::Router;
use axum::body::{Body, to_bytes};

use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, COOKIE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use stepup_challenge::routes::{self, ChallengeRoutes, Incoming, MAX_BODY, Reply};
use stepup_challenge::{FactorStore, PasswordVerifier, StateStore};
use stepup_core::web::CookieName;

use crate::client::ClientAddress;
use crate::context::StepUpContext;
use crate::stepup::StepUp;

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
    /// | `POST /drop` | deletes the assurance cookie in this browser only: a copy of the token saved elsewhere stays valid until it expires; logout (session-bound tokens) or bumping the epoch ends it everywhere |
    /// | `GET /enroll/totp`, `POST /enroll/totp` | set up an authenticator app: the page, then the QR code and manual key |
    /// | `POST /enroll/totp/confirm` | confirm it with a first code |
    /// | `POST /enroll/recovery-codes` | replace the recovery codes, shown once |
    ///
    /// Enrolling needs a step-up at level 2 within 5 minutes when the user
    /// already has a second factor (TOTP, recovery codes or a passkey).
    ///
    /// Every POST must come from the configured origin (403 otherwise); no
    /// GET changes state. A form POST answers like a browser expects (`303`
    /// to the validated `return_to`, or the page again with the error); a
    /// JSON POST answers with JSON. The answers are those of
    /// [`ChallengeRoutes`], which the actix-web adapter serves too.
    ///
    /// The per-address attempt budget needs the client's address: a
    /// [`ClientAddress`] in the request extensions (what your proxy-aware
    /// middleware says), or else — with the default feature `connect-info`
    /// — the peer from `ConnectInfo<SocketAddr>` when the app is served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`. Without either,
    /// only the per-subject limits apply.
    ///
    /// The router has no state left to provide, so it nests into a router of
    /// any state type.
    pub fn routes<AppState: Clone + Send + Sync + 'static>(&self) -> Router<AppState> {
        let state = Routes {
            routes: self.challenge_routes(),
            context: self.context.clone(),
        };
        Router::new()
            .route("/", any(handle::<F, S, P>))
            .route("/{*rest}", any(handle::<F, S, P>))
            .with_state(state)
    }
}

/// The handler's state: the neutral routes and who is logged in.
struct Routes<F, S, P> {
    routes: ChallengeRoutes<F, S, P>,
    context: StepUpContext,
}

impl<F, S, P> Clone for Routes<F, S, P> {
    fn clone(&self) -> Self {
        Routes {
            routes: self.routes.clone(),
            context: self.context.clone(),
        }
    }
}

async fn handle<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    State(state): State<Routes<F, S, P>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = if parts.method == Method::POST {
        to_bytes(body, MAX_BODY).await.ok()
    } else {
        Some(axum::body::Bytes::new())
    };
    let headers = &parts.headers;
    let header = |name: &str| headers.get(name).map(HeaderValue::as_bytes);
    let cookie = CookieName::new(state.routes.cookie_name());
    let reply = state
        .routes
        .handle(Incoming {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            subject: state.context.subject(&parts),
            origin: header("origin"),
            sec_fetch_site: header("sec-fetch-site"),
            content_type: headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
            navigation: stepup_tower::is_navigation(&parts),
            token: cookie.find(headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes)),
            body: match &bytes {
                Some(bytes) => routes::Body::Read(bytes),
                None => routes::Body::TooLarge,
            },
            // What the application says (behind its proxy), else the peer.
            address: ClientAddress::of(&parts).map(|ClientAddress(ip)| ip),
        })
        .await;
    into_response(reply)
}

/// Writes a neutral reply as an axum response.
fn into_response(reply: Reply) -> Response {
    let (status, headers, body) = reply.into_parts();
    let mut response = Response::new(Body::from(body.into_owned()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

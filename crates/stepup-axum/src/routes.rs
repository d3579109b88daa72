//! The challenge routes: the framework-neutral
//! [`ChallengeRoutes`](stepup_challenge::routes::ChallengeRoutes) behind one
//! axum handler.

use std::sync::Arc;

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::any;
use stepup_challenge::routes::{self, ChallengeRoutes, Incoming, MAX_BODY};
use stepup_challenge::{FactorStore, PasswordVerifier, StateStore};
use stepup_tower::{Head, SubjectSource, into_response};

use crate::client::ClientAddress;
use crate::stepup::StepUp;

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> StepUp<F, S, P> {
    /// The challenge routes, mounted at the path given to
    /// [`mounted_at`](StepUp::mounted_at) (default `/step-up`): `merge`
    /// the router into the application's (`.merge(stepup.routes())`), no
    /// path to repeat. The routes, answers and rules are those of
    /// [`ChallengeRoutes`], which the actix-web adapter serves too.
    ///
    /// The per-address attempt budget needs the client's address: a
    /// [`ClientAddress`] in the request extensions (what your proxy-aware
    /// middleware says), or else — with the default feature `connect-info`
    /// — the peer from `ConnectInfo<SocketAddr>` when the app is served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`. Without either,
    /// only the per-subject limits apply.
    ///
    /// The router has no state left to provide, so it merges into a router
    /// of any state type.
    pub fn routes<AppState: Clone + Send + Sync + 'static>(&self) -> Router<AppState> {
        let mount = self.settings.page().as_str().trim_end_matches('/');
        let state = Routes {
            routes: self.challenge_routes(),
            subjects: self.subjects.clone(),
        };
        Router::new()
            .route(
                if mount.is_empty() { "/" } else { mount },
                any(handle::<F, S, P>),
            )
            .route(&format!("{mount}/{{*rest}}"), any(handle::<F, S, P>))
            .with_state(state)
    }
}

/// The handler's state: the neutral routes and who is logged in.
struct Routes<F, S, P> {
    routes: ChallengeRoutes<F, S, P>,
    subjects: Arc<dyn SubjectSource>,
}

impl<F, S, P> Clone for Routes<F, S, P> {
    fn clone(&self) -> Self {
        Routes {
            routes: self.routes.clone(),
            subjects: self.subjects.clone(),
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
    let mount = state
        .routes
        .settings()
        .page()
        .as_str()
        .trim_end_matches('/');
    let path = parts.uri.path().strip_prefix(mount).unwrap_or("/");
    let head = Head(&parts);
    let body = match &bytes {
        Some(bytes) => routes::Body::Read(bytes),
        None => routes::Body::TooLarge,
    };
    // The client's address: what the application says (behind its proxy),
    // else the peer.
    let address = ClientAddress::of(&parts).map(|ClientAddress(ip)| ip);
    let subject = state.subjects.subject(&parts);
    let incoming = Incoming::read(&head, path, state.routes.cookie(), subject, body, address);
    into_response(state.routes.handle(incoming).await)
}

//! Who is logged in, from `axum-login` (feature `axum-login`): a layer that
//! reads axum-login's [`AuthSession`] and inserts the [`Subject`] stepup
//! needs — the user id, a per-login session binding, and an epoch from the
//! user's `session_auth_hash` — for [`StepUp`](crate::StepUp) to read with
//! `FromExtension::<Subject>::new()`.
//!
//! - **The session binding** is a random value this layer keeps in the
//!   tower-sessions session (under [`SESSION_KEY`]) from the first request
//!   after a login. axum-login cycles the session id when a user logs in but
//!   keeps the session's data, and a later id cycle keeps it too, so an
//!   assurance made after the login keeps working; `logout()` flushes the
//!   session, so the next login gets a new binding and an assurance of the
//!   earlier login is refused. A binding kept for another user (a login as
//!   someone else without a logout) is replaced.
//! - **The epoch** is a digest of the user's `session_auth_hash()` (and of
//!   the number [`with_epoch`](AxumLoginSubjects::with_epoch) reads from the
//!   user, e.g. stepup's factor epoch loaded by your backend's `get_user`):
//!   changing the password changes the hash, which ends every outstanding
//!   assurance of the user (axum-login also logs the other sessions out).
//!
//! Layer order: inside axum-login's `AuthManagerLayer` (which puts the
//! `AuthSession` in the request), outside stepup's layer:
//!
//! ```
//! use axum::Router;
//! use axum::routing::get;
//! use axum_login::{AuthManagerLayerBuilder, AuthUser, AuthnBackend, UserId};
//! use stepup_axum::login::AxumLoginSubjects;
//! use stepup_axum::tower_sessions::{MemoryStore, SessionManagerLayer};
//!
//! #[derive(Clone, Debug)]
//! struct User { id: i64, password_hash: String, stepup_epoch: u64 }
//!
//! impl AuthUser for User {
//!     type Id = i64;
//!     fn id(&self) -> i64 { self.id }
//!     fn session_auth_hash(&self) -> &[u8] { self.password_hash.as_bytes() }
//! }
//!
//! #[derive(Clone)]
//! struct Users;
//!
//! impl AuthnBackend for Users {
//!     type User = User;
//!     type Credentials = (i64, String);
//!     type Error = std::convert::Infallible;
//!     async fn authenticate(&self, _: (i64, String)) -> Result<Option<User>, Self::Error> {
//!         Ok(None) // check the password against your user table
//!     }
//!     async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, Self::Error> {
//!         Ok(None) // load the user (and its stepup epoch) by id
//!     }
//! }
//!
//! let sessions = SessionManagerLayer::new(MemoryStore::default());
//! let auth = AuthManagerLayerBuilder::new(Users, sessions).build();
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     // Added first, so it runs after (inside) the auth layer.
//!     .layer(AxumLoginSubjects::<Users>::new().with_epoch(|user: &User| user.stepup_epoch))
//!     .layer(auth);
//! # let _ = app;
//! ```
//!
//! When the session store cannot answer, no subject is inserted: stepup's
//! layer then answers as for nobody logged in (it never lets the request
//! through on a guess).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum_login::{AuthSession, AuthUser, AuthnBackend};
use stepup_core::Subject;
use stepup_http::LoginBinding;
pub use stepup_http::login_epoch;
use tower_layer::Layer;
use tower_service::Service;

/// The session key under which the per-login binding is kept.
pub const SESSION_KEY: &str = stepup_http::LOGIN_SESSION_KEY;

type EpochOf<U> = Arc<dyn Fn(&U) -> u64 + Send + Sync>;

/// The layer: see the [module docs](self). Cheap to clone.
pub struct AxumLoginSubjects<B: AuthnBackend> {
    epoch: Option<EpochOf<B::User>>,
    backend: PhantomData<fn() -> B>,
}

impl<B: AuthnBackend> Clone for AxumLoginSubjects<B> {
    fn clone(&self) -> Self {
        AxumLoginSubjects {
            epoch: self.epoch.clone(),
            backend: PhantomData,
        }
    }
}

impl<B: AuthnBackend> fmt::Debug for AxumLoginSubjects<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AxumLoginSubjects")
            .field("epoch", &self.epoch.is_some())
            .finish()
    }
}

impl<B: AuthnBackend> Default for AxumLoginSubjects<B> {
    fn default() -> Self {
        AxumLoginSubjects::new()
    }
}

impl<B: AuthnBackend> AxumLoginSubjects<B> {
    /// The subject from the user's id, a per-login binding and an epoch of
    /// the user's `session_auth_hash()`.
    pub fn new() -> Self {
        AxumLoginSubjects {
            epoch: None,
            backend: PhantomData,
        }
    }

    /// Mixes `epoch(user)` into the subject's epoch: the factor epoch your
    /// backend's `get_user` loads with the user (`SqlStore::epoch`), so
    /// removing a factor also ends outstanding assurance.
    #[must_use]
    pub fn with_epoch(mut self, epoch: impl Fn(&B::User) -> u64 + Send + Sync + 'static) -> Self {
        self.epoch = Some(Arc::new(epoch));
        self
    }

    /// The subject of the logged-in user of `auth`, keeping (or making)
    /// the login's binding in its session; `None` when nobody is logged in
    /// or the session store cannot answer.
    pub async fn subject(&self, auth: &AuthSession<B>) -> Option<Subject> {
        let user = auth.user.as_ref()?;
        let id = user.id().to_string();
        let kept = match auth.session.get::<LoginBinding>(SESSION_KEY).await {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(target: "stepup::axum", error = %e, "no subject: the session store cannot answer");
                return None;
            }
        };
        let binding = match kept.as_ref().and_then(|k| k.value_for(&id)) {
            Some(value) => value.to_owned(),
            None => {
                let fresh = LoginBinding::fresh(&id)?;
                if let Err(e) = auth.session.insert(SESSION_KEY, &fresh).await {
                    tracing::warn!(target: "stepup::axum", error = %e, "no subject: the session store cannot keep the login binding");
                    return None;
                }
                fresh.value().to_owned()
            }
        };
        let extra = self.epoch.as_ref().map_or(0, |epoch| epoch(user));
        Some(
            Subject::new(id)
                .with_session(binding)
                .with_epoch(login_epoch(user.session_auth_hash(), extra)),
        )
    }
}

impl<S, B: AuthnBackend> Layer<S> for AxumLoginSubjects<B> {
    type Service = AxumLoginSubjectsService<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        AxumLoginSubjectsService {
            inner,
            subjects: self.clone(),
        }
    }
}

/// The service [`AxumLoginSubjects`] makes.
pub struct AxumLoginSubjectsService<S, B: AuthnBackend> {
    inner: S,
    subjects: AxumLoginSubjects<B>,
}

impl<S: Clone, B: AuthnBackend> Clone for AxumLoginSubjectsService<S, B> {
    fn clone(&self) -> Self {
        AxumLoginSubjectsService {
            inner: self.inner.clone(),
            subjects: self.subjects.clone(),
        }
    }
}

impl<S, B: AuthnBackend> fmt::Debug for AxumLoginSubjectsService<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AxumLoginSubjectsService")
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request> for AxumLoginSubjectsService<S, B>
where
    S: Service<Request> + Clone + Send + 'static,
    S::Future: Send,
    B: AuthnBackend + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let subjects = self.subjects.clone();
        Box::pin(async move {
            let auth = request.extensions().get::<AuthSession<B>>().cloned();
            if let Some(auth) = auth
                && let Some(subject) = subjects.subject(&auth).await
            {
                request.extensions_mut().insert(subject);
            }
            inner.call(request).await
        })
    }
}

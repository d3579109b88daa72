//! Who is logged in, from `actix-identity` and `actix-session` (feature
//! `actix-identity`): the subject function [`StepUp::new`](crate::StepUp::new)
//! takes, made from the request's [`Identity`](actix_identity::Identity)
//! and [`Session`](actix_session::Session) — the user id, a per-login
//! session binding, and an epoch your application names.
//!
//! - **The session binding** is a random value kept in the session (under
//!   [`SESSION_KEY`]) from the first request after a login that asks stepup
//!   who is logged in. `Identity::login`
//!   renews the session key but keeps the session's state, so a step-up made
//!   after the login holds; `Identity::logout` purges the session (the
//!   default `LogoutBehavior::PurgeSession`), so the next login gets a new
//!   binding and an assurance of the earlier login is refused. A binding
//!   kept for another user is replaced. **With
//!   `LogoutBehavior::DeleteIdentityKeys`** the session outlives the
//!   logout: remove [`SESSION_KEY`] yourself when logging out
//!   (`session.remove(SESSION_KEY)`), or the next login of the same user in
//!   that session keeps the earlier login's assurance.
//! - **The epoch** comes from [`with_epoch`](IdentitySubjects::with_epoch):
//!   actix-identity knows no password, so your own middleware loads the
//!   user (its password hash, stepup's factor epoch) into the request's
//!   extensions and the closure reads it there — [`login_epoch`] turns a
//!   password hash and a number into one. Changing the password then ends
//!   every outstanding assurance of the user, in every session. Without it
//!   the epoch is 0.
//!
//! Middleware order: `SessionMiddleware` outermost, then
//! `IdentityMiddleware`, then (if any) the middleware that loads your user;
//! stepup's routes and middleware inside them. (actix-identity panics when
//! its middleware is missing.)
//!
//! ```
//! use actix_identity::IdentityMiddleware;
//! use actix_session::SessionMiddleware;
//! use actix_session::storage::CookieSessionStore;
//! use actix_web::{App, HttpMessage, HttpRequest, cookie};
//! use stepup_actix::identity::{IdentitySubjects, login_epoch};
//!
//! /// What your own middleware put in the request for the logged-in user.
//! #[derive(Clone)]
//! struct CurrentUser { password_hash: String, stepup_epoch: u64 }
//!
//! let subjects = IdentitySubjects::new().with_epoch(|request: &HttpRequest, _id: &str| {
//!     let extensions = request.extensions();
//!     let user = extensions.get::<CurrentUser>()?; // none: no subject
//!     Some(login_epoch(user.password_hash.as_bytes(), user.stepup_epoch))
//! });
//! let who = subjects.into_fn(); // for `StepUp::new(engine, who, origin)`
//! # let _ = who;
//! let key = cookie::Key::generate(); // load a 64-byte key from your secret store
//! let app = App::new()
//!     .wrap(IdentityMiddleware::default())
//!     .wrap(SessionMiddleware::new(CookieSessionStore::default(), key));
//! # let _ = app;
//! ```
//!
//! When the session cannot be read or written, no subject is given: stepup
//! answers as for nobody logged in (it never lets the request through on a
//! guess).

use std::fmt;
use std::sync::Arc;

use actix_identity::IdentityExt;
use actix_session::SessionExt;
use actix_web::HttpRequest;
use stepup_core::Subject;
use stepup_http::LoginBinding;
pub use stepup_http::login_epoch;

/// The session key under which the per-login binding is kept.
pub const SESSION_KEY: &str = stepup_http::LOGIN_SESSION_KEY;

type EpochFn = Arc<dyn Fn(&HttpRequest, &str) -> Option<u64> + Send + Sync>;

/// The subject source: see the [module docs](self). Cheap to clone.
#[derive(Clone, Default)]
pub struct IdentitySubjects {
    epoch: Option<EpochFn>,
}

impl fmt::Debug for IdentitySubjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySubjects")
            .field("epoch", &self.epoch.is_some())
            .finish()
    }
}

impl IdentitySubjects {
    /// The subject from the identity's id and a per-login binding, epoch 0.
    pub fn new() -> Self {
        IdentitySubjects::default()
    }

    /// The subject's epoch from `epoch(request, user_id)`; `None` from it
    /// means no subject (the user could not be loaded).
    #[must_use]
    pub fn with_epoch(
        mut self,
        epoch: impl Fn(&HttpRequest, &str) -> Option<u64> + Send + Sync + 'static,
    ) -> Self {
        self.epoch = Some(Arc::new(epoch));
        self
    }

    /// The logged-in subject of `request`, keeping (or making) the login's
    /// binding in its session; `None` when nobody is logged in or the
    /// session cannot be used.
    pub fn subject(&self, request: &HttpRequest) -> Option<Subject> {
        let id = request.get_identity().ok()?.id().ok()?;
        let session = request.get_session();
        let kept = match session.get::<LoginBinding>(SESSION_KEY) {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(target: "stepup::actix", error = %e, "no subject: the session cannot be read");
                return None;
            }
        };
        let binding = match kept.as_ref().and_then(|k| k.value_for(&id)) {
            Some(value) => value.to_owned(),
            None => {
                let fresh = LoginBinding::fresh(&id)?;
                if let Err(e) = session.insert(SESSION_KEY, &fresh) {
                    tracing::warn!(target: "stepup::actix", error = %e, "no subject: the session cannot keep the login binding");
                    return None;
                }
                fresh.value().to_owned()
            }
        };
        let epoch = match &self.epoch {
            Some(epoch) => epoch(request, &id)?,
            None => 0,
        };
        Some(Subject::new(id).with_session(binding).with_epoch(epoch))
    }

    /// This source as the function [`StepUp::new`](crate::StepUp::new)
    /// takes.
    pub fn into_fn(self) -> impl Fn(&HttpRequest) -> Option<Subject> + Send + Sync + 'static {
        move |request: &HttpRequest| self.subject(request)
    }
}

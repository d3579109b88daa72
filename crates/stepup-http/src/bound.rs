//! Bound routes: the [`Grants`] store a guard asks for a request's action,
//! and how a challenge for one is answered.

use crate::reply::escape_html;
use stepup_core::{Policy, Proof, ReturnTo, Subject};

use crate::action::{ActionRefusal, BoundAction};
use crate::reply::Reply;
use crate::resume::BoxFuture;

/// The request header an API client sends back, after stepping up for a
/// bound action, with the confirmation (ceremony) id the challenge named:
/// the grant must come from that ceremony.
pub const GRANT_HEADER: &str = "stepup-grant";

/// What opening a confirmation ceremony for an action gave.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Opening {
    /// The ceremony's id: the step-up made for it becomes the action's
    /// grant.
    Opened(String),
    /// The login session opened too many within the window: `429`.
    TooMany,
    /// The store failed: `503`.
    Unavailable,
}

/// What looking for an action's grant found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Taken {
    /// A grant for exactly this action in this session, now used up; the
    /// proofs of the step-ups made for it (methods and when), which must
    /// meet the route's policy by themselves.
    Granted(Vec<Proof>),
    /// None (never confirmed, used, expired, another action's or
    /// session's, another ceremony's than the one presented).
    Missing,
    /// The store failed: `503`.
    Unavailable,
}

/// Where bound actions' ceremonies and grants live: the engine behind the
/// challenge routes (the adapters' `StepUp` sets it up; give it to
/// [`Settings::with_grants`](crate::Settings::with_grants) when wiring by
/// hand). Object safe.
pub trait Grants: Send + Sync {
    /// Opens a confirmation ceremony for `action` by `subject` (bound to
    /// its session), keeping its digest, summary and `policy` server-side:
    /// the step-ups made for the ceremony must meet `policy` by themselves
    /// before it becomes the grant.
    fn open<'a>(
        &'a self,
        subject: &'a Subject,
        action: &'a BoundAction,
        policy: &'a Policy,
    ) -> BoxFuture<'a, Opening>;

    /// Takes the grant for `action` in `subject`'s session — one caller
    /// ever does. `presented`: the [`GRANT_HEADER`] value, which must then
    /// name the ceremony the grant came from.
    fn take<'a>(
        &'a self,
        subject: &'a Subject,
        action: &'a BoundAction,
        presented: Option<&'a str>,
    ) -> BoxFuture<'a, Taken>;
}

/// The page a browser gets when its form cannot be read as the route's
/// action (a `400` naming the field, a `415`): what is wrong, and a link
/// back to the page the form was on. Everything shown is escaped.
pub(crate) fn refusal_page(refusal: &ActionRefusal, back: &ReturnTo) -> Reply {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Please check the form</title></head><body><main>\
         <h1>Please check the form</h1><p role=\"alert\">{}</p>\
         <p>Nothing was sent.</p><p><a href=\"{}\">Go back to the form</a></p>\
         </main></body></html>",
        escape_html(refusal.message()),
        escape_html(back.as_str()),
    );
    Reply::html(refusal.status(), html)
}

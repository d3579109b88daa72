//! Your own step-up methods: a [`CustomFactor`] added once with
//! [`Engine::with_custom_factor`](crate::Engine::with_custom_factor) gets
//! what the built-in methods get — attempt limits and lockouts, events, the
//! origin check of the challenge routes, an entry on the challenge page,
//! enrollment listing, and (through the application's
//! [`LevelTable`](stepup_core::LevelTable)) its level and RFC 8176 `amr`
//! values.
//!
//! Two shapes: a **code** the user types (a hardware token's OTP, a code
//! from the application's own app), checked by [`CustomFactor::verify`];
//! or an **approval** on another device (a push notification): the engine
//! keeps the pending approval in the state store, hands the application a
//! single-use approve link to deliver ([`CustomFactor::request_approval`]),
//! and the page waits until the link is used, then continues.

use std::time::Duration;

use stepup_core::{Method, Subject, Timestamp};
use stepup_http::BoxFuture;

use crate::error::StoreError;

/// What the user does to step up with a custom method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CustomKind {
    /// Types a code of at most `max_len` characters, which
    /// [`CustomFactor::verify`] checks.
    Code {
        /// The longest code accepted (at most 64).
        max_len: u8,
    },
    /// Approves on another device within `lifetime`
    /// ([`CustomFactor::request_approval`] delivers the link).
    Approval {
        /// How long an approval request stays open (at most 10 minutes).
        lifetime: Duration,
    },
}

/// An approval to deliver to the user's other device: open `approve_url`
/// there. Its page shows what is approved and where it was asked from,
/// and asks for the number the browser that asked shows (number
/// matching: a request the person did not make cannot be approved by
/// tapping through it; a wrong number voids it). A `GET` never approves,
/// so link previews and scanners approve nothing.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ApprovalRequest<'a> {
    /// Whose step-up.
    pub subject: &'a Subject,
    /// The single-use approve link, a path under the challenge routes
    /// (`/step-up/custom/approve/approve?secret=…`): prefix the
    /// application's origin. It carries the approval's secret in its
    /// query (`secret=`): send it only to the user's registered device,
    /// never show it in the browser that asked, and keep `secret=` out of
    /// access logs (redact the query of `…/approve` in your proxy). The
    /// secret alone approves nothing without the number shown in the
    /// browser that asked.
    pub approve_url: String,
    /// When the request expires.
    pub expires_at: Timestamp,
    /// What the step-up confirms, for a step-up made for a bound action
    /// ("Send 12,000.00 to bob"): show it on the device.
    pub action: Option<&'a str>,
    /// The browser family of the browser that asked
    /// ([`browser_family`](stepup_http::browser_family)): show it too.
    pub browser: &'a str,
    /// …and its network (`198.51.100.0/24`), when its address was known.
    pub network: Option<&'a str>,
}

/// An application's own step-up method.
///
/// ```
/// use std::time::Duration;
/// use stepup_challenge::{ApprovalRequest, CustomFactor, CustomKind, StoreError};
/// use stepup_core::{Method, Subject};
/// use stepup_http::BoxFuture;
///
/// /// "Approve on your other device": the link goes to the console here;
/// /// a real application sends a push notification.
/// struct ConsoleApproval;
///
/// impl CustomFactor for ConsoleApproval {
///     fn method(&self) -> Method {
///         Method::custom("approve").expect("a valid name")
///     }
///     fn title(&self) -> &str {
///         "Approve on your other device"
///     }
///     fn kind(&self) -> CustomKind {
///         CustomKind::Approval { lifetime: Duration::from_secs(120) }
///     }
///     fn enrolled<'a>(&'a self, subject: &'a Subject) -> BoxFuture<'a, Result<bool, StoreError>> {
///         Box::pin(async move { Ok(subject.id() == "alice") })
///     }
///     fn request_approval<'a>(&'a self, request: ApprovalRequest<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
///         Box::pin(async move {
///             println!("APPROVE for {}: http://localhost:3000{}", request.subject.id(), request.approve_url);
///             Ok(())
///         })
///     }
/// }
/// assert_eq!(ConsoleApproval.method().to_string(), "custom:approve");
/// ```
pub trait CustomFactor: Send + Sync + 'static {
    /// The method: a [`Method::Custom`] (`Method::custom("approve")`), the
    /// name policies, level tables, tokens and events use.
    fn method(&self) -> Method;

    /// Its heading on the challenge page ("Approve on your other device").
    fn title(&self) -> &str;

    /// A code to type, or an approval on another device.
    fn kind(&self) -> CustomKind;

    /// Whether `subject` has this method set up (the page offers only
    /// what the user has; enrollment listings include it).
    fn enrolled<'a>(&'a self, subject: &'a Subject) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// For [`CustomKind::Code`]: whether `code` is right for `subject`.
    /// Called only after the attempt was counted (a locked-out user never
    /// reaches it: do the work inside the returned future, which is only
    /// awaited once the attempt is admitted). Compare in constant time;
    /// refuse a code used before.
    fn verify<'a>(
        &'a self,
        subject: &'a Subject,
        code: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (subject, code);
        Box::pin(async { Ok(false) })
    }

    /// For [`CustomKind::Approval`]: delivers `request` to the user's other
    /// device. An error fails the start (the pending approval is dropped).
    fn request_approval<'a>(
        &'a self,
        request: ApprovalRequest<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = request;
        Box::pin(async { Err(StoreError::new("custom", "this method has no approvals")) })
    }
}

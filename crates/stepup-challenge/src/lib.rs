//! The **stepup** challenge engine: what runs when a user proves, again, that
//! it is really them — a passkey, a TOTP code, an e-mail or SMS code, the
//! account password, a recovery code — and what comes out: a new assurance
//! token from [`stepup_core::Issuer`], or an error the user can act on.
//!
//! Framework-neutral: the adapters (`stepup-axum`, `stepup-actix`) serve
//! its [`routes`] (`Incoming` → [`routes::Reply`]) and protect routes with
//! `stepup_http::Guard`.
//!
//! * **[`Engine`]** — counts the attempt, verifies the factor, records the
//!   proof, emits an [`Event`], issues the token (keeping the still-fresh
//!   proofs of the previous one); authorizes factor changes
//!   ([`FactorChange`]) and runs account recovery.
//! * **Stores** — from `stepup-store`, re-exported here: [`StateStore`]
//!   (short-lived state with expiry and atomic operations: the last
//!   accepted TOTP step, attempt counters, pending codes and enrollments),
//!   [`FactorStore`] (what the application owns per user: TOTP secrets,
//!   recovery-code digests, code destinations, the assurance epoch) and,
//!   with feature `passkey`, `PasskeyStore` (a `FactorStore` that keeps
//!   passkeys; `Engine::with_passkeys` needs one). In-memory
//!   implementations are the embedded default; several instances need a
//!   shared `StateStore` (`stepup-redis`). [`PasswordVerifier`] (the
//!   application's own password check; we never store passwords) stays
//!   here: it is no store.
//! * **TOTP** ([`TotpConfig`], via `totp-rs`) — ±1 step, SHA-1 / 6 digits /
//!   30 s by default, codes in exactly that format, the matched step recorded
//!   and any step not newer than the last accepted one refused, atomically.
//! * **Passkeys** (feature `passkey`, via `webauthn-rs`) — user verification
//!   required, counters and backup state updated per credential, device-bound
//!   only when trusted.
//! * **E-mail and SMS codes** ([`CodeSender`]) — sent only to the address the
//!   factor store holds, single use, bound to their challenge.
//! * **Recovery codes** ([`RecoveryCode`]) — 80 bits each, shown once,
//!   stored as digests, consumed atomically.
//! * **Attempt limits** ([`AttemptLimits`]) — counted before verifying, per
//!   subject and method across sessions and addresses, and per address;
//!   while locked out, right and wrong input get the same answer.
//! * **The challenge page** ([`ChallengePage`]) — one askama template with
//!   auto-escaping that every adapter serves, plain forms, no inline script.
//! * **Languages** ([`i18n`]) — every text of the pages, their error
//!   sentences and the code message in a [`Catalogue`](i18n::Catalogue)
//!   (English and German built in, the application's own added), the
//!   language chosen from `Accept-Language` or by the application.
//! * **Events** ([`Event`], [`EventSink`]) and **notices** ([`Notice`],
//!   [`NoticeSink`]) — to `tracing` (target `stepup::challenge`) and the
//!   application; never a code, secret, password or token.
//!
//! See [`Engine`] for an end-to-end example: enroll TOTP, step up, pass a
//! level-2 policy at the gate.

mod change;
mod code;
mod custom;
mod engine;
mod error;
mod event;
pub mod i18n;
mod keys;
mod limiter;
mod page;
#[cfg(feature = "passkey")]
mod passkey;
mod recovery;
pub mod routes;
mod store;
mod totp;
mod upstream;

pub use change::{ChangeCheck, FactorChange};
pub use code::{
    Channel, CodeMessage, CodeSender, InsecureConsoleSender, RecordingSender, SendFuture,
};
pub use custom::{ApprovalRequest, CustomFactor, CustomKind};
pub use engine::{
    ActionLimits, Approval, ApprovalShown, ApprovalStarted, ApprovalState, Attempt, CodeSent,
    CodeSettings, Engine, FormLimits, KeptForm, NoPasswords, PendingAction, PendingRecovery,
    TotpEnrollment,
};
pub use error::{ChallengeError, StoreError};
pub use event::{Event, EventKind, EventSink, Notice, NoticeKind, NoticeSink};
pub use limiter::{AttemptLimits, MAX_CONSECUTIVE_FAILURES};
pub use page::{
    APPROVAL_JS, ApprovePage, ChallengePage, ConfirmPage, EnrollPage, Form, NoticePage, PAGE_CSS,
    PASSKEY_JS, TemplateError,
};
#[cfg(feature = "passkey")]
pub use passkey::{PasskeyConfig, StoredPasskey};
pub use recovery::{CODE_LEN as RECOVERY_CODE_LEN, RecoveryCode};
pub use stepup_store::TotpSecret;
#[cfg(feature = "passkey")]
pub use store::PasskeyStore;
pub use store::{
    FactorStore, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore, PasswordVerifier,
    StateStore,
};
pub use totp::TotpConfig;
pub use totp_rs::Algorithm as TotpAlgorithm;
pub use upstream::{Upstream, UpstreamDone, UpstreamError, UpstreamFinish, UpstreamStart};
/// The WebAuthn types passkey ceremonies exchange with the browser.
#[cfg(feature = "passkey")]
pub use webauthn_rs::prelude as webauthn;

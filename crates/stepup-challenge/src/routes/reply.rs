//! How the routes answer: JSON bodies, errors, the 503 for a store that cannot answer.

use super::*;

/// Adds a field to a JSON object.
pub(super) fn insert(body: &mut Value, key: &str, value: Value) {
    if let Some(object) = body.as_object_mut() {
        object.insert(key.to_owned(), value);
    }
}

pub(super) fn parse_query<T: serde::de::DeserializeOwned + Default>(query: Option<&str>) -> T {
    query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

pub(super) fn is_json(request: &Incoming<'_>) -> bool {
    request.content_type.is_some_and(stepup_http::is_json)
}

pub(super) fn body_bytes<'a>(request: &Incoming<'a>) -> Result<&'a [u8], Reply> {
    match request.body {
        Body::Read(bytes) => Ok(bytes),
        Body::TooLarge => Err(error_reply(413, "too_large", "The request is too large.")),
    }
}

/// A JSON answer with `Cache-Control: no-store`.
pub(super) fn json_reply(status: u16, value: &Value) -> Reply {
    Reply::json(status, value.to_string())
}

/// `{"error": code, "message": message}`.
pub(super) fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    json_reply(status, &json!({"error": code, "message": message}))
}

pub(super) fn malformed() -> Reply {
    error_reply(400, "malformed", "The request body could not be read.")
}

pub(super) fn enroll_html(status: u16, page: &EnrollPage) -> Reply {
    match page.html() {
        Ok(body) => html_reply(status, body, page.lang()),
        Err(_) => unavailable_because("template"),
    }
}

/// A page in `lang`: says so (`Content-Language`), and that the language
/// followed `Accept-Language` (`Vary`), for caches.
pub(super) fn html_reply(status: u16, html: String, lang: Lang) -> Reply {
    Reply::html(status, html)
        .with_header("content-language", lang.as_str().to_owned())
        .with_header("vary", "accept-language")
}

pub(super) fn unavailable(error: &ChallengeError) -> Reply {
    // The kind only: a store's message may carry what an application put in
    // its error (an address, a host name).
    unavailable_because(match error {
        ChallengeError::Store(e) => e.store(),
        ChallengeError::Issue(_) => "issue",
        _ => "other",
    })
}

/// `503 unavailable`, logging only what kind of thing failed.
pub(super) fn unavailable_because(kind: &'static str) -> Reply {
    tracing::warn!(target: "stepup", kind, "step-up unavailable");
    error_reply(
        503,
        "unavailable",
        "Confirming is not possible right now; please try again in a moment.",
    )
}

pub(super) fn failure_status(error: &ChallengeError) -> u16 {
    match error {
        ChallengeError::LockedOut { .. } | ChallengeError::Disabled(_) => 429,
        ChallengeError::Store(_) | ChallengeError::Issue(_) => 503,
        ChallengeError::Recovery(_)
        | ChallengeError::NoPendingAction
        | ChallengeError::ApprovalPending => 409,
        _ => 400,
    }
}

pub(super) fn error_code(error: &ChallengeError) -> &'static str {
    match error {
        ChallengeError::Wrong { .. } => "wrong",
        ChallengeError::LockedOut { .. } => "locked_out",
        ChallengeError::AlreadyUsed => "already_used",
        ChallengeError::Format(_) => "format",
        ChallengeError::NotEnrolled(_) => "not_enrolled",
        ChallengeError::NoPendingCode => "no_pending_code",
        ChallengeError::NoPendingCeremony => "no_pending_ceremony",
        ChallengeError::NoPendingAction => "no_pending_action",
        ChallengeError::PasskeyRejected => "passkey_rejected",
        ChallengeError::NoPendingEnrollment => "no_pending_enrollment",
        ChallengeError::Disabled(_) => "method_disabled",
        ChallengeError::Recovery(_) => "recovery",
        ChallengeError::ApprovalPending => "approval_pending",
        ChallengeError::ApprovalRefused => "approval_refused",
        _ => "failed",
    }
}

pub(super) fn reason_detail(code: Option<&str>) -> Option<Text> {
    Some(match code? {
        "stale" | "expired" => Text::DetailStale,
        "insufficient_level" => Text::DetailInsufficientLevel,
        "missing_method" => Text::DetailMissingMethod,
        "revoked" => Text::DetailRevoked,
        "other_binding" => Text::DetailOtherBinding,
        "other_context" => Text::DetailOtherContext,
        "action_not_confirmed" => Text::DetailActionNotConfirmed,
        _ => return None,
    })
}

//! Building the URLs a browser is sent to: the challenge page and the login
//! page, with a validated return path, percent-encoded.

use std::fmt::Write as _;

use stepup_core::ReturnTo;

/// What a challenge URL carries when the interrupted form was not kept:
/// the page asks to submit it again.
pub(crate) const RESUBMIT: &str = "&resubmit=1";

/// `page?return_to=…&reason=…`: where a browser is sent to step up. Only the
/// validated return path and the reason code go in, percent-encoded.
pub fn challenge_location(page: &ReturnTo, return_to: &ReturnTo, reason: &str) -> String {
    let mut out = String::with_capacity(page.as_str().len() + return_to.as_str().len() + 40);
    out.push_str(page.as_str());
    out.push_str("?return_to=");
    encode_query_value(&mut out, return_to.as_str());
    out.push_str("&reason=");
    encode_query_value(&mut out, reason);
    out
}

/// [`challenge_location`] plus, when `note` is a [`valid_note`], `&why=note`
/// (the identifier of the route's reason, which the page turns into the
/// configured sentence). An invalid note is left out, never encoded in.
///
/// ```
/// use stepup_core::ReturnTo;
/// use stepup_http::challenge_url;
/// let page = ReturnTo::parse("/step-up")?;
/// let back = ReturnTo::parse("/transfer")?;
/// assert_eq!(
///     challenge_url(&page, &back, "stale", Some("r1")),
///     "/step-up?return_to=/transfer&reason=stale&why=r1"
/// );
/// assert_eq!(
///     challenge_url(&page, &back, "stale", Some("<x>")),
///     "/step-up?return_to=/transfer&reason=stale"
/// );
/// # Ok::<(), stepup_core::InvalidReturnTo>(())
/// ```
pub fn challenge_url(
    page: &ReturnTo,
    return_to: &ReturnTo,
    reason: &str,
    note: Option<&str>,
) -> String {
    let mut location = challenge_location(page, return_to, reason);
    if let Some(note) = note.filter(|n| valid_note(n)) {
        location.push_str("&why=");
        location.push_str(note);
    }
    location
}

/// Whether `text` has the shape of a kept form's or an action ceremony's
/// id: 128 random bits as 32 lower-case hex digits. Nothing else is put in
/// a URL, a page or a store key as one.
///
/// ```
/// use stepup_http::is_random_id;
/// assert!(is_random_id("0123456789abcdef0123456789abcdef"));
/// assert!(!is_random_id("0123456789ABCDEF0123456789abcdef"));
/// assert!(!is_random_id("../x"));
/// ```
pub fn is_random_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Adds the bound action's ceremony `id` (32 lower-case hex digits, else
/// nothing) to a challenge page URL.
pub(crate) fn add_confirmation(url: &mut String, id: &str) {
    if is_random_id(id) {
        url.push_str("&confirmation=");
        url.push_str(id);
    }
}

/// `login?return_to=…` (or `&return_to=…` when the login path has a query).
///
/// ```
/// use stepup_core::ReturnTo;
/// use stepup_http::login_location;
/// let login = ReturnTo::parse("/login")?;
/// let back = ReturnTo::parse("/account")?;
/// assert_eq!(login_location(&login, &back), "/login?return_to=/account");
/// # Ok::<(), stepup_core::InvalidReturnTo>(())
/// ```
pub fn login_location(login: &ReturnTo, return_to: &ReturnTo) -> String {
    let mut out = login.as_str().to_owned();
    out.push_str(if out.contains('?') {
        "&return_to="
    } else {
        "?return_to="
    });
    encode_query_value(&mut out, return_to.as_str());
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
fn encode_query_value(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Whether `note` (a route's reason identifier) may go into a URL as it is:
/// 1 to 32 characters of `[A-Za-z0-9_-]`.
pub fn valid_note(note: &str) -> bool {
    (1..=32).contains(&note.len())
        && note
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

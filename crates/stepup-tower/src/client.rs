//! The client context a step-up happened in: what a contextual policy
//! compares to notice "a new network or browser since the step-up".

use std::net::IpAddr;

use http::header::USER_AGENT;
use http::request::Parts;

/// The bytes describing where a request comes from: the client's network
/// (IPv4 /24, IPv6 /48 — coarse enough that a phone moving between cells of
/// one carrier mostly keeps it) and its browser family from the
/// `User-Agent` — exactly what the challenge routes mint tokens in with
/// the default [`ContextSettings`](stepup_http::ContextSettings).
///
/// Hand the same bytes to
/// [`Issuer::issue_in_context`](stepup_core::Issuer::issue_in_context) when
/// the step-up succeeds and to
/// [`Gate::same_context`](stepup_core::Gate::same_context) on later requests
/// (or write `same_context` in the policy and let the guard compare).
/// Where the IP comes from is the application's call (the socket peer, or a
/// forwarded-for header set by its own proxy); without one there is no
/// context (`None`).
///
/// ```
/// use std::net::IpAddr;
/// use stepup_tower::client_context;
///
/// let request = http::Request::builder().header("user-agent", "Firefox/133.0").body(())?;
/// let (parts, _) = request.into_parts();
/// assert_eq!(client_context(&parts, None), None);
/// let a = client_context(&parts, Some("203.0.113.7".parse::<IpAddr>()?));
/// let b = client_context(&parts, Some("203.0.113.200".parse::<IpAddr>()?));
/// let c = client_context(&parts, Some("198.51.100.7".parse::<IpAddr>()?));
/// assert_eq!(a, b); // same /24
/// assert_ne!(a, c);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn client_context(parts: &Parts, ip: Option<IpAddr>) -> Option<Vec<u8>> {
    client_context_with(&stepup_http::ContextSettings::default(), parts, ip)
}

/// [`client_context`] as `settings` take it (what
/// [`Settings::with_client_context`](stepup_http::Settings::with_client_context)
/// configures).
///
/// ```
/// use stepup_http::ContextSettings;
/// use stepup_tower::client_context_with;
///
/// let (parts, _) = http::Request::builder().header("user-agent", "Firefox/133.0").body(())?.into_parts();
/// let only_browser = client_context_with(&ContextSettings::default().browser_only(), &parts, None);
/// assert_eq!(only_browser.as_deref(), Some(&b"stepup-context/1 browser=firefox"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn client_context_with(
    settings: &stepup_http::ContextSettings,
    parts: &Parts,
    ip: Option<IpAddr>,
) -> Option<Vec<u8>> {
    let agent = parts.headers.get(USER_AGENT).map(|v| v.as_bytes());
    settings.context(ip, agent).map(String::into_bytes)
}

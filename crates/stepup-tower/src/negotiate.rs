//! Which form a denial takes: a redirect for a browser navigating, a 401 with
//! a machine-readable body for everything else. The form never changes
//! *whether* access is denied.

use http::header::ACCEPT;
use http::request::Parts;
use http::{HeaderName, Method};

/// How much of an `Accept` header is looked at; browsers send ~150 bytes.
const ACCEPT_SCAN_LIMIT: usize = 2048;

static SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");

/// Whether the request is a browser navigation that should be redirected to
/// the challenge page: a `GET` or `HEAD` that, by `Sec-Fetch-Mode: navigate`
/// or (without that header) by accepting `text/html`, is a page load rather
/// than a `fetch`/XHR call.
pub(crate) fn is_navigation(parts: &Parts) -> bool {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return false;
    }
    if let Some(mode) = parts.headers.get(&SEC_FETCH_MODE) {
        return mode.as_bytes().eq_ignore_ascii_case(b"navigate");
    }
    parts
        .headers
        .get_all(ACCEPT)
        .iter()
        .any(|value| accepts_html(value.as_bytes()))
}

/// Whether an `Accept` value lists `text/html` with a non-zero quality.
fn accepts_html(value: &[u8]) -> bool {
    let value = &value[..value.len().min(ACCEPT_SCAN_LIMIT)];
    value.split(|b| *b == b',').any(|range| {
        let mut parts = range.split(|b| *b == b';');
        let media = parts.next().map(trim).unwrap_or_default();
        media.eq_ignore_ascii_case(b"text/html")
            && !parts.any(|param| {
                let param = trim(param);
                param.len() >= 2
                    && param[..2].eq_ignore_ascii_case(b"q=")
                    && is_zero_quality(&param[2..])
            })
    })
}

/// `0`, `0.`, `0.0`, `0.00`, `0.000`.
fn is_zero_quality(q: &[u8]) -> bool {
    match q {
        [b'0'] => true,
        [b'0', b'.', rest @ ..] => rest.len() <= 3 && rest.iter().all(|b| *b == b'0'),
        _ => false,
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    const CHROME: &str =
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

    #[test]
    fn browsers_navigating_get_the_page() {
        assert!(is_navigation(&parts(Method::GET, &[("accept", CHROME)])));
        assert!(is_navigation(&parts(
            Method::HEAD,
            &[("accept", "TEXT/HTML")]
        )));
        assert!(is_navigation(&parts(
            Method::GET,
            &[("accept", "*/*"), ("sec-fetch-mode", "navigate")]
        )));
    }

    #[test]
    fn everything_else_gets_the_api_form() {
        assert!(!is_navigation(&parts(Method::POST, &[("accept", CHROME)])));
        assert!(!is_navigation(&parts(
            Method::DELETE,
            &[("accept", CHROME)]
        )));
        assert!(!is_navigation(&parts(
            Method::GET,
            &[("accept", "application/json")]
        )));
        assert!(!is_navigation(&parts(Method::GET, &[("accept", "*/*")])));
        assert!(!is_navigation(&parts(Method::GET, &[])));
        assert!(!is_navigation(&parts(
            Method::GET,
            &[("accept", "text/html;q=0")]
        )));
        assert!(!is_navigation(&parts(
            Method::GET,
            &[("accept", "text/html; q=0.000")]
        )));
        // fetch() from a page sends Sec-Fetch-Mode: cors, whatever it accepts.
        assert!(!is_navigation(&parts(
            Method::GET,
            &[("accept", CHROME), ("sec-fetch-mode", "cors")]
        )));
        assert!(!is_navigation(&parts(
            Method::GET,
            &[("accept", "text/htmlx")]
        )));
    }

    #[test]
    fn huge_accept_headers_are_bounded() {
        let long = format!("{}text/html", "x/y,".repeat(10_000));
        assert!(!is_navigation(&parts(Method::GET, &[("accept", &long)])));
    }
}

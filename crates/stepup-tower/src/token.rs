//! Finding the assurance token in a request: the cookie, and optionally a
//! header for API clients that keep no cookies.

use http::HeaderMap;
use http::header::COOKIE;

/// What the request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// No token.
    None,
    /// Exactly one token (not yet verified).
    One(&'a str),
    /// More than one (cookie tossing, or a cookie and a header), or a value
    /// that is not text: refused, never guessed.
    Ambiguous,
}

/// Scans every `Cookie` header for `name` in one linear pass over the bytes,
/// without parsing (or allocating for) the other cookies. Stops at the second
/// match. A quoted value (`name="…"`) is unquoted, as RFC 6265 allows.
pub(crate) fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Found<'a> {
    let mut found = Found::None;
    for value in headers.get_all(COOKIE) {
        let bytes = value.as_bytes();
        for pair in bytes.split(|b| *b == b';') {
            let pair = trim(pair);
            let Some(rest) = pair.strip_prefix(name.as_bytes()) else {
                continue;
            };
            let Some(raw) = rest.strip_prefix(b"=") else {
                continue;
            };
            let raw = unquote(raw);
            found = match (found, std::str::from_utf8(raw)) {
                (Found::None, Ok(text)) => Found::One(text),
                _ => return Found::Ambiguous,
            };
        }
    }
    found
}

/// The token from an opt-in header: one value that is text, or ambiguous.
pub(crate) fn find_header<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Found<'a> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Found::None,
        (Some(v), None) => v
            .to_str()
            .map_or(Found::Ambiguous, |t| Found::One(t.trim())),
        _ => Found::Ambiguous,
    }
}

/// Combines the cookie and the header: at most one source may speak.
pub(crate) fn combine<'a>(cookie: Found<'a>, header: Found<'a>) -> Found<'a> {
    match (cookie, header) {
        (Found::None, other) | (other, Found::None) => other,
        _ => Found::Ambiguous,
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

fn unquote(raw: &[u8]) -> &[u8] {
    match raw {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        map
    }

    const NAME: &str = "__Host-stepup";

    #[test]
    fn finds_the_one_cookie_among_others() {
        let h = headers(&[b"a=1; __Host-stepup=tok; b=2"]);
        assert_eq!(find_cookie(&h, NAME), Found::One("tok"));
        let h = headers(&[b"a=1", b"__Host-stepup=tok"]);
        assert_eq!(find_cookie(&h, NAME), Found::One("tok"));
        let h = headers(&[b"__Host-stepup=\"tok\""]);
        assert_eq!(find_cookie(&h, NAME), Found::One("tok"));
        let h = headers(&[b"  __Host-stepup=tok  ;"]);
        assert_eq!(find_cookie(&h, NAME), Found::One("tok"));
    }

    #[test]
    fn similar_names_do_not_match() {
        let h = headers(&[b"__Host-stepupX=a; x__Host-stepup=b; __host-stepup=c; __Host-stepup"]);
        assert_eq!(find_cookie(&h, NAME), Found::None);
    }

    #[test]
    fn duplicates_are_ambiguous() {
        let h = headers(&[b"__Host-stepup=a; __Host-stepup=b"]);
        assert_eq!(find_cookie(&h, NAME), Found::Ambiguous);
        let h = headers(&[b"__Host-stepup=a", b"__Host-stepup=a"]);
        assert_eq!(find_cookie(&h, NAME), Found::Ambiguous);
    }

    #[test]
    fn non_text_values_are_ambiguous() {
        let h = headers(&[b"__Host-stepup=\xff\xfe"]);
        assert_eq!(find_cookie(&h, NAME), Found::Ambiguous);
    }

    #[test]
    fn header_and_cookie_together_are_ambiguous() {
        assert_eq!(combine(Found::One("a"), Found::One("b")), Found::Ambiguous);
        assert_eq!(combine(Found::None, Found::One("b")), Found::One("b"));
        assert_eq!(combine(Found::One("a"), Found::None), Found::One("a"));
    }
}

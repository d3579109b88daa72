//! Finding the assurance token in a request: the cookie, and optionally a
//! header for API clients that keep no cookies.

use http::HeaderMap;
use http::header::COOKIE;
use memchr::memmem::Finder;

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

/// A cookie name, with its substring searcher built once.
#[derive(Clone, Debug)]
pub(crate) struct CookieName {
    name: String,
    finder: Finder<'static>,
}

impl CookieName {
    pub(crate) fn new(name: &str) -> CookieName {
        CookieName {
            name: name.to_owned(),
            finder: Finder::new(name.as_bytes()).into_owned(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.name
    }
}

/// Scans every `Cookie` header for the cookie in one linear pass, without
/// parsing (or allocating for) the other cookies: a vectorised substring
/// search for the name, then a check that the match starts a `name=value`
/// pair. Stops at the second match. A quoted value (`name="…"`) is unquoted,
/// as RFC 6265 allows.
pub(crate) fn find_cookie<'a>(headers: &'a HeaderMap, cookie: &CookieName) -> Found<'a> {
    let mut found = Found::None;
    let name_len = cookie.name.len();
    for value in headers.get_all(COOKIE) {
        let bytes = value.as_bytes();
        for start in cookie.finder.find_iter(bytes) {
            let after = start + name_len;
            if !starts_pair(bytes, start) || bytes.get(after) != Some(&b'=') {
                continue;
            }
            let rest = &bytes[after + 1..];
            let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
            let raw = unquote(trim(&rest[..end]));
            found = match (found, std::str::from_utf8(raw)) {
                (Found::None, Ok(text)) => Found::One(text),
                _ => return Found::Ambiguous,
            };
        }
    }
    found
}

/// Whether position `at` begins a cookie pair: the start of the header, or
/// only spaces/tabs back to a `;`.
fn starts_pair(bytes: &[u8], at: usize) -> bool {
    match bytes[..at].iter().rposition(|b| !matches!(b, b' ' | b'\t')) {
        None => true,
        Some(i) => bytes[i] == b';',
    }
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

    fn name() -> CookieName {
        CookieName::new("__Host-stepup")
    }

    #[test]
    fn finds_the_one_cookie_among_others() {
        let h = headers(&[b"a=1; __Host-stepup=tok; b=2"]);
        assert_eq!(find_cookie(&h, &name()), Found::One("tok"));
        let h = headers(&[b"a=1", b"__Host-stepup=tok"]);
        assert_eq!(find_cookie(&h, &name()), Found::One("tok"));
        let h = headers(&[b"__Host-stepup=\"tok\""]);
        assert_eq!(find_cookie(&h, &name()), Found::One("tok"));
        let h = headers(&[b"  __Host-stepup=tok  ;"]);
        assert_eq!(find_cookie(&h, &name()), Found::One("tok"));
    }

    #[test]
    fn similar_names_do_not_match() {
        let h = headers(&[b"__Host-stepupX=a; x__Host-stepup=b; __host-stepup=c; __Host-stepup"]);
        assert_eq!(find_cookie(&h, &name()), Found::None);
    }

    #[test]
    fn names_inside_values_do_not_match() {
        let h = headers(&[b"x=__Host-stepup=evil; y=\"a;__Host-stepup\""]);
        assert_eq!(find_cookie(&h, &name()), Found::None);
        let h = headers(&[b"x=1;__Host-stepup=tok"]);
        assert_eq!(find_cookie(&h, &name()), Found::One("tok"));
    }

    #[test]
    fn duplicates_are_ambiguous() {
        let h = headers(&[b"__Host-stepup=a; __Host-stepup=b"]);
        assert_eq!(find_cookie(&h, &name()), Found::Ambiguous);
        let h = headers(&[b"__Host-stepup=a", b"__Host-stepup=a"]);
        assert_eq!(find_cookie(&h, &name()), Found::Ambiguous);
    }

    #[test]
    fn non_text_values_are_ambiguous() {
        let h = headers(&[b"__Host-stepup=\xff\xfe"]);
        assert_eq!(find_cookie(&h, &name()), Found::Ambiguous);
    }

    #[test]
    fn header_and_cookie_together_are_ambiguous() {
        assert_eq!(combine(Found::One("a"), Found::One("b")), Found::Ambiguous);
        assert_eq!(combine(Found::None, Found::One("b")), Found::One("b"));
        assert_eq!(combine(Found::One("a"), Found::None), Found::One("a"));
    }
}

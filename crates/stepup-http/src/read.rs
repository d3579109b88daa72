//! Reading a request: the assurance token among the cookies (and an opt-in
//! header), browser navigations, the origin of a state-changing request, the
//! body's content type. Header values as bytes; no framework types.

use memchr::memmem::Finder;

/// What a request carries of the assurance token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'a> {
    /// No token.
    None,
    /// Exactly one token (not yet verified).
    One(&'a str),
    /// More than one (cookie tossing, or a cookie and a header), or a value
    /// that is not text: refuse, never guess.
    Ambiguous,
}

impl<'a> Found<'a> {
    /// Combines two sources (the cookie and an opt-in header): at most one
    /// may speak.
    ///
    /// ```
    /// use stepup_http::Found;
    /// assert_eq!(Found::None.or_only(Found::One("t")), Found::One("t"));
    /// assert_eq!(Found::One("a").or_only(Found::One("b")), Found::Ambiguous);
    /// ```
    #[must_use]
    pub fn or_only(self, other: Found<'a>) -> Found<'a> {
        match (self, other) {
            (Found::None, found) | (found, Found::None) => found,
            _ => Found::Ambiguous,
        }
    }

    /// The token from the values of an opt-in header: one text value
    /// (trimmed), none, or ambiguous.
    ///
    /// ```
    /// use stepup_http::Found;
    /// let one: [&[u8]; 1] = [b" tok "];
    /// assert_eq!(Found::from_header(one), Found::One("tok"));
    /// let two: [&[u8]; 2] = [b"a", b"b"];
    /// assert_eq!(Found::from_header(two), Found::Ambiguous);
    /// ```
    pub fn from_header<I: IntoIterator<Item = &'a [u8]>>(values: I) -> Found<'a> {
        let mut values = values.into_iter();
        match (values.next(), values.next()) {
            (None, _) => Found::None,
            (Some(v), None) => std::str::from_utf8(v)
                .ok()
                .filter(|t| t.bytes().all(|b| b == b'\t' || (b' '..0x7f).contains(&b)))
                .map_or(Found::Ambiguous, |t| Found::One(t.trim())),
            _ => Found::Ambiguous,
        }
    }
}

/// A cookie name with its substring searcher built once (build it at
/// start-up, not per request).
#[derive(Clone, Debug)]
pub struct CookieName {
    name: String,
    finder: Finder<'static>,
}

impl CookieName {
    /// A searcher for the cookie `name`.
    pub fn new(name: &str) -> CookieName {
        CookieName {
            name: name.to_owned(),
            finder: Finder::new(name.as_bytes()).into_owned(),
        }
    }

    /// The cookie's name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Scans the values of every `Cookie` header for this cookie in one
    /// linear pass, without parsing (or allocating for) the other cookies:
    /// a vectorised substring search for the name, then a check that the
    /// match starts a `name=value` pair. Stops at the second match. A quoted
    /// value (`name="…"`) is unquoted, as RFC 6265 allows.
    pub fn find<'a, I: IntoIterator<Item = &'a [u8]>>(&self, values: I) -> Found<'a> {
        let mut found = Found::None;
        let name_len = self.name.len();
        for bytes in values {
            for start in self.finder.find_iter(bytes) {
                let after = start + name_len;
                if !starts_pair(bytes, start) || bytes.get(after) != Some(&b'=') {
                    continue;
                }
                let rest = bytes.get(after + 1..).unwrap_or_default();
                let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
                let raw = unquote(trim(&rest[..end], |b| matches!(b, b' ' | b'\t')));
                found = match (found, std::str::from_utf8(raw)) {
                    (Found::None, Ok(text)) => Found::One(text),
                    _ => return Found::Ambiguous,
                };
            }
        }
        found
    }
}

/// Whether position `at` begins a cookie pair: the start of the header, or
/// only spaces/tabs back to a `;`.
fn starts_pair(bytes: &[u8], at: usize) -> bool {
    match bytes[..at].iter().rposition(|b| !matches!(b, b' ' | b'\t')) {
        None => true,
        Some(i) => bytes[i] == b';',
    }
}

fn unquote(raw: &[u8]) -> &[u8] {
    match raw {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    }
}

fn trim(bytes: &[u8], space: impl Fn(&u8) -> bool) -> &[u8] {
    let start = bytes.iter().position(|b| !space(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// How much of an `Accept` header is looked at; browsers send ~150 bytes.
const ACCEPT_SCAN_LIMIT: usize = 2048;

/// Whether a request is a browser navigation, answered with pages and
/// redirects rather than RFC 9470 `401`s: `Sec-Fetch-Mode: navigate`,
/// whatever the method (a form POST is a navigation too); or, from a
/// browser that sends no Fetch Metadata, a request accepting `text/html`
/// that is a `GET`/`HEAD` or carries a form body
/// (`application/x-www-form-urlencoded`, `multipart/form-data`,
/// `text/plain`). `fetch`/XHR calls (`Sec-Fetch-Mode: cors`, …) and API
/// clients are not.
///
/// `method` is the request method's name; `accept` the values of every
/// `Accept` header; `content_type` the `Content-Type`.
///
/// ```
/// use stepup_http::is_navigation;
/// let accept: [&[u8]; 1] = [b"text/html"];
/// assert!(is_navigation("GET", None, accept, None));
/// assert!(!is_navigation("GET", Some(b"cors"), accept, None));
/// assert!(is_navigation("POST", Some(b"navigate"), [], Some(b"application/x-www-form-urlencoded")));
/// assert!(is_navigation("POST", None, accept, Some(b"application/x-www-form-urlencoded")));
/// assert!(!is_navigation("POST", None, accept, Some(b"application/json")));
/// ```
pub fn is_navigation<'a, I: IntoIterator<Item = &'a [u8]>>(
    method: &str,
    sec_fetch_mode: Option<&[u8]>,
    accept: I,
    content_type: Option<&[u8]>,
) -> bool {
    if let Some(mode) = sec_fetch_mode {
        return mode.eq_ignore_ascii_case(b"navigate");
    }
    let page_load = method == "GET" || method == "HEAD" || content_type.is_some_and(is_form_kind);
    page_load && accept.into_iter().any(accepts_html)
}

/// The media type of a `Content-Type` value, trimmed (parameters dropped).
fn media_type(content_type: &[u8]) -> &[u8] {
    let media = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default();
    trim(media, u8::is_ascii_whitespace)
}

/// Whether a `Content-Type` is one an HTML form sends.
fn is_form_kind(content_type: &[u8]) -> bool {
    let media = media_type(content_type);
    [
        &b"application/x-www-form-urlencoded"[..],
        b"multipart/form-data",
        b"text/plain",
    ]
    .iter()
    .any(|kind| media.eq_ignore_ascii_case(kind))
}

/// Whether a `Content-Type` value is `application/x-www-form-urlencoded`
/// (parameters and case ignored): the only kind of form body stepup keeps
/// and resumes.
///
/// ```
/// use stepup_http::is_urlencoded_form;
/// assert!(is_urlencoded_form(b"application/x-www-form-urlencoded; charset=UTF-8"));
/// assert!(!is_urlencoded_form(b"multipart/form-data; boundary=x"));
/// ```
pub fn is_urlencoded_form(content_type: &[u8]) -> bool {
    media_type(content_type).eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

/// Whether one `Accept` value lists `text/html` with a non-zero quality
/// (only its first 2 KiB are read).
pub fn accepts_html(value: &[u8]) -> bool {
    let value = &value[..value.len().min(ACCEPT_SCAN_LIMIT)];
    value.split(|b| *b == b',').any(|range| {
        let mut parts = range.split(|b| *b == b';');
        let media = parts
            .next()
            .map(|m| trim(m, u8::is_ascii_whitespace))
            .unwrap_or_default();
        media.eq_ignore_ascii_case(b"text/html")
            && !parts.any(|param| {
                let param = trim(param, u8::is_ascii_whitespace);
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

/// Whether a state-changing request (a challenge POST) comes from the
/// application's own origin: an `Origin` equal to `expected`
/// (`scheme://host[:port]`), or — for browsers that send no `Origin`, or
/// `Origin: null` — `Sec-Fetch-Site: same-origin`. Another origin, or
/// neither header, is refused: API clients send `Origin`.
///
/// Browsers send `Origin: null` on a same-origin form POST from a page
/// whose referrer policy is `no-referrer` (as the challenge pages'), and
/// also from sandboxed frames and `data:` documents — whose
/// `Sec-Fetch-Site` is then `cross-site`. A page cannot set
/// `Sec-Fetch-Site`, so `null` counts only with `same-origin` from it.
///
/// ```
/// use stepup_http::same_origin;
/// let me = "https://bank.example";
/// assert!(same_origin(me, Some(b"https://bank.example"), None));
/// assert!(same_origin(me, None, Some(b"same-origin")));
/// assert!(same_origin(me, Some(b"null"), Some(b"same-origin")));
/// assert!(!same_origin(me, Some(b"null"), Some(b"cross-site")));
/// assert!(!same_origin(me, Some(b"null"), None));
/// assert!(!same_origin(me, Some(b"https://evil.example"), Some(b"same-origin")));
/// assert!(!same_origin(me, None, Some(b"same-site")));
/// assert!(!same_origin(me, None, None));
/// ```
pub fn same_origin(expected: &str, origin: Option<&[u8]>, sec_fetch_site: Option<&[u8]>) -> bool {
    match origin {
        Some(b"null") | None => sec_fetch_site == Some(b"same-origin".as_slice()),
        Some(origin) => origin == expected.as_bytes(),
    }
}

/// Whether a `Content-Type` value is `application/json` (parameters and
/// case ignored).
///
/// ```
/// use stepup_http::is_json;
/// assert!(is_json(b"Application/JSON; charset=utf-8"));
/// assert!(!is_json(b"application/x-www-form-urlencoded"));
/// ```
pub fn is_json(content_type: &[u8]) -> bool {
    media_type(content_type).eq_ignore_ascii_case(b"application/json")
}

/// The request headers stepup reads. An adapter maps each to its own
/// (static) header name, so a lookup costs no parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Header {
    /// `Cookie`.
    Cookie,
    /// `Accept`.
    Accept,
    /// `Sec-Fetch-Mode`.
    SecFetchMode,
    /// `Sec-Fetch-Site`.
    SecFetchSite,
    /// `Origin`.
    Origin,
    /// `Content-Type`.
    ContentType,
    /// The opt-in token header ([`TOKEN_HEADER`](crate::TOKEN_HEADER)).
    Token,
    /// `Referer`: the page an interrupted form was on.
    Referer,
    /// `Content-Length`.
    ContentLength,
    /// [`GRANT_HEADER`](crate::GRANT_HEADER): the ceremony an API client
    /// stepped up for, sent back with the bound request.
    Grant,
    /// `User-Agent`: its browser family is part of the client context.
    UserAgent,
    /// `Accept-Language`: the language of the challenge pages.
    AcceptLanguage,
}

impl Header {
    /// The header's name in lower case.
    ///
    /// ```
    /// assert_eq!(stepup_http::Header::SecFetchMode.name(), "sec-fetch-mode");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Header::Cookie => "cookie",
            Header::Accept => "accept",
            Header::SecFetchMode => "sec-fetch-mode",
            Header::SecFetchSite => "sec-fetch-site",
            Header::Origin => "origin",
            Header::ContentType => "content-type",
            Header::Token => crate::TOKEN_HEADER,
            Header::Referer => "referer",
            Header::ContentLength => "content-length",
            Header::Grant => crate::GRANT_HEADER,
            Header::UserAgent => "user-agent",
            Header::AcceptLanguage => "accept-language",
        }
    }
}

/// What stepup reads of a request, whatever the framework: the method, the
/// path and query as sent, and header values as bytes. Each adapter
/// implements it for a thin wrapper around its own request type (`http` 1
/// `Parts`, actix-web's `HttpRequest`).
///
/// ```
/// use stepup_http::{Header, RequestHead, is_navigation_of};
///
/// struct Plain<'a> { method: &'a str, target: &'a str, accept: &'a [u8] }
/// impl RequestHead for Plain<'_> {
///     fn method(&self) -> &str { self.method }
///     fn path_and_query(&self) -> &str { self.target }
///     fn values(&self, header: Header) -> impl Iterator<Item = &[u8]> {
///         (header == Header::Accept).then_some(self.accept).into_iter()
///     }
/// }
/// assert!(is_navigation_of(&Plain { method: "GET", target: "/", accept: b"text/html" }));
/// ```
pub trait RequestHead {
    /// The method's name (`GET`, `POST`, …).
    fn method(&self) -> &str;
    /// The path and query as sent (`/transfer?to=DE89`); `/` when absent.
    fn path_and_query(&self) -> &str;
    /// Every value of `header`, in order.
    fn values(&self, header: Header) -> impl Iterator<Item = &[u8]>;
    /// The first value of `header`.
    fn value(&self, header: Header) -> Option<&[u8]> {
        self.values(header).next()
    }
}

/// [`is_navigation`] for a request.
pub fn is_navigation_of(head: &impl RequestHead) -> bool {
    is_navigation(
        head.method(),
        head.value(Header::SecFetchMode),
        head.values(Header::Accept),
        head.value(Header::ContentType),
    )
}

/// The assurance token of a request: the cookie `cookie` among every
/// `Cookie` header, and the opt-in header when `header` is on — at most one
/// of them may speak.
pub fn find_token<'a>(head: &'a impl RequestHead, cookie: &CookieName, header: bool) -> Found<'a> {
    let found = cookie.find(head.values(Header::Cookie));
    if header {
        found.or_only(Found::from_header(head.values(Header::Token)))
    } else {
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CookieSettings, challenge_location, login_location, valid_note};
    use stepup_core::ReturnTo;

    fn name() -> CookieName {
        CookieName::new("__Host-stepup")
    }

    fn find<'a>(values: &[&'a [u8]]) -> Found<'a> {
        name().find(values.iter().copied())
    }

    #[test]
    fn finds_the_one_cookie_among_others() {
        assert_eq!(find(&[b"a=1; __Host-stepup=tok; b=2"]), Found::One("tok"));
        assert_eq!(find(&[b"a=1", b"__Host-stepup=tok"]), Found::One("tok"));
        assert_eq!(find(&[b"__Host-stepup=\"tok\""]), Found::One("tok"));
        assert_eq!(find(&[b"  __Host-stepup=tok  ;"]), Found::One("tok"));
        assert_eq!(find(&[b"__Host-stepup="]), Found::One(""));
    }

    #[test]
    fn similar_names_do_not_match() {
        let h: &[u8] = b"__Host-stepupX=a; x__Host-stepup=b; __host-stepup=c; __Host-stepup";
        assert_eq!(find(&[h]), Found::None);
    }

    #[test]
    fn names_inside_values_do_not_match() {
        assert_eq!(
            find(&[b"x=__Host-stepup=evil; y=\"a;__Host-stepup\""]),
            Found::None
        );
        assert_eq!(find(&[b"x=1;__Host-stepup=tok"]), Found::One("tok"));
    }

    #[test]
    fn duplicates_are_ambiguous() {
        assert_eq!(
            find(&[b"__Host-stepup=a; __Host-stepup=b"]),
            Found::Ambiguous
        );
        assert_eq!(
            find(&[b"__Host-stepup=a", b"__Host-stepup=a"]),
            Found::Ambiguous
        );
    }

    #[test]
    fn non_text_values_are_ambiguous() {
        assert_eq!(find(&[b"__Host-stepup=\xff\xfe"]), Found::Ambiguous);
        let bad: [&[u8]; 1] = [b"\xff"];
        assert_eq!(Found::from_header(bad), Found::Ambiguous);
    }

    #[test]
    fn header_and_cookie_together_are_ambiguous() {
        assert_eq!(Found::One("a").or_only(Found::One("b")), Found::Ambiguous);
        assert_eq!(Found::None.or_only(Found::One("b")), Found::One("b"));
        assert_eq!(Found::One("a").or_only(Found::None), Found::One("a"));
        assert_eq!(Found::None.or_only(Found::None), Found::None);
    }

    const CHROME: &[u8] =
        b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

    fn nav(method: &str, mode: Option<&[u8]>, accept: &[&[u8]]) -> bool {
        is_navigation(method, mode, accept.iter().copied(), None)
    }

    const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");

    #[test]
    fn a_browser_submitting_a_form_is_navigating() {
        assert!(is_navigation("POST", Some(b"navigate"), [], FORM));
        assert!(is_navigation("POST", None, [CHROME], FORM));
        assert!(is_navigation(
            "POST",
            None,
            [CHROME],
            Some(b"Multipart/Form-Data; boundary=x")
        ));
        assert!(is_navigation("POST", None, [CHROME], Some(b"text/plain")));
        // fetch() posting a form, an API client posting JSON, a form without
        // an HTML Accept: not navigations.
        assert!(!is_navigation("POST", Some(b"cors"), [CHROME], FORM));
        assert!(!is_navigation(
            "POST",
            None,
            [CHROME],
            Some(b"application/json")
        ));
        assert!(!is_navigation("POST", None, [b"*/*".as_slice()], FORM));
        assert!(!is_navigation("DELETE", None, [CHROME], None));
    }

    #[test]
    fn browsers_navigating_get_the_page() {
        assert!(nav("GET", None, &[CHROME]));
        assert!(nav("HEAD", None, &[b"TEXT/HTML"]));
        assert!(nav("GET", Some(b"navigate"), &[b"*/*"]));
        assert!(nav("GET", None, &[b"application/json", b"text/html"]));
    }

    #[test]
    fn everything_else_gets_the_api_form() {
        assert!(!nav("POST", None, &[CHROME]), "a POST without a form body");
        assert!(!nav("DELETE", None, &[CHROME]));
        assert!(!nav("GET", None, &[b"application/json"]));
        assert!(!nav("GET", None, &[b"*/*"]));
        assert!(!nav("GET", None, &[]));
        assert!(!nav("GET", None, &[b"text/html;q=0"]));
        assert!(!nav("GET", None, &[b"text/html; q=0.000"]));
        // fetch() from a page sends Sec-Fetch-Mode: cors, whatever it accepts.
        assert!(!nav("GET", Some(b"cors"), &[CHROME]));
        assert!(!nav("GET", None, &[b"text/htmlx"]));
    }

    #[test]
    fn huge_accept_headers_are_bounded() {
        let long = format!("{}text/html", "x/y,".repeat(10_000));
        assert!(!accepts_html(long.as_bytes()));
    }

    #[test]
    fn locations_encode_the_return_path() {
        let page = ReturnTo::parse("/step-up").unwrap();
        let back = ReturnTo::parse("/transfer?amount=10&to=DE89#x").unwrap();
        assert_eq!(
            challenge_location(&page, &back, "stale"),
            "/step-up?return_to=/transfer%3Famount%3D10%26to%3DDE89%23x&reason=stale"
        );
        let login = ReturnTo::parse("/login?next=1").unwrap();
        assert_eq!(
            login_location(&login, &back),
            "/login?next=1&return_to=/transfer%3Famount%3D10%26to%3DDE89%23x"
        );
    }

    #[test]
    fn set_and_delete_carry_the_same_attributes() {
        let c = CookieSettings::default();
        let set = c.set_cookie("tok", std::time::Duration::from_secs(3600));
        assert_eq!(
            set,
            "__Host-stepup=tok; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
        );
        assert_eq!(
            c.delete_cookie(),
            "__Host-stepup=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"
        );
        assert!(!set.contains("Domain"));
        let local = CookieSettings::insecure_local_development();
        assert_eq!(
            local.set_cookie("t", std::time::Duration::from_secs(5)),
            "stepup=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=5"
        );
        assert_eq!(local.name(), "stepup");
    }

    #[test]
    fn notes_are_identifiers_only() {
        assert!(valid_note("r1"));
        assert!(valid_note("close-account_2"));
        assert!(!valid_note(""));
        assert!(!valid_note("a b"));
        assert!(!valid_note("x&reason=y"));
        assert!(!valid_note(&"a".repeat(33)));
    }
}

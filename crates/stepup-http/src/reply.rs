//! [`Reply`]: an answer as status, headers and body, which every adapter
//! writes with its own response type — so axum, actix-web and any other
//! front end answer byte for byte alike.

use std::borrow::Cow;

use stepup_core::{Challenge, PROBLEM_CONTENT_TYPE};

/// The RFC 9457 body of the `403` for a state-changing request from another
/// origin (see [`same_origin`](crate::same_origin)).
pub const FORBIDDEN_BODY: &str = r#"{"type":"about:blank","title":"Forbidden","status":403,"detail":"Step-up requests must come from this site."}"#;

/// The RFC 9457 body of the "log in first" answer (status 401): a request
/// without a logged-in user gets no step-up challenge, because logging in is
/// the application's job.
pub const LOGIN_REQUIRED_BODY: &str = r#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"Log in first: this route needs a logged-in user before any step-up."}"#;

/// The Content-Security-Policy of every page and asset the challenge routes
/// serve: nothing inline, nothing from elsewhere, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

/// The answer to write: status, headers (lower-case names, in order) and
/// body.
///
/// ```
/// use stepup_http::Reply;
///
/// let reply = Reply::see_other("/account");
/// assert_eq!(reply.status(), 303);
/// assert_eq!(reply.header_value("location"), Some("/account"));
/// assert_eq!(reply.header_value("cache-control"), Some("no-store"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Cow<'static, str>,
}

impl Reply {
    /// A reply with `status`, an optional `Content-Type` and `body`.
    ///
    /// ```
    /// use stepup_http::Reply;
    /// let reply = Reply::new(404, None, "");
    /// assert_eq!((reply.status(), reply.body()), (404, ""));
    /// ```
    pub fn new(
        status: u16,
        content_type: Option<&'static str>,
        body: impl Into<Cow<'static, str>>,
    ) -> Reply {
        let mut headers = Vec::with_capacity(4);
        if let Some(content_type) = content_type {
            headers.push(("content-type", content_type.to_owned()));
        }
        Reply {
            status,
            headers,
            body: body.into(),
        }
    }

    /// Adds the header `name` (lower case) with `value`.
    ///
    /// ```
    /// use stepup_http::Reply;
    /// let reply = Reply::new(405, None, "").with_header("allow", "POST");
    /// assert_eq!(reply.header_value("allow"), Some("POST"));
    /// ```
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds `Cache-Control: no-store`.
    #[must_use]
    pub fn no_store(self) -> Reply {
        self.with_header("cache-control", "no-store")
    }

    /// A JSON body (already serialised) with `Cache-Control: no-store`.
    ///
    /// ```
    /// use stepup_http::Reply;
    /// let reply = Reply::json(200, r#"{"ok":true}"#.to_owned());
    /// assert_eq!(reply.header_value("content-type"), Some("application/json"));
    /// ```
    pub fn json(status: u16, body: String) -> Reply {
        Reply::new(status, Some(JSON), body).no_store()
    }

    /// An HTML page with `Cache-Control: no-store` and the page headers
    /// ([`framing_denied`](Reply::framing_denied)).
    pub fn html(status: u16, html: String) -> Reply {
        Reply::new(status, Some(HTML), html)
            .no_store()
            .framing_denied()
    }

    /// A static asset, cacheable for an hour, with the page headers.
    pub fn asset(content_type: &'static str, body: &'static str) -> Reply {
        Reply::new(200, Some(content_type), body)
            .with_header("cache-control", "public, max-age=3600")
            .framing_denied()
    }

    /// The headers every page and asset carries: a strict CSP
    /// ([`CONTENT_SECURITY_POLICY`]), no framing, no referrer, no sniffing.
    ///
    /// ```
    /// use stepup_http::Reply;
    /// let page = Reply::html(200, "<p>hi</p>".to_owned());
    /// assert_eq!(page.header_value("x-frame-options"), Some("DENY"));
    /// ```
    #[must_use]
    pub fn framing_denied(self) -> Reply {
        self.with_header("content-security-policy", CONTENT_SECURITY_POLICY)
            .with_header("x-frame-options", "DENY")
            .with_header("referrer-policy", "no-referrer")
            .with_header("x-content-type-options", "nosniff")
    }

    /// Lets the page's forms go to `origin` too (its CSP `form-action`):
    /// for a form whose answer redirects there, like a step-up at an
    /// identity provider. `origin` must be a bare origin
    /// (`https://id.example`, `http://127.0.0.1:8080`); anything else
    /// leaves the reply as it was.
    ///
    /// ```
    /// use stepup_http::Reply;
    /// let page = Reply::html(200, String::new()).with_form_action("https://id.example");
    /// let csp = page.header_value("content-security-policy").unwrap();
    /// assert!(csp.contains("form-action 'self' https://id.example;"));
    /// let page = Reply::html(200, String::new()).with_form_action("https://id.example; script-src *");
    /// assert!(!page.header_value("content-security-policy").unwrap().contains("script-src *"));
    /// ```
    #[must_use]
    pub fn with_form_action(mut self, origin: &str) -> Reply {
        if !is_bare_origin(origin) {
            return self;
        }
        for (name, value) in &mut self.headers {
            if *name == "content-security-policy" {
                *value = value.replacen(
                    "form-action 'self'",
                    &format!("form-action 'self' {origin}"),
                    1,
                );
            }
        }
        self
    }

    /// `303 See Other` to `location` (which must be built from validated
    /// parts only), with `Cache-Control: no-store`.
    pub fn see_other(location: &str) -> Reply {
        Reply::new(303, None, "")
            .with_header("location", location)
            .no_store()
    }

    /// `401` for a request without a logged-in user (no step-up challenge:
    /// logging in is the application's job).
    ///
    /// ```
    /// use stepup_http::{LOGIN_REQUIRED_BODY, Reply};
    /// let reply = Reply::login_required();
    /// assert_eq!((reply.status(), reply.body()), (401, LOGIN_REQUIRED_BODY));
    /// ```
    pub fn login_required() -> Reply {
        Reply::new(401, Some(PROBLEM_CONTENT_TYPE), LOGIN_REQUIRED_BODY).no_store()
    }

    /// `403` for a state-changing request from another origin, with the
    /// RFC 9457 body [`FORBIDDEN_BODY`].
    ///
    /// ```
    /// use stepup_http::Reply;
    /// assert_eq!(Reply::forbidden().status(), 403);
    /// ```
    pub fn forbidden() -> Reply {
        Reply::new(403, Some(PROBLEM_CONTENT_TYPE), FORBIDDEN_BODY).no_store()
    }

    /// A challenge: `303` to `location` for a browser navigation, `401`
    /// with the RFC 9470 `WWW-Authenticate` header and the RFC 9457 body
    /// (naming `location` as `step_up_url`) otherwise.
    ///
    /// ```
    /// use stepup_core::{ChallengeReason, Gate, Key, KeyId, KeyRing, Policy};
    /// use stepup_http::Reply;
    ///
    /// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
    /// let challenge = Gate::new(&ring).challenge(ChallengeReason::NoAssurance, &Policy::level(2));
    /// let api = Reply::challenge(false, "/step-up?return_to=/x&reason=no_assurance", &challenge);
    /// assert_eq!(api.status(), 401);
    /// assert!(api.header_value("www-authenticate").unwrap().contains("insufficient_user_authentication"));
    /// let browser = Reply::challenge(true, "/step-up?return_to=/x&reason=no_assurance", &challenge);
    /// assert_eq!(browser.status(), 303);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn challenge(navigation: bool, location: &str, challenge: &Challenge) -> Reply {
        if navigation {
            return Reply::see_other(location);
        }
        Reply::new(
            401,
            Some(PROBLEM_CONTENT_TYPE),
            challenge.problem_json_with(&[("step_up_url", location)]),
        )
        .no_store()
        .with_header("www-authenticate", challenge.www_authenticate())
    }

    /// A challenge for a bound action, to an API client: `401` with the
    /// RFC 9470 header and the RFC 9457 body carrying the RFC 9396
    /// `authorization_details`, the `action_digest`, the ceremony id as
    /// `confirmation` (step up with it, then send it back as
    /// [`GRANT_HEADER`](crate::GRANT_HEADER)) and the page as `step_up_url`.
    pub fn bound_challenge(
        location: &str,
        challenge: &Challenge,
        confirmation: &str,
        action: &stepup_core::Action,
    ) -> Reply {
        Reply::new(
            401,
            Some(PROBLEM_CONTENT_TYPE),
            challenge.problem_json_for_action(
                &[("step_up_url", location), ("confirmation", confirmation)],
                action,
            ),
        )
        .no_store()
        .with_header("www-authenticate", challenge.www_authenticate())
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers, in order, names in lower case.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.headers.iter().map(|(n, v)| (*n, v.as_str()))
    }

    /// The first value of header `name` (lower case).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// Status, headers and body, for writing the response.
    pub fn into_parts(self) -> (u16, Vec<(&'static str, String)>, Cow<'static, str>) {
        (self.status, self.headers, self.body)
    }
}

/// `scheme://host[:port]` with an http(s) scheme and a host of letters,
/// digits, `.`, `-` (or a bracketed IPv6 address): nothing that could end
/// a CSP directive.
fn is_bare_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// `text` escaped for HTML text and attribute values (`&`, `<`, `>`, `"`,
/// `'`), for the few pages built without a template.
///
/// ```
/// assert_eq!(stepup_http::escape_html(r#"<a href="x">'&'</a>"#),
///     "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

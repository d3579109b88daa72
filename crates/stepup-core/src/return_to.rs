//! Where to send the user after a step-up: a local path, and nothing else.

use std::fmt;

use crate::error::InvalidReturnTo;

/// A validated local path (with optional query and fragment) to return to
/// after a step-up.
///
/// Only an absolute path on this site is accepted: it starts with exactly one
/// `/`, uses only the characters URLs allow in paths and queries, has
/// well-formed `%` escapes, and — after decoding the escapes, up to three
/// times over — contains no control character, no backslash, no `.`/`..`
/// segment, and does not start with `//` or `/\`. Everything else (other
/// hosts, schemes, protocol-relative URLs and their encoded disguises) is
/// refused, and [`parse_or`](ReturnTo::parse_or) falls back to a configured
/// default. Because the accepted text needs no escaping, a `Location` header
/// is built from it as it is.
///
/// ```
/// use stepup_core::ReturnTo;
///
/// let home = ReturnTo::root();
/// assert_eq!(ReturnTo::parse("/transfer?amount=10")?.as_str(), "/transfer?amount=10");
/// assert_eq!(ReturnTo::parse_or("https://evil.example/", &home).as_str(), "/");
/// assert_eq!(ReturnTo::parse_or("//evil.example", &home).as_str(), "/");
/// assert_eq!(ReturnTo::parse_or("/%2F%2Fevil.example", &home).as_str(), "/");
/// # Ok::<(), stepup_core::InvalidReturnTo>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReturnTo(String);

/// How many layers of percent-encoding are looked through.
const DECODE_ROUNDS: usize = 3;

impl ReturnTo {
    /// The longest return path accepted, in bytes.
    pub const MAX_LEN: usize = 2048;

    /// `/`.
    pub fn root() -> ReturnTo {
        ReturnTo("/".to_owned())
    }

    /// Validates `input`.
    pub fn parse(input: &str) -> Result<ReturnTo, InvalidReturnTo> {
        validate(input)?;
        Ok(ReturnTo(input.to_owned()))
    }

    /// Validates `input`, or returns `fallback` if it is refused.
    pub fn parse_or(input: &str, fallback: &ReturnTo) -> ReturnTo {
        ReturnTo::parse(input).unwrap_or_else(|_| fallback.clone())
    }

    /// The path, safe to use as a `Location` header value or in a URL query
    /// (after the query encoding of the caller's choice).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ReturnTo {
    fn default() -> Self {
        ReturnTo::root()
    }
}

impl fmt::Display for ReturnTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ReturnTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReturnTo({:?})", self.0)
    }
}

impl AsRef<str> for ReturnTo {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// RFC 3986 `pchar`, `/`, `?` and `#`: what a path, query and fragment may hold unescaped.
fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'?'
                | b'#'
                | b'%'
        )
}

fn validate(input: &str) -> Result<(), InvalidReturnTo> {
    let raw = input.as_bytes();
    if raw.is_empty() || raw.len() > ReturnTo::MAX_LEN {
        return Err(InvalidReturnTo::Length);
    }
    if !raw.iter().all(|b| allowed(*b)) {
        return Err(InvalidReturnTo::Character);
    }
    let mut layer = raw.to_vec();
    for round in 0..=DECODE_ROUNDS {
        check_layer(&layer)?;
        if !layer.contains(&b'%') {
            return Ok(());
        }
        if round == DECODE_ROUNDS {
            // Still escaped after every round: too deep to be honest.
            return Err(InvalidReturnTo::Encoding);
        }
        let next = percent_decode(&layer, round == 0)?;
        if next == layer {
            // Only lone `%` characters left: nothing more to look through.
            return Ok(());
        }
        layer = next;
    }
    Err(InvalidReturnTo::Encoding)
}

/// The checks every decoding layer must pass.
fn check_layer(bytes: &[u8]) -> Result<(), InvalidReturnTo> {
    if bytes.first() != Some(&b'/') {
        return Err(InvalidReturnTo::NotLocal);
    }
    if matches!(bytes.get(1), Some(b'/' | b'\\')) {
        return Err(InvalidReturnTo::NotLocal);
    }
    if bytes.iter().any(|b| *b < 0x20 || *b == 0x7f || *b == b'\\') {
        return Err(InvalidReturnTo::Character);
    }
    let path_end = bytes
        .iter()
        .position(|b| *b == b'?' || *b == b'#')
        .unwrap_or(bytes.len());
    let dot_segment = bytes[..path_end]
        .split(|b| *b == b'/')
        .any(|seg| seg == b"." || seg == b"..");
    if dot_segment {
        return Err(InvalidReturnTo::DotSegment);
    }
    Ok(())
}

/// Decodes `%XX` escapes. In the first (literal) layer every `%` must start a
/// valid escape; in decoded layers a `%` that does not is just a character.
fn percent_decode(bytes: &[u8], strict: bool) -> Result<Vec<u8>, InvalidReturnTo> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                let hi = (h[0] as char).to_digit(16)?;
                let lo = (h[1] as char).to_digit(16)?;
                Some((hi * 16 + lo) as u8)
            });
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None if strict => return Err(InvalidReturnTo::Encoding),
                None => {}
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_pass() {
        for ok in [
            "/",
            "/transfer",
            "/transfer?amount=10&to=DE89",
            "/a/b/c#section",
            "/search?q=%E2%82%AC",
            "/files/report%20final.pdf",
            "/a.b/...",
            "/@user",
            "/javascript:alert(1)",
            "/?next=//not-followed",
            "/caf%C3%A9",
            "/search?q=100%25",
        ] {
            assert_eq!(ReturnTo::parse(ok).map(|r| r.0), Ok(ok.to_owned()), "{ok}");
        }
    }

    #[test]
    fn hostile_inputs_fall_back() {
        let cases: &[(&str, InvalidReturnTo)] = &[
            ("", InvalidReturnTo::Length),
            ("https://evil.example/", InvalidReturnTo::NotLocal),
            ("http:/evil.example", InvalidReturnTo::NotLocal),
            ("//evil.example", InvalidReturnTo::NotLocal),
            ("///evil.example", InvalidReturnTo::NotLocal),
            ("/\\evil.example", InvalidReturnTo::Character),
            ("\\\\evil.example", InvalidReturnTo::Character),
            ("\\/evil.example", InvalidReturnTo::Character),
            ("javascript:alert(1)", InvalidReturnTo::NotLocal),
            ("data:text/html,<script>", InvalidReturnTo::Character),
            ("evil.example", InvalidReturnTo::NotLocal),
            ("transfer", InvalidReturnTo::NotLocal),
            ("?x=1", InvalidReturnTo::NotLocal),
            ("#top", InvalidReturnTo::NotLocal),
            ("/%2F%2Fevil.example", InvalidReturnTo::NotLocal),
            ("/%2fevil.example", InvalidReturnTo::NotLocal),
            ("/%5Cevil.example", InvalidReturnTo::NotLocal),
            ("/%255Cevil.example", InvalidReturnTo::NotLocal),
            ("/%252F%252Fevil.example", InvalidReturnTo::NotLocal),
            ("/%25252F%25252Fevil.example", InvalidReturnTo::NotLocal),
            ("/%2525252Fx", InvalidReturnTo::Encoding),
            ("/\t/evil.example", InvalidReturnTo::Character),
            ("/ /evil.example", InvalidReturnTo::Character),
            ("/\r\nSet-Cookie:x=1", InvalidReturnTo::Character),
            ("/%0d%0aSet-Cookie:x=1", InvalidReturnTo::Character),
            ("/ok?x=%0D%0ALocation:evil", InvalidReturnTo::Character),
            ("/%00", InvalidReturnTo::Character),
            ("/%7F", InvalidReturnTo::Character),
            ("/%09/evil.example", InvalidReturnTo::Character),
            ("/%", InvalidReturnTo::Encoding),
            ("/%zz", InvalidReturnTo::Encoding),
            ("/%2", InvalidReturnTo::Encoding),
            ("/../admin", InvalidReturnTo::DotSegment),
            ("/a/./b", InvalidReturnTo::DotSegment),
            ("/.", InvalidReturnTo::DotSegment),
            ("/%2e%2e/admin", InvalidReturnTo::DotSegment),
            ("/.%2e/admin", InvalidReturnTo::DotSegment),
            ("/.%2F/evil.example", InvalidReturnTo::DotSegment),
            ("/\u{3000}/evil.example", InvalidReturnTo::Character),
            ("／／evil.example", InvalidReturnTo::Character),
            ("/\u{2215}\u{2215}evil.example", InvalidReturnTo::Character),
            ("/<script>", InvalidReturnTo::Character),
            ("/\"onmouseover=x", InvalidReturnTo::Character),
            ("/a b", InvalidReturnTo::Character),
            ("/`x`", InvalidReturnTo::Character),
            (" /leading-space", InvalidReturnTo::Character),
        ];
        assert!(cases.len() >= 25);
        for (input, why) in cases {
            assert_eq!(ReturnTo::parse(input), Err(*why), "{input:?}");
            assert_eq!(ReturnTo::parse_or(input, &ReturnTo::root()).as_str(), "/");
        }
        let long = format!("/{}", "a".repeat(ReturnTo::MAX_LEN));
        assert_eq!(ReturnTo::parse(&long), Err(InvalidReturnTo::Length));
    }

    #[test]
    fn fallback_is_configurable() {
        let dashboard = ReturnTo::parse("/dashboard").unwrap();
        assert_eq!(ReturnTo::parse_or("//x", &dashboard), dashboard);
    }
}

//! Bound actions: what exactly a step-up confirms ("send 12,000.00 to
//! bob"), in a canonical form and a digest that changes with any field.
//!
//! An [`Action`] is shaped like one entry of RFC 9396
//! `authorization_details`: a `type`, the HTTP method and route it is
//! for, and named details whose values are strings (amounts as canonical
//! decimal strings, never floating point). Its canonical JSON is the
//! RFC 8785 (JCS) serialization of
//! `{"details":{…},"method":…,"route":…,"type":…}`; its [`ActionDigest`]
//! is SHA-256 over [`ACTION_DIGEST_TAG`] followed by that JSON.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// The domain-separation tag the [`ActionDigest`] hashes before the
/// canonical JSON: a digest of an action can never equal a digest made for
/// another purpose over the same bytes. It ends with a NUL, which
/// canonical JSON never contains.
pub const ACTION_DIGEST_TAG: &[u8] = b"stepup/action/v1\0";

/// The most details one action may have.
pub const MAX_DETAILS: usize = 32;

/// The most bytes a detail's value may have.
pub const MAX_VALUE_LEN: usize = 1024;

/// The most bytes an action's route may have.
pub const MAX_ROUTE_LEN: usize = 2048;

/// Why an [`Action`] cannot be built as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The type is empty, longer than 128 bytes, or not printable ASCII.
    #[error("an action type is 1-128 printable ASCII characters")]
    Type,
    /// The method is not 1-16 ASCII upper-case letters.
    #[error("an action method is 1-16 upper-case ASCII letters")]
    Method,
    /// The route does not start with `/`, is too long, or holds a control
    /// character.
    #[error(
        "an action route is a path starting with `/` (at most 2048 bytes, no control characters)"
    )]
    Route,
    /// A detail name is not 1-64 of `[A-Za-z0-9_.-]`.
    #[error("detail names are 1-64 of A-Z, a-z, 0-9, `_`, `.` and `-`")]
    Name,
    /// Two details have the same name.
    #[error("the detail `{0}` is given twice")]
    Duplicate(String),
    /// A value is longer than [`MAX_VALUE_LEN`].
    #[error("the detail `{0}` is longer than 1024 bytes")]
    TooLong(String),
    /// More than [`MAX_DETAILS`] details.
    #[error("an action has at most 32 details")]
    TooMany,
}

/// One action a step-up can be bound to: a type (RFC 9396's `type`), the
/// method and route, and named string details.
///
/// ```
/// use stepup_core::Action;
///
/// let send = Action::new("payment", "POST", "/transfer")?
///     .with_detail("amount", "12000.00")?
///     .with_detail("payee", "bob")?;
/// assert_eq!(
///     send.canonical_json(),
///     r#"{"details":{"amount":"12000.00","payee":"bob"},"method":"POST","route":"/transfer","type":"payment"}"#
/// );
/// // Any change of a detail, the method or the route changes the digest.
/// let more = Action::new("payment", "POST", "/transfer")?
///     .with_detail("amount", "12000.01")?
///     .with_detail("payee", "bob")?;
/// assert_ne!(send.digest(), more.digest());
/// assert_eq!(send.digest().to_hex().len(), 64);
/// # Ok::<(), stepup_core::ActionError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Action {
    kind: String,
    method: String,
    route: String,
    /// Sorted by name (JCS order: names are ASCII, so bytes order them as
    /// UTF-16 does), unique.
    details: Vec<(String, String)>,
}

impl Action {
    /// An action of type `kind` for `method` on `route`, without details.
    pub fn new(
        kind: impl Into<String>,
        method: impl Into<String>,
        route: impl Into<String>,
    ) -> Result<Action, ActionError> {
        let (kind, method, route) = (kind.into(), method.into(), route.into());
        if kind.is_empty() || kind.len() > 128 || !kind.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ActionError::Type);
        }
        if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(ActionError::Method);
        }
        if !route.starts_with('/')
            || route.len() > MAX_ROUTE_LEN
            || route.chars().any(char::is_control)
        {
            return Err(ActionError::Route);
        }
        Ok(Action {
            kind,
            method,
            route,
            details: Vec::new(),
        })
    }

    /// Adds the detail `name` (1-64 of `[A-Za-z0-9_.-]`, not given before)
    /// with `value` (at most [`MAX_VALUE_LEN`] bytes).
    pub fn with_detail(
        mut self,
        name: &str,
        value: impl Into<String>,
    ) -> Result<Action, ActionError> {
        if !is_detail_name(name) {
            return Err(ActionError::Name);
        }
        let value = value.into();
        if value.len() > MAX_VALUE_LEN {
            return Err(ActionError::TooLong(name.to_owned()));
        }
        match self.details.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(_) => Err(ActionError::Duplicate(name.to_owned())),
            Err(_) if self.details.len() >= MAX_DETAILS => Err(ActionError::TooMany),
            Err(at) => {
                self.details.insert(at, (name.to_owned(), value));
                Ok(self)
            }
        }
    }

    /// Its type (RFC 9396 `type`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The HTTP method it is for.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The route (path) it is for.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Its details, ordered by name.
    pub fn details(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.details.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The value of the detail `name`.
    pub fn detail(&self, name: &str) -> Option<&str> {
        self.details
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|at| self.details[at].1.as_str())
    }

    /// The RFC 8785 canonical JSON of
    /// `{"details":{…},"method":…,"route":…,"type":…}`.
    pub fn canonical_json(&self) -> String {
        let details = Jcs::Object(
            self.details
                .iter()
                .map(|(n, v)| (n.clone(), Jcs::String(v.clone())))
                .collect(),
        );
        let whole = Jcs::Object(vec![
            ("type".to_owned(), Jcs::String(self.kind.clone())),
            ("method".to_owned(), Jcs::String(self.method.clone())),
            ("route".to_owned(), Jcs::String(self.route.clone())),
            ("details".to_owned(), details),
        ]);
        // Names are fixed or checked unique: canonicalization cannot fail.
        whole.canonical().unwrap_or_default()
    }

    /// SHA-256 over [`ACTION_DIGEST_TAG`] and the
    /// [canonical JSON](Action::canonical_json).
    pub fn digest(&self) -> ActionDigest {
        let mut hash = Sha256::new();
        hash.update(ACTION_DIGEST_TAG);
        hash.update(self.canonical_json().as_bytes());
        ActionDigest(hash.finalize().into())
    }

    /// The RFC 9396 `authorization_details` array with this action as its
    /// one entry: `[` + the canonical JSON + `]`. A client recomputes the
    /// [`digest`](Action::digest) from the entry's canonical JSON.
    pub fn authorization_details(&self) -> String {
        format!("[{}]", self.canonical_json())
    }
}

impl fmt::Debug for Action {
    /// The type, method and route, and the detail names: values may be
    /// personal (a payee's name, an account number).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Action")
            .field("type", &self.kind)
            .field("method", &self.method)
            .field("route", &self.route)
            .field(
                "details",
                &self.details.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Whether `name` can name a detail: 1-64 of `[A-Za-z0-9_.-]`.
pub fn is_detail_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The SHA-256 digest of an [`Action`]; compared in constant time.
#[derive(Clone, Copy)]
pub struct ActionDigest([u8; 32]);

impl ActionDigest {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        out
    }

    /// Reads 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<ActionDigest> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            out[i] = u8::try_from(hi * 16 + lo).ok()?;
        }
        Some(ActionDigest(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl PartialEq for ActionDigest {
    fn eq(&self, other: &Self) -> bool {
        crate::ct::eq(&self.0, &other.0)
    }
}

impl Eq for ActionDigest {}

impl fmt::Debug for ActionDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActionDigest({})", self.to_hex())
    }
}

impl fmt::Display for ActionDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A JSON value without numbers, for RFC 8785 (JCS) canonicalization:
/// bound actions carry amounts as decimal strings, never as numbers, so
/// the number serialization of JCS (ECMAScript's) is not needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Jcs {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A string.
    String(String),
    /// An array, in its order.
    Array(Vec<Jcs>),
    /// An object's members, in any order (canonicalization sorts them).
    Object(Vec<(String, Jcs)>),
}

/// A JSON object had two members of one name: JCS has no canonical form
/// for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the member `{0}` appears twice in one object")]
pub struct DuplicateMember(pub String);

impl Jcs {
    /// The RFC 8785 canonical serialization: no whitespace, members
    /// sorted by their names' UTF-16 code units, strings escaped as
    /// ECMAScript's `JSON.stringify` does (`\"`, `\\`, `\b`, `\f`, `\n`,
    /// `\r`, `\t`, other controls as `\u00xx`; everything else as UTF-8).
    ///
    /// ```
    /// use stepup_core::Jcs;
    /// let value = Jcs::Object(vec![
    ///     ("b".into(), Jcs::String("\u{20ac}\n".into())),
    ///     ("a".into(), Jcs::Array(vec![Jcs::Bool(true), Jcs::Null])),
    /// ]);
    /// assert_eq!(value.canonical()?, "{\"a\":[true,null],\"b\":\"\u{20ac}\\n\"}");
    /// # Ok::<(), stepup_core::DuplicateMember>(())
    /// ```
    pub fn canonical(&self) -> Result<String, DuplicateMember> {
        let mut out = String::new();
        self.write(&mut out)?;
        Ok(out)
    }

    fn write(&self, out: &mut String) -> Result<(), DuplicateMember> {
        match self {
            Jcs::Null => out.push_str("null"),
            Jcs::Bool(true) => out.push_str("true"),
            Jcs::Bool(false) => out.push_str("false"),
            Jcs::String(s) => write_string(out, s),
            Jcs::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out)?;
                }
                out.push(']');
            }
            Jcs::Object(members) => {
                let mut sorted: Vec<&(String, Jcs)> = members.iter().collect();
                sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
                if let Some(pair) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
                    return Err(DuplicateMember(pair[0].0.clone()));
                }
                out.push('{');
                for (i, (name, value)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, name);
                    out.push(':');
                    value.write(out)?;
                }
                out.push('}');
            }
        }
        Ok(())
    }
}

/// `s` as a JCS string (RFC 8785 §3.2.2.2).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let n = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[n >> 4]));
                out.push(char::from(HEX[n & 15]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(amount: &str, payee: &str) -> Action {
        Action::new("payment", "POST", "/transfer")
            .and_then(|a| a.with_detail("payee", payee))
            .and_then(|a| a.with_detail("amount", amount))
            .unwrap()
    }

    #[test]
    fn details_are_ordered_and_unique() {
        let a = send("1.00", "bob");
        assert_eq!(
            a.details().collect::<Vec<_>>(),
            [("amount", "1.00"), ("payee", "bob")]
        );
        assert_eq!(a.detail("payee"), Some("bob"));
        assert_eq!(a.detail("nobody"), None);
        assert_eq!(
            a.clone().with_detail("amount", "900.00"),
            Err(ActionError::Duplicate("amount".into()))
        );
    }

    #[test]
    fn bad_parts_are_refused() {
        assert_eq!(Action::new("", "POST", "/").unwrap_err(), ActionError::Type);
        assert_eq!(
            Action::new("a b", "POST", "/").unwrap_err(),
            ActionError::Type
        );
        assert_eq!(
            Action::new("t", "post", "/").unwrap_err(),
            ActionError::Method
        );
        assert_eq!(
            Action::new("t", "POST", "x").unwrap_err(),
            ActionError::Route
        );
        assert_eq!(
            Action::new("t", "POST", "/a\nb").unwrap_err(),
            ActionError::Route
        );
        let ok = Action::new("t", "POST", "/").unwrap();
        assert_eq!(
            ok.clone().with_detail("", "x").unwrap_err(),
            ActionError::Name
        );
        assert_eq!(
            ok.clone().with_detail("a=b", "x").unwrap_err(),
            ActionError::Name
        );
        assert_eq!(
            ok.clone().with_detail("a", "x".repeat(1025)).unwrap_err(),
            ActionError::TooLong("a".into())
        );
        let mut full = ok;
        for i in 0..MAX_DETAILS {
            full = full.with_detail(&format!("d{i}"), "").unwrap();
        }
        assert_eq!(full.with_detail("x", "").unwrap_err(), ActionError::TooMany);
    }

    #[test]
    fn the_method_and_route_are_digested() {
        let a = send("1.00", "bob");
        let put = Action::new("payment", "PUT", "/transfer")
            .and_then(|x| x.with_detail("amount", "1.00"))
            .and_then(|x| x.with_detail("payee", "bob"))
            .unwrap();
        let other = Action::new("payment", "POST", "/transfers")
            .and_then(|x| x.with_detail("amount", "1.00"))
            .and_then(|x| x.with_detail("payee", "bob"))
            .unwrap();
        assert_ne!(a.digest(), put.digest());
        assert_ne!(a.digest(), other.digest());
        assert_eq!(a.digest(), send("1.00", "bob").digest());
    }

    #[test]
    fn the_digest_is_pinned() {
        // A change here breaks every grant outstanding during an upgrade:
        // the tag and the canonical form are part of the format.
        let a = send("12000.00", "bob");
        let mut hash = Sha256::new();
        hash.update(b"stepup/action/v1\0{\"details\":{\"amount\":\"12000.00\",\"payee\":\"bob\"},\"method\":\"POST\",\"route\":\"/transfer\",\"type\":\"payment\"}");
        let want: [u8; 32] = hash.finalize().into();
        assert_eq!(a.digest().as_bytes(), &want);
        assert_eq!(
            ActionDigest::from_hex(&a.digest().to_hex()),
            Some(a.digest())
        );
        assert_eq!(ActionDigest::from_hex("00"), None);
        assert_eq!(ActionDigest::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn debug_shows_no_values() {
        let shown = format!("{:?}", send("12000.00", "bob"));
        assert!(shown.contains("amount") && !shown.contains("12000") && !shown.contains("bob"));
    }
}

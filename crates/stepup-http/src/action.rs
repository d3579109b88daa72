//! Bound actions (PSD2 dynamic linking): a route declares which request
//! fields its step-up is bound to ([`ActionSpec`]); the adapter buffers the
//! body once and calls [`ActionSpec::extract`], which reads those fields,
//! makes each canonical ([`Normalise`]) and builds the
//! [`Action`](stepup_core::Action) — the [`BoundAction`] the person
//! confirms and the handler then uses, so what was confirmed is exactly
//! what runs. A request whose action cannot be read unambiguously gets an
//! [`ActionRefusal`].
//!
//! Reading is strict where a lenient parser would let two readers disagree:
//! a declared field sent twice (`amount=1&amount=900`, or a repeated JSON
//! key) is refused rather than resolved, JSON numbers with a fraction or
//! exponent are refused (amounts travel as strings), and a form value that
//! is not UTF-8 is refused rather than repaired. Messages name the field,
//! never its value.
//!
//! ```
//! use stepup_http::{ActionInput, ActionSpec, Normalise};
//!
//! let spec = ActionSpec::builder("payment")
//!     .field("amount", Normalise::Amount { scale: 2 })
//!     .field("currency", Normalise::Code)
//!     .field("payee", Normalise::Iban)
//!     .summary("Send {amount} {currency} to {payee}")
//!     .build()?;
//! let input = ActionInput {
//!     method: "POST",
//!     path: "/transfer",
//!     query: None,
//!     content_type: Some(b"application/x-www-form-urlencoded"),
//!     body: b"amount=25&currency=eur&payee=GB82+WEST+1234+5698+7654+32",
//! };
//! let bound = spec.extract(&input)?;
//! assert_eq!(bound.get("amount"), Some("25.00"));
//! assert_eq!(bound.summary(), "Send 25.00 EUR to GB82WEST12345698765432");
//!
//! // The attack dynamic linking exists for: one value shown, another run.
//! let twice = ActionInput { body: b"amount=1&amount=900&currency=EUR&payee=x", ..input };
//! let refused = spec.extract(&twice).unwrap_err();
//! assert_eq!((refused.status(), refused.field()), (400, Some("amount")));
//! assert_eq!(refused.message(), "`amount` is sent twice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use stepup_core::action::is_detail_name;
use stepup_core::{Action, ActionDigest, ActionError, PROBLEM_CONTENT_TYPE};

use crate::read::{is_json, is_urlencoded_form};
use crate::reply::Reply;

/// The most body bytes an [`ActionSpec`] reads unless configured otherwise.
const DEFAULT_BODY_LIMIT: usize = 8 * 1024;

/// The most digits of an amount's whole part, or of an integer.
const MAX_DIGITS: usize = 18;

/// The largest scale of [`Normalise::Amount`].
const MAX_SCALE: u8 = 18;

/// The RFC 9457 `type` of an [`ActionRefusal`]'s body.
const PROBLEM_TYPE: &str = "urn:stepup:problem:action-refused";

/// The RFC 9457 `title` of an [`ActionRefusal`]'s body.
const PROBLEM_TITLE: &str = "The request cannot be bound as sent";

/// The closure of [`ActionSpecBuilder::summary_with`].
type SummaryWith = dyn Fn(&Action) -> String + Send + Sync;

/// The closure of [`ActionSpec::custom`].
type CustomBuild =
    dyn Fn(&ActionInput<'_>) -> Result<(Action, String), ActionRefusal> + Send + Sync;

/// How one field's value is made canonical; a value that cannot be is
/// refused (`400`, naming the field, never echoing the value).
///
/// ```
/// use stepup_http::{ActionInput, ActionSpec, Normalise};
///
/// let spec = ActionSpec::builder("payment")
///     .field("amount", Normalise::Amount { scale: 2 })
///     .field("note", Normalise::Trimmed)
///     .build()?;
/// let input = ActionInput {
///     method: "POST",
///     path: "/pay",
///     query: None,
///     content_type: Some(b"application/json"),
///     body: br#"{"amount":"007.5","note":"  rent \n and  food "}"#,
/// };
/// let bound = spec.extract(&input)?;
/// assert_eq!(bound.get("amount"), Some("7.50"));
/// assert_eq!(bound.get("note"), Some("rent and food"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Normalise {
    /// As sent; refused if empty or holding a control character (or a
    /// bidirectional-formatting character, which can make a summary read
    /// differently from what runs).
    Exact,
    /// Leading and trailing whitespace removed, inner runs of whitespace
    /// (line breaks and tabs included) made one space; refused if empty
    /// after that or still holding a control (or bidirectional-formatting)
    /// character.
    Trimmed,
    /// A decimal amount with at most `scale` (0..=18) decimals:
    /// `[0-9]{1,18}`, optionally `.` and 1..=`scale` digits, leading zeros
    /// dropped, written with exactly `scale` decimals (`"25"` → `"25.00"`,
    /// `"007.5"` → `"7.50"`; scale 0: `"12000"`). Refused: signs,
    /// exponents, grouping commas, spaces, `".5"`, `"5."`, more decimals
    /// than `scale`, non-ASCII digits.
    Amount {
        /// The number of decimals, 0..=18.
        scale: u8,
    },
    /// An IBAN: ASCII spaces removed, upper-cased, then 15–34 of
    /// `[A-Z]{2}[0-9]{2}[A-Z0-9]+` with a valid ISO 7064 mod-97 check
    /// (remainder 1).
    Iban,
    /// An upper-cased ASCII code (a currency: `"eur"` → `"EUR"`): 1–64 of
    /// `[A-Za-z0-9]`, surrounding whitespace trimmed.
    Code,
    /// A non-negative integer, `[0-9]{1,18}`, leading zeros dropped (`"0"`
    /// stays).
    Integer,
    /// The application's own: `Ok(canonical)` or `Err(message)`, shown to
    /// the client after the field's name (so it should not echo the value).
    #[allow(clippy::type_complexity)] // spelled out for the docs
    Custom(Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>),
}

impl Normalise {
    /// The canonical form of `raw`, or why there is none.
    fn apply(&self, raw: &str) -> Result<String, String> {
        match self {
            Normalise::Exact => exact(raw),
            Normalise::Trimmed => trimmed(raw),
            Normalise::Amount { scale } => amount(raw, *scale),
            Normalise::Iban => iban(raw),
            Normalise::Code => code(raw),
            Normalise::Integer => integer(raw),
            Normalise::Custom(custom) => custom(raw),
        }
    }
}

impl fmt::Debug for Normalise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Normalise::Exact => f.write_str("Exact"),
            Normalise::Trimmed => f.write_str("Trimmed"),
            Normalise::Amount { scale } => f.debug_struct("Amount").field("scale", scale).finish(),
            Normalise::Iban => f.write_str("Iban"),
            Normalise::Code => f.write_str("Code"),
            Normalise::Integer => f.write_str("Integer"),
            Normalise::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Whether `c` may not appear in a text value: a control character, a
/// bidirectional-formatting one (which can reorder what a summary shows), or
/// any other format or default-ignorable character (zero-width spaces and
/// joiners, the soft hyphen, word joiners, variation selectors, the byte
/// order mark, tag characters…), which a page shows as nothing: the
/// summary would read "bob" while another value runs.
fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Format (Cf) and Default_Ignorable_Code_Point, Unicode 15.
            '\u{00AD}'
                | '\u{034F}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
                // Blank-looking, private or never-assigned: U+2800 (a blank
                // Braille pattern), the private-use areas, the noncharacters.
                | '\u{2800}'
                | '\u{E000}'..='\u{F8FF}'
                | '\u{F0000}'..='\u{10FFFF}'
                | '\u{FDD0}'..='\u{FDEF}'
        )
        || (u32::from(c) & 0xFFFE) == 0xFFFE
}

/// `value` into a summary: as it is when ASCII; otherwise between the
/// Unicode isolates FSI … PDI, so right-to-left text in it cannot reorder
/// the words and numbers around it (values never hold isolates: they are
/// refused).
fn isolate(out: &mut String, value: &str) {
    if value.is_ascii() {
        out.push_str(value);
    } else {
        out.push('\u{2068}');
        out.push_str(value);
        out.push('\u{2069}');
    }
}

/// [`Normalise::Exact`]: as sent, but nothing a page would not show as
/// sent — no control, format or invisible characters, and no whitespace
/// but single spaces between words (a page collapses the rest).
fn exact(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if raw.chars().any(is_forbidden_char) {
        return Err("must not hold control or invisible characters".to_owned());
    }
    let spaced = raw.starts_with(' ') || raw.ends_with(' ') || raw.contains("  ");
    if spaced || raw.chars().any(|c| c.is_whitespace() && c != ' ') {
        return Err(
            "must not start or end with spaces, nor hold other whitespace than single spaces"
                .to_owned(),
        );
    }
    Ok(raw.to_owned())
}

/// [`Normalise::Trimmed`].
fn trimmed(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    for word in raw.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    exact(&out)
}

/// [`Normalise::Amount`].
fn amount(raw: &str, scale: u8) -> Result<String, String> {
    let why = || {
        if scale == 0 {
            "not a whole amount (digits only, no decimals)".to_owned()
        } else {
            format!("not a decimal amount with at most {scale} decimals")
        }
    };
    let scale = usize::from(scale.min(MAX_SCALE));
    let (whole, fraction) = match raw.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (raw, None),
    };
    if !is_digits(whole, MAX_DIGITS) {
        return Err(why());
    }
    let mut out = drop_leading_zeros(whole).to_owned();
    match fraction {
        Some(fraction) if !is_digits(fraction, scale) => return Err(why()),
        Some(fraction) => {
            out.push('.');
            out.push_str(fraction);
            out.extend(std::iter::repeat_n('0', scale - fraction.len()));
        }
        None if scale > 0 => {
            out.push('.');
            out.extend(std::iter::repeat_n('0', scale));
        }
        None => {}
    }
    Ok(out)
}

/// Whether `s` is 1..=`max` ASCII digits.
fn is_digits(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// `digits` without leading zeros, `"0"` for zero.
fn drop_leading_zeros(digits: &str) -> &str {
    let kept = digits.trim_start_matches('0');
    if kept.is_empty() { "0" } else { kept }
}

/// [`Normalise::Iban`].
fn iban(raw: &str) -> Result<String, String> {
    let iban: String = raw
        .chars()
        .filter(|c| *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bytes = iban.as_bytes();
    let shaped = (15..=34).contains(&bytes.len())
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..4].iter().all(u8::is_ascii_digit)
        && bytes[4..]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !shaped {
        return Err("not an IBAN".to_owned());
    }
    // ISO 7064 MOD 97-10: the country and check digits moved to the end,
    // letters as 10..=35, the whole number taken mod 97 must be 1.
    let remainder = bytes[4..]
        .iter()
        .chain(&bytes[..4])
        .fold(0u32, |r, b| match b {
            b'0'..=b'9' => (r * 10 + u32::from(b - b'0')) % 97,
            _ => (r * 100 + u32::from(b - b'A') + 10) % 97,
        });
    if remainder != 1 {
        return Err("not a valid IBAN: its check digits do not match".to_owned());
    }
    Ok(iban)
}

/// [`Normalise::Code`].
fn code(raw: &str) -> Result<String, String> {
    let code = raw.trim();
    if !(1..=64).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("not a code of 1-64 ASCII letters and digits".to_owned());
    }
    Ok(code.to_ascii_uppercase())
}

/// [`Normalise::Integer`].
fn integer(raw: &str) -> Result<String, String> {
    if !is_digits(raw, MAX_DIGITS) {
        return Err("not a whole number of at most 18 digits".to_owned());
    }
    Ok(drop_leading_zeros(raw).to_owned())
}

/// Where a field is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The body: a url-encoded form or a JSON object.
    Body,
    /// The query string.
    Query,
}

/// What a request offers for its action: method, path (no query), query
/// (without `?`), content type and the buffered body.
///
/// Its `Debug` shows the lengths of the query and body, not their contents
/// (they hold the values, which may be personal).
///
/// ```
/// use stepup_http::ActionInput;
/// let input = ActionInput {
///     method: "POST",
///     path: "/transfer",
///     query: Some("account=1"),
///     content_type: Some(b"application/json"),
///     body: br#"{"amount":"5"}"#,
/// };
/// assert!(!format!("{input:?}").contains("amount"));
/// ```
#[derive(Clone, Copy)]
pub struct ActionInput<'a> {
    /// The method (`POST`).
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The `Content-Type` header's value.
    pub content_type: Option<&'a [u8]>,
    /// The body, buffered (at most [`ActionSpec::body_limit`] bytes).
    pub body: &'a [u8],
}

impl fmt::Debug for ActionInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionInput")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query_len", &self.query.map(str::len))
            .field(
                "content_type",
                &self.content_type.map(String::from_utf8_lossy),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// One declared field.
#[derive(Clone)]
struct Field {
    name: String,
    normalise: Normalise,
    source: Source,
    required: bool,
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("name", &self.name)
            .field("normalise", &self.normalise)
            .field("source", &self.source)
            .field("required", &self.required)
            .finish()
    }
}

/// A piece of a parsed summary template.
#[derive(Clone, Debug)]
enum Piece {
    /// Literal text.
    Text(String),
    /// The value of the field at this index (empty when absent).
    Field(usize),
}

/// How a declared spec writes its summary.
#[derive(Clone)]
enum Summary {
    /// `"<kind>: <name> <value>, …"`.
    Default,
    /// A parsed template.
    Template(Vec<Piece>),
    /// The application's closure.
    With(Arc<SummaryWith>),
}

impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Summary::Default => f.write_str("Default"),
            Summary::Template(pieces) => f.debug_tuple("Template").field(pieces).finish(),
            Summary::With(_) => f.write_str("With(..)"),
        }
    }
}

/// A spec built from declared fields.
#[derive(Debug)]
struct Declared {
    kind: String,
    fields: Vec<Field>,
    summary: Summary,
}

/// What an [`ActionSpec`] is.
#[derive(Clone)]
enum Inner {
    Declared(Arc<Declared>),
    Custom(Arc<CustomBuild>),
}

/// A route's declaration of the action its step-up is bound to: the type,
/// the fields (from the body or the query, each with its [`Normalise`]) and
/// the summary the person confirms.
///
/// ```
/// use stepup_http::{ActionInput, ActionSpec, Normalise};
///
/// let spec = ActionSpec::builder("payment")
///     .field("amount", Normalise::Amount { scale: 2 })
///     .optional_field("reference", Normalise::Trimmed)
///     .query_field("account", Normalise::Integer)
///     .build()?;
/// let input = ActionInput {
///     method: "POST",
///     path: "/transfer",
///     query: Some("account=0042"),
///     content_type: Some(b"application/json"),
///     body: br#"{"amount":12000,"comment":["ignored"]}"#,
/// };
/// let bound = spec.extract(&input)?;
/// assert_eq!(bound.get("amount"), Some("12000.00"));
/// assert_eq!(bound.get("account"), Some("42"));
/// assert_eq!(bound.get("reference"), None);
/// assert_eq!(bound.summary(), "payment: amount 12000.00, account 42");
/// assert_eq!(bound.action().route(), "/transfer");
///
/// // Floating point never carries an amount.
/// let float = ActionInput { body: br#"{"amount":12000.5}"#, ..input };
/// assert_eq!(
///     spec.extract(&float).unwrap_err().message(),
///     "send `amount` as a string, e.g. \"12000.50\""
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ActionSpec {
    inner: Inner,
    body_limit: usize,
}

impl fmt::Debug for ActionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("ActionSpec");
        match &self.inner {
            Inner::Declared(declared) => out
                .field("kind", &declared.kind)
                .field("fields", &declared.fields)
                .field("summary", &declared.summary),
            Inner::Custom(_) => out.field("custom", &".."),
        };
        out.field("body_limit", &self.body_limit).finish()
    }
}

impl ActionSpec {
    /// A spec of the action type `kind` (RFC 9396 `type`), to declare
    /// fields on.
    pub fn builder(kind: &str) -> ActionSpecBuilder {
        ActionSpecBuilder {
            kind: kind.to_owned(),
            fields: Vec::new(),
            summary: SummaryDecl::Default,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// The escape hatch: the application builds the action (and its
    /// summary) from the request itself. Its result is used as is; the
    /// digest is computed once, by [`BoundAction::new`].
    ///
    /// ```
    /// use stepup_core::Action;
    /// use stepup_http::{ActionInput, ActionRefusal, ActionSpec};
    ///
    /// let spec = ActionSpec::custom(|input: &ActionInput<'_>| {
    ///     let action = Action::new("delete", input.method, input.path)
    ///         .map_err(|e| ActionRefusal::new(None, e.to_string()))?;
    ///     Ok((action, format!("Delete {}", input.path)))
    /// });
    /// let input = ActionInput {
    ///     method: "DELETE",
    ///     path: "/accounts/7",
    ///     query: None,
    ///     content_type: None,
    ///     body: b"",
    /// };
    /// assert_eq!(spec.extract(&input)?.summary(), "Delete /accounts/7");
    /// # Ok::<(), ActionRefusal>(())
    /// ```
    pub fn custom<F>(build: F) -> ActionSpec
    where
        F: Fn(&ActionInput<'_>) -> Result<(Action, String), ActionRefusal> + Send + Sync + 'static,
    {
        ActionSpec {
            inner: Inner::Custom(Arc::new(build)),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// The most body bytes read (8 KiB unless
    /// [`max_body`](ActionSpecBuilder::max_body) says otherwise): an
    /// adapter answers a larger body with [`ActionRefusal::too_large`].
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Parses the request once: the bound action, or why there is none.
    pub fn extract(&self, input: &ActionInput<'_>) -> Result<BoundAction, ActionRefusal> {
        match &self.inner {
            Inner::Custom(build) => {
                let (action, summary) = build(input)?;
                Ok(BoundAction::new(action, summary))
            }
            Inner::Declared(declared) => declared.extract(input, self.body_limit),
        }
    }
}

impl Declared {
    fn extract(&self, input: &ActionInput<'_>, limit: usize) -> Result<BoundAction, ActionRefusal> {
        let mut action =
            Action::new(self.kind.as_str(), input.method, input.path).map_err(refused_action)?;
        let mut raw: Vec<Option<String>> = vec![None; self.fields.len()];
        if self.fields.iter().any(|f| f.source == Source::Body) {
            if input.body.len() > limit {
                return Err(ActionRefusal::too_large(limit));
            }
            match input.content_type {
                Some(t) if is_urlencoded_form(t) => {
                    read_form(input.body, &self.fields, Source::Body, &mut raw)?;
                }
                Some(t) if is_json(t) => read_json(input.body, &self.fields, &mut raw)?,
                _ => return Err(ActionRefusal::unsupported()),
            }
        }
        if self.fields.iter().any(|f| f.source == Source::Query) {
            let query = input.query.unwrap_or_default();
            read_form(query.as_bytes(), &self.fields, Source::Query, &mut raw)?;
        }

        let mut values: Vec<Option<String>> = Vec::with_capacity(self.fields.len());
        for (field, raw) in self.fields.iter().zip(raw) {
            let value = match raw {
                None if field.required => {
                    return Err(ActionRefusal::new(
                        Some(&field.name),
                        format!("`{}` is missing", field.name),
                    ));
                }
                None => None,
                Some(raw) => {
                    let value = field.normalise.apply(&raw).map_err(|why| {
                        ActionRefusal::new(Some(&field.name), format!("`{}`: {why}", field.name))
                    })?;
                    action = action
                        .with_detail(&field.name, value.as_str())
                        .map_err(refused_action)?;
                    Some(value)
                }
            };
            values.push(value);
        }

        let summary = match &self.summary {
            Summary::Template(pieces) => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(text) => out.push_str(text),
                        Piece::Field(at) => {
                            isolate(
                                &mut out,
                                values.get(*at).and_then(Option::as_deref).unwrap_or(""),
                            );
                        }
                    }
                }
                out
            }
            Summary::With(write) => write(&action),
            Summary::Default => {
                let parts: Vec<String> = self
                    .fields
                    .iter()
                    .zip(&values)
                    .filter_map(|(field, value)| {
                        value.as_ref().map(|v| {
                            let mut shown = format!("{} ", field.name);
                            isolate(&mut shown, v);
                            shown
                        })
                    })
                    .collect();
                format!("{}: {}", self.kind, parts.join(", "))
            }
        };
        Ok(BoundAction::new(action, summary))
    }
}

/// The refusal for an action that cannot be built.
fn refused_action(error: ActionError) -> ActionRefusal {
    match error {
        ActionError::TooLong(name) => {
            let message = format!(
                "`{name}`: longer than {} bytes",
                stepup_core::action::MAX_VALUE_LEN
            );
            ActionRefusal::new(Some(&name), message)
        }
        ActionError::Duplicate(name) => twice(&name),
        other => ActionRefusal::new(None, other.to_string()),
    }
}

/// The refusal for a declared field sent twice.
fn twice(name: &str) -> ActionRefusal {
    ActionRefusal::new(Some(name), format!("`{name}` is sent twice"))
}

/// Reads the declared fields of `source` from url-encoded `bytes` into
/// `raw` (indexed as `fields`): a declared name twice, or a declared value
/// that is not UTF-8 once decoded, is refused; other names are ignored.
fn read_form(
    bytes: &[u8],
    fields: &[Field],
    source: Source,
    raw: &mut [Option<String>],
) -> Result<(), ActionRefusal> {
    for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        let name = percent_decode(name);
        let Some(at) = fields
            .iter()
            .position(|f| f.source == source && f.name.as_bytes() == name.as_slice())
        else {
            continue;
        };
        let field = &fields[at].name;
        if raw[at].is_some() {
            return Err(twice(field));
        }
        let value = String::from_utf8(percent_decode(value))
            .map_err(|_| ActionRefusal::new(Some(field), format!("`{field}`: not valid UTF-8")))?;
        raw[at] = Some(value);
    }
    Ok(())
}

/// The WHATWG `application/x-www-form-urlencoded` decoding of one name or
/// value, as bytes: `+` is a space, `%` and two hex digits a byte, any
/// other `%` itself.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut at = 0;
    while at < input.len() {
        match input[at] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input
                    .get(at + 1..at + 3)
                    .and_then(|h| Some((hex_value(h[0])? << 4) | hex_value(h[1])?));
                if let Some(byte) = hex {
                    out.push(byte);
                    at += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        at += 1;
    }
    out
}

/// The value of one hex digit.
fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Reads the declared body fields from a JSON object into `raw`. The
/// whole body must be UTF-8 (RFC 8259): serde_json checks the strings it
/// reads, not those it skips.
fn read_json(
    body: &[u8],
    fields: &[Field],
    raw: &mut [Option<String>],
) -> Result<(), ActionRefusal> {
    let not_json = || ActionRefusal::new(None, "the body is not a JSON object");
    let body = std::str::from_utf8(body).map_err(|_| not_json())?;
    let mut refused = None;
    let mut reader = serde_json::Deserializer::from_str(body);
    let read = JsonBody {
        fields,
        raw,
        refused: &mut refused,
    }
    .deserialize(&mut reader)
    .and_then(|()| reader.end());
    match (read, refused) {
        (_, Some(refusal)) => Err(refusal),
        (Ok(()), None) => Ok(()),
        (Err(_), None) => Err(not_json()),
    }
}

/// The top-level JSON object: declared keys read (each once), others
/// skipped whatever their value. A field's refusal is left in `refused`
/// and the parse stopped with an error.
struct JsonBody<'s> {
    fields: &'s [Field],
    raw: &'s mut [Option<String>],
    refused: &'s mut Option<ActionRefusal>,
}

impl JsonBody<'_> {
    fn refuse<E: de::Error>(self, refusal: ActionRefusal) -> E {
        *self.refused = Some(refusal);
        E::custom("refused")
    }
}

impl<'de> DeserializeSeed<'de> for JsonBody<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for JsonBody<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let fields = self.fields;
        while let Some(key) = map.next_key_seed(JsonKey(fields))? {
            let Some(at) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let name = fields[at].name.as_str();
            if self.raw[at].is_some() {
                return Err(self.refuse(twice(name)));
            }
            let why = match map.next_value::<JsonValue>()? {
                JsonValue::Text(text) => {
                    self.raw[at] = Some(text);
                    continue;
                }
                JsonValue::Float => {
                    let message = format!("send `{name}` as a string, e.g. \"12000.50\"");
                    return Err(self.refuse(ActionRefusal::new(Some(name), message)));
                }
                JsonValue::Bool => "a boolean",
                JsonValue::Null => "null",
                JsonValue::Array => "an array",
                JsonValue::Object => "an object",
            };
            let message = format!("`{name}`: send a string or a whole number, not {why}");
            return Err(self.refuse(ActionRefusal::new(Some(name), message)));
        }
        Ok(())
    }
}

/// A JSON key: the index of the declared body field it names, if any.
#[derive(Clone, Copy)]
struct JsonKey<'s>(&'s [Field]);

impl<'de> DeserializeSeed<'de> for JsonKey<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for JsonKey<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .iter()
            .position(|f| f.source == Source::Body && f.name == v))
    }
}

/// A declared field's JSON value: its text, or what kind of value it was
/// instead. (A number is never parsed as anything but `u64`, `i64` or
/// `f64`: serde_json's `arbitrary_precision` is not enabled; were it, a
/// number would arrive as an object and be refused.)
enum JsonValue {
    Text(String),
    Float,
    Bool,
    Null,
    Array,
    Object,
}

impl<'de> de::Deserialize<'de> for JsonValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonValueVisitor)
    }
}

struct JsonValueVisitor;

impl<'de> Visitor<'de> for JsonValueVisitor {
    type Value = JsonValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonValue, E> {
        Ok(JsonValue::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<JsonValue, E> {
        Ok(JsonValue::Text(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonValue, E> {
        Ok(JsonValue::Text(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonValue, E> {
        Ok(JsonValue::Text(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<JsonValue, E> {
        Ok(JsonValue::Float)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<JsonValue, E> {
        Ok(JsonValue::Bool)
    }

    fn visit_unit<E: de::Error>(self) -> Result<JsonValue, E> {
        Ok(JsonValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<JsonValue, E> {
        Ok(JsonValue::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonValue, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(JsonValue::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonValue, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(JsonValue::Object)
    }
}

/// How the builder's summary was declared (the template parsed on
/// [`build`](ActionSpecBuilder::build)).
#[derive(Clone)]
enum SummaryDecl {
    Default,
    Template(String),
    With(Arc<SummaryWith>),
}

/// Declares an [`ActionSpec`]'s fields and summary; [`build`] checks them.
///
/// [`build`]: ActionSpecBuilder::build
///
/// ```
/// use stepup_http::{ActionSpec, Normalise, SpecError};
///
/// let spec = ActionSpec::builder("payment")
///     .field("amount", Normalise::Amount { scale: 2 })
///     .summary("Pay {amount} {{EUR}}")
///     .max_body(4096)
///     .build()?;
/// assert_eq!(spec.body_limit(), 4096);
///
/// let wrong = ActionSpec::builder("payment")
///     .field("amount", Normalise::Amount { scale: 2 })
///     .summary("Pay {amonut}")
///     .build();
/// assert_eq!(wrong.unwrap_err(), SpecError::UnknownSummaryField("amonut".into()));
/// # Ok::<(), SpecError>(())
/// ```
#[must_use]
#[derive(Clone)]
pub struct ActionSpecBuilder {
    kind: String,
    fields: Vec<Field>,
    summary: SummaryDecl,
    body_limit: usize,
}

impl fmt::Debug for ActionSpecBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionSpecBuilder")
            .field("kind", &self.kind)
            .field("fields", &self.fields)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl ActionSpecBuilder {
    fn push(mut self, name: &str, normalise: Normalise, source: Source, required: bool) -> Self {
        self.fields.push(Field {
            name: name.to_owned(),
            normalise,
            source,
            required,
        });
        self
    }

    /// A required field, read from the body (a url-encoded form or a JSON
    /// object).
    pub fn field(self, name: &str, normalise: Normalise) -> Self {
        self.push(name, normalise, Source::Body, true)
    }

    /// An optional field, read from the body: absent, the action has no
    /// such detail; present (even empty), it is normalised and refused
    /// like a required one.
    pub fn optional_field(self, name: &str, normalise: Normalise) -> Self {
        self.push(name, normalise, Source::Body, false)
    }

    /// A required field, read from the query string.
    pub fn query_field(self, name: &str, normalise: Normalise) -> Self {
        self.push(name, normalise, Source::Query, true)
    }

    /// The summary the person confirms: `{name}` is the field's canonical
    /// value (empty for an absent optional one), `{{` and `}}` are literal
    /// braces — `"Send {amount} {currency} to {payee}"`. Without one, the
    /// summary is `"<kind>: <name> <value>, …"` in declared order.
    pub fn summary(mut self, template: &str) -> Self {
        self.summary = SummaryDecl::Template(template.to_owned());
        self
    }

    /// The summary written by `f` from the built action (replacing any
    /// [`summary`](ActionSpecBuilder::summary) template).
    pub fn summary_with<F>(mut self, f: F) -> Self
    where
        F: Fn(&Action) -> String + Send + Sync + 'static,
    {
        self.summary = SummaryDecl::With(Arc::new(f));
        self
    }

    /// The most body bytes read (8 KiB by default).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The spec, once its declaration checks out: the kind is a valid
    /// action type, each field name is a valid detail name declared once,
    /// each amount's scale is at most 18, there are 1 to 32 fields, and a
    /// summary template names only declared fields with balanced braces.
    pub fn build(self) -> Result<ActionSpec, SpecError> {
        if Action::new(self.kind.as_str(), "POST", "/").is_err() {
            return Err(SpecError::Kind(self.kind));
        }
        for (at, field) in self.fields.iter().enumerate() {
            if !is_detail_name(&field.name) {
                return Err(SpecError::FieldName(field.name.clone()));
            }
            if self.fields[..at].iter().any(|f| f.name == field.name) {
                return Err(SpecError::DuplicateField(field.name.clone()));
            }
            if let Normalise::Amount { scale } = field.normalise
                && scale > MAX_SCALE
            {
                return Err(SpecError::Scale {
                    field: field.name.clone(),
                    scale,
                });
            }
        }
        if self.fields.is_empty() {
            return Err(SpecError::NoFields);
        }
        if self.fields.len() > stepup_core::action::MAX_DETAILS {
            return Err(SpecError::TooManyFields);
        }
        let summary = match self.summary {
            SummaryDecl::Default => Summary::Default,
            SummaryDecl::Template(template) => {
                Summary::Template(parse_template(&template, &self.fields)?)
            }
            SummaryDecl::With(write) => Summary::With(write),
        };
        Ok(ActionSpec {
            inner: Inner::Declared(Arc::new(Declared {
                kind: self.kind,
                fields: self.fields,
                summary,
            })),
            body_limit: self.body_limit,
        })
    }
}

/// Parses a summary template against the declared fields.
fn parse_template(template: &str, fields: &[Field]) -> Result<Vec<Piece>, SpecError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '}' => return Err(SpecError::UnbalancedBraces),
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => return Err(SpecError::UnbalancedBraces),
                        Some(c) => name.push(c),
                    }
                }
                let Some(at) = fields.iter().position(|f| f.name == name) else {
                    return Err(SpecError::UnknownSummaryField(name));
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Field(at));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Why an [`ActionSpecBuilder`] cannot build its spec.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    /// The action type is not 1-128 printable ASCII characters.
    Kind(String),
    /// A field name is not 1-64 of `[A-Za-z0-9_.-]`.
    FieldName(String),
    /// A field is declared twice.
    DuplicateField(String),
    /// An amount's scale is above 18.
    Scale {
        /// The field.
        field: String,
        /// Its scale.
        scale: u8,
    },
    /// No field is declared.
    NoFields,
    /// More fields than an action has details
    /// ([`MAX_DETAILS`](stepup_core::action::MAX_DETAILS)).
    TooManyFields,
    /// The summary template names a field that is not declared.
    UnknownSummaryField(String),
    /// The summary template has a `{` or `}` without its pair.
    UnbalancedBraces,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::Kind(kind) => write!(
                f,
                "the action type `{kind}` is not 1-128 printable ASCII characters"
            ),
            SpecError::FieldName(name) => write!(
                f,
                "`{name}` cannot name a field: use 1-64 of A-Z, a-z, 0-9, `_`, `.` and `-`"
            ),
            SpecError::DuplicateField(name) => write!(f, "the field `{name}` is declared twice"),
            SpecError::Scale { field, scale } => write!(
                f,
                "the amount `{field}` has {scale} decimals: at most 18 are supported"
            ),
            SpecError::NoFields => f.write_str("an action spec declares at least one field"),
            SpecError::TooManyFields => f.write_str("an action spec declares at most 32 fields"),
            SpecError::UnknownSummaryField(name) => write!(
                f,
                "the summary names `{name}`, which is not a declared field"
            ),
            SpecError::UnbalancedBraces => f.write_str(
                "the summary has a `{` or `}` without its pair (write `{{` and `}}` for literal braces)",
            ),
        }
    }
}

impl std::error::Error for SpecError {}

/// Why a request's action cannot be read: `400` (a field missing, sent
/// twice or not canonicalisable, a body that is no JSON object), `415` (a
/// body that is neither a url-encoded form nor JSON) or `413` (a body over
/// the limit, which the adapter reports with
/// [`too_large`](ActionRefusal::too_large)). Its message names the field
/// and never echoes the value.
///
/// ```
/// use stepup_http::ActionRefusal;
///
/// let refusal = ActionRefusal::new(Some("amount"), "`amount` is sent twice");
/// let reply = refusal.reply();
/// assert_eq!(reply.status(), 400);
/// assert_eq!(reply.header_value("content-type"), Some("application/problem+json"));
/// assert_eq!(
///     reply.body(),
///     r#"{"type":"urn:stepup:problem:action-refused","title":"The request cannot be bound as sent","status":400,"detail":"`amount` is sent twice","field":"amount"}"#
/// );
/// assert_eq!(ActionRefusal::too_large(8192).status(), 413);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRefusal {
    status: u16,
    field: Option<String>,
    message: String,
}

impl ActionRefusal {
    /// A `400` about `field` (if one is to blame), with `message` shown to
    /// the client as is: name the field in it, never its value.
    pub fn new(field: Option<&str>, message: impl Into<String>) -> ActionRefusal {
        ActionRefusal {
            status: 400,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// A `413`: the body is larger than `limit` bytes.
    pub fn too_large(limit: usize) -> ActionRefusal {
        ActionRefusal {
            status: 413,
            field: None,
            message: format!("the body is larger than {limit} bytes"),
        }
    }

    /// A `415`: the body is neither a url-encoded form nor JSON.
    fn unsupported() -> ActionRefusal {
        ActionRefusal {
            status: 415,
            field: None,
            message: "send the form url-encoded or as JSON".to_owned(),
        }
    }

    /// The status code: `400`, `413` or `415`.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The field to blame, if one is.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong ("`amount` is sent twice", "`to` is missing").
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The answer: an RFC 9457 body (`type`
    /// `urn:stepup:problem:action-refused`, the message as `detail`, the
    /// field as `field`), `application/problem+json`,
    /// `Cache-Control: no-store`.
    pub fn reply(&self) -> Reply {
        #[derive(serde::Serialize)]
        struct Problem<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            title: &'a str,
            status: u16,
            detail: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
        }
        let body = serde_json::to_string(&Problem {
            kind: PROBLEM_TYPE,
            title: PROBLEM_TITLE,
            status: self.status,
            detail: &self.message,
            field: self.field.as_deref(),
        })
        .unwrap_or_default();
        Reply::new(self.status, Some(PROBLEM_CONTENT_TYPE), body).no_store()
    }
}

impl fmt::Display for ActionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ActionRefusal {}

/// The action a request was bound to, parsed once: the handler uses these
/// values and never parses the body again. Its `Debug` shows the action's
/// type, method, route and detail names — not the values, the summary or
/// the digest.
///
/// ```
/// use stepup_core::Action;
/// use stepup_http::BoundAction;
///
/// let action = Action::new("payment", "POST", "/transfer")?.with_detail("amount", "25.00")?;
/// let bound = BoundAction::new(action.clone(), "Send 25.00".to_owned());
/// assert_eq!(bound.get("amount"), Some("25.00"));
/// assert_eq!(bound.digest(), action.digest());
/// assert!(!format!("{bound:?}").contains("25.00"));
/// # Ok::<(), stepup_core::ActionError>(())
/// ```
#[derive(Clone)]
pub struct BoundAction {
    action: Action,
    summary: String,
    digest: ActionDigest,
}

impl BoundAction {
    /// The bound `action` with the `summary` the person confirms; the
    /// digest is computed here, once.
    pub fn new(action: Action, summary: String) -> BoundAction {
        let digest = action.digest();
        BoundAction {
            action,
            summary,
            digest,
        }
    }

    /// The action.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// The canonical value of the detail `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.action.detail(name)
    }

    /// What the person confirms ("Send 25.00 EUR to …"); escape it where
    /// shown.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The action's digest.
    pub fn digest(&self) -> ActionDigest {
        self.digest
    }
}

impl fmt::Debug for BoundAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundAction")
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &[u8] = b"application/x-www-form-urlencoded";
    const JSON: &[u8] = b"application/json; charset=utf-8";

    fn input<'a>(content_type: &'a [u8], body: &'a [u8]) -> ActionInput<'a> {
        ActionInput {
            method: "POST",
            path: "/transfer",
            query: None,
            content_type: Some(content_type),
            body,
        }
    }

    /// Right-to-left text in a value cannot reorder the summary around it:
    /// non-ASCII values are shown between isolates; ASCII ones as they are.
    #[test]
    fn non_ascii_values_are_isolated_in_summaries() {
        let spec = ActionSpec::builder("payment")
            .field("amount", Normalise::Amount { scale: 2 })
            .field("to", Normalise::Trimmed)
            .summary("Send {amount} to {to}")
            .build()
            .unwrap();
        let hebrew = "to=%D7%93%D7%A0%D7%99&amount=12";
        let bound = spec.extract(&input(FORM, hebrew.as_bytes())).unwrap();
        assert_eq!(
            bound.summary(),
            "Send 12.00 to \u{2068}\u{5d3}\u{5e0}\u{5d9}\u{2069}"
        );
        let ascii = spec.extract(&input(FORM, b"to=bob&amount=12")).unwrap();
        assert_eq!(ascii.summary(), "Send 12.00 to bob");
    }

    fn one(normalise: Normalise) -> ActionSpec {
        ActionSpec::builder("t")
            .field("v", normalise)
            .build()
            .unwrap()
    }

    /// The canonical value of `raw` under `normalise` (sent in a form).
    fn norm(normalise: Normalise, raw: &str) -> Result<String, String> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("v", raw)
            .finish();
        one(normalise)
            .extract(&input(FORM, body.as_bytes()))
            .map(|b| b.get("v").unwrap().to_owned())
            .map_err(|r| {
                assert_eq!((r.status(), r.field()), (400, Some("v")));
                r.message().to_owned()
            })
    }

    fn payment() -> ActionSpec {
        ActionSpec::builder("payment")
            .field("amount", Normalise::Amount { scale: 2 })
            .field("currency", Normalise::Code)
            .field("to", Normalise::Iban)
            .summary("Send {amount} {currency} to {to}")
            .build()
            .unwrap()
    }

    #[test]
    fn exact_keeps_the_value_as_sent() {
        assert_eq!(norm(Normalise::Exact, "a b").unwrap(), "a b");
        // A page collapses spaces and shows other whitespace as a space:
        // "bob " would read "bob".
        for spaced in [
            " a",
            "a ",
            "a  b",
            "a\u{A0}b",
            "a\u{3000}b",
            "a\u{2028}b",
            "a\u{2029}b",
        ] {
            assert!(norm(Normalise::Exact, spaced).is_err(), "{spaced:?}");
        }
        for unseen in [
            "\u{2800}",
            "a\u{E000}",
            "\u{F0000}",
            "\u{FDD0}",
            "\u{FFFE}",
            "\u{1FFFF}",
        ] {
            assert!(norm(Normalise::Exact, unseen).is_err(), "{unseen:?}");
        }
        assert_eq!(norm(Normalise::Exact, "Zoë €").unwrap(), "Zoë €");
        assert_eq!(
            norm(Normalise::Exact, "").unwrap_err(),
            "`v`: must not be empty"
        );
        for bad in [
            "a\nb",
            "a\tb",
            "\u{0}",
            "a\u{7f}",
            "\u{85}",
            "x\u{202E}y",
            "\u{2066}",
            // Invisible: the page would show "bob".
            "bo\u{200B}b",
            "bo\u{2060}b",
            "bo\u{00AD}b",
            "\u{FEFF}bob",
            "bob\u{E0041}",
            "bo\u{FE0F}b",
            "b\u{115F}ob",
        ] {
            assert_eq!(
                norm(Normalise::Exact, bad).unwrap_err(),
                "`v`: must not hold control or invisible characters",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn trimmed_collapses_whitespace() {
        assert_eq!(
            norm(Normalise::Trimmed, "  rent \r\n\t and   food ").unwrap(),
            "rent and food"
        );
        assert_eq!(norm(Normalise::Trimmed, "x").unwrap(), "x");
        assert_eq!(
            norm(Normalise::Trimmed, "").unwrap_err(),
            "`v`: must not be empty"
        );
        assert_eq!(
            norm(Normalise::Trimmed, " \n ").unwrap_err(),
            "`v`: must not be empty"
        );
        assert_eq!(
            norm(Normalise::Trimmed, "a\u{1b}[2Jb").unwrap_err(),
            "`v`: must not hold control or invisible characters"
        );
        assert!(norm(Normalise::Trimmed, "a \u{202E} b").is_err());
        assert!(norm(Normalise::Trimmed, "bo\u{200B}b").is_err());
        // Combining marks are visible ("bób"), and kept as sent.
        assert_eq!(
            norm(Normalise::Trimmed, "bo\u{301}b").unwrap(),
            "bo\u{301}b"
        );
    }

    #[test]
    fn amounts_are_written_with_their_scale() {
        let two = || Normalise::Amount { scale: 2 };
        for (raw, want) in [
            ("25", "25.00"),
            ("007.5", "7.50"),
            ("0", "0.00"),
            ("000", "0.00"),
            ("0.05", "0.05"),
            ("12000.50", "12000.50"),
            ("999999999999999999.99", "999999999999999999.99"),
        ] {
            assert_eq!(norm(two(), raw).unwrap(), want, "{raw}");
        }
        let why = "`v`: not a decimal amount with at most 2 decimals";
        for raw in [
            "",
            "-5",
            "+5",
            "1e3",
            "1E3",
            "1,000",
            "1 000",
            " 5",
            "5 ",
            ".5",
            "5.",
            "5.001",
            "1.2.3",
            "١٢",
            "５",
            "0x10",
            "1000000000000000000",
            "NaN",
            "5.-1",
        ] {
            assert_eq!(norm(two(), raw).unwrap_err(), why, "{raw:?}");
        }
        let whole = || Normalise::Amount { scale: 0 };
        assert_eq!(norm(whole(), "012000").unwrap(), "12000");
        assert_eq!(
            norm(whole(), "12000.0").unwrap_err(),
            "`v`: not a whole amount (digits only, no decimals)"
        );
        let three = || Normalise::Amount { scale: 3 };
        assert_eq!(norm(three(), "1.5").unwrap(), "1.500");
        assert_eq!(norm(three(), "1.125").unwrap(), "1.125");
        let most = Normalise::Amount { scale: 18 };
        assert_eq!(norm(most, "1.5").unwrap(), format!("1.5{}", "0".repeat(17)));
    }

    #[test]
    fn ibans_are_checked() {
        assert_eq!(
            norm(Normalise::Iban, "GB82 WEST 1234 5698 7654 32").unwrap(),
            "GB82WEST12345698765432"
        );
        assert_eq!(
            norm(Normalise::Iban, "de89370400440532013000").unwrap(),
            "DE89370400440532013000"
        );
        assert_eq!(
            norm(Normalise::Iban, "GB83 WEST 1234 5698 7654 32").unwrap_err(),
            "`v`: not a valid IBAN: its check digits do not match"
        );
        assert_eq!(
            norm(Normalise::Iban, "GB82WEST12345698765433").unwrap_err(),
            "`v`: not a valid IBAN: its check digits do not match"
        );
        for bad in [
            "",
            "GB82",
            "GB82-WEST-1234-5698-7654-32",
            "1282WEST12345698765432",
            "GBX2WEST12345698765432",
            "GB82\tWEST12345698765432",
            "GB82WEST1234569876543212345678901234",
            "GB82WËST12345698765432",
        ] {
            assert_eq!(
                norm(Normalise::Iban, bad).unwrap_err(),
                "`v`: not an IBAN",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn codes_and_integers() {
        assert_eq!(norm(Normalise::Code, "eur").unwrap(), "EUR");
        assert_eq!(norm(Normalise::Code, " Eur1 \n").unwrap(), "EUR1");
        assert_eq!(
            norm(Normalise::Code, &"a".repeat(64)).unwrap(),
            "A".repeat(64)
        );
        for bad in ["", " ", "e ur", "eu-r", "€", "a".repeat(65).as_str()] {
            assert_eq!(
                norm(Normalise::Code, bad).unwrap_err(),
                "`v`: not a code of 1-64 ASCII letters and digits",
                "{bad:?}"
            );
        }
        assert_eq!(norm(Normalise::Integer, "0").unwrap(), "0");
        assert_eq!(norm(Normalise::Integer, "0042").unwrap(), "42");
        assert_eq!(
            norm(Normalise::Integer, "999999999999999999").unwrap(),
            "999999999999999999"
        );
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            " 1",
            "1e2",
            "１",
            "1000000000000000000",
        ] {
            assert_eq!(
                norm(Normalise::Integer, bad).unwrap_err(),
                "`v`: not a whole number of at most 18 digits",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn custom_normalisers_decide() {
        let upper = || {
            Normalise::Custom(Arc::new(|raw: &str| {
                if raw.starts_with("acct-") {
                    Ok(raw.to_uppercase())
                } else {
                    Err("not an account reference".to_owned())
                }
            }))
        };
        assert_eq!(norm(upper(), "acct-7").unwrap(), "ACCT-7");
        assert_eq!(
            norm(upper(), "7").unwrap_err(),
            "`v`: not an account reference"
        );
        assert_eq!(format!("{:?}", upper()), "Custom(..)");
    }

    #[test]
    fn a_form_binds_its_fields() {
        let bound = payment()
            .extract(&input(
                FORM,
                b"currency=eur&to=GB82+WEST+1234+5698+7654+32&amount=25&csrf=x&csrf=y",
            ))
            .unwrap();
        assert_eq!(bound.summary(), "Send 25.00 EUR to GB82WEST12345698765432");
        assert_eq!(bound.get("currency"), Some("EUR"));
        assert_eq!(bound.get("csrf"), None);
        let action = bound.action();
        assert_eq!(
            (action.kind(), action.method(), action.route()),
            ("payment", "POST", "/transfer")
        );
        assert_eq!(bound.digest(), action.digest());
    }

    #[test]
    fn a_repeated_form_field_is_refused() {
        let refusal = payment()
            .extract(&input(
                FORM,
                b"amount=1&currency=EUR&to=GB82WEST12345698765432&amount=900",
            ))
            .unwrap_err();
        assert_eq!(refusal.status(), 400);
        assert_eq!(refusal.field(), Some("amount"));
        assert_eq!(refusal.message(), "`amount` is sent twice");
        // Also when encoded differently, or empty the first time.
        for body in [
            &b"amount=1&%61mount=900"[..],
            b"amount&amount=1",
            b"amount=1&amount",
        ] {
            assert_eq!(
                payment().extract(&input(FORM, body)).unwrap_err().field(),
                Some("amount")
            );
        }
    }

    #[test]
    fn form_values_are_decoded_strictly() {
        let spec = one(Normalise::Exact);
        let got = |body: &[u8]| {
            spec.extract(&input(FORM, body))
                .map(|b| b.get("v").unwrap().to_owned())
        };
        assert_eq!(got(b"v=rent+%26+food").unwrap(), "rent & food");
        assert_eq!(got(b"v=%E2%82%AC").unwrap(), "€");
        assert_eq!(got(b"v=100%").unwrap(), "100%");
        assert_eq!(got(b"v=%zz%4").unwrap(), "%zz%4");
        assert_eq!(got(b"&&v=a=b&").unwrap(), "a=b");
        // Decoded bytes that are not UTF-8 are refused, never replaced.
        let refusal = got(b"v=%FF").unwrap_err();
        assert_eq!(
            (refusal.field(), refusal.message()),
            (Some("v"), "`v`: not valid UTF-8")
        );
        assert!(got(b"v=%C3").is_err());
        // A literal U+FFFD sent as such is text like any other.
        assert_eq!(got("v=\u{FFFD}".as_bytes()).unwrap(), "\u{FFFD}");
        // Undeclared fields may be anything.
        assert_eq!(got(b"x=%FF&x=1&v=a").unwrap(), "a");
    }

    #[test]
    fn decoding_agrees_with_form_urlencoded_on_utf8() {
        for body in [
            &b"a=1&b=2"[..],
            b"a+b=c+d",
            b"%41%2B%2b=%e2%82%ac%20",
            b"%=%%&%4=%g1&%%41",
            b"&&=&a&=b&a==c",
            "€=ü+%C3%BC".as_bytes(),
        ] {
            let ours: Vec<(String, String)> = body
                .split(|b| *b == b'&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let at = pair.iter().position(|b| *b == b'=').unwrap_or(pair.len());
                    let value = pair.get(at + 1..).unwrap_or_default();
                    let text = |b: &[u8]| String::from_utf8(percent_decode(b)).unwrap();
                    (text(&pair[..at]), text(value))
                })
                .collect();
            let theirs: Vec<(String, String)> = form_urlencoded::parse(body)
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn json_binds_strings_and_integers() {
        let bound = payment()
            .extract(&input(
                JSON,
                br#" {"amount": 25, "currency": "eur", "to": "GB82 WEST 1234 5698 7654 32", "meta": {"a": [1.5, null]}, "n": 1e300} "#,
            ))
            .unwrap();
        assert_eq!(bound.get("amount"), Some("25.00"));
        assert_eq!(bound.summary(), "Send 25.00 EUR to GB82WEST12345698765432");
        // Escapes decode as in any JSON reader.
        let spec = one(Normalise::Exact);
        let bound = spec
            .extract(&input(JSON, br#"{"\u0076":"\u20ac"}"#))
            .unwrap();
        assert_eq!(bound.get("v"), Some("€"));
        // A negative integer reaches the normaliser, which refuses the sign.
        let refusal = one(Normalise::Integer)
            .extract(&input(JSON, br#"{"v":-5}"#))
            .unwrap_err();
        assert_eq!(
            refusal.message(),
            "`v`: not a whole number of at most 18 digits"
        );
    }

    #[test]
    fn a_repeated_json_key_is_refused() {
        for body in [
            &br#"{"amount":"1","currency":"EUR","to":"GB82WEST12345698765432","amount":"900"}"#[..],
            br#"{"amount":"1","amount":1}"#,
            br#"{"amount":"1","\u0061mount":"900"}"#,
        ] {
            let refusal = payment().extract(&input(JSON, body)).unwrap_err();
            assert_eq!((refusal.status(), refusal.field()), (400, Some("amount")));
            assert_eq!(refusal.message(), "`amount` is sent twice");
        }
        // An undeclared key twice is nobody's business.
        let spec = one(Normalise::Exact);
        assert!(
            spec.extract(&input(JSON, br#"{"x":1,"x":2,"v":"a"}"#))
                .is_ok()
        );
    }

    #[test]
    fn json_numbers_with_fractions_and_other_kinds_are_refused() {
        let spec = payment();
        for number in [
            "12000.5",
            "1e3",
            "1E-2",
            "-0",
            "123456789012345678901234567890",
        ] {
            let body = format!(r#"{{"amount":{number},"currency":"EUR","to":"x"}}"#);
            let refusal = spec.extract(&input(JSON, body.as_bytes())).unwrap_err();
            assert_eq!(refusal.field(), Some("amount"), "{number}");
            assert_eq!(
                refusal.message(),
                "send `amount` as a string, e.g. \"12000.50\""
            );
        }
        for (value, kind) in [
            ("true", "a boolean"),
            ("null", "null"),
            (r#"["1"]"#, "an array"),
            (r#"{"value":"1"}"#, "an object"),
        ] {
            let body = format!(r#"{{"amount":{value}}}"#);
            let refusal = spec.extract(&input(JSON, body.as_bytes())).unwrap_err();
            assert_eq!(refusal.field(), Some("amount"));
            assert_eq!(
                refusal.message(),
                format!("`amount`: send a string or a whole number, not {kind}")
            );
        }
    }

    #[test]
    fn a_body_that_is_no_json_object_is_refused() {
        let spec = one(Normalise::Exact);
        for body in [
            &b""[..],
            b"[]",
            b"\"v\"",
            b"{\"v\":\"a\"",
            b"{\"v\":\"a\"} x",
            b"{\"v\":\"a\",}",
            b"{\"x\":\"\xff\",\"v\":\"a\"}",
        ] {
            let refusal = spec.extract(&input(JSON, body)).unwrap_err();
            assert_eq!(refusal.status(), 400);
            assert_eq!(refusal.field(), None);
            assert_eq!(refusal.message(), "the body is not a JSON object");
        }
        // Deep nesting never recurses deeply: serde_json skips ignored
        // members without recursion (and within the body limit), and a
        // declared field's nested value is skipped the same way, then
        // refused.
        let nest = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let ignored = format!(r#"{{"x":{},"v":"a"}}"#, nest(4_000));
        assert_eq!(
            spec.extract(&input(JSON, ignored.as_bytes()))
                .unwrap()
                .get("v"),
            Some("a")
        );
        let declared = format!(r#"{{"v":{}}}"#, nest(4_000));
        assert_eq!(
            spec.extract(&input(JSON, declared.as_bytes()))
                .unwrap_err()
                .message(),
            "`v`: send a string or a whole number, not an array"
        );
        let open = "[".repeat(8 * 1024 - 6);
        let unclosed = format!(r#"{{"x":{open}"#);
        assert_eq!(
            spec.extract(&input(JSON, unclosed.as_bytes()))
                .unwrap_err()
                .message(),
            "the body is not a JSON object"
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let refusal = payment()
            .extract(&input(FORM, b"amount=1&currency=EUR"))
            .unwrap_err();
        assert_eq!((refusal.status(), refusal.field()), (400, Some("to")));
        assert_eq!(refusal.message(), "`to` is missing");
        assert_eq!(refusal.to_string(), "`to` is missing");
        let refusal = payment().extract(&input(JSON, b"{}")).unwrap_err();
        assert_eq!(refusal.message(), "`amount` is missing");
    }

    #[test]
    fn other_content_types_are_unsupported() {
        for content_type in [
            &b"text/plain"[..],
            b"multipart/form-data; boundary=x",
            b"application/jsonx",
        ] {
            let refusal = payment()
                .extract(&input(content_type, b"amount=1"))
                .unwrap_err();
            assert_eq!(refusal.status(), 415);
            assert_eq!(refusal.message(), "send the form url-encoded or as JSON");
            assert_eq!(refusal.reply().status(), 415);
        }
        let none = ActionInput {
            content_type: None,
            ..input(FORM, b"amount=1")
        };
        assert_eq!(payment().extract(&none).unwrap_err().status(), 415);
    }

    #[test]
    fn a_body_over_the_limit_is_too_large() {
        let spec = ActionSpec::builder("t")
            .field("v", Normalise::Exact)
            .max_body(8)
            .build()
            .unwrap();
        assert_eq!(spec.body_limit(), 8);
        assert_eq!(one(Normalise::Exact).body_limit(), 8 * 1024);
        let refusal = spec.extract(&input(FORM, b"v=123456789")).unwrap_err();
        assert_eq!(
            (refusal.status(), refusal.message()),
            (413, "the body is larger than 8 bytes")
        );
        assert!(spec.extract(&input(FORM, b"v=123456")).is_ok());
    }

    #[test]
    fn query_fields_come_from_the_query() {
        let spec = ActionSpec::builder("export")
            .query_field("account", Normalise::Integer)
            .build()
            .unwrap();
        let get = |query: Option<&'static str>| ActionInput {
            method: "GET",
            path: "/export",
            query,
            content_type: None,
            body: b"account=9",
        };
        let bound = spec.extract(&get(Some("format=csv&account=007"))).unwrap();
        assert_eq!(bound.get("account"), Some("7"));
        assert_eq!(bound.action().method(), "GET");
        assert_eq!(bound.action().route(), "/export");
        assert_eq!(
            spec.extract(&get(None)).unwrap_err().message(),
            "`account` is missing"
        );
        assert_eq!(
            spec.extract(&get(Some("account=1&account=2")))
                .unwrap_err()
                .message(),
            "`account` is sent twice"
        );

        // Body and query each give only their own fields.
        let both = ActionSpec::builder("payment")
            .field("amount", Normalise::Integer)
            .query_field("account", Normalise::Integer)
            .build()
            .unwrap();
        let request = ActionInput {
            query: Some("account=1&amount=5"),
            ..input(FORM, b"amount=2&account=9")
        };
        let bound = both.extract(&request).unwrap();
        assert_eq!(
            (bound.get("amount"), bound.get("account")),
            (Some("2"), Some("1"))
        );
    }

    #[test]
    fn optional_fields_may_be_absent_but_not_empty() {
        let spec = ActionSpec::builder("payment")
            .field("amount", Normalise::Integer)
            .optional_field("reference", Normalise::Trimmed)
            .summary("Pay {amount} ({reference})")
            .build()
            .unwrap();
        let absent = spec.extract(&input(FORM, b"amount=5")).unwrap();
        assert_eq!(absent.get("reference"), None);
        assert_eq!(absent.action().details().len(), 1);
        assert_eq!(absent.summary(), "Pay 5 ()");
        let present = spec
            .extract(&input(FORM, b"amount=5&reference=+rent+"))
            .unwrap();
        assert_eq!(present.summary(), "Pay 5 (rent)");
        assert_ne!(absent.digest(), present.digest());
        for body in [
            &b"amount=5&reference="[..],
            b"amount=5&reference=+",
            b"amount=5&reference",
        ] {
            let refusal = spec.extract(&input(FORM, body)).unwrap_err();
            assert_eq!(refusal.message(), "`reference`: must not be empty");
        }
        let refusal = spec
            .extract(&input(JSON, br#"{"amount":5,"reference":""}"#))
            .unwrap_err();
        assert_eq!(refusal.field(), Some("reference"));
    }

    #[test]
    fn summaries() {
        // A template with literal braces.
        let spec = ActionSpec::builder("payment")
            .field("amount", Normalise::Integer)
            .summary("{{{amount}}} {{literal}} }}{amount}{{")
            .build()
            .unwrap();
        let bound = spec.extract(&input(FORM, b"amount=05")).unwrap();
        assert_eq!(bound.summary(), "{5} {literal} }5{");

        // Written by the application from the action.
        let spec = ActionSpec::builder("payment")
            .field("amount", Normalise::Integer)
            .summary("ignored {amount}")
            .summary_with(|action: &Action| {
                format!(
                    "{} {} on {}",
                    action.kind(),
                    action.detail("amount").unwrap_or("?"),
                    action.route()
                )
            })
            .build()
            .unwrap();
        let bound = spec.extract(&input(FORM, b"amount=5")).unwrap();
        assert_eq!(bound.summary(), "payment 5 on /transfer");

        // The default, in declared order, absent optional fields left out.
        let spec = ActionSpec::builder("payment")
            .field("to", Normalise::Trimmed)
            .optional_field("note", Normalise::Trimmed)
            .field("amount", Normalise::Amount { scale: 2 })
            .build()
            .unwrap();
        let bound = spec.extract(&input(FORM, b"amount=5&to=bob")).unwrap();
        assert_eq!(bound.summary(), "payment: to bob, amount 5.00");
        let bound = spec
            .extract(&input(FORM, b"amount=5&to=bob&note=hi"))
            .unwrap();
        assert_eq!(bound.summary(), "payment: to bob, note hi, amount 5.00");
    }

    #[test]
    fn custom_specs_build_the_action() {
        let spec = ActionSpec::custom(|input: &ActionInput<'_>| {
            let form = crate::FormFields::parse(input.body);
            let amount = form
                .get("amount")
                .ok_or_else(|| ActionRefusal::new(Some("amount"), "`amount` is missing"))?;
            let action = Action::new("payment", input.method, input.path)
                .and_then(|a| a.with_detail("amount", amount))
                .map_err(|e| ActionRefusal::new(None, e.to_string()))?;
            Ok((action, format!("Pay {amount}")))
        });
        assert_eq!(spec.body_limit(), 8 * 1024);
        let bound = spec.extract(&input(FORM, b"amount=5")).unwrap();
        assert_eq!(bound.summary(), "Pay 5");
        let want = Action::new("payment", "POST", "/transfer")
            .and_then(|a| a.with_detail("amount", "5"))
            .unwrap();
        assert_eq!(bound.action(), &want);
        assert_eq!(bound.digest(), want.digest());
        let refusal = spec.extract(&input(FORM, b"")).unwrap_err();
        assert_eq!((refusal.status(), refusal.field()), (400, Some("amount")));
        assert!(format!("{spec:?}").contains("custom"));
    }

    #[test]
    fn build_checks_the_declaration() {
        let builder = || ActionSpec::builder("payment").field("amount", Normalise::Integer);
        assert_eq!(
            builder().summary("Pay {amonut}").build().unwrap_err(),
            SpecError::UnknownSummaryField("amonut".into())
        );
        assert_eq!(
            builder().summary("Pay {}").build().unwrap_err(),
            SpecError::UnknownSummaryField(String::new())
        );
        for unbalanced in [
            "Pay {amount",
            "Pay amount}",
            "Pay {am{ount}",
            "{amount}}",
            "{",
        ] {
            assert_eq!(
                builder().summary(unbalanced).build().unwrap_err(),
                SpecError::UnbalancedBraces,
                "{unbalanced}"
            );
        }
        assert_eq!(
            builder()
                .field("amount", Normalise::Exact)
                .build()
                .unwrap_err(),
            SpecError::DuplicateField("amount".into())
        );
        assert_eq!(
            builder()
                .query_field("amount", Normalise::Exact)
                .build()
                .unwrap_err(),
            SpecError::DuplicateField("amount".into())
        );
        for bad in ["", "a b", "a=b", "ü", "a".repeat(65).as_str()] {
            assert_eq!(
                builder().field(bad, Normalise::Exact).build().unwrap_err(),
                SpecError::FieldName(bad.to_owned())
            );
        }
        for bad in ["", "two words", "\u{e9}t\u{e9}", "k".repeat(129).as_str()] {
            assert_eq!(
                ActionSpec::builder(bad)
                    .field("a", Normalise::Exact)
                    .build()
                    .unwrap_err(),
                SpecError::Kind(bad.to_owned())
            );
        }
        assert_eq!(
            ActionSpec::builder("payment").build().unwrap_err(),
            SpecError::NoFields
        );
        assert_eq!(
            ActionSpec::builder("payment")
                .summary("Pay")
                .build()
                .unwrap_err(),
            SpecError::NoFields
        );
        assert_eq!(
            ActionSpec::builder("p")
                .field("a", Normalise::Amount { scale: 19 })
                .build()
                .unwrap_err(),
            SpecError::Scale {
                field: "a".into(),
                scale: 19
            }
        );
        let mut many = ActionSpec::builder("p");
        for i in 0..33 {
            many = many.field(&format!("f{i}"), Normalise::Exact);
        }
        assert_eq!(many.build().unwrap_err(), SpecError::TooManyFields);
        assert_eq!(
            SpecError::UnknownSummaryField("amonut".into()).to_string(),
            "the summary names `amonut`, which is not a declared field"
        );
        assert!(
            SpecError::FieldName("a b".into())
                .to_string()
                .contains("`a b`")
        );
    }

    #[test]
    fn form_and_json_bind_the_same_digest() {
        let spec = payment();
        let form = spec
            .extract(&input(
                FORM,
                b"amount=12000.5&currency=eur&to=GB82+WEST+1234+5698+7654+32",
            ))
            .unwrap();
        let json = spec
            .extract(&input(
                JSON,
                br#"{"to":"GB82WEST12345698765432","currency":"EUR","amount":"12000.50"}"#,
            ))
            .unwrap();
        assert_eq!(form.digest(), json.digest());
        assert_eq!(form.action(), json.action());
        assert_eq!(form.summary(), json.summary());
        let other = spec
            .extract(&input(
                JSON,
                br#"{"to":"GB82WEST12345698765432","currency":"EUR","amount":"12000.51"}"#,
            ))
            .unwrap();
        assert_ne!(form.digest(), other.digest());
        // The route and method are bound too.
        let put = spec
            .extract(&ActionInput {
                method: "PUT",
                ..input(
                    FORM,
                    b"amount=12000.5&currency=eur&to=GB82WEST12345698765432",
                )
            })
            .unwrap();
        assert_ne!(form.digest(), put.digest());
    }

    #[test]
    fn an_action_that_cannot_be_built_is_refused() {
        let lower = ActionInput {
            method: "post",
            ..input(FORM, b"v=a")
        };
        let refusal = one(Normalise::Exact).extract(&lower).unwrap_err();
        assert_eq!((refusal.status(), refusal.field()), (400, None));
        let long = format!("v={}", "a".repeat(1025));
        let refusal = one(Normalise::Exact)
            .extract(&input(FORM, long.as_bytes()))
            .unwrap_err();
        assert_eq!(
            (refusal.field(), refusal.message()),
            (Some("v"), "`v`: longer than 1024 bytes")
        );
    }

    #[test]
    fn refusals_answer_problem_json() {
        let refusal = payment()
            .extract(&input(FORM, b"amount=1&amount=2"))
            .unwrap_err();
        let reply = refusal.reply();
        assert_eq!(reply.status(), 400);
        assert_eq!(
            reply.header_value("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.header_value("cache-control"), Some("no-store"));
        let body: serde_json::Value = serde_json::from_str(reply.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "urn:stepup:problem:action-refused",
                "title": "The request cannot be bound as sent",
                "status": 400,
                "detail": "`amount` is sent twice",
                "field": "amount",
            })
        );
        let reply = ActionRefusal::too_large(10).reply();
        assert_eq!(
            reply.body(),
            r#"{"type":"urn:stepup:problem:action-refused","title":"The request cannot be bound as sent","status":413,"detail":"the body is larger than 10 bytes"}"#
        );
        // A message with quotes is escaped.
        let float = payment()
            .extract(&input(JSON, br#"{"amount":1.5}"#))
            .unwrap_err();
        let body: serde_json::Value = serde_json::from_str(float.reply().body()).unwrap();
        assert_eq!(
            body["detail"],
            "send `amount` as a string, e.g. \"12000.50\""
        );
    }

    #[test]
    fn refusals_never_echo_values() {
        let secret = "GB00SECRETSECRETSECRET";
        let spec = payment();
        for body in [
            format!("amount=1&currency=EUR&to={secret}"),
            format!("amount={secret}&currency=EUR&to=x"),
            format!("amount=1&currency={secret}&to=x"),
        ] {
            let refusal = spec.extract(&input(FORM, body.as_bytes())).unwrap_err();
            assert!(
                !refusal.message().contains("SECRET"),
                "{}",
                refusal.message()
            );
            assert!(!refusal.reply().body().contains("SECRET"));
        }
    }

    #[test]
    fn debug_shows_no_values() {
        let bound = payment()
            .extract(&input(
                FORM,
                b"amount=12345&currency=eur&to=GB82+WEST+1234+5698+7654+32",
            ))
            .unwrap();
        let shown = format!("{bound:?}");
        assert!(
            shown.contains("amount") && shown.contains("payment"),
            "{shown}"
        );
        for value in [
            "12345",
            "EUR",
            "GB82",
            "Send",
            bound.digest().to_hex().as_str(),
        ] {
            assert!(!shown.contains(value), "{shown}");
        }
        let request = input(FORM, b"amount=12345");
        assert!(!format!("{request:?}").contains("12345"));
        let spec = format!("{:?}", payment());
        assert!(
            spec.contains("Amount") && spec.contains("currency"),
            "{spec}"
        );
    }
}

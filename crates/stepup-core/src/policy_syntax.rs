//! The policy expression language: `passkey within 5m or (password within 15m and totp within 5m)`.

use std::fmt;
use std::time::Duration;

use crate::method::Method;
use crate::policy::{MAX_AGE_LIMIT, Requirement};

/// The longest expression accepted, in bytes.
pub(crate) const MAX_EXPRESSION_LEN: usize = 1024;
/// How deeply parentheses may nest.
pub(crate) const MAX_DEPTH: usize = 16;

/// A policy expression that could not be parsed: where, and what was wrong.
///
/// ```
/// use stepup_core::Policy;
///
/// let err = Policy::parse("passkey within 5 minutes").unwrap_err();
/// assert_eq!(err.position(), 15);
/// assert_eq!(
///     err.to_string(),
///     "at byte 15: `5` is not a duration: use a number followed by d, h, m or s, such as 5m or 1h30m"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {position}: {kind}")]
pub struct PolicyParseError {
    position: usize,
    kind: PolicyParseErrorKind,
}

impl PolicyParseError {
    /// The byte offset in the expression where the problem was found.
    pub fn position(&self) -> usize {
        self.position
    }

    /// What was wrong.
    pub fn kind(&self) -> &PolicyParseErrorKind {
        &self.kind
    }
}

/// What was wrong with a policy expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyParseErrorKind {
    /// Nothing but white space.
    #[error("the expression is empty")]
    Empty,
    /// Longer than the limit (the expression, or its canonical text).
    #[error("the expression is longer than {MAX_EXPRESSION_LEN} bytes")]
    TooLong,
    /// Parentheses nested too deeply.
    #[error("parentheses are nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// A character that has no meaning in the language.
    #[error("unexpected character `{0}`")]
    UnexpectedCharacter(char),
    /// The expression stopped where more was needed.
    #[error("the expression ends early: expected {0}")]
    UnexpectedEnd(&'static str),
    /// Something other than what the grammar allows here.
    #[error("expected {expected}, found `{found}`")]
    Unexpected {
        /// What the grammar allows here.
        expected: &'static str,
        /// What was there.
        found: String,
    },
    /// A word that is neither a keyword nor a method name.
    #[error(
        "unknown method `{0}`: expected level N, password, totp, device_bound_passkey, passkey, email_code, sms_code, recovery_code or custom:<name>"
    )]
    UnknownMethod(String),
    /// `level` not followed by a rank from 1 to 255.
    #[error("`level` must be followed by a rank from 1 to 255")]
    InvalidLevel,
    /// A malformed duration.
    #[error("`{0}` is not a duration: use a number followed by d, h, m or s, such as 5m or 1h30m")]
    InvalidDuration(String),
    /// A duration longer than a year.
    #[error("a max age may be at most 366 days")]
    DurationTooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Open,
    Close,
    Or,
    And,
    Word(&'a str),
}

fn describe(tok: Option<(usize, Tok<'_>)>) -> String {
    match tok {
        None => "end of expression".into(),
        Some((_, Tok::Open)) => "(".into(),
        Some((_, Tok::Close)) => ")".into(),
        Some((_, Tok::Or)) => "or".into(),
        Some((_, Tok::And)) => "and".into(),
        Some((_, Tok::Word(w))) => w.chars().take(40).collect(),
    }
}

fn err(position: usize, kind: PolicyParseErrorKind) -> PolicyParseError {
    PolicyParseError { position, kind }
}

fn tokenize(input: &str) -> Result<Vec<(usize, Tok<'_>)>, PolicyParseError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => out.push((start, Tok::Open)),
            b')' => out.push((start, Tok::Close)),
            b'|' | b'&' => {
                if bytes.get(i + 1) == Some(&b) {
                    i += 1;
                }
                out.push((start, if b == b'|' { Tok::Or } else { Tok::And }));
            }
            _ if is_word_byte(b) => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                let word = &input[start..i];
                let tok = if word.eq_ignore_ascii_case("or") {
                    Tok::Or
                } else if word.eq_ignore_ascii_case("and") {
                    Tok::And
                } else {
                    Tok::Word(word)
                };
                out.push((start, tok));
                continue;
            }
            _ => {
                let c = input[start..].chars().next().unwrap_or('?');
                return Err(err(start, PolicyParseErrorKind::UnexpectedCharacter(c)));
            }
        }
        i += 1;
    }
    Ok(out)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':')
}

struct Parser<'a> {
    toks: Vec<(usize, Tok<'a>)>,
    pos: usize,
    end: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<(usize, Tok<'a>)> {
        self.toks.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<(usize, Tok<'a>)> {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn unexpected(&self, expected: &'static str) -> PolicyParseError {
        match self.peek() {
            None => err(self.end, PolicyParseErrorKind::UnexpectedEnd(expected)),
            Some((at, _)) => err(
                at,
                PolicyParseErrorKind::Unexpected {
                    expected,
                    found: describe(self.peek()),
                },
            ),
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Requirement, PolicyParseError> {
        self.chain(depth, Tok::Or)
    }

    /// Operands joined by `op`: `or` joins conjunctions, `and` joins unaries.
    fn chain(&mut self, depth: usize, op: Tok<'a>) -> Result<Requirement, PolicyParseError> {
        let all = op == Tok::And;
        let operand = |p: &mut Self| {
            if all {
                p.unary(depth)
            } else {
                p.chain(depth, Tok::And)
            }
        };
        let mut terms = vec![operand(self)?];
        while self.peek().map(|(_, t)| t) == Some(op) {
            self.pos += 1;
            terms.push(operand(self)?);
        }
        Ok(Requirement::join(terms, all))
    }

    fn unary(&mut self, depth: usize) -> Result<Requirement, PolicyParseError> {
        const TERM: &str = "a method, `level N` or `(`";
        match self.peek() {
            Some((at, Tok::Open)) => {
                if depth >= MAX_DEPTH {
                    return Err(err(at, PolicyParseErrorKind::TooDeep));
                }
                self.pos += 1;
                let inner = self.expr(depth + 1)?;
                self.expect_close()?;
                Ok(inner)
            }
            Some((at, Tok::Word(word))) => {
                self.pos += 1;
                if word.eq_ignore_ascii_case("bound") {
                    // No age: a grant is single use and short-lived.
                    return Ok(Requirement::Bound);
                }
                if word.eq_ignore_ascii_case("same_context") {
                    // No age: a fact of the request, not a proof.
                    return Ok(Requirement::SameContext);
                }
                let leaf = if word.eq_ignore_ascii_case("level") {
                    match self.next() {
                        Some((n_at, Tok::Word(n))) => match n.parse::<u8>() {
                            Ok(rank) if rank > 0 => Requirement::Level {
                                rank,
                                max_age: None,
                            },
                            _ => return Err(err(n_at, PolicyParseErrorKind::InvalidLevel)),
                        },
                        _ => return Err(err(at, PolicyParseErrorKind::InvalidLevel)),
                    }
                } else {
                    match word.parse::<Method>() {
                        Ok(method) => Requirement::Method {
                            method,
                            max_age: None,
                        },
                        Err(_) => {
                            return Err(err(
                                at,
                                PolicyParseErrorKind::UnknownMethod(
                                    word.chars().take(40).collect(),
                                ),
                            ));
                        }
                    }
                };
                self.max_age(leaf)
            }
            _ => Err(self.unexpected(TERM)),
        }
    }

    /// An optional `within D` or `(D)` after a term.
    fn max_age(&mut self, mut leaf: Requirement) -> Result<Requirement, PolicyParseError> {
        let age = match self.peek() {
            Some((_, Tok::Word(w))) if w.eq_ignore_ascii_case("within") => {
                self.pos += 1;
                self.duration()?
            }
            Some((_, Tok::Open)) => {
                self.pos += 1;
                let age = self.duration()?;
                self.expect_close()?;
                age
            }
            _ => return Ok(leaf),
        };
        if let Requirement::Level { max_age, .. } | Requirement::Method { max_age, .. } = &mut leaf
        {
            *max_age = Some(age);
        }
        Ok(leaf)
    }

    fn duration(&mut self) -> Result<Duration, PolicyParseError> {
        match self.peek() {
            Some((at, Tok::Word(d))) => {
                self.pos += 1;
                parse_duration(d).map_err(|k| err(at, k))
            }
            _ => Err(self.unexpected("a duration such as 5m")),
        }
    }

    fn expect_close(&mut self) -> Result<(), PolicyParseError> {
        match self.peek() {
            Some((_, Tok::Close)) => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.unexpected("`)`")),
        }
    }
}

/// The error for an expression over the length limit.
pub(crate) fn too_long() -> PolicyParseError {
    err(MAX_EXPRESSION_LEN, PolicyParseErrorKind::TooLong)
}

pub(crate) fn parse(input: &str) -> Result<Requirement, PolicyParseError> {
    if input.len() > MAX_EXPRESSION_LEN {
        return Err(too_long());
    }
    let toks = tokenize(input)?;
    if toks.is_empty() {
        return Err(err(0, PolicyParseErrorKind::Empty));
    }
    let mut parser = Parser {
        toks,
        pos: 0,
        end: input.len(),
    };
    let requirement = parser.expr(0)?;
    if parser.peek().is_some() {
        return Err(parser.unexpected("`and`, `or` or the end of the expression"));
    }
    Ok(requirement)
}

/// Parses `5m`, `90s`, `1h30m`, `2d`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, PolicyParseErrorKind> {
    let invalid = || PolicyParseErrorKind::InvalidDuration(text.chars().take(40).collect());
    let mut total: u64 = 0;
    let mut digits: Option<u64> = None;
    let mut any = false;
    for b in text.bytes() {
        match b {
            b'0'..=b'9' => {
                let d = u64::from(b - b'0');
                let next = digits
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(d))
                    .ok_or(PolicyParseErrorKind::DurationTooLong)?;
                digits = Some(next);
            }
            b'd' | b'h' | b'm' | b's' => {
                let n = digits.take().ok_or_else(invalid)?;
                let unit = match b {
                    b'd' => 86_400,
                    b'h' => 3_600,
                    b'm' => 60,
                    _ => 1,
                };
                total = n
                    .checked_mul(unit)
                    .and_then(|v| total.checked_add(v))
                    .ok_or(PolicyParseErrorKind::DurationTooLong)?;
                any = true;
            }
            _ => return Err(invalid()),
        }
    }
    if !any || digits.is_some() {
        return Err(invalid());
    }
    let age = Duration::from_secs(total);
    if age > MAX_AGE_LIMIT {
        return Err(PolicyParseErrorKind::DurationTooLong);
    }
    Ok(age)
}

/// Writes a duration the way the parser reads it: `1h30m`, `45s`, `0s`.
pub(crate) struct DisplayDuration(pub(crate) Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secs = self.0.as_secs();
        if secs == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "5", "m", "5x", "-5m", "5m3", "5 m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_duration("367d"),
            Err(PolicyParseErrorKind::DurationTooLong)
        );
        assert_eq!(
            parse_duration("99999999999999999999999s"),
            Err(PolicyParseErrorKind::DurationTooLong)
        );
        for secs in [0u64, 1, 59, 60, 61, 3600, 5400, 86_400, 90_061] {
            let text = DisplayDuration(Duration::from_secs(secs)).to_string();
            assert_eq!(
                parse_duration(&text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
    }
}

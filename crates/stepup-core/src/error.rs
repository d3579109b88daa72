//! The crate's error types: each says what was wrong and what to do about it.

use crate::key::KeyId;

/// A method name that is not a built-in method or a valid custom name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMethod {
    /// Not one of the canonical names.
    #[error(
        "unknown method `{0}`: expected password, totp, device_bound_passkey, passkey, email_code, sms_code, recovery_code or custom:<name>"
    )]
    Unknown(String),
    /// A custom name that is empty or too long.
    #[error("a custom method name must be 1 to {max} bytes long")]
    CustomLength {
        /// The longest name allowed.
        max: usize,
    },
    /// A custom name with characters outside `[a-z0-9_-]`, or not starting with a letter.
    #[error(
        "custom method name `{0}` must start with a lowercase letter and use only a-z, 0-9, `_` and `-`"
    )]
    CustomCharacters(String),
}

/// A key that cannot be used, or a key-ring change that would break it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Fewer bytes than HMAC-SHA256 needs for full strength.
    #[error(
        "key {id} has {got} bytes; at least {min} random bytes are required (for example `openssl rand -base64 32`)"
    )]
    TooShort {
        /// The key's id.
        id: KeyId,
        /// The bytes given.
        got: usize,
        /// The minimum.
        min: usize,
    },
    /// More bytes than any sensible key has (probably the wrong value was loaded).
    #[error("key {id} has {got} bytes; at most {max} are accepted")]
    TooLong {
        /// The key's id.
        id: KeyId,
        /// The bytes given.
        got: usize,
        /// The maximum.
        max: usize,
    },
    /// A key string that is not base64.
    #[error("key {id} is not valid base64 (standard or URL-safe alphabet, padding optional)")]
    Base64 {
        /// The key's id.
        id: KeyId,
    },
    /// Two keys in one ring with the same id.
    #[error("the key ring already holds a key with id {0}; every key needs its own id")]
    DuplicateId(KeyId),
    /// An operation named a key the ring does not hold.
    #[error("the key ring holds no key with id {0}")]
    NoSuchKey(KeyId),
    /// Removing the signing key would leave nothing to issue tokens with.
    #[error("key {0} is the signing key; rotate to a new signing key before removing it")]
    RemoveSigningKey(KeyId),
}

/// A configuration value that `stepup` refuses at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A level table without levels.
    #[error("the level table needs at least one level")]
    NoLevels,
    /// Level rank 0 is reserved for "no level reached".
    #[error("level ranks start at 1 (0 means no level reached)")]
    RankZero,
    /// Two levels with the same rank.
    #[error("two levels have rank {0}; ranks must be distinct")]
    DuplicateRank(u8),
    /// Two levels announced with the same `acr` value.
    #[error("two levels are announced as acr `{0}`; acr values must be distinct")]
    DuplicateAcr(String),
    /// An `acr` value that cannot go into a `WWW-Authenticate` header.
    #[error(
        "acr `{0}` is not allowed: use 1 to 128 printable ASCII characters without spaces, quotes or backslashes"
    )]
    InvalidAcr(String),
    /// A level that nothing can reach.
    #[error("level {0} has no rule saying which methods reach it")]
    LevelWithoutRule(u8),
    /// A token purpose tag that is empty, too long or not printable ASCII.
    #[error("the token purpose must be 1 to {max} printable ASCII characters")]
    InvalidPurpose {
        /// The longest purpose allowed.
        max: usize,
    },
    /// A token lifetime outside the supported range.
    #[error("the token lifetime must be between 1 second and {max_days} days")]
    InvalidLifetime {
        /// The longest lifetime allowed, in days.
        max_days: u64,
    },
}

/// Why an [`Issuer`](crate::Issuer) refused to mint a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The proof is dated later than `now` plus the allowed clock skew.
    #[error("the proof is dated in the future (beyond the allowed clock skew)")]
    ProofInFuture,
    /// The proof is already older than the token lifetime, so it would never be fresh.
    #[error("the proof is older than the token lifetime")]
    ProofTooOld,
    /// `now` is before September 2020 or after 2156: the clock is wrong.
    #[error("the clock reads a time before 2020-09-13 or after 2156; check the system clock")]
    ClockOutOfRange,
    /// The key ring could not be loaded, so nothing can be signed.
    #[error("no signing key is available")]
    NoSigningKey,
}

/// Why a `return_to` value was refused; the caller falls back to a safe default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReturnTo {
    /// Empty, or longer than [`ReturnTo::MAX_LEN`](crate::ReturnTo::MAX_LEN).
    #[error("the return path is empty or too long")]
    Length,
    /// Not a path starting with a single `/` (a scheme, `//host`, a relative path …).
    #[error("the return path must be a local absolute path starting with a single `/`")]
    NotLocal,
    /// A character outside the URL path/query alphabet (controls, spaces, backslashes, non-ASCII …).
    #[error("the return path contains a character that is not allowed")]
    Character,
    /// A `%` escape that is malformed or decodes to something not allowed.
    #[error("the return path contains a malformed or forbidden percent-encoding")]
    Encoding,
    /// A `.` or `..` path segment, literally or encoded.
    #[error("the return path contains a dot segment")]
    DotSegment,
}

//! One set of token settings from which the issuer and the gate are made, so
//! the two can never disagree.

use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;
use crate::gate::Gate;
use crate::issuer::Issuer;
use crate::key::KeyRing;
use crate::level::{LevelTable, SharedLevels};
use crate::token::{self, Codec, DEFAULT_PURPOSE};

/// The settings shared by an [`Issuer`] and a [`Gate`]: keys, purpose tag,
/// level table, token lifetime and allowed clock skew.
///
/// | setting | default |
/// |---|---|
/// | purpose | [`DEFAULT_PURPOSE`] (`stepup/assurance`) |
/// | levels | [`LevelTable::nist`] |
/// | lifetime | 1 hour: the longest any proof counts, whatever the policy |
/// | clock skew | 60 seconds of tolerance for tokens and proofs dated ahead |
///
/// ```
/// use std::time::Duration;
/// use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
///
/// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[42u8; 32])?);
/// let config = TokenConfig::new(ring)
///     .with_purpose("bank/assurance")?
///     .with_lifetime(Duration::from_secs(30 * 60))?;
/// let (issuer, gate) = (config.issuer(), config.gate());
/// # let _ = (issuer, gate);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TokenConfig {
    ring: KeyRing,
    purpose: String,
    levels: SharedLevels,
    lifetime: Duration,
    skew: Duration,
}

/// The longest token lifetime accepted: 30 days.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The default token lifetime: one hour.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The default clock skew tolerance: 60 seconds.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(60);

impl TokenConfig {
    /// Default settings around a key ring.
    pub fn new(ring: KeyRing) -> TokenConfig {
        TokenConfig {
            ring,
            purpose: DEFAULT_PURPOSE.to_owned(),
            levels: SharedLevels::Nist,
            lifetime: DEFAULT_LIFETIME,
            skew: DEFAULT_SKEW,
        }
    }

    /// Sets the purpose tag that goes inside every MAC (1 to 48 printable
    /// ASCII characters). Tokens minted under one purpose never verify under
    /// another, even with the same keys.
    pub fn with_purpose(mut self, purpose: &str) -> Result<TokenConfig, ConfigError> {
        token::validate_purpose(purpose)?;
        self.purpose = purpose.to_owned();
        Ok(self)
    }

    /// Sets the level table.
    pub fn with_levels(mut self, levels: LevelTable) -> TokenConfig {
        self.levels = SharedLevels::new(levels);
        self
    }

    /// Sets the token lifetime (whole seconds, 1 s to 30 days): the longest
    /// any proof counts, and the cookie's `Max-Age`.
    ///
    /// The gate applies it to tokens already issued too: a token signed with
    /// a longer lifetime is expired, and its proofs stop counting, once this
    /// lifetime has passed, so shortening it after an incident takes effect
    /// at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stepup_core::{ChallengeReason, Key, KeyId, KeyRing, Method, Proof, Subject, Timestamp, TokenConfig};
    ///
    /// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[42u8; 32])?);
    /// let user = Subject::new("user-1");
    /// let t0 = Timestamp::from_unix_seconds(1_700_000_000);
    /// let hour = TokenConfig::new(ring.clone()).with_lifetime(Duration::from_secs(3600))?;
    /// let token = hour.issuer().issue(&user, Proof::new(Method::Totp, t0), None, t0)?;
    ///
    /// let ten_minutes = TokenConfig::new(ring).with_lifetime(Duration::from_secs(600))?;
    /// let later = t0 + Duration::from_secs(600);
    /// assert_eq!(ten_minutes.gate().verify(&user, Some(token.value()), later).unwrap_err(), ChallengeReason::Expired);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_lifetime(mut self, lifetime: Duration) -> Result<TokenConfig, ConfigError> {
        let secs = lifetime.as_secs();
        if secs == 0 || lifetime > MAX_LIFETIME {
            return Err(ConfigError::InvalidLifetime {
                max_days: MAX_LIFETIME.as_secs() / 86_400,
            });
        }
        self.lifetime = Duration::from_secs(secs);
        Ok(self)
    }

    /// Sets how far ahead of the local clock a token or proof may be dated
    /// (other instances' clocks drift), in whole seconds, at most 10 minutes.
    pub fn with_clock_skew(mut self, skew: Duration) -> TokenConfig {
        self.skew = Duration::from_secs(skew.as_secs()).min(Duration::from_secs(600));
        self
    }

    /// The level table.
    pub fn levels(&self) -> &LevelTable {
        &self.levels
    }

    /// The token lifetime.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The clock skew tolerance.
    pub fn clock_skew(&self) -> Duration {
        self.skew
    }

    /// The purpose tag.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// The key ring.
    pub fn key_ring(&self) -> &KeyRing {
        &self.ring
    }

    /// An issuer with these settings.
    pub fn issuer(&self) -> Issuer {
        Issuer::from_parts(self.codec(), self.levels.clone(), self.lifetime, self.skew)
    }

    /// A gate with these settings.
    pub fn gate(&self) -> Gate {
        Gate::from_parts(self.codec(), self.levels.clone(), self.lifetime, self.skew)
    }

    fn codec(&self) -> Arc<Codec> {
        // The purpose was validated when set, so this cannot fail; if it ever
        // did, a codec without keys fails closed (nothing verifies, nothing is issued).
        Arc::new(Codec::new(&self.ring, &self.purpose).unwrap_or_else(|_| Codec::without_keys()))
    }
}

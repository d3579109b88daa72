//! The ways a user proves it is them, and their RFC 8176 `amr` values.

use std::fmt;
use std::str::FromStr;

use crate::error::InvalidMethod;

/// A way for a user to prove, again, that it is them.
///
/// The built-in methods cover what applications ship today; anything else
/// (a push approval, a vendor's verification API) is a [`Method::Custom`].
/// A `Method` is `Copy`: custom names are stored inline, so tokens and
/// assurances never allocate for them.
///
/// Each method has a canonical name, used in policy expressions, JSON and
/// logs: `password`, `totp`, `device_bound_passkey`, `passkey`,
/// `email_code`, `sms_code`, `recovery_code`, and `custom:<name>`.
///
/// Passkeys come in two kinds. A [`DeviceBoundPasskey`](Method::DeviceBoundPasskey)
/// is a WebAuthn credential known not to leave its authenticator (not
/// backup-eligible): NIST SP 800-63B's AAL3 hardware-bound authenticator.
/// A [`Passkey`](Method::Passkey) may be synced to other devices through
/// a cloud account (backup-eligible) or is of unknown kind: phishing-resistant
/// still, but AAL2. A device-bound passkey is the stronger of the two and
/// [satisfies](Method::satisfies) anything that asks for a passkey; a
/// synced one never satisfies a demand for a device-bound one.
///
/// ```
/// use stepup_core::Method;
///
/// let push: Method = "custom:push".parse()?;
/// assert_eq!(push, Method::custom("push")?);
/// assert_eq!(push.to_string(), "custom:push");
/// assert_eq!(Method::Totp.amr(), ["otp"]);
/// assert_eq!("passkey".parse::<Method>()?, Method::Passkey);
/// assert_eq!("device_bound_passkey".parse::<Method>()?, Method::DeviceBoundPasskey);
/// # Ok::<(), stepup_core::InvalidMethod>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Method {
    /// Re-entering the account password, checked by the application.
    Password,
    /// A time-based one-time password (RFC 6238) from an authenticator app.
    Totp,
    /// A WebAuthn credential with user verification that is bound to its
    /// authenticator: not backup-eligible, so it cannot be synced or
    /// exported (a security key, a platform authenticator without sync).
    /// RFC 8176 `amr`: `hwk`, `user`. Satisfies a requirement for
    /// [`Passkey`](Method::Passkey) too.
    DeviceBoundPasskey,
    /// A WebAuthn credential with user verification that may be synced to
    /// other devices (backup-eligible), or whose kind is unknown. RFC 8176
    /// `amr`: `swk`, `user`.
    Passkey,
    /// A one-time code sent by e-mail.
    EmailCode,
    /// A one-time code sent by SMS.
    SmsCode,
    /// A single-use recovery code.
    RecoveryCode,
    /// An application-defined method.
    Custom(CustomMethod),
}

impl Method {
    /// The built-in methods, strongest first: the order in which challenges
    /// offer them.
    pub const BUILT_IN: [Method; 7] = [
        Method::DeviceBoundPasskey,
        Method::Passkey,
        Method::Totp,
        Method::Password,
        Method::EmailCode,
        Method::SmsCode,
        Method::RecoveryCode,
    ];

    /// An application-defined method; see [`CustomMethod::new`] for the rules
    /// a name must follow.
    pub fn custom(name: &str) -> Result<Method, InvalidMethod> {
        CustomMethod::new(name).map(Method::Custom)
    }

    /// The RFC 8176 Authentication Method Reference values this method
    /// contributes to an `amr` claim.
    ///
    /// | method | `amr` |
    /// |---|---|
    /// | password | `pwd` |
    /// | totp, e-mail code, recovery code | `otp` |
    /// | device-bound passkey | `hwk`, `user` (proof of a hardware-bound key plus user verification) |
    /// | passkey (may be synced) | `swk`, `user` (proof of a software key, as far as anyone can tell, plus user verification) |
    /// | SMS code | `sms` |
    /// | custom | none: RFC 8176 has no value for an unknown method |
    pub fn amr(&self) -> &'static [&'static str] {
        match self {
            Method::Password => &["pwd"],
            Method::Totp | Method::EmailCode | Method::RecoveryCode => &["otp"],
            Method::DeviceBoundPasskey => &["hwk", "user"],
            Method::Passkey => &["swk", "user"],
            Method::SmsCode => &["sms"],
            Method::Custom(_) => &[],
        }
    }

    /// The canonical name of a built-in method, or the bare name (without the
    /// `custom:` prefix) of a custom one.
    pub fn name(&self) -> &str {
        match self {
            Method::Password => "password",
            Method::Totp => "totp",
            Method::DeviceBoundPasskey => "device_bound_passkey",
            Method::Passkey => "passkey",
            Method::EmailCode => "email_code",
            Method::SmsCode => "sms_code",
            Method::RecoveryCode => "recovery_code",
            Method::Custom(c) => c.as_str(),
        }
    }

    /// Whether a proof of this method meets a requirement for `required`:
    /// the same method, or a [`DeviceBoundPasskey`](Method::DeviceBoundPasskey)
    /// where a [`Passkey`](Method::Passkey) is asked for (it is the stronger
    /// kind of passkey). Never the other way round: a passkey that may be
    /// synced does not meet a requirement for a device-bound one.
    ///
    /// Policies, level rules and [`Assurance::proven_at`](crate::Assurance::proven_at)
    /// all match proofs to requirements with this.
    ///
    /// ```
    /// use stepup_core::Method;
    ///
    /// assert!(Method::DeviceBoundPasskey.satisfies(&Method::Passkey));
    /// assert!(!Method::Passkey.satisfies(&Method::DeviceBoundPasskey));
    /// assert!(Method::Totp.satisfies(&Method::Totp));
    /// assert!(!Method::Totp.satisfies(&Method::Passkey));
    /// ```
    #[inline]
    pub fn satisfies(&self, required: &Method) -> bool {
        self == required
            || (matches!(self, Method::DeviceBoundPasskey) && matches!(required, Method::Passkey))
    }

    /// Whether this is [`Method::Custom`].
    pub fn is_custom(&self) -> bool {
        matches!(self, Method::Custom(_))
    }

    /// The one-byte code of a built-in method in the token format.
    pub(crate) fn wire_code(&self) -> u8 {
        match self {
            Method::Password => 1,
            Method::Totp => 2,
            Method::Passkey => 3,
            Method::EmailCode => 4,
            Method::SmsCode => 5,
            Method::RecoveryCode => 6,
            Method::DeviceBoundPasskey => 7,
            Method::Custom(_) => WIRE_CUSTOM,
        }
    }

    pub(crate) fn from_wire_code(code: u8) -> Option<Method> {
        Some(match code {
            1 => Method::Password,
            2 => Method::Totp,
            3 => Method::Passkey,
            4 => Method::EmailCode,
            5 => Method::SmsCode,
            6 => Method::RecoveryCode,
            7 => Method::DeviceBoundPasskey,
            _ => return None,
        })
    }
}

/// Token-format code announcing a custom method; its name follows.
pub(crate) const WIRE_CUSTOM: u8 = 0x80;

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Custom(c) => write!(f, "custom:{}", c.as_str()),
            other => f.write_str(other.name()),
        }
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Method {
    type Err = InvalidMethod;

    /// Parses a canonical method name (case-sensitive, as written by `Display`).
    fn from_str(s: &str) -> Result<Method, InvalidMethod> {
        if let Some(name) = s.strip_prefix("custom:") {
            return Method::custom(name);
        }
        Method::BUILT_IN
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| InvalidMethod::Unknown(truncate_for_error(s)))
    }
}

fn truncate_for_error(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The name of an application-defined method, stored inline (no allocation).
///
/// A name is 1 to [`CustomMethod::MAX_LEN`] bytes of lowercase ASCII letters,
/// digits, `_` and `-`, starting with a letter: it appears in policy
/// expressions, JSON and logs, so nothing that needs escaping is allowed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomMethod {
    len: u8,
    bytes: [u8; CustomMethod::MAX_LEN],
}

impl CustomMethod {
    /// The longest name a custom method may have, in bytes.
    pub const MAX_LEN: usize = 22;

    /// Checks and stores a custom method name.
    ///
    /// ```
    /// use stepup_core::CustomMethod;
    /// assert!(CustomMethod::new("push-approval").is_ok());
    /// assert!(CustomMethod::new("Push").is_err());
    /// assert!(CustomMethod::new("").is_err());
    /// ```
    pub fn new(name: &str) -> Result<CustomMethod, InvalidMethod> {
        let raw = name.as_bytes();
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(InvalidMethod::CustomLength { max: Self::MAX_LEN });
        }
        let valid_first = raw[0].is_ascii_lowercase();
        let valid_rest = raw
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        if !valid_first || !valid_rest {
            return Err(InvalidMethod::CustomCharacters(truncate_for_error(name)));
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(CustomMethod {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // The constructor only admits ASCII, so this never takes the fallback.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for CustomMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Method::BUILT_IN {
            assert_eq!(m.to_string().parse::<Method>().ok(), Some(m));
            assert_eq!(Method::from_wire_code(m.wire_code()), Some(m));
        }
        let c = Method::custom("push_2").unwrap();
        assert_eq!(c.to_string().parse::<Method>().ok(), Some(c));
    }

    #[test]
    fn amr_values_follow_rfc8176() {
        assert_eq!(Method::Password.amr(), ["pwd"]);
        assert_eq!(Method::Totp.amr(), ["otp"]);
        assert_eq!(Method::DeviceBoundPasskey.amr(), ["hwk", "user"]);
        assert_eq!(Method::Passkey.amr(), ["swk", "user"]);
        assert_eq!(Method::SmsCode.amr(), ["sms"]);
        assert_eq!(Method::EmailCode.amr(), ["otp"]);
        assert_eq!(Method::RecoveryCode.amr(), ["otp"]);
        assert!(Method::custom("push").unwrap().amr().is_empty());
    }

    #[test]
    fn wire_codes_are_fixed() {
        // The token format: changing a code changes what old tokens mean.
        let codes: Vec<(Method, u8)> = Method::BUILT_IN
            .iter()
            .map(|m| (*m, m.wire_code()))
            .collect();
        assert_eq!(
            codes,
            [
                (Method::DeviceBoundPasskey, 7),
                (Method::Passkey, 3),
                (Method::Totp, 2),
                (Method::Password, 1),
                (Method::EmailCode, 4),
                (Method::SmsCode, 5),
                (Method::RecoveryCode, 6),
            ]
        );
        assert_eq!(Method::from_wire_code(0), None);
        assert_eq!(Method::from_wire_code(8), None);
    }

    #[test]
    fn only_a_device_bound_passkey_stands_in_for_another_method() {
        let push = Method::custom("push").unwrap();
        let all: Vec<Method> = Method::BUILT_IN.into_iter().chain([push]).collect();
        for proven in &all {
            for required in &all {
                let expected = proven == required
                    || (*proven == Method::DeviceBoundPasskey && *required == Method::Passkey);
                assert_eq!(
                    proven.satisfies(required),
                    expected,
                    "{proven} for {required}"
                );
            }
        }
    }

    #[test]
    fn custom_names_are_strict() {
        for bad in [
            "",
            "Push",
            "1push",
            "push approval",
            "push\"",
            "pușh",
            "a2345678901234567890123",
            "-x",
        ] {
            assert!(CustomMethod::new(bad).is_err(), "{bad:?}");
        }
        assert!(CustomMethod::new("a234567890123456789012").is_ok());
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!("pasword".parse::<Method>().is_err());
        assert!("TOTP".parse::<Method>().is_err());
        assert!("custom:".parse::<Method>().is_err());
    }
}

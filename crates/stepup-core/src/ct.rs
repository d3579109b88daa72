//! The one place secrets are compared. One-time codes, code digests,
//! passwords and session digests go through [`eq`] (or [`eq_as`], which
//! also says what is compared), which takes the same time whatever the
//! contents (`subtle`); the token's MAC goes through a sibling in this
//! module that lets `digest`'s `verify_slice` compare the tag the same way
//! without copying it out. Comparing secrets with `==` would let an
//! attacker learn them byte by byte from response times.
//!
//! Debug builds keep a per-thread tally of the comparisons made, by
//! [`Comparison`] label, counted *after* the comparison ran
//! ([`comparisons_of`], [`comparisons`]), so tests can assert that a given
//! check really went through here — a check on the code path rather than a
//! timing measurement:
//!
//! ```
//! use stepup_core::ct::{self, Comparison};
//!
//! let before = ct::comparisons_of(Comparison::TotpCode);
//! assert!(!ct::eq_as(Comparison::TotpCode, b"123456", b"654321"));
//! # #[cfg(debug_assertions)]
//! assert_eq!(ct::comparisons_of(Comparison::TotpCode), before + 1);
//! ```

use subtle::ConstantTimeEq;

/// What a constant-time comparison compared: the label each call site
/// gives [`eq_as`], so an audit can tell *which* check ran.
///
/// ```
/// use stepup_core::ct::{self, Comparison};
/// assert!(ct::eq_as(Comparison::CodeDigest, &[1, 2, 3], &[1, 2, 3]));
/// assert_eq!(Comparison::CodeDigest.name(), "code_digest");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Comparison {
    /// The assurance token's MAC tag (full length, `Mac::verify_slice`).
    MacTag,
    /// The token's 4-byte body check, looked at only after the tag failed.
    BodyCheck,
    /// The token's 4-byte binding hint, looked at only after the tag failed.
    BindingHint,
    /// A client-context digest (`Gate::same_context`, carrying proofs over).
    ContextDigest,
    /// A TOTP code against one step of the window.
    TotpCode,
    /// A recovery code's digest against a stored one.
    RecoveryCode,
    /// An e-mail or SMS code's digest against the pending one.
    CodeDigest,
    /// A pending code's challenge id against the one presented.
    ChallengeId,
    /// A session digest bound to pending state (codes, ceremonies).
    SessionDigest,
    /// A pending record taken from the store against the one checked, so
    /// that of two racing right answers only one is accepted.
    PendingRecord,
    /// A password against a stored one.
    Password,
    /// A comparison made through [`eq`], without a label.
    Other,
}

impl Comparison {
    /// Every label, in declaration order.
    pub const ALL: [Comparison; 12] = [
        Comparison::MacTag,
        Comparison::BodyCheck,
        Comparison::BindingHint,
        Comparison::ContextDigest,
        Comparison::TotpCode,
        Comparison::RecoveryCode,
        Comparison::CodeDigest,
        Comparison::ChallengeId,
        Comparison::SessionDigest,
        Comparison::PendingRecord,
        Comparison::Password,
        Comparison::Other,
    ];

    /// A short `snake_case` name for test output.
    pub fn name(self) -> &'static str {
        match self {
            Comparison::MacTag => "mac_tag",
            Comparison::BodyCheck => "body_check",
            Comparison::BindingHint => "binding_hint",
            Comparison::ContextDigest => "context_digest",
            Comparison::TotpCode => "totp_code",
            Comparison::RecoveryCode => "recovery_code",
            Comparison::CodeDigest => "code_digest",
            Comparison::ChallengeId => "challenge_id",
            Comparison::SessionDigest => "session_digest",
            Comparison::PendingRecord => "pending_record",
            Comparison::Password => "password",
            Comparison::Other => "other",
        }
    }

    #[cfg(debug_assertions)]
    fn index(self) -> usize {
        self as usize
    }
}

#[cfg(debug_assertions)]
thread_local! {
    static TALLY: std::cell::Cell<[u64; Comparison::ALL.len()]> =
        const { std::cell::Cell::new([0; Comparison::ALL.len()]) };
}

/// Counts one comparison labelled `what`; called once it has run.
#[inline]
fn record(what: Comparison) {
    #[cfg(debug_assertions)]
    TALLY.with(|t| {
        let mut counts = t.get();
        counts[what.index()] += 1;
        t.set(counts);
    });
    #[cfg(not(debug_assertions))]
    let _ = what;
}

/// Whether `a` and `b` are equal, in time that depends only on their
/// lengths (inputs of different lengths are unequal at once: lengths are
/// not secret here).
///
/// ```
/// use stepup_core::ct;
/// assert!(ct::eq(b"123456", b"123456"));
/// assert!(!ct::eq(b"123456", b"123457"));
/// assert!(!ct::eq(b"123456", b"12345"));
/// ```
///
/// Counted as [`Comparison::Other`]; prefer [`eq_as`], which says what is
/// compared.
#[inline]
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    eq_as(Comparison::Other, a, b)
}

/// [`eq`], labelled with what is compared, so a test can assert that this
/// very check ran in constant time ([`comparisons_of`]).
///
/// ```
/// use stepup_core::ct::{self, Comparison};
/// assert!(ct::eq_as(Comparison::RecoveryCode, b"digest", b"digest"));
/// assert!(!ct::eq_as(Comparison::RecoveryCode, b"digest", b"digesT"));
/// ```
#[inline]
pub fn eq_as(what: Comparison, a: &[u8], b: &[u8]) -> bool {
    let equal = bool::from(a.ct_eq(b));
    record(what);
    equal
}

/// Whether `mac` (fed with the message) produces `tag`: the tag comparison
/// of `digest`'s `Mac::verify_slice`, which uses `subtle` like [`eq`] and is
/// the faster path for a MAC (the computed tag never leaves its buffer).
/// Counted as [`Comparison::MacTag`], once `verify_slice` has compared.
#[inline]
pub(crate) fn verify_mac<M: hmac::Mac>(mac: M, tag: &[u8]) -> bool {
    let verified = mac.verify_slice(tag).is_ok();
    record(Comparison::MacTag);
    verified
}

/// How many constant-time comparisons of any kind ran on this thread so far
/// (debug builds; always 0 in release builds). Prefer [`comparisons_of`],
/// which tells the checks apart.
///
/// ```
/// use stepup_core::ct;
/// let before = ct::comparisons();
/// ct::eq(b"a", b"b");
/// # #[cfg(debug_assertions)]
/// assert_eq!(ct::comparisons(), before + 1);
/// ```
pub fn comparisons() -> u64 {
    Comparison::ALL.into_iter().map(comparisons_of).sum()
}

/// How many constant-time comparisons labelled `what` ran on this thread so
/// far (debug builds; always 0 in release builds). For tests that audit the
/// code path: "a forged tag was compared through here".
///
/// ```
/// use stepup_core::ct::{self, Comparison};
/// let before = ct::comparisons_of(Comparison::Password);
/// ct::eq_as(Comparison::Password, b"wonderland", b"wonderlant");
/// ct::eq(b"a", b"b"); // another label: not counted here
/// # #[cfg(debug_assertions)]
/// assert_eq!(ct::comparisons_of(Comparison::Password), before + 1);
/// ```
pub fn comparisons_of(what: Comparison) -> u64 {
    #[cfg(debug_assertions)]
    {
        TALLY.with(|t| t.get()[what.index()])
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = what;
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_has_its_own_slot_and_name() {
        for (i, what) in Comparison::ALL.into_iter().enumerate() {
            #[cfg(debug_assertions)]
            assert_eq!(what.index(), i);
            assert!(
                Comparison::ALL[..i].iter().all(|w| w.name() != what.name()),
                "{what:?}"
            );
        }
    }

    #[test]
    fn the_tally_moves_for_its_label_only() {
        let before: Vec<u64> = Comparison::ALL.into_iter().map(comparisons_of).collect();
        let total = comparisons();
        assert!(!eq_as(Comparison::TotpCode, b"1", b"2"));
        assert!(eq(b"x", b"x"));
        let after: Vec<u64> = Comparison::ALL.into_iter().map(comparisons_of).collect();
        for (i, what) in Comparison::ALL.into_iter().enumerate() {
            let moved = u64::from(cfg!(debug_assertions))
                * u64::from(matches!(what, Comparison::TotpCode | Comparison::Other));
            assert_eq!(after[i], before[i] + moved, "{what:?}");
        }
        assert_eq!(comparisons(), total + 2 * u64::from(cfg!(debug_assertions)));
    }
}

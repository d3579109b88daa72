//! The one place secrets are compared. One-time codes, code digests,
//! passwords and session digests go through [`eq`], which takes the same
//! time whatever the contents (`subtle`); the token's MAC goes through a
//! sibling in this module that lets `digest`'s `verify_slice` compare the
//! tag the same way without copying it out. Comparing secrets with `==`
//! would let an attacker learn them byte by byte from response times.
//!
//! Debug builds count the comparisons made on each thread
//! ([`comparisons`]), so tests can assert that a verification really went
//! through here — a check on the code path rather than a timing measurement.

use subtle::ConstantTimeEq;

#[cfg(debug_assertions)]
thread_local! {
    static COMPARISONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
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
#[inline]
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    #[cfg(debug_assertions)]
    COMPARISONS.with(|c| c.set(c.get() + 1));
    bool::from(a.ct_eq(b))
}

/// Whether `mac` (fed with the message) produces `tag`: the tag comparison
/// of `digest`'s `Mac::verify_slice`, which uses `subtle` like [`eq`] and is
/// the faster path for a MAC (the computed tag never leaves its buffer).
/// Counted like [`eq`].
#[inline]
pub(crate) fn verify_mac<M: hmac::Mac>(mac: M, tag: &[u8]) -> bool {
    #[cfg(debug_assertions)]
    COMPARISONS.with(|c| c.set(c.get() + 1));
    mac.verify_slice(tag).is_ok()
}

/// How many comparisons [`eq`] made on this thread so far (debug builds;
/// always 0 in release builds). For tests that audit the code path.
///
/// ```
/// use stepup_core::ct;
/// let before = ct::comparisons();
/// ct::eq(b"a", b"b");
/// # #[cfg(debug_assertions)]
/// assert_eq!(ct::comparisons(), before + 1);
/// ```
pub fn comparisons() -> u64 {
    #[cfg(debug_assertions)]
    {
        COMPARISONS.with(std::cell::Cell::get)
    }
    #[cfg(not(debug_assertions))]
    {
        0
    }
}

//! The one place secrets are compared: MACs, one-time codes, code digests,
//! passwords and session digests all go through [`eq`], which takes the same
//! time whatever the contents (`subtle`). Comparing them with `==` would let
//! an attacker learn a secret byte by byte from response times.
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

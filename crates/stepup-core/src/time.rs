//! Time: whole-second timestamps and the [`Clock`] every time check goes through.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in whole seconds since the Unix epoch (UTC).
///
/// Assurance is a matter of minutes, so every time in `stepup` has one-second
/// resolution: it keeps tokens small and comparisons exact.
///
/// ```
/// use std::time::Duration;
/// use stepup_core::Timestamp;
///
/// let t = Timestamp::from_unix_seconds(1_700_000_000);
/// let later = t + Duration::from_secs(90);
/// assert_eq!(later.duration_since(t), Duration::from_secs(90));
/// assert_eq!(t.duration_since(later), Duration::ZERO); // saturates, never panics
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch itself.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// A timestamp `seconds` after the Unix epoch.
    pub const fn from_unix_seconds(seconds: u64) -> Self {
        Timestamp(seconds)
    }

    /// Seconds since the Unix epoch.
    pub const fn as_unix_seconds(self) -> u64 {
        self.0
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }

    /// `self + duration` (whole seconds), saturating at the far end of time.
    pub const fn saturating_add(self, duration: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration.as_secs()))
    }

    /// `self - duration` (whole seconds), saturating at the Unix epoch.
    pub const fn saturating_sub(self, duration: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration.as_secs()))
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        self.saturating_add(rhs)
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        self.saturating_sub(rhs)
    }
}

impl From<SystemTime> for Timestamp {
    /// Times before the Unix epoch become the epoch.
    fn from(time: SystemTime) -> Self {
        Timestamp(
            time.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where `stepup` reads the current time.
///
/// Every freshness, expiry and skew check takes its `now` from a `Clock`, so
/// tests can move time with a [`TestClock`] instead of sleeping.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
///
/// ```
/// use stepup_core::{Clock, SystemClock};
/// assert!(SystemClock.now().as_unix_seconds() > 1_600_000_000);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from(SystemTime::now())
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use stepup_core::{Clock, TestClock, Timestamp};
///
/// let clock = TestClock::new(Timestamp::from_unix_seconds(1_000));
/// let shared = clock.clone();
/// clock.advance(Duration::from_secs(300));
/// assert_eq!(shared.now(), Timestamp::from_unix_seconds(1_300));
/// ```
#[derive(Clone, Debug, Default)]
pub struct TestClock {
    now: Arc<AtomicU64>,
}

impl TestClock {
    /// A clock standing at `now`.
    pub fn new(now: Timestamp) -> Self {
        TestClock {
            now: Arc::new(AtomicU64::new(now.as_unix_seconds())),
        }
    }

    /// Moves the clock to `now` (backwards too).
    pub fn set(&self, now: Timestamp) {
        self.now.store(now.as_unix_seconds(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by` (whole seconds).
    pub fn advance(&self, by: Duration) {
        let secs = by.as_secs();
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(secs))
            });
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let max = Timestamp::from_unix_seconds(u64::MAX);
        assert_eq!(max + Duration::from_secs(5), max);
        assert_eq!(
            Timestamp::UNIX_EPOCH - Duration::from_secs(5),
            Timestamp::UNIX_EPOCH
        );
    }

    #[test]
    fn test_clock_moves_only_when_told() {
        let c = TestClock::new(Timestamp::from_unix_seconds(10));
        assert_eq!(c.now().as_unix_seconds(), 10);
        c.advance(Duration::from_millis(2_900));
        assert_eq!(c.now().as_unix_seconds(), 12);
        c.set(Timestamp::from_unix_seconds(3));
        assert_eq!(c.now().as_unix_seconds(), 3);
    }

    #[test]
    fn system_time_before_epoch_is_epoch() {
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(Timestamp::from(before), Timestamp::UNIX_EPOCH);
    }
}

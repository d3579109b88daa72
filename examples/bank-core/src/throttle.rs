//! The log-in throttle: failed log-ins counted per user name and per client
//! address in a stepup [`StateStore`], so guessing a password — one user's,
//! or many users' from one address — stops after a few tries.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stepup_challenge::{StateStore, StoreError};
use stepup_core::{Clock, Timestamp};

type HmacSha256 = Hmac<Sha256>;

/// How many failed log-ins are allowed before `/login` refuses for a while.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per user name within `window` (default 5).
    pub per_user: u64,
    /// Failures from one client address — an IPv4 address, an IPv6 /64 —
    /// within `window`, across user names (default 20): password spraying.
    pub per_address: u64,
    /// How long failures are counted, and how long a refusal lasts (default
    /// 15 minutes).
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_user: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Counts failed log-ins per user name and per client address in a
/// [`StateStore`] and refuses — for the right password as for a wrong one —
/// once either budget is spent, until the window has passed.
///
/// Attempts for a user name are counted *before* the password is checked,
/// so racing guesses cannot get past the budget; a success clears that
/// count. Failures from an address are counted after the check, so honest
/// users behind one NAT are not blocked by each other's successes. Store
/// names are keyed HMAC-SHA256 digests (128 bits) under a key derived from
/// the bank's key: the store never holds a user name or an address.
///
/// ```
/// use std::time::Duration;
/// use bank_core::{LoginLimits, LoginThrottle};
/// use stepup_challenge::MemoryStateStore;
/// use stepup_core::{TestClock, Timestamp};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
/// let store = MemoryStateStore::new(clock.clone());
/// let throttle = LoginThrottle::new(store, &[7u8; 32], clock.clone())
///     .with_limits(LoginLimits { per_user: 2, ..LoginLimits::default() });
/// let password_is = |right: bool| throttle.attempt("alice", None, move || right);
/// assert_eq!(password_is(false).await?, Ok(false));
/// assert_eq!(password_is(false).await?, Ok(false));
/// // Spent: refused whatever the password, for the window.
/// assert_eq!(password_is(true).await?, Err(Duration::from_secs(900)));
/// clock.advance(Duration::from_secs(900));
/// assert_eq!(password_is(true).await?, Ok(true));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LoginThrottle<S> {
    state: S,
    names: HmacSha256,
    limits: LoginLimits,
    clock: Arc<dyn Clock>,
}

impl<S> std::fmt::Debug for LoginThrottle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The store names of one attempt's counters and locks.
struct Names {
    user_attempts: String,
    user_lock: String,
    address: Option<(String, String)>,
}

/// One name per use, so a digest made for one never matches another.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Domain {
    User = 1,
    Address = 2,
}

impl<S: StateStore> LoginThrottle<S> {
    /// A throttle counting in `state`, naming entries with a key derived
    /// from `key` (the bank's secret key), reading time from `clock`.
    pub fn new(state: S, key: &[u8], clock: impl Clock) -> Self {
        // A key of its own, so these digests never match anything else made
        // with the bank's key. HMAC takes keys of any length.
        let derived = <HmacSha256 as KeyInit>::new_from_slice(key)
            .map(|mac| mac.chain_update(b"bank-core login throttle v1"))
            .map(|mac| mac.finalize().into_bytes());
        let names = derived
            .ok()
            .and_then(|k| <HmacSha256 as KeyInit>::new_from_slice(&k).ok())
            .unwrap_or_else(|| <HmacSha256 as KeyInit>::new(&Default::default()));
        LoginThrottle {
            state,
            names,
            limits: LoginLimits::default(),
            clock: Arc::new(clock),
        }
    }

    /// Other limits than the defaults.
    pub fn with_limits(mut self, limits: LoginLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Runs one log-in attempt for `user` from `address`: `check` (the
    /// password check) runs only when neither budget is spent.
    /// `Ok(Ok(passed))` is its result, `Ok(Err(retry_after))` a refusal
    /// whatever the password, `Err` a store failure (refuse the log-in).
    pub async fn attempt(
        &self,
        user: &str,
        address: Option<IpAddr>,
        check: impl FnOnce() -> bool,
    ) -> Result<Result<bool, Duration>, StoreError> {
        let names = self.names(user, address);
        let now = self.clock.now();
        let window = self.limits.window;
        let locks = std::iter::once(&names.user_lock).chain(names.address.as_ref().map(|a| &a.1));
        for lock in locks {
            if let Some(until) = self.locked_until(lock, now).await? {
                return Ok(Err(until.duration_since(now)));
            }
        }
        let attempts = self.state.increment(&names.user_attempts, window).await?;
        if attempts > self.limits.per_user {
            // Raced past the lock that the last failure set.
            self.lock(&names.user_lock, now).await?;
            return Ok(Err(window));
        }
        if check() {
            self.state.remove(&names.user_attempts).await?;
            return Ok(Ok(true));
        }
        if attempts >= self.limits.per_user {
            self.lock(&names.user_lock, now).await?;
        }
        if let Some((failures, lock)) = &names.address
            && self.state.increment(failures, window).await? >= self.limits.per_address
        {
            self.lock(lock, now).await?;
        }
        Ok(Ok(false))
    }

    async fn locked_until(
        &self,
        lock: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let until = self
            .state
            .get(lock)
            .await?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(|bytes| Timestamp::from_unix_seconds(u64::from_be_bytes(bytes)));
        Ok(until.filter(|until| *until > now))
    }

    async fn lock(&self, lock: &str, now: Timestamp) -> Result<(), StoreError> {
        let until = now + self.limits.window;
        let value = until.as_unix_seconds().to_be_bytes().to_vec();
        self.state.put(lock, value, self.limits.window).await
    }

    fn names(&self, user: &str, address: Option<IpAddr>) -> Names {
        let user = self.digest(Domain::User, user.as_bytes());
        Names {
            user_attempts: format!("bank:login:attempts:{user}"),
            user_lock: format!("bank:login:lock:{user}"),
            address: address.map(|ip| {
                let ip = self.digest(Domain::Address, &group(ip));
                (
                    format!("bank:login:address:{ip}"),
                    format!("bank:login:address-lock:{ip}"),
                )
            }),
        }
    }

    /// 128 bits of HMAC-SHA256 over the domain and the value, in hex.
    fn digest(&self, domain: Domain, value: &[u8]) -> String {
        let mut mac = self.names.clone();
        mac.update(&[domain as u8]);
        mac.update(value);
        mac.finalize().into_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// An address as its group: IPv4 per address (an IPv4-mapped IPv6 address
/// counts as IPv4), IPv6 per /64 — one subscriber's prefix.
fn group(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets()[..8].to_vec(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use stepup_challenge::MemoryStateStore;
    use stepup_core::TestClock;

    fn throttle(key: u8) -> LoginThrottle<MemoryStateStore> {
        let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
        LoginThrottle::new(MemoryStateStore::new(clock.clone()), &[key; 32], clock)
    }

    #[test]
    fn store_names_are_keyed_and_carry_no_user_name() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let a = throttle(1).names("alice", ip("2001:db8:1:2::1"));
        let b = throttle(2).names("alice", ip("2001:db8:1:2::1"));
        assert!(!a.user_attempts.contains("alice"));
        assert_ne!(a.user_attempts, b.user_attempts);
        assert_eq!(a.user_attempts.len(), "bank:login:attempts:".len() + 32);
        // One IPv6 /64 is one address; IPv4 per address.
        let t = throttle(1);
        assert_eq!(
            a.address,
            t.names("bob", ip("2001:db8:1:2:ffff::9")).address
        );
        assert_ne!(a.address, t.names("bob", ip("2001:db8:1:3::1")).address);
        assert_ne!(
            t.names("bob", ip("192.0.2.1")).address,
            t.names("bob", ip("192.0.2.2")).address
        );
        assert_eq!(
            t.names("bob", ip("::ffff:192.0.2.1")).address,
            t.names("bob", ip("192.0.2.1")).address
        );
    }
}

//! Keyed digests for everything the engine writes into a store: the names
//! of state entries (subjects, client addresses, TOTP secrets) and the
//! digests of one-time codes. A store reader without the server key can
//! neither tell whose entry is whose nor test guesses against a digest.

use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stepup_core::Subject;

type HmacSha256 = Hmac<Sha256>;

/// How many bytes of a keyed digest name a store entry: 128 bits, so
/// chosen user names cannot be made to collide.
const NAME_BYTES: usize = 16;

/// The engine's server-side key for store names and code digests, keyed
/// once (each use clones the keyed state).
#[derive(Clone)]
pub(crate) struct StoreKeys {
    mac: HmacSha256,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKeys([redacted])")
    }
}

/// One domain per use, so a digest made for one never matches another.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Domain {
    Subject = 1,
    Session = 2,
    Address = 3,
    Code = 4,
    Secret = 5,
    Events = 6,
    #[cfg_attr(not(feature = "passkey"), allow(dead_code))]
    UserHandle = 8,
}

impl StoreKeys {
    pub(crate) fn new(key: &[u8; 32]) -> StoreKeys {
        // HMAC takes keys of any length: this cannot fail.
        let mac = <HmacSha256 as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
        StoreKeys { mac }
    }

    fn digest(&self, domain: Domain, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(&[domain as u8]);
        for part in parts {
            // Length-prefixed, so ("ab","c") and ("a","bc") differ.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The store name of a subject (its id only: counters and factors
    /// are per user, across sessions).
    pub(crate) fn subject(&self, subject: &Subject) -> String {
        hex(&self.digest(Domain::Subject, &[subject.id().as_bytes()])[..NAME_BYTES])
    }

    /// The store name of a subject's login session (pending enrollments).
    pub(crate) fn session(&self, subject: &Subject) -> String {
        hex(&self.session_digest(subject)[..NAME_BYTES])
    }

    /// Binds a record to the subject and session that made it.
    pub(crate) fn session_digest(&self, subject: &Subject) -> [u8; 32] {
        let session = subject.session().unwrap_or("");
        self.digest(
            Domain::Session,
            &[
                subject.id().as_bytes(),
                &[u8::from(subject.session().is_some())],
                session.as_bytes(),
            ],
        )
    }

    /// The store name of a client address, grouped: IPv4 per address,
    /// IPv6 per prefix of `v6_prefix` bits (a /64 is one subscriber).
    pub(crate) fn address(&self, address: IpAddr, v6_prefix: u8) -> String {
        let grouped = group(address, v6_prefix);
        hex(&self.digest(Domain::Address, &[&grouped])[..NAME_BYTES])
    }

    /// The digest a one-time code is stored as: keyed, bound to its
    /// challenge id.
    pub(crate) fn code(&self, challenge_id: &[u8], code: &str) -> [u8; 32] {
        self.digest(Domain::Code, &[challenge_id, code.as_bytes()])
    }

    /// A fingerprint of a TOTP secret, naming its replay state: a new
    /// secret starts with its own.
    pub(crate) fn secret(&self, secret: &[u8]) -> String {
        hex(&self.digest(Domain::Secret, &[secret])[..NAME_BYTES])
    }

    /// The WebAuthn user handle of a subject: stable, 16 bytes, revealing
    /// nothing of the id without the server key.
    #[cfg(feature = "passkey")]
    pub(crate) fn user_handle(&self, subject: &Subject) -> [u8; 16] {
        let full = self.digest(Domain::UserHandle, &[subject.id().as_bytes()]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// The pseudonym of a subject in events and logs.
    pub(crate) fn events(&self, subject: &Subject) -> String {
        hex(&self.digest(Domain::Events, &[subject.id().as_bytes()])[..8])
    }
}

/// An address as the bytes of its group: 4 bytes for IPv4 (an IPv4-mapped
/// IPv6 address counts as IPv4), the first `v6_prefix` bits for IPv6.
fn group(address: IpAddr, v6_prefix: u8) -> Vec<u8> {
    match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| nat64(v6)) {
            Some(v4) => v4.octets().to_vec(),
            None => {
                let bits = u32::from(v6_prefix.clamp(1, 128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                let mut out = vec![6u8, v6_prefix.clamp(1, 128)];
                out.extend_from_slice(&(u128::from(v6) & mask).to_be_bytes());
                out
            }
        },
    }
}

/// The IPv4 client behind a NAT64 address of the well-known prefix
/// `64:ff9b::/96` (RFC 6052): each such client is its own IPv4 address, not
/// one /64 shared by every translated client.
fn nat64(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let o = v6.octets();
        std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15])
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_keyed_and_128_bits() {
        let a = StoreKeys::new(&[1u8; 32]);
        let b = StoreKeys::new(&[2u8; 32]);
        let alice = Subject::new("alice");
        assert_eq!(a.subject(&alice).len(), 32);
        assert_ne!(a.subject(&alice), b.subject(&alice));
        assert_ne!(a.subject(&alice), a.subject(&Subject::new("bob")));
        // Not the plain SHA-256 of the id that names used to be.
        use sha2::Digest;
        let plain = hex(&sha2::Sha256::digest(b"alice")[..16]);
        assert_ne!(a.subject(&alice), plain);
        assert_ne!(a.code(b"id", "123456"), b.code(b"id", "123456"));
        assert_ne!(a.code(b"id1", "23456"), a.code(b"id", "123456"));
    }

    #[test]
    fn sessions_differ_from_no_session() {
        let k = StoreKeys::new(&[1u8; 32]);
        let none = Subject::new("alice");
        let empty = Subject::new("alice").with_session("");
        let one = Subject::new("alice").with_session("s1");
        assert_ne!(k.session(&none), k.session(&empty));
        assert_ne!(k.session(&one), k.session(&empty));
    }

    #[test]
    fn ipv6_is_grouped_by_prefix_and_ipv4_by_address() {
        let k = StoreKeys::new(&[1u8; 32]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            k.address(ip("2001:db8:1:2::1"), 64),
            k.address(ip("2001:db8:1:2:ffff::9"), 64)
        );
        assert_ne!(
            k.address(ip("2001:db8:1:2::1"), 64),
            k.address(ip("2001:db8:1:3::1"), 64)
        );
        assert_ne!(
            k.address(ip("2001:db8:1:2::1"), 128),
            k.address(ip("2001:db8:1:2::2"), 128)
        );
        assert_ne!(
            k.address(ip("192.0.2.1"), 64),
            k.address(ip("192.0.2.2"), 64)
        );
        assert_eq!(
            k.address(ip("::ffff:192.0.2.1"), 64),
            k.address(ip("192.0.2.1"), 64)
        );
        // NAT64: translated IPv4 clients are told apart.
        assert_eq!(
            k.address(ip("64:ff9b::192.0.2.1"), 64),
            k.address(ip("192.0.2.1"), 64)
        );
        assert_ne!(
            k.address(ip("64:ff9b::192.0.2.1"), 64),
            k.address(ip("64:ff9b::192.0.2.2"), 64)
        );
    }
}

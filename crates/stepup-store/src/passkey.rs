//! A passkey as a [`PasskeyStore`](crate::PasskeyStore) keeps it.

use stepup_core::Method;
use webauthn_rs::prelude::Passkey;

/// A passkey registered to a subject, with the name the user gave it.
///
/// A store keeps the whole record: the name, and the credential as
/// `webauthn-rs` serialises it (`serde`), so its counter and backup state
/// survive a round trip.
///
/// ```
/// use stepup_store::StoredPasskey;
///
/// /// How a passkey list shows one entry.
/// fn describe(passkey: &StoredPasskey) -> String {
///     let kind = if passkey.is_device_bound() { "security key" } else { "passkey" };
///     format!("{} ({kind}, {})", passkey.name, passkey.id_base64())
/// }
/// # let _ = describe;
/// ```
#[derive(Clone, Debug)]
pub struct StoredPasskey {
    /// The user's name for it ("work laptop").
    pub name: String,
    /// The credential (public key, id, counter, backup state).
    pub passkey: Passkey,
}

impl StoredPasskey {
    /// The credential id: what the passkey is known by (removing, renaming).
    pub fn id(&self) -> &[u8] {
        self.passkey.cred_id().as_slice()
    }

    /// The credential id in base64url without padding, as the routes and
    /// pages name it.
    pub fn id_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.id())
    }

    /// The signature counter of the credential (0 for authenticators
    /// that keep none; `None` if the record does not say): a store never
    /// moves it back
    /// ([`PasskeyStore::update_passkey`](crate::PasskeyStore::update_passkey)).
    pub fn counter(&self) -> Option<u32> {
        // Read from the record webauthn-rs serialises, as the backup flag
        // below (a typed read needs a `danger-` feature). `None` if that
        // format ever changes: a store then refuses the update rather than
        // take the counter for 0.
        serde_json::to_value(&self.passkey)
            .ok()
            .and_then(|v| v.get("cred")?.get("counter")?.as_u64())
            .and_then(|c| u32::try_from(c).ok())
    }

    /// Whether the credential is bound to its device: its authenticator
    /// said at registration that it is not backup-eligible, so it cannot be
    /// synced to other devices (a security key, a TPM-bound platform key).
    pub fn is_device_bound(&self) -> bool {
        // webauthn-rs keeps the flag in the credential it serialises for
        // storage (reading it directly needs a `danger-` feature); a
        // record without it is not taken to be device-bound.
        serde_json::to_value(&self.passkey)
            .ok()
            .and_then(|v| v.get("cred")?.get("backup_eligible")?.as_bool())
            .is_some_and(|eligible| !eligible)
    }

    /// The method a step-up with this passkey proves *if its authenticator's
    /// claim is believed*: a device-bound passkey
    /// ([`Method::DeviceBoundPasskey`], `amr` `hwk`, NIST AAL3) or one that
    /// may be synced ([`Method::Passkey`], `amr` `swk`, AAL2). The
    /// `stepup-challenge` engine believes it only with
    /// `PasskeyConfig::trust_unattested_device_binding`.
    pub fn claimed_method(&self) -> Method {
        if self.is_device_bound() {
            Method::DeviceBoundPasskey
        } else {
            Method::Passkey
        }
    }
}

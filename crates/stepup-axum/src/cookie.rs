//! The assurance cookie's attributes, the same on set and on delete.

use std::time::Duration;

use axum::http::HeaderValue;

/// How the assurance cookie is written.
///
/// The default is what production wants: the name `__Host-stepup` (browsers
/// then insist on `Secure`, `Path=/` and no `Domain`), `Secure`, `HttpOnly`,
/// `SameSite=Strict`, `Path=/`, `Max-Age` equal to the token lifetime.
/// [`CookieSettings::local_development`] drops the prefix and `Secure` so the
/// cookie works over plain `http://127.0.0.1` — never use it anywhere else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieSettings {
    name: String,
    secure: bool,
}

impl Default for CookieSettings {
    fn default() -> Self {
        CookieSettings {
            name: stepup_tower::DEFAULT_COOKIE_NAME.to_owned(),
            secure: true,
        }
    }
}

impl CookieSettings {
    /// **For plain-http local development only**: the cookie is named
    /// `stepup` and not marked `Secure`, because browsers refuse `__Host-`
    /// and `Secure` cookies from `http://` origins.
    pub fn local_development() -> CookieSettings {
        CookieSettings {
            name: "stepup".to_owned(),
            secure: false,
        }
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn attributes(&self) -> &'static str {
        if self.secure {
            "Path=/; Secure; HttpOnly; SameSite=Strict"
        } else {
            "Path=/; HttpOnly; SameSite=Strict"
        }
    }

    /// `Set-Cookie` for a new token living `max_age`.
    pub fn set(&self, token: &str, max_age: Duration) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "{}={}; {}; Max-Age={}",
            self.name,
            token,
            self.attributes(),
            max_age.as_secs()
        ))
        .ok()
    }

    /// `Set-Cookie` deleting the cookie, with the same attributes.
    pub fn delete(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!("{}=; {}; Max-Age=0", self.name, self.attributes())).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_delete_carry_the_same_attributes() {
        let c = CookieSettings::default();
        let set = c.set("tok", Duration::from_secs(3600)).unwrap();
        assert_eq!(
            set,
            "__Host-stepup=tok; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
        );
        let del = c.delete().unwrap();
        assert_eq!(
            del,
            "__Host-stepup=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"
        );
        assert!(!set.to_str().unwrap().contains("Domain"));
        let local = CookieSettings::local_development()
            .set("t", Duration::from_secs(5))
            .unwrap();
        assert_eq!(
            local,
            "stepup=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=5"
        );
    }
}

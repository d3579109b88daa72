//! The assurance cookie: its name and how it is written.

use stepup_core::ReturnTo;

/// The header API clients that keep no cookies may send the token in, where
/// an adapter enables it (`accept_token_header`). A request carrying both it
/// and the cookie is refused.
pub const TOKEN_HEADER: &str = "stepup-assurance";

/// The default name of the assurance cookie. The `__Host-` prefix makes
/// browsers insist on `Secure`, `Path=/` and no `Domain`.
pub const DEFAULT_COOKIE_NAME: &str = "__Host-stepup";

/// How the assurance cookie is written, the same attributes on set and on
/// delete.
///
/// The default is what production wants: the name `__Host-stepup` (browsers
/// then insist on `Secure`, `Path=/` and no `Domain`), `Secure`, `HttpOnly`,
/// `SameSite=Strict`, `Path=/`, `Max-Age` equal to the token lifetime.
/// [`CookieSettings::insecure_local_development`] drops the prefix and `Secure` so the
/// cookie works over plain `http://127.0.0.1` — never use it anywhere else.
///
/// ```
/// use std::time::Duration;
/// use stepup_http::CookieSettings;
/// let cookie = CookieSettings::default();
/// assert_eq!(
///     cookie.set_cookie("tok", Duration::from_secs(3600)),
///     "__Host-stepup=tok; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieSettings {
    name: String,
    secure: bool,
}

impl Default for CookieSettings {
    fn default() -> Self {
        CookieSettings {
            name: DEFAULT_COOKIE_NAME.to_owned(),
            secure: true,
        }
    }
}

impl CookieSettings {
    /// **For plain-http local development only**: the cookie is named
    /// `stepup` and not marked `Secure`, because browsers refuse `__Host-`
    /// and `Secure` cookies from `http://` origins.
    pub fn insecure_local_development() -> CookieSettings {
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

    /// The `Set-Cookie` value for a new token living `max_age`.
    pub fn set_cookie(&self, token: &str, max_age: std::time::Duration) -> String {
        format!(
            "{}={}; {}; Max-Age={}",
            self.name,
            token,
            self.attributes(),
            max_age.as_secs()
        )
    }

    /// The `Set-Cookie` value deleting the cookie, with the same attributes.
    pub fn delete_cookie(&self) -> String {
        format!("{}=; {}; Max-Age=0", self.name, self.attributes())
    }
}

/// What to answer when no user is logged in.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum NoSubject {
    /// `401` with a small problem body and no step-up challenge (logging in is
    /// the application's job). The default.
    #[default]
    Unauthorized,
    /// Browsers navigating are sent (`303`) to this login page with
    /// `?return_to=…`; everything else gets the `401`.
    RedirectToLogin(ReturnTo),
}

//! The client context a step-up is made in: a coarse network prefix and
//! the browser family, recorded in the token as a keyed digest (never the
//! address or the `User-Agent` itself), so a policy can say "an hour on
//! the same network and browser, else five minutes" ([`Policy::same_context`](stepup_core::Policy::same_context)).

use std::net::IpAddr;

/// How the client context is taken from a request: the client address cut
/// to a network prefix (IPv4 /24 and IPv6 /48 by default: a home or office
/// network, not one address that a phone changes every few minutes) and
/// the browser family of the `User-Agent` (`chrome`, `firefox`, `safari`,
/// `edge`, …: never the full string, which changes with every update).
/// The address is the one the adapters give the attempt limiter (the
/// adapter's `ClientAddress`, else the connection's peer).
///
/// ```
/// use stepup_http::ContextSettings;
///
/// let context = ContextSettings::default();
/// let firefox = b"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
/// let home = context.context(Some("203.0.113.9".parse()?), Some(firefox));
/// assert_eq!(home.as_deref(), Some("stepup-context/1 net=203.0.113.0/24 browser=firefox"));
/// // Another address in the same /24, the same browser: the same context.
/// assert_eq!(context.context(Some("203.0.113.200".parse()?), Some(firefox)), home);
/// // Only the network, /16:
/// let wide = ContextSettings::default().network_only().ipv4_prefix(16);
/// assert_eq!(wide.context(Some("203.0.113.9".parse()?), None).as_deref(), Some("stepup-context/1 net=203.0.0.0/16"));
/// // Without the client's address there is no context (never "the same").
/// assert_eq!(context.context(None, Some(firefox)), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextSettings {
    v4: u8,
    v6: u8,
    network: bool,
    browser: bool,
}

impl Default for ContextSettings {
    fn default() -> ContextSettings {
        ContextSettings {
            v4: 24,
            v6: 48,
            network: true,
            browser: true,
        }
    }
}

impl ContextSettings {
    /// The IPv4 prefix length (at most 32; default 24).
    #[must_use]
    pub fn ipv4_prefix(mut self, bits: u8) -> ContextSettings {
        self.v4 = bits.min(32);
        self
    }

    /// The IPv6 prefix length (at most 128; default 48).
    #[must_use]
    pub fn ipv6_prefix(mut self, bits: u8) -> ContextSettings {
        self.v6 = bits.min(128);
        self
    }

    /// The network only, not the browser.
    #[must_use]
    pub fn network_only(mut self) -> ContextSettings {
        self.network = true;
        self.browser = false;
        self
    }

    /// The browser family only, not the network (for clients whose
    /// address changes all the time).
    #[must_use]
    pub fn browser_only(mut self) -> ContextSettings {
        self.network = false;
        self.browser = true;
        self
    }

    /// The context of a request from `address` with `user_agent`: the bytes
    /// the issuer digests into the token and the gate compares. `None`
    /// when the network is part of the context but the request has no
    /// address (the adapters were given none): such a request has no
    /// context — its token records none and a `same_context` term is never
    /// met for it (every client would otherwise share one network).
    pub fn context(&self, address: Option<IpAddr>, user_agent: Option<&[u8]>) -> Option<String> {
        let mut out = String::from("stepup-context/1");
        if self.network {
            out.push_str(" net=");
            out.push_str(&network_prefix(address?, self.v4, self.v6));
        }
        if self.browser {
            out.push_str(" browser=");
            out.push_str(browser_family(user_agent));
        }
        Some(out)
    }
}

/// `address` cut to its network prefix — `v4` bits of an IPv4 address,
/// `v6` bits of an IPv6 one —, written `a.b.c.0/24`.
///
/// ```
/// use stepup_http::network_prefix;
/// let ip = "198.51.100.77".parse().unwrap();
/// assert_eq!(network_prefix(ip, 24, 48), "198.51.100.0/24");
/// ```
pub fn network_prefix(address: IpAddr, v4: u8, v6: u8) -> String {
    match address.to_canonical() {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
            let net = std::net::Ipv4Addr::from(u32::from(a) & mask);
            format!("{net}/{v4}")
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
            let net = std::net::Ipv6Addr::from(u128::from(a) & mask);
            format!("{net}/{v6}")
        }
    }
}

/// The browser family of a `User-Agent`: `edge`, `opera`, `samsung`,
/// `firefox`, `chrome`, `safari`, `other`, or `none` without one. Only
/// the first 512 bytes are read.
///
/// ```
/// use stepup_http::browser_family;
/// let chrome = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// assert_eq!(browser_family(Some(chrome)), "chrome");
/// let edge = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
/// assert_eq!(browser_family(Some(edge)), "edge");
/// let safari = b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";
/// assert_eq!(browser_family(Some(safari)), "safari");
/// assert_eq!(browser_family(Some(b"curl/8.5.0")), "other");
/// assert_eq!(browser_family(None), "none");
/// ```
pub fn browser_family(user_agent: Option<&[u8]>) -> &'static str {
    let Some(ua) = user_agent else {
        return "none";
    };
    let ua = &ua[..ua.len().min(512)];
    let has = |needle: &[u8]| ua.windows(needle.len()).any(|w| w == needle);
    if ua.iter().all(u8::is_ascii_whitespace) {
        "none"
    } else if has(b"Edg/") || has(b"EdgA/") || has(b"EdgiOS/") {
        "edge"
    } else if has(b"OPR/") || has(b"Opera") {
        "opera"
    } else if has(b"SamsungBrowser/") {
        "samsung"
    } else if has(b"Firefox/") || has(b"FxiOS/") {
        "firefox"
    } else if has(b"Chrome/") || has(b"CriOS/") || has(b"Chromium/") {
        "chrome"
    } else if has(b"Safari/") {
        "safari"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_cut_to_their_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            network_prefix(ip("198.51.100.77"), 24, 48),
            "198.51.100.0/24"
        );
        assert_eq!(
            network_prefix(ip("198.51.100.77"), 32, 48),
            "198.51.100.77/32"
        );
        assert_eq!(network_prefix(ip("198.51.100.77"), 0, 48), "0.0.0.0/0");
        assert_eq!(
            network_prefix(ip("2001:db8:abcd:12::1"), 24, 48),
            "2001:db8:abcd::/48"
        );
        assert_eq!(network_prefix(ip("2001:db8:abcd:12::1"), 24, 0), "::/0");
        // An IPv4-mapped IPv6 address is its IPv4 network.
        assert_eq!(
            network_prefix(ip("::ffff:198.51.100.77"), 24, 48),
            "198.51.100.0/24"
        );
    }

    #[test]
    fn browsers_are_families() {
        let firefox_ios = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/120.0 Mobile/15E148 Safari/605.1.15";
        assert_eq!(browser_family(Some(firefox_ios)), "firefox");
        let opera = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0";
        assert_eq!(browser_family(Some(opera)), "opera");
        assert_eq!(browser_family(Some(b"   ")), "none");
        // A huge header is read only so far.
        let mut long = vec![b'x'; 100_000];
        long.extend_from_slice(b" Firefox/133.0");
        assert_eq!(browser_family(Some(&long)), "other");
    }

    #[test]
    fn the_context_names_only_what_is_configured() {
        let ua: &[u8] = b"Mozilla/5.0 Firefox/133.0";
        let a = Some("203.0.113.9".parse().unwrap());
        let d = ContextSettings::default();
        assert_eq!(d.context(None, None), None, "no address, no context");
        assert_eq!(
            d.browser_only().context(None, Some(ua)).as_deref(),
            Some("stepup-context/1 browser=firefox")
        );
        assert_eq!(
            d.ipv4_prefix(40).context(a, Some(ua)).as_deref(),
            Some("stepup-context/1 net=203.0.113.9/32 browser=firefox")
        );
    }
}

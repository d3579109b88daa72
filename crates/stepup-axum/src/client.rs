//! `ClientAddress`: the client's address as the application knows it, for
//! the per-address attempt budget.

use std::convert::Infallible;
use std::net::IpAddr;

use axum::extract::OptionalFromRequestParts;
use axum::http::request::Parts;

/// The client's address, for the per-address attempt budget of the
/// challenge routes (and, as an `Option<ClientAddress>` extractor, for the
/// application's own limits).
///
/// Behind a reverse proxy the socket peer is the proxy, so every user would
/// share one budget — and one user could spend it for everyone. Put the real
/// client's address in the request extensions from your own trusted-proxy
/// middleware (see the crate docs, "Behind a reverse proxy"); it takes
/// precedence over the connection's peer address (`ConnectInfo`, with the
/// default feature `connect-info`).
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use stepup_axum::ClientAddress;
///
/// let mut request = axum::http::Request::new(());
/// request.extensions_mut().insert(ClientAddress(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))));
/// let (parts, _) = request.into_parts();
/// assert_eq!(ClientAddress::of(&parts), Some(ClientAddress("203.0.113.9".parse()?)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The address of the client of a request: a `ClientAddress` in the
    /// request extensions, or else — with the feature `connect-info` — the
    /// peer from `ConnectInfo<SocketAddr>` (served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`).
    pub fn of(parts: &Parts) -> Option<ClientAddress> {
        if let Some(address) = parts.extensions.get::<ClientAddress>() {
            return Some(*address);
        }
        #[cfg(feature = "connect-info")]
        if let Some(info) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        {
            return Some(ClientAddress(info.0.ip()));
        }
        None
    }
}

/// `Option<ClientAddress>` in a handler: [`ClientAddress::of`].
impl<S: Send + Sync> OptionalFromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(ClientAddress::of(parts))
    }
}

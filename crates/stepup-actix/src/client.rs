//! `ClientAddress`: the client's address as the application knows it, for
//! the per-address attempt budget.

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

/// The client's address, for the per-address attempt budget of the
/// challenge routes (and for the application's own limits, as an
/// extractor).
///
/// Behind a reverse proxy the socket peer is the proxy, so every user would
/// share one budget — and one user could spend it for everyone. Put the real
/// client's address in the request extensions from your own trusted-proxy
/// middleware (see the crate docs, "Behind a reverse proxy"); the challenge
/// routes take it before the connection's `peer_addr`.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use actix_web::HttpMessage;
/// use stepup_actix::ClientAddress;
///
/// let request = actix_web::test::TestRequest::default()
///     .peer_addr("10.0.0.2:40000".parse()?)
///     .to_http_request();
/// assert_eq!(ClientAddress::of(&request), Some(ClientAddress("10.0.0.2".parse()?)));
/// // What a proxy-aware middleware of the application inserts wins.
/// request.extensions_mut().insert(ClientAddress(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))));
/// assert_eq!(ClientAddress::of(&request), Some(ClientAddress("203.0.113.9".parse()?)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The address of the client of `request`: a `ClientAddress` in the
    /// request extensions, or else the connection's peer.
    pub fn of(request: &HttpRequest) -> Option<ClientAddress> {
        if let Some(address) = request.extensions().get::<ClientAddress>() {
            return Some(*address);
        }
        request.peer_addr().map(|peer| ClientAddress(peer.ip()))
    }
}

/// As an extractor: [`ClientAddress::of`]; a request with neither (a test
/// request, a Unix socket) is refused with `400`. Take `Option<ClientAddress>`
/// to handle that case yourself.
impl FromRequest for ClientAddress {
    type Error = actix_web::Error;
    type Future = Ready<Result<ClientAddress, actix_web::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            ClientAddress::of(request).ok_or_else(|| {
                actix_web::error::ErrorBadRequest("the client's address is unknown")
            }),
        )
    }
}

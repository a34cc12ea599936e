//! Who is calling, as far as throttles count: the TCP peer address that `serve` records on
//! every request. `X-Forwarded-For` is not read: nothing tells us which proxy to believe, and
//! a header anyone can set would let every request claim a fresh address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::Extensions;

/// The peer's address; `None` for requests that did not come through a socket (in-process
/// router tests), which then share one source.
pub fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

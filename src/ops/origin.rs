//! Host and Origin validation for every HTTP request (spec 2025-11-25 basic/transports
//! §Security Warning: an invalid Origin is 403). Loopback host names are always allowed; others
//! come from the allow-lists in the config. A browser Origin must be the daemon's own origin
//! (the one its request was sent to: the same host and port as the `Host` header, or
//! `PUBLIC_URL`) or one configured in `ALLOWED_ORIGINS`: another page on the same machine,
//! whatever its port, cannot drive the daemon. Requests without `Origin` (non-browser clients)
//! pass.

/// Which `Host` and `Origin` values a server accepts.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Lower-case host names (no port); `*` accepts any host.
    hosts: Vec<String>,
    /// Exact origins (`scheme://host[:port]`, lower-case, default port dropped) accepted
    /// besides the daemon's own.
    origins: Vec<String>,
}

const LOOPBACK: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "::1"];

impl OriginPolicy {
    /// `origins`: `ALLOWED_ORIGINS` and the `PUBLIC_URL` origin.
    pub fn new(extra_hosts: &[String], origins: &[String]) -> Self {
        let mut hosts: Vec<String> = LOOPBACK.iter().map(|s| s.to_string()).collect();
        hosts.extend(
            extra_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty()),
        );
        let origins = origins
            .iter()
            .filter_map(|o| normalise_origin(o.trim().trim_end_matches('/')))
            .collect();
        Self { hosts, origins }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts.iter().any(|h| h == "*" || *h == host)
    }

    /// Checks one request's headers; the error names what was refused.
    pub fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), String> {
        let host = match host {
            Some(h) if self.host_allowed(strip_port(h)) => h,
            Some(h) => return Err(format!("Host '{h}' is not allowed")),
            None => return Err("the Host header is missing".to_string()),
        };
        if let Some(origin) = origin {
            let allowed = normalise_origin(origin.trim())
                .is_some_and(|o| self.origins.contains(&o) || same_authority(&o, host));
            if !allowed {
                return Err(format!(
                    "Origin '{origin}' is not allowed (only this server's own origin and ALLOWED_ORIGINS are)"
                ));
            }
        }
        Ok(())
    }
}

/// `example.com:8000` -> `example.com`; `[::1]:8000` -> `[::1]`.
fn strip_port(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn default_port(scheme: &str) -> &'static str {
    if scheme == "https" { "443" } else { "80" }
}

/// `scheme://host[:port]` lower-cased with the scheme's default port dropped, or `None` for
/// anything else (`null`, paths, user info, other schemes).
fn normalise_origin(origin: &str) -> Option<String> {
    let o = origin.to_ascii_lowercase();
    let (scheme, authority) = o.split_once("://")?;
    if !matches!(scheme, "http" | "https")
        || authority.is_empty()
        || authority.contains(['/', '@', '?', '#'])
    {
        return None;
    }
    let host = strip_port(authority);
    let port = authority[host.len()..].trim_start_matches(':');
    if port.is_empty() || port == default_port(scheme) {
        Some(format!("{scheme}://{host}"))
    } else {
        Some(format!("{scheme}://{host}:{port}"))
    }
}

/// Whether a normalised origin names the authority of the `Host` header: the page was served
/// by the server this request went to.
fn same_authority(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    let name = strip_port(&host);
    let port = host[name.len()..].trim_start_matches(':');
    let host = if port.is_empty() || port == default_port(scheme) {
        name.to_string()
    } else {
        format!("{name}:{port}")
    };
    authority == host
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_allowed_with_any_port() {
        let p = OriginPolicy::new(&[], &[]);
        for h in [
            "localhost",
            "localhost:8000",
            "127.0.0.1:1",
            "[::1]:8000",
            "LOCALHOST",
        ] {
            assert!(p.check(Some(h), None).is_ok(), "{h}");
        }
    }

    #[test]
    fn only_the_servers_own_origin_is_accepted_on_loopback() {
        let p = OriginPolicy::new(&[], &[]);
        assert!(
            p.check(Some("localhost:8000"), Some("http://localhost:8000"))
                .is_ok()
        );
        assert!(
            p.check(Some("127.0.0.1:8000"), Some("http://127.0.0.1:8000"))
                .is_ok()
        );
        assert!(p.check(Some("[::1]:80"), Some("http://[::1]")).is_ok());
        let other_port = p.check(Some("localhost:8000"), Some("http://localhost:3000"));
        assert!(other_port.unwrap_err().contains("localhost:3000"));
        assert!(
            p.check(Some("127.0.0.1:8000"), Some("http://[::1]:5173"))
                .is_err()
        );
        assert!(
            p.check(Some("127.0.0.1:8000"), Some("http://localhost:8000"))
                .is_err(),
            "another host name is another origin"
        );
    }

    #[test]
    fn rebinding_hosts_and_foreign_origins_are_refused() {
        let p = OriginPolicy::new(&[], &[]);
        assert!(p.check(Some("evil.example.com"), None).is_err());
        assert!(
            p.check(Some("localhost:8000"), Some("http://evil.example.com"))
                .is_err()
        );
        assert!(p.check(Some("localhost:8000"), Some("null")).is_err());
        assert!(
            p.check(Some("localhost:8000"), Some("http://localhost@evil.com"))
                .is_err()
        );
        assert!(
            p.check(
                Some("localhost:8000"),
                Some("http://localhost:8000@evil.com")
            )
            .is_err()
        );
        assert!(p.check(Some("localhost.evil.com"), None).is_err());
        assert!(p.check(None, None).is_err());
    }

    #[test]
    fn configured_hosts_and_origins_extend_the_lists() {
        let p = OriginPolicy::new(
            &["mcp.example.com".into()],
            &[
                "https://app.example.org/".into(),
                "HTTPS://Pub.Example:443".into(),
            ],
        );
        assert!(
            p.check(Some("mcp.example.com"), Some("https://mcp.example.com"))
                .is_ok(),
            "a TLS proxy in front: the page's origin is the server's own"
        );
        assert!(
            p.check(Some("mcp.example.com:443"), Some("https://app.example.org"))
                .is_ok()
        );
        assert!(
            p.check(Some("mcp.example.com"), Some("https://pub.example"))
                .is_ok()
        );
        assert!(
            p.check(Some("mcp.example.com"), Some("https://other.example.org"))
                .is_err()
        );
        assert!(
            p.check(
                Some("mcp.example.com"),
                Some("https://mcp.example.com:8443")
            )
            .is_err(),
            "an allowed host on another port is another origin"
        );
        let any = OriginPolicy::new(&["*".into()], &[]);
        assert!(any.check(Some("whatever.internal"), None).is_ok());
    }
}

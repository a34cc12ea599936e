//! Host and Origin validation for every HTTP request (spec 2025-11-25 basic/transports
//! §Security Warning: an invalid Origin is 403). Loopback names are always allowed; others come
//! from the allow-lists in the config.

/// Which `Host` and `Origin` values a server accepts.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Lower-case host names (no port); `*` accepts any host.
    hosts: Vec<String>,
    /// Exact origins (`scheme://host[:port]`, lower-case) accepted besides allowed hosts.
    origins: Vec<String>,
}

const LOOPBACK: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "::1"];

impl OriginPolicy {
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
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Self { hosts, origins }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts.iter().any(|h| h == "*" || *h == host)
    }

    /// Checks one request's headers; the error names what was refused.
    pub fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), String> {
        match host {
            Some(h) if self.host_allowed(strip_port(h)) => {}
            Some(h) => return Err(format!("Host '{h}' is not allowed")),
            None => return Err("the Host header is missing".to_string()),
        }
        if let Some(origin) = origin {
            let o = origin.trim().to_ascii_lowercase();
            let allowed =
                self.origins.contains(&o) || origin_host(&o).is_some_and(|h| self.host_allowed(h));
            if !allowed {
                return Err(format!("Origin '{origin}' is not allowed"));
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

/// The host of `scheme://host[:port]`, or `None` for anything else (including `null`).
fn origin_host(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split('/').next()?;
    if authority.contains('@') {
        return None;
    }
    Some(strip_port(authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_allowed_with_any_port() {
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
        assert!(
            p.check(Some("localhost:8000"), Some("http://localhost:3000"))
                .is_ok()
        );
        assert!(
            p.check(Some("127.0.0.1:8000"), Some("http://[::1]:5173"))
                .is_ok()
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
        assert!(p.check(Some("localhost.evil.com"), None).is_err());
        assert!(p.check(None, None).is_err());
    }

    #[test]
    fn configured_hosts_and_origins_extend_the_lists() {
        let p = OriginPolicy::new(
            &["mcp.example.com".into()],
            &["https://app.example.org/".into()],
        );
        assert!(
            p.check(Some("mcp.example.com"), Some("https://mcp.example.com"))
                .is_ok()
        );
        assert!(
            p.check(Some("mcp.example.com:443"), Some("https://app.example.org"))
                .is_ok()
        );
        assert!(
            p.check(Some("mcp.example.com"), Some("https://other.example.org"))
                .is_err()
        );
        let any = OriginPolicy::new(&["*".into()], &[]);
        assert!(any.check(Some("whatever.internal"), None).is_ok());
    }
}

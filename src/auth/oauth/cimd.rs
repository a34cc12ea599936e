//! Client ID Metadata Documents: a `client_id` that is an HTTPS URL names a JSON document
//! describing the client, which we fetch — carefully, since anyone can make us fetch any URL
//! (SSRF). Only HTTPS; every address the name resolves to must be public (no loopback,
//! private, link-local, CGNAT, multicast or NAT64-wrapped private addresses); the connection
//! goes to the addresses we checked (no second DNS answer); redirects are not followed; the
//! body is capped and the fetch has a deadline. Documents are cached per `Cache-Control`.
//! `CIMD_ALLOW_PRIVATE` lifts the address and scheme rules for development.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Deserialize;
use url::Url;

use super::clients::{Client, check_redirect_uri};
use super::{OAuthError, OAuthResult};
use crate::clock::Clock;

const MAX_BYTES: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_CACHE_S: u64 = 300;
const MAX_CACHE_S: u64 = 86_400;
const MAX_CACHED: usize = 10_000;

pub struct MetadataFetcher {
    allow_private: bool,
    cache: Mutex<HashMap<String, (Client, u64)>>,
    /// Recently refused URLs (until when), so unauthenticated requests cannot make us fetch a
    /// bad URL again and again.
    failures: Mutex<HashMap<String, u64>>,
    slots: tokio::sync::Semaphore,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Deserialize)]
struct Document {
    client_id: String,
    client_name: String,
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
}

/// The client learns that the document was refused, not why: the reason (addresses the name
/// resolves to, resolution errors) would make us an oracle for the internal network. It goes
/// to the log instead.
fn refuse(url: &str, why: impl std::fmt::Display) -> OAuthError {
    tracing::info!(%url, reason = %why, "client metadata document refused");
    OAuthError::InvalidClient(format!(
        "the client metadata document {url} could not be used (it must be https, public, valid JSON naming itself)"
    ))
}

/// Fetches at once, across all requests: more wait for nothing and are refused.
const MAX_CONCURRENT: usize = 16;
/// How long a refused URL is not fetched again.
const FAILURE_CACHE_MS: u64 = 60_000;

impl MetadataFetcher {
    pub fn new(allow_private: bool, clock: Arc<dyn Clock>) -> Self {
        Self {
            allow_private,
            cache: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            slots: tokio::sync::Semaphore::new(MAX_CONCURRENT),
            clock,
        }
    }

    /// Whether a `client_id` is a metadata document URL (an http(s) URL with a path).
    pub fn is_metadata_url(client_id: &str) -> bool {
        (client_id.starts_with("https://") || client_id.starts_with("http://"))
            && Url::parse(client_id).is_ok_and(|u| u.path() != "/" && !u.path().is_empty())
    }

    pub async fn fetch(&self, url: &str) -> OAuthResult<Client> {
        let now = self.clock.now_ms();
        if let Some((c, until)) = self.cache.lock().get(url)
            && *until > now
        {
            return Ok(c.clone());
        }
        if self
            .failures
            .lock()
            .get(url)
            .is_some_and(|until| *until > now)
        {
            return Err(refuse(url, "refused recently"));
        }
        let Ok(_slot) = self.slots.try_acquire() else {
            return Err(refuse(url, "too many metadata fetches at once"));
        };
        let (client, max_age_s) = match self.fetch_uncached(url).await {
            Ok(v) => v,
            Err(e) => {
                let mut failures = self.failures.lock();
                if failures.len() >= MAX_CACHED {
                    failures.retain(|_, until| *until > now);
                }
                failures.insert(url.to_string(), now + FAILURE_CACHE_MS);
                return Err(e);
            }
        };
        if max_age_s > 0 {
            let mut cache = self.cache.lock();
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, (_, until)| *until > now);
            }
            if cache.len() < MAX_CACHED {
                cache.insert(url.to_string(), (client.clone(), now + max_age_s * 1000));
            }
        }
        Ok(client)
    }

    async fn fetch_uncached(&self, url: &str) -> OAuthResult<(Client, u64)> {
        let parsed = Url::parse(url).map_err(|e| refuse(url, e))?;
        if parsed.scheme() != "https" && !(self.allow_private && parsed.scheme() == "http") {
            return Err(refuse(url, "must be an https URL"));
        }
        if !parsed.username().is_empty()
            || parsed.password().is_some()
            || parsed.fragment().is_some()
        {
            return Err(refuse(url, "must not carry credentials or a fragment"));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| refuse(url, "has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
                .await
                .map_err(|_| refuse(url, "name resolution timed out"))?
                .map_err(|e| refuse(url, format!("cannot resolve host: {e}")))?
                .collect();
        if addrs.is_empty() {
            return Err(refuse(url, "host has no address"));
        }
        if !self.allow_private
            && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip()))
        {
            return Err(refuse(
                url,
                format!("host resolves to a non-public address {}", bad.ip()),
            ));
        }
        let http = reqwest::Client::builder()
            // A proxy would resolve the name again itself, undoing the check above.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .resolve_to_addrs(&host, &addrs)
            .build()
            .map_err(|e| OAuthError::Server(format!("http client: {e}")))?;
        let mut resp = http
            .get(parsed.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| refuse(url, format!("fetch failed: {e}")))?;
        if resp.status().is_redirection() {
            return Err(refuse(url, "redirects are not followed"));
        }
        if !resp.status().is_success() {
            return Err(refuse(url, format!("answered {}", resp.status())));
        }
        let max_age = cache_seconds(
            resp.headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| refuse(url, format!("read failed: {e}")))?
        {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(refuse(url, format!("is larger than {MAX_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((validate(url, &body)?, max_age))
    }
}

/// The document's fields as the CIMD draft requires them.
fn validate(url: &str, body: &[u8]) -> OAuthResult<Client> {
    let doc: Document =
        serde_json::from_slice(body).map_err(|e| refuse(url, format!("is not valid: {e}")))?;
    if doc.client_id != url {
        return Err(refuse(url, "its client_id does not equal its URL"));
    }
    if doc.redirect_uris.is_empty() {
        return Err(refuse(url, "lists no redirect_uris"));
    }
    for r in &doc.redirect_uris {
        check_redirect_uri(r).map_err(|e| refuse(url, e))?;
    }
    match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(refuse(
                url,
                format!("token_endpoint_auth_method {other:?} is not supported (use none)"),
            ));
        }
    }
    let grants = doc
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    Ok(Client {
        client_id: doc.client_id,
        client_name: Some(doc.client_name),
        redirect_uris: doc.redirect_uris,
        secret_hash: None,
        grant_types: grants,
        scopes: Vec::new(),
        roles: Vec::new(),
    })
}

/// Seconds to cache per `Cache-Control`: `no-store`/`no-cache` 0, `max-age` capped at a day.
fn cache_seconds(header: Option<&str>) -> u64 {
    let Some(h) = header else {
        return DEFAULT_CACHE_S;
    };
    let mut max_age = DEFAULT_CACHE_S;
    for d in h.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if d == "no-store" || d == "no-cache" {
            return 0;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse().unwrap_or(0);
        }
    }
    max_age.min(MAX_CACHE_S)
}

/// Whether an address is on the public internet (std's classifiers; no string parsing).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) wraps an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || s[0] == 0x2001 && s[1] == 0x0db8
                || v6 == Ipv6Addr::from(1u128))
        }
    }
}

fn public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "2606:4700::6810:84e5", "8.8.8.8"] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn documents_must_name_themselves_and_list_redirects() {
        let url = "https://app.example/client.json";
        let ok = br#"{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["http://127.0.0.1:8080/cb"]}"#;
        assert_eq!(validate(url, ok).unwrap().name(), "App");
        let other = br#"{"client_id":"https://evil.example/c.json","client_name":"App","redirect_uris":["https://a.example/cb"]}"#;
        assert!(validate(url, other).is_err());
        let secret = br#"{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#;
        assert!(validate(url, secret).is_err());
        assert_eq!(cache_seconds(Some("public, max-age=600")), 600);
        assert_eq!(cache_seconds(Some("no-store")), 0);
        assert_eq!(cache_seconds(Some("max-age=99999999")), MAX_CACHE_S);
        assert!(MetadataFetcher::is_metadata_url(url));
        assert!(!MetadataFetcher::is_metadata_url("https://app.example/"));
        assert!(!MetadataFetcher::is_metadata_url("mcp-abc"));
    }

    #[tokio::test]
    async fn a_private_target_is_refused_before_any_connection() {
        let f = MetadataFetcher::new(false, Arc::new(crate::clock::SystemClock));
        for url in [
            "https://127.0.0.1/client.json",
            "https://localhost/client.json",
            "https://169.254.169.254/latest/meta-data",
            "http://93.184.216.34/client.json",
        ] {
            let err = f.fetch(url).await.unwrap_err();
            assert_eq!(err.code(), "invalid_client", "{url}: {err}");
        }
    }
}

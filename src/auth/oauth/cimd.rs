//! Client ID Metadata Documents: a `client_id` that is an HTTPS URL names a JSON document
//! describing the client, which we fetch — carefully, since anyone can make us fetch any URL
//! (SSRF). Only HTTPS; every address the name resolves to must be public (no loopback,
//! private, link-local, CGNAT, multicast or NAT64-wrapped private addresses); the connection
//! goes to the addresses we checked (no second DNS answer); redirects are not followed; the
//! body is capped and the fetch has a deadline. Documents are cached per `Cache-Control`.
//! `CIMD_ALLOW_PRIVATE` lifts the address and scheme rules for development.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Deserialize;
use url::Url;

use super::bounded_cache::BoundedCache;
use super::clients::{Client, MAX_NAME, MAX_REDIRECTS};
use super::redirect::RedirectPolicy;
use super::{OAuthError, OAuthResult};
use crate::clock::Clock;

const MAX_BYTES: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_CACHE_S: u64 = 300;
const MAX_CACHE_S: u64 = 86_400;
/// The longest metadata URL we look at: longer ones are refused before any fetch or caching,
/// so the failure cache and the log hold short strings only.
pub const MAX_URL_BYTES: usize = 1024;
/// Bounds of the document cache (documents are at most `MAX_REDIRECTS` URIs and a name).
const CACHE_ENTRIES: usize = 2_000;
const CACHE_BYTES: usize = 8 << 20;
/// Bounds of the failure cache.
const FAILURE_ENTRIES: usize = 4_096;
const FAILURE_BYTES: usize = 1 << 20;
/// At most one "refused" log line this often; the next one says how many were left out.
const LOG_EVERY_MS: u64 = 10_000;
/// How much of a URL or reason a log line shows.
const LOG_CHARS: usize = 160;

pub struct MetadataFetcher {
    allow_private: bool,
    /// What the documents' redirect URIs must look like (the same rules as `/register`).
    policy: RedirectPolicy,
    cache: Mutex<BoundedCache<Client>>,
    /// Recently refused URLs, so unauthenticated requests cannot make us fetch a bad URL again
    /// and again.
    failures: Mutex<BoundedCache<()>>,
    /// When the next refusal may be logged, and how many were not since the last line: anyone
    /// can make us refuse URLs as fast as they can send them.
    log_gate: Mutex<(u64, u64)>,
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

/// Why a document was refused: for the log only.
enum Refusal {
    Reason(String),
    Server(OAuthError),
}

impl<T: std::fmt::Display> From<T> for Refusal {
    fn from(why: T) -> Self {
        Refusal::Reason(why.to_string())
    }
}

/// What the client learns: that the document was refused, not why. The reason (addresses the
/// name resolves to, resolution errors) would make us an oracle for the internal network.
fn refused(url: &str) -> OAuthError {
    OAuthError::InvalidClient(format!(
        "the client metadata document {} could not be used (it must be https, public, valid JSON naming itself)",
        shorten(url, LOG_CHARS)
    ))
}

/// At most `max` characters of `s`, marked when cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// Fetches at once, across all requests: more wait for nothing and are refused.
const MAX_CONCURRENT: usize = 16;
/// How long a refused URL is not fetched again.
const FAILURE_CACHE_MS: u64 = 60_000;

impl MetadataFetcher {
    pub fn new(allow_private: bool, policy: RedirectPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            allow_private,
            policy,
            cache: Mutex::new(BoundedCache::new(CACHE_ENTRIES, CACHE_BYTES)),
            failures: Mutex::new(BoundedCache::new(FAILURE_ENTRIES, FAILURE_BYTES)),
            log_gate: Mutex::new((0, 0)),
            slots: tokio::sync::Semaphore::new(MAX_CONCURRENT),
            clock,
        }
    }

    /// Whether a `client_id` is a metadata document URL (an http(s) URL with a path).
    pub fn is_metadata_url(client_id: &str) -> bool {
        (client_id.starts_with("https://") || client_id.starts_with("http://"))
            && Url::parse(client_id).is_ok_and(|u| u.path() != "/" && !u.path().is_empty())
    }

    /// Logs a refusal, unless one was logged within `LOG_EVERY_MS`; URL and reason shortened
    /// and `Debug`-escaped, so a crafted URL can neither flood the log nor forge lines in it.
    fn log_refusal(&self, url: &str, why: &str) {
        let now = self.clock.now_ms();
        let suppressed = {
            let mut gate = self.log_gate.lock();
            if now < gate.0 {
                gate.1 += 1;
                return;
            }
            gate.0 = now + LOG_EVERY_MS;
            std::mem::take(&mut gate.1)
        };
        tracing::info!(
            url = ?shorten(url, LOG_CHARS),
            reason = ?shorten(why, LOG_CHARS),
            suppressed,
            "client metadata document refused"
        );
    }

    fn refuse(&self, url: &str, why: &str) -> OAuthError {
        self.log_refusal(url, why);
        refused(url)
    }

    pub async fn fetch(&self, url: &str) -> OAuthResult<Client> {
        if url.len() > MAX_URL_BYTES {
            return Err(self.refuse(url, "the URL is too long"));
        }
        let now = self.clock.now_ms();
        if let Some(c) = self.cache.lock().get(url, now) {
            return Ok(c);
        }
        if self.failures.lock().get(url, now).is_some() {
            return Err(self.refuse(url, "refused recently"));
        }
        let Ok(_slot) = self.slots.try_acquire() else {
            return Err(self.refuse(url, "too many metadata fetches at once"));
        };
        let (client, max_age_s) = match self.fetch_uncached(url).await {
            Ok(v) => v,
            Err(refusal) => {
                self.failures
                    .lock()
                    .insert(url, (), 8, now + FAILURE_CACHE_MS, now);
                return Err(match refusal {
                    Refusal::Reason(why) => self.refuse(url, &why),
                    Refusal::Server(e) => e,
                });
            }
        };
        if max_age_s > 0 {
            let size = 64
                + client.redirect_uris.iter().map(String::len).sum::<usize>()
                + client.client_name.as_deref().map_or(0, str::len);
            self.cache
                .lock()
                .insert(url, client.clone(), size, now + max_age_s * 1000, now);
        }
        Ok(client)
    }

    async fn fetch_uncached(&self, url: &str) -> Result<(Client, u64), Refusal> {
        let parsed = Url::parse(url).map_err(Refusal::from)?;
        if parsed.scheme() != "https" && !(self.allow_private && parsed.scheme() == "http") {
            return Err(Refusal::from("must be an https URL"));
        }
        if !parsed.username().is_empty()
            || parsed.password().is_some()
            || parsed.fragment().is_some()
        {
            return Err(Refusal::from("must not carry credentials or a fragment"));
        }
        let host = parsed
            .host_str()
            .ok_or("has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
                .await
                .map_err(|_| Refusal::from("name resolution timed out"))?
                .map_err(|e| Refusal::from(format!("cannot resolve host: {e}")))?
                .collect();
        if addrs.is_empty() {
            return Err(Refusal::from("host has no address"));
        }
        if !self.allow_private
            && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip()))
        {
            return Err(Refusal::from(format!(
                "host resolves to a non-public address {}",
                bad.ip()
            )));
        }
        let http = reqwest::Client::builder()
            // A proxy would resolve the name again itself, undoing the check above.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .resolve_to_addrs(&host, &addrs)
            .build()
            .map_err(|e| Refusal::Server(OAuthError::Server(format!("http client: {e}"))))?;
        let mut resp = http
            .get(parsed.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Refusal::from(format!("fetch failed: {e}")))?;
        if resp.status().is_redirection() {
            return Err(Refusal::from("redirects are not followed"));
        }
        if !resp.status().is_success() {
            return Err(Refusal::from(format!("answered {}", resp.status())));
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
            .map_err(|e| Refusal::from(format!("read failed: {e}")))?
        {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(Refusal::from(format!("is larger than {MAX_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((validate(&self.policy, url, &body)?, max_age))
    }
}

/// The document's fields as the CIMD draft requires them, within the bounds of a registration.
fn validate(policy: &RedirectPolicy, url: &str, body: &[u8]) -> Result<Client, Refusal> {
    let doc: Document =
        serde_json::from_slice(body).map_err(|e| Refusal::from(format!("is not valid: {e}")))?;
    if doc.client_id != url {
        return Err(Refusal::from("its client_id does not equal its URL"));
    }
    if doc.redirect_uris.is_empty() || doc.redirect_uris.len() > MAX_REDIRECTS {
        return Err(Refusal::from(format!(
            "must list 1 to {MAX_REDIRECTS} redirect_uris"
        )));
    }
    if doc.client_name.len() > MAX_NAME {
        return Err(Refusal::from("client_name is too long"));
    }
    for r in &doc.redirect_uris {
        policy.check(r)?;
    }
    match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(Refusal::from(format!(
                "token_endpoint_auth_method {other:?} is not supported (use none)"
            )));
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
        trusted: false,
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

/// Whether an address is globally routable, so a fetch cannot reach this host, its network or
/// a cloud metadata service. IPv6 forms that carry an IPv4 address (mapped, NAT64 64:ff9b::/96,
/// 6to4) are judged by that address; the rest of IPv6 must be global unicast (2000::/3) outside
/// the IANA special-purpose blocks. IPv4-compatible (::a.b.c.d), local-use NAT64
/// (64:ff9b:1::/48, RFC 8215) and Teredo (2001::/32) addresses are refused outright: they are
/// not routable as such, and the IPv4 address inside could be anything.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                Ipv4Addr::new(a, b, c, d)
            };
            // NAT64 well-known prefix (RFC 6052).
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return public_v4(embedded(s[6], s[7]));
            }
            // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 stands for AA.BB.CC.DD.
            if s[0] == 0x2002 {
                return public_v4(embedded(s[1], s[2]));
            }
            let global_unicast = (s[0] & 0xe000) == 0x2000;
            global_unicast
                // IETF protocol assignments (RFC 2928): Teredo, benchmarking, ORCHIDs, ...
                && !(s[0] == 0x2001 && s[1] < 0x0200)
                // Documentation (RFC 3849, RFC 9637).
                && !(s[0] == 0x2001 && s[1] == 0x0db8)
                && !(s[0] == 0x3fff && s[1] < 0x1000)
        }
    }
}

/// Whether an IPv4 address is globally routable (IANA IPv4 special-purpose registry).
fn public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        // Shared address space / CGNAT (RFC 6598).
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (RFC 6890) and the deprecated 6to4 relay anycast (RFC 7526).
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 88 && c == 99)
        // Benchmarking (RFC 2544).
        || (a == 198 && (b == 18 || b == 19))
        // Reserved (240/4) and multicast above.
        || a >= 240)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn only_globally_routable_addresses_are_public() {
        for bad in [
            // IPv4 special-purpose blocks.
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.1",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6 special-purpose blocks.
            "::",
            "::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "2001:db8::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "4000::1",
            // IPv6 forms of private IPv4 addresses.
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::7f00:1",
            "::a9fe:a9fe",
            "::8.8.8.8",
            "::ffff:0:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1::808:808",
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::1",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(!is_public(ip), "{bad} must not be public");
        }
        for good in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.254",
            "2606:4700::6810:84e5",
            "2a00:1450:4001:80b::200e",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            let ip: IpAddr = good.parse().unwrap();
            assert!(is_public(ip), "{good} must be public");
        }
    }

    fn policy() -> RedirectPolicy {
        RedirectPolicy::new(&["cursor".to_string()])
    }

    #[test]
    fn documents_must_name_themselves_and_list_allowed_redirects() {
        let url = "https://app.example/client.json";
        let p = policy();
        let ok = br#"{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["http://127.0.0.1:8080/cb"]}"#;
        assert_eq!(validate(&p, url, ok).ok().unwrap().name(), "App");
        let other = br#"{"client_id":"https://evil.example/c.json","client_name":"App","redirect_uris":["https://a.example/cb"]}"#;
        assert!(validate(&p, url, other).is_err());
        let secret = br#"{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#;
        assert!(validate(&p, url, secret).is_err());
        let msdt = br#"{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["ms-msdt:/id"]}"#;
        assert!(validate(&p, url, msdt).is_err());
        let many: Vec<String> = (0..=MAX_REDIRECTS)
            .map(|i| format!("https://a.example/{i}"))
            .collect();
        let crowded = serde_json::to_vec(&serde_json::json!({"client_id": url,
            "client_name": "App", "redirect_uris": many}))
        .unwrap();
        assert!(
            validate(&p, url, &crowded).is_err(),
            "as many redirects as /register allows"
        );
        assert_eq!(cache_seconds(Some("public, max-age=600")), 600);
        assert_eq!(cache_seconds(Some("no-store")), 0);
        assert_eq!(cache_seconds(Some("max-age=99999999")), MAX_CACHE_S);
        assert!(MetadataFetcher::is_metadata_url(url));
        assert!(!MetadataFetcher::is_metadata_url("https://app.example/"));
        assert!(!MetadataFetcher::is_metadata_url("mcp-abc"));
    }

    #[tokio::test]
    async fn a_private_target_is_refused_before_any_connection() {
        let f = MetadataFetcher::new(false, policy(), Arc::new(crate::clock::SystemClock));
        for url in [
            "https://127.0.0.1/client.json",
            "https://localhost/client.json",
            "https://169.254.169.254/latest/meta-data",
            "https://[::7f00:1]/client.json",
            "https://[2002:7f00:1::1]/client.json",
            "https://[64:ff9b:1::a9fe:a9fe]/client.json",
            "https://[64:ff9b::a9fe:a9fe]/client.json",
            "https://[::ffff:7f00:1]/client.json",
            "http://93.184.216.34/client.json",
        ] {
            let err = f.fetch(url).await.unwrap_err();
            assert_eq!(err.code(), "invalid_client", "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn refusals_are_bounded_in_memory_and_in_the_log() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let f = MetadataFetcher::new(false, policy(), clock.clone());
        // Too long: refused before anything is cached.
        let long = format!("https://127.0.0.1/{}", "a".repeat(MAX_URL_BYTES));
        let err = f.fetch(&long).await.unwrap_err();
        assert!(
            err.to_string().len() < 400,
            "the answer shows a shortened URL"
        );
        assert_eq!(f.failures.lock().get(&long, clock.now_ms()), None);
        // Many refused URLs: the failure cache stays within its bounds.
        for i in 0..(FAILURE_ENTRIES + 100) {
            let url = format!("https://127.0.0.1/{i}/{}", "b".repeat(900));
            assert!(f.fetch(&url).await.is_err());
        }
        let (entries, bytes, _) = f.failures.lock().footprint();
        assert!(
            entries <= FAILURE_ENTRIES && bytes <= FAILURE_BYTES,
            "{entries} {bytes}"
        );
        // One log line per interval: the rest are counted, then reported with the next line.
        let gate = *f.log_gate.lock();
        assert_eq!(gate.0, 1_000_000 + LOG_EVERY_MS);
        assert!(gate.1 as usize >= FAILURE_ENTRIES, "suppressed {}", gate.1);
        clock.advance_ms(LOG_EVERY_MS);
        assert!(f.fetch("https://127.0.0.1/again").await.is_err());
        assert_eq!(*f.log_gate.lock(), (1_000_000 + 2 * LOG_EVERY_MS, 0));
    }

    #[test]
    fn log_fields_are_shortened_on_a_character_boundary() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("ééééé", 2), "éé…");
    }
}

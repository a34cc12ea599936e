//! Redirect URIs: which a client may register (an allowlist of schemes, RFC 8252 §7 and
//! RFC 9700 §2.1), and how a presented one matches a registered one (exactly, except loopback
//! ones, which match on any port: RFC 8252 §7.3).

use url::Url;

use super::{OAuthError, OAuthResult};

/// The longest redirect URI a client may register.
pub const MAX_URI: usize = 2000;

/// Non-dotted private-use schemes that widely used native MCP clients register: Cursor
/// (`cursor://anysphere.cursor-mcp/oauth/callback`) and the VS Code family, whose extensions
/// receive callbacks on `<editor>://<extension id>`. The default of
/// `OAUTH_ALLOWED_REDIRECT_SCHEMES`.
pub const KNOWN_APP_SCHEMES: &str = "cursor,vscode,vscode-insiders,windsurf";

/// Schemes that open files, run code or go somewhere other than an app: never allowed, not even
/// through `OAUTH_ALLOWED_REDIRECT_SCHEMES`.
const DANGEROUS: [&str; 14] = [
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "ftp",
    "ws",
    "wss",
    "ms-msdt",
    "search-ms",
    "ms-officecmd",
    "http",
    "https",
];

/// Which redirect URIs may be registered.
#[derive(Debug, Clone, Default)]
pub struct RedirectPolicy {
    /// Private-use schemes without a dot that are allowed anyway (lowercase).
    app_schemes: Vec<String>,
}

impl RedirectPolicy {
    pub fn new(app_schemes: &[String]) -> Self {
        Self {
            app_schemes: app_schemes.iter().map(|s| s.to_ascii_lowercase()).collect(),
        }
    }

    /// Why `scheme` cannot be one of `OAUTH_ALLOWED_REDIRECT_SCHEMES`, if it cannot.
    pub fn refuse_app_scheme(scheme: &str) -> Option<String> {
        let s = scheme.to_ascii_lowercase();
        let valid = s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !valid {
            return Some(format!("{scheme:?} is not a URI scheme"));
        }
        DANGEROUS
            .contains(&s.as_str())
            .then(|| format!("{scheme:?} may never be a redirect scheme"))
    }

    /// A redirect URI a client may register: `https`, `http` on a loopback host, a private-use
    /// scheme in reverse-domain form (`com.example.app:/cb`, RFC 8252 §7.1), or one of the
    /// allowed app schemes. Never a fragment (RFC 6749 §3.1.2) or user info.
    pub fn check(&self, raw: &str) -> OAuthResult<()> {
        let bad = |why: &str| OAuthError::InvalidRedirectUri(format!("redirect_uri {raw:?} {why}"));
        if raw.len() > MAX_URI {
            return Err(bad("is too long"));
        }
        let u = Url::parse(raw).map_err(|_| bad("is not an absolute URL"))?;
        if u.fragment().is_some() {
            return Err(bad("must not have a fragment"));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(bad("must not carry a user name or password"));
        }
        let scheme = u.scheme();
        match scheme {
            "https" if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
            "https" => Err(bad("has no host")),
            "http" if is_loopback_host(&u) => Ok(()),
            "http" => Err(bad(
                "must use https unless its host is 127.0.0.1, [::1] or localhost",
            )),
            s if DANGEROUS.contains(&s) => Err(bad("uses a forbidden scheme")),
            // Reverse-domain private-use schemes name their owner (RFC 8252 §7.1); the
            // dangerous OS handlers (`ms-msdt:`, `search-ms:`) have no dot.
            s if s.contains('.') => Ok(()),
            s if self.app_schemes.iter().any(|a| a == s) => Ok(()),
            _ => Err(bad(&format!(
                "uses the scheme {scheme:?}: allowed are https, http on a loopback address, \
                 private-use schemes in reverse-domain form (com.example.app:/callback) and {}",
                if self.app_schemes.is_empty() {
                    "no other scheme".to_string()
                } else {
                    self.app_schemes.join(", ")
                }
            ))),
        }
    }
}

pub fn is_loopback_host(u: &Url) -> bool {
    matches!(
        u.host_str(),
        Some("127.0.0.1") | Some("localhost") | Some("[::1]")
    )
}

/// Exact match, or a loopback registration matching on any port (RFC 8252 §7.3).
pub fn matches(registered: &str, presented: &str) -> bool {
    registered == presented || loopback_equal(registered, presented)
}

/// Both are `http` loopback URLs that differ at most in the port.
fn loopback_equal(registered: &str, presented: &str) -> bool {
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    a.scheme() == "http"
        && b.scheme() == "http"
        && is_loopback_host(&a)
        && a.host_str() == b.host_str()
        && a.path() == b.path()
        && a.query() == b.query()
        && a.fragment().is_none()
        && b.fragment().is_none()
        && a.username().is_empty()
        && b.username().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_policy() -> RedirectPolicy {
        let known: Vec<String> = KNOWN_APP_SCHEMES.split(',').map(str::to_string).collect();
        RedirectPolicy::new(&known)
    }

    #[test]
    fn only_allowlisted_schemes_may_be_registered() {
        let p = default_policy();
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "https://vscode.dev/redirect",
            "http://127.0.0.1:33418/",
            "http://localhost/cb",
            "http://[::1]:8080/cb",
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "vscode://saoudrizwan.claude-dev",
            "com.example.app:/oauth2redirect",
            "com.example.app://callback",
        ] {
            assert!(p.check(ok).is_ok(), "{ok}: {:?}", p.check(ok));
        }
        for bad in [
            "ms-msdt:/id PCWDiagnostic",
            "search-ms:query=x&crumb=location:\\\\evil.example\\share",
            "ms-officecmd:{}",
            "myapp://callback",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "ws://127.0.0.1/cb",
            "http://evil.example/cb",
            "http://127.0.0.2/cb",
            "https://a.example/cb#frag",
            "https://user:pw@a.example/cb",
            "/relative",
        ] {
            let err = p.check(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_redirect_uri", "{bad}");
        }
        let message = p.check("myapp://callback").unwrap_err().to_string();
        assert!(
            message.contains("reverse-domain") && message.contains("cursor"),
            "the refusal says what is allowed: {message}"
        );
        let none = RedirectPolicy::new(&[]);
        assert!(
            none.check("cursor://anysphere.cursor-mcp/oauth/callback")
                .is_err()
        );
        assert!(none.check("com.example.app:/cb").is_ok());
    }

    #[test]
    fn dangerous_or_malformed_app_schemes_cannot_be_allowed() {
        for bad in ["ms-msdt", "JavaScript", "https", "file", "1app", "a b", ""] {
            assert!(RedirectPolicy::refuse_app_scheme(bad).is_some(), "{bad:?}");
        }
        for ok in KNOWN_APP_SCHEMES.split(',') {
            assert_eq!(RedirectPolicy::refuse_app_scheme(ok), None, "{ok}");
        }
    }

    #[test]
    fn redirects_match_exactly_except_loopback_ports() {
        let reg = ["https://app.example/cb", "http://127.0.0.1:3000/callback"];
        let m = |p: &str| reg.iter().any(|r| matches(r, p));
        assert!(m("https://app.example/cb"));
        assert!(!m("https://app.example/cb/"));
        assert!(!m("https://app.example/cb?x=1"));
        assert!(!m("https://evil.example/cb"));
        assert!(m("http://127.0.0.1:49152/callback"));
        assert!(!m("http://127.0.0.1:49152/other"));
        assert!(!m("http://localhost:3000/callback"), "host must match");
        assert!(!matches(
            "https://app.example:8443/cb",
            "https://app.example:9443/cb"
        ));
    }
}

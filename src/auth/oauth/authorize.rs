//! What an authorization request (`/authorize`) may ask, checked in the order RFC 6749
//! §4.1.2.1 needs: errors about the client or its redirect URI are shown to the person (never
//! redirected: the URI is not trusted yet). Later errors go back to the client with `state`
//! and `iss` only when its redirect URIs are trusted (a client the operator configured):
//! anyone can register a client, and redirecting its errors at once, with nobody having seen
//! a page, would make this server an open redirector (RFC 9700 §4.11.2). Everyone else's
//! errors are shown on a page too; `access_denied` after the consent page, where the person
//! saw the redirect URI, is still redirected (`auth::http::authorize`).

use serde::{Deserialize, Serialize};
use url::Url;

use super::clients::Client;
use super::{AuthServer, OAuthError};
use crate::auth::scope::{self, BASE_SCOPE};
use crate::protocol::PathKind;

/// A validated authorization request, sealed into the login and consent pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    /// The RFC 8707 resource the token will be for (its `aud`).
    pub resource: String,
    pub state: Option<String>,
    pub issuer: String,
}

#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown on a page: the client or its redirect URI is not trusted.
    Page(OAuthError),
    /// Sent back to the client's redirect URI.
    Redirect {
        error: OAuthError,
        redirect_uri: String,
        state: Option<String>,
    },
}

/// The canonical form of a resource indicator if it names this server: the origin
/// (`https://host`) or one of its MCP endpoints (`https://host/mcp`, `https://host/{id}/mcp`,
/// `/sse`, `/http`), with scheme and host lowercased and no trailing slash.
pub fn canonical_resource(raw: &str, issuer: &str) -> Option<String> {
    let u = Url::parse(raw).ok()?;
    if u.fragment().is_some() || u.query().is_some() || !u.username().is_empty() {
        return None;
    }
    let origin = u.origin().ascii_serialization();
    if origin != issuer {
        return None;
    }
    let path = u.path().trim_end_matches('/');
    if path.is_empty() {
        return Some(origin);
    }
    PathKind::of(path)
        .is_resource()
        .then(|| format!("{origin}{path}"))
}

/// The scopes granted for a request: the known ones among those asked for, always with the
/// base scope; unknown scopes (`openid`, `offline_access`, ...) are dropped, as RFC 6749 §3.3
/// lets the server do.
pub fn grantable(requested: Option<&str>, supported: &[String]) -> Vec<String> {
    let mut out = vec![BASE_SCOPE.to_string()];
    for s in scope::parse(requested.unwrap_or("")) {
        if supported.iter().any(|k| scope::covers(k, &s)) && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Checks `params` of `/authorize` for `issuer`.
pub async fn validate(
    server: &AuthServer,
    params: &[(String, String)],
    issuer: &str,
    supported: &[String],
) -> Result<(AuthRequest, Client), AuthorizeError> {
    let page = |m: &str| AuthorizeError::Page(OAuthError::InvalidRequest(m.into()));
    let mut seen = std::collections::HashSet::new();
    for (k, _) in params {
        if !seen.insert(k.as_str()) {
            return Err(page(&format!("parameter {k} is repeated")));
        }
    }
    let client_id = param(params, "client_id").ok_or_else(|| page("client_id is required"))?;
    let client = server
        .clients
        .find(client_id)
        .await
        .map_err(AuthorizeError::Page)?
        .ok_or_else(|| AuthorizeError::Page(OAuthError::InvalidClient("unknown client".into())))?;
    let redirect_uri =
        param(params, "redirect_uri").ok_or_else(|| page("redirect_uri is required"))?;
    if !client.redirect_matches(redirect_uri) {
        return Err(page("redirect_uri is not registered for this client"));
    }
    // Clients stored before the scheme allowlist may hold URIs it refuses now.
    server
        .clients
        .policy()
        .check(redirect_uri)
        .map_err(AuthorizeError::Page)?;
    let state = param(params, "state").map(str::to_string);
    let back = |error| {
        if client.trusted {
            AuthorizeError::Redirect {
                error,
                redirect_uri: redirect_uri.to_string(),
                state: state.clone(),
            }
        } else {
            AuthorizeError::Page(error)
        }
    };
    if param(params, "response_type") != Some("code") {
        return Err(back(OAuthError::UnsupportedResponseType));
    }
    if !client.allows_grant("authorization_code") {
        return Err(back(OAuthError::UnauthorizedClient(
            "this client may not use the authorization code grant".into(),
        )));
    }
    if param(params, "code_challenge_method") != Some("S256") {
        return Err(back(OAuthError::InvalidRequest(
            "PKCE is required: code_challenge_method must be S256".into(),
        )));
    }
    let challenge = param(params, "code_challenge").unwrap_or("");
    if !(43..=128).contains(&challenge.len())
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(back(OAuthError::InvalidRequest(
            "code_challenge must be the base64url SHA-256 of the code verifier".into(),
        )));
    }
    let resource = match param(params, "resource") {
        None => issuer.to_string(),
        Some(r) => canonical_resource(r, issuer).ok_or_else(|| {
            back(OAuthError::InvalidTarget(format!(
                "resource {r:?} is not served by this server"
            )))
        })?,
    };
    let req = AuthRequest {
        client_id: client.client_id.clone(),
        client_name: client.name().to_string(),
        redirect_uri: redirect_uri.to_string(),
        code_challenge: challenge.to_string(),
        scopes: grantable(param(params, "scope"), supported),
        resource,
        state,
        issuer: issuer.to_string(),
    };
    Ok((req, client))
}

/// `redirect_uri` with `pairs` added to its query (keeping what it had).
pub fn redirect_to(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

/// The error redirect of RFC 6749 §4.1.2.1 with RFC 9207's `iss`.
pub fn error_redirect(
    redirect_uri: &str,
    error: &OAuthError,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let description = error.to_string();
    let mut pairs = vec![("error", error.code()), ("error_description", &description)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", issuer));
    redirect_to(redirect_uri, &pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_canonicalized_and_must_be_ours() {
        let iss = "http://127.0.0.1:8000";
        assert_eq!(
            canonical_resource("http://127.0.0.1:8000/mcp", iss).unwrap(),
            "http://127.0.0.1:8000/mcp"
        );
        assert_eq!(
            canonical_resource("HTTP://127.0.0.1:8000/mcp/", iss).unwrap(),
            "http://127.0.0.1:8000/mcp"
        );
        assert_eq!(
            canonical_resource("http://127.0.0.1:8000/", iss).unwrap(),
            iss
        );
        assert_eq!(
            canonical_resource("http://127.0.0.1:8000/team-a/mcp", iss).unwrap(),
            "http://127.0.0.1:8000/team-a/mcp"
        );
        assert!(canonical_resource("http://127.0.0.1:9000/mcp", iss).is_none());
        assert!(canonical_resource("https://evil.example/mcp", iss).is_none());
        assert!(canonical_resource("http://127.0.0.1:8000/admin", iss).is_none());
        assert!(canonical_resource("http://127.0.0.1:8000/mcp#x", iss).is_none());
    }

    #[test]
    fn only_known_scopes_are_granted_and_the_base_scope_always() {
        let supported = vec!["mcp".to_string(), "files".to_string()];
        assert_eq!(grantable(None, &supported), vec!["mcp"]);
        assert_eq!(
            grantable(Some("openid files:read offline_access"), &supported),
            vec!["mcp", "files:read"]
        );
    }

    #[test]
    fn error_redirects_carry_state_and_iss() {
        let u = error_redirect(
            "http://127.0.0.1:5000/cb?x=1",
            &OAuthError::AccessDenied,
            Some("s t"),
            "http://a",
        );
        assert!(
            u.starts_with("http://127.0.0.1:5000/cb?x=1&error=access_denied&"),
            "{u}"
        );
        assert!(
            u.contains("state=s+t") && u.contains("iss=http%3A%2F%2Fa"),
            "{u}"
        );
    }
}

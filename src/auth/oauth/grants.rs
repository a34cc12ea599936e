//! The grants of `/token` and revocation: authorization codes (single use, bound to client,
//! redirect URI, PKCE challenge, resource and scope), rotating refresh tokens (a reused one
//! ends its family), client credentials for machine clients, and RFC 7009 revocation.
//!
//! A refresh token is `rt1.<family>.<generation>.<client>.<mac>`: the MAC lets any node check
//! it without a lookup, and the store keeps only each family's current generation.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::authorize::{AuthRequest, canonical_resource};
use super::clients::Client;
use super::{AuthServer, OAuthError, OAuthResult};
use crate::auth::keys::{SigningKeys, digest, random_token, same};
use crate::auth::scope;
use crate::auth::token::{self, AccessClaims};
use crate::state::{AuthRecord, Rotation};

/// Authorization codes live this long (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const CODE_TTL_MS: u64 = 600_000;

/// What a code or a refresh family grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub subject: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub issuer: String,
    /// Code only: what `/token` must present again.
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub code_challenge: String,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// The form of a `/token` request (the fields every grant may use).
#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// Issues a code for `req`, signed in as `subject`. Returns the code.
pub async fn issue_code(
    server: &AuthServer,
    req: &AuthRequest,
    subject: &str,
    roles: &[String],
) -> OAuthResult<String> {
    let code = random_token();
    let grant = Grant {
        subject: subject.to_string(),
        roles: roles.to_vec(),
        client_id: req.client_id.clone(),
        scopes: req.scopes.clone(),
        resource: req.resource.clone(),
        issuer: req.issuer.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
    };
    let value = serde_json::to_string(&grant).map_err(|e| OAuthError::Server(e.to_string()))?;
    server
        .store
        .put(AuthRecord::Code, &digest(&code), &value, CODE_TTL_MS)
        .await?;
    tracing::info!(client = %req.client_id, subject, "authorization code issued");
    Ok(code)
}

/// `S256`: BASE64URL(SHA256(verifier)) == challenge (RFC 7636 §4.6).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    valid && same(computed.as_bytes(), challenge.as_bytes())
}

/// The `resource` of a token request must name what was granted (or be absent).
fn check_resource(form: &TokenForm, grant: &Grant) -> OAuthResult<()> {
    match &form.resource {
        None => Ok(()),
        Some(r) if canonical_resource(r, &grant.issuer).as_deref() == Some(&grant.resource) => {
            Ok(())
        }
        Some(r) => Err(OAuthError::InvalidTarget(format!(
            "resource {r:?} is not the resource of this grant"
        ))),
    }
}

/// `grant_type=authorization_code`.
pub async fn exchange_code(
    server: &AuthServer,
    client: &Client,
    form: &TokenForm,
) -> OAuthResult<TokenResponse> {
    let code = form
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::InvalidRequest("code is required".into()))?;
    // Taken before any check: a code that fails a check is gone too (single use, RFC 6749 §4.1.2).
    let raw = server
        .store
        .take(AuthRecord::Code, &digest(code))
        .await?
        .ok_or_else(|| OAuthError::InvalidGrant("the code is invalid, expired or used".into()))?;
    let grant: Grant = serde_json::from_str(&raw).map_err(|e| OAuthError::Server(e.to_string()))?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant(
            "the code was issued to another client".into(),
        ));
    }
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri does not match the authorization request".into(),
        ));
    }
    let verifier = form
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuthError::InvalidRequest("code_verifier is required (PKCE)".into()))?;
    if !pkce_matches(verifier, &grant.code_challenge) {
        return Err(OAuthError::InvalidGrant(
            "code_verifier does not match the code_challenge".into(),
        ));
    }
    check_resource(form, &grant)?;
    let family = random_token();
    let family_grant = Grant {
        redirect_uri: String::new(),
        code_challenge: String::new(),
        ..grant
    };
    let stored =
        serde_json::to_string(&family_grant).map_err(|e| OAuthError::Server(e.to_string()))?;
    server
        .store
        .create_family(&family, &stored, server.settings.refresh_ttl_s * 1000)
        .await?;
    let refresh = refresh_token(&server.keys, &family, 0, &client.client_id);
    respond(
        server,
        &family_grant,
        &family,
        &family_grant.scopes,
        Some(refresh),
    )
}

/// `grant_type=refresh_token`: rotates the family; a reused token revokes it.
pub async fn refresh(
    server: &AuthServer,
    client: &Client,
    form: &TokenForm,
) -> OAuthResult<TokenResponse> {
    let token = form
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required".into()))?;
    let parsed = parse_refresh(&server.keys, token)
        .ok_or_else(|| OAuthError::InvalidGrant("the refresh token is invalid".into()))?;
    if parsed.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant(
            "the refresh token was issued to another client".into(),
        ));
    }
    if !client.allows_grant("refresh_token") {
        return Err(OAuthError::UnauthorizedClient(
            "this client did not register the refresh_token grant".into(),
        ));
    }
    // Every check runs before the rotation: a refused request must not use up the token.
    let raw = server
        .store
        .family_grant(&parsed.family)
        .await?
        .ok_or_else(|| {
            OAuthError::InvalidGrant("the refresh token is expired or revoked".into())
        })?;
    let mut grant: Grant =
        serde_json::from_str(&raw).map_err(|e| OAuthError::Server(e.to_string()))?;
    check_resource(form, &grant)?;
    // A refresh may narrow the scope, never widen it (RFC 6749 §6).
    let scopes = match &form.scope {
        None => grant.scopes.clone(),
        Some(asked) => {
            let asked = scope::parse(asked);
            if let Some(extra) = asked.iter().find(|a| !scope::has(&grant.scopes, a)) {
                return Err(OAuthError::InvalidScope(format!(
                    "scope {extra} was not granted"
                )));
            }
            asked
        }
    };
    let s = &server.settings;
    if let Some(roles) = current_roles(server, &grant.subject, &grant.roles)? {
        grant.roles = roles;
    } else {
        server
            .store
            .revoke_family(&parsed.family, s.access_ttl_s * 1000)
            .await?;
        tracing::info!(subject = %grant.subject, "refresh refused: the user no longer exists");
        return Err(OAuthError::InvalidGrant("the user no longer exists".into()));
    }
    let outcome = server
        .store
        .rotate_refresh(
            &parsed.family,
            parsed.generation,
            server.clock.now_ms(),
            s.refresh_grace_ms,
            s.refresh_ttl_s * 1000,
            s.access_ttl_s * 1000,
        )
        .await?;
    let generation = match outcome {
        Rotation::Rotated { generation, .. } | Rotation::Concurrent { generation, .. } => {
            generation
        }
        Rotation::Reused => {
            tracing::warn!(client = %client.client_id, "a rotated refresh token was reused: its grant is revoked");
            return Err(OAuthError::InvalidGrant(
                "the refresh token was already used; the grant is revoked".into(),
            ));
        }
        Rotation::Unknown => {
            return Err(OAuthError::InvalidGrant(
                "the refresh token is expired or revoked".into(),
            ));
        }
    };
    let refresh = refresh_token(&server.keys, &parsed.family, generation, &client.client_id);
    respond(server, &grant, &parsed.family, &scopes, Some(refresh))
}

/// A local user's roles as they are now (`Some`), or `None` when the user was removed. Other
/// subjects (machine clients, Cognito and provider accounts, the static token) keep the roles
/// of their grant. Local user names cannot contain ':', which every other namespace has.
fn current_roles(
    server: &AuthServer,
    subject: &str,
    granted: &[String],
) -> OAuthResult<Option<Vec<String>>> {
    match &server.users {
        Some(db) if !subject.contains(':') => db
            .find(subject)
            .map(|u| u.map(|u| u.roles))
            .map_err(|e| OAuthError::Server(e.to_string())),
        _ => Ok(Some(granted.to_vec())),
    }
}

/// `grant_type=client_credentials`: a machine client acting as itself.
pub async fn client_credentials(
    server: &AuthServer,
    client: &Client,
    form: &TokenForm,
    issuer: &str,
) -> OAuthResult<TokenResponse> {
    if client.secret_hash.is_none() || !client.allows_grant("client_credentials") {
        return Err(OAuthError::UnauthorizedClient(
            "only configured machine clients may use client_credentials".into(),
        ));
    }
    let scopes = match &form.scope {
        None => client.scopes.clone(),
        Some(asked) => {
            let asked = scope::parse(asked);
            if let Some(extra) = asked.iter().find(|a| !scope::has(&client.scopes, a)) {
                return Err(OAuthError::InvalidScope(format!(
                    "scope {extra} is not allowed for this client"
                )));
            }
            asked
        }
    };
    let resource = match &form.resource {
        None => issuer.to_string(),
        Some(r) => canonical_resource(r, issuer).ok_or_else(|| {
            OAuthError::InvalidTarget(format!("resource {r:?} is not served by this server"))
        })?,
    };
    let grant = Grant {
        subject: format!("client:{}", client.client_id),
        roles: client.roles.clone(),
        client_id: client.client_id.clone(),
        scopes: scopes.clone(),
        resource,
        issuer: issuer.to_string(),
        redirect_uri: String::new(),
        code_challenge: String::new(),
    };
    respond(server, &grant, &random_token(), &scopes, None)
}

/// An access token for `grant` in `family`, and the response that carries it.
fn respond(
    server: &AuthServer,
    grant: &Grant,
    family: &str,
    scopes: &[String],
    refresh_token: Option<String>,
) -> OAuthResult<TokenResponse> {
    let now = server.now_s();
    let ttl = server.settings.access_ttl_s;
    let claims = AccessClaims {
        iss: grant.issuer.clone(),
        sub: grant.subject.clone(),
        aud: grant.resource.clone(),
        exp: now + ttl,
        iat: now,
        jti: random_token(),
        scope: scope::join(scopes),
        client_id: grant.client_id.clone(),
        sid: family.to_string(),
        roles: grant.roles.clone(),
    };
    let access_token =
        token::issue(&server.keys, &claims).map_err(|e| OAuthError::Server(e.to_string()))?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token,
        scope: claims.scope,
    })
}

/// The client id of tokens from `POST /auth/login`: no client registers it (registered ids
/// start with `mcp-`, metadata-document ids are URLs); `/revoke` accepts it without a secret.
pub const DIRECT_CLIENT_ID: &str = "auth-login";

/// An access token for a person signed in directly (`POST /auth/login`), for the whole server.
pub fn direct_token(
    server: &AuthServer,
    subject: &str,
    roles: &[String],
    issuer: &str,
) -> OAuthResult<TokenResponse> {
    let grant = Grant {
        subject: subject.to_string(),
        roles: roles.to_vec(),
        client_id: DIRECT_CLIENT_ID.into(),
        scopes: vec![scope::BASE_SCOPE.to_string()],
        resource: issuer.to_string(),
        issuer: issuer.to_string(),
        redirect_uri: String::new(),
        code_challenge: String::new(),
    };
    respond(server, &grant, &random_token(), &grant.scopes, None)
}

struct RefreshToken {
    family: String,
    generation: u64,
    client_id: String,
}

fn refresh_token(keys: &SigningKeys, family: &str, generation: u64, client_id: &str) -> String {
    let client = URL_SAFE_NO_PAD.encode(client_id.as_bytes());
    let generation = generation.to_string();
    let mac = keys.current.mac(
        "refresh",
        &[family.as_bytes(), generation.as_bytes(), client.as_bytes()],
    );
    format!(
        "rt1.{family}.{generation}.{client}.{}",
        URL_SAFE_NO_PAD.encode(mac)
    )
}

fn parse_refresh(keys: &SigningKeys, token: &str) -> Option<RefreshToken> {
    let mut parts = token.split('.');
    let (Some("rt1"), Some(family), Some(generation), Some(client), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    keys.all().find(|k| {
        same(
            &k.mac(
                "refresh",
                &[family.as_bytes(), generation.as_bytes(), client.as_bytes()],
            ),
            &mac,
        )
    })?;
    Some(RefreshToken {
        family: family.to_string(),
        generation: generation.parse().ok()?,
        client_id: String::from_utf8(URL_SAFE_NO_PAD.decode(client).ok()?).ok()?,
    })
}

/// RFC 7009: revokes an access or refresh token of the (authenticated) client `client_id`.
/// Unknown, invalid or foreign tokens are ignored (the answer is 200 either way, so it
/// reveals nothing).
pub async fn revoke(server: &AuthServer, client_id: &str, token: &str) -> OAuthResult<()> {
    let access_ttl_ms = server.settings.access_ttl_s * 1000;
    if let Some(r) = parse_refresh(&server.keys, token) {
        if r.client_id == client_id {
            server.store.revoke_family(&r.family, access_ttl_ms).await?;
            tracing::info!(client = %client_id, "refresh token revoked");
        }
        return Ok(());
    }
    // `verify_ignoring_time` already refuses an unknown `kid` or a bad signature.
    let Ok(claims) = token::verify_ignoring_time(&server.keys, token) else {
        return Ok(());
    };
    let now = server.now_s();
    if claims.client_id == client_id && claims.exp > now {
        server
            .store
            .revoke_token(&claims.sid, &claims.jti, (claims.exp - now) * 1000)
            .await?;
        tracing::info!(client = %client_id, subject = %claims.sub, "access token revoked");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        assert!(!pkce_matches(challenge, challenge), "plain is not S256");
    }

    #[test]
    fn refresh_tokens_verify_only_unchanged() {
        let keys = SigningKeys::new(&"r".repeat(32), &[]).unwrap();
        let t = refresh_token(&keys, "fam", 3, "client-1");
        let p = parse_refresh(&keys, &t).unwrap();
        assert_eq!(
            (p.family.as_str(), p.generation, p.client_id.as_str()),
            ("fam", 3, "client-1")
        );
        let bumped = t.replacen(".3.", ".4.", 1);
        assert!(parse_refresh(&keys, &bumped).is_none());
        let other = SigningKeys::new(&"o".repeat(32), &[]).unwrap();
        assert!(parse_refresh(&other, &t).is_none());
    }
}

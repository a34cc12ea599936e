//! Our access tokens: HS256 JWTs with `kid`, carrying who (`sub`, `roles`), for what (`aud`,
//! the RFC 8707 resource; `scope`), through which client (`client_id`) and grant (`sid`, the
//! refresh family, which revocation is keyed by), until when (`exp`), and a `jti`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::SigningKeys;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub scope: String,
    pub client_id: String,
    /// The grant (refresh family) this token belongs to; revoking it refuses the token.
    pub sid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed or its signature does not verify")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token was not issued by this server")]
    Issuer,
    #[error("the token was issued for another resource")]
    Audience,
}

pub fn issue(keys: &SigningKeys, claims: &AccessClaims) -> Result<String, TokenError> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(keys.current.kid.clone());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(&keys.current.secret),
    )
    .map_err(|_| TokenError::Invalid)
}

/// Signature and issuer-agnostic claims only: for revocation, where an expired or foreign
/// token is simply ignored by the caller.
pub fn verify_ignoring_time(keys: &SigningKeys, token: &str) -> Result<AccessClaims, TokenError> {
    decode(keys, token)
}

fn decode(keys: &SigningKeys, token: &str) -> Result<AccessClaims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.by_kid(kid))
        .ok_or(TokenError::Invalid)?;
    let mut v = Validation::new(Algorithm::HS256);
    // Time comes from our Clock and the audience list from the request: checked by callers.
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_secret(&key.secret), &v)
        .map(|d| d.claims)
        .map_err(|_| TokenError::Invalid)
}

/// Verifies signature (HS256 only: `none` and every other algorithm are refused), `exp`
/// against `now_s`, `iss` and that `aud` is one of `audiences`.
pub fn verify(
    keys: &SigningKeys,
    token: &str,
    now_s: u64,
    issuer: &str,
    audiences: &[String],
) -> Result<AccessClaims, TokenError> {
    let c = decode(keys, token)?;
    if c.exp <= now_s {
        return Err(TokenError::Expired);
    }
    if c.iss != issuer {
        return Err(TokenError::Issuer);
    }
    if !audiences.contains(&c.aud) {
        return Err(TokenError::Audience);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "http://a".into(),
            sub: "alice".into(),
            aud: "http://a/mcp".into(),
            exp: 2_000,
            iat: 1_000,
            jti: "j".into(),
            scope: "mcp".into(),
            client_id: "c".into(),
            sid: "f".into(),
            roles: vec![],
        }
    }

    fn keys() -> SigningKeys {
        SigningKeys::new(&"k".repeat(32), &[]).unwrap()
    }

    #[test]
    fn a_token_verifies_only_for_its_issuer_audience_and_lifetime() {
        let k = keys();
        let t = issue(&k, &claims()).unwrap();
        let aud = vec!["http://a/mcp".to_string()];
        assert_eq!(verify(&k, &t, 1_500, "http://a", &aud).unwrap(), claims());
        assert_eq!(
            verify(&k, &t, 2_000, "http://a", &aud),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&k, &t, 1_500, "http://b", &aud),
            Err(TokenError::Issuer)
        );
        let other = vec!["http://a/other/mcp".to_string()];
        assert_eq!(
            verify(&k, &t, 1_500, "http://a", &other),
            Err(TokenError::Audience)
        );
    }

    #[test]
    fn alg_none_tampering_and_unknown_keys_are_refused() {
        let k = keys();
        let t = issue(&k, &claims()).unwrap();
        let aud = vec!["http://a/mcp".to_string()];
        let parts: Vec<&str> = t.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert_eq!(
            verify(&k, &unsigned, 1_500, "http://a", &aud),
            Err(TokenError::Invalid)
        );
        let mut c = claims();
        c.sub = "mallory".into();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let forged = format!("{}.{forged_body}.{}", parts[0], parts[2]);
        assert_eq!(
            verify(&k, &forged, 1_500, "http://a", &aud),
            Err(TokenError::Invalid)
        );
        let rotated = SigningKeys::new(&"n".repeat(32), &["k".repeat(32)]).unwrap();
        assert!(
            verify(&rotated, &t, 1_500, "http://a", &aud).is_ok(),
            "old keys verify"
        );
        let unknown = SigningKeys::new(&"n".repeat(32), &[]).unwrap();
        assert_eq!(
            verify(&unknown, &t, 1_500, "http://a", &aud),
            Err(TokenError::Invalid)
        );
    }
}

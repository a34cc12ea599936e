//! Amazon Cognito as the identity source: Cognito access and id tokens are checked against
//! the user pool's JWKS (`jwks.rs`: cached, refetched at a bounded rate), and the login page signs people in through Cognito's `InitiateAuth`
//! (USER_PASSWORD_AUTH), so MCP clients keep talking to our authorization server.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::jwks::Jwks;
use crate::auth::keys::SigningKeys;
use crate::auth::token::TokenError;
use crate::clock::Clock;

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct CognitoSettings {
    pub issuer: String,
    pub jwks_url: String,
    /// The IdP API (`https://cognito-idp.<region>.amazonaws.com/`).
    pub endpoint: String,
    /// App client ids whose tokens are accepted; the first one signs people in.
    pub client_ids: Vec<String>,
    pub client_secret: Option<String>,
    /// The identifier of our resource server in the pool, whose custom scopes are ours.
    pub resource_server: Option<String>,
}

/// Who a Cognito token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoIdentity {
    pub subject: String,
    pub groups: Vec<String>,
    /// Scopes of an access token, our resource server's prefix (`<id>/`) removed.
    pub scopes: Vec<String>,
    pub client_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("wrong user name or password")]
    Refused,
    #[error("Cognito asks for {0} first; finish it in Cognito")]
    Challenge(String),
    #[error("Cognito cannot be reached: {0}")]
    Unavailable(String),
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    exp: u64,
    token_use: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    aud: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default, rename = "cognito:groups")]
    groups: Vec<String>,
}

pub struct Cognito {
    settings: CognitoSettings,
    http: reqwest::Client,
    jwks: Jwks,
    clock: Arc<dyn Clock>,
}

impl Cognito {
    pub fn new(settings: CognitoSettings, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let http = super::jwks::provider_client(TIMEOUT)?;
        Ok(Self {
            jwks: Jwks::new(settings.jwks_url.clone(), http.clone(), clock.clone()),
            settings,
            http,
            clock,
        })
    }

    /// Whether a token looks like one of Cognito's (RS256 with a `kid`): lets the guard try
    /// our own keys first without decoding twice.
    pub fn looks_like(token: &str, ours: &SigningKeys) -> bool {
        jsonwebtoken::decode_header(token).is_ok_and(|h| {
            h.alg == Algorithm::RS256 && h.kid.as_deref().is_some_and(|k| ours.by_kid(k).is_none())
        })
    }

    /// Checks a Cognito access or id token: RS256 signature by the pool, `iss`, `exp`,
    /// `token_use`, and `client_id` (access) or `aud` (id) among the allowed app clients.
    pub async fn verify(&self, token: &str) -> Result<CognitoIdentity, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = self.jwks.key(&kid).await.ok_or(TokenError::Invalid)?;
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let c: Claims = jsonwebtoken::decode(token, &key, &v)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if c.exp <= self.clock.now_ms() / 1000 {
            return Err(TokenError::Expired);
        }
        if c.iss != self.settings.issuer {
            return Err(TokenError::Issuer);
        }
        let client = match c.token_use.as_str() {
            "access" => c.client_id,
            "id" => c.aud,
            _ => None,
        }
        .filter(|id| self.settings.client_ids.contains(id))
        .ok_or(TokenError::Audience)?;
        let scopes = c
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| self.own_scope(s))
            .collect();
        Ok(CognitoIdentity {
            subject: c.sub,
            groups: c.groups,
            scopes,
            client_id: client,
        })
    }

    /// `<our resource server>/notes:write` counts as `notes:write`; a scope of any other
    /// resource server keeps its prefix, so it never passes for one of ours.
    fn own_scope(&self, s: &str) -> String {
        self.settings
            .resource_server
            .as_deref()
            .and_then(|rs| s.strip_prefix(rs))
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(s)
            .to_string()
    }

    /// Signs a person in with user name and password (the login page in cognito mode).
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
    ) -> Result<CognitoIdentity, SignInError> {
        let client_id = self
            .settings
            .client_ids
            .first()
            .ok_or_else(|| SignInError::Unavailable("no app client configured".into()))?;
        let mut params = json!({"USERNAME": username, "PASSWORD": password});
        if let Some(secret) = &self.settings.client_secret {
            params["SECRET_HASH"] = json!(secret_hash(secret, username, client_id));
        }
        let body = json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": client_id, "AuthParameters": params});
        let resp = self
            .http
            .post(&self.settings.endpoint)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header(
                "X-Amz-Target",
                "AWSCognitoIdentityProviderService.InitiateAuth",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| SignInError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let answer: Value = resp
            .json()
            .await
            .map_err(|e| SignInError::Unavailable(e.to_string()))?;
        if status.is_client_error() {
            return Err(SignInError::Refused);
        }
        if !status.is_success() {
            return Err(SignInError::Unavailable(format!(
                "InitiateAuth answered {status}"
            )));
        }
        if let Some(challenge) = answer.get("ChallengeName").and_then(Value::as_str) {
            return Err(SignInError::Challenge(challenge.to_string()));
        }
        let id_token = answer
            .pointer("/AuthenticationResult/IdToken")
            .and_then(Value::as_str)
            .ok_or_else(|| SignInError::Unavailable("InitiateAuth returned no IdToken".into()))?;
        self.verify(id_token).await.map_err(|e| {
            SignInError::Unavailable(format!("the IdToken Cognito returned does not verify: {e}"))
        })
    }
}

/// `SECRET_HASH` of app clients with a secret: Base64(HMAC-SHA256(secret, username + client)).
fn secret_hash(secret: &str, username: &str, client_id: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let Ok(mut m) = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    m.update(username.as_bytes());
    m.update(client_id.as_bytes());
    STANDARD.encode(m.finalize().into_bytes())
}

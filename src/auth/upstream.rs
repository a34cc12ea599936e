//! Sign-in handed to an OpenID Connect provider (the Cognito hosted UI, Entra, Google, ...)
//! with the `oauth2` crate: our login page sends the person there (code flow with PKCE, state
//! and nonce), the provider sends them back to `/authorize/callback`, and we exchange the code
//! and verify the id token. MCP clients never see the provider: they keep talking to our
//! authorization server, whose metadata they can use (Cognito's lacks PKCE methods), and the
//! person still approves each client on our consent page.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::jwks::Jwks;
use crate::clock::Clock;

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// What the login page's button says ("Sign in with <name>").
    pub name: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the identity provider cannot be reached: {0}")]
    Unavailable(String),
    #[error("the identity provider's answer is not acceptable: {0}")]
    Refused(String),
}

/// The id token next to the access token in the provider's token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenField {
    id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OidcClient = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

struct Provider {
    client: OidcClient,
    jwks: Jwks,
}

/// What the callback needs to finish a sign-in begun here (kept server-side, single use).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Begun {
    pub url: String,
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdentity {
    pub subject: String,
    pub display: String,
    pub roles: Vec<String>,
}

pub struct Upstream {
    pub settings: UpstreamSettings,
    http: reqwest::Client,
    provider: OnceCell<Provider>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpFailure(String);

/// `oauth2`'s HTTP seam, served by our reqwest (no second HTTP stack).
async fn send(
    http: reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, HttpFailure> {
    let (parts, body) = req.into_parts();
    let resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpFailure(e.to_string()))?;
    let mut out = oauth2::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let bytes = resp.bytes().await.map_err(|e| HttpFailure(e.to_string()))?;
    out.body(bytes.to_vec())
        .map_err(|e| HttpFailure(e.to_string()))
}

impl Upstream {
    pub fn new(settings: UpstreamSettings, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let http = super::jwks::provider_client(TIMEOUT)?;
        Ok(Self {
            settings,
            http,
            provider: OnceCell::new(),
            clock,
        })
    }

    /// Discovery on first use (so a provider that is down does not stop start-up).
    async fn provider(&self) -> Result<&Provider, UpstreamError> {
        self.provider
            .get_or_try_init(|| async {
                let s = &self.settings;
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    s.issuer.trim_end_matches('/')
                );
                let d: Discovery = async {
                    self.http
                        .get(&url)
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await
                }
                .await
                .map_err(|e| UpstreamError::Unavailable(format!("{url}: {e}")))?;
                if d.issuer != s.issuer {
                    return Err(UpstreamError::Refused(format!(
                        "discovery names the issuer {:?}, not {:?}",
                        d.issuer, s.issuer
                    )));
                }
                let bad = |e: oauth2::url::ParseError| UpstreamError::Refused(e.to_string());
                let mut client = oauth2::Client::new(ClientId::new(s.client_id.clone()))
                    .set_auth_uri(AuthUrl::new(d.authorization_endpoint).map_err(bad)?)
                    .set_token_uri(TokenUrl::new(d.token_endpoint).map_err(bad)?);
                if let Some(secret) = &s.client_secret {
                    client = client.set_client_secret(ClientSecret::new(secret.clone()));
                }
                Ok(Provider {
                    client,
                    jwks: Jwks::new(d.jwks_uri, self.http.clone(), self.clock.clone()),
                })
            })
            .await
    }

    /// Where to send the browser, and what the callback will need.
    pub async fn begin(&self, redirect_uri: &str) -> Result<Begun, UpstreamError> {
        let p = self.provider().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = super::keys::random_token();
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| UpstreamError::Refused(e.to_string()))?;
        let mut req = p
            .client
            .authorize_url(CsrfToken::new_random)
            .set_redirect_uri(std::borrow::Cow::Owned(redirect))
            .set_pkce_challenge(challenge)
            .add_extra_param("nonce", nonce.clone());
        for s in &self.settings.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state) = req.url();
        Ok(Begun {
            url: url.to_string(),
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce,
        })
    }

    /// Exchanges the callback's code and verifies the id token it brings.
    pub async fn finish(
        &self,
        code: &str,
        begun: &Begun,
        redirect_uri: &str,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let p = self.provider().await?;
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| UpstreamError::Refused(e.to_string()))?;
        let http = self.http.clone();
        let client_fn = move |req| send(http.clone(), req);
        let tokens = p
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_redirect_uri(std::borrow::Cow::Owned(redirect))
            .set_pkce_verifier(PkceCodeVerifier::new(begun.pkce_verifier.clone()))
            .request_async(&client_fn)
            .await
            .map_err(|e| UpstreamError::Refused(format!("code exchange failed: {e}")))?;
        let id_token =
            tokens.extra_fields().id_token.clone().ok_or_else(|| {
                UpstreamError::Refused("no id_token in the token response".into())
            })?;
        self.verify_id_token(p, &id_token, &begun.nonce).await
    }

    async fn verify_id_token(
        &self,
        p: &Provider,
        token: &str,
        nonce: &str,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let refuse = |m: &str| UpstreamError::Refused(format!("id token: {m}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("malformed"))?;
        let allowed = [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::ES384,
        ];
        if !allowed.contains(&header.alg) {
            return Err(refuse("unsupported signature algorithm"));
        }
        let kid = header.kid.ok_or_else(|| refuse("no kid"))?;
        let key = p
            .jwks
            .key(&kid)
            .await
            .ok_or_else(|| refuse("unknown signing key"))?;
        let mut v = Validation::new(header.alg);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let c: Value = jsonwebtoken::decode(token, &key, &v)
            .map_err(|_| refuse("signature does not verify"))?
            .claims;
        let s = &self.settings;
        if c["iss"].as_str() != Some(s.issuer.as_str()) {
            return Err(refuse("wrong issuer"));
        }
        let aud_ok = match &c["aud"] {
            Value::String(a) => *a == s.client_id,
            Value::Array(items) => items.iter().any(|a| a.as_str() == Some(&s.client_id)),
            _ => false,
        };
        if !aud_ok {
            return Err(refuse("issued to another client"));
        }
        if c["exp"]
            .as_u64()
            .is_none_or(|exp| exp <= self.clock.now_ms() / 1000)
        {
            return Err(refuse("expired"));
        }
        if c["nonce"].as_str() != Some(nonce) {
            return Err(refuse("nonce does not match"));
        }
        let subject = c["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| refuse("no sub"))?
            .to_string();
        let display = ["preferred_username", "cognito:username", "email"]
            .iter()
            .find_map(|k| c[*k].as_str())
            .unwrap_or(&subject)
            .to_string();
        let roles = c
            .get("cognito:groups")
            .or_else(|| c.get("groups"))
            .and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(UpstreamIdentity {
            subject,
            display,
            roles,
        })
    }
}

//! Builds the `AuthServer` from `Config`: signing keys (given, or generated on a single
//! node), the user file and its bootstrap admin, machine clients, Cognito.

use std::sync::Arc;

use super::AuthProvider;
use super::cognito::{Cognito, CognitoSettings};
use super::keys::SigningKeys;
use super::oauth::cimd::MetadataFetcher;
use super::oauth::clients::ClientLimits;
use super::oauth::redirect::RedirectPolicy;
use super::oauth::{AuthServer, AuthSettings, Clients};
use super::throttle::Throttles;
use super::upstream::{Upstream, UpstreamSettings};
use super::users::UserDb;
use crate::clock::Clock;
use crate::config::Config;
use crate::state::AuthStore;

/// bcrypt cost of new password hashes (OWASP's floor for bcrypt is 10).
pub const BCRYPT_COST: u32 = 12;

pub fn build(
    config: &Config,
    store: Arc<dyn AuthStore>,
    clock: Arc<dyn Clock>,
) -> Result<AuthServer, String> {
    // reqwest's TLS needs a process-wide crypto provider; a second install is a no-op error.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let provider = config.auth();
    let keys = match &config.jwt_secret_key {
        Some(k) => SigningKeys::new(k, &config.jwt_previous_keys),
        None if provider == AuthProvider::None => {
            SigningKeys::new(&super::keys::random_token(), &[])
        }
        None => SigningKeys::generated(&config.data_dir),
    }
    .map_err(|e| e.to_string())?;
    let users = match provider {
        AuthProvider::Local => {
            let path = config
                .local_user_file
                .clone()
                .unwrap_or_else(|| config.data_dir.join("users.json"));
            let db = UserDb::open(&path, BCRYPT_COST).map_err(|e| e.to_string())?;
            if let Some(pw) = db
                .ensure_admin(&config.admin_username, config.admin_password.as_deref())
                .map_err(|e| e.to_string())?
            {
                // Printed once, on the console, never logged again: the only way to learn it.
                eprintln!(
                    "\n  Created the admin user {:?} with the password: {pw}\n  (stored as a bcrypt hash in {}; change it with `mcp-daemon user`)\n",
                    config.admin_username,
                    path.display()
                );
            }
            Some(Arc::new(db))
        }
        _ => None,
    };
    let cognito = match provider {
        AuthProvider::Cognito => Some(Arc::new(Cognito::new(
            cognito_settings(config)?,
            clock.clone(),
        )?)),
        _ => None,
    };
    let upstream = match (&config.oidc_issuer, &config.oidc_client_id) {
        (Some(issuer), Some(client_id)) if provider != AuthProvider::None => {
            Some(Arc::new(Upstream::new(
                UpstreamSettings {
                    issuer: issuer.clone(),
                    client_id: client_id.clone(),
                    client_secret: config.oidc_client_secret.clone(),
                    name: config.oidc_name.clone(),
                    scopes: config
                        .oidc_scopes
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                },
                clock.clone(),
            )?))
        }
        _ => None,
    };
    let limits = &config.auth_limits;
    let schemes: Vec<String> = limits.redirect_schemes().cloned().collect();
    let policy = RedirectPolicy::new(&schemes);
    let statics = match &config.oauth_clients_file {
        Some(p) => Clients::load_static(p, &policy)?,
        None => Vec::new(),
    };
    let clients = Clients::new(
        statics,
        store.clone(),
        MetadataFetcher::new(config.cimd_allow_private, policy.clone(), clock.clone()),
        policy,
        ClientLimits {
            max_clients: limits.oauth_max_clients,
            idle_ttl_ms: limits.oauth_client_idle_days.saturating_mul(86_400_000),
            registrations_per_minute: limits.oauth_registrations_per_minute,
        },
    );
    let auth_settings_set = config.admin_static_token.is_some()
        || config.oauth_test_user.is_some()
        || config.oauth_clients_file.is_some()
        || config.local_user_file.is_some();
    if provider == AuthProvider::None && auth_settings_set {
        tracing::warn!(
            "authentication settings are set but AUTH_PROVIDER is none: they have no effect and every caller is anonymous"
        );
    }
    if provider == AuthProvider::None && config.auth_provider.is_none() {
        eprintln!(
            "mcp-daemon: authentication is off (AUTH_PROVIDER unset, loopback address): only this \
             machine can connect. Set AUTH_PROVIDER=local to require sign-in."
        );
    }
    tracing::info!(provider = ?provider, "authentication: {}", super::http::guard::describe(provider));
    if let Some(u) = &config.oauth_test_user {
        tracing::warn!(user = %u, "OAUTH_TEST_USER is set: /authorize approves every request as this user without asking");
    }
    Ok(AuthServer {
        settings: AuthSettings {
            provider,
            public_url: config.canonical_public_url(),
            access_ttl_s: config.access_token_exp * 60,
            refresh_ttl_s: config.refresh_token_exp_days * 86_400,
            refresh_grace_ms: 10_000,
            test_user: config.oauth_test_user.clone(),
            admin_static_token: config.admin_static_token.clone(),
            cimd_allow_private: config.cimd_allow_private,
        },
        keys,
        store,
        clients,
        users,
        cognito,
        upstream,
        throttle: Throttles::new(&config.auth_limits),
        clock,
    })
}

fn cognito_settings(config: &Config) -> Result<CognitoSettings, String> {
    let base = match (config.cognito_region(), &config.cognito_user_pool_id) {
        (Some(r), Some(p)) => Some((format!("https://cognito-idp.{r}.amazonaws.com"), p.clone())),
        _ => None,
    };
    let issuer = config
        .cognito_issuer
        .clone()
        .or_else(|| base.as_ref().map(|(b, p)| format!("{b}/{p}")))
        .ok_or("COGNITO_ISSUER or COGNITO_USER_POOL_ID with a region is required")?;
    let jwks_url = config
        .cognito_jwks_url
        .clone()
        .unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
    let endpoint = config
        .cognito_endpoint
        .clone()
        .or_else(|| base.as_ref().map(|(b, _)| format!("{b}/")))
        .ok_or("COGNITO_ENDPOINT or COGNITO_REGION is required")?;
    Ok(CognitoSettings {
        issuer,
        jwks_url,
        endpoint,
        client_ids: config.cognito_app_client_id.clone(),
        client_secret: config.cognito_app_secret.clone(),
        resource_server: config.cognito_resource_server.clone(),
    })
}

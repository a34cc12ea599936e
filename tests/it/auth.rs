//! Authentication end to end over real HTTP: discovery from a 401, registration, PKCE codes
//! (test mode), refresh rotation, revocation, scopes and roles on tools, machine clients, the
//! static admin token, CORS, and the sign-in pages' CSRF guard. The attacks are in
//! `auth_attacks.rs`; several nodes on Redis in `auth_cluster.rs`.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_daemon::auth::AuthProvider;
use mcp_daemon::auth::users::UserDb;
use mcp_daemon::clock::ManualClock;
use mcp_daemon::config::Config;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{McpHttp, TestServer};

pub const AUTH_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/auth.json");
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const REDIRECT: &str = "http://127.0.0.1:5999/callback";
pub const V: &str = "2025-11-25";

/// A server with local users (admin; alice and bob with cost-4 hashes; carol with role ops)
/// and test mode signing in as `test_user`.
pub struct AuthServer {
    pub srv: TestServer,
    pub clock: Arc<ManualClock>,
    pub oauth: OAuth,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for AuthServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.srv
    }
}

pub fn auth_config(dir: &std::path::Path, test_user: &str) -> Config {
    let mut c = Config::for_test();
    c.config_file = Some(AUTH_FIXTURE.into());
    c.auth_provider = Some(AuthProvider::Local);
    c.data_dir = dir.to_path_buf();
    c.admin_password = Some(ADMIN_PASSWORD.into());
    c.oauth_test_user = Some(test_user.into());
    let users = UserDb::open(&dir.join("users.json"), 4).unwrap();
    users.add("alice", "alice-password", &[]).unwrap();
    users.add("bob", "bob-password", &[]).unwrap();
    users
        .add("carol", "carol-password", &["ops".into()])
        .unwrap();
    c
}

impl AuthServer {
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub async fn start(test_user: &str) -> Self {
        Self::start_with(test_user, |_| {}).await
    }

    pub async fn start_with(test_user: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut c = auth_config(dir.path(), test_user);
        tweak(&mut c);
        let (srv, clock) = TestServer::with_manual_clock(c).await;
        let oauth = OAuth::new(&srv.base);
        Self {
            srv,
            clock,
            oauth,
            _dir: dir,
        }
    }
}

/// An OAuth client speaking to one server: never follows redirects, so every hop is seen.
#[derive(Clone)]
pub struct OAuth {
    pub base: String,
    /// The issuer and resource origin (`PUBLIC_URL`; by default the server's own URL).
    pub issuer: String,
    pub http: reqwest::Client,
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = mcp_daemon::auth::keys::random_token();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// The query of a redirect `Location` as pairs.
pub fn query_of(location: &str) -> Vec<(String, String)> {
    let u = url::Url::parse(location).unwrap();
    u.query_pairs().into_owned().collect()
}

pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl OAuth {
    pub fn with_issuer(base: &str, issuer: &str) -> Self {
        Self {
            issuer: issuer.to_string(),
            ..Self::new(base)
        }
    }

    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_string(),
            issuer: base.to_string(),
            http: crate::harness::http_client()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub async fn register(&self, redirect: &str) -> String {
        let r = self
            .http
            .post(format!("{}/register", self.base))
            .json(
                &json!({"redirect_uris": [redirect], "client_name": "it client",
                          "token_endpoint_auth_method": "none", "application_type": "native"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["client_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// GET /authorize with `extra` replacing or adding parameters.
    pub async fn authorize(
        &self,
        client: &str,
        pkce: &Pkce,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let resource = format!("{}/mcp", self.issuer);
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", "st-123"),
            ("resource", &resource),
        ];
        for (k, v) in extra {
            params.retain(|(p, _)| p != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        self.http
            .get(format!("{}/authorize", self.base))
            .query(&params)
            .send()
            .await
            .unwrap()
    }

    /// A code through test mode, with the checks every authorization response must pass.
    pub async fn code(&self, client: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
        let r = self.authorize(client, pkce, extra).await;
        assert_eq!(r.status(), 302, "{:?}", r.text().await);
        let pairs = query_of(r.headers()["location"].to_str().unwrap());
        assert_eq!(param(&pairs, "state"), Some("st-123"));
        assert_eq!(
            param(&pairs, "iss"),
            Some(self.issuer.as_str()),
            "RFC 9207 iss"
        );
        assert_eq!(pairs.iter().filter(|(k, _)| k == "code").count(), 1);
        param(&pairs, "code").unwrap().to_string()
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn exchange(&self, client: &str, code: &str, verifier: &str) -> reqwest::Response {
        self.exchange_for(client, code, verifier, &format!("{}/mcp", self.issuer))
            .await
    }

    pub async fn exchange_for(
        &self,
        client: &str,
        code: &str,
        verifier: &str,
        resource: &str,
    ) -> reqwest::Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("client_id", client),
            ("resource", resource),
        ])
        .await
    }

    /// Registration, code, token: the whole flow; returns (client id, token response).
    pub async fn sign_in(&self, extra: &[(&str, &str)]) -> (String, Value) {
        let client = self.register(REDIRECT).await;
        let p = pkce();
        let code = self.code(&client, &p, extra).await;
        let default = format!("{}/mcp", self.issuer);
        let resource = param_of(extra, "resource").unwrap_or(&default);
        let r = self
            .exchange_for(&client, &code, &p.verifier, resource)
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        (client, r.json().await.unwrap())
    }

    pub async fn refresh(&self, client: &str, refresh_token: &str) -> reqwest::Response {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client),
        ])
        .await
    }

    /// `POST /revoke` of `token` by the public client `client`.
    pub async fn revoke(&self, client: &str, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/revoke", self.base))
            .form(&[("token", token), ("client_id", client)])
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, user: &str, password: &str) -> String {
        let r = self
            .http
            .post(format!("{}/auth/login", self.base))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn param_of<'a>(pairs: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// The value of a hidden form field of a server-rendered page.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker).unwrap() + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

pub fn access(t: &Value) -> &str {
    t["access_token"].as_str().unwrap()
}

pub async fn ping_status(mcp: &McpHttp) -> (u16, Option<String>) {
    let r = mcp
        .post(None, &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": V, "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}}))
        .await;
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), challenge)
}

fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_401_points_at_metadata_that_leads_to_the_authorization_server() {
    let s = AuthServer::start("admin").await;
    let (status, challenge) = ping_status(&s.srv).await;
    assert_eq!(status, 401);
    let challenge = challenge.unwrap();
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", s.base);
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{prm_url}\", scope=\"mcp\"")
    );
    let prm: Value = s.get_json(&prm_url).await;
    assert_eq!(
        prm["resource"],
        format!("{}/mcp", s.base),
        "exact, no trailing slash"
    );
    assert_eq!(prm["authorization_servers"], json!([s.base]));
    assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
    assert_eq!(prm["scopes_supported"], json!(["mcp", "notes:write"]));
    let root: Value = s
        .get_json(s.url("/.well-known/oauth-protected-resource"))
        .await;
    assert_eq!(root["resource"], s.base);
    let team: Value = s
        .get_json(s.url("/.well-known/oauth-protected-resource/team-a/mcp"))
        .await;
    assert_eq!(team["resource"], format!("{}/team-a/mcp", s.base));
    let on_team = s
        .http
        .post(s.url("/team-a/mcp"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(
        on_team.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("/.well-known/oauth-protected-resource/team-a/mcp")
    );
    for path in ["/sse", "/http", "/messages?session_id=x"] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert!(
            r.status() == 401 || r.status() == 405,
            "{path}: {}",
            r.status()
        );
    }
    let meta: Value = s
        .get_json(s.url("/.well-known/oauth-authorization-server"))
        .await;
    let oidc: Value = s.get_json(s.url("/.well-known/openid-configuration")).await;
    assert_eq!(meta, oidc, "both documents are identical");
    assert_eq!(meta["issuer"], s.base);
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["client_id_metadata_document_supported"], true);
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        meta["registration_endpoint"],
        format!("{}/register", s.base)
    );
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("refresh_token"))
    );
    // Health and metadata stay public.
    assert_eq!(
        s.http.get(s.url("/health")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn cors_lets_browser_clients_send_and_read_the_auth_and_mcp_headers() {
    let s = AuthServer::start_with("admin", |c| {
        c.allowed_origins = vec!["https://app.example".into()]
    })
    .await;
    for path in ["/mcp", "/.well-known/oauth-protected-resource/mcp"] {
        let pre = s
            .http
            .request(reqwest::Method::OPTIONS, s.url(path))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, mcp-session-id, mcp-protocol-version, last-event-id, mcp-method, mcp-name, mcp-param-city")
            .send()
            .await
            .unwrap();
        assert_eq!(pre.status(), 204);
        let allowed = pre.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for h in [
            "authorization",
            "mcp-session-id",
            "mcp-protocol-version",
            "last-event-id",
            "mcp-method",
            "mcp-name",
            "mcp-param-city",
        ] {
            assert!(allowed.contains(h), "{path}: {h} not in {allowed}");
        }
    }
    let r = s
        .http
        .post(s.url("/mcp"))
        .header("origin", "https://app.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.contains("Mcp-Session-Id") && exposed.contains("WWW-Authenticate"),
        "{exposed}"
    );
    let evil = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/mcp"))
        .header("origin", "https://app.example")
        .header("access-control-request-headers", "x-evil")
        .send()
        .await
        .unwrap();
    assert!(
        !evil.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("x-evil")
    );
}

#[tokio::test]
async fn a_registered_client_signs_in_calls_tools_and_refreshes_with_rotation() {
    let s = AuthServer::start("admin").await;
    let (client, t) = s
        .oauth
        .sign_in(&[("scope", "mcp offline_access openid")])
        .await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "mcp", "unknown scopes are dropped");
    assert_eq!(t["expires_in"], 3600);
    let mcp = s.with_token(access(&t));
    let sid = mcp.initialize(V, json!({})).await;
    let r = mcp
        .call_tool(&sid, "add_numbers", json!({"a": 2, "b": 40}))
        .await;
    assert_eq!(r["content"][0]["text"], "42");
    // The JWT says what it is for.
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access(&t).split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], format!("{}/mcp", s.base));
    assert_eq!(claims["iss"], s.base);
    assert_eq!(claims["sub"], "admin");
    assert_eq!(claims["client_id"], client);
    for c in ["exp", "iat", "jti", "sid", "scope"] {
        assert!(claims.get(c).is_some(), "{c}");
    }
    // Refresh rotates: a new refresh token, and the session goes on with the new access token.
    let r1 = s
        .oauth
        .refresh(&client, t["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r1.status(), 200);
    assert_eq!(r1.headers()["cache-control"], "no-store");
    let t1: Value = r1.json().await.unwrap();
    assert_ne!(t1["refresh_token"], t["refresh_token"]);
    assert_ne!(t1["access_token"], t["access_token"]);
    let r = s
        .with_token(access(&t1))
        .call_tool(&sid, "hello", json!({"name": "x"}))
        .await;
    assert!(r["content"][0]["text"].as_str().unwrap().contains('x'));
    // A refresh may narrow the scope but never widen it.
    let wider = s
        .oauth
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t1["refresh_token"].as_str().unwrap()),
            ("client_id", &client),
            ("scope", "mcp notes:write"),
        ])
        .await;
    assert_eq!(wider.status(), 400);
    assert_eq!(
        wider.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_both_succeed_within_the_grace_window() {
    let s = AuthServer::start("admin").await;
    let (client, t) = s.oauth.sign_in(&[]).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(s.oauth.refresh(&client, rt), s.oauth.refresh(&client, rt));
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(
        a["refresh_token"], b["refresh_token"],
        "both get the one new generation"
    );
}

#[tokio::test]
async fn tools_need_their_scopes_and_roles_and_step_up_gets_a_single_challenge() {
    let s = AuthServer::start("alice").await;
    let (client, t) = s.oauth.sign_in(&[]).await;
    let mcp = s.with_token(access(&t));
    let sid = mcp.initialize(V, json!({})).await;
    let names = tool_names(&mcp.request(&sid, 2, "tools/list", json!({})).await);
    assert_eq!(
        names,
        vec!["hello", "add_numbers"],
        "scoped and role tools are hidden"
    );
    let r = mcp
        .post(
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "notes_write", "arguments": {}}}),
        )
        .await;
    assert_eq!(r.status(), 403);
    let c = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        c.starts_with("Bearer error=\"insufficient_scope\", scope=\"mcp notes:write\""),
        "{c}"
    );
    assert!(c.contains(&format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        s.base
    )));
    assert_eq!(r.json::<Value>().await.unwrap()["id"], 3);
    // A role cannot be asked for: the tool does not exist for this caller.
    let role = mcp
        .request(
            &sid,
            4,
            "tools/call",
            json!({"name": "ops_only", "arguments": {}}),
        )
        .await;
    assert_eq!(role["error"]["code"], -32602);
    assert!(
        role["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown tool")
    );
    // Step up: a new grant with the scope sees and calls the tool.
    let p = pkce();
    let code = s
        .oauth
        .code(&client, &p, &[("scope", "mcp notes:write")])
        .await;
    let up: Value = s
        .oauth
        .exchange(&client, &code, &p.verifier)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(up["scope"], "mcp notes:write");
    let mcp = s.with_token(access(&up));
    let names = tool_names(&mcp.request(&sid, 5, "tools/list", json!({})).await);
    assert!(names.contains(&"notes_write".to_string()));
    let ok = mcp
        .call_tool(&sid, "notes_write", json!({"name": "n"}))
        .await;
    assert!(ok["content"][0]["text"].as_str().unwrap().contains('n'));
    // carol has the ops role; admin sees everything.
    let carol = s.with_token(&s.oauth.login("carol", "carol-password").await);
    let csid = carol.initialize(V, json!({})).await;
    assert!(
        tool_names(&carol.request(&csid, 2, "tools/list", json!({})).await)
            .contains(&"ops_only".to_string())
    );
    let admin = s.with_token(&s.oauth.login("admin", ADMIN_PASSWORD).await);
    let asid = admin.initialize(V, json!({})).await;
    assert_eq!(
        tool_names(&admin.request(&asid, 2, "tools/list", json!({})).await).len(),
        4
    );
}

#[tokio::test]
async fn machine_clients_use_client_credentials_and_the_static_admin_token_is_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clients.json");
    std::fs::write(
        &file,
        json!({"clients": [{"client_id": "robot", "client_secret": "robot-secret-0123456789",
        "scopes": ["mcp", "notes:write"]}]})
        .to_string(),
    )
    .unwrap();
    let token = "static-admin-token-0123456789abcdef";
    let s = AuthServer::start_with("admin", |c| {
        c.oauth_clients_file = Some(file.clone());
        c.admin_static_token = Some(token.into());
    })
    .await;
    let bad = s
        .oauth
        .http
        .post(s.url("/token"))
        .basic_auth("robot", Some("wrong-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let r = s
        .oauth
        .http
        .post(s.url("/token"))
        .basic_auth("robot", Some("robot-secret-0123456789"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "mcp notes:write"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert!(t.get("refresh_token").is_none());
    let robot = s.with_token(access(&t));
    let sid = robot.initialize(V, json!({})).await;
    let ok = robot
        .call_tool(&sid, "notes_write", json!({"name": "r"}))
        .await;
    assert!(ok["content"][0]["text"].as_str().unwrap().contains('r'));
    let wide = s
        .oauth
        .http
        .post(s.url("/token"))
        .basic_auth("robot", Some("robot-secret-0123456789"))
        .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        wide.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );
    // A public client cannot use client_credentials.
    let public = s.oauth.register(REDIRECT).await;
    let p = s
        .oauth
        .token(&[("grant_type", "client_credentials"), ("client_id", &public)])
        .await;
    assert_eq!(
        p.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    // The static admin token.
    let admin = s.with_token(token);
    let asid = admin.initialize(V, json!({})).await;
    assert_eq!(
        tool_names(&admin.request(&asid, 2, "tools/list", json!({})).await).len(),
        4
    );
    let (status, _) = ping_status(&s.with_token("static-admin-token-0123456789abcdeX")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_sign_in_token_is_revocable_and_stops_working_when_its_user_is_removed() {
    let s = AuthServer::start("admin").await;
    let alice = s.oauth.login("alice", "alice-password").await;
    assert_eq!(ping_status(&s.with_token(&alice)).await.0, 200);
    let foreign = s.oauth.register(REDIRECT).await;
    assert_eq!(s.oauth.revoke(&foreign, &alice).await.status(), 200);
    assert_eq!(
        ping_status(&s.with_token(&alice)).await.0,
        200,
        "another client cannot revoke it"
    );
    let r = s.oauth.revoke("auth-login", &alice).await;
    assert_eq!(
        r.status(),
        200,
        "auth-login is a known public client for /revoke"
    );
    let (status, challenge) = ping_status(&s.with_token(&alice)).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("revoked"));
    // The pseudo-client can only revoke: it is no client of /token.
    let t = s
        .oauth
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "auth-login"),
        ])
        .await;
    assert_eq!(t.status(), 401);

    let bob = s.oauth.login("bob", "bob-password").await;
    assert_eq!(ping_status(&s.with_token(&bob)).await.0, 200);
    UserDb::open(&s.data_dir().join("users.json"), 4)
        .unwrap()
        .remove("bob")
        .unwrap();
    s.clock.advance_ms(mcp_daemon::auth::users::RECHECK_MS);
    let (status, challenge) = ping_status(&s.with_token(&bob)).await;
    assert_eq!(status, 401, "a removed user's token stops working");
    assert!(challenge.unwrap().contains("no longer exists"));
    let carol = s.oauth.login("carol", "carol-password").await;
    assert_eq!(
        ping_status(&s.with_token(&carol)).await.0,
        200,
        "others still work"
    );
}

#[tokio::test]
async fn the_sign_in_pages_refuse_forms_from_another_browser_session() {
    let s = AuthServer::start_with("admin", |c| c.oauth_test_user = None).await;
    let client = s.oauth.register(REDIRECT).await;
    let p = pkce();
    let page = s.oauth.authorize(&client, &p, &[]).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("__Host-mcp-csrf=")
            && cookie.contains("Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("it client") && html.contains("127.0.0.1"),
        "names the client and its redirect host"
    );
    let field = |name: &str| hidden_field(&html, name);
    let (request, csrf) = (field("request"), field("csrf"));
    let cookie_value = cookie.split(';').next().unwrap().to_string();
    let post = |cookie: Option<String>, password: &str| {
        let mut r = s.oauth.http.post(s.url("/authorize/login")).form(&[
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("username", "admin"),
            ("password", password),
        ]);
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.send()
    };
    assert_eq!(
        post(None, ADMIN_PASSWORD).await.unwrap().status(),
        403,
        "no cookie: CSRF"
    );
    assert_eq!(
        post(Some("__Host-mcp-csrf=forged".into()), ADMIN_PASSWORD)
            .await
            .unwrap()
            .status(),
        403
    );
    let wrong = post(Some(cookie_value.clone()), "nope").await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("wrong user name or password")
    );
    let consent = post(Some(cookie_value.clone()), ADMIN_PASSWORD)
        .await
        .unwrap();
    assert_eq!(consent.status(), 200);
    let html = consent.text().await.unwrap();
    assert!(html.contains("id=\"approve\"") && html.contains("id=\"loopback-warning\""));
    let grant = hidden_field(&html, "grant");
    let grant = grant.as_str();
    let approve = s
        .oauth
        .http
        .post(s.url("/authorize/consent"))
        .header("cookie", &cookie_value)
        .form(&[
            ("grant", grant),
            ("csrf", csrf.as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status(), 303);
    let pairs = query_of(approve.headers()["location"].to_str().unwrap());
    assert_eq!(param(&pairs, "iss"), Some(s.base.as_str()));
    let code = param(&pairs, "code").unwrap();
    assert_eq!(
        s.oauth.exchange(&client, code, &p.verifier).await.status(),
        200
    );
    // A tampered sealed grant is refused.
    let tampered = format!("{}A", &grant[..grant.len() - 1]);
    let t = s
        .oauth
        .http
        .post(s.url("/authorize/consent"))
        .header("cookie", &cookie_value)
        .form(&[
            ("grant", tampered.as_str()),
            ("csrf", csrf.as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(t.status(), 400);
}

#[tokio::test]
async fn upstream_sign_in_refuses_unknown_state_and_an_unreachable_provider() {
    let dead = format!("http://127.0.0.1:{}", crate::nodes::free_port());
    let s = AuthServer::start_with("admin", |c| {
        c.oauth_test_user = None;
        c.oidc_issuer = Some(dead.clone());
        c.oidc_client_id = Some("mcp-daemon".into());
        c.oidc_name = "Corp SSO".into();
    })
    .await;
    let client = s.oauth.register(REDIRECT).await;
    let page = s.oauth.authorize(&client, &pkce(), &[]).await;
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("id=\"sso\"") && html.contains("Sign in with Corp SSO"),
        "{html}"
    );
    let field = |name: &str| hidden_field(&html, name);
    let (request, csrf) = (field("request"), field("csrf"));
    let post = |cookie: Option<&str>| {
        let mut r = s
            .oauth
            .http
            .post(s.url("/authorize/upstream"))
            .form(&[("request", request.as_str()), ("csrf", csrf.as_str())]);
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 403, "CSRF");
    let down = post(Some(&cookie)).await.unwrap();
    assert_eq!(down.status(), 502, "the provider cannot be reached");
    assert!(down.headers().get("location").is_none());
    // A callback nobody started (or a replayed one) finds no state and redirects nowhere.
    let forged = s
        .oauth
        .http
        .get(s.url("/authorize/callback?code=x&state=made-up"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert!(forged.headers().get("location").is_none());
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
}

/// An HTTP client whose requests come from `ip` (any 127.0.0.0/8 address reaches a server on
/// 127.0.0.1 on Linux), so throttles see another source. Never follows redirects.
pub fn client_from(ip: &str) -> reqwest::Client {
    crate::harness::http_client()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A consent form as the browser holds it after signing in through the pages.
pub struct ConsentForm {
    pub cookie: String,
    pub csrf: String,
    pub grant: String,
}

/// Signs `user` in through `/authorize` and `/authorize/login` (test mode off).
pub async fn consent_form(
    o: &OAuth,
    client: &str,
    p: &Pkce,
    user: &str,
    password: &str,
) -> ConsentForm {
    let page = o.authorize(client, p, &[]).await;
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    let (request, csrf) = (hidden_field(&html, "request"), hidden_field(&html, "csrf"));
    let r = o
        .http
        .post(format!("{}/authorize/login", o.base))
        .header("cookie", &cookie)
        .form(&[
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let grant = hidden_field(&r.text().await.unwrap(), "grant");
    ConsentForm {
        cookie,
        csrf,
        grant,
    }
}

impl ConsentForm {
    /// Posts the form (to any node) with `decision`.
    pub async fn post(&self, o: &OAuth, decision: &str) -> reqwest::Response {
        o.http
            .post(format!("{}/authorize/consent", o.base))
            .header("cookie", &self.cookie)
            .form(&[
                ("grant", self.grant.as_str()),
                ("csrf", self.csrf.as_str()),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap()
    }
}

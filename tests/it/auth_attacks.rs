//! One test per attack on the authorization server and the resource server: each is refused
//! with the right status, and nothing leaks or changes (the victim's grant and session still
//! work afterwards).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use std::time::{Duration, Instant};

use mcp_daemon::auth::users::UserDb;

use crate::auth::{
    ADMIN_PASSWORD, AuthServer, OAuth, REDIRECT, V, access, client_from, consent_form,
    hidden_field, param, ping_status, pkce, query_of,
};

async fn error_of(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (status, v["error"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn wrong_code_verifier_is_refused_and_burns_the_code() {
    let s = AuthServer::start("admin").await;
    let client = s.oauth.register(REDIRECT).await;
    let p = pkce();
    let code = s.oauth.code(&client, &p, &[]).await;
    let other = pkce();
    assert_eq!(
        error_of(s.oauth.exchange(&client, &code, &other.verifier).await).await,
        (400, "invalid_grant".into())
    );
    // The code was single use even though the attempt failed: the right verifier is too late.
    assert_eq!(
        error_of(s.oauth.exchange(&client, &code, &p.verifier).await).await,
        (400, "invalid_grant".into())
    );
    let missing = s
        .oauth
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", &client),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(error_of(missing).await.0, 400);
}

#[tokio::test]
async fn a_reused_code_is_refused() {
    let s = AuthServer::start("admin").await;
    let client = s.oauth.register(REDIRECT).await;
    let p = pkce();
    let code = s.oauth.code(&client, &p, &[]).await;
    let (first, second) = tokio::join!(
        s.oauth.exchange(&client, &code, &p.verifier),
        s.oauth.exchange(&client, &code, &p.verifier)
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "exactly one exchange of a code wins");
    assert_eq!(
        error_of(s.oauth.exchange(&client, &code, &p.verifier).await).await,
        (400, "invalid_grant".into())
    );
}

/// A server that also knows the operator's client `web-app` (OAUTH_CLIENTS_FILE), whose
/// redirect URI is `REDIRECT`.
async fn with_trusted_client(tweak: impl FnOnce(&mut mcp_daemon::config::Config)) -> AuthServer {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clients.json");
    std::fs::write(
        &file,
        json!({"clients": [{"client_id": "web-app", "client_secret": "web-app-secret-0123456789",
            "redirect_uris": [REDIRECT]}]})
        .to_string(),
    )
    .unwrap();
    let s = AuthServer::start_with("admin", |c| {
        c.oauth_clients_file = Some(file.clone());
        tweak(c);
    })
    .await;
    drop(dir); // read at start-up
    s
}

#[tokio::test]
async fn plain_or_missing_pkce_is_refused_and_redirected_only_to_a_trusted_client() {
    let s = with_trusted_client(|_| {}).await;
    let registered = s.oauth.register(REDIRECT).await;
    let p = pkce();
    for extra in [
        vec![
            ("code_challenge_method", "plain"),
            ("code_challenge", p.verifier.as_str()),
        ],
        vec![("code_challenge_method", "")],
        vec![("code_challenge", "")],
    ] {
        // The operator's client: RFC 6749 §4.1.2.1, back to its redirect URI.
        let r = s.oauth.authorize("web-app", &p, &extra).await;
        assert_eq!(r.status(), 303, "{extra:?}");
        let pairs = query_of(r.headers()["location"].to_str().unwrap());
        assert_eq!(param(&pairs, "error"), Some("invalid_request"), "{extra:?}");
        assert_eq!(param(&pairs, "state"), Some("st-123"));
        assert_eq!(param(&pairs, "iss"), Some(s.base.as_str()));
        assert_eq!(param(&pairs, "code"), None);
        // A client anyone could have registered: a page, never a redirect (RFC 9700 §4.11).
        let r = s.oauth.authorize(&registered, &p, &extra).await;
        assert_eq!(r.status(), 400, "{extra:?}");
        assert!(r.headers().get("location").is_none(), "{extra:?}");
        assert!(r.text().await.unwrap().contains("code_challenge"));
    }
}

#[tokio::test]
async fn a_registered_clients_errors_are_shown_not_redirected_until_a_person_saw_the_consent_page()
{
    let s = AuthServer::start_with("admin", |c| c.oauth_test_user = None).await;
    let evil = "https://evil.example/landing";
    let r = s
        .oauth
        .http
        .post(s.url("/register"))
        .json(&json!({"redirect_uris": [evil], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let client = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = pkce();
    for extra in [
        vec![("redirect_uri", evil), ("response_type", "token")],
        vec![("redirect_uri", evil), ("code_challenge_method", "plain")],
        vec![
            ("redirect_uri", evil),
            ("resource", "https://api.other.example/mcp"),
        ],
    ] {
        let r = s.oauth.authorize(&client, &p, &extra).await;
        assert_eq!(r.status(), 400, "{extra:?}");
        assert!(
            r.headers().get("location").is_none(),
            "no open redirect: {extra:?}"
        );
    }
    // A person who saw the consent page (which names the redirect URI) and said no is sent back.
    let page = s
        .oauth
        .authorize(&client, &p, &[("redirect_uri", evil)])
        .await;
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let html = page.text().await.unwrap();
    let (request, csrf) = (hidden_field(&html, "request"), hidden_field(&html, "csrf"));
    let consent = s
        .oauth
        .http
        .post(s.url("/authorize/login"))
        .header("cookie", &cookie)
        .form(&[
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200);
    let html = consent.text().await.unwrap();
    assert!(
        html.contains("evil.example"),
        "the consent page names the target"
    );
    let grant = hidden_field(&html, "grant");
    let deny = s
        .oauth
        .http
        .post(s.url("/authorize/consent"))
        .header("cookie", &cookie)
        .form(&[
            ("grant", grant.as_str()),
            ("csrf", csrf.as_str()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(deny.status(), 303);
    let location = deny.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(evil), "{location}");
    assert_eq!(param(&query_of(location), "error"), Some("access_denied"));
}

#[tokio::test]
async fn registration_is_rate_limited_per_source() {
    let s = AuthServer::start_with("admin", |c| {
        c.auth_limits.oauth_registrations_per_minute = 3;
    })
    .await;
    for _ in 0..3 {
        s.oauth.register(REDIRECT).await;
    }
    let r = s
        .oauth
        .http
        .post(s.url("/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("too many client registrations"),
        "{body}"
    );
    assert_eq!(s.engine.backends.auth.client_count().await.unwrap(), 3);
    s.clock.advance_ms(retry * 1000);
    s.oauth.register(REDIRECT).await;
}

#[tokio::test]
async fn registration_stops_at_the_client_cap_and_unused_clients_expire() {
    let s = AuthServer::start_with("admin", |c| {
        c.auth_limits.oauth_max_clients = 2;
        c.auth_limits.oauth_client_idle_days = 30;
    })
    .await;
    let used = s.oauth.register(REDIRECT).await;
    s.oauth.register(REDIRECT).await;
    let r = s
        .oauth
        .http
        .post(s.url("/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("limit of 2 registered clients"),
        "{body}"
    );
    // A use at /authorize keeps a client alive; the unused one expires and frees its place.
    const DAY_MS: u64 = 86_400_000;
    s.clock.advance_ms(20 * DAY_MS);
    s.oauth.code(&used, &pkce(), &[]).await;
    s.clock.advance_ms(11 * DAY_MS);
    s.oauth.code(&used, &pkce(), &[]).await;
    assert_eq!(s.engine.backends.auth.client_count().await.unwrap(), 1);
    s.oauth.register(REDIRECT).await;
    s.clock.advance_ms(31 * DAY_MS);
    let gone = s.oauth.authorize(&used, &pkce(), &[]).await;
    assert_eq!(gone.status(), 400, "an unused client expires");
    assert!(gone.text().await.unwrap().contains("unknown client"));
}

#[tokio::test]
async fn dangerous_redirect_schemes_are_refused_and_real_app_schemes_are_registered() {
    let s = AuthServer::start("admin").await;
    let register = |uri: &'static str| {
        let http = s.oauth.http.clone();
        let url = s.url("/register");
        async move {
            http.post(url)
                .json(&json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"}))
                .send()
                .await
                .unwrap()
        }
    };
    for bad in [
        "ms-msdt:/id PCWDiagnostic /skip force",
        "search-ms:query=x&crumb=location:\\\\203.0.113.9\\share",
        "myapp://callback",
        "file:///etc/passwd",
    ] {
        let r = register(bad).await;
        assert_eq!(
            error_of(r).await,
            (400, "invalid_redirect_uri".into()),
            "{bad}"
        );
    }
    for good in [
        "cursor://anysphere.cursor-mcp/oauth/callback",
        "vscode://saoudrizwan.claude-dev",
        "com.example.app:/oauth2redirect",
        "https://claude.ai/api/mcp/auth_callback",
    ] {
        assert_eq!(register(good).await.status(), 201, "{good}");
    }
}

#[tokio::test]
async fn a_changed_redirect_uri_at_the_token_endpoint_is_refused() {
    let s = AuthServer::start("admin").await;
    let client = s.oauth.register(REDIRECT).await;
    let p = pkce();
    // Loopback redirects match on any port at /authorize (RFC 8252 §7.3)...
    let other_port = "http://127.0.0.1:6111/callback";
    let code = s
        .oauth
        .code(&client, &p, &[("redirect_uri", other_port)])
        .await;
    // ...but /token must present the one the code was issued for.
    let r = s
        .oauth
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &p.verifier),
            ("client_id", &client),
        ])
        .await;
    assert_eq!(error_of(r).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn an_unregistered_redirect_is_never_redirected_to() {
    let s = AuthServer::start("admin").await;
    let client = s.oauth.register(REDIRECT).await;
    let p = pkce();
    for evil in [
        "https://evil.example/callback",
        "http://127.0.0.1:5999/other",
        "http://localhost:5999/callback",
    ] {
        let r = s
            .oauth
            .authorize(&client, &p, &[("redirect_uri", evil)])
            .await;
        assert_eq!(r.status(), 400, "{evil}");
        assert!(r.headers().get("location").is_none());
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("redirect_uri is not registered")
        );
    }
    let unknown = s.oauth.authorize("mcp-nobody", &p, &[]).await;
    assert_eq!(unknown.status(), 400);
    assert!(unknown.headers().get("location").is_none());
    let reg = s.oauth.http.post(s.url("/register"))
        .json(&json!({"redirect_uris": ["http://evil.example/cb"], "token_endpoint_auth_method": "none"}))
        .send().await.unwrap();
    assert_eq!(error_of(reg).await, (400, "invalid_redirect_uri".into()));
    let js = s
        .oauth
        .http
        .post(s.url("/register"))
        .json(&json!({"redirect_uris": ["javascript:alert(1)"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(js).await.1, "invalid_redirect_uri");
}

#[tokio::test]
async fn a_token_for_another_resource_or_server_is_refused() {
    let s = AuthServer::start("admin").await;
    let team_b = format!("{}/team-b/mcp", s.base);
    let (_, t) = s.oauth.sign_in(&[("resource", &team_b)]).await;
    let (status, challenge) = ping_status(&s.with_token(access(&t))).await;
    assert_eq!(status, 401, "a token for /team-b/mcp does not open /mcp");
    assert!(challenge.unwrap().contains("another resource"));
    let r = s.with_token(access(&t)).http.post(s.url("/team-b/mcp"))
        .header("content-type", "application/json").header("accept", "application/json, text/event-stream")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": V,
            "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}}).to_string())
        .send().await.unwrap();
    assert_eq!(r.status(), 200, "it opens the resource it was issued for");
    // The code is bound to its resource: /token cannot swap it for another.
    let client = s.oauth.register(REDIRECT).await;
    let p = pkce();
    let code = s.oauth.code(&client, &p, &[("resource", &team_b)]).await;
    let swapped = s.oauth.exchange(&client, &code, &p.verifier).await;
    assert_eq!(error_of(swapped).await, (400, "invalid_target".into()));
    // A resource this server does not serve is refused at /authorize (RFC 8707 invalid_target).
    let foreign = s
        .oauth
        .authorize(
            &client,
            &pkce(),
            &[("resource", "https://api.other.example/mcp")],
        )
        .await;
    assert_eq!(
        foreign.status(),
        400,
        "a registered client's error is shown, not redirected"
    );
    assert!(foreign.headers().get("location").is_none());
    assert!(
        foreign
            .text()
            .await
            .unwrap()
            .contains("is not served by this server")
    );
    // A token signed by another server (another key) is refused.
    let other = AuthServer::start("admin").await;
    let (_, ot) = other.oauth.sign_in(&[]).await;
    assert_eq!(ping_status(&s.with_token(access(&ot))).await.0, 401);
}

#[tokio::test]
async fn alg_none_and_forged_tokens_are_refused() {
    let s = AuthServer::start("admin").await;
    let (_, t) = s.oauth.sign_in(&[]).await;
    let parts: Vec<&str> = access(&t).split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none"}),
        json!({"alg": "HS512", "kid": "x"}),
    ] {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let forged = format!("{h}.{}.", parts[1]);
        assert_eq!(ping_status(&s.with_token(&forged)).await.0, 401, "{header}");
    }
    claims["sub"] = json!("bob");
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let swapped = format!("{}.{body}.{}", parts[0], parts[2]);
    assert_eq!(
        ping_status(&s.with_token(&swapped)).await.0,
        401,
        "changed claims break the signature"
    );
    assert_eq!(ping_status(&s.with_token("not-a-jwt")).await.0, 401);
    // Tokens only in the header: a query parameter is refused outright.
    let q = s
        .http
        .post(s.url(&format!("/mcp?access_token={}", access(&t))))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(q.status(), 400);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let s = AuthServer::start("admin").await;
    let (client, t) = s.oauth.sign_in(&[]).await;
    assert_eq!(ping_status(&s.with_token(access(&t))).await.0, 200);
    s.clock.advance_ms(3_600_000);
    let (status, challenge) = ping_status(&s.with_token(access(&t))).await;
    assert_eq!(status, 401);
    assert!(
        challenge
            .unwrap()
            .contains("error=\"invalid_token\", error_description=\"the token has expired\"")
    );
    // The refresh token still gets a fresh one.
    let r: Value = s
        .oauth
        .refresh(&client, t["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ping_status(&s.with_token(access(&r))).await.0, 200);
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_others_are_not() {
    let s = AuthServer::start("admin").await;
    let (client, t) = s.oauth.sign_in(&[]).await;
    let (_, other) = s.oauth.sign_in(&[]).await;
    // Revoking needs the owning client: another client's attempt changes nothing.
    let stranger = s.oauth.register(REDIRECT).await;
    let r = s.oauth.revoke(&stranger, access(&t)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(ping_status(&s.with_token(access(&t))).await.0, 200);
    let r = s.oauth.revoke(&client, access(&t)).await;
    assert_eq!(r.status(), 200);
    let (status, challenge) = ping_status(&s.with_token(access(&t))).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("revoked"));
    assert_eq!(
        ping_status(&s.with_token(access(&other))).await.0,
        200,
        "other grants live on"
    );
    // Revoking the refresh token ends the grant: its refresh and its access tokens.
    let fresh: Value = s
        .oauth
        .refresh(&client, t["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ping_status(&s.with_token(access(&fresh))).await.0, 200);
    s.oauth
        .revoke(&client, fresh["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(ping_status(&s.with_token(access(&fresh))).await.0, 401);
    let again = s
        .oauth
        .refresh(&client, fresh["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(error_of(again).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_family() {
    let s = AuthServer::start("admin").await;
    let (client, t) = s.oauth.sign_in(&[]).await;
    let old = t["refresh_token"].as_str().unwrap();
    let next: Value = s.oauth.refresh(&client, old).await.json().await.unwrap();
    s.clock.advance_ms(11_000); // past the grace window for concurrent refreshes
    let reuse = s.oauth.refresh(&client, old).await;
    assert_eq!(error_of(reuse).await, (400, "invalid_grant".into()));
    // The thief's replay ended the family: the legitimate holder's newer tokens are dead too.
    let legit = s
        .oauth
        .refresh(&client, next["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(error_of(legit).await, (400, "invalid_grant".into()));
    assert_eq!(ping_status(&s.with_token(access(&next))).await.0, 401);
    // Another client cannot use someone's refresh token at all.
    let (victim_client, v) = s.oauth.sign_in(&[]).await;
    let thief = s.oauth.register(REDIRECT).await;
    let stolen = s
        .oauth
        .refresh(&thief, v["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(error_of(stolen).await, (400, "invalid_grant".into()));
    assert_eq!(
        s.oauth
            .refresh(&victim_client, v["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn another_users_session_id_is_not_found() {
    let s = AuthServer::start("admin").await;
    let alice = s.with_token(&s.oauth.login("alice", "alice-password").await);
    let bob = s.with_token(&s.oauth.login("bob", "bob-password").await);
    let sid = alice.initialize(V, json!({})).await;
    let stolen = bob
        .post(
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "hello", "arguments": {"name": "x"}}}),
        )
        .await;
    assert_eq!(stolen.status(), 404);
    let get = bob
        .http
        .get(bob.url("/mcp"))
        .header("mcp-session-id", &sid)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
    let del = bob.delete_session(&sid).await;
    assert_eq!(del.status(), 404);
    // Alice's session is untouched.
    let r = alice
        .call_tool(&sid, "add_numbers", json!({"a": 1, "b": 1}))
        .await;
    assert_eq!(r["content"][0]["text"], "2");
    let wrong = s
        .oauth
        .http
        .post(s.url("/auth/login"))
        .json(&json!({"username": "alice", "password": "bob-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn a_metadata_document_url_at_a_private_address_is_not_fetched() {
    let s = AuthServer::start("admin").await;
    let p = pkce();
    for client in [
        "https://127.0.0.1/client.json",
        "https://localhost:8443/client.json",
        "https://169.254.169.254/latest/meta-data/client.json",
        "https://10.0.0.8/client.json",
        "https://[::1]/client.json",
        "https://[::7f00:1]/client.json",
        "https://[2002:7f00:1::1]/client.json",
        "https://[64:ff9b:1::a9fe:a9fe]/client.json",
        "https://[64:ff9b::a9fe:a9fe]/client.json",
        "http://93.184.216.34/client.json",
    ] {
        let r = s.oauth.authorize(client, &p, &[]).await;
        assert_eq!(r.status(), 400, "{client}");
        assert!(r.headers().get("location").is_none());
        let page = r.text().await.unwrap();
        assert!(page.contains("could not be used"), "{client}: {page}");
        assert!(
            !page.contains("resolves"),
            "the reason stays in the log: {page}"
        );
        if client.contains("localhost") {
            assert!(!page.contains("127.0.0.1"), "no DNS oracle: {page}");
        }
    }
}

#[tokio::test]
async fn an_oversized_or_malformed_registration_is_refused_and_stores_nothing() {
    // The state is Redis here, so what a registration stores can be seen: a refused one
    // writes no key at all.
    let redis = crate::nodes::RedisServer::start();
    let s = AuthServer::start_with("admin", |c| {
        c.redis_url = Some(redis.url());
        c.request_state_key = Some(crate::nodes::STATE_KEY.into());
    })
    .await;
    let keys = || redis.keys("*");
    assert_eq!(keys(), Vec::<String>::new());
    let huge = json!({"redirect_uris": [REDIRECT], "client_name": "x".repeat(20_000)});
    let r = s
        .oauth
        .http
        .post(s.url("/register"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_client_metadata"
    );
    let many: Vec<String> = (0..11).map(|i| format!("http://127.0.0.1/{i}")).collect();
    let r = s
        .oauth
        .http
        .post(s.url("/register"))
        .json(&json!({"redirect_uris": many}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "invalid_redirect_uri".into()));
    let r = s
        .oauth
        .http
        .post(s.url("/register"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "invalid_client_metadata".into()));
    let r = s
        .oauth
        .http
        .post(s.url("/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "invalid_client_metadata".into()));
    assert_eq!(
        keys(),
        Vec::<String>::new(),
        "a refused registration stored something"
    );
    assert_eq!(s.engine.backends.auth.client_count().await.unwrap(), 0);
    // The checks see client records: an accepted registration is exactly one client.
    let id = s.oauth.register(REDIRECT).await;
    assert_eq!(s.engine.backends.auth.client_count().await.unwrap(), 1);
    assert!(keys().iter().any(|k| k.ends_with(&id)), "{:?}", keys());
}

#[tokio::test]
async fn no_prefix_or_spelling_of_an_mcp_endpoint_skips_the_token_check() {
    let s = AuthServer::start("admin").await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "add_numbers", "arguments": {"a": 1, "b": 2}}})
    .to_string();
    let prefixes = [
        "",
        "/.well-known",
        "/authorize",
        "/token",
        "/register",
        "/revoke",
        "/auth",
        "/health",
        "/mcp",
        "/team-a",
        "/MCP",
        "/%2e%2e",
    ];
    for prefix in prefixes {
        for endpoint in ["mcp", "mcp/", "sse", "messages", "messages/", "http", "MCP"] {
            let path = format!("{prefix}/{endpoint}");
            for method in [reqwest::Method::GET, reqwest::Method::POST] {
                let r = s
                    .http
                    .request(method.clone(), s.url(&path))
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(call.clone())
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                assert!(
                    [401, 404, 405].contains(&status),
                    "{method} {path} answered {status} without a token: {}",
                    r.text().await.unwrap_or_default()
                );
            }
        }
    }
}

#[tokio::test]
async fn a_refused_refresh_does_not_use_up_the_token_and_a_removed_user_cannot_refresh() {
    let s = AuthServer::start("alice").await;
    let (client, t) = s.oauth.sign_in(&[]).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let wider = s
        .oauth
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &client),
            ("scope", "mcp notes:write"),
        ])
        .await;
    assert_eq!(error_of(wider).await, (400, "invalid_scope".into()));
    let other = s
        .oauth
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &client),
            ("resource", &format!("{}/team-z/mcp", s.base)),
        ])
        .await;
    assert_eq!(error_of(other).await, (400, "invalid_target".into()));
    s.clock.advance_ms(11_000); // past the grace window: a rotation would now count as reuse
    let ok = s.oauth.refresh(&client, rt).await;
    assert_eq!(
        ok.status(),
        200,
        "the refused requests did not rotate the grant"
    );
    let next: Value = ok.json().await.unwrap();
    // alice is removed: her grant ends at the next refresh.
    let users = mcp_daemon::auth::users::UserDb::open(&s.data_dir().join("users.json"), 4).unwrap();
    users.remove("alice").unwrap();
    let gone = s
        .oauth
        .refresh(&client, next["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(error_of(gone).await, (400, "invalid_grant".into()));
    assert_eq!(
        ping_status(&s.with_token(access(&next))).await.0,
        401,
        "her grant was revoked"
    );
}

/// `POST /auth/login` from `http`: the status and `Retry-After`, if any.
async fn login_from(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    pw: &str,
) -> (u16, Option<u64>) {
    let r = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .await
        .unwrap();
    let wait = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    (r.status().as_u16(), wait)
}

#[tokio::test]
async fn a_flood_of_bogus_sign_ins_is_throttled_and_a_real_user_elsewhere_still_gets_in_promptly() {
    let s = AuthServer::start("admin").await;
    // A production-cost hash (12), as the probe measured: bcrypt is what the flood competes for.
    UserDb::open(&s.data_dir().join("users.json"), 12)
        .unwrap()
        .add("dave", "dave-password", &[])
        .unwrap();
    let (attacker, user) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let started = Instant::now();
    assert_eq!(
        login_from(&user, &s.base, "dave", "dave-password").await,
        (200, None)
    );
    let alone = started.elapsed();
    let flood: Vec<_> = (0..200)
        .map(|i| {
            let (http, base) = (attacker.clone(), s.base.clone());
            tokio::spawn(async move {
                login_from(&http, &base, &format!("nobody{i}"), "wrong-password").await
            })
        })
        .collect();
    let started = Instant::now();
    assert_eq!(
        login_from(&user, &s.base, "dave", "dave-password").await,
        (200, None),
        "the real user from another source gets in during the flood"
    );
    let during = started.elapsed();
    let mut outcomes = Vec::new();
    for f in flood {
        outcomes.push(f.await.unwrap());
    }
    let checked = outcomes.iter().filter(|o| o.0 == 401).count();
    let throttled = outcomes
        .iter()
        .filter(|o| o.0 == 429 && o.1.is_some_and(|w| w >= 1))
        .count();
    assert_eq!(checked + throttled, 200, "{outcomes:?}");
    assert!(
        checked <= 5,
        "at most the free failures were checked: {checked}"
    );
    // Unthrottled, 200 cost-12 hashes share the cores with dave's (about 100 times as long);
    // throttled, at most 5 run before it. The bound is loose against a loaded machine.
    assert!(
        during < alone * 25 + Duration::from_secs(1),
        "alone {alone:?}, during the flood {during:?}"
    );
    let (status, wait) = login_from(&attacker, &s.base, "someone", "x").await;
    assert_eq!(
        status, 429,
        "the next one from that source is refused at once"
    );
    assert!(wait.is_some_and(|w| w >= 1));
}

#[tokio::test]
async fn failures_on_one_account_back_off_from_every_source_until_the_wait_or_a_success() {
    let s = AuthServer::start("admin").await;
    let (a, b) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    for _ in 0..5 {
        assert_eq!(login_from(&a, &s.base, "alice", "guess").await.0, 401);
    }
    let (status, wait) = login_from(&a, &s.base, "alice", "guess").await;
    assert_eq!(
        (status, wait),
        (429, Some(1)),
        "backoff starts at one second"
    );
    let r = a
        .post(format!("{}/auth/login", s.base))
        .json(&json!({"username": "alice", "password": "guess"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (429, "temporarily_unavailable".into()),
        "an RFC 6749 error body"
    );
    // The account waits from any source, even with the right password (bounded, see below).
    assert_eq!(
        login_from(&b, &s.base, "alice", "alice-password").await,
        (429, Some(1))
    );
    assert_eq!(
        login_from(&b, &s.base, "bob", "bob-password").await.0,
        200,
        "other accounts from other sources are not held back"
    );
    s.clock.advance_ms(1_000);
    assert_eq!(
        login_from(&b, &s.base, "alice", "alice-password").await.0,
        200
    );
    assert_eq!(
        login_from(&b, &s.base, "alice", "guess").await.0,
        401,
        "the success cleared the account's count"
    );
    // The sign-in page says so in words, with the same status and Retry-After.
    let page = AuthServer::start_with("admin", |c| c.oauth_test_user = None).await;
    let o = OAuth {
        http: client_from("127.0.0.4"),
        ..OAuth::new(&page.base)
    };
    let client = o.register(REDIRECT).await;
    let first = o.authorize(&client, &pkce(), &[]).await;
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = first.text().await.unwrap();
    let field = |n: &str| crate::auth::hidden_field(&html, n);
    let post = || {
        o.http
            .post(format!("{}/authorize/login", o.base))
            .header("cookie", &cookie)
            .form(&[
                ("request", field("request")),
                ("csrf", field("csrf")),
                ("username", "carol".into()),
                ("password", "guess".into()),
            ])
            .send()
    };
    for _ in 0..5 {
        assert_eq!(post().await.unwrap().status(), 401);
    }
    let refused = post().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("too many failed sign-ins; wait 1 seconds"),
        "{text}"
    );
}

#[tokio::test]
async fn token_requests_are_rate_limited_per_source_and_per_client() {
    let s = AuthServer::start_with("admin", |c| {
        c.auth_limits.token_rate_per_source = 60; // bursts of 10
        c.auth_limits.token_rate_per_client = 30; // bursts of 5
    })
    .await;
    let refresh = |http: reqwest::Client, client: String| {
        let base = s.base.clone();
        async move {
            http.post(format!("{base}/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "rt1.x.0.y.z"),
                    ("client_id", &client),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let a = client_from("127.0.0.2");
    for _ in 0..10 {
        let r = refresh(a.clone(), "no-such-client".into()).await;
        assert_eq!(r.status(), 401, "unknown client, not yet throttled");
    }
    let r = refresh(a.clone(), "no-such-client".into()).await;
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(error_of(r).await, (429, "temporarily_unavailable".into()));
    let rev = a
        .post(format!("{}/revoke", s.base))
        .form(&[("token", "x"), ("client_id", "no-such-client")])
        .send()
        .await
        .unwrap();
    assert_eq!(rev.status(), 429, "/revoke shares the source's budget");
    let other = refresh(client_from("127.0.0.3"), "no-such-client".into()).await;
    assert_eq!(other.status(), 401, "another source has its own");
    // Per client: five sources use up one client's burst; a sixth is refused for it only.
    let (x, y) = (
        s.oauth.register(REDIRECT).await,
        s.oauth.register(REDIRECT).await,
    );
    for i in 1..=5 {
        let r = refresh(client_from(&format!("127.0.1.{i}")), x.clone()).await;
        assert_eq!(error_of(r).await, (400, "invalid_grant".into()));
    }
    let sixth = client_from("127.0.1.6");
    let r = refresh(sixth.clone(), x.clone()).await;
    assert_eq!(error_of(r).await, (429, "temporarily_unavailable".into()));
    let r = refresh(sixth, y).await;
    assert_eq!(error_of(r).await, (400, "invalid_grant".into()));
    s.clock.advance_ms(2_000);
    let r = refresh(client_from("127.0.1.7"), x).await;
    assert_eq!(
        error_of(r).await,
        (400, "invalid_grant".into()),
        "the bucket refills"
    );
}

#[tokio::test]
async fn an_approved_or_denied_consent_form_cannot_be_posted_again() {
    let s = AuthServer::start_with("admin", |c| c.oauth_test_user = None).await;
    let client = s.oauth.register(REDIRECT).await;
    let p = pkce();
    let form = consent_form(&s.oauth, &client, &p, "alice", "alice-password").await;
    let first = form.post(&s.oauth, "approve").await;
    assert_eq!(first.status(), 303);
    let code = param(
        &query_of(first.headers()["location"].to_str().unwrap()),
        "code",
    )
    .unwrap()
    .to_string();
    let replay = form.post(&s.oauth, "approve").await;
    assert_eq!(replay.status(), 400);
    assert!(replay.headers().get("location").is_none(), "no second code");
    assert!(replay.text().await.unwrap().contains("already used"));
    assert_eq!(
        s.oauth.exchange(&client, &code, &p.verifier).await.status(),
        200,
        "the first code still works"
    );
    let denied = consent_form(&s.oauth, &client, &pkce(), "alice", "alice-password").await;
    let no = denied.post(&s.oauth, "deny").await;
    assert_eq!(no.status(), 303);
    let no = query_of(no.headers()["location"].to_str().unwrap());
    assert_eq!(param(&no, "error"), Some("access_denied"));
    let turned = denied.post(&s.oauth, "approve").await;
    assert_eq!(
        turned.status(),
        400,
        "a denial cannot be turned into an approval"
    );
    assert!(turned.headers().get("location").is_none());
}

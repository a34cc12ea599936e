//! Wiring: builds the engine and its backends from `Config`, the axum `Router` (so tests can
//! drive it without a socket), and `serve`, which takes its listener and shutdown signal as
//! arguments so tests start servers on port 0.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;

use crate::auth::oauth::AuthServer;
use crate::blob::{self, BlobSettings, S3Settings};
use crate::catalog::{CatalogError, FileSource};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::config::SandboxMode;
use crate::engine::{Backends, Engine, EngineError, EngineSettings, SessionLimits};
use crate::ops::origin::OriginPolicy;
use crate::protocol::{Endpoint, PathKind};
use crate::runtime::sandbox::{Limits, SandboxPolicy};
use crate::runtime::{
    BuiltinRuntime, BundleCache, BundleSettings, CommandRuntime, CommandSettings, PythonRuntime,
    PythonSettings, Runtimes,
};
use crate::state::StateError;
use crate::state::memory::{
    EventLogLimits, MemoryAuthStore, MemoryBus, MemoryEventLog, MemorySessionStore,
};
use crate::state::redis::RedisSettings;
use crate::transport::http::{PART_ID_HEADER, header_str};
use crate::transport::http_error::HttpError;
use crate::transport::server::{self, ServerLimits};
use crate::transport::{HttpSettings, HttpState, legacy_sse, plain_http, streamable_http};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot use Redis")]
    State(#[from] StateError),
    #[error("authentication: {0}")]
    Auth(String),
    #[error("functions: {0}")]
    Functions(String),
}

/// The ways this server runs functions, built once and shared by every catalog it loads:
/// builtin modules, executables, and Python worker pools whose code comes from bundles in the
/// blob store (S3 with `FUNCT_BUCKET_NAME`, else a local folder) or installed packages.
pub async fn build_runtimes(config: &Config) -> Result<Runtimes, BuildError> {
    let f = &config.functions;
    let blob = blob::open(&BlobSettings {
        bucket: f.funct_bucket_name.clone(),
        folder: f
            .funct_bundle_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("bundles")),
        s3: S3Settings {
            region: config.region_name.clone().or(config.aws_region.clone()),
            endpoint: f.s3_endpoint().map(str::to_string),
            credentials: None,
        },
    })
    .await
    .map_err(|e| BuildError::Functions(format!("bundle store: {e}")))?;
    let bundles = BundleCache::new(
        blob,
        BundleSettings {
            zip_path: f.funct_zip_path.clone(),
            extract_path: f.funct_extract_path.clone(),
            check_interval: Duration::from_secs(f.bundle_check_secs),
            install_requirements: f.bundle_pip_install,
            python: f.python_bin.clone().unwrap_or_else(|| "python3".into()),
            ..BundleSettings::default()
        },
    );
    let sandbox = match f.function_sandbox {
        SandboxMode::Require => SandboxPolicy::Require,
        SandboxMode::BestEffort => SandboxPolicy::BestEffort,
        SandboxMode::Off => SandboxPolicy::Off,
    };
    let limits = Limits {
        memory_bytes: Some(f.function_memory_mb << 20),
        cpu_secs: Some(f.function_cpu_secs),
        open_files: Some(f.function_open_files),
        ..Limits::default()
    };
    let scratch = f
        .worker_scratch_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("mcp-daemon-workers"));
    let timeout = Duration::from_secs(f.function_timeout_secs);
    let python = PythonRuntime::new(
        PythonSettings {
            interpreter: f.python_bin.clone(),
            default_timeout: timeout,
            limits: limits.clone(),
            max_calls_per_pool: f.function_calls_per_pool,
            max_calls_total: f.function_calls_total,
            max_queue_per_pool: f.function_queue,
            idle_lifetime: Duration::from_secs(f.worker_idle_secs),
            scratch_root: scratch.join("python"),
            sandbox,
            ..PythonSettings::default()
        },
        Arc::new(bundles),
    );
    let command = CommandRuntime::new(CommandSettings {
        default_timeout: timeout,
        limits,
        scratch_root: scratch.join("command"),
        sandbox,
        ..CommandSettings::default()
    });
    Ok(Runtimes::new(vec![
        Arc::new(BuiltinRuntime::default()),
        Arc::new(command),
        Arc::new(python),
    ]))
}

/// Builds the engine on Redis when `REDIS_URL` is set, else on the embedded (in-memory)
/// backends, and starts its routing between nodes.
pub async fn build_engine(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Arc<Engine>, BuildError> {
    let runtimes = build_runtimes(config).await?;
    let source = FileSource::open(config.config_file.clone(), runtimes.clone()).await?;
    let limits = EventLogLimits {
        events_per_stream: config.replay_buffer_events,
        streams_per_session: config.replay_buffer_streams,
        bytes_per_stream: config.state_limits.replay_buffer_bytes,
    };
    let backends = match config.redis_urls() {
        Some(urls) => {
            let settings = RedisSettings {
                urls,
                cluster: config.redis_cluster,
                prefix: config.redis_prefix.clone(),
                timeout: Duration::from_millis(config.redis_timeout_ms),
                session_ttl: config.session_ttl(),
                limits,
                eviction_check: config.redis_eviction_check,
            };
            let redis = crate::state::redis::connect(&settings, clock.clone()).await?;
            tracing::info!(
                cluster = config.redis_cluster,
                prefix = %config.redis_prefix,
                "state is shared through Redis"
            );
            Backends {
                sessions: redis.sessions,
                events: redis.events,
                bus: redis.bus,
                auth: redis.auth,
                clock,
            }
        }
        None => Backends {
            sessions: Arc::new(MemorySessionStore::new(
                config.session_ttl().as_millis() as u64,
                clock.clone(),
            )),
            events: Arc::new(MemoryEventLog::new(limits)),
            bus: Arc::new(MemoryBus::new()),
            auth: Arc::new(MemoryAuthStore::new(clock.clone())),
            clock,
        },
    };
    let settings = EngineSettings {
        server_name: "mcp-daemon".into(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        page_size: config.page_size,
        client_request_timeout: Duration::from_secs(config.client_request_timeout_secs),
        request_state_key: match &config.request_state_key {
            Some(k) => k.as_bytes().to_vec(),
            None => {
                tracing::info!(
                    "REQUEST_STATE_KEY is not set: requestState is sealed with a random per-process key"
                );
                rand::random::<[u8; 32]>().to_vec()
            }
        },
        request_state_ttl: Duration::from_secs(config.request_state_ttl_secs),
        catalog_ttl: Duration::from_secs(config.catalog_cache_ttl_secs),
        limits: SessionLimits {
            max_sessions_per_user: config.state_limits.max_sessions_per_user,
            max_anonymous_sessions: config.state_limits.max_anonymous_sessions,
            max_client_metadata_bytes: config.state_limits.max_client_metadata_bytes,
            max_subscriptions_per_session: config.state_limits.max_subscriptions_per_session,
            max_subscription_uri_bytes: config.state_limits.max_subscription_uri_bytes,
        },
    };
    let engine = Engine::new(Arc::new(source), runtimes, backends, settings)?;
    engine.start_routing().await?;
    Ok(engine)
}

pub fn http_state(config: &Config, engine: Arc<Engine>) -> Result<HttpState, BuildError> {
    let auth = Arc::new(build_auth(config, &engine)?);
    let mut hosts = config.allowed_hosts.clone();
    if !config.host.is_unspecified() && !config.host.is_loopback() {
        hosts.push(config.host.to_string());
    }
    let mut origins = config.allowed_origins.clone();
    origins.extend(config.canonical_public_url());
    Ok(HttpState {
        engine,
        settings: Arc::new(HttpSettings {
            max_body_bytes: config.max_body_bytes,
            max_json_depth: config.max_json_depth,
            sse_keepalive: Duration::from_secs(config.sse_keepalive_secs),
            sse_retry_ms: config.sse_retry_ms,
            origin_policy: OriginPolicy::new(&hosts, &origins),
            server: ServerLimits::from_config(&config.http_limits),
        }),
        auth,
    })
}

/// The authorization server and bearer guard for `config`, on the engine's state backends.
pub fn build_auth(config: &Config, engine: &Engine) -> Result<AuthServer, BuildError> {
    crate::auth::setup::build(
        config,
        engine.backends.auth.clone(),
        engine.backends.clock.clone(),
    )
    .map_err(BuildError::Auth)
}

/// Everything a config produces, ready to serve.
pub async fn build(config: &Config) -> Result<HttpState, BuildError> {
    let engine = build_engine(config, Arc::new(SystemClock)).await?;
    http_state(config, engine)
}

pub fn router(state: HttpState) -> Router {
    let mcp = || {
        get(streamable_http::mcp_get)
            .post(streamable_http::mcp_post)
            .delete(streamable_http::mcp_delete)
    };
    let mut routes = Router::new();
    for path in Endpoint::Mcp.routes() {
        routes = routes.route(path, mcp());
    }
    for path in Endpoint::Sse.routes() {
        routes = routes.route(path, get(legacy_sse::sse_get));
    }
    for path in Endpoint::Messages.routes() {
        routes = routes.route(path, post(legacy_sse::messages_post));
    }
    for path in Endpoint::Http.routes() {
        routes = routes.route(path, post(plain_http::http_post));
    }
    routes
        .route("/health", get(health))
        .merge(crate::admin::cache::routes())
        .merge(crate::auth::http::routes())
        // Every extractor-read body (the OAuth and sign-in forms) gets MAX_BODY_BYTES instead of
        // axum's 2 MiB; the MCP transports read theirs with the same limit, and registration
        // keeps its own smaller one.
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::http::guard::authenticate,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Host/Origin validation, endpoint-id validation and CORS for every request.
async fn guard(State(state): State<HttpState>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().host());
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Err(why) = state.settings.origin_policy.check(host, origin.as_deref()) {
        tracing::warn!(reason = %why, "request refused");
        return HttpError::forbidden(why).into_response();
    }
    if let Some(name) = duplicated_mcp_header(headers) {
        return HttpError::bad_request(format!(
            "the {name} header appears more than once; send it once"
        ))
        .into_response();
    }
    // One parse of the path decides: served, refused (404 / 400 with the reason) or public.
    // Endpoints get their partition here, before anything else touches the request.
    let kind = PathKind::of(req.uri().path());
    if kind == PathKind::Impostor {
        return StatusCode::NOT_FOUND.into_response();
    }
    let partition = kind.partition(header_str(headers, PART_ID_HEADER));
    if req.method() == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let asked = headers
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok());
        cors(resp.headers_mut(), origin.as_deref(), asked);
        return resp;
    }
    match partition {
        Some(Err(e)) => {
            let mut resp = HttpError::bad_request(e.to_string()).into_response();
            cors(resp.headers_mut(), origin.as_deref(), None);
            return resp;
        }
        Some(Ok(p)) => {
            req.extensions_mut().insert(p);
        }
        None => {}
    }
    let mut resp = next.run(req).await;
    cors(resp.headers_mut(), origin.as_deref(), None);
    resp
}

/// The first `Mcp-*` (or `Last-Event-ID`, `Part-ID`) header sent more than once. Handlers read the first
/// value and a proxy may read the last: two readers must not disagree on a session or method.
fn duplicated_mcp_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("mcp-") || *k == "last-event-id" || *k == PART_ID_HEADER)
        .find(|k| headers.get_all(*k).iter().nth(1).is_some())
}

/// Request headers a browser client may send: the MCP and auth headers, plus any
/// `Mcp-Param-*` (whose names depend on the tool, so they cannot be listed in advance).
const ALLOWED_HEADERS: [&str; 10] = [
    "content-type",
    "accept",
    "authorization",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "mcp-method",
    "mcp-name",
    "cache-control",
    "part-id",
];

fn allowed_header(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    ALLOWED_HEADERS.contains(&n.as_str()) || n.starts_with("mcp-param-")
}

/// CORS for allowed browser origins: the MCP headers must be allowed in and
/// `Mcp-Session-Id` exposed, or browser clients lose the session. A preflight's asked-for
/// headers are echoed when every one of them is allowed (that is how `Mcp-Param-*` passes).
fn cors(h: &mut HeaderMap, origin: Option<&str>, asked: Option<&str>) {
    let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    let echoed = asked
        .filter(|a| a.split(',').all(allowed_header))
        .and_then(|a| HeaderValue::from_str(a).ok());
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        echoed.unwrap_or(HeaderValue::from_static(
            "Content-Type, Accept, Authorization, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name, Part-ID",
        )),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Mcp-Session-Id, WWW-Authenticate"),
    );
}

/// Liveness and readiness: 503 when the session store cannot be reached, so a load balancer
/// stops sending traffic a node could only refuse. Public, so it says nothing else; with the
/// admin static token or an admin's bearer token it adds the version and the footprint.
async fn health(State(state): State<HttpState>, headers: HeaderMap) -> Result<Response, HttpError> {
    state.engine.backends.sessions.ping().await?;
    if !crate::auth::http::guard::is_admin_bearer(&state, &headers).await {
        return Ok(Json(json!({"status": "ok"})).into_response());
    }
    let footprint = state.engine.footprint().await?;
    Ok(
        Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "footprint": footprint}))
            .into_response(),
    )
}

/// Sweeps expired sessions every `interval` until the process ends.
pub fn spawn_reaper(engine: Arc<Engine>, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            match engine.reap_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "expired sessions removed"),
                Err(e) => tracing::warn!(error = %e, "session sweep failed"),
            }
        }
    })
}

/// Serves HTTP on `listener` until `shutdown` resolves, with the connection limits and
/// deadlines of `state`'s settings (see `transport::server`).
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.settings.server.clone();
    server::serve(listener, router(state), limits, shutdown).await
}

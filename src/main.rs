//! The `mcp-daemon` binary: parse flags, set up logging, build the server, serve.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use mcp_daemon::app;
use mcp_daemon::auth::users::UserDb;
use mcp_daemon::auth::{AuthProvider, Principal, scope};
use mcp_daemon::catalog::Catalog;
use mcp_daemon::clock::SystemClock;
use mcp_daemon::config::{Command, Config, TransportMode, UserCommand};
use mcp_daemon::ops::telemetry;
use mcp_daemon::transport::stdio;

/// mimalloc instead of glibc malloc: a request allocates and frees many small objects, and
/// under load glibc's malloc/free/consolidate took about 15 % of the daemon's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The worker launcher (`mcp-daemon sandbox-exec ...`) confines itself and execs a worker;
    // it must run before the async runtime starts threads, and parses no daemon config.
    if let Some(code) = mcp_daemon::runtime::sandbox::launch_if_asked() {
        return code;
    }
    daemon()
}

#[tokio::main]
async fn daemon() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One readable line (with its causes), not a backtrace: this is what operators see.
            eprintln!("mcp-daemon: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format, &config.log_level);
    match &config.command {
        Some(Command::CheckConfig) => return check_config(&config).await,
        Some(Command::User { action }) => return users_cli(&config, action),
        None => {}
    }
    config.validate()?;
    let engine = app::build_engine(&config, Arc::new(SystemClock))
        .await
        .context("cannot start")?;
    app::spawn_reaper(
        engine.clone(),
        std::time::Duration::from_secs(config.session_reap_interval_secs),
    );
    spawn_reload_on_sighup(engine.clone());

    if config.transport == TransportMode::Stdio {
        let principal = stdio_principal(&config, &engine).await?;
        tracing::info!(subject = %principal.subject, "serving MCP on stdio");
        let served = stdio::serve(
            engine.clone(),
            principal,
            tokio::io::stdin(),
            tokio::io::stdout(),
            config.max_body_bytes,
            config.max_json_depth,
        )
        .await;
        engine.shutdown_functions().await;
        return served;
    }
    let functions = engine.clone();
    let state = app::http_state(&config, engine).context("cannot start")?;
    let addr = std::net::SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    if config.any_host_sets_the_issuer() {
        tracing::warn!(
            "ALLOWED_HOSTS is * and PUBLIC_URL is unset: any Host header is accepted and becomes the base of the URLs this server hands out; set PUBLIC_URL"
        );
    }
    if !config.host.is_loopback() && config.allowed_hosts.is_empty() {
        tracing::warn!(
            "listening on a non-loopback address: set ALLOWED_HOSTS to the names clients use"
        );
    }
    tracing::info!(%local, "mcp-daemon listening on http://{local}/mcp (also /sse, /http, /health)");
    // On SIGTERM the server stops accepting, lets requests in progress finish for
    // SHUTDOWN_GRACE_SECS and then closes what is left (open streams), so it exits in bounded time.
    let served = app::serve(listener, state, shutdown_signal()).await;
    functions.shutdown_functions().await;
    Ok(served?)
}

/// Prints the effective configuration and every definition of the catalog with the runtime
/// that serves it, binding each function (its code found, none of it run); lists every
/// definition that cannot be served and why, and fails (exit 1) if there is one or the
/// configuration is invalid.
async fn check_config(config: &Config) -> anyhow::Result<()> {
    let valid = config.validate();
    let runtimes = app::build_runtimes(config).await?;
    let file = Catalog::read(config.config_file.as_deref())?;
    let (catalog, problems) = Catalog::build_all(file, &runtimes).await;
    let served = |name: &str, b: &mcp_daemon::catalog::Binding| serde_json::json!({"name": name, "runtime": b.runtime});
    let report = serde_json::json!({
        "valid": valid.is_ok() && problems.is_empty(),
        "auth": config.auth(),
        "config": config.effective(),
        "catalog": {
            "tools": catalog.tools.iter().map(|t| served(&t.name, &t.binding)).collect::<Vec<_>>(),
            "resources": catalog.resources.iter().map(|r| served(&r.uri, &r.binding)).collect::<Vec<_>>(),
            "resource_templates": catalog.templates.iter().map(|t| served(t.listing["uriTemplate"].as_str().unwrap_or_default(), &t.binding)).collect::<Vec<_>>(),
            "prompts": catalog.prompts.iter().map(|p| served(&p.name, &p.binding)).collect::<Vec<_>>(),
        },
        "problems": problems.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        "sandbox": sandbox_report(config),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    runtimes.shutdown().await;
    valid?;
    match problems.len() {
        0 => Ok(()),
        n => anyhow::bail!("{n} definition(s) cannot be served (see \"problems\")"),
    }
}

/// What the worker sandbox holds on this machine (a launcher start, a few milliseconds).
fn sandbox_report(config: &Config) -> serde_json::Value {
    use mcp_daemon::runtime::sandbox::{self, SandboxPolicy};
    let policy = match config.functions.function_sandbox {
        mcp_daemon::config::SandboxMode::Require => SandboxPolicy::Require,
        mcp_daemon::config::SandboxMode::BestEffort => SandboxPolicy::BestEffort,
        mcp_daemon::config::SandboxMode::Off => SandboxPolicy::Off,
    };
    match std::env::current_exe() {
        Ok(exe) => serde_json::to_value(sandbox::probe(&exe, policy)).unwrap_or_default(),
        Err(e) => serde_json::json!({"problems": [format!("cannot find our own binary: {e}")]}),
    }
}

/// stdio has no request headers: with authentication on, the caller proves who it is through
/// the environment — `MCP_AUTH_TOKEN` (the admin static token) or `MCP_USERNAME` and
/// `MCP_PASSWORD` (a local user).
async fn stdio_principal(
    config: &Config,
    engine: &mcp_daemon::engine::Engine,
) -> anyhow::Result<Principal> {
    if config.auth() == AuthProvider::None {
        return Ok(Principal::anonymous());
    }
    let auth = app::build_auth(config, engine)?;
    if let (Ok(token), Some(admin)) = (std::env::var("MCP_AUTH_TOKEN"), &config.admin_static_token)
        && mcp_daemon::auth::keys::same(token.as_bytes(), admin.as_bytes())
    {
        tracing::info!("stdio authenticated with ADMIN_STATIC_TOKEN");
        return Ok(Principal::static_admin());
    }
    let (Ok(user), Ok(password)) = (std::env::var("MCP_USERNAME"), std::env::var("MCP_PASSWORD"))
    else {
        anyhow::bail!(
            "authentication is on ({:?}): set MCP_AUTH_TOKEN (the admin static token) or MCP_USERNAME and MCP_PASSWORD for stdio",
            config.auth()
        );
    };
    let db = auth
        .users
        .clone()
        .context("MCP_USERNAME works with AUTH_PROVIDER=local only")?;
    let found = tokio::task::spawn_blocking(move || db.verify(&user, &password)).await??;
    let u = found.context("MCP_USERNAME / MCP_PASSWORD: wrong user name or password")?;
    Ok(Principal {
        subject: u.username,
        scopes: vec![scope::BASE_SCOPE.into()],
        roles: u.roles,
        client_id: None,
        authenticated: true,
    })
}

/// `mcp-daemon user add|list|remove`: edits LOCAL_USER_FILE (default DATA_DIR/users.json).
fn users_cli(config: &Config, action: &UserCommand) -> anyhow::Result<()> {
    let path = config
        .local_user_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("users.json"));
    let db = UserDb::open(&path, mcp_daemon::auth::setup::BCRYPT_COST)?;
    match action {
        UserCommand::Add {
            username,
            roles,
            password_stdin,
        } => {
            let password = if *password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                mcp_daemon::auth::keys::random_token()[..24].to_string()
            };
            db.add(username, &password, roles)?;
            if *password_stdin {
                println!("added {username}");
            } else {
                println!("added {username} with the password: {password}");
            }
        }
        UserCommand::List => {
            for u in db.list()? {
                println!("{}\t{}", u.username, u.roles.join(","));
            }
        }
        UserCommand::Remove { username } => {
            db.remove(username)?;
            println!("removed {username}");
        }
    }
    Ok(())
}

/// SIGHUP asks every node of the cluster (this one too) to re-read its MCP config file; each
/// then sends its clients `notifications/*/list_changed` for what changed.
fn spawn_reload_on_sighup(engine: Arc<mcp_daemon::engine::Engine>) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            if let Err(e) = engine.reload_config_everywhere().await {
                tracing::error!(error = %e, "cannot ask the nodes to reload the config");
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

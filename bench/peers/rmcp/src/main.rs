//! Benchmark peer: the tools `add(a, b)` and `echo(message)` served by rmcp's streamable HTTP
//! server (stateful sessions, in memory, default settings) on 127.0.0.1:PORT/mcp.
//!
//!     bench-peer-rmcp [PORT]        (or PORT in the environment; default 8001)

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct AddArgs {
    /// First number
    a: f64,
    /// Second number
    b: f64,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// Text to echo
    message: String,
}

#[derive(Clone)]
struct Bench {
    #[allow(dead_code)] // read by the code `tool_handler` generates
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Bench {
    #[tool(description = "Add two numbers and return the sum as text.")]
    fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> String {
        let sum = a + b;
        // Integers stay integers ("5", not "5.0"), like the other peers.
        if sum.fract() == 0.0 && sum.abs() < 9.0e15 {
            format!("{}", sum as i64)
        } else {
            sum.to_string()
        }
    }

    #[tool(description = "Return the message unchanged.")]
    fn echo(&self, Parameters(EchoArgs { message }): Parameters<EchoArgs>) -> String {
        message
    }
}

#[tool_handler]
impl ServerHandler for Bench {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .map_or(Ok(8001), |p| p.parse())?;
    let service: StreamableHttpService<Bench, LocalSessionManager> = StreamableHttpService::new(
        || {
            Ok(Bench {
                tool_router: Bench::tool_router(),
            })
        },
        Default::default(),
        StreamableHttpServerConfig::default(),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    // Same as the daemon: small responses must not wait for delayed ACKs.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    eprintln!("rmcp peer listening on http://127.0.0.1:{port}/mcp");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

//! One multiplexed connection to a single Redis or to a Redis Cluster, with a deadline on every
//! command. Both reconnect by themselves after Redis comes back; until then commands fail fast.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, ScriptInvocation, Value};

use crate::state::{StateError, StateErrorKind, StateResult};

#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// A cheap-to-clone handle for commands. Every call either answers within `timeout` or fails
/// with `StateErrorKind::Timeout` / `Unavailable`, which the HTTP layer turns into 503.
#[derive(Clone)]
pub struct Redis {
    link: Link,
    timeout: Duration,
}

impl Redis {
    /// Connects to `urls[0]` (single) or to the cluster the seed `urls` belong to.
    pub async fn connect(urls: &[String], cluster: bool, timeout: Duration) -> StateResult<Self> {
        let link = if cluster {
            let client = ClusterClient::builder(urls.to_vec())
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(2)
                .min_retry_wait(50)
                .max_retry_wait(500)
                .build()
                .map_err(failure)?;
            Link::Cluster(deadline(timeout, client.get_async_connection()).await?)
        } else {
            let url = urls.first().ok_or_else(|| StateError {
                kind: StateErrorKind::Internal,
                cause: "no Redis URL".into(),
            })?;
            let client = redis::Client::open(url.as_str()).map_err(failure)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(500));
            Link::Single(
                deadline(timeout, client.get_connection_manager_with_config(config)).await?,
            )
        };
        Ok(Self { link, timeout })
    }

    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> StateResult<T> {
        let mut link = self.link.clone();
        deadline(self.timeout, cmd.query_async(&mut link)).await
    }

    pub async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> StateResult<T> {
        let mut link = self.link.clone();
        deadline(self.timeout, pipe.query_async(&mut link)).await
    }

    pub async fn script<T: FromRedisValue>(&self, call: ScriptInvocation<'_>) -> StateResult<T> {
        let mut link = self.link.clone();
        deadline(self.timeout, call.invoke_async(&mut link)).await
    }
}

async fn deadline<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, RedisError>>,
) -> StateResult<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r.map_err(failure),
        Err(_) => Err(StateError {
            kind: StateErrorKind::Timeout,
            cause: format!("Redis did not answer within {} ms", timeout.as_millis()),
        }),
    }
}

/// Connection trouble is `Unavailable` (retry later); a refused command or bad data is a bug.
pub fn failure(e: RedisError) -> StateError {
    let kind = if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::BusyLoading
                    | redis::ServerErrorKind::TryAgain
                    | redis::ServerErrorKind::ClusterDown
                    | redis::ServerErrorKind::MasterDown
            )
        ) {
        StateErrorKind::Unavailable
    } else {
        StateErrorKind::Internal
    };
    StateError {
        kind,
        cause: e.to_string(),
    }
}

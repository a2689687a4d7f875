//! One connection type for a single Redis and for Redis Cluster, both reconnecting on their
//! own.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use switchboard_config::RedisConfig;

/// A cheap-to-clone handle on Redis or Redis Cluster.
#[derive(Clone)]
pub enum Redis {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(_) => f.write_str("Redis::Single"),
            Self::Cluster(_) => f.write_str("Redis::Cluster"),
        }
    }
}

/// Connects as configured: `url` alone, or `url` plus `cluster_seeds` with `cluster = true`.
/// The single connection reconnects with exponential backoff; the cluster connection
/// refreshes its slot map on errors.
pub async fn connect(config: &RedisConfig) -> Result<Redis, RedisError> {
    if config.cluster {
        let mut seeds = vec![config.url.clone()];
        seeds.extend(config.cluster_seeds.iter().cloned());
        let client = ClusterClient::builder(seeds).retries(6).build()?;
        Ok(Redis::Cluster(client.get_async_connection().await?))
    } else {
        let client = redis::Client::open(config.url.as_str())?;
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(6)
            .set_max_delay(std::time::Duration::from_secs(2));
        Ok(Redis::Single(
            client
                .get_connection_manager_with_config(manager_config)
                .await?,
        ))
    }
}

impl ConnectionLike for Redis {
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

impl Redis {
    /// Whether this is Redis Cluster, where one command must not cross hash slots.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// The values of `keys`, in order: one `MGET` on a single Redis; one `GET` each,
    /// concurrently, on a cluster, where one command must not cross hash slots.
    pub async fn get_each<T: redis::FromRedisValue>(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<T>>, RedisError> {
        match self {
            Self::Single(_) if !keys.is_empty() => {
                Cmd::mget(keys).query_async(&mut self.clone()).await
            }
            _ => {
                self.query_each(keys.into_iter().map(Cmd::get).collect())
                    .await
            }
        }
    }

    /// Runs independent commands in as few round trips as possible: one pipeline on a
    /// single Redis; concurrently (one multiplexed request each) on a cluster, where a
    /// pipeline must not cross hash slots.
    pub async fn query_each<T: redis::FromRedisValue>(
        &self,
        cmds: Vec<Cmd>,
    ) -> Result<Vec<T>, RedisError> {
        match self {
            Self::Single(_) => {
                if cmds.is_empty() {
                    return Ok(Vec::new());
                }
                let mut pipe = redis::pipe();
                for c in cmds {
                    pipe.add_command(c);
                }
                pipe.query_async(&mut self.clone()).await
            }
            Self::Cluster(_) => {
                futures::future::try_join_all(cmds.into_iter().map(|c| {
                    let mut conn = self.clone();
                    async move { c.query_async::<T>(&mut conn).await }
                }))
                .await
            }
        }
    }
}

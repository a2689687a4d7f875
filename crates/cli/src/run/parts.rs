//! What the services run on: the codec (embedded schemas, or a Schema Registry), the embedded
//! Kafka-protocol mock cluster, and Redis's readiness.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::mocking::MockCluster;
use switchboard_codec::{AnySchemas, Codec, LocalSchemas, RegistryAuth, RegistrySchemas};
use switchboard_config::Config;
use switchboard_redis::Redis;
use switchboard_telemetry::Health;
use tokio_util::sync::CancellationToken;

/// The codec, with the Schema Registry of `schemas.registry_url` when one is configured.
pub(crate) async fn codec(config: &Config) -> anyhow::Result<Arc<Codec<AnySchemas>>> {
    let local = LocalSchemas::embedded()?;
    let schemas = match &config.schemas.registry_url {
        None => AnySchemas::Local(local),
        Some(url) => {
            let auth = match (
                &config.schemas.registry_username,
                &config.schemas.registry_password,
            ) {
                (Some(u), Some(p)) => Some(RegistryAuth {
                    username: u.clone(),
                    password: p.clone(),
                }),
                _ => None,
            };
            AnySchemas::Registry(Box::new(RegistrySchemas::new(url, auth, local)?))
        }
    };
    Ok(Arc::new(
        Codec::new(schemas).await.context("loading the schemas")?,
    ))
}

/// The embedded mode's broker: librdkafka's in-process mock cluster (a real Kafka-protocol
/// listener) with every topic, 4 partitions each; `config` now points at it.
pub fn embedded_kafka(
    config: &mut Config,
) -> anyhow::Result<MockCluster<'static, rdkafka::producer::DefaultProducerContext>> {
    let cluster = MockCluster::new(1).context("starting the embedded Kafka mock cluster")?;
    config.kafka.bootstrap_servers = cluster.bootstrap_servers();
    config.topics.partitions = 4;
    for t in switchboard_kafka::topic_plan(&config.topics) {
        cluster
            .create_topic(&t.name, t.partitions, 1)
            .with_context(|| format!("creating topic {}", t.name))?;
    }
    eprintln!(
        "switchboard: embedded mode: Kafka-protocol mock cluster on {} (produce Avro ChannelEvents to {}<channel>), in-memory state",
        config.kafka.bootstrap_servers, config.topics.events_prefix
    );
    Ok(cluster)
}

/// Keeps the `redis` readiness component current: a `PING` every second, not ready while
/// it fails or takes longer than a second. The services themselves retry with backoff.
pub async fn watch_redis(mut redis: Redis, health: Health, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let ping = redis::cmd("PING");
        match tokio::time::timeout(Duration::from_secs(1), ping.query_async::<()>(&mut redis)).await
        {
            Ok(Ok(())) => health.set_ready("redis"),
            Ok(Err(e)) => health.set_not_ready("redis", format!("PING failed: {e}")),
            Err(_) => health.set_not_ready("redis", "PING took longer than 1 s"),
        }
    }
}

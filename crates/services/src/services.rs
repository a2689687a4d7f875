//! Wiring: a service is a partitioned consumer, a producer and shared state, run until the
//! shutdown token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::FutureProducer;
use switchboard_codec::{Codec, SchemaResolver};
use switchboard_config::Config;
use switchboard_identity::IdentityStore;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use switchboard_kafka::{ConsumerSettings, OutputMode, run_partitioned};

use crate::Metrics;
use crate::catalog::Catalog;
use crate::engine::{Engine, EngineWorkers, Winning};
use crate::stitcher::{Stitcher, StitcherWorkers};
use switchboard_engine::StateStore;

/// How long a stopping partition may take to finish its batch and commit.
pub const DRAIN: Duration = Duration::from_secs(10);

/// The producer every service writes with: idempotent, acks from all replicas, small linger.
pub fn producer(config: &Config) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    let mut c = producer_config(config);
    if c.get("queue.buffering.max.messages").is_none() {
        c.set("queue.buffering.max.messages", "200000");
    }
    c.create()
}

/// A producer's configuration: idempotent with acks from all replicas (what the delivery
/// guarantees rest on, whatever `kafka.properties` say), and a linger of 1 ms unless
/// `kafka.properties` tune it. A partition produces its whole batch at once and then waits
/// for the acknowledgements, so lingering mostly delays a batch that is already complete,
/// twice per event (stitcher and engine); 1 ms still lets partitions' batches share a
/// request. Measured on the load harness: 10 ms less at the median under light load; on
/// tansu, about 6 % fewer events/s than 5 ms when draining a backlog (smaller requests).
fn producer_config(config: &Config) -> ClientConfig {
    let mut c: ClientConfig = switchboard_kafka::client_config(&config.kafka);
    if c.get("linger.ms").is_none() {
        c.set("linger.ms", "1");
    }
    c.set("enable.idempotence", "true").set("acks", "all");
    c
}

fn settings(
    config: &Config,
    service: &'static str,
    topics: Vec<String>,
) -> Result<ConsumerSettings, rdkafka::error::KafkaError> {
    let output = if config.kafka.transactions {
        OutputMode::Transactional(producer_config(config))
    } else {
        OutputMode::Shared(producer(config)?)
    };
    Ok(ConsumerSettings {
        group: format!("{}-{service}", config.kafka.group_prefix),
        topics,
        max_batch: 500,
        tick: Duration::from_millis(200),
        drain: DRAIN,
        service,
        output,
    })
}

/// Runs the stitcher until `shutdown`.
pub async fn run_stitcher<R: SchemaResolver + 'static, I: IdentityStore + 'static>(
    config: Arc<Config>,
    codec: Arc<Codec<R>>,
    identity: Arc<I>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), rdkafka::error::KafkaError> {
    let topics = Stitcher::<R, I>::topics(&config);
    let stitcher = Stitcher::new(codec, identity, config.clone(), metrics.clone());
    let (workers, lane) = StitcherWorkers::new(Arc::new(stitcher), shutdown.clone());
    let consumer = run_partitioned(
        switchboard_kafka::client_config(&config.kafka),
        settings(&config, "stitcher", topics)?,
        Arc::new(workers),
        metrics.kafka.clone(),
        shutdown,
    );
    // The consumer drops the workers when it returns, and with them the lane's last handle.
    let (consumed, ()) = tokio::join!(consumer, lane);
    consumed
}

/// Runs the engine until `shutdown`.
pub async fn run_engine<R: SchemaResolver + 'static, S: StateStore>(
    config: Arc<Config>,
    codec: Arc<Codec<R>>,
    store: Arc<S>,
    catalog: watch::Receiver<Arc<Catalog>>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), rdkafka::error::KafkaError> {
    let topics = crate::engine::topics(&config);
    let engine = Engine {
        codec,
        store,
        catalog,
        config: config.clone(),
        metrics: metrics.clone(),
        clock: crate::now_ms,
        winning: Winning::default(),
    };
    run_partitioned(
        switchboard_kafka::client_config(&config.kafka),
        settings(&config, "engine", topics)?,
        Arc::new(EngineWorkers(Arc::new(engine))),
        metrics.kafka.clone(),
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_properties_tune_the_linger_but_not_the_delivery_guarantees() {
        let mut config = Config::default();
        let defaults = producer_config(&config);
        assert_eq!(defaults.get("linger.ms"), Some("1"));
        config.kafka.properties.extend([
            ("linger.ms".to_owned(), "0".to_owned()),
            ("acks".to_owned(), "1".to_owned()),
            ("enable.idempotence".to_owned(), "false".to_owned()),
        ]);
        let tuned = producer_config(&config);
        assert_eq!(tuned.get("linger.ms"), Some("0"));
        assert_eq!(tuned.get("acks"), Some("all"));
        assert_eq!(tuned.get("enable.idempotence"), Some("true"));
    }
}

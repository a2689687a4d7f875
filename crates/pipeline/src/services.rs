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

use crate::Metrics;
use crate::catalog::Catalog;
use crate::consumer::{ConsumerSettings, OutputMode, run_partitioned};
use crate::engine::{Engine, EngineWorkers};
use crate::state::StateStore;
use crate::stitcher::{Stitcher, StitcherWorkers};

/// How long a stopping partition may take to finish its batch and commit.
pub const DRAIN: Duration = Duration::from_secs(10);

/// The producer every service writes with: idempotent, acks from all replicas, small linger.
pub fn producer(config: &Config) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    let mut c: ClientConfig = switchboard_kafka::client_config(&config.kafka);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000");
    c.create()
}

fn settings(
    config: &Config,
    service: &'static str,
    topics: Vec<String>,
) -> Result<ConsumerSettings, rdkafka::error::KafkaError> {
    let output = if config.kafka.transactions {
        let mut c: ClientConfig = switchboard_kafka::client_config(&config.kafka);
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        OutputMode::Transactional(c)
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
    run_partitioned(
        switchboard_kafka::client_config(&config.kafka),
        settings(&config, "stitcher", topics)?,
        Arc::new(StitcherWorkers(Arc::new(stitcher))),
        metrics,
        shutdown,
    )
    .await
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
    };
    run_partitioned(
        switchboard_kafka::client_config(&config.kafka),
        settings(&config, "engine", topics)?,
        Arc::new(EngineWorkers(Arc::new(engine))),
        metrics,
        shutdown,
    )
    .await
}

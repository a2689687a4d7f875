//! `switchboard run`, `switchboard stitcher` and `switchboard engine`: the services.
//!
//! `run` without a configuration file is the embedded default: librdkafka's in-process mock
//! cluster (a real Kafka-protocol listener), in-memory stores, both services, the example
//! journeys and, with `--generate`, synthetic traffic, with live progress on the terminal.
//! With a configuration file it runs both services against the configured Kafka and Redis.
//!
//! This file wires them; [`parts`] makes what they run on, [`signals`] says when to stop,
//! [`progress`] prints the progress line.

mod parts;
mod progress;
mod signals;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use switchboard_codec::{AnySchemas, Codec};
use switchboard_config::Config;
use switchboard_engine::MemoryStateStore;
use switchboard_identity::MemoryIdentityStore;
use switchboard_redis::{Keys, RedisIdentityStore, RedisStateStore, connect};
use switchboard_services::Metrics;
use switchboard_services::catalog::{Catalog, CatalogSource, watch_catalog};
use switchboard_services::generate::{Traffic, generate, respond};
use switchboard_services::services::{producer, run_engine, run_stitcher};
use switchboard_telemetry::Health;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub(crate) use parts::codec;

use crate::args::RunArgs;
use crate::journeys::DEFAULT_POLICIES;

/// Which services a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Both,
    Stitcher,
    Engine,
}

impl Role {
    fn stitcher(self) -> bool {
        self != Self::Engine
    }
    fn engine(self) -> bool {
        self != Self::Stitcher
    }
}

/// Runs the services of `role`; embedded when `embedded` is set.
pub async fn run(
    mut config: Config,
    args: RunArgs,
    role: Role,
    embedded: bool,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    // Everything but the services; joined once the services have stopped.
    let mut helpers = JoinSet::new();
    let started = CancellationToken::new();
    helpers.spawn(signals::stop_on_signal(
        shutdown.clone(),
        started.clone(),
        args.duration,
    ));
    let registry = switchboard_telemetry::new_registry(
        env!("CARGO_PKG_VERSION"),
        option_env!("SWITCHBOARD_COMMIT").unwrap_or("unknown"),
    )?;
    let metrics = Metrics::register(&registry)?;
    let health = Health::new();
    let mock = if embedded {
        Some(parts::embedded_kafka(&mut config)?)
    } else {
        None
    };
    let admin = switchboard_telemetry::serve(
        &config.admin.listen,
        registry.clone(),
        health.clone(),
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("admin.listen {}", config.admin.listen))?;
    eprintln!("switchboard: metrics on http://{}/metrics", admin.addr);
    let config = Arc::new(config);
    let codec = codec(&config).await?;
    let catalog = if role.engine() {
        let (catalog, watching) = load_catalog(&args, &metrics, &shutdown)?;
        helpers.spawn(watching);
        Some(catalog)
    } else {
        None
    };
    let produced = Arc::new(AtomicU64::new(0));
    if let Some(rate) = args.generate {
        let traffic = Traffic {
            framing: config.schemas.framing,
            malformed_every: args.malformed_every,
            ..Traffic::shoppers(rate, args.customers, config.topics.events_prefix.clone())
        };
        eprintln!(
            "switchboard: generating {rate} events/s over {} customers",
            args.customers
        );
        // The customers respond to their messages: read every command from now on.
        let commands: Vec<String> = (config.topics.channels.iter())
            .map(|c| format!("{}{c}", config.topics.commands_prefix))
            .collect();
        let consumer: rdkafka::consumer::StreamConsumer =
            switchboard_kafka::client_config(&config.kafka)
                .set(
                    "group.id",
                    format!("switchboard-customers-{}", std::process::id()),
                )
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "latest")
                .create()?;
        let topics: Vec<&str> = commands.iter().map(String::as_str).collect();
        rdkafka::consumer::Consumer::subscribe(&consumer, &topics)?;
        let (buys, bought) = tokio::sync::mpsc::unbounded_channel();
        let seed = traffic.seed;
        helpers.spawn(respond(
            consumer,
            codec.clone(),
            buys,
            seed,
            shutdown.clone(),
        ));
        let producer = producer(&config)?;
        let (codec, produced) = (codec.clone(), produced.clone());
        helpers.spawn(generate(
            traffic,
            codec,
            producer,
            produced,
            bought,
            shutdown.clone(),
        ));
    }

    let services = Services {
        role,
        config: &config,
        codec: &codec,
        catalog,
        metrics: &metrics,
        shutdown: &shutdown,
    };
    let (mut running, in_memory) = if embedded {
        let state = Arc::new(MemoryStateStore::new());
        let identity = Arc::new(MemoryIdentityStore::new());
        (services.spawn(identity, state.clone()), Some(state))
    } else {
        let redis = connect(&config.redis)
            .await
            .with_context(|| format!("connecting to redis.url {}", config.redis.url))?;
        helpers.spawn(parts::watch_redis(
            redis.clone(),
            health.clone(),
            shutdown.clone(),
        ));
        let prefix = &config.redis.key_prefix;
        let identity = RedisIdentityStore::new(redis.clone(), Keys::new(prefix.clone()));
        let state = RedisStateStore::new(redis, prefix.clone());
        (services.spawn(Arc::new(identity), Arc::new(state)), None)
    };
    helpers.spawn(progress::progress(
        registry.clone(),
        produced,
        in_memory,
        shutdown.clone(),
    ));
    health.set_ready("services");
    started.cancel();

    let mut failure = None;
    while let Some(done) = running.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
                shutdown.cancel();
            }
            Err(e) => {
                failure.get_or_insert(anyhow::anyhow!("service task failed: {e}"));
                shutdown.cancel();
            }
        }
    }
    shutdown.cancel();
    while helpers.join_next().await.is_some() {}
    let _ = admin.task.await;
    drop(mock);
    eprintln!("switchboard: stopped");
    failure.map_or(Ok(()), Err)
}

/// The journeys and policies `args` names, validated, and the task that reloads them when
/// their files change.
fn load_catalog(
    args: &RunArgs,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> anyhow::Result<(
    watch::Receiver<Arc<Catalog>>,
    impl Future<Output = ()> + Send + 'static,
)> {
    let source = CatalogSource {
        journeys_dir: args.journeys.clone(),
        policies_file: args.policies.clone(),
        default_policies: DEFAULT_POLICIES.to_owned(),
    };
    let initial: Catalog = source
        .load()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("loading journeys from {}", args.journeys.display()))?;
    eprintln!(
        "switchboard: {} journey version(s) from {}",
        initial.journeys.len(),
        args.journeys.display()
    );
    let every = Duration::from_secs(2);
    Ok(watch_catalog(
        source,
        initial,
        every,
        metrics.clone(),
        shutdown.clone(),
    ))
}

/// The services of a role, and what they share.
struct Services<'a> {
    role: Role,
    config: &'a Arc<Config>,
    codec: &'a Arc<Codec<AnySchemas>>,
    catalog: Option<watch::Receiver<Arc<Catalog>>>,
    metrics: &'a Metrics,
    shutdown: &'a CancellationToken,
}

impl Services<'_> {
    /// Starts the role's services on these stores.
    fn spawn<I, S>(self, identity: Arc<I>, state: Arc<S>) -> JoinSet<anyhow::Result<()>>
    where
        I: switchboard_identity::IdentityStore + 'static,
        S: switchboard_engine::StateStore,
    {
        let mut running = JoinSet::new();
        let (config, codec, metrics, shutdown) = (
            self.config.clone(),
            self.codec.clone(),
            self.metrics.clone(),
            self.shutdown.clone(),
        );
        if self.role.stitcher() {
            let (config, codec, metrics, shutdown) = (
                config.clone(),
                codec.clone(),
                metrics.clone(),
                shutdown.clone(),
            );
            running.spawn(async move {
                run_stitcher(config, codec, identity, metrics, shutdown)
                    .await
                    .context("stitcher")
            });
        }
        if let (true, Some(catalog)) = (self.role.engine(), self.catalog) {
            running.spawn(async move {
                run_engine(config, codec, state, catalog, metrics, shutdown)
                    .await
                    .context("engine")
            });
        }
        running
    }
}

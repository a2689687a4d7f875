//! `switchboard run`, `switchboard stitcher` and `switchboard engine`: the services.
//!
//! `run` without a configuration file is the embedded default: librdkafka's in-process mock
//! cluster (a real Kafka-protocol listener), in-memory stores, both services, the example
//! journeys and, with `--generate`, synthetic traffic, with live progress on the terminal.
//! With a configuration file it runs both services against the configured Kafka and Redis.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use prometheus::Registry;
use rdkafka::mocking::MockCluster;
use switchboard_codec::{AnySchemas, Codec, LocalSchemas, RegistryAuth, RegistrySchemas};
use switchboard_config::Config;
use switchboard_engine::MemoryStateStore;
use switchboard_identity::MemoryIdentityStore;
use switchboard_pipeline::Metrics;
use switchboard_pipeline::catalog::{Catalog, CatalogSource, watch_catalog};
use switchboard_pipeline::generate::{Traffic, generate};
use switchboard_pipeline::services::{producer, run_engine, run_stitcher};
use switchboard_redis::RedisStateStore;
use switchboard_redis::{Keys, Redis, RedisIdentityStore, connect};
use switchboard_telemetry::Health;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::journeys::DEFAULT_POLICIES;

/// What `run`, `stitcher` and `engine` take.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Folder of journey files.
    #[arg(long, default_value = "journeys")]
    pub journeys: PathBuf,
    /// Policies file; by default the built-in one (deploy/policies.yaml).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Generate this many synthetic events per second (run only).
    #[arg(long)]
    pub generate: Option<u32>,
    /// Customers in the generated population.
    #[arg(long, default_value_t = 10_000)]
    pub customers: u32,
    /// Make every Nth generated record malformed (truncated), as a buggy channel system
    /// would, so the dead-letter path shows on the dashboard; 0 for never.
    #[arg(long, default_value_t = 1_000)]
    pub malformed_every: u64,
    /// Stop after this many seconds (default: run until SIGINT or SIGTERM).
    #[arg(long)]
    pub duration: Option<u64>,
}

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

/// Stops on SIGINT, SIGTERM or after `duration`.
fn stop_on_signal(shutdown: CancellationToken, duration: Option<u64>) {
    tokio::spawn(async move {
        let term = async {
            #[cfg(unix)]
            {
                if let Ok(mut s) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                {
                    s.recv().await;
                    return;
                }
            }
            std::future::pending::<()>().await
        };
        let timer = async {
            match duration {
                Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("SIGINT: draining"),
            _ = term => info!("SIGTERM: draining"),
            _ = timer => info!("duration reached: draining"),
        }
        shutdown.cancel();
    });
}

/// Runs the services of `role`; embedded when `embedded` is set.
pub async fn run(
    mut config: Config,
    args: RunArgs,
    role: Role,
    embedded: bool,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    stop_on_signal(shutdown.clone(), args.duration);
    let registry = switchboard_telemetry::new_registry(
        env!("CARGO_PKG_VERSION"),
        option_env!("SWITCHBOARD_COMMIT").unwrap_or("unknown"),
    )?;
    let metrics = Metrics::register(&registry)?;
    let health = Health::new();
    let mock = if embedded {
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
        Some(cluster)
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
        Some(watch_catalog(
            source,
            initial,
            Duration::from_secs(2),
            metrics.clone(),
            shutdown.clone(),
        ))
    } else {
        None
    };
    let mut services = tokio::task::JoinSet::new();
    let mut helpers = tokio::task::JoinSet::new();
    if embedded {
        let identity = Arc::new(MemoryIdentityStore::new());
        let state = Arc::new(MemoryStateStore::new());
        spawn_services(
            &mut services,
            role,
            &config,
            &codec,
            identity,
            state.clone(),
            catalog,
            &metrics,
            &shutdown,
        );
        start_generator(
            &mut helpers,
            &config,
            &args,
            &codec,
            &shutdown,
            &registry,
            Some(state),
        )?;
    } else {
        let redis = connect(&config.redis)
            .await
            .with_context(|| format!("connecting to redis.url {}", config.redis.url))?;
        helpers.spawn(watch_redis(redis.clone(), health.clone(), shutdown.clone()));
        let identity = Arc::new(RedisIdentityStore::new(
            redis.clone(),
            Keys::new(config.redis.key_prefix.clone()),
        ));
        let state = Arc::new(RedisStateStore::new(redis, config.redis.key_prefix.clone()));
        spawn_services(
            &mut services,
            role,
            &config,
            &codec,
            identity,
            state,
            catalog,
            &metrics,
            &shutdown,
        );
        start_generator(
            &mut helpers,
            &config,
            &args,
            &codec,
            &shutdown,
            &registry,
            None::<Arc<MemoryStateStore>>,
        )?;
    }
    health.set_ready("services");
    let mut failure = None;
    while let Some(done) = services.join_next().await {
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

/// Keeps the `redis` readiness component current: a `PING` every second, not ready while
/// it fails or takes longer than a second. The services themselves retry with backoff.
async fn watch_redis(mut redis: Redis, health: Health, shutdown: CancellationToken) {
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

#[allow(clippy::too_many_arguments)]
fn spawn_services<I, S>(
    services: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    role: Role,
    config: &Arc<Config>,
    codec: &Arc<Codec<AnySchemas>>,
    identity: Arc<I>,
    state: Arc<S>,
    catalog: Option<watch::Receiver<Arc<Catalog>>>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) where
    I: switchboard_identity::IdentityStore + 'static,
    S: switchboard_engine::StateStore,
{
    if role.stitcher() {
        let (config, codec, metrics, shutdown) = (
            config.clone(),
            codec.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        services.spawn(async move {
            run_stitcher(config, codec, identity, metrics, shutdown)
                .await
                .context("stitcher")
        });
    }
    if let (true, Some(catalog)) = (role.engine(), catalog) {
        let (config, codec, metrics, shutdown) = (
            config.clone(),
            codec.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        services.spawn(async move {
            run_engine(config, codec, state, catalog, metrics, shutdown)
                .await
                .context("engine")
        });
    }
}

fn start_generator(
    helpers: &mut tokio::task::JoinSet<()>,
    config: &Arc<Config>,
    args: &RunArgs,
    codec: &Arc<Codec<AnySchemas>>,
    shutdown: &CancellationToken,
    registry: &Registry,
    state: Option<Arc<MemoryStateStore>>,
) -> anyhow::Result<()> {
    let produced = Arc::new(AtomicU64::new(0));
    if let Some(rate) = args.generate {
        let traffic = Traffic {
            events_per_second: rate,
            customers: args.customers,
            events_prefix: config.topics.events_prefix.clone(),
            framing: config.schemas.framing,
            seed: 7,
            malformed_every: args.malformed_every,
        };
        eprintln!(
            "switchboard: generating {rate} events/s over {} customers",
            args.customers
        );
        helpers.spawn(generate(
            traffic,
            codec.clone(),
            producer(config)?,
            produced.clone(),
            shutdown.clone(),
        ));
    }
    helpers.spawn(progress(
        registry.clone(),
        produced,
        state,
        shutdown.clone(),
    ));
    Ok(())
}

/// A label name and a test of its value.
type LabelFilter<'a> = (&'a str, &'a dyn Fn(&str) -> bool);

/// Sums a metric family, optionally only the series whose label passes the filter.
fn total(registry: &Registry, name: &str, label: Option<LabelFilter<'_>>) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| {
            label.is_none_or(|(l, keep)| {
                m.get_label()
                    .iter()
                    .any(|p| p.name() == l && keep(p.value()))
            })
        })
        .map(|m| m.get_counter().value() + m.get_gauge().value())
        .sum()
}

fn by_label(registry: &Registry, name: &str, label: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter_map(|m| {
            let l = m.get_label().iter().find(|p| p.name() == label)?;
            Some((l.value().to_owned(), m.get_counter().value()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Prints one progress line every two seconds.
async fn progress(
    registry: Registry,
    produced: Arc<AtomicU64>,
    state: Option<Arc<MemoryStateStore>>,
    shutdown: CancellationToken,
) {
    let start = Instant::now();
    let mut every = tokio::time::interval(Duration::from_secs(2));
    every.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let n = |x: f64| x.max(0.0).round() as u64;
        let events = total(
            &registry,
            "switchboard_events_consumed_total",
            Some(("topic", &|t: &str| !t.contains("customer"))),
        );
        let entered = total(
            &registry,
            "switchboard_journey_transitions_total",
            Some(("kind", &|k: &str| k == "entered")),
        );
        let commands: Vec<String> = by_label(&registry, "switchboard_commands_total", "channel")
            .iter()
            .map(|(c, k)| format!("{c} {k}"))
            .collect();
        let suppressed = total(&registry, "switchboard_suppressions_total", None);
        let dlq = total(&registry, "switchboard_dead_letters_total", None);
        let profiles = state.as_ref().map_or_else(
            || total(&registry, "switchboard_profiles_created_total", None) as usize,
            |s| s.profiles(),
        );
        eprintln!(
            "[{:>5.0}s] produced {} | events in {} | profiles {profiles} | journeys entered {} | commands {} | suppressed {} | dead letters {}",
            start.elapsed().as_secs_f64(),
            produced.load(Ordering::Relaxed),
            n(events),
            n(entered),
            if commands.is_empty() {
                "0".to_owned()
            } else {
                commands.join(", ")
            },
            n(suppressed),
            n(dlq),
        );
    }
}

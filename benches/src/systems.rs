//! Starting a system (the baseline, Switchboard or the floor) and following its progress.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use prometheus::proto::MetricFamily;
use switchboard_config::Config;
use switchboard_redis::RedisStateStore;
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_services::Metrics;
use switchboard_services::catalog::{CatalogSource, watch_catalog};
use switchboard_services::services::{run_engine, run_stitcher};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::baseline;
use crate::batches::{Batches, batch_totals};
use crate::parts::{Parts, System};

/// The topic the baseline or the floor produces the messages the latency reader reads to.
pub(crate) fn output(config: &Config, system: System) -> String {
    config
        .topics
        .events_prefix
        .replace(".events.", &format!(".{}.out", system.name()))
}

/// A running system and how many input events it has finished.
pub(crate) struct Running {
    pub(crate) stop: CancellationToken,
    pub(crate) tasks: Vec<JoinHandle<()>>,
    pub(crate) progress: Box<dyn Fn() -> u64 + Send>,
    /// The first event was taken from the backlog (the consumer group has formed).
    pub(crate) started: Box<dyn Fn() -> bool + Send>,
    /// Partition batches so far, per service (Switchboard's only).
    pub(crate) batches: Box<dyn Fn() -> Vec<Batches> + Send>,
    /// Messages Switchboard's engine produced so far (journey transitions and commands).
    pub(crate) produced: Box<dyn Fn() -> f64 + Send>,
}

impl Running {
    /// Waits until `n` events are through (at most `limit`): seconds from the first event
    /// taken to the last through, and from the start to the first taken. The clock starts at
    /// the first event taken: forming a consumer group takes 0.5 to 3 s on tansu, which once
    /// decided most of the baseline's 1 s drain.
    pub(crate) async fn drain(&self, n: u64, limit: Duration) -> Result<(f64, f64), Error> {
        let t0 = Instant::now();
        let mut first = None;
        while (self.progress)() < n {
            if t0.elapsed() > limit {
                let through = (self.progress)();
                return Err(
                    format!("{n} events not drained in {limit:?} ({through} through)").into(),
                );
            }
            if first.is_none() && (self.started)() {
                first = Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let from = first.unwrap_or(t0);
        Ok((from.elapsed().as_secs_f64(), (from - t0).as_secs_f64()))
    }

    /// Messages produced, once the last batches are through: an event counts as drained when
    /// the engine takes it, before its batch's transitions and commands are counted. Read
    /// until two readings 100 ms apart agree (at most 5 s).
    pub(crate) async fn settled_produced(&self) -> f64 {
        let mut last = (self.produced)();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = (self.produced)();
            if now == last {
                break;
            }
            last = now;
        }
        last
    }

    pub(crate) async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    }
}

/// Starts `system`; the floor's engine stage produces `floor_produced` messages per event.
pub(crate) async fn start(
    system: System,
    parts: &Parts,
    config: &Arc<Config>,
    floor_produced: Option<f64>,
) -> Result<Running, Error> {
    let stop = CancellationToken::new();
    match system {
        System::Baseline | System::Floor => {
            let (taken, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let run = match system {
                System::Floor => {
                    let produced = floor_produced.ok_or(
                        "the floor needs the messages Switchboard produces per event: \
                         measure Switchboard in the same run, or give --floor-produced",
                    )?;
                    baseline::floor(
                        config.clone(),
                        output(config, system),
                        produced,
                        taken.clone(),
                        done.clone(),
                        stop.clone(),
                    )
                    .boxed()
                }
                _ => baseline::baseline(
                    config.clone(),
                    output(config, system),
                    taken.clone(),
                    done.clone(),
                    stop.clone(),
                )
                .boxed(),
            };
            let task = tokio::spawn(async move {
                if let Err(e) = run.await {
                    eprintln!("{} failed: {e}", system.name());
                }
            });
            Ok(Running {
                stop,
                tasks: vec![task],
                progress: Box::new(move || done.load(Ordering::Relaxed)),
                started: Box::new(move || taken.load(Ordering::Relaxed) > 0),
                batches: Box::new(Vec::new),
                produced: Box::new(|| 0.0),
            })
        }
        System::Switchboard => {
            let registry = prometheus::Registry::new();
            let metrics = Metrics::register(&registry)?;
            let conn = connect(&config.redis).await?;
            let prefix = config.redis.key_prefix.clone();
            let identity = Arc::new(RedisIdentityStore::new(
                conn.clone(),
                Keys::new(prefix.clone()),
            ));
            let state = Arc::new(RedisStateStore::new(conn, prefix));
            let source = CatalogSource {
                journeys_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../journeys").into(),
                policies_file: Some(
                    concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/policies.yaml").into(),
                ),
                default_policies: String::new(),
            };
            let (catalog, watching) = watch_catalog(
                source.clone(),
                source.load().map_err(|e| e.to_string())?,
                Duration::from_secs(600),
                metrics.clone(),
                stop.clone(),
            );
            let s = tokio::spawn({
                let f = run_stitcher(
                    config.clone(),
                    parts.codec.clone(),
                    identity,
                    metrics.clone(),
                    stop.clone(),
                );
                async move {
                    if let Err(e) = f.await {
                        eprintln!("stitcher failed: {e}");
                    }
                }
            });
            let e = tokio::spawn({
                let f = run_engine(
                    config.clone(),
                    parts.codec.clone(),
                    state,
                    catalog,
                    metrics,
                    stop.clone(),
                );
                async move {
                    if let (Err(e), ()) = tokio::join!(f, watching) {
                        eprintln!("engine failed: {e}");
                    }
                }
            });
            let topic = config.topics.customer_events.clone();
            // Every event reaches the engine (plus one record per merge; the engine drops
            // duplicates), or the dead-letter topic.
            let progress = {
                let (registry, topic) = (registry.clone(), topic.clone());
                move || {
                    // One gather a poll: a gather copies every series of the registry.
                    let families = registry.gather();
                    let sum = |name, label| counter_sum(&families, name, label);
                    let engine = sum("switchboard_events_consumed_total", Some(&topic));
                    let merges = sum("switchboard_identity_merges_total", None);
                    let dropped = sum("switchboard_dead_letters_total", None);
                    (engine - merges + dropped).max(0.0) as u64
                }
            };
            let batches = {
                let registry = registry.clone();
                move || batch_totals(&registry)
            };
            let produced = {
                let registry = registry.clone();
                move || {
                    let families = registry.gather();
                    counter_sum(&families, "switchboard_journey_transitions_total", None)
                        + counter_sum(&families, "switchboard_commands_total", None)
                }
            };
            // The stitcher took its first event: all it consumed is more than the engine did.
            let started = move || {
                let families = registry.gather();
                let consumed =
                    |label| counter_sum(&families, "switchboard_events_consumed_total", label);
                consumed(None) > consumed(Some(&topic))
            };
            Ok(Running {
                stop,
                tasks: vec![s, e],
                progress: Box::new(progress),
                started: Box::new(started),
                batches: Box::new(batches),
                produced: Box::new(produced),
            })
        }
    }
}

/// The sum of a counter's series; only those with a label of value `label` when given.
fn counter_sum(families: &[MetricFamily], name: &str, label: Option<&str>) -> f64 {
    families
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| label.is_none_or(|l| m.get_label().iter().any(|x| x.value() == l)))
        .map(|m| m.get_counter().value())
        .sum()
}

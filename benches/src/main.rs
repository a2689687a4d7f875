//! The load harness: Switchboard against a baseline Kafka → Redis → Kafka pipeline, and
//! against the floor (Switchboard's Kafka and Redis traffic with nothing in between), on the
//! same tansu broker and redis-server, in one run.
//!
//! For each system: the sustained rate draining a backlog (events/s, CPU seconds per million
//! events over this process, tansu and Redis), then latency from produce to output consumed
//! at 10 %, 50 % and 90 % of that rate (p50, p99, p999). Prints a Markdown report and writes
//! it with SVG plots into `benches/results/`.
//!
//! `cargo run --release -p switchboard-bench -- [backlog events] [seconds per rate]`

mod baseline;
mod batches;
mod cpu;
mod plot;
mod scale;
mod stage;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batches::{Batches, batch_totals};
use clap::Parser;
use futures::{FutureExt, StreamExt};
use prometheus::proto::MetricFamily;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use switchboard_codec::{ChannelEvent, Codec, Framing, LocalSchemas, SendCommand};
use switchboard_config::Config;
use switchboard_pipeline::Metrics;
use switchboard_pipeline::catalog::{CatalogSource, watch_catalog};
use switchboard_pipeline::generate::event;
use switchboard_pipeline::output::{OutRecord, produce_all};
use switchboard_pipeline::services::{producer, run_engine, run_stitcher};
use switchboard_pipeline::state::RedisStateStore;
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_test_support::{
    MockKafka, RedisServer, TansuBroker, isolated_config, mock_cluster, name_topics, unique,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FRACTIONS: [f64; 3] = [0.1, 0.5, 0.9];

/// Measures the baseline, Switchboard and the floor on one tansu and one redis-server, and
/// writes `benches/results/`.
#[derive(Debug, Parser)]
struct Args {
    /// Events in the backlog each system drains (sustained throughput).
    #[arg(default_value_t = 50_000)]
    events: u64,
    /// Seconds at each offered rate (latency).
    #[arg(default_value_t = 10)]
    secs: u64,
    /// Backlog drains per system, the systems taking turns; the median drain is
    /// reported (one drain of this machine varies by up to 2x from run to run).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measure one system only (for profiling; the report is not written).
    #[arg(long, value_enum)]
    only: Option<System>,
    /// Skip the latency phases.
    #[arg(long)]
    no_latency: bool,
    /// Offer fractions of this rate instead of a measured maximum, without draining (for
    /// profiling at a given load; the report is not written).
    #[arg(long)]
    max_rate: Option<f64>,
    /// Run on librdkafka's in-process mock cluster instead of tansu (its thread's CPU is
    /// the broker's; the report goes to `benches/results/mock/`).
    #[arg(long)]
    mock_broker: bool,
    /// Measure scale instead (timers, memory per profile, population) into
    /// `benches/results/scale.md`.
    #[arg(long)]
    scale: bool,
    /// Scale: pending timers to fill and fire.
    #[arg(long, default_value_t = 1_000_000)]
    timers: u64,
    /// Scale: customers with two journeys in flight, for memory per profile.
    #[arg(long, default_value_t = 20_000)]
    profiles: u64,
    /// Scale: populations of known customers to measure an event against.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    population: Vec<u64>,
    /// Scale: events measured at each population.
    #[arg(long, default_value_t = 50_000)]
    population_events: u64,
    /// Producers' `linger.ms` for both systems (Switchboard's default when not given).
    #[arg(long)]
    linger_ms: Option<u32>,
    /// Consumers' `fetch.wait.max.ms` for both systems and the output reader: how long the
    /// broker may hold a fetch with nothing to return (the mock cluster holds it that long
    /// even when a record arrives meanwhile).
    #[arg(long, default_value_t = 10)]
    fetch_wait_ms: u32,
    /// Partitions of each channel topic (`events.<channel>`, what the stitcher and the
    /// baseline consume; every other topic has 6): the stitcher runs a task per partition,
    /// and fewer partitions make its batches larger at the same rate.
    #[arg(long, default_value_t = PARTITIONS)]
    channel_partitions: i32,
    /// Seconds each offered rate runs before its measured seconds, unmeasured: the first
    /// events after a start wait for what starting leaves to do (first requests to new
    /// topics, connections, a backlog that builds meanwhile).
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// Messages the floor's engine stage produces per event; by default what Switchboard's
    /// engine produced per event (journey transitions and commands) in its latest drain of
    /// the same run.
    #[arg(long)]
    floor_produced: Option<f64>,
    /// Before each measured drain, drain this many backlogs of the same customers
    /// unmeasured (each about five events a customer), so that the measured events are of
    /// returning customers (identifiers known, records stored) as in a deployment that has
    /// been running; 0: every customer is new.
    #[arg(long, default_value_t = 0)]
    returning: u64,
    /// Where the report and its charts go (default `benches/results/`, or
    /// `benches/results/mock/` with `--mock-broker`).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// Partitions of every topic the harness creates (channel topics: `--channel-partitions`).
const PARTITIONS: i32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum System {
    Baseline,
    Switchboard,
    Floor,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Switchboard => "switchboard",
            Self::Floor => "floor",
        }
    }
}

/// The broker every phase shares.
enum Broker {
    Tansu(TansuBroker),
    /// librdkafka's in-process mock cluster: no fetch floor, its thread's CPU counted apart
    /// from the pipeline's; for what the pipeline's own latency is.
    Mock(MockKafka),
}

/// The mock cluster's broker thread (librdkafka names it so).
const MOCK_THREAD: &str = "rdk:mock";

impl Broker {
    /// Its name in reports.
    fn name(&self) -> &'static str {
        match self {
            Self::Tansu(_) => "tansu",
            Self::Mock(_) => "mock cluster",
        }
    }

    fn bootstrap(&self) -> String {
        match self {
            Self::Tansu(t) => t.bootstrap(),
            Self::Mock(m) => m.bootstrap(),
        }
    }
}

/// The broker and Redis every phase shares.
struct Parts {
    broker: Broker,
    redis: RedisServer,
    codec: Arc<Codec<LocalSchemas>>,
    linger_ms: Option<u32>,
    fetch_wait_ms: u32,
    channel_partitions: i32,
    warmup: Duration,
    /// Backlogs of the same customers drained before each measured one (`--returning`).
    returning: u64,
}

impl Parts {
    /// A configuration with topics, group and keys of its own.
    async fn config(&self) -> Result<Arc<Config>, Error> {
        self.config_named(None).await
    }

    /// The same, with topics under `run.` when given (short names, as in production, for
    /// measurements that store topic names; a name is used once per broker).
    async fn config_named(&self, run: Option<&str>) -> Result<Arc<Config>, Error> {
        let mut c = isolated_config(self.broker.bootstrap(), self.redis.url(), PARTITIONS);
        if let Some(run) = run {
            name_topics(&mut c.topics, run);
        }
        let props = &mut c.kafka.properties;
        props.insert("fetch.wait.max.ms".into(), self.fetch_wait_ms.to_string());
        if let Some(linger) = self.linger_ms {
            props.insert("linger.ms".into(), linger.to_string());
        }
        let run = c
            .topics
            .events_prefix
            .trim_end_matches(".events.")
            .to_owned();
        let mut plan = switchboard_kafka::topic_plan(&c.topics);
        let out = plan.first().cloned().ok_or("the topic plan is empty")?;
        for system in [System::Baseline, System::Floor] {
            plan.push(switchboard_kafka::TopicSpec {
                name: format!("{run}.{}.out", system.name()),
                ..out.clone()
            });
        }
        for t in &mut plan {
            if t.name.starts_with(&c.topics.events_prefix) {
                t.partitions = self.channel_partitions;
            }
        }
        match &self.broker {
            Broker::Tansu(_) => {
                switchboard_kafka::create_topics(&c.kafka, &plan).await?;
            }
            Broker::Mock(m) => {
                for t in &plan {
                    m.create_topic(&t.name, t.partitions);
                }
            }
        }
        Ok(Arc::new(c))
    }

    /// CPU seconds so far of the pipeline under test, the broker and Redis. The mock
    /// cluster runs in this process: its thread's time is the broker's.
    fn cpu(&self) -> [f64; 3] {
        let process = cpu::seconds("self");
        let (pipeline, broker) = match &self.broker {
            Broker::Tansu(t) => (process, cpu::seconds(&t.pid().to_string())),
            Broker::Mock(_) => {
                let mock = cpu::threads_named(MOCK_THREAD);
                (process - mock, mock)
            }
        };
        [
            pipeline,
            broker,
            cpu::seconds(&self.redis.pid().to_string()),
        ]
    }
}

/// The topic the baseline or the floor produces the messages the latency reader reads to.
fn output(config: &Config, system: System) -> String {
    config
        .topics
        .events_prefix
        .replace(".events.", &format!(".{}.out", system.name()))
}

fn record(
    codec: &Codec<LocalSchemas>,
    config: &Config,
    e: &ChannelEvent,
) -> Result<OutRecord, Error> {
    Ok(OutRecord {
        topic: format!("{}{}", config.topics.events_prefix, e.channel),
        key: e.identifiers.first().map(|i| i.value.clone().into_bytes()),
        payload: codec.encode(e, Framing::Confluent)?,
        headers: Vec::new(),
    })
}

/// A running system and how many input events it has finished.
struct Running {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    progress: Box<dyn Fn() -> u64 + Send>,
    /// The first event was taken from the backlog (the consumer group has formed).
    started: Box<dyn Fn() -> bool + Send>,
    /// Partition batches so far, per service (Switchboard's only).
    batches: Box<dyn Fn() -> Vec<Batches> + Send>,
    /// Messages Switchboard's engine produced so far (journey transitions and commands).
    produced: Box<dyn Fn() -> f64 + Send>,
}

impl Running {
    /// Waits until `n` events are through (at most `limit`): seconds from the first event
    /// taken to the last through, and from the start to the first taken. The clock starts at
    /// the first event taken: forming a consumer group takes 0.5 to 3 s on tansu, which once
    /// decided most of the baseline's 1 s drain.
    async fn drain(&self, n: u64, limit: Duration) -> Result<(f64, f64), Error> {
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
    async fn settled_produced(&self) -> f64 {
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

    async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    }
}

/// Starts `system`; the floor's engine stage produces `floor_produced` messages per event.
async fn start(
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
            let catalog = watch_catalog(
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
                    if let Err(e) = f.await {
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

fn events(n: u64, seed: u64) -> Vec<ChannelEvent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let customers = u32::try_from(n / 5).unwrap_or(u32::MAX).max(1_000);
    (0..n).map(|i| event(&mut rng, customers, i)).collect()
}

/// What one drain of a backlog measured.
#[derive(Debug, Clone, Copy)]
struct Drain {
    /// Events per second.
    rate: f64,
    /// CPU seconds per million events of the pipeline, tansu and Redis.
    cpu: [f64; 3],
    /// Messages Switchboard's engine produced per event (0 for the others).
    produced: f64,
}

/// Produces `n` generated events (of `n / 5` customers, drawn with `seed`) to the channel
/// topics.
async fn backlog(parts: &Parts, config: &Config, n: u64, seed: u64) -> Result<(), Error> {
    let records: Vec<OutRecord> = events(n, seed)
        .iter()
        .map(|e| record(&parts.codec, config, e))
        .collect::<Result<_, _>>()?;
    if matches!(parts.broker, Broker::Mock(_)) {
        fits_mock_partitions(&records, parts.channel_partitions)?;
    }
    let p = producer(config)?;
    for chunk in records.chunks(10_000) {
        produce_all(&p, chunk).await?;
    }
    Ok(())
}

/// What librdkafka's mock cluster keeps of a partition (`rdkafka_mock.c`: `max_size`,
/// `max_cnt`): it drops the oldest message sets beyond either, so a bigger backlog would lose
/// its first events before any system read them, and the drain would never end.
const MOCK_PARTITION_BYTES: usize = 5 * 1024 * 1024;
const MOCK_PARTITION_RECORDS: usize = 100_000;

/// Refuses a backlog that the mock cluster would not keep whole: the biggest channel topic's
/// share per partition, with a tenth to spare for keys landing unevenly.
fn fits_mock_partitions(records: &[OutRecord], partitions: i32) -> Result<(), Error> {
    let mut per_topic: HashMap<&str, (usize, usize)> = HashMap::new();
    for r in records {
        let (count, bytes) = per_topic.entry(&r.topic).or_default();
        *count += 1;
        *bytes += r.payload.len() + r.key.as_ref().map_or(0, Vec::len) + 20;
    }
    let partitions = usize::try_from(partitions.max(1)).unwrap_or(1);
    for (topic, (count, bytes)) in per_topic {
        let (count, bytes) = (count * 11 / 10 / partitions, bytes * 11 / 10 / partitions);
        if count > MOCK_PARTITION_RECORDS || bytes > MOCK_PARTITION_BYTES {
            return Err(format!(
                "the backlog is too big for the mock cluster: {topic} would hold about {count} \
                 records and {} MB a partition, and it keeps {MOCK_PARTITION_RECORDS} and {} MB \
                 (the oldest are dropped); give a smaller backlog or more --channel-partitions",
                bytes / (1024 * 1024),
                MOCK_PARTITION_BYTES / (1024 * 1024),
            )
            .into());
        }
    }
    Ok(())
}

/// Drains a backlog of `n` events.
async fn throughput(
    system: System,
    parts: &Parts,
    n: u64,
    floor_produced: Option<f64>,
) -> Result<Drain, Error> {
    let config = parts.config().await?;
    if parts.returning > 0 {
        // The same customers' other events (other seeds), drained by the same consumer
        // groups and state first; the measured drain continues from their offsets.
        for seed in 2..2 + parts.returning {
            backlog(parts, &config, n, seed).await?;
        }
        let first = start(system, parts, &config, floor_produced).await?;
        first
            .drain(n * parts.returning, Duration::from_secs(1800))
            .await?;
        first.stop().await;
    }
    backlog(parts, &config, n, 1).await?;
    let cpu0 = parts.cpu();
    let running = start(system, parts, &config, floor_produced).await?;
    let (secs, joined) = running.drain(n, Duration::from_secs(900)).await?;
    let cpu1 = parts.cpu();
    println!(
        "{}: first event taken {joined:.2} s after the start, {n} drained {secs:.2} s later",
        system.name(),
    );
    let produced = running.settled_produced().await / n as f64;
    running.stop().await;
    let mut cpu = [0.0; 3];
    for ((out, after), before) in cpu.iter_mut().zip(cpu1).zip(cpu0) {
        *out = (after - before) / n as f64 * 1e6;
    }
    Ok(Drain {
        rate: n as f64 / secs,
        cpu,
        produced,
    })
}

/// Percentiles (p50, p99, p999) in milliseconds.
fn percentiles(mut ms: Vec<f64>) -> (f64, f64, f64) {
    if ms.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    (at(0.5), at(0.99), at(0.999))
}

struct LatencyRow {
    offered: f64,
    achieved: f64,
    samples: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    /// Switchboard's partition batches meanwhile, per service.
    batches: String,
    /// CPU cores busy while offering: the pipeline, tansu and Redis.
    busy: [f64; 3],
}

/// Produces at each offered rate for `secs` seconds and measures produce → output consumed.
async fn latency(
    system: System,
    parts: &Parts,
    max: f64,
    secs: u64,
    floor_produced: Option<f64>,
) -> Result<Vec<LatencyRow>, Error> {
    let mut rows = Vec::new();
    for (i, fraction) in FRACTIONS.iter().enumerate() {
        let rate = max * fraction;
        rows.push(latency_at(system, parts, rate, secs, 10 + i as u64, floor_produced).await?);
    }
    Ok(rows)
}

/// Produces at `rate` for `secs` seconds and measures produce → output consumed, on topics of
/// its own: the mock cluster finds a fetch's offset by scanning every message set of the
/// partition (`rd_kafka_mock_msgset_find`, "FIXME: Maintain an index"), which on a log
/// written in small batches for a minute took 39 % of the process's CPU.
async fn latency_at(
    system: System,
    parts: &Parts,
    rate: f64,
    secs: u64,
    seed: u64,
    floor_produced: Option<f64>,
) -> Result<LatencyRow, Error> {
    let config = parts.config().await?;
    let running = start(system, parts, &config, floor_produced).await?;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen: Arc<Mutex<Vec<f64>>> = Arc::default();
    let outputs: Vec<String> = match system {
        System::Baseline | System::Floor => vec![output(&config, system)],
        System::Switchboard => config
            .topics
            .channels
            .iter()
            .map(|c| format!("{}{c}", config.topics.commands_prefix))
            .collect(),
    };
    let reader: StreamConsumer = switchboard_kafka::client_config(&config.kafka)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", parts.fetch_wait_ms.to_string())
        .create()?;
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    reader.subscribe(&outputs)?;
    let reader_stop = CancellationToken::new();
    let reader_task = tokio::spawn({
        let (sent, seen, codec, stop) = (
            sent.clone(),
            seen.clone(),
            parts.codec.clone(),
            reader_stop.clone(),
        );
        async move {
            let mut stream = reader.stream();
            loop {
                let m = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = stream.next() => m,
                };
                let Some(Ok(m)) = m else { continue };
                let at = Instant::now();
                let payload = m.payload().unwrap_or_default();
                let id = match system {
                    System::Baseline | System::Floor => codec
                        .decode::<ChannelEvent>(payload)
                        .await
                        .map(|e| e.event_id),
                    // A command names its trigger `event:<event_id>`.
                    System::Switchboard => codec.decode::<SendCommand>(payload).await.map(|c| {
                        c.reason
                            .trigger
                            .strip_prefix("event:")
                            .unwrap_or_default()
                            .to_owned()
                    }),
                };
                let Ok(id) = id else { continue };
                let start = sent.lock().ok().and_then(|s| s.get(&id).copied());
                if let (Some(start), Ok(mut seen)) = (start, seen.lock()) {
                    seen.push(at.duration_since(start).as_secs_f64() * 1000.0);
                }
            }
        }
    });
    // Let the group settle before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = producer(&config)?;
    let warmup = parts.warmup.as_secs_f64();
    let pool = events((rate * (warmup + secs as f64)) as u64 + 1, seed);
    // What the measured seconds start from: events taken, batches, CPU, time.
    let mut measured: Option<(usize, Vec<Batches>, [f64; 3], Instant)> = None;
    let t0 = Instant::now();
    let mut next = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while t0.elapsed() < parts.warmup + Duration::from_secs(secs) && next < pool.len() {
        tick.tick().await;
        if measured.is_none() && t0.elapsed() >= parts.warmup {
            measured = Some((next, (running.batches)(), parts.cpu(), Instant::now()));
        }
        let due = ((t0.elapsed().as_secs_f64() * rate) as usize).min(pool.len());
        let fresh = pool.get(next..due).unwrap_or_default();
        let batch: Vec<OutRecord> = fresh
            .iter()
            .map(|e| record(&parts.codec, &config, e))
            .collect::<Result<_, _>>()?;
        // Only events offered in the measured seconds are timed.
        if measured.is_some()
            && let Ok(mut s) = sent.lock()
        {
            let now = Instant::now();
            for e in fresh {
                s.insert(e.event_id.clone(), now);
            }
        }
        next = due;
        let p = p.clone();
        tokio::spawn(async move { produce_all(&p, &batch).await });
    }
    let Some((first, batches0, cpu0, t1)) = measured else {
        return Err("the offered rate ended before its measured seconds".into());
    };
    let secs_offered = t1.elapsed().as_secs_f64();
    let achieved = (next - first) as f64 / secs_offered;
    let mut busy = [0.0; 3];
    for ((b, after), before) in busy.iter_mut().zip(parts.cpu()).zip(cpu0) {
        *b = (after - before) / secs_offered;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let batches = Batches::describe(&batches0, &(running.batches)());
    let samples = seen
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    let (p50, p99, p999) = percentiles(samples.clone());
    let row = LatencyRow {
        offered: rate,
        achieved,
        samples: samples.len(),
        p50,
        p99,
        p999,
        batches,
        busy,
    };
    reader_stop.cancel();
    let _ = reader_task.await;
    running.stop().await;
    Ok(row)
}

struct Report {
    system: System,
    /// The median drain's.
    rate: f64,
    /// CPU seconds per million events of the median drain: the pipeline, tansu, Redis.
    cpu: [f64; 3],
    /// Every drain's events/s, in the order run.
    rounds: Vec<f64>,
    latency: Vec<LatencyRow>,
}

/// The report; `floor_produced` is the floor's messages per event, when it ran.
fn markdown(
    reports: &[Report],
    backlog: u64,
    secs: u64,
    parts: &Parts,
    floor_produced: Option<f64>,
) -> String {
    let mut md = String::new();
    let broker = match &parts.broker {
        Broker::Tansu(_) => "tansu (memory)",
        Broker::Mock(_) => {
            "librdkafka's mock cluster in the pipeline's process (its thread's CPU counted as the broker's)"
        }
    };
    let linger = parts
        .linger_ms
        .map_or("Switchboard's default".to_owned(), |l| l.to_string());
    md.push_str(&format!(
        "Backlog {backlog} events of {}; {secs} s measured per offered rate, after {} s offered unmeasured; \
         {broker} and redis-server on this machine; producers' `linger.ms` {linger}, consumers' \
         `fetch.wait.max.ms` {}, {} partitions per channel topic.\n\n",
        if parts.returning > 0 {
            format!(
                "returning customers (each drain after {} unmeasured backlogs of the same customers: identifiers known, records stored)",
                parts.returning
            )
        } else {
            "new customers".to_owned()
        },
        parts.warmup.as_secs(),
        parts.fetch_wait_ms,
        parts.channel_partitions
    ));
    md.push_str(&format!("| system | sustained events/s (median) | every drain | CPU s per 1 M events: pipeline | {} | Redis | total |\n|---|---:|---|---:|---:|---:|---:|\n", parts.broker.name()));
    for r in reports {
        let rounds: Vec<String> = r.rounds.iter().map(|x| format!("{x:.0}")).collect();
        md.push_str(&format!(
            "| {} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            r.system.name(),
            r.rate,
            rounds.join(" / "),
            r.cpu[0],
            r.cpu[1],
            r.cpu[2],
            r.cpu.iter().sum::<f64>()
        ));
    }
    let find = |system| reports.iter().find(|r| r.system == system);
    md.push('\n');
    for (a, b) in [
        (System::Switchboard, System::Baseline),
        (System::Floor, System::Baseline),
        (System::Switchboard, System::Floor),
    ] {
        if let (Some(a), Some(b)) = (find(a), find(b)) {
            md.push_str(&format!(
                "- Ratio {} / {}: **{:.2}** (throughput), {:.2} (CPU per event).\n",
                a.system.name(),
                b.system.name(),
                a.rate / b.rate,
                a.cpu.iter().sum::<f64>() / b.cpu.iter().sum::<f64>()
            ));
        }
    }
    if let (Some(_), Some(produced)) = (find(System::Floor), floor_produced) {
        md.push_str(&format!(
            "\nThe floor carries Switchboard's traffic with nothing in between: two hops, a \
             Redis GET per event in the first, a GET and then a SET per event in the second, \
             and {:.2} messages produced per event by the second (what Switchboard's engine \
             produced per event in its drain), one of them to the output read for latency.\n",
            produced
        ));
    }
    md.push_str(&format!("\n| system | offered events/s | achieved | samples | p50 ms | p99 ms | p999 ms | cores busy: pipeline / {} / Redis |\n|---|---:|---:|---:|---:|---:|---:|---|\n", parts.broker.name()));
    for r in reports {
        for l in &r.latency {
            md.push_str(&format!(
                "| {} | {:.0} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {:.2} / {:.2} / {:.2} |\n",
                r.system.name(),
                l.offered,
                l.achieved,
                l.samples,
                l.p50,
                l.p99,
                l.p999,
                l.busy[0],
                l.busy[1],
                l.busy[2]
            ));
        }
    }
    md.push_str("\nSwitchboard's partition batches while offering (mean records and time from taken to durable):\n\n");
    for r in reports.iter().filter(|r| r.system == System::Switchboard) {
        for l in &r.latency {
            md.push_str(&format!("- {:.0} events/s: {}\n", l.offered, l.batches));
        }
    }
    md.push_str(CHARTS);
    md
}

/// The charts [`plots`] writes beside the report.
const CHARTS: &str =
    "\n![sustained throughput](throughput.png)\n\n![latency against offered load](latency.png)\n";

/// `latency.png` (percentiles against offered load) and `throughput.png` (each system's
/// sustained rate) in `dir`.
fn plots(reports: &[Report], dir: &Path) -> Result<(), Error> {
    let colour = |s: System| match s {
        System::Baseline => plotters::style::RGBColor(128, 128, 128),
        System::Switchboard => plotters::style::RGBColor(31, 119, 180),
        System::Floor => plotters::style::RGBColor(255, 127, 14),
    };
    let mut latency = Vec::new();
    for r in reports {
        for (name, dashed, pick) in [
            (
                "p50",
                true,
                (|l: &LatencyRow| l.p50) as fn(&LatencyRow) -> f64,
            ),
            ("p99", false, |l: &LatencyRow| l.p99),
        ] {
            latency.push(plot::Series {
                name: format!("{} {name}", r.system.name()),
                colour: colour(r.system),
                dashed,
                points: r.latency.iter().map(|l| (l.offered, pick(l))).collect(),
            });
        }
    }
    let throughput: Vec<plot::Bar> = reports
        .iter()
        .map(|r| plot::Bar {
            name: r.system.name().to_owned(),
            colour: colour(r.system),
            value: r.rate,
        })
        .collect();
    plot::log_chart(
        &dir.join("latency.png"),
        "Latency, produce to output consumed",
        ("events/s offered", "ms (log scale)"),
        &latency,
    )?;
    plot::bar_chart(
        &dir.join("throughput.png"),
        "Sustained throughput, same broker and Redis",
        "events/s (backlog drained)",
        &throughput,
    )
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let parts = Parts {
        broker: if args.mock_broker {
            Broker::Mock(mock_cluster(1))
        } else {
            Broker::Tansu(TansuBroker::start())
        },
        redis: RedisServer::start(),
        codec: Arc::new(Codec::new(LocalSchemas::embedded()?).await?),
        linger_ms: args.linger_ms,
        fetch_wait_ms: args.fetch_wait_ms,
        channel_partitions: args.channel_partitions,
        warmup: Duration::from_secs(args.warmup_secs),
        returning: args.returning,
    };
    if args.scale {
        return scale_report(&parts, &args).await;
    }
    let mut reports = Vec::new();
    let systems = match args.only {
        Some(system) => vec![system],
        None => vec![System::Baseline, System::Switchboard, System::Floor],
    };
    // The floor's messages per event: given, or Switchboard's in its latest drain.
    let mut floor_produced = args.floor_produced;
    let mut drains: Vec<Vec<Drain>> = vec![Vec::new(); systems.len()];
    if let Some(rate) = args.max_rate {
        for (system, drains) in systems.iter().zip(&mut drains) {
            println!("{}: {rate:.0} events/s given as the maximum", system.name());
            drains.push(Drain {
                rate,
                cpu: [f64::NAN; 3],
                produced: f64::NAN,
            });
        }
    }
    for round in 0..args.rounds.max(1) * usize::from(args.max_rate.is_none()) {
        for (system, drains) in systems.iter().zip(&mut drains) {
            let d = throughput(*system, &parts, args.events, floor_produced).await?;
            println!(
                "{} (drain {}): {:.0} events/s, CPU s per 1 M events: pipeline {:.1}, {} {:.1}, Redis {:.1}",
                system.name(),
                round + 1,
                d.rate,
                d.cpu[0],
                parts.broker.name(),
                d.cpu[1],
                d.cpu[2]
            );
            if *system == System::Switchboard && args.floor_produced.is_none() {
                println!(
                    "switchboard: {:.2} messages produced per event by the engine",
                    d.produced
                );
                floor_produced = Some(d.produced);
            }
            drains.push(d);
        }
    }
    for (system, drains) in systems.into_iter().zip(drains) {
        let rounds: Vec<f64> = drains.iter().map(|d| d.rate).collect();
        let mut sorted = drains;
        sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let Some(&Drain { rate, cpu, .. }) = sorted.get(sorted.len() / 2) else {
            continue;
        };
        println!("{}: {rate:.0} events/s sustained (median)", system.name());
        let latency = if args.no_latency {
            Vec::new()
        } else {
            latency(system, &parts, rate, args.secs, floor_produced).await?
        };
        for l in &latency {
            println!(
                "{}: offered {:.0}/s achieved {:.0}/s: p50 {:.1} ms, p99 {:.1} ms, p999 {:.1} ms ({} samples); cores busy: pipeline {:.2}, {} {:.2}, Redis {:.2}; {}",
                system.name(),
                l.offered,
                l.achieved,
                l.p50,
                l.p99,
                l.p999,
                l.samples,
                l.busy[0],
                parts.broker.name(),
                l.busy[1],
                l.busy[2],
                l.batches
            );
        }
        reports.push(Report {
            system,
            rate,
            cpu,
            rounds,
            latency,
        });
    }
    if args.only.is_some() || args.no_latency || args.max_rate.is_some() {
        return Ok(()); // a partial run does not replace the report
    }
    let md = markdown(&reports, args.events, args.secs, &parts, floor_produced);
    println!("\n{md}");
    let dir = args.out.clone().unwrap_or_else(|| {
        let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        if args.mock_broker {
            results.join("mock")
        } else {
            results
        }
    });
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("report.md"), &md)?;
    plots(&reports, &dir)?;
    println!(
        "written: {}/report.md, latency.png and throughput.png",
        dir.display()
    );
    Ok(())
}

async fn scale_report(parts: &Parts, args: &Args) -> Result<(), Error> {
    let mut md = String::from("Scale, on tansu (memory) and redis-server on this machine.\n\n");
    let m = scale::memory_per_profile(parts, args.profiles).await?;
    println!(
        "memory: {:.0} bytes per profile ({} customers)",
        m.per_profile, m.customers
    );
    md.push_str(&format!(
        "### Redis memory per profile, two journeys in flight\n\n{} customers, each with a cart (abandoned cart waiting) and a product view (browse test waiting): **{:.0} bytes per profile** (`used_memory` before and after). By kind of key (`MEMORY USAGE` of every key):\n\n| keys | bytes per profile |\n|---|---:|\n",
        m.customers, m.per_profile
    ));
    for (kind, bytes) in &m.by_kind {
        md.push_str(&format!("| {kind} | {bytes:.0} |\n"));
    }
    save_scale(&md)?;
    let t = scale::timers(parts, args.timers).await?;
    println!(
        "timers: {} filled in {:.1} s, {:.0} bytes each, fired in {:.1} s ({:.0}/s), longest Redis call {} µs ({})",
        t.count,
        t.fill_secs,
        t.bytes_per_timer,
        t.fire_secs,
        t.count as f64 / t.fire_secs,
        t.longest_call_us,
        t.longest_call
    );
    md.push_str(&format!(
        "\n### Pending timers\n\n| timers | Redis bytes per timer | Redis memory | fired through the engine's tick in | fire rate | longest Redis call while firing |\n|---:|---:|---:|---:|---:|---:|\n| {} | {:.0} | {:.0} MiB | {:.1} s | {:.0}/s | {} µs ({}) |\n\nFired back to back, every partition at once; the engine ticks every 200 ms and fires at most 500 timers per tick and partition, so a running engine fires at most 2 500/s per partition.\n",
        t.count,
        t.bytes_per_timer,
        t.bytes_per_timer * t.count as f64 / 1_048_576.0,
        t.fire_secs,
        t.count as f64 / t.fire_secs,
        t.longest_call_us,
        if t.longest_call.is_empty() { "none over 100 µs" } else { &t.longest_call }
    ));
    md.push_str("\n### Cost per event as the population grows\n\nThe population's identity graph (7 identifiers a customer) is written first by the stitcher's own algorithm straight into Redis (not measured); then generated events of those customers go through Kafka and the pipeline, measured. Their engine records are created by their first measured event.\n\n| known profiles | events | events/s | CPU s per 1 M events: pipeline | tansu | Redis |\n|---:|---:|---:|---:|---:|---:|\n");
    for &n in &args.population {
        let p = scale::population(parts, n, args.population_events).await?;
        println!(
            "population {}: {:.0} events/s, CPU per 1 M events: pipeline {:.1}, tansu {:.1}, Redis {:.1}",
            p.population, p.rate, p.cpu[0], p.cpu[1], p.cpu[2]
        );
        md.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} |\n",
            p.population, p.events, p.rate, p.cpu[0], p.cpu[1], p.cpu[2]
        ));
        save_scale(&md)?;
    }
    save_scale(&md)?;
    println!("\n{md}\nwritten: benches/results/scale.md");
    Ok(())
}

/// Writes what the scale run measured so far to `benches/results/scale.md`.
fn save_scale(md: &str) -> Result<(), Error> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("scale.md"), md)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize, bytes: usize) -> Vec<OutRecord> {
        (0..n)
            .map(|_| OutRecord {
                topic: "t.events.web".into(),
                key: None,
                payload: vec![0; bytes],
                headers: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_backlog_the_mock_cluster_would_truncate_is_refused() {
        // 6 partitions of 400 000 records of 100 bytes: 66 667 records, 7.6 MB a partition.
        let err = fits_mock_partitions(&records(400_000, 100), 6).unwrap_err();
        assert!(err.to_string().contains("t.events.web"), "{err}");
        // The same over 12 partitions keeps 3.8 MB each; 650 000 tiny records are too many.
        assert!(fits_mock_partitions(&records(400_000, 100), 12).is_ok());
        assert!(fits_mock_partitions(&records(650_000, 1), 6).is_err());
    }
}

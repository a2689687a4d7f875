//! Scale: pending timers in Redis (memory, fire rate, the longest Redis call while firing)
//! and Redis memory per profile with two journeys in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_codec::{AttrValue, ChannelEvent, Identifier};
use switchboard_config::Config;
use switchboard_engine::{Timers as _, timer_member};
use switchboard_kafka::Publisher;
use switchboard_kafka::{Worker, Workers};
use switchboard_redis::RedisStateStore;
use switchboard_redis::connect;
use switchboard_services::Metrics;
use switchboard_services::catalog::CatalogSource;
use switchboard_services::engine::{Engine, EngineWorkers, Winning};
use switchboard_services::services::producer;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::drain::record;
use crate::parts::{Parts, System};
use crate::systems::start;

/// What filling and firing `count` timers cost.
pub struct Timers {
    pub count: u64,
    pub bytes_per_timer: f64,
    pub fill_secs: f64,
    pub fire_secs: f64,
    /// Slowest Redis command while firing, from the slow log (0 when none took 100 µs).
    pub longest_call_us: i64,
    pub longest_call: String,
}

async fn used_memory(redis: &mut redis::aio::MultiplexedConnection) -> Result<i64, Error> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(redis).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no used_memory in INFO memory".into())
}

/// Adds `count` due timers over the partitions' shards (as the engine writes them), then
/// fires them all through the engine's own tick, every partition at once, back to back.
pub async fn timers(parts: &Parts, count: u64) -> Result<Timers, Error> {
    let config = parts.config().await?;
    let mut raw = parts
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await?;
    let store = Arc::new(RedisStateStore::new(
        connect(&config.redis).await?,
        config.redis.key_prefix.clone(),
    ));
    let partitions = config.topics.partitions;
    let before = used_memory(&mut raw).await?;
    let t0 = Instant::now();
    let now = switchboard_services::now_ms();
    let mut i = 0u64;
    while i < count {
        let mut pipe = redis::pipe();
        for n in i..(i + 10_000).min(count) {
            let partition = i32::try_from(n % partitions as u64).unwrap_or(0);
            let due = now - 60_000 + (n % 60_000) as i64;
            pipe.zadd(
                store.timers_key(partition),
                timer_member(&format!("scale-{n:010}"), "abandoned-cart"),
                due,
            )
            .ignore();
        }
        pipe.query_async::<()>(&mut raw).await?;
        i += 10_000;
    }
    let fill_secs = t0.elapsed().as_secs_f64();
    let after = used_memory(&mut raw).await?;

    let workers = engine_workers(parts, &config, store.clone()).await?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(100)
        .query_async::<()>(&mut raw)
        .await?;
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async::<()>(&mut raw)
        .await?;
    let t1 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for partition in 0..partitions {
        let (workers, store, topic) = (
            workers.clone(),
            store.clone(),
            config.topics.customer_events.clone(),
        );
        let publisher = Publisher::Plain(producer(&config)?);
        tasks.spawn(async move {
            let stop = CancellationToken::new();
            let Ok(mut worker) = workers.start(&topic, partition, publisher, stop).await else {
                return;
            };
            while store.pending_timers(partition).await.unwrap_or(0) > 0 {
                if worker.tick().await.is_err() {
                    return;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let fire_secs = t1.elapsed().as_secs_f64();
    let (longest_call_us, longest_call) = slowest(&mut raw).await?;
    Ok(Timers {
        count,
        bytes_per_timer: (after - before) as f64 / count as f64,
        fill_secs,
        fire_secs,
        longest_call_us,
        longest_call,
    })
}

/// The slowest entry of the slow log: microseconds and the command name.
async fn slowest(raw: &mut redis::aio::MultiplexedConnection) -> Result<(i64, String), Error> {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(raw)
        .await?;
    let mut worst = (0, String::new());
    for e in entries {
        let redis::Value::Array(fields) = e else {
            continue;
        };
        let micros = match fields.get(2) {
            Some(redis::Value::Int(us)) => *us,
            _ => continue,
        };
        let name = match fields.get(3) {
            Some(redis::Value::Array(args)) => match args.first() {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        if micros > worst.0 {
            worst = (micros, name);
        }
    }
    Ok(worst)
}

async fn engine_workers(
    parts: &Parts,
    config: &Arc<Config>,
    store: Arc<RedisStateStore>,
) -> Result<Arc<EngineWorkers<switchboard_codec::LocalSchemas, RedisStateStore>>, Error> {
    let source = CatalogSource {
        journeys_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../journeys").into(),
        policies_file: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/policies.yaml").into()),
        default_policies: String::new(),
    };
    let (_, catalog) =
        tokio::sync::watch::channel(Arc::new(source.load().map_err(|e| e.to_string())?));
    Ok(Arc::new(EngineWorkers(Arc::new(Engine {
        codec: parts.codec.clone(),
        store,
        catalog,
        config: config.clone(),
        metrics: Metrics::register(&prometheus::Registry::new())?,
        clock: switchboard_services::now_ms,
        winning: Winning::default(),
    }))))
}

/// Redis memory per profile, by kind of key, after `customers` customers each put a cart
/// (abandoned cart: waiting) and viewed a product (browse test: waiting).
pub struct Memory {
    pub customers: u64,
    pub per_profile: f64,
    /// Bytes per profile by key kind (MEMORY USAGE of every key).
    pub by_kind: BTreeMap<&'static str, f64>,
    /// The stored engine records' lengths in bytes (`STRLEN`), shortest first: Redis
    /// allocates each in a size class, so where they fall decides what they cost.
    pub record_lengths: Vec<i64>,
}

fn in_flight(n: u64) -> [ChannelEvent; 2] {
    let ids = vec![
        Identifier::new("anonymous_id", format!("scale-cookie-{n}")),
        Identifier::new("email", format!("scale{n}@example.com")),
    ];
    let event = |kind: &str, attrs: Vec<(String, AttrValue)>| ChannelEvent {
        event_id: format!("scale-{n}-{kind}"),
        event_type: kind.into(),
        channel: "web".into(),
        occurred_at: switchboard_services::now_ms(),
        identifiers: ids.clone(),
        attributes: attrs.into_iter().collect(),
        locale: Some("en-GB".into()),
        timezone: Some("Europe/London".into()),
    };
    [
        event(
            "cart.updated",
            vec![("cart_value".into(), AttrValue::Double(80.0))],
        ),
        event(
            "product.viewed",
            vec![("sku".into(), AttrValue::String("SKU-1".into()))],
        ),
    ]
}

pub async fn memory_per_profile(parts: &Parts, customers: u64) -> Result<Memory, Error> {
    // Short key prefix and topic names, as in production: the harness's unique ones are 35
    // bytes, which every key (and every dedup marker, which names its topic) would carry.
    let mut config = parts.config_named(Some("m")).await?;
    Arc::make_mut(&mut config).redis.key_prefix = "mem".into();
    let mut raw = parts
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await?;
    let before = used_memory(&mut raw).await?;
    let running = start(System::Switchboard, parts, &config, None).await?;
    let events: Vec<ChannelEvent> = (0..customers).flat_map(in_flight).collect();
    backlog(parts, &config, &events).await?;
    let t0 = Instant::now();
    while (running.progress)() < 2 * customers {
        if t0.elapsed() > Duration::from_secs(900) {
            return Err("the pipeline did not take the customers in 900 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    let after = used_memory(&mut raw).await?;

    let prefix = format!("{}:", config.redis.key_prefix);
    let mut by_kind: BTreeMap<&'static str, f64> = BTreeMap::new();
    let mut record_lengths = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut raw)
            .await?;
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
        }
        let sizes: Vec<Option<i64>> = pipe.query_async(&mut raw).await?;
        let records: Vec<&String> = (keys.iter())
            .filter(|k| k.strip_prefix(&prefix).is_some_and(|r| r.starts_with("r:")))
            .collect();
        let mut pipe = redis::pipe();
        for k in &records {
            pipe.cmd("STRLEN").arg(*k);
        }
        let lengths: Vec<i64> = pipe.query_async(&mut raw).await?;
        record_lengths.extend(lengths);
        for (k, size) in keys.iter().zip(sizes) {
            let rest = k.strip_prefix(&prefix).unwrap_or(k);
            let kind = match rest.split(':').next().unwrap_or("") {
                "r" | "o" | "m" => "engine state (record, outbox)",
                "timers" => "engine timers",
                "outbox" | "epoch" => "engine partition keys",
                "id" => "identity pointers",
                "p" => "identity nodes",
                _ => "other",
            };
            *by_kind.entry(kind).or_default() += size.unwrap_or(0) as f64;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for v in by_kind.values_mut() {
        *v /= customers as f64;
    }
    record_lengths.sort_unstable();
    Ok(Memory {
        customers,
        per_profile: (after - before) as f64 / customers as f64,
        by_kind,
        record_lengths,
    })
}

/// The cost of an event of a returning customer, out of a population of `population`.
pub struct Population {
    pub population: u64,
    pub events: u64,
    pub rate: f64,
    /// CPU seconds per million events: the pipeline, the broker, Redis.
    pub cpu: [f64; 3],
}

/// One customer with every identifier the generator uses for them, known from the start.
fn known(n: u64) -> ChannelEvent {
    let ids = [
        ("customer_id", format!("C{n:07}")),
        ("loyalty_card", format!("L{n:09}")),
        ("email", format!("shopper{n}@example.com")),
        ("phone", format!("+447911{:06}", n % 1_000_000)),
        ("device_id", format!("dev-{n}")),
        ("push_token", format!("tok-{n}")),
        ("anonymous_id", format!("cookie-{n}")),
    ];
    ChannelEvent {
        event_id: format!("known-{n}"),
        event_type: "account.created".into(),
        channel: "web".into(),
        occurred_at: switchboard_services::now_ms(),
        identifiers: ids
            .into_iter()
            .map(|(k, v)| Identifier::new(k, v))
            .collect(),
        attributes: Default::default(),
        locale: Some("en-GB".into()),
        timezone: Some("Europe/London".into()),
    }
}

async fn backlog(parts: &Parts, config: &Config, events: &[ChannelEvent]) -> Result<(), Error> {
    let p = producer(config)?;
    for chunk in events.chunks(10_000) {
        let records = chunk
            .iter()
            .map(|e| record(&parts.codec, config, e))
            .collect::<Result<Vec<_>, _>>()?;
        switchboard_kafka::produce_all(&p, &records).await?;
    }
    Ok(())
}

async fn drain(parts: &Parts, config: &Arc<Config>, n: u64) -> Result<f64, Error> {
    let running = start(System::Switchboard, parts, config, None).await?;
    let (secs, _) = running.drain(n, Duration::from_secs(3600)).await?;
    running.stop().await;
    Ok(secs)
}

/// Creates `population` customers (not measured), then drains `events` generated events of
/// those customers and measures them.
///
/// The customers' identity graph is written straight into Redis by the stitcher's own
/// algorithm (rules, then `stitch` on the Redis store, 64 customers at a time), not through
/// Kafka: at the pipeline's rate of new 7-identifier customers, 10 M would take hours. Their
/// engine records are created by their first measured event, as for a customer who has not
/// been seen since the engine's data was erased.
pub async fn population(parts: &Parts, population: u64, events: u64) -> Result<Population, Error> {
    use futures::StreamExt;

    let config = parts.config().await?;
    let store = switchboard_redis::RedisIdentityStore::new(
        connect(&config.redis).await?,
        switchboard_redis::Keys::new(config.redis.key_prefix.clone()),
    );
    let (rules, store) = (&config.identity, &store);
    let limits = rules.limits();
    let t0 = Instant::now();
    let mut seeded = futures::stream::iter(0..population)
        .map(|n| {
            let limits = &limits;
            async move {
                let ids = rules.prepare(&known(n).identifiers).accepted;
                switchboard_identity::stitch(store, limits, &ids, switchboard_services::now_ms())
                    .await
            }
        })
        .buffer_unordered(64);
    let mut done = 0u64;
    while let Some(stitched) = seeded.next().await {
        stitched?;
        done += 1;
        if done.is_multiple_of(1_000_000) {
            eprintln!(
                "population: {done} customers in {:.0} s",
                t0.elapsed().as_secs_f64()
            );
        }
    }
    let customers = u32::try_from(population).unwrap_or(u32::MAX);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
    let measured: Vec<ChannelEvent> = (0..events)
        .map(|i| switchboard_services::generate::event(&mut rng, customers, i))
        .collect();
    backlog(parts, &config, &measured).await?;
    let cpu0 = parts.cpu();
    let secs = drain(parts, &config, events).await?;
    let cpu1 = parts.cpu();
    let mut cpu = [0.0; 3];
    for ((out, after), before) in cpu.iter_mut().zip(cpu1).zip(cpu0) {
        *out = (after - before) / events as f64 * 1e6;
    }
    Ok(Population {
        population,
        events,
        rate: events as f64 / secs,
        cpu,
    })
}

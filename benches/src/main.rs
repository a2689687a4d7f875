//! Pipeline throughput on real parts: starts tansu and redis-server, creates the topics,
//! produces a backlog of synthetic omnichannel events, runs the stitcher and the engine
//! in-process with the example journeys, and reports events/s through both services.
//!
//! `cargo run --release -p switchboard-bench -- [events]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use switchboard_codec::{Codec, Framing, LocalSchemas};
use switchboard_config::Config;
use switchboard_pipeline::Metrics;
use switchboard_pipeline::catalog::{CatalogSource, watch_catalog};
use switchboard_pipeline::generate::event;
use switchboard_pipeline::output::{OutRecord, produce_all};
use switchboard_pipeline::services::{producer, run_engine, run_stitcher};
use switchboard_pipeline::state::RedisStateStore;
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_test_support::{RedisServer, TansuBroker};
use tokio_util::sync::CancellationToken;

fn consumed(registry: &prometheus::Registry, topic: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == "switchboard_events_consumed_total")
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| m.get_label().iter().any(|l| l.value() == topic))
        .map(|m| m.get_counter().value())
        .sum()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50_000);
    let broker = TansuBroker::start();
    let redis = RedisServer::start();
    let mut config = Config::default();
    config.kafka.bootstrap_servers = broker.bootstrap();
    config.redis.url = redis.url();
    config.topics.partitions = 6;
    config.topics.replication_factor = 1;
    switchboard_kafka::create_topics(
        &config.kafka,
        &switchboard_kafka::topic_plan(&config.topics),
    )
    .await?;
    let config = Arc::new(config);
    let codec = Arc::new(Codec::new(LocalSchemas::embedded()?).await?);

    let mut rng = StdRng::seed_from_u64(1);
    let records: Vec<OutRecord> = (0..events)
        .map(|n| {
            let e = event(&mut rng, u32::try_from(events / 5).unwrap_or(10_000), n);
            Ok(OutRecord {
                topic: format!("{}{}", config.topics.events_prefix, e.channel),
                key: e.identifiers.first().map(|i| i.value.clone().into_bytes()),
                payload: codec.encode(&e, Framing::Confluent)?,
                headers: Vec::new(),
            })
        })
        .collect::<Result<_, switchboard_codec::CodecError>>()?;
    let p = producer(&config)?;
    let t = Instant::now();
    for chunk in records.chunks(10_000) {
        produce_all(&p, chunk).await?;
    }
    println!(
        "produced {events} events in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry)?;
    let stop = CancellationToken::new();
    let conn = connect(&config.redis).await?;
    let identity = Arc::new(RedisIdentityStore::new(conn.clone(), Keys::new("sb")));
    let state = Arc::new(RedisStateStore::new(conn, "sb"));
    let source = CatalogSource {
        journeys_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../journeys").into(),
        policies_file: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/policies.yaml").into()),
        default_policies: String::new(),
    };
    let catalog = watch_catalog(
        source.clone(),
        source.load()?,
        Duration::from_secs(60),
        metrics.clone(),
        stop.clone(),
    );
    let start = Instant::now();
    let s = tokio::spawn(run_stitcher(
        config.clone(),
        codec.clone(),
        identity,
        metrics.clone(),
        stop.clone(),
    ));
    let e = tokio::spawn(run_engine(
        config.clone(),
        codec.clone(),
        state,
        catalog,
        metrics.clone(),
        stop.clone(),
    ));
    let customer_events = config.topics.customer_events.clone();
    let mut stitched_at = None;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stitched: f64 = config
            .topics
            .channels
            .iter()
            .map(|c| consumed(&registry, &format!("{}{c}", config.topics.events_prefix)))
            .sum();
        if stitched_at.is_none() && stitched >= events as f64 {
            stitched_at = Some(start.elapsed());
        }
        // Every event plus one record per merge reaches the engine.
        let merges: f64 = registry
            .gather()
            .iter()
            .filter(|f| f.name() == "switchboard_identity_merges_total")
            .filter_map(|f| f.get_metric().first().map(|m| m.get_counter().value()))
            .sum();
        if consumed(&registry, &customer_events) >= events as f64 + merges {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            println!("timed out");
            break;
        }
    }
    let total = start.elapsed().as_secs_f64();
    let stitch_secs = stitched_at.map_or(total, |d| d.as_secs_f64());
    println!(
        "stitcher: {events} events in {stitch_secs:.2} s = {:.0} events/s",
        events as f64 / stitch_secs
    );
    println!(
        "end to end (stitcher + engine, backlog drained): {total:.2} s = {:.0} events/s",
        events as f64 / total
    );
    stop.cancel();
    let _ = s.await;
    let _ = e.await;
    Ok(())
}

//! Kafka transactions on librdkafka's mock cluster (tansu has none): with
//! `kafka.transactions = true` each partition publishes through its own transactional
//! producer and commits the consumed offsets in the same transaction; a read_committed
//! reader sees every command exactly once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use switchboard_codec::{ChannelEvent, Codec, Framing, Identifier, LocalSchemas, SendCommand};
use switchboard_config::Config;
use switchboard_identity::MemoryIdentityStore;
use switchboard_pipeline::Metrics;
use switchboard_pipeline::catalog::{CatalogSource, watch_catalog};
use switchboard_pipeline::output::{OutRecord, produce_all};
use switchboard_pipeline::services::{producer, run_engine, run_stitcher};
use switchboard_pipeline::state::MemoryStateStore;
use switchboard_test_support::{mock_cluster, unique};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_transactions_every_command_is_read_committed_exactly_once() {
    let kafka = mock_cluster(3);
    let mut config = Config::default();
    config.kafka.bootstrap_servers = kafka.bootstrap();
    config.kafka.transactions = true;
    config.kafka.group_prefix = unique("txn");
    config.topics.partitions = 3;
    config.topics.replication_factor = 1;
    for t in switchboard_kafka::topic_plan(&config.topics) {
        kafka.create_topic(&t.name, t.partitions);
    }
    let config = Arc::new(config);
    let codec = Arc::new(Codec::new(LocalSchemas::embedded().unwrap()).await.unwrap());
    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry).unwrap();
    let stop = CancellationToken::new();
    let source = CatalogSource {
        journeys_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/journeys").into(),
        policies_file: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/policies.yaml").into()),
        default_policies: String::new(),
    };
    let catalog = watch_catalog(
        source.clone(),
        source.load().unwrap(),
        Duration::from_secs(60),
        metrics.clone(),
        stop.clone(),
    );
    let stitcher = tokio::spawn(run_stitcher(
        config.clone(),
        codec.clone(),
        Arc::new(MemoryIdentityStore::new()),
        metrics.clone(),
        stop.clone(),
    ));
    let engine = tokio::spawn(run_engine(
        config.clone(),
        codec.clone(),
        Arc::new(MemoryStateStore::new()),
        catalog,
        metrics.clone(),
        stop.clone(),
    ));

    let customers = 30;
    let records: Vec<OutRecord> = (0..customers)
        .map(|n| {
            let e = ChannelEvent {
                event_id: format!("t{n}"),
                event_type: "app.installed".into(),
                channel: "app".into(),
                occurred_at: switchboard_pipeline::now_ms(),
                identifiers: vec![
                    Identifier::new("customer_id", format!("T{n}")),
                    Identifier::new("push_token", format!("tok-{n}")),
                ],
                attributes: Default::default(),
                locale: None,
                timezone: Some("UTC".into()),
            };
            OutRecord {
                topic: "events.app".into(),
                key: Some(format!("T{n}").into_bytes()),
                payload: codec.encode(&e, Framing::Confluent).unwrap(),
                headers: vec![],
            }
        })
        .collect();
    produce_all(&producer(&config).unwrap(), &records)
        .await
        .unwrap();

    let reader: StreamConsumer = kafka
        .client_config()
        .set("group.id", unique("reader"))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset("commands.push", p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    reader.assign(&tpl).unwrap();
    let mut commands = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = reader.stream();
    while commands.len() < customers && Instant::now() < deadline {
        if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
            commands.push(
                codec
                    .decode::<SendCommand>(m.payload().unwrap())
                    .await
                    .unwrap(),
            );
        }
    }
    // Nothing more arrives after everyone got theirs.
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(3), stream.next()).await {
        commands.push(
            codec
                .decode::<SendCommand>(m.payload().unwrap())
                .await
                .unwrap(),
        );
    }
    stop.cancel();
    let _ = stitcher.await;
    let _ = engine.await;
    let ids: BTreeSet<&str> = commands.iter().map(|c| c.command_id.as_str()).collect();
    assert_eq!(ids.len(), customers, "every customer got the welcome push");
    assert_eq!(commands.len(), customers, "and no command twice");
}

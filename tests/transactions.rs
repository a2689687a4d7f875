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

    let reader = committed_reader(&kafka);
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

/// librdkafka#5456: `send_offsets_to_transaction` blocks past its timeout while the group
/// coordinator is away (without the deadline, this publish never returns). A publish caught
/// by that returns, the producer is given up, and once the coordinator is back the next
/// publish, from a new producer that fenced the old one, commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publish_caught_by_a_group_coordinator_outage_returns_then_commits_once() {
    use rdkafka::mocking::MockCoordinator;
    use switchboard_pipeline::output::{Publisher, Transactional, TxnMetrics};

    let kafka = mock_cluster(3);
    let c = &kafka.cluster;
    let (input, output, group, txn) = (unique("in"), unique("out"), unique("g"), unique("txn"));
    kafka.create_topic(&input, 1);
    kafka.create_topic(&output, 1);
    // The output's leader and the transaction coordinator stay up; the group coordinator,
    // which takes the consumed offsets, goes down.
    c.partition_leader(&output, 0, Some(1)).unwrap();
    c.coordinator(MockCoordinator::Transaction(txn.clone()), 1)
        .unwrap();
    c.coordinator(MockCoordinator::Group(group.clone()), 2)
        .unwrap();
    let member: StreamConsumer = kafka
        .client_config()
        .set("group.id", &group)
        .create()
        .unwrap();
    let metadata = Arc::new(member.group_metadata().unwrap());
    let mut config = kafka.client_config();
    config.set("transactional.id", &txn);
    let metrics = switchboard_pipeline::Metrics::register(&prometheus::Registry::new()).unwrap();
    let publisher = Publisher::Transactional(
        Transactional::start(config, metadata, &input, 0, TxnMetrics::new(&metrics))
            .await
            .unwrap(),
    );
    let record = OutRecord {
        topic: output.clone(),
        key: Some(b"k".to_vec()),
        payload: b"once".to_vec(),
        headers: vec![],
    };

    c.broker_down(2).unwrap();
    let t0 = Instant::now();
    let caught = publisher
        .publish(std::slice::from_ref(&record), Some(0))
        .await;
    eprintln!(
        "publish during the outage: {caught:?} after {:?}",
        t0.elapsed()
    );
    assert!(
        caught.is_err(),
        "nothing commits while the coordinator is away"
    );
    assert!(t0.elapsed() < Duration::from_secs(45), "{:?}", t0.elapsed());

    c.broker_up(2).unwrap();
    let t1 = Instant::now();
    loop {
        match publisher
            .publish(std::slice::from_ref(&record), Some(0))
            .await
        {
            Ok(()) => break,
            Err(e) if t1.elapsed() < Duration::from_secs(90) => eprintln!("retrying: {e}"),
            Err(e) => panic!("no commit 90 s after the coordinator came back: {e}"),
        }
    }
    let outcomes = |o: &str| metrics.transactions.with_label_values(&[o]).get();
    assert_eq!(outcomes("committed"), 1);
    assert!(
        outcomes("abandoned") >= 1,
        "the producer caught in the outage"
    );
    assert_eq!(
        metrics.aborted_records.get(),
        outcomes("aborted") + outcomes("abandoned"),
        "each transaction that did not commit held one record"
    );

    // The mock cluster does not model read_committed (its LastStableOffset is the end offset
    // and EndTxn writes no markers), so the abandoned transaction's record is visible here
    // too; on Kafka the new producer's InitProducerId aborts it. What the mock shows: the
    // committed record is there, after the abandoned one.
    let reader = committed_reader(&kafka);
    reader.subscribe(&[&output]).unwrap();
    let mut read = Vec::new();
    let mut stream = reader.stream();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        read.push(m.payload().unwrap_or_default().to_vec());
    }
    assert_eq!(
        read,
        vec![b"once".to_vec(), b"once".to_vec()],
        "the abandoned attempt, then the committed one"
    );
}

/// A consumer of committed records only, from the beginning, in a group of its own.
fn committed_reader(kafka: &switchboard_test_support::MockKafka) -> StreamConsumer {
    kafka
        .client_config()
        .set("group.id", unique("reader"))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap()
}

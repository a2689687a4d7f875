//! Kafka transactions. On Apache Kafka: with `kafka.transactions = true` each partition
//! publishes through its own transactional producer and commits the consumed offsets in the
//! same transaction, so a `read_committed` reader sees every command exactly once; a
//! partition's producer from an older owner (a zombie) is fenced through its
//! `transactional.id` and the group's generation, and nothing it sends becomes visible. On
//! librdkafka's mock cluster, which can take a coordinator away: a publish caught by the
//! outage returns and the next one commits.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use support::{Running, event};
use switchboard_codec::SendCommand;
use switchboard_kafka::{OutRecord, Publish, Publisher, Transactional, TxnMetrics};
use switchboard_test_support::{KafkaBroker, mock_cluster, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_transactions_every_command_is_read_committed_exactly_once() {
    let journeys = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/journeys"));
    let mut r = Running::parts_configured(journeys, |c| c.kafka.transactions = true).await;
    r.start_stitcher().await;
    r.start_engine().await;
    let customers = 30;
    let installs: Vec<_> = (0..customers)
        .map(|n| {
            let (id, token) = (format!("T{n}"), format!("tok-{n}"));
            let ids = [("customer_id", id.as_str()), ("push_token", token.as_str())];
            event(&format!("t{n}"), "app.installed", "app", &ids, &[])
        })
        .collect();
    r.produce(&installs).await;

    let mut commands = r
        .commands_until(Duration::from_secs(90), |c| c.len() >= customers)
        .await;
    // Nothing more arrives after everyone got theirs.
    let read = commands.len();
    commands.extend(
        r.commands_until(Duration::from_secs(5), |c| c.len() > read)
            .await
            .into_iter()
            .skip(read),
    );
    let ids: BTreeSet<&str> = commands.iter().map(|c| c.command_id.as_str()).collect();
    assert_eq!(ids.len(), customers, "every customer got the welcome push");
    assert_eq!(commands.len(), customers, "and no command twice");
    assert!(commands.iter().all(|c: &SendCommand| c.channel == "push"));
    let committed = r.series("switchboard_transactions_total", "outcome");
    assert!(
        committed.get("committed").copied().unwrap_or(0.0) >= 2.0,
        "the stitcher's and the engine's partitions committed transactions: {committed:?}"
    );
}

/// A partition's owner that lost it (a zombie) keeps its producer. The new owner's producer,
/// with the same `transactional.id`, fences it; and should the zombie start a producer again,
/// the group coordinator refuses the offsets of a member that is no longer in the group, so
/// its transaction aborts. A `read_committed` reader sees the zombie's output from before the
/// handover and the new owner's, and nothing the zombie sent after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zombie_owners_output_is_fenced_and_never_read() {
    let kafka = KafkaBroker::shared();
    let (input, output, group) = (unique("in"), unique("out"), unique("g"));
    kafka.create_topic(&input, 1).await;
    kafka.create_topic(&output, 1).await;
    let input_records: Vec<OutRecord> =
        (0..3).map(|n| record(&input, &format!("in-{n}"))).collect();
    let plain: rdkafka::producer::FutureProducer = kafka.client_config().create().unwrap();
    switchboard_kafka::produce_all(&plain, &input_records)
        .await
        .unwrap();
    let metrics = switchboard_services::Metrics::register(&prometheus::Registry::new()).unwrap();
    let mut txn_config = kafka.client_config();
    txn_config.set("transactional.id", unique("txn"));

    // The first owner takes the partition and commits its first transaction.
    let first = member(kafka, &group, &input).await;
    let zombie = Publisher::Transactional(
        Transactional::start(
            txn_config.clone(),
            Arc::new(first.group_metadata().unwrap()),
            &input,
            0,
            TxnMetrics::new(&metrics.kafka),
        )
        .await
        .unwrap(),
    );
    zombie
        .publish(&[record(&output, "before the handover")], Some(0))
        .await
        .unwrap();

    // It leaves the group (as a member evicted by its session timeout would); a second member
    // takes the partition and starts its producer under the same transactional.id.
    drop(first);
    let second = member(kafka, &group, &input).await;
    let owner = Publisher::Transactional(
        Transactional::start(
            txn_config,
            Arc::new(second.group_metadata().unwrap()),
            &input,
            0,
            TxnMetrics::new(&metrics.kafka),
        )
        .await
        .unwrap(),
    );

    for attempt in ["zombie, fenced producer", "zombie, new producer"] {
        let late = zombie.publish(&[record(&output, attempt)], Some(1)).await;
        assert!(late.is_err(), "{attempt}: committed");
    }
    // The zombie's second producer fenced the owner's: the owner starts another and commits.
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = owner
        .publish(&[record(&output, "after the handover")], Some(1))
        .await
    {
        assert!(Instant::now() < deadline, "the owner never committed: {e}");
    }

    let reader = committed_reader(kafka.client_config());
    reader.subscribe(&[&output]).unwrap();
    let mut read = Vec::new();
    let mut stream = reader.stream();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        read.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
    }
    assert_eq!(read, ["before the handover", "after the handover"]);
    let offsets = second
        .committed(Duration::from_secs(10))
        .unwrap()
        .find_partition(&input, 0)
        .map(|p| p.offset());
    assert_eq!(
        offsets,
        Some(rdkafka::Offset::Offset(2)),
        "the owner's offset, not the zombie's"
    );
}

fn record(topic: &str, payload: &str) -> OutRecord {
    OutRecord {
        topic: topic.to_owned(),
        key: Some(b"k".to_vec()),
        payload: payload.as_bytes().to_vec(),
        headers: vec![],
    }
}

/// A member of `group` that has been assigned `topic`'s partition (it read a record).
async fn member(kafka: &KafkaBroker, group: &str, topic: &str) -> StreamConsumer {
    let c: StreamConsumer = kafka
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    tokio::time::timeout(Duration::from_secs(60), c.recv())
        .await
        .expect("the member is assigned the partition")
        .unwrap();
    c
}

/// librdkafka#5456: `send_offsets_to_transaction` blocks past its timeout while the group
/// coordinator is away (without the deadline, this publish never returns). A publish caught
/// by that returns, the producer is given up, and once the coordinator is back the next
/// publish, from a new producer that fenced the old one, commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publish_caught_by_a_group_coordinator_outage_returns_then_commits_once() {
    use rdkafka::mocking::MockCoordinator;

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
    let metrics = switchboard_services::Metrics::register(&prometheus::Registry::new()).unwrap();
    let publisher = Publisher::Transactional(
        Transactional::start(config, metadata, &input, 0, TxnMetrics::new(&metrics.kafka))
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
    let outcomes = |o: &str| metrics.kafka.transactions.with_label_values(&[o]).get();
    assert_eq!(outcomes("committed"), 1);
    assert!(
        outcomes("abandoned") >= 1,
        "the producer caught in the outage"
    );
    assert_eq!(
        metrics.kafka.aborted_records.get(),
        outcomes("aborted") + outcomes("abandoned"),
        "each transaction that did not commit held one record"
    );

    // The mock cluster does not model read_committed (its LastStableOffset is the end offset
    // and EndTxn writes no markers), so the abandoned transaction's record is visible here
    // too; on Kafka the new producer's InitProducerId aborts it. What the mock shows: the
    // committed record is there, after the abandoned one.
    let reader = committed_reader(kafka.client_config());
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
fn committed_reader(mut config: rdkafka::ClientConfig) -> StreamConsumer {
    config
        .set("group.id", unique("reader"))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap()
}

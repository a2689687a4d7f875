//! One engine partition driven by hand (no consumer group, no tick): what its outbox leaves
//! behind for the next owner of the partition. The producer talks to Apache Kafka; the state is the in-memory store, whose outbox semantics the state conformance
//! suite holds equal to Redis's.

mod support;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{OwnedHeaders, OwnedMessage, Timestamp};
use support::{POLICIES, event};
use switchboard_codec::{Codec, CustomerEvent, CustomerPayload, LocalSchemas, SourcePosition};
use switchboard_engine::{MemoryStateStore, Outboxes};
use switchboard_kafka::Publisher;
use switchboard_kafka::{Worker, Workers};
use switchboard_services::Metrics;
use switchboard_services::catalog::CatalogSource;
use switchboard_services::engine::{Engine, EngineWorkers, Winning};
use switchboard_services::services::producer;
use switchboard_test_support::{KafkaBroker, isolated_config};
use tokio_util::sync::CancellationToken;

/// An app install of customer `n` as the stitcher publishes it, at `offset` of partition 0.
async fn install(codec: &Codec<LocalSchemas>, topic: &str, n: u32, offset: i64) -> OwnedMessage {
    let ids = [
        ("customer_id", format!("K{n}")),
        ("push_token", format!("tok-{n}")),
    ];
    let ids: Vec<(&str, &str)> = ids.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let channel_event = event(&format!("install-{n}"), "app.installed", "app", &ids, &[]);
    let customer_event = CustomerEvent {
        profile_id: format!("profile-{n}"),
        stitched_at: channel_event.occurred_at,
        source: SourcePosition {
            topic: "events.app".into(),
            partition: 0,
            offset,
        },
        identifiers: channel_event.identifiers.clone(),
        payload: CustomerPayload::Event(channel_event),
    };
    let payload = codec
        .encode(&customer_event, switchboard_codec::Framing::Confluent)
        .unwrap();
    OwnedMessage::new(
        Some(payload),
        Some(format!("profile-{n}").into_bytes()),
        topic.to_owned(),
        Timestamp::NotAvailable,
        0,
        offset,
        Some(OwnedHeaders::new()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_partition_clears_what_it_published_so_the_next_owner_does_not_send_it_again() {
    let kafka = KafkaBroker::shared();
    let config = Arc::new(isolated_config(
        kafka.bootstrap(),
        "redis://unused".into(),
        1,
    ));
    for t in switchboard_kafka::topic_plan(&config.topics) {
        kafka.create_topic(&t.name, t.partitions).await;
    }
    let codec = Arc::new(Codec::new(LocalSchemas::embedded().unwrap()).await.unwrap());
    let store = Arc::new(MemoryStateStore::new());
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/journeys"));
    let source = CatalogSource {
        journeys_dir: dir,
        policies_file: None,
        default_policies: POLICIES.to_owned(),
    };
    let (_keep, catalog) = tokio::sync::watch::channel(Arc::new(source.load().unwrap()));
    let workers = EngineWorkers(Arc::new(Engine {
        codec: codec.clone(),
        store: store.clone(),
        catalog,
        config: config.clone(),
        metrics: Metrics::register(&prometheus::Registry::new()).unwrap(),
        clock: switchboard_services::now_ms,
        winning: Winning::default(),
    }));
    let topic = config.topics.customer_events.clone();
    let start = |stop: CancellationToken| {
        let publisher = Publisher::Plain(producer(&config).unwrap());
        workers.start(&topic, 0, publisher, stop)
    };

    // A partition that sends and is then dropped without finishing (a crash) leaves its
    // published outbox to the next owner, which publishes it again: at least once.
    let mut crashed = start(CancellationToken::new()).await.unwrap();
    crashed
        .process(vec![install(&codec, &topic, 1, 0).await])
        .await
        .unwrap();
    assert_eq!(
        store.pending_outboxes(0).await.unwrap(),
        vec!["profile-1".to_owned()],
        "published, not yet cleared: the next save, tick or finish clears it"
    );
    drop(crashed);

    // The next owner republishes it on start and clears it; then sends for a new install
    // and stops cleanly: nothing is left for the owner after it.
    let mut next = start(CancellationToken::new()).await.unwrap();
    assert!(store.pending_outboxes(0).await.unwrap().is_empty());
    next.process(vec![install(&codec, &topic, 2, 1).await])
        .await
        .unwrap();
    assert_eq!(
        store.pending_outboxes(0).await.unwrap(),
        vec!["profile-2".to_owned()]
    );
    tokio::time::timeout(Duration::from_secs(10), next.finish())
        .await
        .unwrap();
    assert!(
        store.pending_outboxes(0).await.unwrap().is_empty(),
        "a partition that finishes leaves no outbox behind"
    );
}

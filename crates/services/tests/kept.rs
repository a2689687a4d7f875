//! Records kept in memory by a partition's owner: a returning profile's batch is planned on
//! the record the owner wrote last, with the same outcome as loading it from the store; and
//! a record that went stale (merged by the survivor's partition) is caught at save time and
//! the batch planned again from the store.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{Kept, event_record};
use rdkafka::message::OwnedMessage;
use switchboard_codec::{
    AttrValue, ChannelEvent, Codec, CustomerEvent, CustomerPayload, Identifier, LocalSchemas,
};
use switchboard_config::Config;
use switchboard_engine::{MemoryStateStore, Records};
use switchboard_kafka::Worker;

/// 2026-01-15T10:00:00Z, a Thursday: outside quiet hours.
const T0: i64 = 1_768_471_200_000;
const HOUR: i64 = 3_600_000;

fn event(id: &str, event_type: &str, customer: &str, attributes: &[(&str, f64)]) -> ChannelEvent {
    ChannelEvent {
        event_id: id.into(),
        event_type: event_type.into(),
        channel: "app".into(),
        occurred_at: T0,
        identifiers: vec![
            Identifier::new("customer_id", customer),
            Identifier::new("push_token", format!("tok-{customer}")),
            Identifier::new("email", format!("{customer}@example.com")),
        ],
        attributes: (attributes.iter())
            .map(|(k, v)| ((*k).to_owned(), AttrValue::Double(*v)))
            .collect::<BTreeMap<_, _>>(),
        locale: None,
        timezone: None,
    }
}

/// Three customers' batches and two ticks, the cache on or off: what the partition
/// published, and its metrics' record-cache counts (hit, miss).
async fn run(
    record_cache_entries: u64,
    clock: &'static AtomicI64,
    now: fn() -> i64,
) -> (Vec<(String, Vec<u8>)>, [u64; 3]) {
    clock.store(T0, Ordering::SeqCst);
    let codec = Arc::new(Codec::new(LocalSchemas::embedded().unwrap()).await.unwrap());
    let mut config = Config::default();
    config.engine.record_cache_entries = record_cache_entries;
    let published = Kept::default();
    let store = Arc::new(MemoryStateStore::new());
    let (mut partition, metrics, _catalog) = common::partition_configured(
        config,
        common::catalog(),
        codec.clone(),
        store,
        published.clone(),
        now,
    )
    .await;
    let at = |profile: &str, e: ChannelEvent, offset| event_record(&codec, profile, e, offset);
    let batches: Vec<Vec<OwnedMessage>> = vec![
        vec![
            at("p1", event("e1", "app.installed", "K1", &[]), 1),
            at(
                "p2",
                event("e2", "cart.updated", "K2", &[("cart_value", 120.0)]),
                2,
            ),
        ],
        vec![
            at(
                "p1",
                event("e3", "cart.updated", "K1", &[("cart_value", 40.0)]),
                3,
            ),
            at("p2", event("e4", "app.opened", "K2", &[]), 4),
            at("p3", event("e5", "product.viewed", "K3", &[]), 5),
        ],
        vec![at(
            "p1",
            event("e6", "order.completed", "K1", &[("total", 40.0)]),
            6,
        )],
    ];
    for batch in batches {
        partition.process(batch).await.unwrap();
    }
    // p2's cart reminder is due an hour later, its offer a day later.
    for hours in [2, 25] {
        clock.store(T0 + hours * HOUR, Ordering::SeqCst);
        partition.tick().await.unwrap();
    }
    let batch = vec![at(
        "p2",
        event("e7", "order.completed", "K2", &[("total", 120.0)]),
        7,
    )];
    partition.process(batch).await.unwrap();
    let records = (published.0.lock().unwrap().iter())
        .map(|r| (r.topic.clone(), r.payload.clone()))
        .collect();
    (records, metrics.record_cache.clone().map(|c| c.get()))
}

static ON: AtomicI64 = AtomicI64::new(T0);
static OFF: AtomicI64 = AtomicI64::new(T0);

#[tokio::test]
async fn a_batch_planned_on_kept_records_publishes_exactly_what_loading_them_does() {
    let (with_cache, [hits, misses, stale]) = run(1000, &ON, || ON.load(Ordering::SeqCst)).await;
    let (loading, [off_hits, off_misses, _]) = run(0, &OFF, || OFF.load(Ordering::SeqCst)).await;
    assert!(
        with_cache.iter().any(|(t, _)| t == "commands.push")
            && with_cache.iter().any(|(t, _)| t == "commands.email"),
        "the sequence sends on several channels: {:?}",
        with_cache.iter().map(|(t, _)| t).collect::<Vec<_>>()
    );
    assert_eq!(
        with_cache, loading,
        "the same records, in the same order, byte for byte"
    );
    // Batch 2: p1 and p2 kept (p3 new); batch 3: p1; the ticks: p2 twice; the last: p2.
    assert_eq!((hits, stale), (6, 0));
    assert_eq!(misses, 3, "each profile's first batch loads");
    assert_eq!(
        (off_hits, off_misses),
        (0, 9),
        "without the cache, every one loads"
    );
}

static MERGE: AtomicI64 = AtomicI64::new(T0);

/// The survivor's partition marks a loser merged while the loser's partition keeps its
/// record: the loser's next event is forwarded to the survivor, as it would be had its
/// record been loaded, not applied to the loser.
#[tokio::test]
async fn a_kept_record_merged_elsewhere_is_caught_at_save_and_its_event_forwarded() {
    let codec = Arc::new(Codec::new(LocalSchemas::embedded().unwrap()).await.unwrap());
    let published = Kept::default();
    let store = Arc::new(MemoryStateStore::new());
    let (mut partition, metrics, _catalog) =
        common::partition(codec.clone(), store.clone(), published.clone(), || {
            MERGE.load(Ordering::SeqCst)
        })
        .await;
    let install = event("e1", "app.installed", "K1", &[]);
    partition
        .process(vec![event_record(&codec, "loser", install, 1)])
        .await
        .unwrap();
    assert_eq!(published.on("commands.push").len(), 1, "the welcome push");

    // The survivor's partition, elsewhere.
    store
        .mark_merged(&[("loser".into(), "survivor".into())])
        .await
        .unwrap();

    let cart = event("e2", "cart.updated", "K1", &[("cart_value", 120.0)]);
    partition
        .process(vec![event_record(&codec, "loser", cart, 2)])
        .await
        .unwrap();
    let [hits, misses, stale] = metrics.record_cache.clone().map(|c| c.get());
    assert_eq!(
        (hits, stale),
        (1, 1),
        "planned on the kept record, stale at save"
    );
    assert_eq!(misses, 2, "the first batch, and the second planned again");
    let mut forwarded: Vec<CustomerEvent> = Vec::new();
    for r in published.on("customer.events") {
        forwarded.push(codec.decode(&r.payload).await.unwrap());
    }
    assert_eq!(forwarded.len(), 1, "the cart event went on to the survivor");
    assert_eq!(forwarded[0].profile_id, "survivor");
    assert!(matches!(&forwarded[0].payload, CustomerPayload::Event(e) if e.event_id == "e2"));
    let loaded = store
        .load(&["loser".into()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert!(
        !loaded.0.customer.instances.contains_key("abandoned-cart"),
        "the loser did not enter the cart journey"
    );
}

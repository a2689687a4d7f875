//! An engine partition's failures, without a broker: what is retried where it happens, so a
//! partition never stops reading while it stays assigned.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Kept, event_record};
use switchboard_codec::{
    ChannelEvent, Codec, CodecError, Identifier, LocalSchemas, RegisteredSchema, SchemaRef,
    SchemaResolver,
};
use switchboard_engine::MemoryStateStore;
use switchboard_kafka::Worker;

/// The embedded schemas behind a registry that is away for the next `away` lookups.
struct Flaky {
    schemas: LocalSchemas,
    away: AtomicU32,
}

impl SchemaResolver for Flaky {
    async fn resolve(&self, r: SchemaRef) -> Result<Arc<RegisteredSchema>, CodecError> {
        let away = self.away.load(Ordering::SeqCst);
        if away > 0 {
            self.away.store(away - 1, Ordering::SeqCst);
            return Err(CodecError::Registry {
                url: "http://registry.invalid".into(),
                reason: "connection refused".into(),
            });
        }
        self.schemas.resolve(r).await
    }

    async fn writer_for(&self, name: &str) -> Result<Arc<RegisteredSchema>, CodecError> {
        self.schemas.writer_for(name).await
    }
}

/// 2026-01-15T10:00:00Z, a Thursday: outside quiet hours.
const T0: i64 = 1_768_471_200_000;

fn midday() -> i64 {
    T0
}

fn install(n: u32) -> ChannelEvent {
    ChannelEvent {
        event_id: format!("install-{n}"),
        event_type: "app.installed".into(),
        channel: "app".into(),
        occurred_at: T0,
        identifiers: vec![
            Identifier::new("customer_id", format!("K{n}")),
            Identifier::new("push_token", format!("tok-{n}")),
        ],
        attributes: BTreeMap::new(),
        locale: None,
        timezone: None,
    }
}

/// Before, the batch gave up on the first registry error and its partition's task ended:
/// still assigned, never read again until the next rebalance.
#[tokio::test]
async fn a_schema_registry_outage_is_waited_out_and_the_partition_reads_on() {
    let codec = Arc::new(
        Codec::new(Flaky {
            schemas: LocalSchemas::embedded().unwrap(),
            away: AtomicU32::new(0),
        })
        .await
        .unwrap(),
    );
    let kept = Kept::default();
    let store = Arc::new(MemoryStateStore::new());
    let (mut partition, metrics, _catalog) =
        common::partition(codec.clone(), store, kept.clone(), midday).await;

    codec.resolver().away.store(3, Ordering::SeqCst);
    let batch = vec![event_record(&codec, "profile-1", install(1), 1)];
    tokio::time::timeout(Duration::from_secs(20), partition.process(batch))
        .await
        .expect("the batch waits for the registry, backing off, and completes")
        .expect("an outage is not a reason to stop");
    assert_eq!(
        metrics.registry_errors.get(),
        3,
        "each failed lookup counted"
    );
    assert_eq!(
        kept.on("commands.push").len(),
        1,
        "the welcome push is sent"
    );

    // And the next batch is read as usual.
    let batch = vec![event_record(&codec, "profile-2", install(2), 2)];
    partition.process(batch).await.unwrap();
    assert_eq!(kept.on("commands.push").len(), 2);
    assert!(kept.on("events.dlq").is_empty(), "nothing was bad input");
    // Counted through the catalog's handles, as a scrape shows them.
    assert_eq!(metrics.commands.with_label_values(&["push"]).get(), 2);
    let entered = metrics
        .transitions
        .with_label_values(&["welcome", "entered"]);
    assert_eq!(entered.get(), 2);
}

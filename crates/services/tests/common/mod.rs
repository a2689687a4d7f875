//! An engine partition without a broker: the in-memory store, a publisher that keeps what it
//! is given, and records of `customer.events` as the stitcher writes them.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use rdkafka::Timestamp;
use rdkafka::message::OwnedMessage;
use switchboard_codec::{
    ChannelEvent, Codec, CustomerEvent, CustomerPayload, SchemaResolver, SourcePosition,
};
use switchboard_config::Config;
use switchboard_engine::MemoryStateStore;
use switchboard_kafka::{OutRecord, Publish, Undelivered};
use switchboard_services::Metrics;
use switchboard_services::catalog::{Catalog, CatalogSource};
use switchboard_services::engine::{Engine, EnginePartition, Winning};
use tokio_util::sync::CancellationToken;

/// A publisher that keeps every record it is given, and delivers them all.
#[derive(Clone, Default)]
pub struct Kept(pub Arc<Mutex<Vec<OutRecord>>>);

impl Publish for Kept {
    async fn publish(&self, records: &[OutRecord], _: Option<i64>) -> Result<(), Undelivered> {
        self.0.lock().unwrap().extend_from_slice(records);
        Ok(())
    }
}

impl Kept {
    /// The records published onto `topic` so far.
    pub fn on(&self, topic: &str) -> Vec<OutRecord> {
        let all = self.0.lock().unwrap();
        all.iter().filter(|r| r.topic == topic).cloned().collect()
    }
}

/// The example journeys and the deployed policies.
pub fn catalog() -> Catalog {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    CatalogSource {
        journeys_dir: format!("{root}/journeys").into(),
        policies_file: Some(format!("{root}/deploy/policies.yaml").into()),
        default_policies: String::new(),
    }
    .load()
    .unwrap()
}

/// A partition, its metrics, and the sender of its catalog.
pub type Running<R> = (
    EnginePartition<R, MemoryStateStore, Kept>,
    Metrics,
    tokio::sync::watch::Sender<Arc<Catalog>>,
);

/// Partition 0 of an engine on `store` running the example journeys, publishing into
/// `kept`, with `clock`.
pub async fn partition<R: SchemaResolver + 'static>(
    codec: Arc<Codec<R>>,
    store: Arc<MemoryStateStore>,
    kept: Kept,
    clock: fn() -> i64,
) -> Running<R> {
    partition_running(catalog(), codec, store, kept, clock).await
}

/// Partition 0 of an engine on `store` running `catalog`, publishing into `kept`, with
/// `clock`.
pub async fn partition_running<R: SchemaResolver + 'static>(
    catalog: Catalog,
    codec: Arc<Codec<R>>,
    store: Arc<MemoryStateStore>,
    kept: Kept,
    clock: fn() -> i64,
) -> Running<R> {
    let (keep, catalog) = tokio::sync::watch::channel(Arc::new(catalog));
    let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
    let engine = Arc::new(Engine {
        codec,
        store,
        catalog,
        config: Arc::new(Config::default()),
        metrics: metrics.clone(),
        clock,
        winning: Winning::default(),
    });
    let p = EnginePartition::start(engine, 0, kept, CancellationToken::new())
        .await
        .unwrap();
    (p, metrics, keep)
}

/// The record of `customer.events` at `offset` that carries `payload` for `profile`.
pub fn record<R: SchemaResolver>(
    codec: &Codec<R>,
    profile: &str,
    payload: CustomerPayload,
    identifiers: Vec<switchboard_codec::Identifier>,
    offset: i64,
) -> OwnedMessage {
    let config = Config::default();
    let ce = CustomerEvent {
        profile_id: profile.to_owned(),
        stitched_at: 0,
        source: SourcePosition {
            topic: String::new(),
            partition: -1,
            offset: -1,
        },
        payload,
        identifiers,
    };
    OwnedMessage::new(
        Some(codec.encode(&ce, config.schemas.framing).unwrap()),
        Some(profile.as_bytes().to_vec()),
        config.topics.customer_events,
        Timestamp::NotAvailable,
        0,
        offset,
        None,
    )
}

/// An event of `profile`, as the stitcher passes it on.
pub fn event_record<R: SchemaResolver>(
    codec: &Codec<R>,
    profile: &str,
    e: ChannelEvent,
    offset: i64,
) -> OwnedMessage {
    let identifiers = e.identifiers.clone();
    record(
        codec,
        profile,
        CustomerPayload::Event(e),
        identifiers,
        offset,
    )
}

//! Producing records: never one await per message; every delivery is awaited before offsets
//! move on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

/// One record to produce.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// Enqueues every record (waiting while the local queue is full), then awaits every delivery.
pub async fn produce_all(
    producer: &FutureProducer,
    records: &[OutRecord],
) -> Result<(), KafkaError> {
    let mut pending: Vec<DeliveryFuture> = Vec::with_capacity(records.len());
    for r in records {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (k, v) in &r.headers {
            headers = headers.insert(rdkafka::message::Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut record = FutureRecord::to(&r.topic)
            .payload(&r.payload)
            .headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
    for result in join_all(pending).await {
        match result {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(e),
            Err(_) => return Err(KafkaError::Canceled),
        }
    }
    Ok(())
}

/// Where a partition's output goes: the shared idempotent producer, or (with
/// `kafka.transactions`) a transactional producer of its own that commits the consumed
/// offsets in the same transaction as the output.
pub enum Publisher {
    Plain(FutureProducer),
    Transactional(Transactional),
}

/// A partition's transactional producer (`transactional.id` fixed per partition, so a new
/// owner fences the old one). librdkafka's transaction calls block, so they run on the
/// blocking pool, never on the runtime's workers.
pub struct Transactional {
    config: ClientConfig,
    producer: Mutex<FutureProducer>,
    group: Arc<ConsumerGroupMetadata>,
    topic: String,
    partition: i32,
}

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}

/// A producer for `config` (with its `transactional.id`) that has fenced earlier ones.
async fn init_transactional(config: &ClientConfig) -> Result<FutureProducer, KafkaError> {
    let producer: FutureProducer = config.create()?;
    let p = producer.clone();
    blocking(move || p.init_transactions(TXN_TIMEOUT)).await?;
    Ok(producer)
}

fn is_fatal(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(t) if t.is_fatal())
}

impl Transactional {
    /// Creates the producer and fences any earlier owner of the partition's transactions.
    pub async fn start(
        config: ClientConfig,
        group: Arc<ConsumerGroupMetadata>,
        topic: &str,
        partition: i32,
    ) -> Result<Self, KafkaError> {
        let producer = init_transactional(&config).await?;
        Ok(Self {
            config,
            producer: Mutex::new(producer),
            group,
            topic: topic.to_owned(),
            partition,
        })
    }

    fn producer(&self) -> Result<FutureProducer, KafkaError> {
        self.producer
            .lock()
            .map(|p| p.clone())
            .map_err(|_| KafkaError::Canceled)
    }

    async fn publish(
        &self,
        records: &[OutRecord],
        consumed: Option<i64>,
    ) -> Result<(), KafkaError> {
        if records.is_empty() && consumed.is_none() {
            return Ok(());
        }
        let producer = self.producer()?;
        let p = producer.clone();
        let result = match blocking(move || p.begin_transaction()).await {
            Ok(()) => {
                let result = async {
                    produce_all(&producer, records).await?;
                    if let Some(offset) = consumed {
                        let mut tpl = rdkafka::TopicPartitionList::new();
                        tpl.add_partition_offset(
                            &self.topic,
                            self.partition,
                            rdkafka::Offset::Offset(offset + 1),
                        )?;
                        let (p, group) = (producer.clone(), self.group.clone());
                        blocking(move || p.send_offsets_to_transaction(&tpl, &group, TXN_TIMEOUT))
                            .await?;
                    }
                    let p = producer.clone();
                    blocking(move || p.commit_transaction(TXN_TIMEOUT)).await
                }
                .await;
                if result.as_ref().is_err_and(|e| !is_fatal(e)) {
                    let p = producer.clone();
                    let _ = blocking(move || p.abort_transaction(TXN_TIMEOUT)).await;
                }
                result
            }
            Err(e) => Err(e),
        };
        // A fatal error leaves the producer unusable: the next attempt starts a new one,
        // which fences this one and aborts whatever it left open.
        if let Err(e) = &result
            && is_fatal(e)
        {
            let fresh = init_transactional(&self.config).await?;
            if let Ok(mut p) = self.producer.lock() {
                *p = fresh;
            }
        }
        result
    }
}

impl Publisher {
    /// Produces `records`; in transactional mode, with the offset after `consumed` (the last
    /// offset of the batch) committed atomically with them.
    pub async fn publish(
        &self,
        records: &[OutRecord],
        consumed: Option<i64>,
    ) -> Result<(), KafkaError> {
        match self {
            Self::Plain(p) => produce_all(p, records).await,
            Self::Transactional(t) => t.publish(records, consumed).await,
        }
    }
}

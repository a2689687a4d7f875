//! Producing records: never one await per message; every delivery is awaited before offsets
//! move on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use prometheus::IntCounter;
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
        let mut record = FutureRecord::to(&r.topic).payload(&r.payload);
        // Most records have none; librdkafka allocates a header list even when empty.
        if !r.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(rdkafka::message::Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            record = record.headers(headers);
        }
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
/// owner fences the old one). librdkafka's transaction calls block, so they run on threads
/// of their own, never on the runtime's workers, and each has a deadline of its own: some
/// block past their timeout while the group coordinator is away (librdkafka#5456,
/// `send_offsets_to_transaction`), and a producer caught in one is replaced.
pub struct Transactional {
    config: ClientConfig,
    /// `None` after a fatal error or a wedged call: the next publish starts a new producer,
    /// which fences the old one and aborts whatever it left open.
    producer: Mutex<Option<FutureProducer>>,
    group: Arc<ConsumerGroupMetadata>,
    topic: String,
    partition: i32,
    metrics: TxnMetrics,
}

/// What a partition's transactions count: `switchboard_transactions_total` per outcome and
/// the records of those that did not commit.
#[derive(Debug, Clone)]
pub struct TxnMetrics {
    committed: IntCounter,
    aborted: IntCounter,
    abandoned: IntCounter,
    aborted_records: IntCounter,
}

impl TxnMetrics {
    pub fn new(m: &crate::Metrics) -> Self {
        let outcome = |o: &str| m.transactions.with_label_values(&[o]);
        Self {
            committed: outcome("committed"),
            aborted: outcome("aborted"),
            abandoned: outcome("abandoned"),
            aborted_records: m.aborted_records.clone(),
        }
    }
}

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// How much longer than its own timeout a transaction call may take before the producer is
/// given up on.
const TXN_GRACE: Duration = Duration::from_secs(5);

/// Why a transaction did not commit.
enum Failure {
    Kafka(KafkaError),
    /// A call did not return by its deadline (its thread is left to finish on its own).
    Wedged(&'static str),
}

impl From<KafkaError> for Failure {
    fn from(e: KafkaError) -> Self {
        Self::Kafka(e)
    }
}

/// Runs a blocking transaction call on a thread of its own, up to its deadline. Not tokio's
/// blocking pool: a call that never returns would hold the runtime's shutdown forever.
async fn blocking<T: Send + 'static>(
    call: &'static str,
    f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, Failure> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("txn-{call}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|_| Failure::Kafka(KafkaError::Canceled))?;
    match tokio::time::timeout(TXN_TIMEOUT + TXN_GRACE, rx).await {
        Ok(Ok(result)) => Ok(result?),
        Ok(Err(_)) => Err(Failure::Kafka(KafkaError::Canceled)),
        Err(_) => Err(Failure::Wedged(call)),
    }
}

/// A producer for `config` (with its `transactional.id`) that has fenced earlier ones.
async fn init_transactional(config: &ClientConfig) -> Result<FutureProducer, Failure> {
    let producer: FutureProducer = config.create()?;
    let p = producer.clone();
    blocking("init_transactions", move || {
        p.init_transactions(TXN_TIMEOUT)
    })
    .await?;
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
        metrics: TxnMetrics,
    ) -> Result<Self, KafkaError> {
        let producer = init_transactional(&config).await.map_err(kafka_error)?;
        Ok(Self {
            config,
            producer: Mutex::new(Some(producer)),
            group,
            topic: topic.to_owned(),
            partition,
            metrics,
        })
    }

    /// The current producer, or a new one in place of a lost one.
    async fn producer(&self) -> Result<FutureProducer, Failure> {
        let current = self
            .producer
            .lock()
            .map_err(|_| KafkaError::Canceled)?
            .clone();
        if let Some(p) = current {
            return Ok(p);
        }
        let fresh = init_transactional(&self.config).await?;
        if let Ok(mut slot) = self.producer.lock() {
            *slot = Some(fresh.clone());
        }
        Ok(fresh)
    }

    async fn publish(
        &self,
        records: &[OutRecord],
        consumed: Option<i64>,
    ) -> Result<(), KafkaError> {
        if records.is_empty() && consumed.is_none() {
            return Ok(());
        }
        let result = self.transaction(records, consumed).await;
        let lost = match &result {
            Err(Failure::Wedged(call)) => {
                tracing::warn!(
                    topic = self.topic,
                    partition = self.partition,
                    call,
                    "transaction call past its deadline: replacing the producer"
                );
                true
            }
            Err(Failure::Kafka(e)) => {
                tracing::warn!(
                    topic = self.topic,
                    partition = self.partition,
                    error = %e,
                    "transaction did not commit"
                );
                is_fatal(e)
            }
            Ok(()) => false,
        };
        let m = &self.metrics;
        match (&result, lost) {
            (Ok(()), _) => m.committed.inc(),
            (Err(_), true) => m.abandoned.inc(),
            (Err(_), false) => m.aborted.inc(),
        }
        if result.is_err() {
            m.aborted_records.inc_by(records.len() as u64);
        }
        if lost && let Ok(mut slot) = self.producer.lock() {
            *slot = None;
        }
        result.map_err(kafka_error)
    }

    /// One transaction: the records and the consumed offset, committed together; aborted
    /// when anything short of fatal fails.
    async fn transaction(
        &self,
        records: &[OutRecord],
        consumed: Option<i64>,
    ) -> Result<(), Failure> {
        let producer = self.producer().await?;
        let p = producer.clone();
        blocking("begin_transaction", move || p.begin_transaction()).await?;
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
                blocking("send_offsets_to_transaction", move || {
                    p.send_offsets_to_transaction(&tpl, &group, TXN_TIMEOUT)
                })
                .await?;
            }
            let p = producer.clone();
            blocking("commit_transaction", move || {
                p.commit_transaction(TXN_TIMEOUT)
            })
            .await
        }
        .await;
        if let Err(Failure::Kafka(e)) = &result
            && !is_fatal(e)
        {
            let p = producer.clone();
            // A wedged abort is reported as such; a failed one leaves the transaction to
            // the coordinator's timeout, and the next begin says so.
            if let Err(Failure::Wedged(call)) = blocking("abort_transaction", move || {
                p.abort_transaction(TXN_TIMEOUT)
            })
            .await
            {
                return Err(Failure::Wedged(call));
            }
        }
        result
    }
}

fn kafka_error(f: Failure) -> KafkaError {
    match f {
        Failure::Kafka(e) => e,
        Failure::Wedged(_) => KafkaError::MessageProduction(RDKafkaErrorCode::OperationTimedOut),
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

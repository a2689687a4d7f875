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

/// Enqueues every record (waiting while the local queue is full), then awaits every delivery;
/// the first error, if any.
pub async fn produce_all(
    producer: &FutureProducer,
    records: &[OutRecord],
) -> Result<(), KafkaError> {
    match produce_each(producer, records).await.0.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Records a publish did not deliver: their index in the batch and why.
#[derive(Debug, Clone)]
pub struct Undelivered(pub Vec<(usize, KafkaError)>);

impl std::fmt::Display for Undelivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.first() {
            Some((_, e)) => write!(f, "{} records not delivered: {e}", self.0.len()),
            None => write!(f, "nothing undelivered"),
        }
    }
}

impl std::error::Error for Undelivered {}

impl Undelivered {
    /// Every record of a batch of `n`, for the same reason (a transaction that did not commit).
    fn all(n: usize, e: &KafkaError) -> Self {
        Self((0..n).map(|i| (i, e.clone())).collect())
    }
}

/// Enqueues every record, then awaits every delivery; the records not delivered, by index.
async fn produce_each(producer: &FutureProducer, records: &[OutRecord]) -> Undelivered {
    let mut pending: Vec<(usize, DeliveryFuture)> = Vec::with_capacity(records.len());
    let mut failed = Vec::new();
    for (i, r) in records.iter().enumerate() {
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
                    pending.push((i, delivery));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // Refused before it left (larger than the producer's message.max.bytes).
                Err((e, _)) => {
                    failed.push((i, e));
                    break;
                }
            }
        }
    }
    let (indices, deliveries): (Vec<usize>, Vec<DeliveryFuture>) = pending.into_iter().unzip();
    for (i, result) in indices.into_iter().zip(join_all(deliveries).await) {
        match result {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => failed.push((i, e)),
            Err(_) => failed.push((i, KafkaError::Canceled)),
        }
    }
    failed.sort_by_key(|(i, _)| *i);
    Undelivered(failed)
}

/// Whether the broker (or the producer) will refuse this record however often it is sent:
/// too large, malformed, or a topic this client may not write, as one of
/// [`crate::REFUSAL_REASONS`]. Anything else (a broker away, a leader moving, a
/// timeout) is worth retrying.
pub fn refused_for_good(e: &KafkaError) -> Option<&'static str> {
    let KafkaError::MessageProduction(code) = e else {
        return None;
    };
    Some(match code {
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge => {
            "message_too_large"
        }
        RDKafkaErrorCode::InvalidRecord
        | RDKafkaErrorCode::InvalidMessage
        | RDKafkaErrorCode::InvalidMessageSize
        | RDKafkaErrorCode::InvalidTopic => "invalid_record",
        RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::ClusterAuthorizationFailed => "not_authorized",
        _ => return None,
    })
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
    pub fn new(m: &crate::KafkaMetrics) -> Self {
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
    /// Records were not delivered (the transaction is aborted).
    Records(Undelivered),
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
    ) -> Result<(), Undelivered> {
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
            Err(Failure::Records(undelivered)) => {
                tracing::warn!(
                    topic = self.topic,
                    partition = self.partition,
                    error = %undelivered,
                    "transaction did not commit"
                );
                undelivered.0.iter().any(|(_, e)| is_fatal(e))
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
        result.map_err(|f| match f {
            // Every record of an aborted transaction is undelivered; those refused say why.
            Failure::Records(Undelivered(failed)) => {
                let mut all = Undelivered::all(records.len(), &KafkaError::Canceled);
                for (i, e) in failed {
                    if let Some(slot) = all.0.get_mut(i) {
                        slot.1 = e;
                    }
                }
                all
            }
            other => Undelivered::all(records.len(), &kafka_error(other)),
        })
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
            let undelivered = produce_each(&producer, records).await;
            if !undelivered.0.is_empty() {
                return Err(Failure::Records(undelivered));
            }
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
        let abortable = match &result {
            Err(Failure::Kafka(e)) => !is_fatal(e),
            Err(Failure::Records(u)) => !u.0.iter().any(|(_, e)| is_fatal(e)),
            _ => false,
        };
        if abortable {
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
        Failure::Records(u) => {
            u.0.into_iter()
                .next()
                .map_or(KafkaError::Canceled, |(_, e)| e)
        }
        Failure::Wedged(_) => KafkaError::MessageProduction(RDKafkaErrorCode::OperationTimedOut),
    }
}

/// The publisher port: where a partition's output goes. [`Publisher`] is Kafka; a test may
/// put a publisher of its own here, to run a partition without a broker.
pub trait Publish: Send + Sync + 'static {
    /// Produces `records`; in transactional mode, with the offset after `consumed` (the last
    /// offset of the batch) committed atomically with them. On failure, the records not
    /// delivered: some of them in plain mode, all of them when a transaction did not commit.
    /// [`crate::delivery::Delivery::deliver`] retries and dead-letters what this leaves.
    fn publish(
        &self,
        records: &[OutRecord],
        consumed: Option<i64>,
    ) -> impl std::future::Future<Output = Result<(), Undelivered>> + Send;
}

impl Publish for Publisher {
    async fn publish(
        &self,
        records: &[OutRecord],
        consumed: Option<i64>,
    ) -> Result<(), Undelivered> {
        match self {
            Self::Plain(p) => {
                let undelivered = produce_each(p, records).await;
                if undelivered.0.is_empty() {
                    Ok(())
                } else {
                    Err(undelivered)
                }
            }
            Self::Transactional(t) => t.publish(records, consumed).await,
        }
    }
}

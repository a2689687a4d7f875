//! Producing records: never one await per message; every delivery is awaited before offsets
//! move on.

use std::time::Duration;

use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

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
    Transactional {
        producer: FutureProducer,
        group: rdkafka::consumer::ConsumerGroupMetadata,
        topic: String,
        partition: i32,
    },
}

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

impl Publisher {
    /// Produces `records`; in transactional mode, with the offset after `consumed` (the last
    /// offset of the batch) committed atomically with them.
    pub async fn publish(
        &self,
        records: &[OutRecord],
        consumed: Option<i64>,
    ) -> Result<(), KafkaError> {
        use rdkafka::producer::Producer;
        match self {
            Self::Plain(p) => produce_all(p, records).await,
            Self::Transactional {
                producer,
                group,
                topic,
                partition,
            } => {
                if records.is_empty() && consumed.is_none() {
                    return Ok(());
                }
                producer.begin_transaction()?;
                let result = async {
                    produce_all(producer, records).await?;
                    if let Some(offset) = consumed {
                        let mut tpl = rdkafka::TopicPartitionList::new();
                        tpl.add_partition_offset(
                            topic,
                            *partition,
                            rdkafka::Offset::Offset(offset + 1),
                        )?;
                        producer.send_offsets_to_transaction(&tpl, group, TXN_TIMEOUT)?;
                    }
                    producer.commit_transaction(TXN_TIMEOUT)
                }
                .await;
                if result.is_err() {
                    let _ = producer.abort_transaction(TXN_TIMEOUT);
                }
                result
            }
        }
    }
}

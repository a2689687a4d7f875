//! The baseline: the least a Kafka → Redis → Kafka pipeline does per event. It consumes the
//! channel topics as one consumer-group member, does one pipelined Redis GET and SET per
//! event (a whole batch in one round trip) and produces one message per event, awaiting
//! every delivery before committing, as Switchboard does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use switchboard_config::Config;
use switchboard_pipeline::output::{OutRecord, produce_all};
use switchboard_pipeline::services::producer;
use tokio_util::sync::CancellationToken;

const MAX_BATCH: usize = 500;

/// Runs the baseline until `stop`, counting events taken in `consumed` and finished in
/// `done`.
pub async fn run(
    config: Arc<Config>,
    output_topic: String,
    consumed: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let consumer: StreamConsumer = switchboard_kafka::client_config(&config.kafka)
        .set(
            "group.id",
            format!("{}-baseline", config.kafka.group_prefix),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .create()?;
    let topics: Vec<String> = config
        .topics
        .channels
        .iter()
        .map(|c| format!("{}{c}", config.topics.events_prefix))
        .collect();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let producer = producer(&config)?;
    let mut redis = redis::Client::open(config.redis.url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let mut stream = consumer.stream();
    loop {
        // A batch: what is ready now, up to MAX_BATCH.
        let first = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            m = stream.next() => m,
        };
        let Some(first) = first else { return Ok(()) };
        let mut batch: Vec<OwnedMessage> = vec![first?.detach()];
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout(Duration::ZERO, stream.next()).await {
                Ok(Some(Ok(m))) => batch.push(m.detach()),
                _ => break,
            }
        }
        consumed.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut pipe = redis::pipe();
        for m in &batch {
            let key = format!(
                "base:{}",
                String::from_utf8_lossy(m.key().unwrap_or_default())
            );
            pipe.get(&key).ignore();
            pipe.set(&key, m.offset()).ignore();
        }
        pipe.query_async::<()>(&mut redis).await?;
        let out: Vec<OutRecord> = batch
            .iter()
            .map(|m| OutRecord {
                topic: output_topic.clone(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers: Vec::new(),
            })
            .collect();
        produce_all(&producer, &out).await?;
        for m in &batch {
            consumer.store_offset(m.topic(), m.partition(), m.offset())?;
        }
        done.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
}

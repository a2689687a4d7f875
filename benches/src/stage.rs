//! A pipeline stage with nothing in it but traffic: it consumes topics as one consumer-group
//! member, makes the Redis round trips a batch of its kind needs, and produces a given number
//! of messages per event, awaiting every delivery before storing the offsets, as
//! Switchboard's services do. The baseline is one stage; the floor, two.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use switchboard_config::Config;
use switchboard_kafka::{OutRecord, produce_all};
use switchboard_services::services::producer;
use tokio_util::sync::CancellationToken;

use crate::Error;

const MAX_BATCH: usize = 500;

/// The Redis round trips of a batch, each a pipeline of one command per event.
#[derive(Debug, Clone, Copy)]
pub enum Lookups {
    /// A GET and a SET per event in one round trip (the baseline).
    GetAndSet,
    /// A GET per event (an identity lookup).
    Get,
    /// A GET per event, then a SET per event: a load, and a save that needs what it loaded.
    GetThenSet,
}

/// Where a stage's messages go: `per_event` messages to `topic` for each event taken (after
/// n events, n × `per_event` rounded down in all: 2.4 gives 2, 2, 3, 2, 3, ...).
#[derive(Debug, Clone)]
pub struct Output {
    pub topic: String,
    pub per_event: f64,
}

#[derive(Debug, Clone)]
pub struct Stage {
    /// The consumer group's name after the configuration's group prefix.
    pub group: String,
    pub inputs: Vec<String>,
    pub lookups: Lookups,
    pub outputs: Vec<Output>,
    /// Events taken so far, and events through, when counted.
    pub taken: Option<Arc<AtomicU64>>,
    pub done: Option<Arc<AtomicU64>>,
}

/// Runs `stage` until `stop`.
pub async fn run(config: Arc<Config>, stage: Stage, stop: CancellationToken) -> Result<(), Error> {
    let consumer: StreamConsumer = switchboard_kafka::client_config(&config.kafka)
        .set(
            "group.id",
            format!("{}-{}", config.kafka.group_prefix, stage.group),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .create()?;
    let inputs: Vec<&str> = stage.inputs.iter().map(String::as_str).collect();
    consumer.subscribe(&inputs)?;
    let producer = producer(&config)?;
    let mut redis = redis::Client::open(config.redis.url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let mut shares: Vec<Share> = stage
        .outputs
        .iter()
        .map(|o| Share::new(o.per_event))
        .collect();
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
        if let Some(taken) = &stage.taken {
            taken.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        let keys: Vec<String> = batch
            .iter()
            .map(|m| {
                format!(
                    "{}:{}",
                    stage.group,
                    String::from_utf8_lossy(m.key().unwrap_or_default())
                )
            })
            .collect();
        let mut pipe = redis::pipe();
        for (key, m) in keys.iter().zip(&batch) {
            pipe.get(key).ignore();
            if let Lookups::GetAndSet = stage.lookups {
                pipe.set(key, m.offset()).ignore();
            }
        }
        pipe.query_async::<()>(&mut redis).await?;
        if let Lookups::GetThenSet = stage.lookups {
            // A record's worth: the event itself.
            let mut pipe = redis::pipe();
            for (key, m) in keys.iter().zip(&batch) {
                pipe.set(key, m.payload().unwrap_or_default()).ignore();
            }
            pipe.query_async::<()>(&mut redis).await?;
        }
        let mut out: Vec<OutRecord> = Vec::new();
        for m in &batch {
            for (o, share) in stage.outputs.iter().zip(&mut shares) {
                for _ in 0..share.next() {
                    out.push(OutRecord {
                        topic: o.topic.clone(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().unwrap_or_default().to_vec(),
                        headers: Vec::new(),
                    });
                }
            }
        }
        produce_all(&producer, &out).await?;
        for m in &batch {
            consumer.store_offset(m.topic(), m.partition(), m.offset())?;
        }
        if let Some(done) = &stage.done {
            done.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
    }
}

/// Messages per event at a fractional rate: after n events, n × rate rounded down in all.
struct Share {
    per_event: f64,
    events: u64,
    produced: u64,
}

impl Share {
    fn new(per_event: f64) -> Self {
        Self {
            per_event: per_event.max(0.0),
            events: 0,
            produced: 0,
        }
    }

    /// Messages due for one more event.
    fn next(&mut self) -> u64 {
        self.events += 1;
        // The epsilon keeps 5 × 2.4 at 12, not 11.999….
        let total = (self.events as f64 * self.per_event + 1e-9).floor() as u64;
        let due = total.saturating_sub(self.produced);
        self.produced = total.max(self.produced);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::Share;

    #[test]
    fn a_fractional_rate_produces_its_whole_share_over_many_events() {
        let mut share = Share::new(2.4);
        let counts: Vec<u64> = (0..5).map(|_| share.next()).collect();
        assert_eq!(counts, [2, 2, 3, 2, 3]);
        let mut share = Share::new(2.41);
        assert_eq!((0..1_000).map(|_| share.next()).sum::<u64>(), 2_410);
        let mut share = Share::new(0.0);
        assert_eq!((0..10).map(|_| share.next()).sum::<u64>(), 0);
    }
}

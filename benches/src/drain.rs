//! Sustained throughput: a backlog produced, then drained from a standing start.

use std::collections::HashMap;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use switchboard_codec::{ChannelEvent, Codec, Framing, LocalSchemas};
use switchboard_config::Config;
use switchboard_kafka::{OutRecord, produce_all};
use switchboard_services::generate::event;
use switchboard_services::services::producer;

use crate::Error;
use crate::commands::{self, CommandStat};
use crate::parts::{Broker, Parts, System};
use crate::systems::start;

pub(crate) fn record(
    codec: &Codec<LocalSchemas>,
    config: &Config,
    e: &ChannelEvent,
) -> Result<OutRecord, Error> {
    Ok(OutRecord {
        topic: format!("{}{}", config.topics.events_prefix, e.channel),
        key: e.identifiers.first().map(|i| i.value.clone().into_bytes()),
        payload: codec.encode(e, Framing::Confluent)?,
        headers: Vec::new(),
    })
}

pub(crate) fn events(n: u64, seed: u64) -> Vec<ChannelEvent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let customers = u32::try_from(n / 5).unwrap_or(u32::MAX).max(1_000);
    (0..n).map(|i| event(&mut rng, customers, i)).collect()
}

/// What one drain of a backlog measured.
#[derive(Debug, Clone)]
pub(crate) struct Drain {
    /// Events per second.
    pub(crate) rate: f64,
    /// CPU seconds per million events of the pipeline, the broker and Redis.
    pub(crate) cpu: [f64; 3],
    /// Messages Switchboard's engine produced per event (0 for the others).
    pub(crate) produced: f64,
    /// Redis's commands during the drain, the most time first.
    pub(crate) commands: Vec<CommandStat>,
}

/// Produces `n` generated events (of `n / 5` customers, drawn with `seed`) to the channel
/// topics.
pub(crate) async fn backlog(
    parts: &Parts,
    config: &Config,
    n: u64,
    seed: u64,
) -> Result<(), Error> {
    let records: Vec<OutRecord> = events(n, seed)
        .iter()
        .map(|e| record(&parts.codec, config, e))
        .collect::<Result<_, _>>()?;
    if matches!(parts.broker, Broker::Mock(_)) {
        fits_mock_partitions(&records, parts.channel_partitions)?;
    }
    let p = producer(config)?;
    for chunk in records.chunks(10_000) {
        produce_all(&p, chunk).await?;
    }
    Ok(())
}

/// What librdkafka's mock cluster keeps of a partition (`rdkafka_mock.c`: `max_size`,
/// `max_cnt`): it drops the oldest message sets beyond either, so a bigger backlog would lose
/// its first events before any system read them, and the drain would never end.
const MOCK_PARTITION_BYTES: usize = 5 * 1024 * 1024;
const MOCK_PARTITION_RECORDS: usize = 100_000;

/// Refuses a backlog that the mock cluster would not keep whole: the biggest channel topic's
/// share per partition, with a tenth to spare for keys landing unevenly.
fn fits_mock_partitions(records: &[OutRecord], partitions: i32) -> Result<(), Error> {
    let mut per_topic: HashMap<&str, (usize, usize)> = HashMap::new();
    for r in records {
        let (count, bytes) = per_topic.entry(&r.topic).or_default();
        *count += 1;
        *bytes += r.payload.len() + r.key.as_ref().map_or(0, Vec::len) + 20;
    }
    let partitions = usize::try_from(partitions.max(1)).unwrap_or(1);
    for (topic, (count, bytes)) in per_topic {
        let (count, bytes) = (count * 11 / 10 / partitions, bytes * 11 / 10 / partitions);
        if count > MOCK_PARTITION_RECORDS || bytes > MOCK_PARTITION_BYTES {
            return Err(format!(
                "the backlog is too big for the mock cluster: {topic} would hold about {count} \
                 records and {} MB a partition, and it keeps {MOCK_PARTITION_RECORDS} and {} MB \
                 (the oldest are dropped); give a smaller backlog or more --channel-partitions",
                bytes / (1024 * 1024),
                MOCK_PARTITION_BYTES / (1024 * 1024),
            )
            .into());
        }
    }
    Ok(())
}

/// Drains a backlog of `n` events.
pub(crate) async fn throughput(
    system: System,
    parts: &Parts,
    n: u64,
    floor_produced: Option<f64>,
) -> Result<Drain, Error> {
    let config = parts.config().await?;
    if parts.returning > 0 {
        // The same customers' other events (other seeds), drained by the same consumer
        // groups and state first; the measured drain continues from their offsets.
        for seed in 2..2 + parts.returning {
            backlog(parts, &config, n, seed).await?;
        }
        let first = start(system, parts, &config, floor_produced).await?;
        first
            .drain(n * parts.returning, Duration::from_secs(1800))
            .await?;
        first.stop().await;
    }
    backlog(parts, &config, n, 1).await?;
    commands::reset(&parts.redis.url()).await?;
    let cpu0 = parts.cpu();
    let running = start(system, parts, &config, floor_produced).await?;
    let (secs, joined) = running.drain(n, Duration::from_secs(900)).await?;
    let cpu1 = parts.cpu();
    let commands = commands::read(&parts.redis.url()).await?;
    println!(
        "{}: first event taken {joined:.2} s after the start, {n} drained {secs:.2} s later",
        system.name(),
    );
    let produced = running.settled_produced().await / n as f64;
    running.stop().await;
    let mut cpu = [0.0; 3];
    for ((out, after), before) in cpu.iter_mut().zip(cpu1).zip(cpu0) {
        *out = (after - before) / n as f64 * 1e6;
    }
    Ok(Drain {
        rate: n as f64 / secs,
        cpu,
        produced,
        commands,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn records(n: usize, bytes: usize) -> Vec<OutRecord> {
        (0..n)
            .map(|_| OutRecord {
                topic: "t.events.web".into(),
                key: None,
                payload: vec![0; bytes],
                headers: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_backlog_the_mock_cluster_would_truncate_is_refused() {
        // 6 partitions of 400 000 records of 100 bytes: 66 667 records, 7.6 MB a partition.
        let err = fits_mock_partitions(&records(400_000, 100), 6).unwrap_err();
        assert!(err.to_string().contains("t.events.web"), "{err}");
        // The same over 12 partitions keeps 3.8 MB each; 650 000 tiny records are too many.
        assert!(fits_mock_partitions(&records(400_000, 100), 12).is_ok());
        assert!(fits_mock_partitions(&records(650_000, 1), 6).is_err());
    }
}

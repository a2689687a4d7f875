//! Latency: events offered at fractions of the sustained rate, timed from produce to output read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use switchboard_codec::{ChannelEvent, SendCommand};
use switchboard_kafka::{OutRecord, produce_all};
use switchboard_services::services::producer;
use switchboard_test_support::unique;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::batches::Batches;
use crate::drain::{events, record};
use crate::parts::{Parts, System};
use crate::systems::{output, start};

/// What the latency runs offer: these fractions of the sustained rate.
const FRACTIONS: [f64; 3] = [0.1, 0.5, 0.9];

/// Percentiles (p50, p99, p999) in milliseconds.
pub(crate) fn percentiles(mut ms: Vec<f64>) -> (f64, f64, f64) {
    if ms.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    (at(0.5), at(0.99), at(0.999))
}

pub(crate) struct LatencyRow {
    pub(crate) offered: f64,
    pub(crate) achieved: f64,
    pub(crate) samples: usize,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    /// Switchboard's partition batches meanwhile, per service.
    pub(crate) batches: String,
    /// CPU cores busy while offering: the pipeline, the broker and Redis.
    pub(crate) busy: [f64; 3],
}

/// Produces at each offered rate for `secs` seconds and measures produce → output consumed.
pub(crate) async fn latency(
    system: System,
    parts: &Parts,
    max: f64,
    secs: u64,
    floor_produced: Option<f64>,
) -> Result<Vec<LatencyRow>, Error> {
    let mut rows = Vec::new();
    for (i, fraction) in FRACTIONS.iter().enumerate() {
        let rate = max * fraction;
        rows.push(latency_at(system, parts, rate, secs, 10 + i as u64, floor_produced).await?);
    }
    Ok(rows)
}

/// Produces at `rate` for `secs` seconds and measures produce → output consumed, on topics of
/// its own: the mock cluster finds a fetch's offset by scanning every message set of the
/// partition (`rd_kafka_mock_msgset_find`, "FIXME: Maintain an index"), which on a log
/// written in small batches for a minute took 39 % of the process's CPU.
async fn latency_at(
    system: System,
    parts: &Parts,
    rate: f64,
    secs: u64,
    seed: u64,
    floor_produced: Option<f64>,
) -> Result<LatencyRow, Error> {
    let config = parts.config().await?;
    let running = start(system, parts, &config, floor_produced).await?;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen: Arc<Mutex<Vec<f64>>> = Arc::default();
    let outputs: Vec<String> = match system {
        System::Baseline | System::Floor => vec![output(&config, system)],
        System::Switchboard => config
            .topics
            .channels
            .iter()
            .map(|c| format!("{}{c}", config.topics.commands_prefix))
            .collect(),
    };
    let reader: StreamConsumer = switchboard_kafka::client_config(&config.kafka)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", parts.fetch_wait_ms.to_string())
        .create()?;
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    reader.subscribe(&outputs)?;
    let reader_stop = CancellationToken::new();
    let reader_task = tokio::spawn({
        let (sent, seen, codec, stop) = (
            sent.clone(),
            seen.clone(),
            parts.codec.clone(),
            reader_stop.clone(),
        );
        async move {
            let mut stream = reader.stream();
            loop {
                let m = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = stream.next() => m,
                };
                let Some(Ok(m)) = m else { continue };
                let at = Instant::now();
                let payload = m.payload().unwrap_or_default();
                let id = match system {
                    System::Baseline | System::Floor => codec
                        .decode::<ChannelEvent>(payload)
                        .await
                        .map(|e| e.event_id),
                    // A command names its trigger `event:<event_id>`.
                    System::Switchboard => codec.decode::<SendCommand>(payload).await.map(|c| {
                        c.reason
                            .trigger
                            .strip_prefix("event:")
                            .unwrap_or_default()
                            .to_owned()
                    }),
                };
                let Ok(id) = id else { continue };
                let start = sent.lock().ok().and_then(|s| s.get(&id).copied());
                if let (Some(start), Ok(mut seen)) = (start, seen.lock()) {
                    seen.push(at.duration_since(start).as_secs_f64() * 1000.0);
                }
            }
        }
    });
    // Let the group settle before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = producer(&config)?;
    let warmup = parts.warmup.as_secs_f64();
    let pool = events((rate * (warmup + secs as f64)) as u64 + 1, seed);
    // What the measured seconds start from: events taken, batches, CPU, time.
    let mut measured: Option<(usize, Vec<Batches>, [f64; 3], Instant)> = None;
    let t0 = Instant::now();
    let mut next = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while t0.elapsed() < parts.warmup + Duration::from_secs(secs) && next < pool.len() {
        tick.tick().await;
        if measured.is_none() && t0.elapsed() >= parts.warmup {
            measured = Some((next, (running.batches)(), parts.cpu(), Instant::now()));
        }
        let due = ((t0.elapsed().as_secs_f64() * rate) as usize).min(pool.len());
        let fresh = pool.get(next..due).unwrap_or_default();
        let batch: Vec<OutRecord> = fresh
            .iter()
            .map(|e| record(&parts.codec, &config, e))
            .collect::<Result<_, _>>()?;
        // Only events offered in the measured seconds are timed.
        if measured.is_some()
            && let Ok(mut s) = sent.lock()
        {
            let now = Instant::now();
            for e in fresh {
                s.insert(e.event_id.clone(), now);
            }
        }
        next = due;
        let p = p.clone();
        tokio::spawn(async move { produce_all(&p, &batch).await });
    }
    let Some((first, batches0, cpu0, t1)) = measured else {
        return Err("the offered rate ended before its measured seconds".into());
    };
    let secs_offered = t1.elapsed().as_secs_f64();
    let achieved = (next - first) as f64 / secs_offered;
    let mut busy = [0.0; 3];
    for ((b, after), before) in busy.iter_mut().zip(parts.cpu()).zip(cpu0) {
        *b = (after - before) / secs_offered;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let batches = Batches::describe(&batches0, &(running.batches)());
    let samples = seen
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    let (p50, p99, p999) = percentiles(samples.clone());
    let row = LatencyRow {
        offered: rate,
        achieved,
        samples: samples.len(),
        p50,
        p99,
        p999,
        batches,
        busy,
    };
    reader_stop.cancel();
    let _ = reader_task.await;
    running.stop().await;
    Ok(row)
}

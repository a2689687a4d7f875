//! The latency runs' customers, in a process of their own: they offer events every
//! millisecond at a given rate and time each from its produce to the arrival of what it
//! caused at a reader in the same process. Apart from the pipeline's process, so the pipeline
//! neither shares a runtime with them nor is charged their CPU, and the offering does not
//! wait on the pipeline's scheduling.
//!
//! The harness starts `switchboard-bench --offer <spec>` (the spec as JSON) once the system
//! under test runs, and reads one JSON line of results from its standard output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde::{Deserialize, Serialize};
use switchboard_codec::{ChannelEvent, Codec, LocalSchemas, SendCommand};
use switchboard_config::Config;
use switchboard_kafka::{OutRecord, produce_all};
use switchboard_services::services::producer;
use switchboard_test_support::unique;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::drain::{events, record};

/// What to offer, and where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Offer {
    pub(crate) config: Config,
    /// Where the output goes: the command topics, or a baseline's output topic.
    pub(crate) outputs: Vec<String>,
    /// The output's records are commands (their trigger names the event), else events.
    pub(crate) commands: bool,
    pub(crate) rate: f64,
    pub(crate) warmup_secs: f64,
    pub(crate) secs: u64,
    pub(crate) seed: u64,
    pub(crate) fetch_wait_ms: u32,
}

/// What was measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Offered {
    /// Events per second offered in the measured seconds.
    pub(crate) achieved: f64,
    /// Produce → output read, in milliseconds, of each event offered in the measured seconds
    /// whose output was read.
    pub(crate) latencies_ms: Vec<f64>,
}

/// Runs `offer` in a child process and returns what it measured.
pub(crate) async fn in_child(offer: &Offer) -> Result<Offered, Error> {
    let spec = serde_json::to_string(offer)?;
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--offer")
        .arg(spec)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!("the offering process failed: {}", out.status).into());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let last = line
        .lines()
        .last()
        .ok_or("the offering process said nothing")?;
    Ok(serde_json::from_str(last)?)
}

/// The offering process: offers, reads, and prints the results as one JSON line.
pub(crate) async fn run(spec: &str) -> Result<(), Error> {
    let offer: Offer = serde_json::from_str(spec)?;
    let offered = measure(&offer).await?;
    println!("{}", serde_json::to_string(&offered)?);
    Ok(())
}

/// The events an offer of `rate` draws from (of a fifth as many customers): enough for its
/// warm-up and measured seconds.
pub(crate) fn pool_size(rate: f64, warmup: Duration, secs: u64) -> u64 {
    (rate * (warmup + Duration::from_secs(secs)).as_secs_f64()) as u64 + 1
}

async fn measure(offer: &Offer) -> Result<Offered, Error> {
    let config = &offer.config;
    let codec = Arc::new(Codec::new(LocalSchemas::embedded()?).await?);
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen: Arc<Mutex<Vec<f64>>> = Arc::default();
    let reader: StreamConsumer = switchboard_kafka::client_config(&config.kafka)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", offer.fetch_wait_ms.to_string())
        .create()?;
    let outputs: Vec<&str> = offer.outputs.iter().map(String::as_str).collect();
    reader.subscribe(&outputs)?;
    let stop = CancellationToken::new();
    let reading = tokio::spawn({
        let (sent, seen, codec, stop, commands) = (
            sent.clone(),
            seen.clone(),
            codec.clone(),
            stop.clone(),
            offer.commands,
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
                // A command names its trigger `event:<event_id>`.
                let id = if commands {
                    codec.decode::<SendCommand>(payload).await.map(|c| {
                        let trigger = c.reason.trigger;
                        trigger
                            .strip_prefix("event:")
                            .unwrap_or_default()
                            .to_owned()
                    })
                } else {
                    codec
                        .decode::<ChannelEvent>(payload)
                        .await
                        .map(|e| e.event_id)
                };
                let Ok(id) = id else { continue };
                // The first output of an event times it (an event may cause several).
                let start = sent.lock().ok().and_then(|mut s| s.remove(&id));
                if let (Some(start), Ok(mut seen)) = (start, seen.lock()) {
                    seen.push(at.duration_since(start).as_secs_f64() * 1000.0);
                }
            }
        }
    });
    // Let the reader's group settle before offering.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = producer(config)?;
    let warmup = Duration::from_secs_f64(offer.warmup_secs);
    let total = warmup + Duration::from_secs(offer.secs);
    let pool = events(pool_size(offer.rate, warmup, offer.secs), offer.seed);
    let mut measured: Option<(usize, Instant)> = None;
    let t0 = Instant::now();
    let mut next = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while t0.elapsed() < total && next < pool.len() {
        tick.tick().await;
        if measured.is_none() && t0.elapsed() >= warmup {
            measured = Some((next, Instant::now()));
        }
        let due = ((t0.elapsed().as_secs_f64() * offer.rate) as usize).min(pool.len());
        let fresh = pool.get(next..due).unwrap_or_default();
        if fresh.is_empty() {
            continue;
        }
        let batch: Vec<OutRecord> = fresh
            .iter()
            .map(|e| record(&codec, config, e))
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
    let Some((first, t1)) = measured else {
        return Err("the offered rate ended before its measured seconds".into());
    };
    let achieved = (next - first) as f64 / t1.elapsed().as_secs_f64();
    // What is still on its way.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let _ = reading.await;
    let latencies_ms = seen
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    Ok(Offered {
        achieved,
        latencies_ms,
    })
}

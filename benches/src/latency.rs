//! Latency: events offered at fractions of the sustained rate by a separate process, timed
//! there from produce to output read.

use std::time::{Duration, Instant};

use crate::Error;
use crate::batches::Batches;
use crate::drain::backlog;
use crate::offer::{Offer, in_child, pool_size};
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

/// Offers `rate` for `secs` seconds from a process of its own ([`crate::offer`]) and measures
/// produce → output read there, on topics of its own: the mock cluster finds a fetch's offset
/// by scanning every message set of the partition (`rd_kafka_mock_msgset_find`, "FIXME:
/// Maintain an index"), which on a log written in small batches for a minute took 39 % of the
/// process's CPU.
async fn latency_at(
    system: System,
    parts: &Parts,
    rate: f64,
    secs: u64,
    seed: u64,
    floor_produced: Option<f64>,
) -> Result<LatencyRow, Error> {
    let config = parts.config().await?;
    let returning = parts.returning;
    let pool = pool_size(rate, parts.warmup, secs);
    // The offered customers' other events (other seeds; the same customers, as the pool's
    // size picks them), drained unmeasured first: their identifiers known, records stored.
    for n in 1..=returning {
        backlog(parts, &config, pool, seed + 1_000 * n).await?;
    }
    let running = start(system, parts, &config, floor_produced).await?;
    if returning > 0 {
        running
            .drain(pool * returning, Duration::from_secs(1800))
            .await?;
    }
    let outputs: Vec<String> = match system {
        System::Baseline | System::Floor => vec![output(&config, system)],
        System::Switchboard => config
            .topics
            .channels
            .iter()
            .map(|c| format!("{}{c}", config.topics.commands_prefix))
            .collect(),
    };
    let offer = Offer {
        config: (*config).clone(),
        outputs,
        commands: system == System::Switchboard,
        rate,
        warmup_secs: parts.warmup.as_secs_f64(),
        secs,
        seed,
        fetch_wait_ms: parts.fetch_wait_ms,
    };
    let offering = tokio::spawn(async move { in_child(&offer).await });
    // The offering process settles its reader (3 s) and warms up; then its measured
    // seconds run: batches and CPU are taken over them.
    tokio::time::sleep(Duration::from_secs(3) + parts.warmup).await;
    let (batches0, cpu0, t1) = ((running.batches)(), parts.cpu(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = t1.elapsed().as_secs_f64();
    let mut busy = [0.0; 3];
    for ((b, after), before) in busy.iter_mut().zip(parts.cpu()).zip(cpu0) {
        *b = (after - before) / elapsed;
    }
    let batches = Batches::describe(&batches0, &(running.batches)());
    let offered = offering.await??;
    let (p50, p99, p999) = percentiles(offered.latencies_ms.clone());
    running.stop().await;
    Ok(LatencyRow {
        offered: rate,
        achieved: offered.achieved,
        samples: offered.latencies_ms.len(),
        p50,
        p99,
        p999,
        batches,
        busy,
    })
}

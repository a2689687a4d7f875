//! The load harness: Switchboard against a baseline Kafka → Redis → Kafka pipeline, and
//! against the floor (Switchboard's Kafka and Redis traffic with nothing in between), on the
//! same Apache Kafka broker and redis-server, in one run.
//!
//! For each system ([`systems`]): the sustained rate draining a backlog ([`drain`]: events/s,
//! CPU seconds per million events of the pipeline, the broker and Redis), then latency from
//! produce to output consumed at 10 %, 50 % and 90 % of that rate ([`latency`]: p50, p99,
//! p999). Prints a Markdown report and writes it with PNG charts into `benches/results/`
//! ([`report`]); `--scale` measures timers, memory and population instead ([`scale`]).
//!
//! `cargo run --release -p switchboard-bench -- [backlog events] [seconds per rate]`

mod baseline;
mod batches;
mod commands;
mod cpu;
mod drain;
mod latency;
mod offer;
mod parts;
mod plot;
mod report;
mod scale;
mod stage;
mod systems;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use switchboard_codec::{Codec, LocalSchemas};
use switchboard_test_support::{KafkaBroker, RedisServer, mock_cluster};

use crate::drain::{Drain, throughput};
use crate::latency::latency;
use crate::parts::{Broker, PARTITIONS, Parts, System};
use crate::report::{Report, markdown, plots};

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measures the baseline, Switchboard and the floor on one Apache Kafka broker and one
/// redis-server, and
/// writes `benches/results/`.
#[derive(Debug, Parser)]
struct Args {
    /// Events in the backlog each system drains (sustained throughput).
    #[arg(default_value_t = 50_000)]
    events: u64,
    /// Seconds at each offered rate (latency).
    #[arg(default_value_t = 10)]
    secs: u64,
    /// Backlog drains per system, the systems taking turns; the median drain is
    /// reported (one drain of this machine varies by up to 2x from run to run).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measure one system only (for profiling; the report is not written).
    #[arg(long, value_enum)]
    only: Option<System>,
    /// Skip the latency phases.
    #[arg(long)]
    no_latency: bool,
    /// Offer fractions of this rate instead of a measured maximum, without draining (for
    /// profiling at a given load; the report is not written).
    #[arg(long)]
    max_rate: Option<f64>,
    /// Run on librdkafka's in-process mock cluster instead of Apache Kafka (its thread's CPU is
    /// the broker's; the report goes to `benches/results/mock/`).
    #[arg(long)]
    mock_broker: bool,
    /// Measure scale instead (timers, memory per profile, population) into
    /// `benches/results/scale.md`.
    #[arg(long)]
    scale: bool,
    /// Scale: pending timers to fill and fire.
    #[arg(long, default_value_t = 1_000_000)]
    timers: u64,
    /// Scale: customers with two journeys in flight, for memory per profile.
    #[arg(long, default_value_t = 20_000)]
    profiles: u64,
    /// Scale: populations of known customers to measure an event against.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    population: Vec<u64>,
    /// Scale: events measured at each population.
    #[arg(long, default_value_t = 50_000)]
    population_events: u64,
    /// Producers' `linger.ms` for both systems (Switchboard's default when not given).
    #[arg(long)]
    linger_ms: Option<u32>,
    /// Consumers' `fetch.wait.max.ms` for both systems and the output reader: how long the
    /// broker may hold a fetch with nothing to return (the mock cluster holds it that long
    /// even when a record arrives meanwhile).
    #[arg(long, default_value_t = 10)]
    fetch_wait_ms: u32,
    /// Partitions of each channel topic (`events.<channel>`, what the stitcher and the
    /// baseline consume; every other topic has 6): the stitcher runs a task per partition,
    /// and fewer partitions make its batches larger at the same rate.
    #[arg(long, default_value_t = PARTITIONS)]
    channel_partitions: i32,
    /// Seconds each offered rate runs before its measured seconds, unmeasured: the first
    /// events after a start wait for what starting leaves to do (first requests to new
    /// topics, connections, a backlog that builds meanwhile).
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// Messages the floor's engine stage produces per event; by default what Switchboard's
    /// engine produced per event (journey transitions and commands) in its latest drain of
    /// the same run.
    #[arg(long)]
    floor_produced: Option<f64>,
    /// Before each measured drain and each offered rate, drain this many backlogs of the same
    /// customers unmeasured (each about five events a customer), so that the measured events are of
    /// returning customers (identifiers known, records stored) as in a deployment that has
    /// been running; 0: every customer is new.
    #[arg(long, default_value_t = 0)]
    returning: u64,
    /// Switchboard's `identity.cache_entries` (0: every event's identifiers are read from
    /// Redis), for a before/after of the stitcher's cache in one build.
    #[arg(long)]
    identity_cache_entries: Option<u64>,
    /// Where the report and its charts go (default `benches/results/`, or
    /// `benches/results/mock/` with `--mock-broker`).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Internal: be the latency runs' offering process, with this spec (JSON).
    #[arg(long, hide = true)]
    offer: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    if let Some(spec) = &args.offer {
        return offer::run(spec).await;
    }
    let parts = Parts {
        broker: if args.mock_broker {
            Broker::Mock(mock_cluster(1))
        } else {
            Broker::Kafka(KafkaBroker::start())
        },
        redis: RedisServer::start(),
        codec: Arc::new(Codec::new(LocalSchemas::embedded()?).await?),
        linger_ms: args.linger_ms,
        fetch_wait_ms: args.fetch_wait_ms,
        channel_partitions: args.channel_partitions,
        warmup: Duration::from_secs(args.warmup_secs),
        returning: args.returning,
        identity_cache_entries: args.identity_cache_entries,
    };
    if args.scale {
        return scale_report(&parts, &args).await;
    }
    let mut reports = Vec::new();
    let systems = match args.only {
        Some(system) => vec![system],
        None => vec![System::Baseline, System::Switchboard, System::Floor],
    };
    // The floor's messages per event: given, or Switchboard's in its latest drain.
    let mut floor_produced = args.floor_produced;
    let mut drains: Vec<Vec<Drain>> = vec![Vec::new(); systems.len()];
    if let Some(rate) = args.max_rate {
        for (system, drains) in systems.iter().zip(&mut drains) {
            println!("{}: {rate:.0} events/s given as the maximum", system.name());
            drains.push(Drain {
                rate,
                cpu: [f64::NAN; 3],
                produced: f64::NAN,
                commands: Vec::new(),
            });
        }
    }
    for round in 0..args.rounds.max(1) * usize::from(args.max_rate.is_none()) {
        for (system, drains) in systems.iter().zip(&mut drains) {
            let d = throughput(*system, &parts, args.events, floor_produced).await?;
            println!(
                "{} (drain {}): {:.0} events/s, CPU s per 1 M events: pipeline {:.1}, {} {:.1}, Redis {:.1}",
                system.name(),
                round + 1,
                d.rate,
                d.cpu[0],
                parts.broker.name(),
                d.cpu[1],
                d.cpu[2]
            );
            println!(
                "{} (drain {}): Redis per event (a script's time includes its commands'): {}",
                system.name(),
                round + 1,
                commands::per_event(&d.commands, args.events, 6)
            );
            if *system == System::Switchboard && args.floor_produced.is_none() {
                println!(
                    "switchboard: {:.2} messages produced per event by the engine",
                    d.produced
                );
                floor_produced = Some(d.produced);
            }
            drains.push(d);
        }
    }
    for (system, drains) in systems.into_iter().zip(drains) {
        let rounds: Vec<f64> = drains.iter().map(|d| d.rate).collect();
        let mut sorted = drains;
        sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let Some(&Drain { rate, cpu, .. }) = sorted.get(sorted.len() / 2) else {
            continue;
        };
        println!("{}: {rate:.0} events/s sustained (median)", system.name());
        let latency = if args.no_latency {
            Vec::new()
        } else {
            latency(system, &parts, rate, args.secs, floor_produced).await?
        };
        for l in &latency {
            println!(
                "{}: offered {:.0}/s achieved {:.0}/s: p50 {:.1} ms, p99 {:.1} ms, p999 {:.1} ms ({} samples); cores busy: pipeline {:.2}, {} {:.2}, Redis {:.2}; {}",
                system.name(),
                l.offered,
                l.achieved,
                l.p50,
                l.p99,
                l.p999,
                l.samples,
                l.busy[0],
                parts.broker.name(),
                l.busy[1],
                l.busy[2],
                l.batches
            );
        }
        reports.push(Report {
            system,
            rate,
            cpu,
            rounds,
            latency,
        });
    }
    if args.only.is_some() || args.no_latency || args.max_rate.is_some() {
        return Ok(()); // a partial run does not replace the report
    }
    let md = markdown(&reports, args.events, args.secs, &parts, floor_produced);
    println!("\n{md}");
    let dir = args.out.clone().unwrap_or_else(|| {
        let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        if args.mock_broker {
            results.join("mock")
        } else {
            results
        }
    });
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("report.md"), &md)?;
    plots(&reports, &dir)?;
    println!(
        "written: {}/report.md, latency.png and throughput.png",
        dir.display()
    );
    Ok(())
}

async fn scale_report(parts: &Parts, args: &Args) -> Result<(), Error> {
    let mut md = format!(
        "Scale, on {} and redis-server on this machine.\n\n",
        parts.broker.description()
    );
    let m = scale::memory_per_profile(parts, args.profiles).await?;
    println!(
        "memory: {:.0} bytes per profile ({} customers)",
        m.per_profile, m.customers
    );
    md.push_str(&format!(
        "### Redis memory per profile, two journeys in flight\n\n{} customers, each with a cart (abandoned cart waiting) and a product view (browse test waiting): **{:.0} bytes per profile** (`used_memory` before and after). By kind of key (`MEMORY USAGE` of every key):\n\n| keys | bytes per profile |\n|---|---:|\n",
        m.customers, m.per_profile
    ));
    for (kind, bytes) in &m.by_kind {
        md.push_str(&format!("| {kind} | {bytes:.0} |\n"));
    }
    let lengths = &m.record_lengths;
    let at = |q: f64| {
        lengths
            .get(((lengths.len() as f64 - 1.0) * q) as usize)
            .copied()
    };
    if let (Some(min), Some(median), Some(max)) = (at(0.0), at(0.5), at(1.0)) {
        let over = lengths.iter().filter(|l| **l > 252).count();
        let line = format!(
            "\nEngine records as stored (`STRLEN`, epoch and format included): {min} to {max} bytes, median {median}; {over} of {} over 252 (past Redis's 256-byte size class with the string's header).\n",
            lengths.len()
        );
        println!("{}", line.trim());
        md.push_str(&line);
    }
    save_scale(&md)?;
    let t = scale::timers(parts, args.timers).await?;
    println!(
        "timers: {} filled in {:.1} s, {:.0} bytes each, fired in {:.1} s ({:.0}/s), longest Redis call {} µs ({})",
        t.count,
        t.fill_secs,
        t.bytes_per_timer,
        t.fire_secs,
        t.count as f64 / t.fire_secs,
        t.longest_call_us,
        t.longest_call
    );
    md.push_str(&format!(
        "\n### Pending timers\n\n| timers | Redis bytes per timer | Redis memory | fired through the engine's tick in | fire rate | longest Redis call while firing |\n|---:|---:|---:|---:|---:|---:|\n| {} | {:.0} | {:.0} MiB | {:.1} s | {:.0}/s | {} µs ({}) |\n\nFired back to back, every partition at once; the engine ticks every 200 ms and fires at most 500 timers per tick and partition, so a running engine fires at most 2 500/s per partition.\n",
        t.count,
        t.bytes_per_timer,
        t.bytes_per_timer * t.count as f64 / 1_048_576.0,
        t.fire_secs,
        t.count as f64 / t.fire_secs,
        t.longest_call_us,
        if t.longest_call.is_empty() { "none over 100 µs" } else { &t.longest_call }
    ));
    md.push_str("\n### Cost per event as the population grows\n\nThe population's identity graph (7 identifiers a customer) is written first by the stitcher's own algorithm straight into Redis (not measured); then generated events of those customers go through Kafka and the pipeline, measured. Their engine records are created by their first measured event.\n\n| known profiles | events | events/s | CPU s per 1 M events: pipeline | Kafka | Redis |\n|---:|---:|---:|---:|---:|---:|\n");
    for &n in &args.population {
        let p = scale::population(parts, n, args.population_events).await?;
        println!(
            "population {}: {:.0} events/s, CPU per 1 M events: pipeline {:.1}, Kafka {:.1}, Redis {:.1}",
            p.population, p.rate, p.cpu[0], p.cpu[1], p.cpu[2]
        );
        md.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} |\n",
            p.population, p.events, p.rate, p.cpu[0], p.cpu[1], p.cpu[2]
        ));
        save_scale(&md)?;
    }
    save_scale(&md)?;
    println!("\n{md}\nwritten: benches/results/scale.md");
    Ok(())
}

/// Writes what the scale run measured so far to `benches/results/scale.md`.
fn save_scale(md: &str) -> Result<(), Error> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("scale.md"), md)?;
    Ok(())
}

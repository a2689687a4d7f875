//! The two pipelines Switchboard is measured against, made of [`stage`](crate::stage)s that
//! carry traffic and do nothing else.
//!
//! - The **baseline**: the least a Kafka → Redis → Kafka pipeline does per event. One stage
//!   consumes the channel topics, does one pipelined Redis GET and SET per event (a batch in
//!   one round trip) and produces one message per event.
//! - The **floor**: the traffic Switchboard's design prescribes per event, with no decoding,
//!   stitching or journeys in between. A stitcher stage consumes the channel topics, looks
//!   each event up with one GET (an identity lookup) and produces it once to
//!   `customer.events`; an engine stage consumes that, loads with one GET and then saves
//!   with one SET per event (two round trips a batch: the save needs the load), and produces
//!   as many messages per event as Switchboard's engine produced in the same run (journey
//!   transitions and commands): one to the output the latency reader reads, the rest to
//!   `journeys.transitions`. What Switchboard does beyond that is left out (merges, new
//!   identifiers' claims and reservations, outbox clearing, timers), so the floor is a lower
//!   bound on what any implementation of the design spends.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use switchboard_config::Config;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::stage::{self, Lookups, Output, Stage};

fn channel_topics(config: &Config) -> Vec<String> {
    config
        .topics
        .channels
        .iter()
        .map(|c| format!("{}{c}", config.topics.events_prefix))
        .collect()
}

/// Runs the baseline until `stop`, counting events taken in `taken` and finished in `done`.
pub async fn baseline(
    config: Arc<Config>,
    output: String,
    taken: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Result<(), Error> {
    let stage = Stage {
        group: "baseline".into(),
        inputs: channel_topics(&config),
        lookups: Lookups::GetAndSet,
        outputs: vec![Output {
            topic: output,
            per_event: 1.0,
        }],
        taken: Some(taken),
        done: Some(done),
    };
    stage::run(config, stage, stop).await
}

/// Runs the floor until `stop`: `produced` messages per event from its engine stage (at
/// least one).
pub async fn floor(
    config: Arc<Config>,
    output: String,
    produced: f64,
    taken: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Result<(), Error> {
    let stitcher = Stage {
        group: "floor-stitcher".into(),
        inputs: channel_topics(&config),
        lookups: Lookups::Get,
        outputs: vec![Output {
            topic: config.topics.customer_events.clone(),
            per_event: 1.0,
        }],
        taken: Some(taken),
        done: None,
    };
    let engine = Stage {
        group: "floor-engine".into(),
        inputs: vec![config.topics.customer_events.clone()],
        lookups: Lookups::GetThenSet,
        outputs: vec![
            Output {
                topic: output,
                per_event: 1.0,
            },
            Output {
                topic: config.topics.transitions.clone(),
                per_event: (produced - 1.0).max(0.0),
            },
        ],
        taken: None,
        done: Some(done),
    };
    futures::try_join!(
        stage::run(config.clone(), stitcher, stop.clone()),
        stage::run(config, engine, stop),
    )?;
    Ok(())
}

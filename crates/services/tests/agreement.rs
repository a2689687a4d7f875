//! The engine service and `simulate` run one planner, so on the same events they publish the
//! same records. A generated stream (merges, waits, quiet hours, caps, goals) goes through
//! both: through `simulate` as `switchboard simulate` runs it, and through an engine partition
//! on the in-memory store with a publisher that keeps what it is given, the clock stepped to
//! each event and each due timer. Every command and transition must be the same, ids and all.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{Kept, catalog};
use rand::SeedableRng;
use rand::rngs::StdRng;
use switchboard_codec::{
    ChannelEvent, Codec, CustomerPayload, JourneyTransition, LocalSchemas, ProfileMerged,
    SendCommand, TransitionKind,
};
use switchboard_config::Config;
use switchboard_engine::simulate::{Stitch, published};
use switchboard_engine::{MemoryStateStore, Outgoing, Planner, Timers};
use switchboard_identity::MemoryIdentityStore;
use switchboard_kafka::Worker;
use switchboard_services::engine::EnginePartition;

/// 2026-01-15T10:00:00Z, a Thursday.
const T0: i64 = 1_768_471_200_000;
const MINUTE: i64 = 60_000;

/// The engine's clock in this test: set to each event's time, and to each timer's.
static CLOCK: AtomicI64 = AtomicI64::new(T0);

fn clock() -> i64 {
    CLOCK.load(Ordering::SeqCst)
}

/// `n` generated events of `customers` customers, a few minutes apart over about two weeks,
/// with some repeated (a channel system's retry).
fn stream(n: u64, customers: u32) -> Vec<ChannelEvent> {
    let mut rng = StdRng::seed_from_u64(25);
    let mut at = T0;
    let mut events = Vec::new();
    for seq in 0..n {
        at += rand::Rng::random_range(&mut rng, 1..90) * MINUTE;
        let mut e = switchboard_services::generate::event(&mut rng, customers, seq);
        e.occurred_at = at;
        if seq % 37 == 0
            && let Some(previous) = events.last().cloned()
        {
            events.push(ChannelEvent {
                occurred_at: at,
                ..previous
            });
        }
        events.push(e);
    }
    events
}

/// Records as compared: each with its id, sorted.
fn by_id(records: Vec<Outgoing>) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = records
        .into_iter()
        .map(|o| match &o {
            Outgoing::Command(c) => (c.command_id.clone(), format!("{o:?}")),
            Outgoing::Transition(t) => (t.transition_id.clone(), format!("{o:?}")),
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn the_engine_and_simulate_publish_the_same_records_for_a_generated_stream() {
    let events = stream(1_500, 80);
    let config = Arc::new(Config::default());
    let catalog = catalog();
    let planner = Planner::new(
        &catalog.journeys,
        &catalog.policies,
        config.identity.dedup_window_secs * 1000,
    );

    // simulate, as `switchboard simulate` runs it.
    let graph = MemoryIdentityStore::new();
    let rules = config.identity.clone();
    let mut stitch = |e: &ChannelEvent| {
        let (stitched, identifiers) = graph.stitch_now(&rules, &e.identifiers, e.occurred_at)?;
        Ok(Stitch {
            profile: stitched.profile.to_string(),
            identifiers,
            merges: (stitched.merges.iter())
                .map(|m| (m.survivor.to_string(), m.loser.to_string()))
                .collect(),
        })
    };
    let simulated = published(&planner, events.clone(), &mut stitch);

    // The engine: one partition, the in-memory store, stitched by the same rules.
    let codec = Arc::new(Codec::new(LocalSchemas::embedded().unwrap()).await.unwrap());
    let store = Arc::new(MemoryStateStore::new());
    let kept = Kept::default();
    let (mut partition, metrics, _catalog) =
        common::partition(codec.clone(), store.clone(), kept.clone(), clock).await;
    let graph = MemoryIdentityStore::new();
    let mut offset = 0;
    let mut merges = 0;
    let mut record = |payload, profile: &str, ids| {
        offset += 1;
        common::record(&codec, profile, payload, ids, offset)
    };
    let mut sorted = events;
    sorted.sort_by_key(|e| e.occurred_at);
    for e in sorted {
        fire_due(&mut partition, &store, e.occurred_at).await;
        CLOCK.store(e.occurred_at, Ordering::SeqCst);
        let Ok((stitched, identifiers)) = graph.stitch_now(&rules, &e.identifiers, e.occurred_at)
        else {
            continue; // simulate shows it as rejected; the stitcher dead-letters it
        };
        let mut batch = Vec::new();
        for m in &stitched.merges {
            merges += 1;
            let merged = CustomerPayload::Merged(ProfileMerged {
                survivor: m.survivor.to_string(),
                loser: m.loser.to_string(),
                cause_event_id: e.event_id.clone(),
            });
            batch.push(record(merged, m.survivor.as_str(), Vec::new()));
        }
        let profile = stitched.profile.to_string();
        let mut event = e.clone();
        event.identifiers.clone_from(&identifiers);
        batch.push(record(CustomerPayload::Event(event), &profile, identifiers));
        partition.process(batch).await.unwrap();
    }
    fire_due(&mut partition, &store, i64::MAX).await;

    let mut engine_published = Vec::new();
    let mut forwarded = 0;
    for r in kept.0.lock().unwrap().iter() {
        if r.topic == config.topics.transitions {
            let t: JourneyTransition = codec.decode(&r.payload).await.unwrap();
            engine_published.push(Outgoing::Transition(t));
        } else if r.topic.starts_with(&config.topics.commands_prefix) {
            let c: SendCommand = codec.decode(&r.payload).await.unwrap();
            engine_published.push(Outgoing::Command(c));
        } else if r.topic == config.topics.customer_events {
            forwarded += 1;
        } else {
            panic!("unexpected record on {}: {:?}", r.topic, r.headers);
        }
    }

    // The stream exercises what the two could disagree on.
    let count = |kind: TransitionKind, reason: Option<&str>| {
        (simulated.iter())
            .filter(|o| matches!(o, Outgoing::Transition(t) if t.kind == kind && (reason.is_none() || t.reason.as_deref() == reason)))
            .count()
    };
    let sends = (simulated.iter())
        .filter(|o| matches!(o, Outgoing::Command(_)))
        .count();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &simulated {
        if let Outgoing::Transition(t) = o {
            *kinds.entry(t.kind.as_str()).or_default() += 1;
        }
    }
    eprintln!(
        "simulated: {sends} sends, transitions {kinds:?}; engine: {merges} merges, {forwarded} forwarded"
    );
    assert!(sends > 50, "{sends} sends");
    assert!(merges > 0, "no merges");
    assert!(
        count(TransitionKind::Exited, Some("exit:reminded")) > 0,
        "{kinds:?}"
    );
    assert!(count(TransitionKind::Goal, None) > 0, "{kinds:?}");
    assert!(count(TransitionKind::Suppressed, None) > 0, "{kinds:?}");

    // The per-arm metrics say what the records say: entries join an arm at a split (or at
    // entry without one, or when held out), goals count per arm.
    let mut arm_entries: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut goals: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut steps: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    let splits = |j: &str| j == "browse-ab-test";
    for o in &simulated {
        let Outgoing::Transition(t) = o else { continue };
        let arm = match (t.holdout, &t.variant) {
            (true, _) => "control".to_owned(),
            (false, Some(v)) => v.clone(),
            (false, None) => "all".to_owned(),
        };
        let journey = t.journey.clone();
        match t.kind {
            TransitionKind::Holdout => *arm_entries.entry((journey, arm)).or_default() += 1.0,
            TransitionKind::Entered if !splits(&journey) => {
                *arm_entries.entry((journey, arm)).or_default() += 1.0
            }
            TransitionKind::Step => {
                if t.step_kind.as_deref() == Some("split") {
                    *arm_entries.entry((journey.clone(), arm)).or_default() += 1.0;
                }
                let step = t.step.clone().unwrap_or_default();
                let variant = t.variant.clone().unwrap_or_default();
                *steps.entry((journey, step, variant)).or_default() += 1.0;
            }
            TransitionKind::Goal => *goals.entry((journey, arm)).or_default() += 1.0,
            _ => {}
        }
    }
    assert!(arm_entries.keys().any(|(_, a)| a == "a") && goals.values().sum::<f64>() > 0.0);
    for ((journey, arm), n) in &arm_entries {
        let got = metrics.arm_entries.with_label_values(&[journey, arm]).get() as f64;
        assert_eq!(got, *n, "entries of {journey} {arm}");
    }
    for ((journey, arm), n) in &goals {
        let got = metrics.goals.with_label_values(&[journey, arm]).get() as f64;
        assert_eq!(got, *n, "goals of {journey} {arm}");
    }
    for ((journey, step, variant), n) in &steps {
        let got = metrics
            .steps
            .with_label_values(&[journey, step, variant])
            .get() as f64;
        assert_eq!(got, *n, "steps {journey}/{step} {variant}");
    }
    let (engine, simulated) = (by_id(engine_published), by_id(simulated));
    let only_engine: Vec<_> = engine.iter().filter(|r| !simulated.contains(r)).collect();
    let only_simulate: Vec<_> = simulated.iter().filter(|r| !engine.contains(r)).collect();
    assert!(
        only_engine.is_empty() && only_simulate.is_empty(),
        "only the engine published {only_engine:#?}\nonly simulate published {only_simulate:#?}"
    );
    assert_eq!(engine, simulated, "the same records, as often");
}

/// Fires the partition's timers due up to `until`, each at its own time, as simulate does.
async fn fire_due(
    partition: &mut EnginePartition<LocalSchemas, MemoryStateStore, Kept>,
    store: &MemoryStateStore,
    until: i64,
) {
    for _ in 0..100_000 {
        let next = store.due_timers(0, until, 1).await.unwrap();
        let Some(timer) = next.first() else { return };
        CLOCK.store(timer.due, Ordering::SeqCst);
        partition.tick().await.unwrap();
    }
    panic!("timers kept firing");
}

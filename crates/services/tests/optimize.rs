//! An optimized split on the engine's clock: customers enter, get a variant, and convert at
//! the rate their variant causes; once the test period has passed and each variant has its
//! entries, the engine's check settles the clearly better variant, announces it with a
//! `winner` transition, and new entries go there.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{Kept, event_record};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_codec::{Codec, JourneyTransition, LocalSchemas, SendCommand, TransitionKind};
use switchboard_config::Config;
use switchboard_engine::{MemoryStateStore, Splits};
use switchboard_journey::{JourneySet, compile};
use switchboard_kafka::Worker;
use switchboard_services::catalog::Catalog;
use switchboard_services::engine::EnginePartition;
use switchboard_test_support::examples::{DAY, HOUR, SUBJECT_LINE, T0, ev, policies};

const MINUTE: i64 = 60_000;

type Partition = EnginePartition<LocalSchemas, MemoryStateStore, Kept>;

static CLOCK: AtomicI64 = AtomicI64::new(T0);

fn clock() -> i64 {
    CLOCK.load(Ordering::SeqCst)
}

/// How often each variant's customers buy within the goal window.
fn converts(variant: &str) -> f64 {
    if variant == "b" { 0.20 } else { 0.05 }
}

#[tokio::test]
async fn after_its_period_an_optimized_split_settles_the_better_variant_and_sends_new_entries_there()
 {
    let policies = policies();
    let journey = compile("subject-line.yaml", SUBJECT_LINE, &policies.channels).unwrap();
    let catalog = Catalog::new(JourneySet::new([journey]), policies);
    let codec = Arc::new(Codec::new(LocalSchemas::embedded().unwrap()).await.unwrap());
    let store = Arc::new(MemoryStateStore::new());
    let kept = Kept::default();
    let (mut partition, metrics, _catalog) =
        common::partition_running(catalog, codec.clone(), store.clone(), kept.clone(), clock).await;
    let topics = Config::default().topics;
    let mut rng = StdRng::seed_from_u64(26);
    let mut offset = 0;
    let mut sent_so_far = 0;

    // One customer: a view, the email it brings, and a purchase an hour later as often as its
    // variant makes customers buy. Returns the template sent.
    let mut customer = async |partition: &mut Partition, i: u32, at: i64| {
        let profile = format!("p-{i}");
        let view = ev(&format!("v-{i}"), "product.viewed", "web", at, &profile)
            .id("email", &format!("c{i}@example.com"));
        CLOCK.store(at, Ordering::SeqCst);
        offset += 1;
        partition
            .process(vec![event_record(&codec, &profile, view.0, offset)])
            .await
            .unwrap();
        let commands = kept.on(&format!("{}email", topics.commands_prefix));
        let last = commands.get(sent_so_far).expect("the view sent an email");
        sent_so_far += 1;
        let cmd: SendCommand = codec.decode(&last.payload).await.unwrap();
        let variant = cmd.variant.clone().unwrap();
        if rng.random_bool(converts(&variant)) {
            let buy = ev(
                &format!("o-{i}"),
                "order.completed",
                "pos",
                at + HOUR,
                &profile,
            );
            CLOCK.store(at + HOUR, Ordering::SeqCst);
            offset += 1;
            partition
                .process(vec![event_record(&codec, &profile, buy.0, offset)])
                .await
                .unwrap();
        }
        cmd.template
    };
    let transitions = async || -> Vec<JourneyTransition> {
        let mut all = Vec::new();
        for r in kept.on(&topics.transitions) {
            all.push(codec.decode(&r.payload).await.unwrap());
        }
        all
    };

    // The test period: 400 customers over 20 hours, split about evenly.
    let mut templates = Vec::new();
    for i in 0..400 {
        templates.push(customer(&mut partition, i, T0 + i64::from(i) * 3 * MINUTE).await);
    }
    let b = templates.iter().filter(|t| *t == "subject-b").count();
    assert!((150..=250).contains(&b), "{b} of 400 drew b");
    // Before the period is over, the check picks nothing.
    CLOCK.store(T0 + 23 * HOUR, Ordering::SeqCst);
    partition.tick().await.unwrap();
    let winners = |ts: &[JourneyTransition]| {
        (ts.iter())
            .filter(|t| t.kind == TransitionKind::Winner)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(winners(&transitions().await), Vec::new());
    let tally = store.tally("subject-line").await.unwrap();
    assert_eq!(tally.started, Some(T0), "the first entry started the test");
    assert_eq!(tally.arms["a"].entries + tally.arms["b"].entries, 400);
    assert_eq!(tally.arms["b"].entries, b as u64);
    let goals = (transitions().await.iter())
        .filter(|t| t.kind == TransitionKind::Goal)
        .count() as u64;
    assert_eq!(tally.arms["a"].goals + tally.arms["b"].goals, goals);
    assert!(
        tally.arms["b"].conversion() > 2.0 * tally.arms["a"].conversion(),
        "{tally:?}"
    );

    // A day after the first entry, the next check settles b and announces it.
    CLOCK.store(T0 + DAY + MINUTE, Ordering::SeqCst);
    partition.tick().await.unwrap();
    let announced = winners(&transitions().await);
    assert_eq!(announced.len(), 1, "{announced:?}");
    let w = &announced[0];
    assert_eq!(
        (w.journey.as_str(), w.variant.as_deref(), w.step.as_deref()),
        ("subject-line", Some("b"), Some("choose"))
    );
    assert!(w.reason.as_deref().unwrap().contains("p = "), "{w:?}");
    assert_eq!(
        store.tally("subject-line").await.unwrap().winner.as_deref(),
        Some("b")
    );
    let counted = (metrics.transitions).with_label_values(&["subject-line", "winner"]);
    assert_eq!(counted.get(), 1);

    // Every new entry goes to b, its split transition saying why.
    let before = transitions().await.len();
    for i in 400..450 {
        let at = T0 + DAY + i64::from(i) * MINUTE;
        assert_eq!(customer(&mut partition, i, at).await, "subject-b");
    }
    let splits: Vec<_> = (transitions().await.into_iter().skip(before))
        .filter(|t| t.step_kind.as_deref() == Some("split"))
        .collect();
    assert_eq!(splits.len(), 50);
    assert!(
        (splits.iter())
            .all(|t| t.reason.as_deref() == Some("winner") && t.variant.as_deref() == Some("b")),
        "{splits:?}"
    );
    // A later check does not announce it again.
    CLOCK.store(T0 + 2 * DAY, Ordering::SeqCst);
    partition.tick().await.unwrap();
    assert_eq!(winners(&transitions().await).len(), 1);
}

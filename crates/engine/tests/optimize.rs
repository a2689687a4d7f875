//! `simulate` picks an optimized split's winner as the engine does, on its simulated clock.

mod common;

use std::collections::BTreeMap;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_engine::simulate::{Happening, What, simulate};
use switchboard_journey::{JourneySet, compile};

const MINUTE: i64 = 60_000;

fn views(customers: std::ops::Range<u32>, from: i64) -> Vec<Ev> {
    customers
        .map(|i| {
            let at = from + i64::from(i) * 3 * MINUTE;
            ev(
                &format!("v-{i}"),
                "product.viewed",
                "web",
                at,
                &format!("c{i}"),
            )
            .id("email", &format!("c{i}@example.com"))
        })
        .collect()
}

fn run(journeys: &JourneySet, events: Vec<Ev>) -> Vec<Happening> {
    simulate(
        journeys,
        &policies(),
        events.into_iter().map(|e| e.0).collect(),
    )
}

/// Each customer's variant, by the name simulate gives them.
fn variants(h: &[Happening]) -> BTreeMap<String, String> {
    (h.iter())
        .filter_map(|h| match &h.what {
            What::Send { variant, .. } => Some((h.customer.clone(), variant.clone()?)),
            _ => None,
        })
        .collect()
}

#[test]
fn simulate_settles_the_better_variant_after_the_period_and_sends_later_entries_there() {
    let policies = policies();
    let journeys = JourneySet::new([compile("s.yaml", SUBJECT_LINE, &policies.channels).unwrap()]);
    // A first run says which variant each of 400 customers draws ...
    let drawn = variants(&run(&journeys, views(0..400, T0)));
    assert_eq!(drawn.len(), 400);
    // ... so each buys as often as its variant makes customers buy: 5 % of a, 20 % of b.
    let mut rng = StdRng::seed_from_u64(26);
    let mut events = views(0..400, T0);
    for (i, view) in views(0..400, T0).into_iter().enumerate() {
        let customer = format!("customer_id:c{i}");
        let rate = if drawn[&customer] == "b" { 0.20 } else { 0.05 };
        if rng.random_bool(rate) {
            let at = view.0.occurred_at + HOUR;
            events.push(ev(
                &format!("o-{i}"),
                "order.completed",
                "pos",
                at,
                &format!("c{i}"),
            ));
        }
    }
    // 50 more customers a day later.
    events.extend(views(400..450, T0 + DAY - 400 * 3 * MINUTE + HOUR));
    let h = run(&journeys, events);

    let winners: Vec<&Happening> = (h.iter())
        .filter(|h| matches!(h.what, What::Winner { .. }))
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let What::Winner {
        journey,
        variant,
        reason,
    } = &winners[0].what
    else {
        unreachable!()
    };
    assert_eq!((journey.as_str(), variant.as_str()), ("subject-line", "b"));
    assert!(reason.contains("p = "), "{reason}");
    assert!(winners[0].at >= T0 + DAY, "not before the period is over");
    let later = variants(&h);
    for i in 400..450 {
        assert_eq!(later[&format!("customer_id:c{i}")], "b", "customer {i}");
    }
    for i in 0..400 {
        let c = format!("customer_id:c{i}");
        assert_eq!(
            later[&c], drawn[&c],
            "the test period's draws are unchanged"
        );
    }
    let shown = switchboard_engine::simulate::render(&h);
    assert!(shown.contains("winner      subject-line: b ("), "{shown}");
}

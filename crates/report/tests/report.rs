//! The report of a simulated A/B test whose conversion the test sets per arm: entries,
//! goals and conversion per arm are counted exactly, and each variant's lift interval holds
//! the true lift.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_codec::TransitionKind;
use switchboard_engine::simulate::{DEFAULT_DEDUP_WINDOW_MS, published, strongest_identifier};
use switchboard_engine::{Outgoing, Planner};
use switchboard_report::{CONTROL, Seen, report};
use switchboard_test_support::examples::{DAY, HOUR, T0, ev, journeys, policies};

/// The true conversion of each arm of `browse-ab-test`.
const TRUE_RATE: [(&str, f64); 3] = [("a", 0.30), ("b", 0.22), (CONTROL, 0.15)];

#[test]
fn a_simulated_test_reports_each_arms_conversion_and_a_lift_that_holds_the_true_one() {
    let (journeys, policies) = (journeys(), policies());
    let planner = Planner::new(&journeys, &policies, DEFAULT_DEDUP_WINDOW_MS);
    let customers = 4_000;
    let view = |n: u32| {
        ev(
            &format!("v{n}"),
            "product.viewed",
            "web",
            T0,
            &format!("c{n}"),
        )
        .id("email", &format!("c{n}@x.io"))
        .text("sku", "SKU-1")
        .0
    };
    // Who is in which arm: the journey decides (a hash of the customer).
    let views: Vec<_> = (0..customers).map(view).collect();
    let mut arm_of: BTreeMap<String, String> = BTreeMap::new();
    for o in published(&planner, views.clone(), &mut strongest_identifier) {
        if let Outgoing::Transition(t) = o {
            match t.kind {
                TransitionKind::Holdout => {
                    arm_of.insert(t.profile_id, CONTROL.to_owned());
                }
                TransitionKind::Step if t.variant.is_some() => {
                    arm_of.insert(t.profile_id, t.variant.unwrap_or_default());
                }
                _ => {}
            }
        }
    }
    // Each buys within the goal window with their arm's probability.
    let mut rng = StdRng::seed_from_u64(26);
    let mut events = views;
    let mut bought: BTreeMap<String, u64> = BTreeMap::new();
    for n in 0..customers {
        let arm = arm_of
            .get(&format!("customer_id:c{n}"))
            .cloned()
            .unwrap_or_default();
        let rate = TRUE_RATE
            .iter()
            .find(|(a, _)| *a == arm)
            .map_or(0.0, |(_, r)| *r);
        if rng.random_bool(rate) {
            *bought.entry(arm).or_default() += 1;
            let at = T0 + rng.random_range(HOUR..2 * DAY);
            events.push(
                ev(
                    &format!("o{n}"),
                    "order.completed",
                    "pos",
                    at,
                    &format!("c{n}"),
                )
                .0,
            );
        }
    }
    let records = published(&planner, events, &mut strongest_identifier)
        .into_iter()
        .map(|o| match o {
            Outgoing::Transition(t) => Seen::Transition(t),
            Outgoing::Command(c) => Seen::Command(c),
        });
    let r = report(records);
    let test = (r.journeys.iter())
        .find(|j| j.journey == "browse-ab-test")
        .expect("the test is reported");
    let entries: u64 = test.arms.iter().map(|a| a.entries).sum::<u64>() + test.control.entries;
    assert_eq!(entries, u64::from(customers));
    for a in test.arms.iter().chain(std::iter::once(&test.control)) {
        let expected_entries = arm_of.values().filter(|x| **x == a.name).count() as u64;
        assert_eq!(a.entries, expected_entries, "{}", a.name);
        assert_eq!(
            a.goals,
            bought.get(&a.name).copied().unwrap_or(0),
            "{}",
            a.name
        );
    }
    for l in &test.lifts {
        let rate = |arm: &str| {
            TRUE_RATE
                .iter()
                .find(|(a, _)| *a == arm)
                .map_or(0.0, |(_, r)| *r)
        };
        let true_points = 100.0 * (rate(&l.arm) - rate(CONTROL));
        assert!(
            l.low <= true_points && true_points <= l.high,
            "{}: {true_points:.1} outside [{:.1}, {:.1}]",
            l.arm,
            l.low,
            l.high
        );
        assert!(
            l.p_value < 0.05,
            "a true lift of 7 points or more is found: {l:?}"
        );
    }
    // Sends per channel and template, and the funnel reaching the send steps.
    let a = test.arms.iter().find(|a| a.name == "a").expect("arm a");
    assert_eq!(a.sends.iter().map(|s| s.commands).sum::<u64>(), a.entries);
    assert!(
        a.funnel
            .iter()
            .any(|s| s.step == "email-first" && s.entries == a.entries)
    );
    // The page holds every arm and the figures.
    let page = switchboard_report::html::render(&r, Some(&journeys));
    for arm in ["a", "b", CONTROL] {
        assert!(page.contains(&format!("data-arm=\"{arm}\"")), "{arm}");
    }
    assert!(page.contains("data-state=\"email-first\""));
}

/// An optimized split's `winner` transition is no entry's: the report shows it with its
/// journey (table, JSON, page), beside the arms' figures.
#[test]
fn the_winner_of_an_optimized_split_is_shown_with_its_journey() {
    use switchboard_codec::JourneyTransition;
    let t = |kind, entry: Option<&str>, variant: Option<&str>, reason: &str, at| {
        Seen::Transition(JourneyTransition {
            transition_id: format!("{kind:?}-{entry:?}-{at}"),
            profile_id: entry.map_or_else(String::new, |e| format!("p-{e}")),
            journey: "subject-line".into(),
            version: 1,
            kind,
            step: Some("choose".into()),
            reason: Some(reason.into()),
            trigger: "event:v".into(),
            at,
            variant: variant.map(str::to_owned),
            holdout: false,
            entry_id: entry.map(str::to_owned),
            step_kind: Some("split".into()),
        })
    };
    let records = vec![
        t(TransitionKind::Entered, Some("e1"), None, "", T0),
        t(TransitionKind::Step, Some("e1"), Some("a"), "split", T0),
        t(TransitionKind::Entered, Some("e2"), None, "", T0 + DAY),
        t(
            TransitionKind::Step,
            Some("e2"),
            Some("b"),
            "winner",
            T0 + DAY,
        ),
        t(
            TransitionKind::Winner,
            None,
            Some("b"),
            "a 4.00% of 1000, b 9.00% of 1000; p = 0.0000",
            T0 + DAY - HOUR,
        ),
    ];
    let r = report(records);
    assert_eq!(
        r.unattributed, 0,
        "the winner is no entry's, and not unattributed"
    );
    let j = &r.journeys[0];
    let w = j.winner.as_ref().expect("the winner is reported");
    assert_eq!((w.variant.as_str(), w.at), ("b", T0 + DAY - HOUR));
    assert_eq!(j.arms.iter().map(|a| a.entries).sum::<u64>(), 2);
    let table = switchboard_report::table::render(&r);
    assert!(
        table.contains(
            "winner b since 2026-01-16T09:00:00Z: a 4.00% of 1000, b 9.00% of 1000; p = 0.0000"
        ),
        "{table}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["journeys"][0]["winner"]["variant"], "b");
    let page = switchboard_report::html::render(&r, None);
    assert!(
        page.contains("Winner: <b>b</b> since 2026-01-16T09:00:00Z"),
        "{page}"
    );
}

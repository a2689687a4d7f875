//! Attribution: each entry into a journey with a goal, treated or held out, counts the first
//! goal event inside its window once, whether its instance still runs or not.

mod common;

use common::*;
use switchboard_engine::simulate::{Happening, What};

/// (customer, variant, holdout) of every goal of `journey`.
fn goals(h: &[Happening], journey: &str) -> Vec<(String, Option<String>, bool)> {
    h.iter()
        .filter_map(|x| match &x.what {
            What::Goal {
                journey: j,
                variant,
                holdout,
            } if j == journey => Some((x.customer.clone(), variant.clone(), *holdout)),
            _ => None,
        })
        .collect()
}

fn view(n: u32, at: i64) -> Ev {
    ev(
        &format!("v{n}-{at}"),
        "product.viewed",
        "web",
        at,
        &format!("c{n}"),
    )
    .id("email", &format!("c{n}@x.io"))
    .text("sku", "SKU-1")
}

fn order(n: u32, at: i64) -> Ev {
    ev(
        &format!("o{n}-{at}"),
        "order.completed",
        "pos",
        at,
        &format!("c{n}"),
    )
    .num("total", 40.0)
}

/// `browse-ab-test` splits, sends and exits in one step; before, its 3-day goal could never
/// be recorded, and its control group's purchases were not either.
#[test]
fn a_goal_after_the_journey_ended_counts_for_treated_and_held_out_entries_alike() {
    let customers = 300;
    let mut events = Vec::new();
    for n in 0..customers {
        events.push(view(n, T0));
        events.push(order(n, T0 + DAY));
    }
    let h = run(events);
    let held_out: Vec<String> = (h.iter())
        .filter(|x| matches!(&x.what, What::Holdout { journey } if journey == "browse-ab-test"))
        .map(|x| x.customer.clone())
        .collect();
    let sent: Vec<(String, Option<String>)> = (h.iter())
        .filter_map(|x| match &x.what {
            What::Send {
                journey, variant, ..
            } if journey == "browse-ab-test" => Some((x.customer.clone(), variant.clone())),
            _ => None,
        })
        .collect();
    assert!(!held_out.is_empty(), "a control group");
    assert_eq!(sent.len() + held_out.len(), customers as usize);
    let goals = goals(&h, "browse-ab-test");
    assert_eq!(
        goals.len(),
        customers as usize,
        "every entry converted, once"
    );
    for (customer, variant, holdout) in &goals {
        if *holdout {
            assert!(held_out.contains(customer), "{customer}");
            assert_eq!(*variant, None, "the control group has no variant");
        } else {
            let theirs = sent.iter().find(|(c, _)| c == customer).map(|(_, v)| v);
            assert_eq!(theirs, Some(variant), "the goal carries the variant sent");
        }
    }
    // And the journey had ended before: its exit comes first.
    let first = h
        .iter()
        .find(|x| x.customer == "customer_id:c0")
        .map(|x| x.at);
    let exit = (h.iter())
        .find(|x| {
            x.customer == "customer_id:c0"
                && matches!(&x.what, What::Exited { journey, .. } if journey == "browse-ab-test")
        })
        .map(|x| x.at);
    assert_eq!((first, exit), (Some(T0), Some(T0)));
}

#[test]
fn an_entry_counts_its_first_goal_in_the_window_once_and_none_after_it() {
    let h = run(vec![
        view(1, T0),
        order(1, T0 + DAY),
        order(1, T0 + 2 * DAY),
        // Another customer buys only after the 3-day window.
        view(2, T0),
        order(2, T0 + 3 * DAY + HOUR),
    ]);
    let goals = goals(&h, "browse-ab-test");
    let of = |c: &str| goals.iter().filter(|g| g.0 == c).count();
    assert_eq!(of("customer_id:c1"), 1, "{goals:?}");
    assert_eq!(of("customer_id:c2"), 0, "{goals:?}");
}

/// A re-entry starts a new attribution: a purchase after it counts for the new entry (by its
/// id), not the earlier one whose window is still open.
#[test]
fn a_reentry_starts_a_new_attribution() {
    use switchboard_codec::TransitionKind;
    use switchboard_engine::simulate::{DEFAULT_DEDUP_WINDOW_MS, published, strongest_identifier};
    use switchboard_engine::{Outgoing, Planner};
    let nudge = switchboard_journey::compile(
        "nudge.yaml",
        "journey: nudge\nversion: 1\nreentry: always\ntrigger: { event: cart.updated }\ngoal: { event: order.completed, within: 7d }\nstart: pause\nsteps:\n  pause:\n    wait: 1h\n    next: done\n  done:\n    exit: ok\n",
        &["email".into()],
    )
    .unwrap();
    let set = switchboard_journey::JourneySet::new([nudge]);
    let policies = policies();
    let planner = Planner::new(&set, &policies, DEFAULT_DEDUP_WINDOW_MS);
    let events = vec![
        ev("c1", "cart.updated", "web", T0, "k").0,
        ev("c2", "cart.updated", "web", T0 + 2 * HOUR, "k").0,
        ev("o1", "order.completed", "pos", T0 + 3 * HOUR, "k").0,
        ev("o2", "order.completed", "pos", T0 + 4 * HOUR, "k").0,
    ];
    let of = |kind: TransitionKind| -> Vec<Option<String>> {
        published(&planner, events.clone(), &mut strongest_identifier)
            .into_iter()
            .filter_map(|o| match o {
                Outgoing::Transition(t) if t.kind == kind => Some(t.entry_id),
                _ => None,
            })
            .collect()
    };
    let entries = of(TransitionKind::Entered);
    assert_eq!(entries.len(), 2);
    assert_ne!(entries[0], entries[1], "each entry has its id");
    assert_eq!(
        of(TransitionKind::Goal),
        [entries[1].clone()],
        "the second entry's, once"
    );
}

/// Two profiles of one customer each entered the test; they merge; a purchase then counts
/// for both entries, each under its own id.
#[test]
fn a_merge_keeps_both_entries_attributions() {
    use switchboard_codec::TransitionKind;
    use switchboard_engine::simulate::{DEFAULT_DEDUP_WINDOW_MS, Stitch, published};
    use switchboard_engine::{Outgoing, Planner};
    let (journeys, policies) = (journeys(), policies());
    let planner = Planner::new(&journeys, &policies, DEFAULT_DEDUP_WINDOW_MS);
    let events = vec![
        view(1, T0).0,
        ev("v2", "product.viewed", "app", T0 + HOUR, "other")
            .text("sku", "SKU-2")
            .0,
        order(1, T0 + DAY).0,
    ];
    // The purchase links the two: the older profile survives.
    let mut stitch = |e: &switchboard_codec::ChannelEvent| {
        Ok(match e.event_id.as_str() {
            "v2" => Stitch {
                profile: "p-new".into(),
                identifiers: e.identifiers.clone(),
                merges: vec![],
            },
            id if id.starts_with('o') => Stitch {
                profile: "p-old".into(),
                identifiers: e.identifiers.clone(),
                merges: vec![("p-old".into(), "p-new".into())],
            },
            _ => Stitch {
                profile: "p-old".into(),
                identifiers: e.identifiers.clone(),
                merges: vec![],
            },
        })
    };
    let out = published(&planner, events, &mut stitch);
    let of = |kind: TransitionKind| -> Vec<(String, Option<String>)> {
        (out.iter())
            .filter_map(|o| match o {
                Outgoing::Transition(t) if t.kind == kind && t.journey == "browse-ab-test" => {
                    Some((t.profile_id.clone(), t.entry_id.clone()))
                }
                _ => None,
            })
            .collect()
    };
    let entered: Vec<Option<String>> = (of(TransitionKind::Entered).into_iter())
        .chain(of(TransitionKind::Holdout))
        .map(|(_, e)| e)
        .collect();
    assert_eq!(entered.len(), 2, "{out:#?}");
    let mut goals: Vec<Option<String>> = of(TransitionKind::Goal)
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    goals.sort();
    let mut expected = entered;
    expected.sort();
    assert_eq!(goals, expected, "a goal per entry");
}

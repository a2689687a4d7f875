//! Properties of the interpreter over random event sequences, with the example journeys and
//! policies: deterministic; no instance lost or duplicated; nothing sent by a journey after
//! its goal or exit event; caps and quiet hours never violated.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use switchboard_engine::simulate::{Happening, What};
use switchboard_journey::time::local_minute;

const TYPES: [&str; 8] = [
    "cart.updated",
    "order.completed",
    "app.installed",
    "app.opened",
    "product.viewed",
    "sms.unsubscribed",
    "email.clicked",
    "consent.changed",
];
const CHANNELS: [&str; 5] = ["web", "app", "pos", "email", "sms"];
const ZONES: [&str; 4] = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"];

fn events() -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec(
        (
            0usize..TYPES.len(),
            0usize..CHANNELS.len(),
            0i64..(3 * DAY),
            0usize..3,
            0.0f64..300.0,
            any::<(bool, bool, bool)>(),
        ),
        1..25,
    )
    .prop_map(|raw| {
        let mut at = T0;
        raw.into_iter()
            .enumerate()
            .map(|(i, (t, c, gap, who, value, (email, phone, push)))| {
                at += gap;
                let customer = format!("c{who}");
                let mut e = ev(&format!("e{i}"), TYPES[t], CHANNELS[c], at, &customer)
                    .num("cart_value", value)
                    .tz(ZONES[who]);
                if email {
                    e = e.id("email", &format!("{customer}@x.io"));
                }
                if phone {
                    e = e.id("phone", &format!("+155500{who}"));
                }
                if push {
                    e = e.id("push_token", &format!("tok-{customer}"));
                }
                if TYPES[t] == "consent.changed" {
                    e = e.text("channel", "email").flag("granted", false);
                }
                e
            })
            .collect()
    })
}

fn per_customer(h: &[Happening]) -> BTreeMap<&str, Vec<&Happening>> {
    let mut m: BTreeMap<&str, Vec<&Happening>> = BTreeMap::new();
    for x in h {
        m.entry(&x.customer).or_default().push(x);
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_same_events_give_the_same_timeline(events in events()) {
        let again = events.clone();
        prop_assert_eq!(run(events), run(again));
    }

    #[test]
    fn every_entry_ends_exactly_once_and_never_overlaps(events in events()) {
        let h = run(events);
        for (customer, list) in per_customer(&h) {
            let mut open: BTreeMap<&str, usize> = BTreeMap::new();
            for x in list {
                match &x.what {
                    What::Entered { journey, .. } => {
                        let n = open.entry(journey).or_default();
                        prop_assert_eq!(*n, 0, "{} entered {} twice at once", customer, journey);
                        *n += 1;
                    }
                    What::Exited { journey, .. } => {
                        let n = open.entry(journey).or_default();
                        prop_assert_eq!(*n, 1, "{} exited {} without being in it", customer, journey);
                        *n -= 1;
                    }
                    _ => {}
                }
            }
            // Every example journey ends, and the simulation runs every timer: none is left.
            prop_assert!(open.values().all(|n| *n == 0), "{customer}: instances left {open:?}");
        }
    }

    #[test]
    fn nothing_is_sent_by_a_journey_after_its_goal_or_exit_event(events in events()) {
        let h = run(events);
        for list in per_customer(&h).values() {
            let mut ended: BTreeMap<&str, bool> = BTreeMap::new();
            for x in list {
                match &x.what {
                    What::Entered { journey, .. } => { ended.insert(journey, false); }
                    What::Exited { journey, reason } if reason.starts_with("goal:") || reason.starts_with("exit_on:") => { ended.insert(journey, true); }
                    What::Send { journey, .. } => prop_assert!(!ended.get(journey.as_str()).copied().unwrap_or(false), "{journey} sent after its exit event"),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn caps_and_quiet_hours_are_never_violated(events in events()) {
        let tz_of: BTreeMap<String, String> = events.iter().filter_map(|e| e.0.timezone.clone().map(|tz| (format!("customer_id:{}", e.0.identifiers[0].value), tz))).collect();
        let policies = policies();
        let h = run(events);
        for (customer, list) in per_customer(&h) {
            let sends: Vec<(i64, &str)> = list.iter().filter_map(|x| match &x.what { What::Send { channel, .. } => Some((x.at, channel.as_str())), _ => None }).collect();
            for cap in &policies.caps {
                for (t, _) in &sends {
                    let in_window = sends.iter().filter(|(s, c)| *s > t - cap.window_ms && s <= t && cap.channel.as_deref().is_none_or(|cc| cc == *c)).count();
                    prop_assert!(in_window <= cap.max as usize, "{customer}: {in_window} sends in a window capped at {} ({:?})", cap.max, cap.channel);
                }
            }
            let quiet = policies.quiet_hours.as_ref().unwrap();
            // The time zone a customer had at a send is the last one seen; with one zone per
            // customer in these events, it is that one.
            let tz = tz_of.get(customer).map_or("UTC", String::as_str);
            for (t, c) in &sends {
                prop_assert!(!(quiet.applies_to(c) && quiet.contains(local_minute(*t, tz))), "{customer}: {c} send at local minute {}", local_minute(*t, tz));
            }
        }
    }
}

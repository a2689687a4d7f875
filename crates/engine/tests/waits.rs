//! Waiting for an event (two exits) and until a local time of day.

mod common;

use common::*;
use switchboard_engine::simulate::simulate;
use switchboard_journey::{JourneySet, Policies, compile};

fn journey(steps: &str) -> JourneySet {
    let yaml = format!(
        "journey: w\nversion: 1\ntrigger: {{ event: email.sent }}\nstart: a\nsteps:\n{steps}"
    );
    JourneySet::new([compile("w.yaml", &yaml, &["email".into(), "sms".into()]).unwrap()])
}

fn policies() -> Policies {
    Policies::parse("p", "channels: [email, sms]").unwrap()
}

const WAIT_FOR_CLICK: &str = "  a:
    wait_for: { event: email.clicked, timeout: 24h }
    on_event: thanks
    on_timeout: nudge
  thanks:
    send: { channel: email, template: thanks }
    next: done
  nudge:
    send: { channel: sms, template: nudge }
    next: done
  done:
    exit: ok
";

fn customer(e: Ev) -> Ev {
    e.id("email", "k@x.io").id("phone", "+1555")
}

#[test]
fn a_click_before_the_timeout_takes_the_event_exit() {
    let h = simulate(
        &journey(WAIT_FOR_CLICK),
        &policies(),
        vec![
            customer(ev("s", "email.sent", "email", T0, "k")).0,
            customer(ev("c", "email.clicked", "email", T0 + 3 * HOUR, "k")).0,
        ],
    );
    assert_eq!(
        sends(&h)
            .into_iter()
            .map(|s| (s.0, s.4))
            .collect::<Vec<_>>(),
        vec![(T0 + 3 * HOUR, "thanks".into())]
    );
}

#[test]
fn no_click_takes_the_timeout_exit_at_the_timeout() {
    let h = simulate(
        &journey(WAIT_FOR_CLICK),
        &policies(),
        vec![customer(ev("s", "email.sent", "email", T0, "k")).0],
    );
    assert_eq!(
        sends(&h)
            .into_iter()
            .map(|s| (s.0, s.4))
            .collect::<Vec<_>>(),
        vec![(T0 + 24 * HOUR, "nudge".into())]
    );
}

#[test]
fn a_click_after_the_timeout_changes_nothing() {
    let h = simulate(
        &journey(WAIT_FOR_CLICK),
        &policies(),
        vec![
            customer(ev("s", "email.sent", "email", T0, "k")).0,
            customer(ev("c", "email.clicked", "email", T0 + 30 * HOUR, "k")).0,
        ],
    );
    assert_eq!(
        sends(&h).into_iter().map(|s| s.4).collect::<Vec<_>>(),
        vec!["nudge".to_owned()]
    );
}

#[test]
fn wait_until_waits_for_the_time_of_day_in_the_customers_zone() {
    let set = journey(
        "  a:\n    wait_until: \"09:00\"\n    next: b\n  b:\n    send: { channel: email, template: morning }\n    next: done\n  done:\n    exit: ok\n",
    );
    // T0 is 10:00Z; in New York that is 05:00, so 09:00 local is 14:00Z the same day.
    let h = simulate(
        &set,
        &policies(),
        vec![
            customer(ev("s", "email.sent", "email", T0, "k"))
                .tz("America/New_York")
                .0,
        ],
    );
    assert_eq!(sends(&h)[0].0, T0 + 4 * HOUR);
    // In UTC it is already past 09:00: tomorrow at 09:00Z.
    let h = simulate(
        &set,
        &policies(),
        vec![customer(ev("s", "email.sent", "email", T0, "k")).0],
    );
    assert_eq!(sends(&h)[0].0, T0 + 23 * HOUR);
}

//! `simulate --explain` (and `switchboard explain`, which renders the same record): every
//! decision that kept a customer out of a journey or a message from them is named.

mod common;

use common::*;
use switchboard_engine::Planner;
use switchboard_engine::simulate::{
    DEFAULT_DEDUP_WINDOW_MS, simulate_and_explain, strongest_identifier,
};

fn journey(yaml: &str) -> switchboard_journey::Journey {
    let id = yaml.split_whitespace().nth(1).unwrap_or_default();
    switchboard_journey::compile(&format!("{id}.yaml"), yaml, &["sms".into()]).unwrap()
}

#[test]
fn explain_names_the_reason_for_each_decision() {
    let set = switchboard_journey::JourneySet::new([
        journey(
            "journey: vip-only\nversion: 1\ntrigger: { event: go }\naudience: '\"vip\" in profile.tags'\nstart: s\nsteps:\n  s:\n    exit: ok\n",
        ),
        journey(
            "journey: big-spend\nversion: 1\ntrigger: { event: go, if: 'event.amount > 10' }\nstart: s\nsteps:\n  s:\n    exit: ok\n",
        ),
        journey(
            "journey: cool\nversion: 1\ntrigger: { event: go }\nreentry: { after: 7d }\nstart: s\nsteps:\n  s:\n    wait: 1h\n    next: done\n  done:\n    exit: ok\n",
        ),
        journey(
            "journey: long\nversion: 1\ntrigger: { event: go }\nstart: s\nsteps:\n  s:\n    wait: 1d\n    next: done\n  done:\n    exit: ok\n",
        ),
        journey(
            "journey: held\nversion: 1\ntrigger: { event: go }\nholdout: 0.99\nstart: s\nsteps:\n  s:\n    exit: ok\n",
        ),
        journey(
            "journey: texts\nversion: 1\ntrigger: { event: text-me }\nreentry: always\nstart: s\nsteps:\n  s:\n    send: { channel: sms, template: t }\n    next: done\n  done:\n    exit: ok\n",
        ),
    ]);
    // The deployed policies: SMS capped at 2 a week, quiet from 21:00 to 08:00 London time.
    let policies = policies();
    let planner = Planner::new(&set, &policies, DEFAULT_DEDUP_WINDOW_MS);
    let me = |id: &str, kind: &str, at: i64| {
        ev(id, kind, "app", at, "k")
            .id("phone", "+447911123456")
            .tz("Europe/London")
            .0
    };
    let events = vec![
        me("g1", "go", T0),
        me("g2", "go", T0 + 2 * HOUR),
        // 21:00 the evening before: deferred to 08:00, then sent (1 of 2).
        me("t0", "text-me", T0 - 13 * HOUR),
        me("t1", "text-me", T0),        // sent (2 of 2)
        me("t2", "text-me", T0 + HOUR), // capped
        me("u", "sms.unsubscribed", T0 + 2 * HOUR),
        me("t3", "text-me", T0 + 3 * HOUR), // opted out
    ];
    let (_, explained) =
        simulate_and_explain(&planner, events, &mut strongest_identifier, "customer_id:k");
    let text = explained.expect("the customer is explained");
    let decision = |journey: &str, reason: &str| {
        text.lines()
            .any(|l| l.contains(&format!(" {journey}")) && l.contains(&format!("  {reason}")))
    };
    for (journey, reason) in [
        ("vip-only", "audience_false"),
        ("big-spend", "condition_error"),
        ("cool", "cooldown"),
        ("long", "already_in"),
        ("held", "holdout"),
        ("texts/s", "quiet_hours"),
        ("texts/s", "sent"),
        ("texts/s", "cap"),
        ("texts/s", "consent"),
    ] {
        assert!(decision(journey, reason), "{journey} {reason}:\n{text}");
    }
    // What it says besides: who, consent, caps, and the order of the decisions.
    assert!(
        text.contains("identifiers: customer_id:k, phone:+447911123456"),
        "{text}"
    );
    assert!(text.contains("sms no (opted out)"), "{text}");
    assert!(text.contains("sms 2 of 2 per 7d"), "{text}");
    let consent = text.find("  consent").unwrap();
    let cap = text.find("  cap").unwrap();
    assert!(consent < cap, "newest first:\n{text}");
    assert!(
        text.contains("no such key") || text.contains("amount"),
        "the missing attribute:\n{text}"
    );
}

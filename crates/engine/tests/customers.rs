//! What customers experience with the example journeys and policies, through `simulate`.

mod common;

use common::*;
use switchboard_engine::simulate::What;

#[test]
fn a_shopper_who_leaves_a_cart_gets_a_reminder_after_an_hour_and_an_offer_after_a_day() {
    let h = run(vec![
        ev("c1", "cart.updated", "web", T0, "ann")
            .id("email", "ann@example.com")
            .num("cart_value", 129.9),
    ]);
    assert_eq!(
        sends_of(&h, "abandoned-cart"),
        vec![
            (T0 + HOUR, "email".into(), "cart-reminder".into()),
            (T0 + 24 * HOUR, "email".into(), "cart-10-off".into()),
        ]
    );
    assert_eq!(
        exits(&h, "abandoned-cart"),
        vec![(T0 + 24 * HOUR, "exit:reminded".into())]
    );
}

#[test]
fn the_reminder_goes_to_the_app_when_the_customer_has_it() {
    let h = run(vec![
        ev("c1", "cart.updated", "app", T0, "ann")
            .id("email", "a@x.io")
            .id("push_token", "tok")
            .num("cart_value", 30.0),
    ]);
    assert_eq!(
        sends_of(&h, "abandoned-cart"),
        vec![(T0 + HOUR, "push".into(), "cart-reminder".into())],
        "small cart: no offer"
    );
}

#[test]
fn a_purchase_in_the_store_ends_the_cart_journey_the_website_started() {
    let h = run(vec![
        ev("c1", "cart.updated", "web", T0, "ann")
            .id("email", "ann@example.com")
            .num("cart_value", 129.9),
        ev("o1", "order.completed", "pos", T0 + 30 * 60_000, "ann"),
    ]);
    assert!(sends_of(&h, "abandoned-cart").is_empty(), "{h:#?}");
    assert_eq!(
        exits(&h, "abandoned-cart"),
        vec![(T0 + 30 * 60_000, "goal:order.completed".into())]
    );
    assert!(
        h.iter()
            .any(|x| matches!(&x.what, What::Goal { journey, .. } if journey == "abandoned-cart"))
    );
}

#[test]
fn an_sms_opt_out_stops_sms_from_every_journey() {
    let phone_only = |e: Ev| e.id("phone", "+447700900123");
    let h = run(vec![
        phone_only(ev("u", "sms.unsubscribed", "sms", T0 - HOUR, "sam")),
        phone_only(ev("c1", "cart.updated", "web", T0, "sam").num("cart_value", 200.0)),
        phone_only(ev("o1", "order.completed", "pos", T0 + 3 * DAY, "sam")),
    ]);
    assert!(sends(&h).iter().all(|s| s.3 != "sms"), "{:#?}", sends(&h));
    let consent: Vec<_> = suppressions(&h)
        .into_iter()
        .filter(|s| s.2 == "consent")
        .map(|s| s.1)
        .collect();
    assert!(
        consent.contains(&"abandoned-cart".to_owned())
            && consent.contains(&"store-to-app".to_owned()),
        "{consent:?}"
    );
}

#[test]
fn quiet_hours_defer_a_push_to_the_morning_in_the_customers_time_zone() {
    // 20:30 in Paris (19:30Z): the reminder is due at 21:30 Paris, inside quiet hours
    // (21:00-08:00), so it goes out at 08:00 Paris (07:00Z) the next day.
    let evening = T0 + 9 * HOUR + 30 * 60_000;
    let h = run(vec![
        ev("c1", "cart.updated", "app", evening, "pia")
            .id("push_token", "tok")
            .num("cart_value", 20.0)
            .tz("Europe/Paris"),
    ]);
    let next_morning = T0 + 21 * HOUR;
    assert_eq!(
        sends_of(&h, "abandoned-cart"),
        vec![(next_morning, "push".into(), "cart-reminder".into())]
    );
    assert_eq!(
        deferrals(&h),
        vec![(
            evening + HOUR,
            "abandoned-cart".into(),
            "quiet_hours".into()
        )],
        "deferred, not suppressed"
    );
    assert!(suppressions(&h).is_empty());
}

#[test]
fn a_new_app_user_without_push_is_welcomed_by_email() {
    let h = run(vec![
        ev("i1", "app.installed", "app", T0, "bob").id("email", "bob@example.com"),
    ]);
    assert_eq!(
        sends_of(&h, "welcome"),
        vec![
            (T0, "email".into(), "welcome-1".into()),
            (T0 + 2 * DAY, "email".into(), "welcome-2-tips".into())
        ]
    );
    let fallback = h.iter().find_map(|x| match &x.what {
        What::Send { fallback_from, .. } => Some(fallback_from.clone()),
        _ => None,
    });
    assert_eq!(fallback, Some(vec!["push".to_owned()]));
}

#[test]
fn a_customer_who_stops_buying_hears_from_us_thirty_days_after_the_last_purchase() {
    let h = run(vec![
        ev("o1", "order.completed", "web", T0, "wes").id("email", "wes@example.com"),
        ev("o2", "order.completed", "web", T0 + 10 * DAY, "wes").id("email", "wes@example.com"),
    ]);
    assert_eq!(
        sends_of(&h, "win-back"),
        vec![(T0 + 40 * DAY, "email".into(), "we-miss-you".into())]
    );
}

#[test]
fn a_store_buyer_is_invited_to_the_app_two_hours_later_and_tagged() {
    let h = run(vec![
        ev("o1", "order.completed", "pos", T0, "sue").id("phone", "+447700900555"),
    ]);
    assert_eq!(
        sends_of(&h, "store-to-app"),
        vec![(T0 + 2 * HOUR, "sms".into(), "store-app-offer".into())]
    );
    let web = run(vec![
        ev("o1", "order.completed", "web", T0, "sue").id("phone", "+447700900555"),
    ]);
    assert!(
        sends_of(&web, "store-to-app").is_empty(),
        "web purchases do not trigger it"
    );
}

#[test]
fn the_daily_reminder_comes_twenty_three_and_a_half_hours_after_the_last_activity() {
    let h = run(vec![
        ev("a1", "app.opened", "app", T0 - 4 * HOUR, "dan").id("push_token", "tok"),
        ev("a2", "app.opened", "app", T0, "dan").id("push_token", "tok"),
    ]);
    // 23.5 h after 10:00Z is 09:30Z: outside quiet hours in UTC.
    assert_eq!(
        sends_of(&h, "daily-reminder"),
        vec![(
            T0 + 23 * HOUR + 30 * 60_000,
            "push".into(),
            "daily-streak".into()
        )]
    );
    assert_eq!(
        exits(&h, "daily-reminder").first(),
        Some(&(T0, "exit_on:app.opened".into())),
        "activity restarts it"
    );
}

#[test]
fn the_ab_test_keeps_a_ten_percent_control_group_and_splits_the_rest_evenly() {
    let events = (0..2_000)
        .map(|i| {
            ev(
                &format!("v{i}"),
                "product.viewed",
                "web",
                T0,
                &format!("c{i}"),
            )
            .id("email", &format!("c{i}@x.io"))
            .text("sku", "SKU-1")
        })
        .collect();
    let h = run(events);
    let holdouts = h
        .iter()
        .filter(|x| matches!(&x.what, What::Holdout { .. }))
        .count();
    let variant = |v: &str| {
        h.iter()
            .filter(|x| matches!(&x.what, What::Send { variant: Some(got), .. } if got == v))
            .count()
    };
    assert!(
        (150..=250).contains(&holdouts),
        "holdouts {holdouts} of 2000"
    );
    let (a, b) = (variant("a"), variant("b"));
    assert_eq!(
        a + b + holdouts,
        2_000,
        "everyone else gets exactly one send"
    );
    assert!(a.abs_diff(b) < 200, "a {a}, b {b}");
    // Deterministic: the same customers, the same groups.
    assert_eq!(
        run((0..50)
            .map(|i| ev(
                &format!("v{i}"),
                "product.viewed",
                "web",
                T0,
                &format!("c{i}")
            ))
            .collect()),
        run((0..50)
            .map(|i| ev(
                &format!("v{i}"),
                "product.viewed",
                "web",
                T0,
                &format!("c{i}")
            ))
            .collect())
    );
}

fn policies_with(caps: &str) -> switchboard_journey::Policies {
    switchboard_journey::Policies::parse(
        "p.yaml",
        &format!("channels: [email, sms]\ncaps:\n{caps}\n"),
    )
    .unwrap()
}

fn sms_journey(id: &str, priority: i32, sends: usize) -> switchboard_journey::Journey {
    let mut steps = String::new();
    for n in 0..sends {
        steps.push_str(&format!("  s{n}:\n    send: {{ channel: sms, template: t{n} }}\n    next: w{n}\n  w{n}:\n    wait: 1h\n    next: {}\n", if n + 1 == sends { "done".into() } else { format!("s{}", n + 1) }));
    }
    let yaml = format!(
        "journey: {id}\nversion: 1\npriority: {priority}\ntrigger: {{ event: go }}\nstart: s0\nsteps:\n{steps}  done:\n    exit: ok\n"
    );
    switchboard_journey::compile(
        &format!("{id}.yaml"),
        &yaml,
        &["email".into(), "sms".into()],
    )
    .unwrap()
}

#[test]
fn a_capped_customer_gets_no_more_than_the_cap() {
    let set = switchboard_journey::JourneySet::new([sms_journey("many", 1, 4)]);
    let h = switchboard_engine::simulate::simulate(
        &set,
        &policies_with("  - { channel: sms, max: 2, per: 7d }"),
        vec![ev("g", "go", "web", T0, "cap").id("phone", "+1555").0],
    );
    assert_eq!(sends(&h).len(), 2);
    assert_eq!(suppressions(&h).iter().filter(|s| s.2 == "cap").count(), 2);
}

#[test]
fn when_caps_collide_the_higher_priority_journey_sends() {
    let set =
        switchboard_journey::JourneySet::new([sms_journey("low", 1, 1), sms_journey("high", 9, 1)]);
    let h = switchboard_engine::simulate::simulate(
        &set,
        &policies_with("  - { max: 1, per: 1d }"),
        vec![ev("g", "go", "web", T0, "cap").id("phone", "+1555").0],
    );
    assert_eq!(
        sends(&h).iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        vec!["high"]
    );
    assert_eq!(suppressions(&h), vec![(T0, "low".into(), "cap".into())]);
}

#[test]
fn a_repeated_event_id_is_simulated_once_as_the_engine_applies_it() {
    let flash = switchboard_journey::compile(
        "flash.yaml",
        "journey: flash\nversion: 1\ntrigger: { event: go }\nreentry: always\nstart: tell\nsteps:\n  tell:\n    send: { channel: sms, template: t }\n    next: done\n  done:\n    exit: ok\n",
        &["sms".into()],
    )
    .unwrap();
    let set = switchboard_journey::JourneySet::new([flash]);
    let go = |id: &str, at: i64| ev(id, "go", "web", at, "dup").id("phone", "+1555").0;
    let h = switchboard_engine::simulate::simulate(
        &set,
        &policies_with("  - { channel: sms, max: 9, per: 1d }"),
        vec![go("a", T0), go("a", T0 + 1_000), go("b", T0 + 2_000)],
    );
    assert_eq!(
        sends(&h).iter().map(|s| s.0).collect::<Vec<_>>(),
        [T0, T0 + 2_000]
    );
}

/// Two profiles of one customer each started the cart journey; when they merge, the
/// survivor keeps its instance and the loser's ends with an `exited` (reason `merged`): two
/// entries, two exits, so funnels add up. The loser's pending reminder never fires.
#[test]
fn a_merge_ends_the_losers_journey_with_an_exit_so_entries_and_exits_add_up() {
    use switchboard_engine::Planner;
    use switchboard_engine::simulate::{DEFAULT_DEDUP_WINDOW_MS, Stitch, simulate_with};
    let events = vec![
        ev("c1", "cart.updated", "web", T0, "old")
            .id("email", "ann@example.com")
            .num("cart_value", 20.0)
            .0,
        ev("c2", "cart.updated", "app", T0 + 60_000, "old")
            .id("push_token", "tok")
            .num("cart_value", 30.0)
            .0,
        ev("v1", "page.viewed", "web", T0 + 120_000, "both").0,
    ];
    // The login links the two: the older profile survives, as the stitcher decides.
    let mut stitch = |e: &switchboard_codec::ChannelEvent| {
        Ok(match e.event_id.as_str() {
            "c1" => Stitch {
                profile: "p-old".into(),
                identifiers: e.identifiers.clone(),
                merges: vec![],
            },
            "c2" => Stitch {
                profile: "p-new".into(),
                identifiers: e.identifiers.clone(),
                merges: vec![],
            },
            _ => Stitch {
                profile: "p-old".into(),
                identifiers: vec![],
                merges: vec![("p-old".into(), "p-new".into())],
            },
        })
    };
    let (journeys, policies) = (journeys(), policies());
    let planner = Planner::new(&journeys, &policies, DEFAULT_DEDUP_WINDOW_MS);
    let h = simulate_with(&planner, events, &mut stitch);
    let entered = h
        .iter()
        .filter(|x| matches!(&x.what, What::Entered { journey, .. } if journey == "abandoned-cart"))
        .count();
    assert_eq!(entered, 2);
    let ends = exits(&h, "abandoned-cart");
    assert_eq!(
        ends,
        vec![
            (T0 + 120_000, "merged".into()),
            (T0 + 24 * HOUR, "exit:reminded".into())
        ],
        "{h:#?}"
    );
    let reminders: Vec<_> = sends_of(&h, "abandoned-cart");
    assert_eq!(
        reminders,
        vec![(T0 + HOUR, "push".into(), "cart-reminder".into())],
        "the survivor's reminder only, to the app the merge brought"
    );
    assert!(
        h.iter().all(|x| x.customer == "customer_id:old"),
        "one customer in the end, named by the survivor's strongest identifier"
    );
}

/// Journey `id` (priority `priority`): on `go`, wait 2 h, then one SMS.
fn waiting_sms_journey(id: &str, priority: i32) -> switchboard_journey::Journey {
    let yaml = format!(
        "journey: {id}\nversion: 1\npriority: {priority}\ntrigger: {{ event: go }}\nstart: pause\nsteps:\n  pause:\n    wait: 2h\n    next: text\n  text:\n    send: {{ channel: sms, template: {id} }}\n    next: done\n  done:\n    exit: ok\n"
    );
    switchboard_journey::compile(&format!("{id}.yaml"), &yaml, &["sms".into()]).unwrap()
}

/// Three journeys wait 2 h from the same event and then text, under a cap of 2 SMS: the two
/// of highest priority send, whatever their ids (the lowest sorts first).
#[test]
fn when_sends_fall_due_on_timers_together_priority_decides_the_cap() {
    let set = switchboard_journey::JourneySet::new([
        waiting_sms_journey("a-low", 1),
        waiting_sms_journey("b-mid", 5),
        waiting_sms_journey("c-high", 9),
    ]);
    let h = switchboard_engine::simulate::simulate(
        &set,
        &policies_with("  - { channel: sms, max: 2, per: 7d }"),
        vec![ev("g", "go", "web", T0, "cap").id("phone", "+1555").0],
    );
    let sent: Vec<String> = sends(&h).into_iter().map(|s| s.1).collect();
    assert_eq!(sent, ["c-high", "b-mid"]);
    assert_eq!(
        suppressions(&h),
        vec![(T0 + 2 * HOUR, "a-low".into(), "cap".into())]
    );
}

/// A var that fails at run time (an attribute this event lacks) does not go out as an empty
/// string: the send is suppressed with reason `var_error`, and the journey goes on.
#[test]
fn a_var_that_fails_to_evaluate_suppresses_the_send_with_its_reason() {
    let j = switchboard_journey::compile(
        "v.yaml",
        "journey: v\nversion: 1\ntrigger: { event: go }\nstart: tell\nsteps:\n  tell:\n    send: { channel: sms, template: t, vars: { size: \"string(event.cart_value)\" } }\n    next: done\n  done:\n    exit: ok\n",
        &["sms".into()],
    )
    .unwrap();
    let set = switchboard_journey::JourneySet::new([j]);
    let h = switchboard_engine::simulate::simulate(
        &set,
        &policies_with("  - { channel: sms, max: 9, per: 1d }"),
        vec![ev("g", "go", "web", T0, "v").id("phone", "+1555").0],
    );
    assert!(sends(&h).is_empty(), "{h:#?}");
    assert_eq!(suppressions(&h), vec![(T0, "v".into(), "var_error".into())]);
    assert_eq!(exits(&h, "v"), vec![(T0, "exit:ok".into())]);
}

/// A send on a channel quiet hours cover carries `not_after`: the start of the customer's
/// next quiet hours (21:00 London, the deployed policies), so a channel system holding it
/// late drops it. A channel they do not cover has no deadline.
#[test]
fn a_send_on_a_quiet_hours_channel_must_not_be_delivered_once_they_begin() {
    use switchboard_engine::simulate::{DEFAULT_DEDUP_WINDOW_MS, published, strongest_identifier};
    use switchboard_engine::{Outgoing, Planner};
    let email = switchboard_journey::compile(
        "e.yaml",
        "journey: e\nversion: 1\ntrigger: { event: go }\nstart: tell\nsteps:\n  tell:\n    send: { channel: email, template: t }\n    next: done\n  done:\n    exit: ok\n",
        &["email".into()],
    )
    .unwrap();
    let set = switchboard_journey::JourneySet::new([waiting_sms_journey("s", 1), email]);
    let policies = policies();
    let planner = Planner::new(&set, &policies, DEFAULT_DEDUP_WINDOW_MS);
    let go = ev("g", "go", "web", T0, "q")
        .id("phone", "+447911123456")
        .id("email", "q@example.com")
        .tz("Europe/London");
    let sent: Vec<(String, Option<i64>, i64)> =
        published(&planner, vec![go.0], &mut strongest_identifier)
            .into_iter()
            .filter_map(|o| match o {
                Outgoing::Command(c) => Some((c.channel, c.not_after, c.created_at)),
                Outgoing::Transition(_) => None,
            })
            .collect();
    // T0 is 10:00 in London (GMT in January): the email at once, the SMS two hours later.
    assert_eq!(
        sent,
        [
            ("email".to_owned(), None, T0),
            ("sms".to_owned(), Some(T0 + 11 * HOUR), T0 + 2 * HOUR),
        ]
    );
}

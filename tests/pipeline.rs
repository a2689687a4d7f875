//! End to end on tansu and redis-server: channel events in, send commands out, for the
//! journeys a customer meets (fixtures in tests/journeys are the examples with waits of
//! seconds instead of hours).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use support::{Running, event};
use switchboard_codec::{AttrValue, ChannelEvent, SendCommand};
use switchboard_engine::Records;
use switchboard_redis::RedisStateStore;

fn journeys() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/journeys"))
}

fn templates(commands: &[SendCommand]) -> Vec<(&str, &str)> {
    commands
        .iter()
        .map(|c| (c.channel.as_str(), c.template.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_install_gets_the_welcome_push() {
    let r = Running::start(&journeys()).await;
    r.produce(&[event(
        "w1",
        "app.installed",
        "app",
        &[
            ("customer_id", "C1"),
            ("push_token", "tok-1"),
            ("email", "c1@example.com"),
        ],
        &[],
    )])
    .await;
    let commands = r
        .commands_until(Duration::from_secs(30), |c| !c.is_empty())
        .await;
    assert_eq!(templates(&commands), [("push", "welcome-1")]);
    assert_eq!(commands[0].address, "tok-1");
    assert_eq!(commands[0].journey, "welcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abandoned_cart_is_reminded_after_the_wait_then_offered_a_discount() {
    let r = Running::start(&journeys()).await;
    let cart = event(
        "c1",
        "cart.updated",
        "web",
        &[("anonymous_id", "cookie-9"), ("email", "Dana@Example.com")],
        &[("cart_value", AttrValue::Double(150.0))],
    );
    let at = cart.occurred_at;
    r.produce(&[cart]).await;
    let commands = r
        .commands_until(Duration::from_secs(30), |c| c.len() >= 2)
        .await;
    assert_eq!(
        templates(&commands),
        [("email", "cart-reminder"), ("email", "cart-10-off")]
    );
    assert_eq!(
        commands[0].address, "dana@example.com",
        "the normalised email is the address"
    );
    assert_eq!(
        commands[0].vars.get("value").map(String::as_str),
        Some("150")
    );
    assert!(
        commands[0].created_at - at >= 2_000,
        "the reminder waits 2 s: {}",
        commands[0].created_at - at
    );
    assert!(
        commands[1].created_at - commands[0].created_at >= 2_000,
        "the offer waits 2 s more"
    );
    assert_ne!(commands[0].command_id, commands[1].command_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purchase_in_the_store_ends_the_cart_reminder_the_web_started() {
    let r = Running::start(&journeys()).await;
    r.produce(&[event(
        "c2",
        "cart.updated",
        "web",
        &[("customer_id", "C2"), ("email", "eve@example.com")],
        &[("cart_value", AttrValue::Double(80.0))],
    )])
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.produce(&[event(
        "o2",
        "order.completed",
        "pos",
        &[("loyalty_card", "L-2"), ("customer_id", "C2")],
        &[("total", AttrValue::Double(80.0))],
    )])
    .await;
    // store-to-app invites the store customer after 1 s and win-back starts its clock
    // (3 s); the cart reminder (due after 2 s) must never come.
    let commands = r.commands_until(Duration::from_secs(8), |_| false).await;
    assert_eq!(
        templates(&commands),
        [("email", "store-app-offer"), ("email", "we-miss-you")],
        "{commands:?}"
    );
    assert!(r.metric("switchboard_journey_transitions_total") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_sms_opt_out_stops_sms_from_every_journey_and_the_cap_holds() {
    let r = Running::start(&journeys()).await;
    // Frank may get SMS: three promo views, but the cap is 2 SMS per 7 days.
    for n in 0..3 {
        r.produce(&[event(
            &format!("f{n}"),
            "promo.viewed",
            "web",
            &[("phone", "07911 123456")],
            &[],
        )])
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Gina opts out by SMS, then views a promo and leaves a cart.
    r.produce(&[event(
        "g0",
        "sms.unsubscribed",
        "sms",
        &[("phone", "+33612345678")],
        &[],
    )])
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.produce(&[
        event(
            "g1",
            "promo.viewed",
            "web",
            &[("phone", "+33612345678")],
            &[],
        ),
        event(
            "g2",
            "cart.updated",
            "web",
            &[("phone", "+33612345678")],
            &[("cart_value", AttrValue::Double(20.0))],
        ),
    ])
    .await;
    let commands = r.commands_until(Duration::from_secs(8), |_| false).await;
    let to = |phone: &str| commands.iter().filter(|c| c.address == phone).count();
    assert_eq!(
        to("+447911123456"),
        2,
        "the cap of 2 SMS holds: {commands:?}"
    );
    assert_eq!(
        to("+33612345678"),
        0,
        "no SMS after the opt-out: {commands:?}"
    );
    let suppressed = r.series("switchboard_suppressions_total", "reason");
    assert_eq!(suppressed.get("cap"), Some(&1.0), "{suppressed:?}");
    assert_eq!(
        suppressed.get("consent"),
        Some(&2.0),
        "the promo and the cart reminder: {suppressed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_event_id_reaches_no_journey_twice() {
    let r = Running::start(&journeys()).await;
    let view = |id: &str, channel: &str| {
        event(
            id,
            "promo.viewed",
            channel,
            &[("phone", "07911 123457")],
            &[],
        )
    };
    // A channel system retries a promo view, once on another topic; then a new view. The
    // flash sale texts on every view, up to the cap of 2 SMS: applied twice, the retry would
    // take the second text and the new view would be capped.
    for (id, channel) in [("h1", "web"), ("h1", "app"), ("h2", "web")] {
        r.produce(&[view(id, channel)]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let commands = r.commands_until(Duration::from_secs(8), |_| false).await;
    let triggers: Vec<&str> = commands.iter().map(|c| c.reason.trigger.as_str()).collect();
    assert_eq!(triggers, ["event:h1", "event:h2"], "{commands:?}");
    assert_eq!(templates(&commands), [("sms", "flash"), ("sms", "flash")]);
    assert_eq!(r.metric("switchboard_duplicate_events_total"), 1.0);
    let suppressed = r.series("switchboard_suppressions_total", "reason");
    assert_eq!(suppressed.get("cap"), Some(&0.0), "{suppressed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_merge_survivor_remembers_the_events_the_merged_profile_applied() {
    let r = Running::start(&journeys()).await;
    let phone = ("phone", "07911 123458");
    let cookie = ("anonymous_id", "cookie-dup");
    // The older profile knows the phone; a newer one, only a cookie, views a promo it cannot
    // be texted about; a login then merges the newer into the older.
    r.produce(&[event("y0", "page.viewed", "web", &[phone], &[])])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.produce(&[event("y1", "promo.viewed", "web", &[cookie], &[])])
        .await;
    // The cookie's profile has applied the view (it could not be texted) before the login:
    // otherwise the view reaches the engine after the merge, on the survivor, and is texted
    // there once, which is right too, but not what this test is about.
    let applied = std::time::Instant::now();
    while r
        .series("switchboard_suppressions_total", "reason")
        .get("no_channel")
        < Some(&1.0)
    {
        assert!(
            applied.elapsed() < Duration::from_secs(30),
            "y1 never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let steps = [
        event("y2", "login", "web", &[cookie, phone], &[]),
        // The promo view retried after the merge reaches the survivor, which can be texted:
        // it must remember the view its merged profile applied. A new view is texted.
        event("y1", "promo.viewed", "web", &[cookie], &[]),
        event("y3", "promo.viewed", "web", &[cookie], &[]),
    ];
    for e in steps {
        r.produce(&[e]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let commands = r.commands_until(Duration::from_secs(8), |_| false).await;
    let triggers: Vec<&str> = commands.iter().map(|c| c.reason.trigger.as_str()).collect();
    assert_eq!(triggers, ["event:y3"], "{commands:?}");
    assert_eq!(r.metric("switchboard_identity_merges_total"), 1.0);
    assert_eq!(r.metric("switchboard_duplicate_events_total"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_events_go_to_the_dead_letter_topic_and_the_partition_keeps_flowing() {
    let r = Running::start(&journeys()).await;
    r.produce_raw("app", b"\x00\x00\x00\x00").await;
    r.produce_raw("app", b"{not avro}").await;
    r.produce(&[event(
        "no-ids",
        "app.installed",
        "app",
        &[("email", "null")],
        &[],
    )])
    .await;
    let mut future = event(
        "future",
        "app.installed",
        "app",
        &[("customer_id", "C4"), ("push_token", "tok-4")],
        &[],
    );
    future.occurred_at += 24 * 3600 * 1000;
    r.produce(&[future]).await;
    r.produce_raw("app", &vec![0u8; 300 * 1024]).await;
    // A phone number the rules refuse (a drama number, not a real one) is left out, counted,
    // and the event goes on with its other identifiers.
    r.produce(&[event(
        "ok",
        "app.installed",
        "app",
        &[
            ("customer_id", "C3"),
            ("push_token", "tok-3"),
            ("phone", "+447700900001"),
        ],
        &[],
    )])
    .await;
    let dead = r.dead_letters(5, Duration::from_secs(30)).await;
    let reasons: BTreeSet<&str> = dead
        .iter()
        .map(|(_, h)| h["switchboard.error.reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from([
            "short_header",
            "wrong_magic",
            "no_identifiers",
            "future_event",
            "oversize"
        ])
    );
    let (payload, headers) = dead
        .iter()
        .find(|(_, h)| h["switchboard.error.reason"] == "short_header")
        .unwrap();
    assert_eq!(
        payload.as_slice(),
        b"\x00\x00\x00\x00",
        "the original bytes, untouched"
    );
    assert_eq!(headers["origin"], "test", "the original headers are kept");
    assert!(headers["switchboard.source.topic"].ends_with("events.app"));
    assert!(headers.contains_key("switchboard.source.offset"));
    let commands = r
        .commands_until(Duration::from_secs(30), |c| !c.is_empty())
        .await;
    assert_eq!(
        templates(&commands),
        [("push", "welcome-1")],
        "the event after the bad ones is processed"
    );
    assert_eq!(r.metric("switchboard_dead_letters_total"), 5.0);
    let refused: Vec<(String, String, f64)> = r
        .registry
        .gather()
        .iter()
        .filter(|f| f.name() == "switchboard_identifiers_refused_total")
        .flat_map(|f| f.get_metric().iter())
        .map(|m| {
            let label = |n: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == n)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default()
            };
            (label("kind"), label("reason"), m.get_counter().value())
        })
        .collect();
    assert!(
        refused.contains(&("phone".into(), "bad_phone".into(), 1.0)),
        "{refused:?}"
    );
}

/// A 2 MiB record on a channel topic that allows it, between a malformed one and a valid one,
/// all in the stitcher's first batch: its dead letter is cut to fit the dead-letter topic's
/// default limit (about 1 MB), the batch is published once (no repeated dead letters), and the
/// valid event behind it is processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_mebibyte_record_is_dead_lettered_cut_to_fit_and_the_partition_keeps_flowing() {
    let mut r = Running::parts(&journeys()).await;
    let topic = format!("{}app", r.config.topics.events_prefix);
    r.set_topic_config(&topic, "max.message.bytes", &(4 << 20).to_string())
        .await;
    r.produce_raw("app", b"{not avro}").await;
    let large: Vec<u8> = (0..2 << 20).map(|i: u32| (i % 251) as u8).collect();
    r.produce_large("app", &large).await;
    install_then_start_and_welcome(&mut r, "C5").await;
    // Whatever was retried, each dead letter is there once.
    let dead = r.dead_letters(10, Duration::from_secs(10)).await;
    let mut reasons: Vec<&str> = dead
        .iter()
        .map(|(_, h)| h["switchboard.error.reason"].as_str())
        .collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["oversize", "wrong_magic"]);
    let (value, headers) = dead
        .iter()
        .find(|(_, h)| h["switchboard.error.reason"] == "oversize")
        .unwrap();
    assert_eq!(headers["switchboard.value.bytes"], "2097152");
    let kept: usize = headers["switchboard.value.kept"].parse().unwrap();
    assert_eq!(value.len(), kept);
    assert!((900_000..1_000_000).contains(&kept), "{kept}");
    assert_eq!(value[..], large[..kept], "the value's beginning, untouched");
    assert_eq!(headers["origin"], "test");
    assert_eq!(
        counted(&r, "switchboard_dead_letters_total"),
        BTreeMap::from([("oversize".into(), 1.0), ("wrong_magic".into(), 1.0)])
    );
}

/// The dead-letter topic refuses a dead letter for good (its `max.message.bytes` is 1 000):
/// the stitcher does not retry it as if the broker were away; it writes the dead letter
/// again without its value, headers saying so, counts the refusal, and moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_letter_the_broker_refuses_is_kept_as_its_headers_and_the_partition_moves_on() {
    let mut r = Running::parts(&journeys()).await;
    let dlq = r.config.topics.dead_letters.clone();
    r.set_topic_config(&dlq, "max.message.bytes", "1000").await;
    r.produce_raw("app", &vec![b'x'; 300 * 1024]).await;
    install_then_start_and_welcome(&mut r, "C6").await;
    let dead = r.dead_letters(10, Duration::from_secs(10)).await;
    assert_eq!(dead.len(), 1, "once: {dead:?}");
    let (value, headers) = &dead[0];
    assert!(value.is_empty());
    assert_eq!(headers["switchboard.error.reason"], "oversize");
    assert_eq!(headers["switchboard.refused.reason"], "message_too_large");
    assert_eq!(headers["switchboard.refused.topic"], dlq);
    assert_eq!(headers["switchboard.value.bytes"], (300 * 1024).to_string());
    assert_eq!(headers["switchboard.value.kept"], "0");
    assert!(headers["switchboard.source.topic"].ends_with("events.app"));
    assert_eq!(
        counted(&r, "switchboard_records_refused_total"),
        BTreeMap::from([("message_too_large".into(), 1.0)])
    );
    assert_eq!(
        counted(&r, "switchboard_dead_letters_total"),
        BTreeMap::from([("oversize".into(), 1.0)]),
        "the dead letter written as its headers is the oversize one, counted once"
    );
}

/// Produces an app install of `customer` behind what the test produced, starts the services
/// and waits for the welcome push: the partition kept flowing past what came before.
async fn install_then_start_and_welcome(r: &mut Running, customer: &str) {
    let token = format!("tok-{customer}");
    r.produce(&[event(
        "ok",
        "app.installed",
        "app",
        &[("customer_id", customer), ("push_token", &token)],
        &[],
    )])
    .await;
    r.start_stitcher().await;
    r.start_engine().await;
    let commands = r
        .commands_until(Duration::from_secs(60), |c| !c.is_empty())
        .await;
    assert_eq!(templates(&commands), [("push", "welcome-1")]);
}

/// A counter's non-zero series by their `reason`.
fn counted(r: &Running, name: &str) -> BTreeMap<String, f64> {
    let mut series = r.series(name, "reason");
    series.retain(|_, v| *v > 0.0);
    series
}

/// Three journeys wait from the same event and then text, under the SMS cap of 2 per 7 days
/// (`tests/policies.yaml`): their timers fall due together, and the two of highest priority
/// send, not the two whose ids sort first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_sends_fall_due_on_timers_together_the_higher_priorities_take_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    for (id, priority) in [("a-low", 1), ("b-mid", 5), ("c-high", 9)] {
        std::fs::write(
            dir.path().join(format!("{id}.yaml")),
            format!(
                "journey: {id}\nversion: 1\npriority: {priority}\ntrigger: {{ event: promo.started }}\nstart: pause\nsteps:\n  pause:\n    wait: 2s\n    next: text\n  text:\n    send: {{ channel: sms, template: {id} }}\n    next: done\n  done:\n    exit: ok\n"
            ),
        )
        .unwrap();
    }
    let r = Running::start(dir.path()).await;
    r.produce(&[event(
        "p1",
        "promo.started",
        "web",
        &[("customer_id", "P1"), ("phone", "+447911123456")],
        &[],
    )])
    .await;
    let commands = r
        .commands_until(Duration::from_secs(60), |c| c.len() >= 2)
        .await;
    let late = r
        .commands_until(Duration::from_secs(4), |c| c.len() > 2)
        .await;
    assert_eq!(late.len(), 2, "no third SMS: {late:?}");
    let mut sent: Vec<&str> = commands.iter().map(|c| c.template.as_str()).collect();
    sent.sort_unstable();
    assert_eq!(sent, ["b-mid", "c-high"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merged_profiles_continue_the_journey_on_the_survivor() {
    let r = Running::start(&journeys()).await;
    r.produce(&[event(
        "m1",
        "app.installed",
        "app",
        &[("device_id", "d-7"), ("push_token", "tok-7")],
        &[],
    )])
    .await;
    let welcome = r
        .commands_until(Duration::from_secs(30), |c| !c.is_empty())
        .await;
    let app_profile = welcome[0].profile_id.clone();
    r.produce(&[event(
        "m2",
        "cart.updated",
        "web",
        &[("anonymous_id", "cookie-7")],
        &[("cart_value", AttrValue::Double(60.0))],
    )])
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.produce(&[event(
        "m3",
        "login",
        "web",
        &[
            ("anonymous_id", "cookie-7"),
            ("device_id", "d-7"),
            ("customer_id", "C7"),
        ],
        &[],
    )])
    .await;
    let commands = r
        .commands_until(Duration::from_secs(30), |c| c.len() >= 2)
        .await;
    assert_eq!(
        templates(&commands),
        [("push", "welcome-1"), ("push", "cart-reminder")],
        "the web cart reaches the app user: {commands:?}"
    );
    assert_eq!(
        commands[1].profile_id, app_profile,
        "the older profile survives"
    );
    assert_eq!(r.metric("switchboard_identity_merges_total"), 1.0);
    // The survivor's record says what it absorbed: the web profile and its cart journey.
    let store = RedisStateStore::new(
        switchboard_redis::connect(&r.config.redis).await.unwrap(),
        r.config.redis.key_prefix.clone(),
    );
    let loaded = store.load(&[app_profile.as_str().into()]).await.unwrap();
    let (record, _) = loaded[0].clone().expect("the survivor's record");
    assert_eq!(record.absorbed.len(), 1, "{:?}", record.absorbed);
    let absorbed = &record.absorbed[0];
    assert_ne!(absorbed.profile, app_profile);
    assert_eq!(absorbed.took, ["abandoned-cart"]);
    assert!(absorbed.ended.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_engine_stopped_mid_stream_loses_nothing_and_sends_nothing_under_two_ids() {
    let mut r = Running::parts(&journeys()).await;
    r.start_stitcher().await;
    let first = r.start_engine().await;
    r.start_engine().await;
    let customers = 60;
    for n in 0..customers {
        r.produce(&[event(
            &format!("i{n}"),
            "app.installed",
            "app",
            &[
                ("customer_id", &format!("K{n}")),
                ("push_token", &format!("tok-{n}")),
            ],
            &[],
        )])
        .await;
        if n == customers / 2 {
            r.stop(first).await;
        }
    }
    let commands = r
        .commands_until(Duration::from_secs(60), |c| {
            c.iter().map(|c| &c.address).collect::<BTreeSet<_>>().len() >= customers
        })
        .await;
    let mut ids: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in &commands {
        ids.entry(c.address.as_str())
            .or_default()
            .insert(c.command_id.as_str());
    }
    assert_eq!(ids.len(), customers, "every customer got the welcome push");
    assert!(
        ids.values().all(|set| set.len() == 1),
        "one logical send, one command id: {ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_published_outbox_is_cleared_so_the_next_engine_sends_it_no_second_time() {
    use switchboard_engine::Outboxes;
    let mut r = Running::parts(&journeys()).await;
    let redis = switchboard_redis::connect(&r.config.redis).await.unwrap();
    let store = RedisStateStore::new(redis, r.config.redis.key_prefix.clone());
    let pending = |store: RedisStateStore, partitions: i32| async move {
        let mut all = Vec::new();
        for p in 0..partitions {
            all.extend(store.pending_outboxes(p).await.unwrap());
        }
        all
    };
    let partitions = r.config.topics.partitions;
    r.start_stitcher().await;
    let engine = r.start_engine().await;
    let install = |n: usize| {
        event(
            &format!("o{n}"),
            "app.installed",
            "app",
            &[
                ("customer_id", &format!("O{n}")),
                ("push_token", &format!("tok-o{n}")),
            ],
            &[],
        )
    };
    r.produce(&[install(1), install(2), install(3)]).await;
    r.commands_until(Duration::from_secs(30), |c| c.len() >= 3)
        .await;
    // An idle engine clears what it published (its next save or tick does it).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !pending(store.clone(), partitions).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "outboxes still pending: {:?}",
            pending(store.clone(), partitions).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    r.produce(&[install(4)]).await;
    r.commands_until(Duration::from_secs(30), |c| c.len() >= 4)
        .await;
    // Stopped right after publishing: its last outboxes are cleared on the way out.
    r.stop(engine).await;
    assert_eq!(
        pending(store.clone(), partitions).await,
        Vec::<String>::new()
    );
    r.start_engine().await;
    r.produce(&[install(5)]).await;
    r.commands_until(Duration::from_secs(30), |c| c.len() >= 5)
        .await;
    // A republished outbox would be a sixth command (the same id again).
    let commands = r
        .commands_until(Duration::from_secs(3), |c| c.len() > 5)
        .await;
    let ids: Vec<&str> = commands.iter().map(|c| c.command_id.as_str()).collect();
    assert_eq!(ids.len(), 5, "five installs, five welcome pushes: {ids:?}");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outbox_left_by_a_crash_is_published_by_the_next_owner() {
    use switchboard_engine::{Outboxes, Outgoing, Record, Write};
    let mut r = Running::parts(&journeys()).await;
    let redis = switchboard_redis::connect(&r.config.redis).await.unwrap();
    let store = RedisStateStore::new(redis, r.config.redis.key_prefix.clone());
    // A crash between the atomic write and the publish leaves this behind.
    let command = SendCommand {
        command_id: "cmd-left-behind".into(),
        profile_id: "p-crashed".into(),
        channel: "email".into(),
        address: "h@example.com".into(),
        template: "cart-reminder".into(),
        locale: "en".into(),
        vars: BTreeMap::new(),
        journey: "abandoned-cart".into(),
        version: 3,
        step: "remind".into(),
        variant: None,
        not_after: None,
        reason: Default::default(),
        created_at: 1,
    };
    store
        .save(
            1,
            0,
            &[],
            &[Write {
                profile: "p-crashed".into(),
                record: Record {
                    offset: 5,
                    ..Record::default()
                },
                outbox: vec![Outgoing::Command(command)],
                timers: vec![],
            }],
        )
        .await
        .unwrap();
    r.start_engine().await;
    let commands = r
        .commands_until(Duration::from_secs(30), |c| !c.is_empty())
        .await;
    assert_eq!(
        commands
            .iter()
            .map(|c| c.command_id.as_str())
            .collect::<Vec<_>>(),
        ["cmd-left-behind"]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        store.pending_outboxes(1).await.unwrap().is_empty(),
        "published, then cleared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journeys_are_reloaded_without_restart_and_a_broken_file_keeps_the_running_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        journeys().join("welcome.yaml"),
        dir.path().join("welcome.yaml"),
    )
    .unwrap();
    let r = Running::start(dir.path()).await;
    std::fs::write(
        dir.path().join("flash.yaml"),
        std::fs::read_to_string(journeys().join("flash-sale.yaml")).unwrap(),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    r.produce(&[event(
        "h1",
        "promo.viewed",
        "web",
        &[("phone", "+33612345679")],
        &[],
    )])
    .await;
    let commands = r
        .commands_until(Duration::from_secs(30), |c| !c.is_empty())
        .await;
    assert_eq!(
        templates(&commands),
        [("sms", "flash")],
        "the new journey runs"
    );

    std::fs::write(
        dir.path().join("broken.yaml"),
        "journey: broken\nversion: 1\nstart: nowhere\nsteps: {}\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(r.metric("switchboard_journey_reload_failures_total") >= 1.0);
    r.produce(&[event(
        "h2",
        "app.installed",
        "app",
        &[("customer_id", "C9"), ("push_token", "tok-9")],
        &[],
    )])
    .await;
    let commands = r
        .commands_until(Duration::from_secs(30), |c| c.len() >= 2)
        .await;
    // The two commands are on two topics, read from their start: in either order.
    let mut sent = templates(&commands);
    sent.sort();
    assert_eq!(
        sent,
        [("push", "welcome-1"), ("sms", "flash")],
        "the running journeys stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_product_view_gets_its_variant_and_the_control_group_gets_nothing() {
    let r = Running::start(&journeys()).await;
    // Who is held out depends on the (random) profile ids: with 100 customers and a 10 %
    // holdout, none held out happens once in 37 000 runs, more than 25 once in 240 000.
    let customers = 100;
    let views: Vec<ChannelEvent> = (0..customers)
        .map(|n| {
            event(
                &format!("v{n}"),
                "product.viewed",
                "web",
                &[
                    ("email", &format!("v{n}@example.com")),
                    ("push_token", &format!("vt-{n}")),
                ],
                &[("sku", AttrValue::String("SKU-1".into()))],
            )
        })
        .collect();
    r.produce(&views).await;
    let commands = r.commands_until(Duration::from_secs(15), |_| false).await;
    let browse: Vec<&SendCommand> = commands
        .iter()
        .filter(|c| c.journey == "browse-ab-test")
        .collect();
    for c in &browse {
        match c.variant.as_deref() {
            Some("a") => assert_eq!(
                (c.channel.as_str(), c.template.as_str()),
                ("email", "browse-a")
            ),
            Some("b") => assert_eq!(
                (c.channel.as_str(), c.template.as_str()),
                ("push", "browse-b")
            ),
            other => panic!("variant {other:?}"),
        }
        assert_eq!(c.vars.get("sku").map(String::as_str), Some("SKU-1"));
    }
    let people: BTreeSet<&str> = browse.iter().map(|c| c.profile_id.as_str()).collect();
    assert_eq!(people.len(), browse.len(), "one follow-up per customer");
    assert!(
        browse.iter().any(|c| c.variant.as_deref() == Some("a"))
            && browse.iter().any(|c| c.variant.as_deref() == Some("b"))
    );
    let held_out = r
        .series("switchboard_journey_transitions_total", "kind")
        .get("holdout")
        .copied()
        .unwrap_or(0.0);
    assert_eq!(
        browse.len() + held_out as usize,
        customers,
        "everyone is either followed up or in the control group"
    );
    assert!(
        (1.0..=25.0).contains(&held_out),
        "about 10% held out: {held_out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn win_back_waits_from_the_last_purchase_and_the_daily_nudge_follows_app_activity() {
    let r = Running::start(&journeys()).await;
    let first = event(
        "p1",
        "order.completed",
        "web",
        &[("customer_id", "W1"), ("email", "w1@example.com")],
        &[],
    );
    let t0 = first.occurred_at;
    r.produce(&[first]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    r.produce(&[
        event(
            "p2",
            "order.completed",
            "web",
            &[("customer_id", "W1")],
            &[],
        ),
        event(
            "a1",
            "app.opened",
            "app",
            &[("device_id", "dev-n"), ("push_token", "tok-n")],
            &[],
        ),
    ])
    .await;
    let commands = r.commands_until(Duration::from_secs(12), |_| false).await;
    let win_back: Vec<&SendCommand> = commands
        .iter()
        .filter(|c| c.template == "we-miss-you")
        .collect();
    assert_eq!(
        win_back.len(),
        1,
        "the second purchase restarted the clock: {commands:?}"
    );
    assert_eq!(win_back[0].channel, "email");
    assert!(
        win_back[0].created_at - t0 >= 4_500,
        "3 s after the last purchase, not the first"
    );
    let nudges: Vec<&SendCommand> = commands
        .iter()
        .filter(|c| c.template == "daily-streak")
        .collect();
    assert_eq!(nudges.len(), 1);
    assert_eq!(nudges[0].address, "tok-n");
}

/// `switchboard_timers_pending{partition}` is reported by a partition's owner only: an engine
/// that stops (revoked, or shut down) drops its series, so a dashboard does not add up an old
/// owner's stale count with the new owner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_engine_that_stops_leaves_no_pending_timer_gauge_behind() {
    let mut r = Running::parts(&journeys()).await;
    r.start_stitcher().await;
    let engine = r.start_engine().await;
    r.produce(&[event(
        "t1",
        "cart.updated",
        "web",
        &[("email", "tia@example.com")],
        &[("cart_value", AttrValue::Double(30.0))],
    )])
    .await;
    let pending = |r: &Running| -> Vec<f64> {
        r.registry
            .gather()
            .iter()
            .filter(|f| f.name() == "switchboard_timers_pending")
            .flat_map(|f| f.get_metric().iter().map(|m| m.get_gauge().value()))
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pending(&r).iter().sum::<f64>() < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the cart's wait is never pending: {:?}",
            pending(&r)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    r.stop(engine).await;
    assert!(pending(&r).is_empty(), "{:?}", pending(&r));
}

/// A purchase before the cart's wait ends cancels the wait's timer: it is removed from the
/// partition's shard at once, instead of firing later onto an instance that has gone (a load
/// and a save for nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_journey_that_ends_during_a_wait_takes_its_timer_with_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cart.yaml"),
        "journey: cart\nversion: 1\ntrigger: { event: cart.updated }\nexit_on: [order.completed]\nstart: pause\nsteps:\n  pause:\n    wait: 2s\n    next: remind\n  remind:\n    send: { channel: email, template: cart-reminder }\n    next: done\n  done:\n    exit: reminded\n",
    )
    .unwrap();
    let r = Running::start(dir.path()).await;
    let ids = [("customer_id", "T9"), ("email", "t9@example.com")];
    r.produce(&[event("c9", "cart.updated", "web", &ids, &[])])
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while r.metric("switchboard_timers_pending") < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the wait never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    r.produce(&[event("o9", "order.completed", "pos", &ids, &[])])
        .await;
    while r.metric("switchboard_timers_pending") > 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the ended journey's timer is still pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past the wait: nothing fired, nothing was sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(r.metric("switchboard_timers_fired_total"), 0.0);
    let commands = r
        .commands_until(Duration::from_secs(2), |c| !c.is_empty())
        .await;
    assert!(commands.is_empty(), "{commands:?}");
}

/// The A/B test sends once and exits; a purchase afterwards is still its goal, counted once
/// per entry, for the customers who got a message and for the control group alike (issue
/// 26: before, neither could be recorded).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn goals_after_the_journey_ended_count_for_treated_and_held_out_customers() {
    use switchboard_codec::{JourneyTransition, TransitionKind};
    let r = Running::start(&journeys()).await;
    let customers = 100;
    let who = |n: u32| [("email", format!("g{n}@example.com"))];
    let views: Vec<ChannelEvent> = (0..customers)
        .map(|n| {
            let ids = who(n);
            let ids: Vec<(&str, &str)> = ids.iter().map(|(k, v)| (*k, v.as_str())).collect();
            event(
                &format!("gv{n}"),
                "product.viewed",
                "web",
                &ids,
                &[("sku", AttrValue::String("SKU-1".into()))],
            )
        })
        .collect();
    r.produce(&views).await;
    // Every entry has ended (exited after its send, or held out) before anyone buys.
    let entered = |t: &[JourneyTransition]| {
        let ended = t.iter().filter(|x| {
            x.journey == "browse-ab-test"
                && (x.kind == TransitionKind::Exited || x.kind == TransitionKind::Holdout)
        });
        ended.count() >= customers as usize
    };
    let before = r.transitions_until(Duration::from_secs(30), entered).await;
    assert!(entered(&before), "every view entered and ended");
    let orders: Vec<ChannelEvent> = (0..customers)
        .map(|n| {
            let ids = who(n);
            let ids: Vec<(&str, &str)> = ids.iter().map(|(k, v)| (*k, v.as_str())).collect();
            event(
                &format!("go{n}"),
                "order.completed",
                "web",
                &ids,
                &[("total", AttrValue::Double(30.0))],
            )
        })
        .collect();
    r.produce(&orders).await;
    let goals_of = |t: &[JourneyTransition]| -> Vec<JourneyTransition> {
        t.iter()
            .filter(|x| x.journey == "browse-ab-test" && x.kind == TransitionKind::Goal)
            .cloned()
            .collect()
    };
    let all = r
        .transitions_until(Duration::from_secs(30), |t| {
            goals_of(t).len() >= customers as usize
        })
        .await;
    let goals = goals_of(&all);
    assert_eq!(goals.len(), customers as usize, "one goal per entry");
    let entries: BTreeMap<String, bool> = all
        .iter()
        .filter(|x| {
            x.journey == "browse-ab-test"
                && matches!(x.kind, TransitionKind::Entered | TransitionKind::Holdout)
        })
        .map(|x| {
            (
                x.entry_id.clone().unwrap(),
                x.kind == TransitionKind::Holdout,
            )
        })
        .collect();
    for g in &goals {
        let entry = g.entry_id.clone().expect("a goal names its entry");
        assert_eq!(entries.get(&entry), Some(&g.holdout), "goal of {entry}");
        assert_eq!(
            g.holdout,
            g.variant.is_none(),
            "the treated have a variant: {g:?}"
        );
    }
    let held_out = goals.iter().filter(|g| g.holdout).count();
    assert!(held_out > 0, "the control group's purchases count too");
    assert_eq!(
        r.metric("switchboard_journey_goals_total"),
        customers as f64,
        "and the metrics say the same"
    );
}

/// The worked loop of docs/journeys.md, measured: the generator's signed-in viewers enter the
/// A/B test, buy on their own at the base rate, and more when a message reaches them, by as
/// much as its template adds. `switchboard report` over the transitions then gives each arm a
/// conversion and a lift over the control group whose interval holds the generator's true
/// figures (checked at 99.9 %, so that a correct pipeline fails one run in a thousand per
/// arm, not one in twenty).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_generated_ab_test_reports_the_generators_true_conversion_and_lift() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use switchboard_report::{CONTROL, Seen, report};
    use switchboard_services::generate::{Mix, Traffic, generate, respond, true_conversion};
    use tokio_util::sync::CancellationToken;

    let r = Running::start(&journeys()).await;
    let views = 3_000;
    let traffic = Traffic {
        mix: Mix::SignedInViews,
        limit: Some(views),
        purchase_delay_ms: 200..1_000,
        seed: 26,
        ..Traffic::shoppers(600, 10_000_000, r.config.topics.events_prefix.clone())
    };
    let stop = CancellationToken::new();
    let (buys, bought) = tokio::sync::mpsc::unbounded_channel();
    let consumer = r.consumer(&r.command_topics());
    tokio::spawn(respond(consumer, r.codec.clone(), buys, 26, stop.clone()));
    let produced = Arc::new(AtomicU64::new(0));
    let producer = switchboard_services::services::producer(&r.config).unwrap();
    let generating = tokio::spawn(generate(
        traffic,
        r.codec.clone(),
        producer,
        produced.clone(),
        bought,
        stop.clone(),
    ));

    // Done when every view is made and nothing new happened for 8 s: no entry, no goal, no
    // purchase (one comes at most a second after its message).
    let started = std::time::Instant::now();
    let mut last = (0.0, 0.0, 0);
    let mut quiet = 0;
    while quiet < 8 {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "still busy: {last:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = (
            r.metric("switchboard_journey_arm_entries_total"),
            r.metric("switchboard_journey_goals_total"),
            produced.load(Ordering::Relaxed),
        );
        quiet = if now == last && now.2 >= views {
            quiet + 1
        } else {
            0
        };
        last = now;
    }
    stop.cancel();
    generating.await.unwrap();
    let published = r.metric("switchboard_journey_transitions_total") as usize;
    let transitions = r
        .transitions_until(Duration::from_secs(60), |t| t.len() >= published)
        .await;
    assert_eq!(transitions.len(), published, "every transition read");

    let report = report(transitions.into_iter().map(Seen::Transition));
    eprintln!("{}", switchboard_report::table::render(&report));
    let test = (report.journeys.iter())
        .find(|j| j.journey == "browse-ab-test")
        .expect("the A/B test is reported");
    let entries: u64 = test.arms.iter().map(|a| a.entries).sum::<u64>() + test.control.entries;
    assert!(entries >= views - 10, "{entries} entries of {views} views");
    // Arm a sends browse-a by email; b prefers push, which viewers cannot get, so browse-b
    // by email too.
    let template = |arm: &str| match arm {
        "a" => Some("browse-a"),
        "b" => Some("browse-b"),
        _ => None,
    };
    let z999 = 3.29;
    for arm in test.arms.iter().chain(std::iter::once(&test.control)) {
        let truth = true_conversion(template(&arm.name));
        let n = arm.entries as f64;
        let se = (truth * (1.0 - truth) / n).sqrt();
        assert!(
            (arm.conversion - truth).abs() <= z999 * se,
            "{}: {:.2}% of {} entries, true {:.2}%",
            arm.name,
            100.0 * arm.conversion,
            arm.entries,
            100.0 * truth
        );
    }
    assert_eq!(test.lifts.len(), 2, "a and b against {CONTROL}");
    for l in &test.lifts {
        let truth = 100.0 * (true_conversion(template(&l.arm)) - true_conversion(None));
        // The report's interval is 95 %: widened to 99.9 % for the check.
        let se = (l.high - l.low) / (2.0 * 1.96);
        assert!(
            (l.points - truth).abs() <= z999 * se,
            "{}: {:+.1} [{:+.1}, {:+.1}], true {truth:+.1}",
            l.arm,
            l.points,
            l.low,
            l.high
        );
        // With about 300 held-out entries, a true lift of 9.5 points gives p under 0.05 in
        // all but about one run in two thousand.
        assert!(
            l.p_value < 0.05,
            "a lift of 9 points or more is found: {l:?}"
        );
    }
}

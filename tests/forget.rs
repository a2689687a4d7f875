//! Data protection end to end on tansu and redis-server: `forget` erases a merged customer's
//! identity, journey state, outbox and timers, the engine confirms with `profile.forgotten`,
//! a scan of Redis finds nothing of the customer, and other customers are untouched.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::Message;
use redis::AsyncCommands;
use support::{Running, event};
use switchboard_codec::{Identifier, JourneyTransition, TransitionKind};
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_services::forget::forget_customer;
use switchboard_services::services::producer;

/// A send now, then a send an hour later: the customer has sends and a pending timer.
const JOURNEY: &str = r#"
journey: hello
version: 1
trigger: { event: app.installed }
start: hello
steps:
  hello:
    send: { channels: [push], template: hello }
    next: pause
  pause:
    wait: 1h
    next: later
  later:
    send: { channels: [push], template: later }
    next: done
  done:
    exit: done
"#;

/// Every key under the test's prefix with everything it holds, as text (engine records
/// decompressed, so their contents are scanned too).
async fn dump(r: &Running) -> Vec<(String, String)> {
    let client = redis::Client::open(r.redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}:*", r.config.redis.key_prefix);
    let keys: Vec<String> = c.keys(pattern).await.unwrap();
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        let content: Vec<String> = match kind.as_str() {
            "string" => {
                let value: Vec<u8> = c.get(&key).await.unwrap();
                if key.contains(":r:{") {
                    vec![switchboard_redis::stored::to_json(&value).unwrap()]
                } else {
                    vec![String::from_utf8(value).unwrap()]
                }
            }
            "hash" => {
                let h: Vec<(String, String)> = c.hgetall(&key).await.unwrap();
                h.into_iter().flat_map(|(k, v)| [k, v]).collect()
            }
            "set" => c.smembers(&key).await.unwrap(),
            "list" => c.lrange(&key, 0, -1).await.unwrap(),
            "zset" => c.zrange(&key, 0, -1).await.unwrap(),
            other => panic!("unexpected type {other} of {key}"),
        };
        out.push((key, content.join(" ")));
    }
    out
}

async fn transitions_until(
    r: &Running,
    timeout: Duration,
    stop: impl Fn(&JourneyTransition) -> bool,
) -> Option<JourneyTransition> {
    let consumer = r.consumer(std::slice::from_ref(&r.config.topics.transitions));
    let mut stream = consumer.stream();
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(m))) => {
                let t: JourneyTransition = r.codec.decode(m.payload().unwrap()).await.unwrap();
                if stop(&t) {
                    return Some(t);
                }
            }
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forget_erases_every_key_of_a_merged_customer_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.yaml"), JOURNEY).unwrap();
    let r = Running::start(dir.path()).await;

    // Eve installs the app (profile A: a send, a timer an hour out), browses the web with an
    // email (profile B), then logs in on the web with both: B merges into A.
    r.produce(&[event(
        "e1",
        "app.installed",
        "app",
        &[("device_id", "dev-eve"), ("push_token", "tok-eve")],
        &[],
    )])
    .await;
    // Channels are separate topics: the app profile must exist before the web one.
    r.commands_until(Duration::from_secs(30), |c| !c.is_empty())
        .await;
    r.produce(&[event(
        "e2",
        "page.viewed",
        "web",
        &[("anonymous_id", "cookie-eve"), ("email", "eve@example.com")],
        &[],
    )])
    .await;
    r.produce(&[event(
        "e3",
        "login",
        "web",
        &[
            ("anonymous_id", "cookie-eve"),
            ("device_id", "dev-eve"),
            ("customer_id", "EVE-1"),
        ],
        &[],
    )])
    .await;
    // Another customer, who must be untouched.
    r.produce(&[event(
        "o1",
        "app.installed",
        "app",
        &[("device_id", "dev-otto"), ("push_token", "tok-otto")],
        &[],
    )])
    .await;
    let sent = r
        .commands_until(Duration::from_secs(30), |c| c.len() >= 2)
        .await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let eve = sent
        .iter()
        .find(|c| c.address == "tok-eve")
        .unwrap()
        .profile_id
        .clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.metric("switchboard_identity_merges_total") < 1.0
        || !dump(&r).await.iter().any(|(k, _)| k.contains(":m:{"))
    {
        assert!(
            Instant::now() < deadline,
            "the merge did not reach the engine: {} merges, {:?}",
            r.metric("switchboard_identity_merges_total"),
            dump(&r).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = dump(&r).await;
    assert!(
        before.iter().any(|(_, v)| v.contains(&eve)),
        "the timer and record of Eve are in Redis before"
    );

    let redis = connect(&r.config.redis).await.unwrap();
    let identity = RedisIdentityStore::new(redis, Keys::new(r.config.redis.key_prefix.clone()));
    let producer = producer(&r.config).unwrap();
    let erased = forget_customer(
        &r.config,
        &r.codec,
        &producer,
        &identity,
        &Identifier::new("email", "eve@example.com"),
    )
    .await
    .unwrap()
    .expect("Eve is known");
    assert_eq!(erased.len(), 2, "Eve's profile and the one merged into it");
    assert_eq!(erased[0].as_str(), eve);

    let confirmed = transitions_until(&r, Duration::from_secs(30), |t| {
        t.kind == TransitionKind::Forgotten
    })
    .await
    .expect("the engine confirms with profile.forgotten");
    assert_eq!(confirmed.profile_id, eve);

    let erased: BTreeSet<String> = erased.iter().map(|p| p.to_string()).collect();
    let traces = [
        "dev-eve",
        "tok-eve",
        "cookie-eve",
        "eve@example.com",
        "EVE-1",
    ];
    let after = dump(&r).await;
    for (key, content) in &after {
        for p in &erased {
            assert!(
                !key.contains(p.as_str()) && !content.contains(p.as_str()),
                "{key} still names profile {p}: {content}"
            );
        }
        for t in traces {
            assert!(
                !key.contains(t) && !content.contains(t),
                "{key} still holds {t}: {content}"
            );
        }
    }
    assert!(
        after
            .iter()
            .any(|(k, v)| k.contains("dev-otto") || v.contains("tok-otto")),
        "the other customer's keys are still there: {after:?}"
    );

    // Eve coming back is a new customer, welcomed again.
    r.produce(&[event(
        "e4",
        "app.installed",
        "app",
        &[("device_id", "dev-eve"), ("push_token", "tok-eve")],
        &[],
    )])
    .await;
    let sent = r
        .commands_until(Duration::from_secs(30), |c| c.len() >= 3)
        .await;
    let mut again: Vec<_> = sent.iter().filter(|c| c.address == "tok-eve").collect();
    again.sort_by_key(|c| c.created_at);
    assert_eq!(again.len(), 2, "{sent:?}");
    assert_ne!(again[1].profile_id, eve, "a new profile: {sent:#?}");

    // Only `switchboard forget` may ask: the request type on a channel topic is refused.
    r.produce(&[event(
        "x1",
        "profile.forget",
        "web",
        &[("device_id", "dev-otto")],
        &[],
    )])
    .await;
    let refused = r.dead_letters(1, Duration::from_secs(30)).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0]
            .1
            .get("switchboard.error.reason")
            .map(String::as_str),
        Some("invalid_event")
    );
    assert!(
        dump(&r).await.iter().any(|(_, v)| v.contains("tok-otto")),
        "the other customer is still there"
    );
}

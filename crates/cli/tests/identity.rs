//! `switchboard identity show` and `switchboard forget` against a real redis-server, after a
//! merge; `forget` publishes its request to librdkafka's mock cluster.

mod common;

use common::{switchboard, text};
use switchboard_codec::Identifier;
use switchboard_config::RedisConfig;
use switchboard_identity::{IdentityRules, stitch};
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_test_support::{RedisServer, mock_cluster, unique};

#[tokio::test]
async fn show_prints_the_profile_its_identifiers_and_merges() {
    let server = RedisServer::start();
    let prefix = unique("cli");
    let config = RedisConfig {
        url: server.url(),
        ..RedisConfig::default()
    };
    let store = RedisIdentityStore::new(connect(&config).await.unwrap(), Keys::new(prefix.clone()));
    let rules = IdentityRules::default();
    let limits = rules.limits();
    let mut stitched = Vec::new();
    for (at, ids) in [
        (1_000, vec![Identifier::new("anonymous_id", "cookie-7")]),
        (2_000, vec![Identifier::new("email", "ann@example.com")]),
        (
            3_000,
            vec![
                Identifier::new("email", "Ann@Example.com"),
                Identifier::new("anonymous_id", "cookie-7"),
            ],
        ),
    ] {
        let prepared = rules.prepare(&ids);
        stitched.push(
            stitch(&store, &limits, &prepared.accepted, at)
                .await
                .unwrap(),
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "--redis-url",
            &server.url(),
            "identity",
            "show",
            "email: ANN@example.com ",
        ])
        .env("SWITCHBOARD_REDIS__KEY_PREFIX", &prefix)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("profile     {}", stitched[0].profile)),
        "{stdout}"
    );
    assert!(
        stdout.contains("  anonymous_id:cookie-7\n  email:ann@example.com\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("  {}", stitched[1].profile)),
        "the merged profile is listed: {stdout}"
    );

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "--redis-url",
            &server.url(),
            "identity",
            "show",
            "email:nobody@example.com",
        ])
        .env("SWITCHBOARD_REDIS__KEY_PREFIX", &prefix)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no profile holds email:nobody@example.com"));
    let bad = switchboard(&["identity", "show", "no-colon"]);
    assert!(
        text(&bad.stderr).contains("is not <kind>:<value>"),
        "{}",
        text(&bad.stderr)
    );

    // Forget: the request goes to customer.events keyed by the profile; the identity is gone.
    let kafka = mock_cluster(1);
    kafka.create_topic("customer.events", 1);
    let forget = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "--redis-url",
            &server.url(),
            "--kafka-bootstrap",
            &kafka.bootstrap(),
            "forget",
            "anonymous_id:cookie-7",
        ])
        .env("SWITCHBOARD_REDIS__KEY_PREFIX", &prefix)
        .output()
        .unwrap();
    assert!(forget.status.success(), "{}", text(&forget.stderr));
    assert!(
        text(&forget.stdout).contains(&format!(
            "forgot profile {} (1 merged into it)",
            stitched[0].profile
        )),
        "{}",
        text(&forget.stdout)
    );
    let consumer: rdkafka::consumer::BaseConsumer = kafka
        .client_config()
        .set("group.id", "check")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    rdkafka::consumer::Consumer::subscribe(&consumer, &["customer.events"]).unwrap();
    let request = (0..100)
        .find_map(|_| consumer.poll(std::time::Duration::from_millis(100)))
        .expect("a forget request")
        .unwrap();
    assert_eq!(
        rdkafka::Message::key(&request),
        Some(stitched[0].profile.as_str().as_bytes())
    );
    for raw in ["email:ann@example.com", "anonymous_id:cookie-7"] {
        let gone = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["--redis-url", &server.url(), "identity", "show", raw])
            .env("SWITCHBOARD_REDIS__KEY_PREFIX", &prefix)
            .output()
            .unwrap();
        assert!(
            text(&gone.stderr).contains("no profile holds"),
            "{raw}: {}",
            text(&gone.stderr)
        );
    }
}

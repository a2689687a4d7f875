//! `switchboard identity show` and `switchboard forget` against a real redis-server, after a
//! merge; `forget` publishes its request to Apache Kafka.

mod common;

use common::{switchboard, text};
use switchboard_codec::Identifier;
use switchboard_config::RedisConfig;
use switchboard_identity::{IdentityRules, stitch};
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_test_support::{KafkaBroker, RedisServer, unique};

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
        stdout.contains("created_at  1970-01-01T00:00:01Z"),
        "the survivor was created by the first event, at 1 000 ms: {stdout}"
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
    let kafka = KafkaBroker::shared();
    let customer_events = unique("customer.events");
    kafka.create_topic(&customer_events, 1).await;
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
        .env("SWITCHBOARD_TOPICS__CUSTOMER_EVENTS", &customer_events)
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
        .set("group.id", unique("check"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    rdkafka::consumer::Consumer::subscribe(&consumer, &[&customer_events]).unwrap();
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

/// `rediss://`: the CLI reaches a TLS-only redis-server, verifying its certificate against
/// the CA in `SSL_CERT_FILE`, and refuses it without that CA.
#[test]
fn redis_over_tls_verifies_the_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (scripts/setup.sh installs it)");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let port = switchboard_test_support::free_port();
    let mut server =
        std::process::Command::new(switchboard_test_support::find_binary("redis-server"))
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&cert)
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let show = |ca: Option<&std::path::Path>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        c.args([
            "--redis-url",
            &format!("rediss://127.0.0.1:{port}"),
            "identity",
            "show",
            "email:nobody@example.com",
        ]);
        if let Some(ca) = ca {
            c.env("SSL_CERT_FILE", ca);
        }
        c.output().unwrap()
    };
    // The server needs a moment to listen.
    let mut trusted = show(Some(&cert));
    for _ in 0..50 {
        if text(&trusted.stderr).contains("no profile holds") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        trusted = show(Some(&cert));
    }
    let untrusted = show(None);
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        text(&trusted.stderr).contains("no profile holds email:nobody@example.com"),
        "a query over TLS: {}",
        text(&trusted.stderr)
    );
    let refused = text(&untrusted.stderr);
    assert!(
        refused.contains("connecting to redis.url")
            && refused.contains("certificate verify failed"),
        "an unknown CA is refused: {refused}"
    );
}

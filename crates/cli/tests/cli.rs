//! The `switchboard` command as an operator uses it.

mod common;

use common::{switchboard, text};
use switchboard_test_support::{KafkaBroker, unique};

#[test]
fn config_check_prints_the_effective_config_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sb.toml");
    std::fs::write(
        &path,
        "[kafka]\nbootstrap_servers = \"k:9092\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"PLAIN\"\n\"sasl.username\" = \"u\"\n\"sasl.password\" = \"hunter2\"\n",
    )
    .unwrap();
    let out = switchboard(&[
        "config",
        "check",
        "-c",
        path.to_str().unwrap(),
        "--redis-url",
        "rediss://r:6380",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("bootstrap_servers = \"k:9092\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("url = \"rediss://r:6380\""),
        "the flag overrides: {stdout}"
    );
    assert!(!stdout.contains("hunter2"), "secrets are hidden: {stdout}");
}

#[test]
fn a_bad_config_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sb.toml");
    std::fs::write(&path, "[topics]\npartitions = 0\n").unwrap();
    let out = switchboard(&["config", "check", "-c", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("topics.partitions"),
        "{}",
        text(&out.stderr)
    );

    let out = switchboard(&["config", "check", "--admin-listen", "nowhere"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("admin.listen"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn schemas_lists_every_record_with_id_and_fingerprint() {
    let out = switchboard(&["schemas"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for (id, name) in [
        (1, "ChannelEvent"),
        (2, "CustomerEvent"),
        (3, "SendCommand"),
        (6, "JourneyTransition"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!("io.switchboard.{name} ")))
            .unwrap_or_else(|| panic!("{name}: {stdout}"));
        assert!(line.starts_with(&id.to_string()), "{line}");
    }
}

#[test]
fn topics_create_then_produce_then_tail_on_a_real_broker() {
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap();
    let run = unique("cli");
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!(
            "[topics]\nchannels = [\"web\"]\nevents_prefix = \"{run}.events.\"\ncommands_prefix = \"{run}.commands.\"\n\
             customer_events = \"{run}.customer\"\ntransitions = \"{run}.transitions\"\ndead_letters = \"{run}.dlq\"\n\
             partitions = 2\nreplication_factor = 1\n"
        ),
    )
    .unwrap();
    let cfg = config.path().to_str().unwrap();
    let out = switchboard(&[
        "topics",
        "create",
        "-c",
        cfg,
        "--kafka-bootstrap",
        &bootstrap,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("created"))
            .count(),
        5,
        "{}",
        text(&out.stdout)
    );
    let again = switchboard(&[
        "topics",
        "create",
        "-c",
        cfg,
        "--kafka-bootstrap",
        &bootstrap,
    ]);
    assert_eq!(
        text(&again.stdout)
            .lines()
            .filter(|l| l.starts_with("exists"))
            .count(),
        5
    );

    let events = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        events.path(),
        r#"{"event_id":"e1","type":"cart.updated","channel":"web","occurred_at":1790000000000,"identifiers":[{"kind":"anonymous_id","value":"c-1"}],"attributes":{"cart_value":59.5}}
{"event_id":"e2","type":"order.completed","channel":"web","occurred_at":1790000060000,"identifiers":[{"kind":"anonymous_id","value":"c-1"}]}
"#,
    )
    .unwrap();
    let topic = format!("{run}.events.web");
    let out = switchboard(&[
        "produce",
        "--kafka-bootstrap",
        &bootstrap,
        "--topic",
        &topic,
        "--file",
        events.path().to_str().unwrap(),
        "--key-by",
        "anonymous_id",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = switchboard(&[
        "tail",
        "--kafka-bootstrap",
        &bootstrap,
        "--topic",
        &topic,
        "--from-beginning",
        "--limit",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["key"], "c-1");
    assert_eq!(lines[0]["value"]["event_id"], "e1");
    assert_eq!(lines[0]["value"]["attributes"]["cart_value"], 59.5);
    assert_eq!(lines[1]["value"]["type"], "order.completed");
    assert!(lines[0].get("headers").is_none(), "headers only when asked");

    // The dead-letter topic is tailed with its headers (they say why a record is there).
    let dlq = format!("{run}.dlq");
    let producer: rdkafka::producer::BaseProducer = broker.client_config().create().unwrap();
    producer
        .send(
            rdkafka::producer::BaseRecord::to(&dlq)
                .key("c-1")
                .payload("{not avro}")
                .headers(
                    rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                        key: "switchboard.error.reason",
                        value: Some("wrong_magic"),
                    }),
                ),
        )
        .unwrap();
    rdkafka::producer::Producer::flush(&producer, std::time::Duration::from_secs(10)).unwrap();
    for args in [
        vec!["tail", "-c", cfg, "--topic", &dlq],
        vec!["tail", "--topic", &dlq, "--headers"],
    ] {
        let mut args = args.clone();
        args.extend([
            "--kafka-bootstrap",
            &bootstrap,
            "--from-beginning",
            "--limit",
            "1",
        ]);
        let out = switchboard(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let line: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
        assert_eq!(
            line["headers"]["switchboard.error.reason"], "wrong_magic",
            "{args:?}: {line}"
        );
        assert!(line["value"]["undecodable"].is_string(), "{line}");
    }
}

#[test]
fn producing_a_malformed_line_names_file_and_line() {
    let events = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(events.path(), "{\"event_id\": 5}\n").unwrap();
    let out = switchboard(&[
        "produce",
        "--kafka-bootstrap",
        "127.0.0.1:1",
        "--topic",
        "t",
        "--file",
        events.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(":1: not a ChannelEvent"), "{stderr}");
}

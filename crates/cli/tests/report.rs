//! `switchboard report` as an analyst runs it: on the transitions and commands of a
//! simulated A/B test, from a file and from Apache Kafka, as JSON, as tables, and as an HTML
//! page checked in headless Chromium.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{switchboard, text};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use switchboard_codec::{Codec, Framing, LocalSchemas, TransitionKind};
use switchboard_engine::simulate::{DEFAULT_DEDUP_WINDOW_MS, published, strongest_identifier};
use switchboard_engine::{Outgoing, Planner};
use switchboard_test_support::examples::{DAY, HOUR, T0, ev, journeys, policies};
use switchboard_test_support::{KafkaBroker, find_binary, unique};

/// Percent of each arm of `browse-ab-test` that buys within its goal window.
const BUYS: [(&str, u64); 3] = [("a", 30), ("b", 20), ("control", 10)];

/// Every command and transition of 2 000 customers viewing a product once, each buying
/// (or not) by the rate of the arm the journey put them in.
fn simulated_test() -> Vec<Outgoing> {
    let (journeys, policies) = (journeys(), policies());
    let planner = Planner::new(&journeys, &policies, DEFAULT_DEDUP_WINDOW_MS);
    let views: Vec<_> = (0..2_000u64)
        .map(|n| {
            ev(
                &format!("v{n}"),
                "product.viewed",
                "web",
                T0,
                &format!("c{n}"),
            )
            .id("email", &format!("c{n}@x.io"))
            .text("sku", "SKU-1")
            .0
        })
        .collect();
    let mut arm_of = BTreeMap::new();
    for o in published(&planner, views.clone(), &mut strongest_identifier) {
        if let Outgoing::Transition(t) = o {
            match (t.kind, t.variant) {
                (TransitionKind::Holdout, _) => arm_of.insert(t.profile_id, "control".to_owned()),
                (TransitionKind::Step, Some(v)) => arm_of.insert(t.profile_id, v),
                _ => None,
            };
        }
    }
    let mut events = views;
    for n in 0..2_000u64 {
        let arm = arm_of
            .get(&format!("customer_id:c{n}"))
            .cloned()
            .unwrap_or_default();
        let rate = BUYS.iter().find(|(a, _)| *a == arm).map_or(0, |(_, r)| *r);
        // A fixed scatter of customers over 0..100.
        if (n * 7_919 + 13) % 100 < rate {
            // Within the 3-day goal window.
            let at = (T0 + HOUR + (n % 40) as i64 * HOUR).min(T0 + 2 * DAY);
            events.push(
                ev(
                    &format!("o{n}"),
                    "order.completed",
                    "pos",
                    at,
                    &format!("c{n}"),
                )
                .0,
            );
        }
    }
    published(&planner, events, &mut strongest_identifier)
}

fn json_lines(records: &[Outgoing]) -> String {
    let mut s = String::new();
    for o in records {
        let line = match o {
            Outgoing::Transition(t) => serde_json::to_string(t),
            Outgoing::Command(c) => serde_json::to_string(c),
        };
        s.push_str(&line.unwrap());
        s.push('\n');
    }
    s
}

/// The arms of `browse-ab-test` in a JSON report: (name, entries, goals).
fn arms(report: &serde_json::Value) -> Vec<(String, u64, u64)> {
    let test = report["journeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["journey"] == "browse-ab-test")
        .expect("the test is reported");
    let arms = test["arms"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&test["control"]]);
    arms.map(|a| {
        (
            a["name"].as_str().unwrap().to_owned(),
            a["entries"].as_u64().unwrap(),
            a["goals"].as_u64().unwrap(),
        )
    })
    .collect()
}

#[test]
fn a_report_from_a_file_shows_every_arm_in_tables_json_and_a_page_a_browser_renders() {
    let records = simulated_test();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("transitions.jsonl");
    std::fs::write(&file, json_lines(&records)).unwrap();
    let file = file.to_str().unwrap();

    let out = switchboard(&["report", "--file", file, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arms = arms(&report);
    assert_eq!(arms.iter().map(|a| a.1).sum::<u64>(), 2_000, "{arms:?}");
    for (name, entries, goals) in &arms {
        let rate = BUYS.iter().find(|(a, _)| a == name).unwrap().1 as f64 / 100.0;
        let seen = *goals as f64 / *entries as f64;
        assert!(
            (seen - rate).abs() < 0.05,
            "{name}: {seen:.3} against {rate}"
        );
    }

    let out = switchboard(&["report", "--file", file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("browse-ab-test v1"), "{table}");
    assert!(table.contains("funnel a: "), "{table}");

    let page = dir.path().join("report.html");
    let out = switchboard(&["report", "--file", file, "--html", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let chromium = find_binary("chromium");
    let rendered = std::process::Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    let dom = text(&rendered.stdout);
    for (name, entries, goals) in &arms {
        let row = format!(
            "<tr class=\"arm\" data-arm=\"{name}\"><td>{name}</td><td>{entries}</td><td>{goals}</td>"
        );
        assert!(
            dom.contains(&row),
            "{name}'s row as the browser has it: {dom}"
        );
    }
    assert!(dom.contains("<svg class=\"chart\""), "the chart");
    let reached = |state: &str| {
        let at = dom
            .find(&format!("data-state=\"{state}\""))
            .unwrap_or_else(|| panic!("{state}"));
        let rest = &dom[at..];
        let n = rest.find(" entries</text>").unwrap();
        let start = rest[..n].rfind('>').unwrap() + 1;
        rest[start..n].parse::<u64>().unwrap()
    };
    let treated: u64 = arms.iter().filter(|a| a.0 != "control").map(|a| a.1).sum();
    assert_eq!(
        reached("ab"),
        treated,
        "every treated entry reached the split"
    );
    let a = arms.iter().find(|a| a.0 == "a").unwrap().1;
    assert_eq!(
        reached("email-first"),
        a,
        "variant a's entries reached its send"
    );
}

#[test]
fn a_report_from_kafka_is_the_report_from_the_same_records_in_a_file() {
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap();
    let run = unique("report");
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!(
            "[topics]\nchannels = [\"web\", \"email\", \"push\"]\nevents_prefix = \"{run}.events.\"\n\
             commands_prefix = \"{run}.commands.\"\ncustomer_events = \"{run}.customer\"\n\
             transitions = \"{run}.transitions\"\ndead_letters = \"{run}.dlq\"\npartitions = 3\n\
             replication_factor = 1\n"
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

    let records = simulated_test();
    let codec = futures::executor::block_on(Codec::new(LocalSchemas::embedded().unwrap())).unwrap();
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    for o in &records {
        let (topic, key, payload) = match o {
            Outgoing::Transition(t) => (
                format!("{run}.transitions"),
                &t.profile_id,
                codec.encode(t, Framing::Confluent).unwrap(),
            ),
            Outgoing::Command(c) => (
                format!("{run}.commands.{}", c.channel),
                &c.profile_id,
                codec.encode(c, Framing::Confluent).unwrap(),
            ),
        };
        while let Err((e, _)) = producer.send(BaseRecord::to(&topic).key(key).payload(&payload)) {
            assert!(
                matches!(
                    e,
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull
                    )
                ),
                "{e}"
            );
            producer.poll(Duration::from_millis(10));
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let from_kafka = switchboard(&[
        "report",
        "-c",
        cfg,
        "--kafka-bootstrap",
        &bootstrap,
        "--json",
    ]);
    assert!(from_kafka.status.success(), "{}", text(&from_kafka.stderr));
    // Reaching each partition's end is how the report knows it is done, not an error.
    assert!(
        !text(&from_kafka.stderr).contains("ERROR"),
        "{}",
        text(&from_kafka.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("transitions.jsonl");
    std::fs::write(&file, json_lines(&records)).unwrap();
    let from_file = switchboard(&["report", "--file", file.to_str().unwrap(), "--json"]);
    let parse = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
    assert_eq!(parse(&from_kafka.stdout), parse(&from_file.stdout));
    assert_eq!(
        arms(&parse(&from_kafka.stdout))
            .iter()
            .map(|a| a.1)
            .sum::<u64>(),
        2_000
    );

    // Nothing in the range: an empty report, not an error.
    let later = switchboard(&[
        "report",
        "-c",
        cfg,
        "--kafka-bootstrap",
        &bootstrap,
        "--json",
        "--since",
        "2099-01-01T00:00:00Z",
    ]);
    assert!(later.status.success(), "{}", text(&later.stderr));
    assert_eq!(parse(&later.stdout)["journeys"], serde_json::json!([]));
}

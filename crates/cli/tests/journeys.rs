//! The journey designer's commands: validate, graph, schema, simulate.

mod common;

use common::{switchboard, text};

#[test]
fn the_example_journeys_validate() {
    let out = switchboard(&["validate", "journeys", "--policies", "deploy/policies.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("6 journey version(s) valid"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn broken_journeys_fail_with_every_error_listed() {
    let out = switchboard(&["validate", "tests/fixtures/broken-journeys"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("tests/fixtures/broken-journeys/"))
            .count(),
        10,
        "{stderr}"
    );
    assert!(stderr.contains("error: 10 error(s)"), "{stderr}");
}

#[test]
fn graph_draws_branches_timeouts_and_exits() {
    let out = switchboard(&["graph", "journeys/abandoned-cart.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mermaid = text(&out.stdout);
    assert!(mermaid.contains("stateDiagram-v2"));
    assert!(
        mermaid.contains("[*] --> pause : cart.updated"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("big_cart --> offer : event.cart_value >= 100.0"),
        "{mermaid}"
    );
    assert!(mermaid.contains("big_cart --> done : else"), "{mermaid}");
    assert!(mermaid.contains("done --> [*]"), "{mermaid}");

    let out = switchboard(&["graph", "journeys/welcome.yaml", "--format", "dot"]);
    let dot = text(&out.stdout);
    assert!(dot.starts_with("digraph \"welcome v1\""), "{dot}");
    assert!(dot.contains("settle -> tips"), "{dot}");
}

#[test]
fn schema_is_a_json_schema_that_knows_the_step_kinds() {
    let out = switchboard(&["schema"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "JourneyFile");
    let step = &schema["$defs"]["StepDef"]["properties"];
    for kind in [
        "send",
        "wait",
        "wait_until",
        "wait_for",
        "branch",
        "split",
        "update",
        "exit",
    ] {
        assert!(step.get(kind).is_some(), "{kind} missing from {step}");
    }
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are flagged by editors"
    );
}

#[test]
fn simulate_prints_each_customers_timeline() {
    let out = switchboard(&[
        "simulate",
        "--journeys",
        "journeys",
        "--events",
        "journeys/examples/events.jsonl",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("customer email:ann@example.com"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "2026-01-15T15:00:00Z  send        abandoned-cart/remind email cart-reminder"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("exited      abandoned-cart (goal:order.completed)"),
        "{stdout}"
    );
}

/// The headline case, simulated: an anonymous web visit starts the cart reminder, the app
/// install names the customer, a web login links the cookie to them (two profiles merge), and
/// a purchase in the store ends the reminder before it is sent. Simulation stitches the
/// identifiers as the stitcher does, so it is one customer throughout.
#[test]
fn simulate_stitches_an_anonymous_cart_and_a_store_purchase_into_one_customer() {
    let t = 1_768_485_600_000_i64;
    let lines = [
        format!(
            r#"{{"event_id":"h1","type":"cart.updated","channel":"web","occurred_at":{t},"identifiers":[{{"kind":"anonymous_id","value":"cookie-9"}}],"attributes":{{"cart_value":80.0}}}}"#
        ),
        format!(
            r#"{{"event_id":"h2","type":"app.installed","channel":"app","occurred_at":{},"identifiers":[{{"kind":"customer_id","value":"C9"}},{{"kind":"email","value":"Ann@Example.com"}},{{"kind":"push_token","value":"tok-9"}}]}}"#,
            t + 60_000
        ),
        format!(
            r#"{{"event_id":"h3","type":"page.viewed","channel":"web","occurred_at":{},"identifiers":[{{"kind":"anonymous_id","value":"cookie-9"}},{{"kind":"email","value":"ann@example.com"}}]}}"#,
            t + 120_000
        ),
        format!(
            r#"{{"event_id":"h4","type":"order.completed","channel":"pos","occurred_at":{},"identifiers":[{{"kind":"loyalty_card","value":"L-9"}},{{"kind":"email","value":"ANN@example.com"}}],"attributes":{{"total":80.0}}}}"#,
            t + 1_800_000
        ),
    ];
    let stdout = simulate_lines(&lines.join("\n"));
    let customers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("customer "))
        .collect();
    assert_eq!(customers, ["customer customer_id:C9"], "{stdout}");
    assert!(stdout.contains("entered     abandoned-cart"), "{stdout}");
    assert!(
        stdout.contains("exited      abandoned-cart (goal:order.completed)"),
        "the store purchase ends the web's cart reminder: {stdout}"
    );
    assert!(
        !stdout.contains("cart-reminder"),
        "no reminder is sent: {stdout}"
    );
    assert!(!stdout.contains("no_channel"), "{stdout}");
}

/// An event with no usable identifier is shown as the stitcher would dead-letter it.
#[test]
fn simulate_shows_an_event_without_a_usable_identifier_as_rejected() {
    let stdout = simulate_lines(
        r#"{"event_id":"n1","type":"cart.updated","channel":"web","occurred_at":1768485600000,"identifiers":[{"kind":"email","value":"null"}],"attributes":{"cart_value":10.0}}"#,
    );
    assert!(
        stdout.contains("rejected    event n1: no usable identifier (email: blocked)"),
        "{stdout}"
    );
    assert!(!stdout.contains("entered"), "{stdout}");
}

/// `switchboard simulate` of the example journeys over `events` (JSON lines); its output.
fn simulate_lines(events: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, events).unwrap();
    let out = switchboard(&[
        "simulate",
        "--journeys",
        "journeys",
        "--events",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The end-to-end suites run `tests/journeys/`: the examples with waits of seconds, so a test
/// does not wait hours. Anything else that differs is drift, and the suites would then test
/// journeys nobody ships.
#[test]
fn the_test_journeys_are_the_examples_with_short_waits() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let without_waits = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with("wait:"))
            .map(str::to_owned)
            .collect()
    };
    let mut compared = 0;
    for entry in std::fs::read_dir(root.join("journeys")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let copy = root.join("tests/journeys").join(path.file_name().unwrap());
        let (shipped, tested) = (
            std::fs::read_to_string(&path).unwrap(),
            std::fs::read_to_string(&copy).unwrap_or_else(|e| {
                panic!("{} has no copy in tests/journeys: {e}", path.display())
            }),
        );
        assert_eq!(
            without_waits(&shipped),
            without_waits(&tested),
            "{} and its copy differ beyond their waits",
            path.display()
        );
        compared += 1;
    }
    assert!(compared >= 6, "{compared} example journeys compared");
}

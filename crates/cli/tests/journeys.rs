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

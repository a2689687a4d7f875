//! `tests/fixtures/broken-journeys`: one mistake per file, each reported with file, line
//! and state, all of them in one run.

use std::path::Path;

use switchboard_journey::load_dir;

#[test]
fn every_broken_fixture_is_reported_precisely() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/broken-journeys"
    ));
    let channels: Vec<String> = ["email", "sms", "push"].map(String::from).to_vec();
    let errors = load_dir(dir, &channels).unwrap_err();
    let shown: Vec<String> = errors
        .iter()
        .map(|e| {
            let file = Path::new(&e.file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            format!(
                "{file}:{}: {}{}",
                e.line,
                e.state
                    .as_ref()
                    .map(|s| format!("state `{s}`: "))
                    .unwrap_or_default(),
                e.message
            )
        })
        .collect();
    let expected = [
        ("unknown-state.yaml:8: state `a`: `next` names unknown state `nowhere`"),
        ("unreachable.yaml:9: state `orphan`: unreachable from start state `a`"),
        ("missing-next.yaml:7: state `a`: missing `next`"),
        ("wait-for-no-timeout.yaml:7: state `a`: wait_for `email.clicked` has no timeout"),
        ("cycle-without-wait.yaml:7: state `a`: is on a cycle with no wait in it"),
        ("unknown-channel.yaml:7: state `a`: unknown channel `fax`"),
        ("invalid-cel.yaml:8: state `a`: invalid CEL `profile.ltv >> 500`"),
        ("holdout.yaml:4: holdout 1.5 is outside 0..1"),
        ("twin-b.yaml:1: duplicate journey id `twin` version 1"),
        ("unknown-field.yaml:7:"),
    ];
    for want in expected {
        assert!(
            shown.iter().any(|s| s.starts_with(want)),
            "missing `{want}` in:\n{}",
            shown.join("\n")
        );
    }
    assert!(
        shown
            .iter()
            .any(|s| s.starts_with("unknown-field.yaml") && s.contains("wiat")),
        "{shown:#?}"
    );
    assert_eq!(
        shown.len(),
        expected.len(),
        "one error per fixture:\n{}",
        shown.join("\n")
    );
}

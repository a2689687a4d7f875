//! The artefacts in deploy/ are tested, not decorative: the alert rules load, their unit
//! tests pass under promtool, and every metric they name is one Switchboard exports.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn deploy() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy"))
}

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool ({e}): run scripts/setup.sh to install the prometheus package")
        })
}

#[test]
fn alert_rules_load_and_pass_their_unit_tests() {
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let out = promtool(&args);
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_metric_an_alert_names_is_exported() {
    let rules = std::fs::read_to_string(deploy().join("prometheus/alerts.yml")).unwrap();
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/pipeline/src/metrics.rs"
    ))
    .unwrap();
    let names: BTreeSet<String> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("switchboard_"))
        .map(|w| w.trim_end_matches("_bucket").to_owned())
        .collect();
    assert!(names.len() >= 6, "{names:?}");
    for name in &names {
        assert!(
            source.contains(&format!("\"{name}\"")),
            "{name} is not a metric Switchboard exports"
        );
    }
}

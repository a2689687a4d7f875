//! The load harness's one command, small: the three systems on the mock cluster and a
//! redis-server, the report and its charts written where asked.

use std::process::Command;

#[test]
fn one_command_measures_the_three_systems_and_writes_the_report() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run = Command::new(env!("CARGO_BIN_EXE_switchboard-bench"))
        .args([
            "3000",
            "2",
            "--mock-broker",
            "--rounds",
            "1",
            "--warmup-secs",
            "0",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("the harness starts");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the harness failed\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");

    // Each system drained the backlog at some rate, and was offered three rates.
    for system in ["baseline", "switchboard", "floor"] {
        let rows: Vec<&str> = report
            .lines()
            .filter(|l| l.starts_with(&format!("| {system} | ")))
            .collect();
        // Drain rows have seven cells; latency rows, eight.
        let cells = |row: &str| row.split('|').count() - 2;
        let drained = rows
            .iter()
            .find(|r| cells(r) == 7)
            .unwrap_or_else(|| panic!("no drain row for {system}\n{report}"));
        let rate: f64 = cell(drained, 2).parse().expect("a rate");
        assert!(rate > 0.0, "{drained}");
        let offered: Vec<&&str> = rows.iter().filter(|r| cells(r) == 8).collect();
        assert_eq!(offered.len(), 3, "{system}: {offered:?}");
        for row in offered {
            let samples: u64 = cell(row, 4).parse().expect("a sample count");
            assert!(samples > 0, "no event timed: {row}");
            // The mock cluster runs in the harness's process: its thread's CPU is the
            // broker's, apart from the pipeline's (both busy while a rate is offered).
            let busy: Vec<f64> = cell(row, 8)
                .split('/')
                .map(|c| c.parse().expect("cores busy"))
                .collect();
            assert!(busy.len() == 3 && busy[0] > 0.0 && busy[1] > 0.0, "{row}");
        }
    }
    assert!(
        report.contains("| mock cluster | Redis | total |"),
        "the drain table does not name the broker\n{report}"
    );
    for ratio in [
        "Ratio switchboard / baseline: **",
        "Ratio floor / baseline: **",
        "Ratio switchboard / floor: **",
    ] {
        assert!(report.contains(ratio), "no `{ratio}`\n{report}");
    }
    // The floor produced what Switchboard's engine produced per event in its drain.
    let produced = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("switchboard: ")?
                .strip_suffix(" messages produced per event by the engine")?
                .parse::<f64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no messages per event printed\n{stdout}"));
    assert!(produced > 1.0, "{produced}");
    assert!(report.contains(&format!("{produced:.2} messages produced per event")));
    for chart in ["latency.png", "throughput.png"] {
        let png = std::fs::read(dir.path().join(chart)).expect(chart);
        assert!(png.starts_with(b"\x89PNG"), "{chart} is not a PNG");
    }
}

/// The `n`th cell (from 1) of a Markdown table row, without digit-group spaces.
fn cell(row: &str, n: usize) -> String {
    row.split('|')
        .nth(n)
        .unwrap_or_default()
        .trim()
        .replace(' ', "")
}

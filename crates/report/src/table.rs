//! The report as the terminal shows it.

use std::fmt::Write as _;

use comfy_table::Table;

use crate::aggregate::{Arm, Report};

/// Percent with one decimal.
fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// A duration in seconds, minutes, hours or days, for times to goal.
pub fn duration(ms: i64) -> String {
    let secs = ms as f64 / 1000.0;
    match secs {
        s if s < 60.0 => format!("{s:.0} s"),
        s if s < 3_600.0 => format!("{:.0} min", s / 60.0),
        s if s < 48.0 * 3_600.0 => format!("{:.1} h", s / 3_600.0),
        s => format!("{:.1} d", s / 86_400.0),
    }
}

/// A time as RFC 3339, UTC.
pub fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Every journey: its arms side by side, their lift, then each arm's funnel.
pub fn render(report: &Report) -> String {
    let mut s = format!(
        "{} transitions, {} commands",
        report.transitions, report.commands
    );
    if report.unattributed > 0 {
        let _ = write!(s, " ({} transitions of no entry read)", report.unattributed);
    }
    s.push('\n');
    for j in &report.journeys {
        let _ = writeln!(s, "\n{} v{}", j.journey, j.version);
        let mut t = Table::new();
        t.force_no_tty().set_header([
            "arm",
            "entries",
            "goals",
            "conversion",
            "lift (points, 95% CI)",
            "p-value",
            "time to goal",
            "sends",
            "suppressed",
            "deferred",
        ]);
        let arms = j.arms.iter().chain(std::iter::once(&j.control));
        for a in arms.filter(|a| a.entries > 0) {
            let lift = j.lifts.iter().find(|l| l.arm == a.name);
            t.add_row([
                a.name.clone(),
                a.entries.to_string(),
                a.goals.to_string(),
                percent(a.conversion),
                lift.map_or_else(
                    || "-".to_owned(),
                    |l| format!("{:+.1} [{:+.1}, {:+.1}]", l.points, l.low, l.high),
                ),
                lift.map_or_else(|| "-".to_owned(), |l| format!("{:.3}", l.p_value)),
                a.median_time_to_goal_ms
                    .map_or_else(|| "-".to_owned(), duration),
                sends(a),
                counts(&a.suppressed),
                counts(&a.deferred),
            ]);
        }
        let _ = writeln!(s, "{t}");
        if let Some(w) = &j.winner {
            let _ = writeln!(
                s,
                "  winner {} since {}: {}",
                w.variant,
                time(w.at),
                w.reason
            );
        }
        for a in j.arms.iter().filter(|a| !a.funnel.is_empty()) {
            let steps: Vec<String> = a
                .funnel
                .iter()
                .map(|f| format!("{} {}", f.step, f.entries))
                .collect();
            let _ = writeln!(s, "  funnel {}: {}", a.name, steps.join(" > "));
        }
    }
    s
}

fn sends(a: &Arm) -> String {
    if a.sends.is_empty() {
        return "-".into();
    }
    (a.sends.iter())
        .map(|x| format!("{} {} {}", x.channel, x.template, x.commands))
        .collect::<Vec<_>>()
        .join(", ")
}

fn counts(m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "-".into();
    }
    (m.iter())
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

//! The report as a self-contained HTML page: no script, no external resource, so it can be
//! mailed or archived as one file. Per journey: the arms table, a chart of conversion per arm
//! (with each treated arm's interval around the control's rate), and, when the journey's
//! definition is at hand, its graph with the entries that reached each step.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use switchboard_journey::{Journey, JourneySet};

use crate::aggregate::{JourneyReport, Report};
use crate::table::duration;

/// The page; `journeys`, when given, draws each journey's graph.
pub fn render(report: &Report, journeys: Option<&JourneySet>) -> String {
    let mut s = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Switchboard report</title><style>\
         body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
         th:first-child,td:first-child{text-align:left}\
         .note{color:#666}</style></head><body>\n<h1>Switchboard report</h1>\n",
    );
    let _ = writeln!(
        s,
        "<p class=\"note\">{} transitions, {} commands. Lift: treated minus control \
         conversion in percentage points, 95% Wald interval; p-value: two-sided \
         two-proportion z-test.</p>",
        report.transitions, report.commands
    );
    for j in &report.journeys {
        let _ = writeln!(
            s,
            "<section id=\"{0}-v{1}\"><h2>{0} v{1}</h2>",
            esc(&j.journey),
            j.version
        );
        arms_table(&mut s, j);
        if let Some(w) = &j.winner {
            let _ = writeln!(
                s,
                "<p class=\"winner\">Winner: <b>{}</b> since {} ({})</p>",
                esc(&w.variant),
                crate::table::time(w.at),
                esc(&w.reason)
            );
        }
        s.push_str(&chart(j));
        let definition = journeys
            .and_then(|set| set.get(&j.journey, u32::try_from(j.version).unwrap_or_default()));
        if let Some(definition) = definition {
            s.push_str(&graph(definition, j));
        }
        s.push_str("</section>\n");
    }
    s.push_str("</body></html>\n");
    s
}

fn arms_table(s: &mut String, j: &JourneyReport) {
    s.push_str(
        "<table><tr><th>arm</th><th>entries</th><th>goals</th><th>conversion</th>\
         <th>lift (points, 95% CI)</th><th>p-value</th><th>time to goal</th></tr>\n",
    );
    for a in j.arms.iter().chain(std::iter::once(&j.control)) {
        if a.entries == 0 {
            continue;
        }
        let lift = j.lifts.iter().find(|l| l.arm == a.name);
        let _ = writeln!(
            s,
            "<tr class=\"arm\" data-arm=\"{0}\"><td>{0}</td><td>{1}</td><td>{2}</td>\
             <td>{3:.1}%</td><td>{4}</td><td>{5}</td><td>{6}</td></tr>",
            esc(&a.name),
            a.entries,
            a.goals,
            100.0 * a.conversion,
            lift.map_or_else(
                || "-".into(),
                |l| format!("{:+.1} [{:+.1}, {:+.1}]", l.points, l.low, l.high)
            ),
            lift.map_or_else(|| "-".into(), |l| format!("{:.3}", l.p_value)),
            a.median_time_to_goal_ms
                .map_or_else(|| "-".into(), duration),
        );
    }
    s.push_str("</table>\n");
}

/// Horizontal bars of conversion per arm, the control last; each treated arm's interval
/// drawn around the control's rate plus its lift.
fn chart(j: &JourneyReport) -> String {
    let arms: Vec<_> = (j.arms.iter().chain(std::iter::once(&j.control)))
        .filter(|a| a.entries > 0)
        .collect();
    let top = arms
        .iter()
        .map(|a| a.conversion)
        .chain(
            j.lifts
                .iter()
                .map(|l| (j.control.conversion + l.high / 100.0).max(0.0)),
        )
        .fold(0.01_f64, f64::max);
    let (left, width, row) = (90.0, 420.0, 28.0);
    let height = row * arms.len() as f64 + 10.0;
    let x = |rate: f64| left + width * (rate.max(0.0) / top);
    let mut s = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"conversion per arm\" \
         width=\"{}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\n",
        left + width + 80.0
    );
    for (i, a) in arms.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let fill = if a.name == crate::CONTROL {
            "#999"
        } else {
            "#3a7bd5"
        };
        // The label goes right of the bar and of its interval.
        let interval_end = (j.lifts.iter().find(|l| l.arm == a.name))
            .map_or(0.0, |l| j.control.conversion + l.high / 100.0);
        let label_x = x(a.conversion.max(interval_end)) + 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{fill}\"/>\
             <text x=\"{:.1}\" y=\"{}\">{:.1}%</text>",
            left - 6.0,
            y + 15.0,
            esc(&a.name),
            x(a.conversion) - left,
            row - 8.0,
            label_x,
            y + 15.0,
            100.0 * a.conversion,
        );
        if let Some(l) = j.lifts.iter().find(|l| l.arm == a.name) {
            let (low, high) = (
                j.control.conversion + l.low / 100.0,
                j.control.conversion + l.high / 100.0,
            );
            let _ = writeln!(
                s,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#222\"/>",
                x(low),
                x(high),
                y + (row - 8.0) / 2.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The journey's states in columns by their distance from the start, each with the entries
/// of the treated arms that reached it, and an arrow to each state it leads to.
fn graph(j: &Journey, report: &JourneyReport) -> String {
    let mut reached: BTreeMap<&str, u64> = BTreeMap::new();
    for a in &report.arms {
        for f in &a.funnel {
            *reached.entry(f.step.as_str()).or_default() += f.entries;
        }
    }
    // Columns by breadth-first distance from the start.
    let mut level: BTreeMap<usize, usize> = BTreeMap::new();
    // A state's place in `j.states`.
    let position = |id| {
        let name = &j.state(id)?.name;
        j.states.iter().position(|s| s.name == *name)
    };
    let mut queue = std::collections::VecDeque::new();
    if let Some(start) = position(j.start) {
        level.insert(start, 0);
        queue.push_back(j.start);
    }
    while let Some(id) = queue.pop_front() {
        let (Some(here), Some(state)) = (position(id), j.state(id)) else {
            continue;
        };
        let next_level = level.get(&here).copied().unwrap_or(0) + 1;
        for (next, _) in state.kind.successors() {
            if let Some(n) = position(next)
                && !level.contains_key(&n)
            {
                level.insert(n, next_level);
                queue.push_back(next);
            }
        }
    }
    let (w, h, gap_x, gap_y) = (170.0, 56.0, 60.0, 24.0);
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    let mut at: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    for (&state, &col) in &level {
        let row = rows.entry(col).or_default();
        at.insert(
            state,
            (
                10.0 + col as f64 * (w + gap_x),
                10.0 + *row as f64 * (h + gap_y),
            ),
        );
        *row += 1;
    }
    let width = at.values().map(|p| p.0 + w + 10.0).fold(0.0, f64::max);
    let height = at.values().map(|p| p.1 + h + 10.0).fold(0.0, f64::max);
    let mut s = format!(
        "<svg class=\"graph\" role=\"img\" aria-label=\"{} graph\" width=\"{width}\" \
         height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\"/>\
         </marker></defs>\n",
        esc(&j.id)
    );
    for (i, state) in j.states.iter().enumerate() {
        let Some(&(x0, y0)) = at.get(&i) else {
            continue;
        };
        for (next, label) in state.kind.successors() {
            let Some(&(x1, y1)) = position(next).and_then(|n| at.get(&n)) else {
                continue;
            };
            let _ = writeln!(
                s,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#555\" \
                 marker-end=\"url(#arrow)\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
                x0 + w,
                y0 + h / 2.0,
                x1,
                y1 + h / 2.0,
                x0 + w + 6.0,
                y0 + h / 2.0 + (y1 - y0) / 4.0 - 4.0,
                esc(&label)
            );
        }
    }
    for (i, state) in j.states.iter().enumerate() {
        let Some(&(x, y)) = at.get(&i) else { continue };
        let n = reached.get(state.name.as_str()).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "<g class=\"state\" data-state=\"{0}\"><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" \
             height=\"{h}\" rx=\"6\" fill=\"#eef3fb\" stroke=\"#3a7bd5\"/>\
             <text x=\"{1}\" y=\"{2}\" font-weight=\"bold\">{0}</text>\
             <text x=\"{1}\" y=\"{3}\" font-size=\"12\">{4}</text>\
             <text x=\"{1}\" y=\"{5}\" font-size=\"12\" class=\"reached\">{6} entries</text></g>",
            esc(&state.name),
            x + 8.0,
            y + 17.0,
            y + 33.0,
            esc(state.kind.kind_name()),
            y + 49.0,
            n
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Text for HTML and SVG.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

//! The Markdown report and its charts.

use std::path::Path;

use crate::Error;
use crate::latency::LatencyRow;
use crate::parts::{Parts, System};
use crate::plot;

pub(crate) struct Report {
    pub(crate) system: System,
    /// The median drain's.
    pub(crate) rate: f64,
    /// CPU seconds per million events of the median drain: the pipeline, the broker, Redis.
    pub(crate) cpu: [f64; 3],
    /// Every drain's events/s, in the order run.
    pub(crate) rounds: Vec<f64>,
    pub(crate) latency: Vec<LatencyRow>,
}

/// The report; `floor_produced` is the floor's messages per event, when it ran.
pub(crate) fn markdown(
    reports: &[Report],
    backlog: u64,
    secs: u64,
    parts: &Parts,
    floor_produced: Option<f64>,
) -> String {
    let mut md = String::new();
    let broker = parts.broker.description();
    let linger = parts
        .linger_ms
        .map_or("Switchboard's default".to_owned(), |l| l.to_string());
    md.push_str(&format!(
        "Backlog {backlog} events of {}; {secs} s measured per offered rate, after {} s offered unmeasured; \
         {broker} and redis-server on this machine; producers' `linger.ms` {linger}, consumers' \
         `fetch.wait.max.ms` {}, {} partitions per channel topic.\n\n",
        if parts.returning > 0 {
            format!(
                "returning customers (each drain, and each offered rate, after {} unmeasured backlogs of the same customers: identifiers known, records stored)",
                parts.returning
            )
        } else {
            "new customers".to_owned()
        },
        parts.warmup.as_secs(),
        parts.fetch_wait_ms,
        parts.channel_partitions
    ));
    md.push_str(&format!("| system | sustained events/s (median) | every drain | CPU s per 1 M events: pipeline | {} | Redis | total |\n|---|---:|---|---:|---:|---:|---:|\n", parts.broker.name()));
    for r in reports {
        let rounds: Vec<String> = r.rounds.iter().map(|x| format!("{x:.0}")).collect();
        md.push_str(&format!(
            "| {} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            r.system.name(),
            r.rate,
            rounds.join(" / "),
            r.cpu[0],
            r.cpu[1],
            r.cpu[2],
            r.cpu.iter().sum::<f64>()
        ));
    }
    let find = |system| reports.iter().find(|r| r.system == system);
    md.push('\n');
    for (a, b) in [
        (System::Switchboard, System::Baseline),
        (System::Floor, System::Baseline),
        (System::Switchboard, System::Floor),
    ] {
        if let (Some(a), Some(b)) = (find(a), find(b)) {
            md.push_str(&format!(
                "- Ratio {} / {}: **{:.2}** (throughput), {:.2} (CPU per event).\n",
                a.system.name(),
                b.system.name(),
                a.rate / b.rate,
                a.cpu.iter().sum::<f64>() / b.cpu.iter().sum::<f64>()
            ));
        }
    }
    if let (Some(_), Some(produced)) = (find(System::Floor), floor_produced) {
        md.push_str(&format!(
            "\nThe floor carries Switchboard's traffic with nothing in between: two hops, a \
             Redis GET per event in the first, a GET and then a SET per event in the second, \
             and {:.2} messages produced per event by the second (what Switchboard's engine \
             produced per event in its drain), one of them to the output read for latency.\n",
            produced
        ));
    }
    md.push_str(&format!("\n| system | offered events/s | achieved | samples | p50 ms | p99 ms | p999 ms | cores busy: pipeline / {} / Redis |\n|---|---:|---:|---:|---:|---:|---:|---|\n", parts.broker.name()));
    for r in reports {
        for l in &r.latency {
            md.push_str(&format!(
                "| {} | {:.0} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {:.2} / {:.2} / {:.2} |\n",
                r.system.name(),
                l.offered,
                l.achieved,
                l.samples,
                l.p50,
                l.p99,
                l.p999,
                l.busy[0],
                l.busy[1],
                l.busy[2]
            ));
        }
    }
    md.push_str("\nSwitchboard's partition batches while offering (mean records and time from taken to durable):\n\n");
    for r in reports.iter().filter(|r| r.system == System::Switchboard) {
        for l in &r.latency {
            md.push_str(&format!("- {:.0} events/s: {}\n", l.offered, l.batches));
        }
    }
    md.push_str(CHARTS);
    md
}

/// The charts [`plots`] writes beside the report.
const CHARTS: &str =
    "\n![sustained throughput](throughput.png)\n\n![latency against offered load](latency.png)\n";

/// `latency.png` (percentiles against offered load) and `throughput.png` (each system's
/// sustained rate) in `dir`.
pub(crate) fn plots(reports: &[Report], dir: &Path) -> Result<(), Error> {
    let colour = |s: System| match s {
        System::Baseline => plotters::style::RGBColor(128, 128, 128),
        System::Switchboard => plotters::style::RGBColor(31, 119, 180),
        System::Floor => plotters::style::RGBColor(255, 127, 14),
    };
    let mut latency = Vec::new();
    for r in reports {
        for (name, dashed, pick) in [
            (
                "p50",
                true,
                (|l: &LatencyRow| l.p50) as fn(&LatencyRow) -> f64,
            ),
            ("p99", false, |l: &LatencyRow| l.p99),
        ] {
            latency.push(plot::Series {
                name: format!("{} {name}", r.system.name()),
                colour: colour(r.system),
                dashed,
                points: r.latency.iter().map(|l| (l.offered, pick(l))).collect(),
            });
        }
    }
    let throughput: Vec<plot::Bar> = reports
        .iter()
        .map(|r| plot::Bar {
            name: r.system.name().to_owned(),
            colour: colour(r.system),
            value: r.rate,
        })
        .collect();
    plot::log_chart(
        &dir.join("latency.png"),
        "Latency, produce to output consumed",
        ("events/s offered", "ms (log scale)"),
        &latency,
    )?;
    plot::bar_chart(
        &dir.join("throughput.png"),
        "Sustained throughput, same broker and Redis",
        "events/s (backlog drained)",
        &throughput,
    )
}

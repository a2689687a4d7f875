//! The live progress line of `switchboard run`, read from the process's own metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::Registry;
use switchboard_engine::MemoryStateStore;
use tokio_util::sync::CancellationToken;

/// A label name and a test of its value.
type LabelFilter<'a> = (&'a str, &'a dyn Fn(&str) -> bool);

/// Sums a metric family, optionally only the series whose label passes the filter.
fn total(registry: &Registry, name: &str, label: Option<LabelFilter<'_>>) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| {
            label.is_none_or(|(l, keep)| {
                m.get_label()
                    .iter()
                    .any(|p| p.name() == l && keep(p.value()))
            })
        })
        .map(|m| m.get_counter().value() + m.get_gauge().value())
        .sum()
}

/// The counter `name`'s series that counted anything, by the value of `label`.
fn by_label(registry: &Registry, name: &str, label: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| m.get_counter().value() > 0.0)
        .filter_map(|m| {
            let l = m.get_label().iter().find(|p| p.name() == label)?;
            Some((l.value().to_owned(), m.get_counter().value()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Prints one progress line every two seconds.
pub async fn progress(
    registry: Registry,
    produced: Arc<AtomicU64>,
    state: Option<Arc<MemoryStateStore>>,
    shutdown: CancellationToken,
) {
    let start = Instant::now();
    let mut every = tokio::time::interval(Duration::from_secs(2));
    every.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let n = |x: f64| x.max(0.0).round() as u64;
        let events = total(
            &registry,
            "switchboard_events_consumed_total",
            Some(("topic", &|t: &str| !t.contains("customer"))),
        );
        let entered = total(
            &registry,
            "switchboard_journey_transitions_total",
            Some(("kind", &|k: &str| k == "entered")),
        );
        let commands: Vec<String> = by_label(&registry, "switchboard_commands_total", "channel")
            .iter()
            .map(|(c, k)| format!("{c} {k}"))
            .collect();
        let suppressed = total(&registry, "switchboard_suppressions_total", None);
        let dlq = total(&registry, "switchboard_dead_letters_total", None);
        let profiles = state.as_ref().map_or_else(
            || total(&registry, "switchboard_profiles_created_total", None) as usize,
            |s| s.profiles(),
        );
        eprintln!(
            "[{:>5.0}s] produced {} | events in {} | profiles {profiles} | journeys entered {} | commands {} | suppressed {} | dead letters {}",
            start.elapsed().as_secs_f64(),
            produced.load(Ordering::Relaxed),
            n(events),
            n(entered),
            if commands.is_empty() {
                "0".to_owned()
            } else {
                commands.join(", ")
            },
            n(suppressed),
            n(dlq),
        );
    }
}

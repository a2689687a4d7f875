//! Switchboard's partition batches per service, from its `switchboard_batch_records` and
//! `switchboard_batch_seconds` histograms: how many, their size and their time.

/// A service's partition batches so far: how many, their records and seconds in all.
#[derive(Debug, Clone, Default)]
pub struct Batches {
    service: String,
    count: u64,
    records: f64,
    seconds: f64,
}

impl Batches {
    /// Per-service means of the batches between `before` and `after`: "service: N
    /// batches of R records in T ms".
    pub fn describe(before: &[Batches], after: &[Batches]) -> String {
        after
            .iter()
            .map(|a| {
                let b = before
                    .iter()
                    .find(|b| b.service == a.service)
                    .cloned()
                    .unwrap_or_default();
                let n = a.count.saturating_sub(b.count).max(1) as f64;
                format!(
                    "{}: {} batches of {:.1} records in {:.2} ms",
                    a.service,
                    a.count.saturating_sub(b.count),
                    (a.records - b.records) / n,
                    (a.seconds - b.seconds) / n * 1000.0
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Batch totals per service from `switchboard_batch_records` and `switchboard_batch_seconds`.
pub fn batch_totals(registry: &prometheus::Registry) -> Vec<Batches> {
    let families = registry.gather();
    let histograms = |name: &str| -> Vec<(String, u64, f64)> {
        families
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
            .map(|m| {
                let service = m
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "service")
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default();
                let h = m.get_histogram();
                (service, h.get_sample_count(), h.get_sample_sum())
            })
            .collect()
    };
    let seconds = histograms("switchboard_batch_seconds");
    histograms("switchboard_batch_records")
        .into_iter()
        .map(|(service, count, records)| Batches {
            seconds: seconds.iter().find(|s| s.0 == service).map_or(0.0, |s| s.2),
            service,
            count,
            records,
        })
        .collect()
}

//! Every metric of the pipeline, registered once. Labels are low-cardinality: topics,
//! channels, journeys, reasons, partitions; never a customer identifier.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use switchboard_codec::TransitionKind;
use switchboard_engine::{Happened, Outgoing, Plan};
use tracing::{debug, warn};

/// The pipeline's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub events_consumed: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub duplicates: IntCounter,
    pub identities_resolved: IntCounterVec,
    pub identifiers_refused: IntCounterVec,
    pub profiles_created: IntCounter,
    pub merges: IntCounter,
    pub conflicts: IntCounterVec,
    pub transitions: IntCounterVec,
    pub suppressions: IntCounterVec,
    pub commands: IntCounterVec,
    pub timers_fired: IntCounter,
    pub timer_lag: Histogram,
    pub timers_pending: IntGaugeVec,
    pub latency: HistogramVec,
    pub store_errors: IntCounterVec,
    pub kafka_errors: IntCounterVec,
    pub records_refused: IntCounterVec,
    pub records_dropped: IntCounter,
    pub partitions_owned: IntGaugeVec,
    pub consumer_lag: IntGaugeVec,
    pub fenced: IntCounter,
    pub registry_errors: IntCounter,
    pub transactions: IntCounterVec,
    pub aborted_records: IntCounter,
    pub journeys_loaded: prometheus::IntGauge,
    pub reload_failures: IntCounter,
    pub batch_seconds: HistogramVec,
    pub batch_records: HistogramVec,
}

/// The `operation` label values of `switchboard_store_errors_total`.
pub const STORE_OPERATIONS: [&str; 10] = [
    "stitch",
    "claim_partition",
    "load",
    "save",
    "clear_outbox",
    "pending_outboxes",
    "due_timers",
    "remove_timers",
    "mark_merged",
    "forget",
];

/// The `outcome` label values of `switchboard_transactions_total`: committed; aborted (and
/// retried); abandoned with its producer (fatal error or a call past its deadline), left to
/// the next producer's fencing.
pub const TRANSACTION_OUTCOMES: [&str; 3] = ["committed", "aborted", "abandoned"];

/// The `reason` label values of `switchboard_records_refused_total`
/// ([`crate::output::refused_for_good`]).
pub const REFUSAL_REASONS: [&str; 3] = ["message_too_large", "invalid_record", "not_authorized"];

/// The `operation` label values of `switchboard_kafka_errors_total`.
pub const KAFKA_OPERATIONS: [&str; 2] = ["consume", "produce"];

const BATCH_SECONDS_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

const BATCH_RECORDS_BUCKETS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0];

const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

impl Metrics {
    /// Registers every metric in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        fn registered<C: prometheus::core::Collector + Clone + 'static>(
            r: &Registry,
            c: C,
        ) -> Result<C, prometheus::Error> {
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        fn counter(r: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
            registered(r, IntCounter::new(name, help)?)
        }
        fn counters(
            r: &Registry,
            name: &str,
            help: &str,
            labels: &[&str],
        ) -> Result<IntCounterVec, prometheus::Error> {
            registered(r, IntCounterVec::new(Opts::new(name, help), labels)?)
        }
        fn gauges(
            r: &Registry,
            name: &str,
            help: &str,
            labels: &[&str],
        ) -> Result<IntGaugeVec, prometheus::Error> {
            registered(r, IntGaugeVec::new(Opts::new(name, help), labels)?)
        }
        fn histograms(
            r: &Registry,
            name: &str,
            help: &str,
            buckets: &[f64],
            labels: &[&str],
        ) -> Result<HistogramVec, prometheus::Error> {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            registered(r, HistogramVec::new(opts, labels)?)
        }
        let r = registry;
        let metrics = Self {
            events_consumed: counters(
                r,
                "switchboard_events_consumed_total",
                "Records consumed, per topic.",
                &["topic"],
            )?,
            dead_letters: counters(
                r,
                "switchboard_dead_letters_total",
                "Records sent to the dead-letter topic, per reason.",
                &["reason"],
            )?,
            duplicates: counter(
                r,
                "switchboard_duplicate_events_total",
                "Events dropped as duplicates of an event_id seen within the window.",
            )?,
            identities_resolved: counters(
                r,
                "switchboard_identities_resolved_total",
                "Identifiers resolved to a profile, per kind.",
                &["kind"],
            )?,
            identifiers_refused: counters(
                r,
                "switchboard_identifiers_refused_total",
                "Identifiers the identity rules refused (the event goes on with the others), per kind (`other` for kinds not configured) and reason.",
                &["kind", "reason"],
            )?,
            profiles_created: counter(
                r,
                "switchboard_profiles_created_total",
                "Profiles created by the stitcher.",
            )?,
            merges: counter(
                r,
                "switchboard_identity_merges_total",
                "Profiles merged into another.",
            )?,
            conflicts: counters(
                r,
                "switchboard_identity_conflicts_total",
                "Identifiers left unlinked, per kind and reason.",
                &["kind", "reason"],
            )?,
            transitions: counters(
                r,
                "switchboard_journey_transitions_total",
                "Journey entries, steps, exits, goals, holdouts and suppressions.",
                &["journey", "kind"],
            )?,
            suppressions: counters(
                r,
                "switchboard_suppressions_total",
                "Sends suppressed, per reason.",
                &["reason"],
            )?,
            commands: counters(
                r,
                "switchboard_commands_total",
                "Send commands produced, per channel.",
                &["channel"],
            )?,
            timers_fired: counter(r, "switchboard_timers_fired_total", "Timers fired.")?,
            timer_lag: registered(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "switchboard_timer_lag_seconds",
                        "How late timers fire after they are due.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )?,
            )?,
            timers_pending: gauges(
                r,
                "switchboard_timers_pending",
                "Timers waiting in a partition's shard.",
                &["partition"],
            )?,
            latency: histograms(
                r,
                "switchboard_event_to_command_seconds",
                "From an event's occurred_at (or a timer's due time) to its command being produced.",
                &LATENCY_BUCKETS,
                &["channel"],
            )?,
            store_errors: counters(
                r,
                "switchboard_store_errors_total",
                "Redis (or state store) errors, per operation.",
                &["operation"],
            )?,
            kafka_errors: counters(
                r,
                "switchboard_kafka_errors_total",
                "Kafka errors, per operation.",
                &["operation"],
            )?,
            records_refused: counters(
                r,
                "switchboard_records_refused_total",
                "Records the broker refused for good (too large, malformed, not authorised), per reason; each is dead-lettered as its headers.",
                &["reason"],
            )?,
            records_dropped: counter(
                r,
                "switchboard_records_dropped_total",
                "Dead letters the broker refused even without their value: lost, with an error logged.",
            )?,
            partitions_owned: gauges(
                r,
                "switchboard_partitions_owned",
                "Partitions this process owns.",
                &["service"],
            )?,
            consumer_lag: gauges(
                r,
                "switchboard_consumer_lag",
                "Records behind the high watermark, per owned partition (librdkafka statistics).",
                &["service", "topic", "partition"],
            )?,
            fenced: counter(
                r,
                "switchboard_fenced_writes_total",
                "Writes refused because a newer owner of the partition wrote first.",
            )?,
            registry_errors: counter(
                r,
                "switchboard_schema_registry_errors_total",
                "Schema registry requests that failed (retried until it answers).",
            )?,
            transactions: counters(
                r,
                "switchboard_transactions_total",
                "Kafka transactions (kafka.transactions), per outcome.",
                &["outcome"],
            )?,
            aborted_records: counter(
                r,
                "switchboard_transaction_aborted_records_total",
                "Records produced in transactions that did not commit: read_committed consumers never see them.",
            )?,
            journeys_loaded: registered(
                r,
                prometheus::IntGauge::new(
                    "switchboard_journeys_loaded",
                    "Journey definitions (all versions) loaded.",
                )?,
            )?,
            reload_failures: counter(
                r,
                "switchboard_journey_reload_failures_total",
                "Journey or policy reloads that failed validation.",
            )?,
            batch_seconds: histograms(
                r,
                "switchboard_batch_seconds",
                "From a partition batch taken to durable (state saved, output acknowledged), per service.",
                &BATCH_SECONDS_BUCKETS,
                &["service"],
            )?,
            batch_records: histograms(
                r,
                "switchboard_batch_records",
                "Records in a partition batch, per service.",
                &BATCH_RECORDS_BUCKETS,
                &["service"],
            )?,
        };
        // Error series exist at zero from the start, so rates and alerts see them.
        for op in STORE_OPERATIONS {
            metrics.store_errors.with_label_values(&[op]);
        }
        for op in KAFKA_OPERATIONS {
            metrics.kafka_errors.with_label_values(&[op]);
        }
        for reason in REFUSAL_REASONS {
            metrics.records_refused.with_label_values(&[reason]);
        }
        for outcome in TRANSACTION_OUTCOMES {
            metrics.transactions.with_label_values(&[outcome]);
        }
        Ok(metrics)
    }

    /// Counts a partition's batch in `events_consumed` (one label lookup, not one per
    /// record: a batch is one partition's, so one topic's).
    pub fn consumed(&self, batch: &[impl rdkafka::Message]) {
        if let Some(first) = batch.first() {
            self.events_consumed
                .with_label_values(&[first.topic()])
                .inc_by(batch.len() as u64);
        }
    }

    /// Counts what a durable plan did: its transitions (suppressions and holdouts among
    /// them), sends and their latency, duplicates, timers fired and their lag.
    pub fn planned(&self, plan: &Plan) {
        let outbox = plan.writes.iter().flat_map(|w| &w.outbox);
        let forgotten = plan.forgets.iter().map(|f| &f.transition);
        let transitions = outbox
            .filter_map(|o| match o {
                Outgoing::Transition(t) => Some(t),
                Outgoing::Command(_) => None,
            })
            .chain(forgotten);
        for t in transitions {
            let kind = t.kind.as_str();
            let reason = t.reason.as_deref().unwrap_or("");
            let step = t.step.as_deref().unwrap_or("");
            debug!(
                journey = t.journey.as_str(),
                step, kind, reason, "journey transition"
            );
            self.transitions
                .with_label_values(&[t.journey.as_str(), kind])
                .inc();
            match t.kind {
                TransitionKind::Suppressed => {
                    if reason == "var_error" {
                        warn!(
                            journey = t.journey.as_str(),
                            step,
                            "a send's var failed to evaluate (an attribute the event lacks?): send suppressed"
                        );
                    }
                    let reason = if reason.is_empty() { "unknown" } else { reason };
                    self.suppressions.with_label_values(&[reason]).inc();
                }
                // A holdout is a send withheld on purpose, so it counts as a suppression.
                TransitionKind::Holdout => self.suppressions.with_label_values(&["holdout"]).inc(),
                _ => {}
            }
        }
        for h in &plan.happened {
            match h {
                Happened::Duplicate => self.duplicates.inc(),
                Happened::Sent {
                    channel,
                    latency_ms,
                } => {
                    self.commands.with_label_values(&[channel.as_str()]).inc();
                    self.latency
                        .with_label_values(&[channel.as_str()])
                        .observe(*latency_ms as f64 / 1000.0);
                }
                Happened::TimerFired { lag_ms } => {
                    self.timers_fired.inc();
                    self.timer_lag.observe(*lag_ms as f64 / 1000.0);
                }
            }
        }
    }
}

//! Every metric of the pipeline, registered once. Labels are low-cardinality: topics,
//! channels, journeys, reasons, partitions; never a customer identifier.

use std::collections::HashMap;

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Registry};
use switchboard_codec::TransitionKind;
use switchboard_engine::{Happened, Plan};
use switchboard_kafka::KafkaMetrics;
use switchboard_telemetry::Registering;
use tracing::{debug, warn};

/// The pipeline's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The consumer's, publishers' and delivery's.
    pub kafka: KafkaMetrics,
    pub events_consumed: IntCounterVec,
    /// `switchboard_dead_letters_total{reason}`, registered with [`Metrics::kafka`].
    pub dead_letters: IntCounterVec,
    pub duplicates: IntCounter,
    pub identities_resolved: IntCounterVec,
    pub identifiers_refused: IntCounterVec,
    pub profiles_created: IntCounter,
    /// `switchboard_identity_cache_total{result}`: `hit` (stitched without Redis) or `miss`.
    pub identity_cache: [IntCounter; 2],
    pub merges: IntCounter,
    pub conflicts: IntCounterVec,
    pub transitions: IntCounterVec,
    /// `switchboard_journey_steps_total{journey, step, variant}`.
    pub steps: IntCounterVec,
    /// `switchboard_journey_arm_entries_total{journey, arm}`.
    pub arm_entries: IntCounterVec,
    /// `switchboard_journey_goals_total{journey, arm}`.
    pub goals: IntCounterVec,
    /// `switchboard_decisions_total{journey, reason}`.
    pub decisions: IntCounterVec,
    pub suppressions: IntCounterVec,
    pub commands: IntCounterVec,
    pub timers_fired: IntCounter,
    pub timer_lag: Histogram,
    pub timers_pending: IntGaugeVec,
    pub latency: HistogramVec,
    pub store_errors: IntCounterVec,
    pub fenced: IntCounter,
    pub registry_errors: IntCounter,
    pub journeys_loaded: prometheus::IntGauge,
    pub reload_failures: IntCounter,
}

/// Store operations, as `switchboard_store_errors_total` labels them: every one, and only
/// these, exist from the start.
macro_rules! store_operations {
    ($($variant:ident => $label:literal,)*) => {
        /// An identity or state store operation that failed (and is retried).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum StoreOperation {
            $($variant,)*
        }

        impl StoreOperation {
            pub const ALL: &'static [StoreOperation] = &[$(StoreOperation::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(StoreOperation::$variant => $label,)*
                }
            }
        }
    };
}

store_operations! {
    Stitch => "stitch",
    ClaimPartition => "claim_partition",
    Load => "load",
    Save => "save",
    ClearOutbox => "clear_outbox",
    PendingOutboxes => "pending_outboxes",
    DueTimers => "due_timers",
    RemoveTimers => "remove_timers",
    MarkMerged => "mark_merged",
    Forget => "forget",
    CountSplits => "count_splits",
    CheckSplits => "check_splits",
}

const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

impl Metrics {
    /// Registers every metric in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let kafka = KafkaMetrics::register(registry)?;
        let r = Registering(registry);
        let metrics = Self {
            events_consumed: r.counters(
                "switchboard_events_consumed_total",
                "Records consumed, per topic.",
                &["topic"],
            )?,
            dead_letters: kafka.dead_letters.clone(),
            duplicates: r.counter(
                "switchboard_duplicate_events_total",
                "Events dropped as duplicates of an event_id seen within the window.",
            )?,
            identities_resolved: r.counters(
                "switchboard_identities_resolved_total",
                "Identifiers resolved to a profile, per kind.",
                &["kind"],
            )?,
            identifiers_refused: r.counters(
                "switchboard_identifiers_refused_total",
                "Identifiers the identity rules refused (the event goes on with the others), per kind (`other` for kinds not configured) and reason.",
                &["kind", "reason"],
            )?,
            profiles_created: r.counter(
                "switchboard_profiles_created_total",
                "Profiles created by the stitcher.",
            )?,
            identity_cache: {
                let by_result = r.counters(
                    "switchboard_identity_cache_total",
                    "Events whose identifiers the stitcher knew, all resolved to one profile lately (hit: no Redis read), or not (miss).",
                    &["result"],
                )?;
                ["hit", "miss"].map(|result| by_result.with_label_values(&[result]))
            },
            merges: r.counter(
                "switchboard_identity_merges_total",
                "Profiles merged into another.",
            )?,
            conflicts: r.counters(
                "switchboard_identity_conflicts_total",
                "Identifiers left unlinked, per kind and reason.",
                &["kind", "reason"],
            )?,
            transitions: r.counters(
                "switchboard_journey_transitions_total",
                "Journey entries, steps, exits, goals, holdouts and suppressions.",
                &["journey", "kind"],
            )?,
            steps: r.counters(
                "switchboard_journey_steps_total",
                "Steps run, per journey, step and split variant (empty before a split or without one).",
                &["journey", "step", "variant"],
            )?,
            arm_entries: r.counters(
                "switchboard_journey_arm_entries_total",
                "Entries per journey and arm: a split's variant (counted at the split), `all` for a journey without a split, `control` for the held out.",
                &["journey", "arm"],
            )?,
            goals: r.counters(
                "switchboard_journey_goals_total",
                "Goals reached inside their window, once per entry, per journey and arm (variant, `all` or `control`).",
                &["journey", "arm"],
            )?,
            decisions: r.counters(
                "switchboard_decisions_total",
                "Why customers did not enter a journey (trigger or audience condition false, condition error, cooldown, already in, holdout) and what became of sends (sent, consent, cap, no_channel, var_error, quiet_hours), per journey.",
                &["journey", "reason"],
            )?,
            suppressions: r.counters(
                "switchboard_suppressions_total",
                "Sends suppressed, per reason.",
                &["reason"],
            )?,
            commands: r.counters(
                "switchboard_commands_total",
                "Send commands produced, per channel.",
                &["channel"],
            )?,
            timers_fired: r.counter("switchboard_timers_fired_total", "Timers fired.")?,
            timer_lag: r.histogram(
                "switchboard_timer_lag_seconds",
                "How late timers fire after they are due.",
                &LATENCY_BUCKETS,
            )?,
            timers_pending: r.gauges(
                "switchboard_timers_pending",
                "Timers waiting in a partition's shard.",
                &["partition"],
            )?,
            latency: r.histograms(
                "switchboard_event_to_command_seconds",
                "From an event's occurred_at (or a timer's due time) to its command being produced.",
                &LATENCY_BUCKETS,
                &["channel"],
            )?,
            store_errors: r.counters(
                "switchboard_store_errors_total",
                "Redis (or state store) errors, per operation.",
                &["operation"],
            )?,
            fenced: r.counter(
                "switchboard_fenced_writes_total",
                "Writes refused because a newer owner of the partition wrote first.",
            )?,
            registry_errors: r.counter(
                "switchboard_schema_registry_errors_total",
                "Schema registry requests that failed (retried until it answers).",
            )?,
            journeys_loaded: r.gauge(
                "switchboard_journeys_loaded",
                "Journey definitions (all versions) loaded.",
            )?,
            reload_failures: r.counter(
                "switchboard_journey_reload_failures_total",
                "Journey or policy reloads that failed validation.",
            )?,
            kafka,
        };
        // Error series exist at zero from the start, so rates and alerts see them.
        for op in StoreOperation::ALL {
            metrics.store_errors.with_label_values(&[op.as_str()]);
        }
        Ok(metrics)
    }

    /// Counts the events of a wave the stitcher knew (`hits`) and looked up (`misses`).
    pub fn identity_cache(&self, hits: usize, misses: usize) {
        let [hit, miss] = &self.identity_cache;
        hit.inc_by(hits as u64);
        miss.inc_by(misses as u64);
    }

    /// The errors of a store operation.
    pub fn store_error(&self, op: StoreOperation) -> IntCounter {
        self.store_errors.with_label_values(&[op.as_str()])
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

    /// Counts what a durable plan did, with the handles `counters` resolved for the running
    /// catalog: its transitions (suppressions and holdouts among them), sends and their
    /// latency, duplicates, timers fired and their lag.
    pub fn planned(&self, plan: &Plan, counters: &CatalogCounters) {
        for t in plan.transitions() {
            let (kind, reason) = (t.kind, t.reason.as_deref().unwrap_or(""));
            let step = t.step.as_deref().unwrap_or("");
            debug!(
                journey = t.journey.as_str(),
                step,
                kind = kind.as_str(),
                reason,
                "journey transition"
            );
            counters.transition(self, &t.journey, kind).inc();
            counters.count_arm(self, t);
            match kind {
                TransitionKind::Suppressed => {
                    if reason == "var_error" {
                        warn!(
                            journey = t.journey.as_str(),
                            step,
                            "a send's var failed to evaluate (an attribute the event lacks?): send suppressed"
                        );
                    }
                    let reason = if reason.is_empty() { "unknown" } else { reason };
                    counters.suppression(self, reason).inc();
                }
                // A holdout is a send withheld on purpose, so it counts as a suppression.
                TransitionKind::Holdout => counters.suppression(self, "holdout").inc(),
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
                    let (sent, latency) = counters.send(self, channel);
                    sent.inc();
                    latency.observe(*latency_ms as f64 / 1000.0);
                }
                Happened::Decided { journey, reason } => {
                    counters.decision(self, journey, reason).inc();
                }
                Happened::TimerFired { lag_ms } => {
                    self.timers_fired.inc();
                    self.timer_lag.observe(*lag_ms as f64 / 1000.0);
                }
            }
        }
    }
}

/// The reasons a send is suppressed (`switchboard_suppressions_total{reason}`).
pub const SUPPRESSION_REASONS: [&str; 6] = [
    "consent",
    "cap",
    "no_channel",
    "var_error",
    "holdout",
    "unknown",
];

/// The handles a catalog's journeys and channels are counted with, resolved once for the
/// catalog rather than looked up by their label values for every record. A label the
/// catalog does not name (a journey since removed, still ending in a merge) is looked up.
#[derive(Debug)]
pub struct CatalogCounters {
    transitions: HashMap<String, HashMap<TransitionKind, IntCounter>>,
    sends: HashMap<String, (IntCounter, Histogram)>,
    suppressions: HashMap<&'static str, IntCounter>,
    /// Per journey: its steps by (step, variant), entries and goals by arm, and whether it
    /// splits (then its entries join an arm at the split, not at entry).
    journeys: HashMap<String, JourneyCounters>,
}

#[derive(Debug, Default)]
struct JourneyCounters {
    splits: bool,
    /// By step, then variant.
    steps: HashMap<String, HashMap<String, IntCounter>>,
    entries: HashMap<String, IntCounter>,
    goals: HashMap<String, IntCounter>,
    decisions: HashMap<&'static str, IntCounter>,
}

/// The arm of a journey without a split, and of the held-out entries.
const ALL: &str = "all";
const CONTROL: &str = "control";

impl CatalogCounters {
    /// Every series the catalog's `journeys` (the newest versions) and `channels` can write.
    pub fn new(
        m: &Metrics,
        journeys: &[&switchboard_journey::Journey],
        channels: &[String],
    ) -> Self {
        let kinds = [
            TransitionKind::Entered,
            TransitionKind::Step,
            TransitionKind::Exited,
            TransitionKind::Goal,
            TransitionKind::Holdout,
            TransitionKind::Suppressed,
            TransitionKind::Deferred,
        ];
        let per_journey = journeys
            .iter()
            .map(|j| (j.id.clone(), JourneyCounters::new(m, j)))
            .collect();
        let mut transitions: HashMap<String, HashMap<TransitionKind, IntCounter>> = journeys
            .iter()
            .map(|j| j.id.as_str())
            .map(|j| {
                let of = kinds
                    .iter()
                    .map(|k| (*k, m.transitions.with_label_values(&[j, k.as_str()])));
                (j.to_owned(), of.collect())
            })
            .collect();
        let forgotten = TransitionKind::Forgotten;
        transitions.entry(String::new()).or_default().insert(
            forgotten,
            m.transitions.with_label_values(&["", forgotten.as_str()]),
        );
        Self {
            transitions,
            sends: (channels.iter())
                .map(|c| {
                    let handles = (
                        m.commands.with_label_values(&[c]),
                        m.latency.with_label_values(&[c]),
                    );
                    (c.clone(), handles)
                })
                .collect(),
            suppressions: (SUPPRESSION_REASONS.iter())
                .map(|r| (*r, m.suppressions.with_label_values(&[r])))
                .collect(),
            journeys: per_journey,
        }
    }

    fn decision(&self, m: &Metrics, journey: &str, reason: &str) -> IntCounter {
        let known = self
            .journeys
            .get(journey)
            .and_then(|j| j.decisions.get(reason));
        match known {
            Some(c) => c.clone(),
            None => m.decisions.with_label_values(&[journey, reason]),
        }
    }

    /// Counts `t`'s step, and the entry or goal of its arm.
    fn count_arm(&self, m: &Metrics, t: &switchboard_codec::JourneyTransition) {
        let j = self.journeys.get(&t.journey);
        let variant = t.variant.as_deref().unwrap_or("");
        let arm = match (t.holdout, t.variant.as_deref()) {
            (true, _) => CONTROL,
            (false, Some(v)) => v,
            (false, None) => ALL,
        };
        let get = |map: Option<&HashMap<String, IntCounter>>, vec: &IntCounterVec, arm: &str| {
            map.and_then(|m| m.get(arm))
                .cloned()
                .unwrap_or_else(|| vec.with_label_values(&[t.journey.as_str(), arm]))
        };
        match t.kind {
            TransitionKind::Step => {
                let step = t.step.as_deref().unwrap_or("");
                let counter = j.and_then(|j| j.steps.get(step)?.get(variant));
                match counter {
                    Some(c) => c.inc(),
                    None => m
                        .steps
                        .with_label_values(&[t.journey.as_str(), step, variant])
                        .inc(),
                }
                if t.step_kind.as_deref() == Some("split") {
                    get(j.map(|j| &j.entries), &m.arm_entries, arm).inc();
                }
            }
            TransitionKind::Holdout => get(j.map(|j| &j.entries), &m.arm_entries, CONTROL).inc(),
            TransitionKind::Entered if !j.is_some_and(|j| j.splits) => {
                get(j.map(|j| &j.entries), &m.arm_entries, ALL).inc();
            }
            TransitionKind::Goal => get(j.map(|j| &j.goals), &m.goals, arm).inc(),
            _ => {}
        }
    }

    fn transition(&self, m: &Metrics, journey: &str, kind: TransitionKind) -> IntCounter {
        match self.transitions.get(journey).and_then(|k| k.get(&kind)) {
            Some(c) => c.clone(),
            None => m.transitions.with_label_values(&[journey, kind.as_str()]),
        }
    }

    fn send(&self, m: &Metrics, channel: &str) -> (IntCounter, Histogram) {
        match self.sends.get(channel) {
            Some(h) => h.clone(),
            None => (
                m.commands.with_label_values(&[channel]),
                m.latency.with_label_values(&[channel]),
            ),
        }
    }

    fn suppression(&self, m: &Metrics, reason: &str) -> IntCounter {
        match self.suppressions.get(reason) {
            Some(c) => c.clone(),
            None => m.suppressions.with_label_values(&[reason]),
        }
    }
}

impl JourneyCounters {
    fn new(m: &Metrics, j: &switchboard_journey::Journey) -> Self {
        let variants: Vec<String> = (j.states.iter())
            .flat_map(|s| match &s.kind {
                switchboard_journey::StepKind::Split { arms, .. } => {
                    arms.iter().map(|(v, _, _)| v.clone()).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        let splits = !variants.is_empty();
        let arms: Vec<String> = if splits {
            variants
                .iter()
                .cloned()
                .chain([CONTROL.to_owned()])
                .collect()
        } else {
            vec![ALL.to_owned(), CONTROL.to_owned()]
        };
        let labels: Vec<String> = std::iter::once(String::new()).chain(variants).collect();
        let id = j.id.as_str();
        Self {
            splits,
            steps: (j.states.iter())
                .map(|s| {
                    let by_variant = (labels.iter())
                        .map(|v| (v.clone(), m.steps.with_label_values(&[id, &s.name, v])))
                        .collect();
                    (s.name.clone(), by_variant)
                })
                .collect(),
            entries: (arms.iter())
                .map(|a| (a.clone(), m.arm_entries.with_label_values(&[id, a])))
                .collect(),
            goals: (arms.iter())
                .map(|a| (a.clone(), m.goals.with_label_values(&[id, a])))
                .collect(),
            decisions: (switchboard_journey::DECISION_REASONS.iter())
                .map(|r| (*r, m.decisions.with_label_values(&[id, r])))
                .collect(),
        }
    }
}

//! What the Kafka adapters count. The handles are registered with the rest of a service's
//! metrics (`switchboard_services::Metrics`) and handed here, so each adapter increments
//! counters resolved once, not looked up per record.

use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Registry};
use switchboard_telemetry::Registering;

/// The `operation` label values of `switchboard_kafka_errors_total`.
pub const KAFKA_OPERATIONS: [&str; 2] = ["consume", "produce"];

/// The `reason` label values of `switchboard_records_refused_total`
/// ([`crate::refused_for_good`]).
pub const REFUSAL_REASONS: [&str; 3] = ["message_too_large", "invalid_record", "not_authorized"];

/// The `outcome` label values of `switchboard_transactions_total`: committed; aborted (and
/// retried); abandoned with its producer (fatal error or a call past its deadline), left to
/// the next producer's fencing.
pub const TRANSACTION_OUTCOMES: [&str; 3] = ["committed", "aborted", "abandoned"];

/// The metrics of the partitioned consumer, the publishers and delivery.
#[derive(Debug, Clone)]
pub struct KafkaMetrics {
    /// `switchboard_kafka_errors_total{operation}`.
    pub errors: IntCounterVec,
    /// `switchboard_records_refused_total{reason}`.
    pub records_refused: IntCounterVec,
    /// `switchboard_records_dropped_total`.
    pub records_dropped: IntCounter,
    /// `switchboard_dead_letters_total{reason}`.
    pub dead_letters: IntCounterVec,
    /// `switchboard_partitions_owned{service}`.
    pub partitions_owned: IntGaugeVec,
    /// `switchboard_consumer_lag{service, topic, partition}`.
    pub consumer_lag: IntGaugeVec,
    /// `switchboard_batch_seconds{service}`.
    pub batch_seconds: HistogramVec,
    /// `switchboard_batch_records{service}`.
    pub batch_records: HistogramVec,
    /// `switchboard_transactions_total{outcome}`.
    pub transactions: IntCounterVec,
    /// `switchboard_transaction_aborted_records_total`.
    pub aborted_records: IntCounter,
}

const BATCH_SECONDS_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

const BATCH_RECORDS_BUCKETS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0];

impl KafkaMetrics {
    /// Registers every metric in `registry`; the error series exist at zero from the start,
    /// so rates and alerts see them.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let r = Registering(registry);
        let m = Self {
            errors: r.counters(
                "switchboard_kafka_errors_total",
                "Kafka errors, per operation.",
                &["operation"],
            )?,
            records_refused: r.counters(
                "switchboard_records_refused_total",
                "Records the broker refused for good (too large, malformed, not authorised), per reason; each is dead-lettered as its headers.",
                &["reason"],
            )?,
            records_dropped: r.counter(
                "switchboard_records_dropped_total",
                "Dead letters the broker refused even without their value: lost, with an error logged.",
            )?,
            dead_letters: r.counters(
                "switchboard_dead_letters_total",
                "Records sent to the dead-letter topic, per reason.",
                &["reason"],
            )?,
            partitions_owned: r.gauges(
                "switchboard_partitions_owned",
                "Partitions this process owns.",
                &["service"],
            )?,
            consumer_lag: r.gauges(
                "switchboard_consumer_lag",
                "Records behind the high watermark, per owned partition (librdkafka statistics).",
                &["service", "topic", "partition"],
            )?,
            batch_seconds: r.histograms(
                "switchboard_batch_seconds",
                "From a partition batch taken to durable (state saved, output acknowledged), per service.",
                &BATCH_SECONDS_BUCKETS,
                &["service"],
            )?,
            batch_records: r.histograms(
                "switchboard_batch_records",
                "Records in a partition batch, per service.",
                &BATCH_RECORDS_BUCKETS,
                &["service"],
            )?,
            transactions: r.counters(
                "switchboard_transactions_total",
                "Kafka transactions (kafka.transactions), per outcome.",
                &["outcome"],
            )?,
            aborted_records: r.counter(
                "switchboard_transaction_aborted_records_total",
                "Records produced in transactions that did not commit: read_committed consumers never see them.",
            )?,
        };
        for op in KAFKA_OPERATIONS {
            m.errors.with_label_values(&[op]);
        }
        for reason in REFUSAL_REASONS {
            m.records_refused.with_label_values(&[reason]);
        }
        for outcome in TRANSACTION_OUTCOMES {
            m.transactions.with_label_values(&[outcome]);
        }
        Ok(m)
    }
}

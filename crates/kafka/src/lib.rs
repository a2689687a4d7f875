//! Switchboard's Kafka adapters: librdkafka client configuration from Switchboard's config,
//! creation of every topic the pipeline uses, the partitioned consumer (a task per assigned
//! partition, offsets stored once a batch is durable), the publishers (idempotent, or
//! transactional per partition), delivery with retries and dead letters, and what they count.
// Publishers and consumers hold librdkafka handles; their Debug output would say nothing.
#![allow(missing_debug_implementations)]

mod client;
mod consumer;
mod dead_letters;
mod delivery;
mod metrics;
mod output;
mod retry;
mod stopped;
mod topics;

pub use client::client_config;
pub use consumer::{ConsumerSettings, OutputMode, Worker, Workers, run_partitioned};
pub use dead_letters::{MAX_DEAD_LETTER_BYTES, dead_letter, unencodable};
pub use delivery::Delivery;
pub use metrics::{KAFKA_OPERATIONS, KafkaMetrics, REFUSAL_REASONS, TRANSACTION_OUTCOMES};
pub use output::{
    OutRecord, Publish, Publisher, Transactional, TxnMetrics, Undelivered, produce_all,
    refused_for_good,
};
pub use retry::until_ok;
pub use stopped::Stopped;
pub use topics::{TopicOutcome, TopicSpec, create_topics, topic_plan};

/// A Kafka failure, with the topic when there is one.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
}

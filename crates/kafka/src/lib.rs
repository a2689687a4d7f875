//! Kafka plumbing shared by the services and the CLI: librdkafka client configuration from
//! Switchboard's config, and creation of every topic the pipeline uses.

mod client;
mod topics;

pub use client::client_config;
pub use topics::{TopicOutcome, TopicSpec, create_topics, topic_plan};

/// A Kafka failure, with the topic when there is one.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
}

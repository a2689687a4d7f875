//! The configuration structs, with their defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_codec::Framing;
use switchboard_identity::IdentityRules;

/// Everything a Switchboard process is configured with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub redis: RedisConfig,
    pub schemas: SchemaConfig,
    pub topics: TopicsConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    /// Identifier kinds, normalisation, limits and blocked values (see `IdentityRules`).
    pub identity: IdentityRules,
}

/// Kafka connection. `properties` are passed to librdkafka unchanged, so any client setting
/// works: `security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`,
/// `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`, ...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    pub properties: BTreeMap<String, String>,
    /// Use Kafka transactions for exactly-once output (needs a broker that supports them).
    pub transactions: bool,
    /// Consumer groups are `<group_prefix>-stitcher` and `<group_prefix>-engine`.
    pub group_prefix: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "localhost:9092".into(),
            properties: BTreeMap::new(),
            transactions: false,
            group_prefix: "switchboard".into(),
        }
    }
}

/// Redis connection: `redis://`, `rediss://` (TLS) or `redis+unix://`; with `cluster = true`
/// the URL is a seed node of a Redis Cluster (more seeds in `cluster_seeds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    pub url: String,
    pub cluster: bool,
    pub cluster_seeds: Vec<String>,
    /// Prefix of every key Switchboard writes, so one Redis can serve several deployments.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            cluster: false,
            cluster_seeds: Vec::new(),
            key_prefix: "sb".into(),
        }
    }
}

/// Where writer schemas come from, and how Switchboard frames what it writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaConfig {
    /// Confluent Schema Registry URL; without it, the schemas compiled into the binary.
    pub registry_url: Option<String>,
    pub registry_username: Option<String>,
    pub registry_password: Option<String>,
    /// Framing of the records Switchboard writes.
    pub framing: Framing,
}

/// Topic names and the partitioning `switchboard topics create` uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Channels with an `events.<channel>` and a `commands.<channel>` topic.
    pub channels: Vec<String>,
    pub events_prefix: String,
    pub commands_prefix: String,
    pub customer_events: String,
    pub transitions: String,
    pub dead_letters: String,
    /// Channels whose event topics carry JSON instead of Avro.
    pub json_channels: Vec<String>,
    pub partitions: i32,
    pub replication_factor: i32,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            channels: [
                "web",
                "app",
                "email",
                "sms",
                "push",
                "pos",
                "call_center",
                "social",
            ]
            .map(String::from)
            .to_vec(),
            events_prefix: "events.".into(),
            commands_prefix: "commands.".into(),
            customer_events: "customer.events".into(),
            transitions: "journeys.transitions".into(),
            dead_letters: "events.dlq".into(),
            json_channels: Vec::new(),
            partitions: 12,
            replication_factor: 3,
        }
    }
}

/// The admin HTTP server: `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:9464".into(),
        }
    }
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `switchboard=debug,rdkafka=warn`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// Human-readable lines for a terminal, JSON lines for production log pipelines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

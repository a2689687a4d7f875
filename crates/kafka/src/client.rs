//! librdkafka configuration from [`KafkaConfig`].

use rdkafka::ClientConfig;
use switchboard_config::KafkaConfig;

/// Brokers plus every pass-through property (security, SASL, TLS, tuning).
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers);
    for (k, v) in &kafka.properties {
        c.set(k, v);
    }
    c
}

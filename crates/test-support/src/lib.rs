//! Real servers for tests: a `redis-server`, a 3-master Redis Cluster, and an Apache Kafka
//! broker (KRaft, one node), each started on free loopback ports in its own temporary folder,
//! plus helpers for librdkafka's in-process mock cluster (injected broker faults).
//!
//! A test that cannot start a server fails with a message saying how to install it
//! (`scripts/setup.sh`); it never skips silently.
#![allow(clippy::panic, clippy::expect_used)] // test infrastructure: failing loudly is the point

mod binaries;
pub mod customers;
pub mod examples;
pub mod identity_conformance;
mod kafka;
mod mock;
mod redis_cluster;
mod redis_server;

pub use binaries::{find_binary, tools_dir};
pub use kafka::{KafkaBroker, kafka_version};
pub use mock::{MockKafka, mock_cluster};
pub use redis_cluster::RedisCluster;
pub use redis_server::RedisServer;

/// A name no other test uses, for topics, groups and key prefixes: `prefix-<uuid>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A configuration on `bootstrap` and `redis_url` whose topics, consumer groups and Redis
/// keys no other run shares, so tests and benchmark phases run side by side.
pub fn isolated_config(
    bootstrap: String,
    redis_url: String,
    partitions: i32,
) -> switchboard_config::Config {
    let mut c = switchboard_config::Config::default();
    c.kafka.bootstrap_servers = bootstrap;
    c.kafka.group_prefix = unique("sb");
    c.redis.url = redis_url;
    c.redis.key_prefix = unique("sb");
    name_topics(&mut c.topics, &unique("t"));
    c.topics.partitions = partitions;
    c.topics.replication_factor = 1;
    c
}

/// Every topic of a run under `run.`: `run.events.<channel>`, `run.customer.events`, ...
pub fn name_topics(t: &mut switchboard_config::TopicsConfig, run: &str) {
    t.events_prefix = format!("{run}.events.");
    t.commands_prefix = format!("{run}.commands.");
    t.customer_events = format!("{run}.customer.events");
    t.transitions = format!("{run}.journeys.transitions");
    t.dead_letters = format!("{run}.events.dlq");
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

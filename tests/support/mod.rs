//! A running Switchboard for end-to-end tests: Apache Kafka (the test binary's shared broker),
//! redis-server, topics with unique names, and the stitcher and engine services started
//! in-process against them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use switchboard_codec::{
    AttrValue, AvroRecord, ChannelEvent, Codec, Framing, Identifier, JourneyTransition,
    LocalSchemas, SendCommand,
};
use switchboard_config::Config;
use switchboard_kafka::{OutRecord, produce_all};
use switchboard_redis::RedisStateStore;
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_services::Metrics;
use switchboard_services::catalog::{CatalogSource, watch_catalog};
use switchboard_services::services::{producer, run_engine, run_stitcher};
use switchboard_test_support::{
    KafkaBroker, MockKafka, RedisServer, isolated_config, mock_cluster, unique,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const POLICIES: &str = include_str!("../policies.yaml");

/// The Kafka-protocol broker of a test: Apache Kafka, shared by the tests of one binary, or
/// librdkafka's mock cluster where the test injects broker faults.
pub enum Broker {
    Kafka(&'static KafkaBroker),
    Mock(MockKafka),
}

impl Broker {
    pub fn bootstrap(&self) -> String {
        match self {
            Self::Kafka(b) => b.bootstrap(),
            Self::Mock(m) => m.bootstrap(),
        }
    }
}

/// The broker, Redis, config and services of one test.
pub struct Running {
    pub broker: Broker,
    pub redis: RedisServer,
    pub config: Arc<Config>,
    pub codec: Arc<Codec<LocalSchemas>>,
    pub metrics: Metrics,
    pub registry: prometheus::Registry,
    pub journeys: std::path::PathBuf,
    services: Vec<(CancellationToken, JoinHandle<()>)>,
    producer: FutureProducer,
}

impl Running {
    /// Starts the parts and creates the topics; no service runs yet.
    pub async fn parts(journeys: &Path) -> Self {
        Self::parts_on(journeys, RedisServer::start()).await
    }

    /// Starts the parts around a given `redis-server` (e.g. one with AOF).
    pub async fn parts_on(journeys: &Path, redis: RedisServer) -> Self {
        Self::parts_with(
            journeys,
            redis,
            Broker::Kafka(KafkaBroker::shared()),
            |_| {},
        )
        .await
    }

    /// Starts the parts with a configuration changed by `configure` (e.g. transactions on).
    pub async fn parts_configured(journeys: &Path, configure: impl FnOnce(&mut Config)) -> Self {
        let broker = Broker::Kafka(KafkaBroker::shared());
        Self::parts_with(journeys, RedisServer::start(), broker, configure).await
    }

    /// Starts the parts on librdkafka's mock cluster of three brokers, for injected faults.
    pub async fn parts_on_mock(journeys: &Path) -> Self {
        Self::parts_with(
            journeys,
            RedisServer::start(),
            Broker::Mock(mock_cluster(3)),
            |_| {},
        )
        .await
    }

    async fn parts_with(
        journeys: &Path,
        redis: RedisServer,
        broker: Broker,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let mut config = isolated_config(broker.bootstrap(), redis.url(), 3);
        let t = &mut config.topics;
        t.channels = ["web", "app", "email", "sms", "push", "pos"]
            .map(String::from)
            .to_vec();
        configure(&mut config);
        let plan = switchboard_kafka::topic_plan(&config.topics);
        match &broker {
            Broker::Kafka(_) => {
                switchboard_kafka::create_topics(&config.kafka, &plan)
                    .await
                    .expect("create topics");
            }
            Broker::Mock(m) => {
                for t in &plan {
                    m.create_topic(&t.name, t.partitions);
                }
            }
        }
        let registry = prometheus::Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        let codec = Arc::new(Codec::new(LocalSchemas::embedded().unwrap()).await.unwrap());
        let producer = producer(&config).unwrap();
        Self {
            broker,
            redis,
            config: Arc::new(config),
            codec,
            metrics,
            registry,
            journeys: journeys.to_path_buf(),
            services: Vec::new(),
            producer,
        }
    }

    /// This test's configuration as a TOML file for `switchboard -c`, with `json_channels`.
    pub fn config_file(&self, dir: &Path, json_channels: &[&str]) -> std::path::PathBuf {
        let (c, t) = (&self.config, &self.config.topics);
        let file = dir.join("switchboard.toml");
        std::fs::write(
            &file,
            format!(
                "[kafka]\nbootstrap_servers = \"{}\"\ngroup_prefix = \"{}\"\n\n[redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\n\n[topics]\nchannels = {:?}\nevents_prefix = \"{}\"\ncommands_prefix = \"{}\"\ncustomer_events = \"{}\"\ntransitions = \"{}\"\ndead_letters = \"{}\"\njson_channels = {:?}\npartitions = {}\nreplication_factor = 1\n",
                c.kafka.bootstrap_servers,
                c.kafka.group_prefix,
                c.redis.url,
                c.redis.key_prefix,
                t.channels,
                t.events_prefix,
                t.commands_prefix,
                t.customer_events,
                t.transitions,
                t.dead_letters,
                json_channels,
                t.partitions,
            ),
        )
        .unwrap();
        file
    }

    /// Parts plus one stitcher and one engine.
    pub async fn start(journeys: &Path) -> Self {
        let mut r = Self::parts(journeys).await;
        r.start_stitcher().await;
        r.start_engine().await;
        r
    }

    pub async fn start_stitcher(&mut self) -> usize {
        let redis = connect(&self.config.redis).await.unwrap();
        let store = Arc::new(RedisIdentityStore::new(
            redis,
            Keys::new(self.config.redis.key_prefix.clone()),
        ));
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (config, codec, metrics, stop) = (
                self.config.clone(),
                self.codec.clone(),
                self.metrics.clone(),
                stop.clone(),
            );
            async move {
                run_stitcher(config, codec, store, metrics, stop)
                    .await
                    .unwrap()
            }
        });
        self.services.push((stop, task));
        self.services.len() - 1
    }

    pub async fn start_engine(&mut self) -> usize {
        let redis = connect(&self.config.redis).await.unwrap();
        let store = Arc::new(RedisStateStore::new(
            redis,
            self.config.redis.key_prefix.clone(),
        ));
        let stop = CancellationToken::new();
        let source = CatalogSource {
            journeys_dir: self.journeys.clone(),
            policies_file: None,
            default_policies: POLICIES.to_owned(),
        };
        let (catalog, watching) = watch_catalog(
            source.clone(),
            source.load().unwrap(),
            Duration::from_millis(500),
            self.metrics.clone(),
            stop.clone(),
        );
        let task = tokio::spawn({
            let (config, codec, metrics, stop) = (
                self.config.clone(),
                self.codec.clone(),
                self.metrics.clone(),
                stop.clone(),
            );
            async move {
                let engine = run_engine(config, codec, store, catalog, metrics, stop);
                let (ran, ()) = tokio::join!(engine, watching);
                ran.unwrap()
            }
        });
        self.services.push((stop, task));
        self.services.len() - 1
    }

    /// Stops one service gracefully and waits for it.
    pub async fn stop(&mut self, index: usize) {
        let (stop, task) = &mut self.services[index];
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("service stops within 30 s")
            .unwrap();
    }

    pub async fn produce(&self, events: &[ChannelEvent]) {
        let records: Vec<OutRecord> = events
            .iter()
            .map(|e| OutRecord {
                topic: format!("{}{}", self.config.topics.events_prefix, e.channel),
                key: e.identifiers.first().map(|i| i.value.clone().into_bytes()),
                payload: self.codec.encode(e, Framing::Confluent).unwrap(),
                headers: Vec::new(),
            })
            .collect();
        produce_all(&self.producer, &records).await.unwrap();
    }

    pub async fn produce_raw(&self, channel: &str, payload: &[u8]) {
        let r = OutRecord {
            topic: format!("{}{channel}", self.config.topics.events_prefix),
            key: None,
            payload: payload.to_vec(),
            headers: vec![("origin".into(), "test".into())],
        };
        produce_all(&self.producer, &[r]).await.unwrap();
    }

    /// Sets a topic's configuration (e.g. `max.message.bytes`) through the admin API.
    pub async fn set_topic_config(&self, topic: &str, key: &str, value: &str) {
        use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> =
            rdkafka::ClientConfig::new()
                .set("bootstrap.servers", self.broker.bootstrap())
                .create()
                .unwrap();
        let change = AlterConfig::new(ResourceSpecifier::Topic(topic)).set(key, value);
        for r in admin
            .alter_configs(&[change], &AdminOptions::new())
            .await
            .unwrap()
        {
            r.unwrap_or_else(|(resource, e)| panic!("alter {resource:?}: {e}"));
        }
    }

    /// Produces `payload` to `events.<channel>` from a producer that allows records of up to
    /// 8 MiB (the broker's limit still applies).
    pub async fn produce_large(&self, channel: &str, payload: &[u8]) {
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.broker.bootstrap())
            .set("message.max.bytes", (8 << 20).to_string())
            .create()
            .unwrap();
        let r = OutRecord {
            topic: format!("{}{channel}", self.config.topics.events_prefix),
            key: None,
            payload: payload.to_vec(),
            headers: vec![("origin".into(), "test".into())],
        };
        // A topic's new limit reaches the broker through the metadata log a moment after
        // the change is accepted: until then the record is refused as too large.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match produce_all(&producer, std::slice::from_ref(&r)).await {
                Ok(()) => return,
                Err(rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge,
                )) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("produce {} bytes: {e}", r.payload.len()),
            }
        }
    }

    /// A consumer of every partition of `topics` from the beginning (assigned, no group),
    /// reading committed records only.
    pub fn consumer(&self, topics: &[String]) -> StreamConsumer {
        let c: StreamConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.broker.bootstrap())
            .set("group.id", unique("reader"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        for t in topics {
            for p in 0..self.config.topics.partitions {
                tpl.add_partition_offset(t, p, rdkafka::Offset::Beginning)
                    .unwrap();
            }
        }
        c.assign(&tpl).unwrap();
        c
    }

    /// Every command topic.
    pub fn command_topics(&self) -> Vec<String> {
        self.config
            .topics
            .channels
            .iter()
            .map(|c| format!("{}{c}", self.config.topics.commands_prefix))
            .collect()
    }

    /// Reads commands until `stop` says enough or `timeout` passes.
    pub async fn commands_until(
        &self,
        timeout: Duration,
        stop: impl FnMut(&[SendCommand]) -> bool,
    ) -> Vec<SendCommand> {
        self.read_until(&self.command_topics(), timeout, stop).await
    }

    /// Reads `journeys.transitions` until `stop` says enough or `timeout` passes.
    pub async fn transitions_until(
        &self,
        timeout: Duration,
        stop: impl FnMut(&[JourneyTransition]) -> bool,
    ) -> Vec<JourneyTransition> {
        let topics = std::slice::from_ref(&self.config.topics.transitions);
        self.read_until(topics, timeout, stop).await
    }

    /// Reads records of `topics` until `stop` says enough or `timeout` passes.
    async fn read_until<T: AvroRecord>(
        &self,
        topics: &[String],
        timeout: Duration,
        mut stop: impl FnMut(&[T]) -> bool,
    ) -> Vec<T> {
        let consumer = self.consumer(topics);
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut stream = consumer.stream();
        while !stop(&out) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, stream.next()).await {
                Ok(Some(Ok(m))) => {
                    out.push(self.codec.decode::<T>(m.payload().unwrap()).await.unwrap())
                }
                Ok(Some(Err(e))) => panic!("consume {topics:?}: {e}"),
                _ => break,
            }
        }
        out
    }

    /// Records of the dead-letter topic, with their headers.
    pub async fn dead_letters(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Vec<(Vec<u8>, BTreeMap<String, String>)> {
        use rdkafka::message::Headers;
        let consumer = self.consumer(std::slice::from_ref(&self.config.topics.dead_letters));
        let mut stream = consumer.stream();
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.next()).await {
                Ok(Some(Ok(m))) => {
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|x| {
                                    (
                                        x.key.to_owned(),
                                        String::from_utf8_lossy(x.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push((m.payload().unwrap_or_default().to_vec(), headers));
                }
                _ => break,
            }
        }
        out
    }

    /// A metric's series by the value of one label.
    /// The counter `name` summed by the value of `label` (over its other labels), as
    /// `sum by (label)` in PromQL.
    pub fn series(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut sums = BTreeMap::new();
        for m in (self.registry.gather().iter())
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
        {
            if let Some(l) = m.get_label().iter().find(|l| l.name() == label) {
                *sums.entry(l.value().to_owned()).or_insert(0.0) += m.get_counter().value();
            }
        }
        sums
    }

    pub fn metric(&self, name: &str) -> f64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| {
                f.get_metric()
                    .iter()
                    .map(|m| m.get_counter().value() + m.get_gauge().value())
                    .collect::<Vec<_>>()
            })
            .sum()
    }
}

impl Drop for Running {
    /// Stops the services while the broker is still up (they commit and leave their groups),
    /// then the broker and Redis go.
    fn drop(&mut self) {
        for (stop, _) in &self.services {
            stop.cancel();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && self.services.iter().any(|(_, t)| !t.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A channel event happening now, in en-GB and UTC.
pub fn event(
    id: &str,
    kind: &str,
    channel: &str,
    ids: &[(&str, &str)],
    attrs: &[(&str, AttrValue)],
) -> ChannelEvent {
    ChannelEvent {
        event_id: id.into(),
        event_type: kind.into(),
        channel: channel.into(),
        occurred_at: switchboard_services::now_ms(),
        identifiers: ids.iter().map(|(k, v)| Identifier::new(*k, *v)).collect(),
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        locale: Some("en-GB".into()),
        timezone: Some("UTC".into()),
    }
}

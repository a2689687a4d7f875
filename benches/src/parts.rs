//! The broker and Redis a run shares, and the systems it measures.

use std::sync::Arc;
use std::time::Duration;

use switchboard_codec::{Codec, LocalSchemas};
use switchboard_config::Config;
use switchboard_test_support::{
    KafkaBroker, MockKafka, RedisServer, isolated_config, kafka_version, name_topics,
};

use crate::Error;
use crate::cpu;

/// Partitions of every topic the harness creates (channel topics: `--channel-partitions`).
pub(crate) const PARTITIONS: i32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum System {
    Baseline,
    Switchboard,
    Floor,
}

impl System {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Switchboard => "switchboard",
            Self::Floor => "floor",
        }
    }
}

/// The broker every phase shares.
pub(crate) enum Broker {
    /// Apache Kafka (KRaft, one node, its own JVM): what users run.
    Kafka(KafkaBroker),
    /// librdkafka's in-process mock cluster: no fetch floor, its thread's CPU counted apart
    /// from the pipeline's; for what the pipeline's own latency is.
    Mock(MockKafka),
}

/// The mock cluster's broker thread (librdkafka names it so).
const MOCK_THREAD: &str = "rdk:mock";

impl Broker {
    /// Its name in reports.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Kafka(_) => "Kafka",
            Self::Mock(_) => "mock cluster",
        }
    }

    /// What it is, for a report's header.
    pub(crate) fn description(&self) -> String {
        match self {
            Self::Kafka(_) => format!(
                "Apache Kafka {} (KRaft, one node, one JVM with a 768 MiB heap)",
                kafka_version()
            ),
            Self::Mock(_) => "librdkafka's mock cluster in the pipeline's process (its thread's CPU counted as the broker's)".to_owned(),
        }
    }

    fn bootstrap(&self) -> String {
        match self {
            Self::Kafka(k) => k.bootstrap(),
            Self::Mock(m) => m.bootstrap(),
        }
    }
}

/// The broker and Redis every phase shares.
pub(crate) struct Parts {
    pub(crate) broker: Broker,
    pub(crate) redis: RedisServer,
    pub(crate) codec: Arc<Codec<LocalSchemas>>,
    pub(crate) linger_ms: Option<u32>,
    pub(crate) fetch_wait_ms: u32,
    pub(crate) channel_partitions: i32,
    pub(crate) warmup: Duration,
    /// Backlogs of the same customers drained before each measured one (`--returning`).
    pub(crate) returning: u64,
    /// Switchboard's `identity.cache_entries`, when not its default.
    pub(crate) identity_cache_entries: Option<u64>,
}

impl Parts {
    /// A configuration with topics, group and keys of its own.
    pub(crate) async fn config(&self) -> Result<Arc<Config>, Error> {
        self.config_named(None).await
    }

    /// The same, with topics under `run.` when given (short names, as in production, for
    /// measurements that store topic names; a name is used once per broker).
    pub(crate) async fn config_named(&self, run: Option<&str>) -> Result<Arc<Config>, Error> {
        let mut c = isolated_config(self.broker.bootstrap(), self.redis.url(), PARTITIONS);
        if let Some(run) = run {
            name_topics(&mut c.topics, run);
        }
        if let Some(entries) = self.identity_cache_entries {
            c.identity.cache_entries = entries;
        }
        let props = &mut c.kafka.properties;
        props.insert("fetch.wait.max.ms".into(), self.fetch_wait_ms.to_string());
        if let Some(linger) = self.linger_ms {
            props.insert("linger.ms".into(), linger.to_string());
        }
        let run = c
            .topics
            .events_prefix
            .trim_end_matches(".events.")
            .to_owned();
        let mut plan = switchboard_kafka::topic_plan(&c.topics);
        let out = plan.first().cloned().ok_or("the topic plan is empty")?;
        for system in [System::Baseline, System::Floor] {
            plan.push(switchboard_kafka::TopicSpec {
                name: format!("{run}.{}.out", system.name()),
                ..out.clone()
            });
        }
        for t in &mut plan {
            if t.name.starts_with(&c.topics.events_prefix) {
                t.partitions = self.channel_partitions;
            }
        }
        match &self.broker {
            Broker::Kafka(_) => {
                switchboard_kafka::create_topics(&c.kafka, &plan).await?;
            }
            Broker::Mock(m) => {
                for t in &plan {
                    m.create_topic(&t.name, t.partitions);
                }
            }
        }
        Ok(Arc::new(c))
    }

    /// CPU seconds so far of the pipeline under test, the broker and Redis. The mock
    /// cluster runs in this process: its thread's time is the broker's.
    pub(crate) fn cpu(&self) -> [f64; 3] {
        let process = cpu::seconds("self");
        let (pipeline, broker) = match &self.broker {
            Broker::Kafka(k) => (process, cpu::seconds(&k.pid().to_string())),
            Broker::Mock(_) => {
                let mock = cpu::threads_named(MOCK_THREAD);
                (process - mock, mock)
            }
        };
        [
            pipeline,
            broker,
            cpu::seconds(&self.redis.pid().to_string()),
        ]
    }
}

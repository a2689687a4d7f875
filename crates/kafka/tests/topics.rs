//! `topics create` on a real broker: every topic, the configured partitions, idempotent.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use switchboard_config::{KafkaConfig, TopicsConfig};
use switchboard_kafka::*;
use switchboard_test_support::{KafkaBroker, unique};

#[tokio::test]
async fn every_topic_is_created_once_with_its_partitions() {
    let broker = KafkaBroker::shared();
    let run = unique("t");
    let topics = TopicsConfig {
        channels: vec!["web".into(), "sms".into()],
        events_prefix: format!("{run}.events."),
        commands_prefix: format!("{run}.commands."),
        customer_events: format!("{run}.customer.events"),
        transitions: format!("{run}.journeys.transitions"),
        dead_letters: format!("{run}.events.dlq"),
        partitions: 4,
        replication_factor: 1,
        ..TopicsConfig::default()
    };
    let kafka = KafkaConfig {
        bootstrap_servers: broker.bootstrap(),
        ..KafkaConfig::default()
    };
    let plan = topic_plan(&topics);
    assert_eq!(plan.len(), 7);

    let first = create_topics(&kafka, &plan).await.unwrap();
    assert!(
        first.iter().all(|(_, o)| *o == TopicOutcome::Created),
        "{first:?}"
    );
    let second = create_topics(&kafka, &plan).await.unwrap();
    assert!(
        second
            .iter()
            .all(|(_, o)| *o == TopicOutcome::AlreadyExists),
        "{second:?}"
    );

    let consumer: BaseConsumer = client_config(&kafka).create().unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    for spec in &plan {
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == spec.name)
            .unwrap_or_else(|| panic!("{} missing", spec.name));
        assert_eq!(topic.partitions().len(), 4, "{}", spec.name);
    }
}

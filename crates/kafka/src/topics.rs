//! The topics of a deployment, and their idempotent creation.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use switchboard_config::{KafkaConfig, TopicsConfig};

use crate::{KafkaError, client_config};

/// One topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
}

/// What `create_topics` did with a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    Created,
    AlreadyExists,
}

/// Every topic of the pipeline: `events.<channel>` and `commands.<channel>` per channel,
/// `customer.events`, `journeys.transitions` and the dead-letter topic.
pub fn topic_plan(t: &TopicsConfig) -> Vec<TopicSpec> {
    let spec = |name: String| TopicSpec {
        name,
        partitions: t.partitions,
        replication_factor: t.replication_factor,
    };
    let mut plan: Vec<TopicSpec> = t
        .channels
        .iter()
        .map(|c| spec(format!("{}{c}", t.events_prefix)))
        .collect();
    plan.extend(
        t.channels
            .iter()
            .map(|c| spec(format!("{}{c}", t.commands_prefix))),
    );
    plan.extend(
        [
            t.customer_events.clone(),
            t.transitions.clone(),
            t.dead_letters.clone(),
        ]
        .map(spec),
    );
    plan
}

/// Creates the topics of `plan`; a topic that already exists is left as it is.
pub async fn create_topics(
    kafka: &KafkaConfig,
    plan: &[TopicSpec],
) -> Result<Vec<(String, TopicOutcome)>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka).create()?;
    let new: Vec<NewTopic<'_>> = plan
        .iter()
        .map(|s| {
            NewTopic::new(
                &s.name,
                s.partitions,
                TopicReplication::Fixed(s.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics(&new, &options).await?;
    results
        .into_iter()
        .map(|r| match r {
            Ok(topic) => Ok((topic, TopicOutcome::Created)),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                Ok((topic, TopicOutcome::AlreadyExists))
            }
            Err((topic, code)) => Err(KafkaError::Topic {
                topic,
                reason: code.to_string(),
            }),
        })
        .collect()
}

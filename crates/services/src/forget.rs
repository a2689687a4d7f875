//! Data protection: `switchboard forget <kind>:<value>`.
//!
//! The identity graph of the profile (every identifier, every profile merged into it) is
//! erased in Redis, after a forget request is published onto `customer.events`, keyed by the
//! profile like any of its events. The engine partition that owns the profile applies the
//! request in order with the profile's other records: it deletes the state, outbox and
//! timers of the profile and of everything merged into it, and publishes a
//! `profile.forgotten` transition. Both halves are idempotent, so a forget that failed half
//! way is simply run again.

use std::collections::BTreeMap;

use rdkafka::producer::FutureProducer;
use switchboard_codec::{
    AttrValue, ChannelEvent, Codec, CustomerEvent, CustomerPayload, SchemaResolver, SourcePosition,
};
use switchboard_config::Config;
use switchboard_engine::forget::{FORGET_EVENT, MERGED_ATTRIBUTE};
use switchboard_identity::{IdentityStore, ProfileId, StitchError, erase, show};

use switchboard_kafka::{OutRecord, produce_all};

use crate::now_ms;

/// Why a forget did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    #[error("identity store: {0}")]
    Identity(#[from] StitchError),
    #[error("encoding the forget request: {0}")]
    Encode(String),
    #[error("publishing the forget request: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Forgets the customer `identifier` belongs to. Returns the profiles erased (the root
/// first), or `None` when no profile holds the identifier.
pub async fn forget_customer<R: SchemaResolver, S: IdentityStore>(
    config: &Config,
    codec: &Codec<R>,
    producer: &FutureProducer,
    identity: &S,
    identifier: &switchboard_codec::Identifier,
) -> Result<Option<Vec<ProfileId>>, ForgetError> {
    let Some(view) = show(identity, identifier).await? else {
        return Ok(None);
    };
    let request = forget_request(&view.profile, &view.merged);
    let payload = codec
        .encode(&request, config.schemas.framing)
        .map_err(|e| ForgetError::Encode(e.to_string()))?;
    produce_all(
        producer,
        &[OutRecord {
            topic: config.topics.customer_events.clone(),
            key: Some(view.profile.as_str().as_bytes().to_vec()),
            payload,
            headers: Vec::new(),
        }],
    )
    .await?;
    Ok(Some(erase(identity, view).await?))
}

/// The record that asks the engine to forget `profile` and the profiles merged into it.
pub fn forget_request(profile: &ProfileId, merged: &[ProfileId]) -> CustomerEvent {
    let now = now_ms();
    let merged: Vec<&str> = merged.iter().map(ProfileId::as_str).collect();
    CustomerEvent {
        profile_id: profile.to_string(),
        stitched_at: now,
        source: SourcePosition {
            topic: String::new(),
            partition: -1,
            offset: -1,
        },
        payload: CustomerPayload::Event(ChannelEvent {
            event_id: format!("forget-{profile}-{now}"),
            event_type: FORGET_EVENT.into(),
            channel: "switchboard".into(),
            occurred_at: now,
            identifiers: Vec::new(),
            attributes: BTreeMap::from([(
                MERGED_ATTRIBUTE.to_owned(),
                AttrValue::String(merged.join(",")),
            )]),
            locale: None,
            timezone: None,
        }),
        identifiers: Vec::new(),
    }
}

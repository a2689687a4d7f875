//! The stitcher: decode each channel event, validate it, resolve its identifiers into a
//! profile and publish it to `customer.events` keyed by profile id, with a `ProfileMerged`
//! record before it for every merge it caused. Bad input goes to the dead-letter topic with
//! the reason. Duplicates are the engine's to drop.

use std::future::Future;
use std::sync::Arc;

use rdkafka::message::{Message, OwnedMessage};
use switchboard_codec::{
    ChannelEvent, Codec, CustomerEvent, CustomerPayload, Framing, ProfileMerged, SchemaResolver,
    SourcePosition,
};
use switchboard_config::Config;
use switchboard_identity::{
    Found, IdentityRules, IdentityStore, Limits, Rejected, StitchError, stitch, stitch_found,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

mod known;
mod lane;

use known::Known;
use lane::{Lane, Pending};

use switchboard_kafka::{
    Delivery, OutRecord, Publisher, Stopped, Worker, Workers, dead_letter, until_ok,
};

use crate::metrics::StoreOperation;
use crate::repeated::{Log, Repeated};
use crate::{Metrics, now_ms};

/// Records larger than this go to the dead-letter topic unread (`oversize`): a channel event
/// is a few hundred bytes; a megabyte one is a bug upstream, not a customer.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// How far ahead of this machine's clock `occurred_at` may be (clock skew); beyond it, the
/// event goes to the dead-letter topic (`future_event`). Late events have no limit: they are
/// processed in order, and journeys act on the time they are processed.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// Everything the stitcher's partitions share.
pub struct Stitcher<R, S> {
    pub codec: Arc<Codec<R>>,
    pub store: Arc<S>,
    pub rules: IdentityRules,
    pub limits: Limits,
    pub config: Arc<Config>,
    pub metrics: Metrics,
    /// "identifier left unlinked", logged once and then summarised every 10 s.
    pub unlinked: Repeated,
    /// Identifiers resolved lately, so a returning customer needs no lookup.
    known: Known,
}

impl<R, S> Stitcher<R, S> {
    pub fn new(codec: Arc<Codec<R>>, store: Arc<S>, config: Arc<Config>, metrics: Metrics) -> Self {
        let rules = config.identity.clone();
        let limits = rules.limits();
        let known = Known::new(
            rules.cache_entries,
            std::time::Duration::from_secs(rules.cache_ttl_secs),
        );
        Self {
            codec,
            store,
            rules,
            limits,
            config,
            metrics,
            unlinked: Repeated::new(std::time::Duration::from_secs(10)),
            known,
        }
    }

    /// The topics the stitcher consumes: `events.<channel>` for every channel.
    pub fn topics(config: &Config) -> Vec<String> {
        let t = &config.topics;
        t.channels
            .iter()
            .map(|c| format!("{}{c}", t.events_prefix))
            .collect()
    }
}

/// What becomes of an event: the records it is stitched into, or a dead letter.
enum Outcome {
    Stitched(Vec<OutRecord>),
    DeadLetter(&'static str, String),
}

/// One partition of the stitcher.
pub struct StitcherPartition<R, S> {
    shared: Arc<Stitcher<R, S>>,
    lane: Lane,
    publisher: Publisher,
    delivery: Delivery,
    stop: CancellationToken,
}

/// Starts stitcher partitions from a shared [`Stitcher`], whose partitions stitch through
/// one [`Lane`].
pub struct StitcherWorkers<R, S> {
    shared: Arc<Stitcher<R, S>>,
    lane: Lane,
}

impl<R: SchemaResolver + 'static, S: IdentityStore + 'static> StitcherWorkers<R, S> {
    /// The workers, and the lane's task: run it beside the consumer; it ends once the
    /// workers and every partition are gone, or at `shutdown`.
    pub fn new(
        shared: Arc<Stitcher<R, S>>,
        shutdown: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (lane, run) = Lane::new(shared.clone(), shutdown);
        (Self { shared, lane }, run)
    }
}

impl<R: SchemaResolver + 'static, S: IdentityStore + 'static> Workers for StitcherWorkers<R, S> {
    type Worker = StitcherPartition<R, S>;

    async fn start(
        &self,
        _topic: &str,
        _partition: i32,
        publisher: Publisher,
        stop: CancellationToken,
    ) -> Result<Self::Worker, Stopped> {
        let s = &self.shared;
        Ok(StitcherPartition {
            delivery: Delivery::new(&s.config.topics.dead_letters, &s.metrics.kafka),
            shared: s.clone(),
            lane: self.lane.clone(),
            publisher,
            stop,
        })
    }
}

impl<R: SchemaResolver + 'static, S: IdentityStore + 'static> Worker for StitcherPartition<R, S> {
    async fn process(&mut self, batch: Vec<OwnedMessage>) -> Result<(), Stopped> {
        let s = &*self.shared;
        let last = batch.last().map(Message::offset);
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
        let mut pending = Vec::new();
        let errors = s.metrics.store_error(StoreOperation::Stitch);
        s.metrics.consumed(&batch);
        for msg in &batch {
            match until_ok("decode", &self.stop, errors.clone(), || prepare(s, msg)).await? {
                Prepared::Ready(p) => {
                    outcomes.push(None);
                    pending.push(p);
                }
                Prepared::Done(outcome) => outcomes.push(Some(outcome)),
            }
        }
        let mut stitched = self.lane.stitch(pending, &self.stop).await?.into_iter();
        let mut out = Vec::with_capacity(batch.len());
        let mut dead: Vec<&'static str> = Vec::new();
        for (msg, outcome) in batch.iter().zip(outcomes) {
            match outcome.or_else(|| stitched.next()) {
                Some(Outcome::Stitched(records)) => out.extend(records),
                Some(Outcome::DeadLetter(reason, detail)) => {
                    debug!(
                        topic = msg.topic(),
                        partition = msg.partition(),
                        offset = msg.offset(),
                        reason,
                        detail,
                        "dead letter"
                    );
                    dead.push(reason);
                    out.push(dead_letter(
                        &s.config.topics.dead_letters,
                        msg,
                        reason,
                        &detail,
                    ));
                }
                None => {}
            }
        }
        self.delivery
            .deliver(&self.publisher, &out, last, &self.stop)
            .await?;
        // Counted once written, never per attempt.
        for reason in dead {
            s.metrics.dead_letters.with_label_values(&[reason]).inc();
        }
        Ok(())
    }

    async fn tick(&mut self) -> Result<(), Stopped> {
        Ok(())
    }
}

fn channel_of<'a>(config: &Config, topic: &'a str) -> &'a str {
    topic
        .strip_prefix(config.topics.events_prefix.as_str())
        .unwrap_or(topic)
}

async fn decode<R: SchemaResolver>(
    s: &Stitcher<R, impl Sync>,
    msg: &OwnedMessage,
) -> Result<ChannelEvent, (bool, &'static str, String)> {
    let Some(bytes) = msg.payload() else {
        return Err((false, "empty", "the record has no value".into()));
    };
    if bytes.len() > MAX_EVENT_BYTES {
        return Err((
            false,
            "oversize",
            format!(
                "{} bytes, more than the {MAX_EVENT_BYTES} an event may have",
                bytes.len()
            ),
        ));
    }
    if s.config
        .topics
        .json_channels
        .iter()
        .any(|c| c == channel_of(&s.config, msg.topic()))
    {
        return serde_json::from_slice(bytes).map_err(|e| (false, "bad_json", e.to_string()));
    }
    s.codec
        .decode::<ChannelEvent>(bytes)
        .await
        .map_err(|e| (e.is_retryable(), e.reason(), e.to_string()))
}

fn invalid(e: &ChannelEvent, now: i64) -> Option<(&'static str, String)> {
    if e.occurred_at > now.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Some((
            "future_event",
            format!(
                "occurred_at is {} s ahead of this clock",
                (e.occurred_at - now) / 1000
            ),
        ));
    }
    malformed(e).map(|why| ("invalid_event", why))
}

fn malformed(e: &ChannelEvent) -> Option<String> {
    if e.event_id.trim().is_empty() {
        return Some("event_id is empty".into());
    }
    if e.event_type.trim().is_empty() {
        return Some("type is empty".into());
    }
    if e.event_type == switchboard_engine::forget::FORGET_EVENT {
        return Some(format!(
            "type `{}` is reserved for `switchboard forget`",
            e.event_type
        ));
    }
    if e.channel.trim().is_empty() {
        return Some("channel is empty".into());
    }
    if e.occurred_at <= 0 {
        return Some(format!("occurred_at {} is not a time", e.occurred_at));
    }
    None
}

/// A decoded, valid event ready to be stitched, or what becomes of it instead.
enum Prepared {
    Ready(Pending),
    Done(Outcome),
}

/// Decodes and validates a record (the schema registry being away is the only error).
async fn prepare<R: SchemaResolver, S: Sync>(
    s: &Stitcher<R, S>,
    msg: &OwnedMessage,
) -> Result<Prepared, StitchError> {
    let event = match decode(s, msg).await {
        Ok(e) => e,
        Err((true, _, detail)) => return Err(StitchError::Contended(detail)),
        Err((false, reason, detail)) => {
            return Ok(Prepared::Done(Outcome::DeadLetter(reason, detail)));
        }
    };
    if let Some((reason, why)) = invalid(&event, now_ms()) {
        return Ok(Prepared::Done(Outcome::DeadLetter(reason, why)));
    }
    let prepared = s.rules.prepare(&event.identifiers);
    for (kind, why) in &prepared.rejected {
        if matches!(why, Rejected::Duplicate) {
            continue;
        }
        let kind = match why {
            Rejected::UnknownKind(_) => "other",
            _ => kind.as_str(),
        };
        s.metrics
            .identifiers_refused
            .with_label_values(&[kind, why.reason()])
            .inc();
        debug!(
            kind,
            reason = why.reason(),
            event_type = event.event_type,
            "identifier refused by the identity rules"
        );
    }
    if prepared.accepted.is_empty() {
        return Ok(Prepared::Done(Outcome::DeadLetter(
            "no_identifiers",
            prepared.none_usable(),
        )));
    }
    Ok(Prepared::Ready(Pending {
        source: SourcePosition {
            topic: msg.topic().to_owned(),
            partition: msg.partition(),
            offset: msg.offset(),
        },
        event,
        identifiers: prepared.accepted,
    }))
}

/// Resolves the event's profile and encodes what goes to the engine (which drops a
/// duplicate: a repeat is stitched again harmlessly, the graph already holds its links).
async fn resolve<R: SchemaResolver, S: IdentityStore>(
    s: &Stitcher<R, S>,
    pending: &Pending,
    found: Option<Found>,
) -> Result<Outcome, StitchError> {
    let Pending {
        source,
        event,
        identifiers,
    } = pending;
    let now = now_ms();
    let stitched = match found {
        // A profile this event creates is born when the event occurred (its id is derived
        // from that time and the identifier): the same events give the same profiles.
        Some(found) => {
            stitch_found(&*s.store, &s.limits, identifiers, found, event.occurred_at).await?
        }
        None => stitch(&*s.store, &s.limits, identifiers, event.occurred_at).await?,
    };
    if stitched.created {
        s.metrics.profiles_created.inc();
    }
    // Every identifier now points at the profile (directly, or through what was merged into
    // it), unless one was refused.
    if stitched.conflicts.is_empty() {
        s.known.learn(identifiers, &stitched.profile);
    }
    for id in identifiers {
        s.metrics
            .identities_resolved
            .with_label_values(&[id.kind.as_str()])
            .inc();
    }
    for (kind, refusal) in &stitched.conflicts {
        s.metrics
            .conflicts
            .with_label_values(&[kind.as_str(), refusal.reason()])
            .inc();
        let key = format!("{kind}/{}", refusal.reason());
        match s.unlinked.note(&key, std::time::Instant::now()) {
            Log::First => warn!(
                kind,
                reason = refusal.reason(),
                event_type = event.event_type,
                "identifier left unlinked (more of these are summarised every 10 s)"
            ),
            Log::Summary { secs, counts } => {
                let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
                warn!(
                    secs,
                    counts = counts.join(", "),
                    "more identifiers left unlinked since the last of these lines"
                );
            }
            Log::Counted => {}
        }
    }
    let topic = &s.config.topics.customer_events;
    let framing = s.config.schemas.framing;
    let mut records = Vec::with_capacity(1 + stitched.merges.len());
    for m in &stitched.merges {
        s.metrics.merges.inc();
        let merged = CustomerEvent {
            profile_id: m.survivor.to_string(),
            stitched_at: now,
            source: source.clone(),
            payload: CustomerPayload::Merged(ProfileMerged {
                survivor: m.survivor.to_string(),
                loser: m.loser.to_string(),
                cause_event_id: event.event_id.clone(),
            }),
            identifiers: Vec::new(),
        };
        match encode(s, topic, framing, &merged) {
            Ok(r) => records.push(r),
            Err(e) => return Ok(Outcome::DeadLetter("encode", e)),
        }
    }
    let profile = stitched.profile.to_string();
    let stitched_event = CustomerEvent {
        profile_id: profile,
        stitched_at: now,
        source: source.clone(),
        payload: CustomerPayload::Event(event.clone()),
        identifiers: identifiers.to_vec(),
    };
    match encode(s, topic, framing, &stitched_event) {
        Ok(r) => records.push(r),
        Err(e) => return Ok(Outcome::DeadLetter("encode", e)),
    }
    Ok(Outcome::Stitched(records))
}

fn encode<R: SchemaResolver, S>(
    s: &Stitcher<R, S>,
    topic: &str,
    framing: Framing,
    e: &CustomerEvent,
) -> Result<OutRecord, String> {
    let payload = s
        .codec
        .encode(e, framing)
        .map_err(|err| format!("encoding a customer event: {err}"))?;
    Ok(OutRecord {
        topic: topic.to_owned(),
        key: Some(e.profile_id.clone().into_bytes()),
        payload,
        headers: Vec::new(),
    })
}

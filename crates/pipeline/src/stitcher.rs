//! The stitcher: decode each channel event, validate it, resolve its identifiers into a
//! profile and publish it to `customer.events` keyed by profile id, with a `ProfileMerged`
//! record before it for every merge it caused. Bad input goes to the dead-letter topic with
//! the reason. Duplicates are the engine's to drop.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rdkafka::message::{Message, OwnedMessage};
use switchboard_codec::{
    ChannelEvent, Codec, CustomerEvent, CustomerPayload, Framing, Identifier, ProfileMerged,
    SchemaResolver, SourcePosition,
};
use switchboard_config::Config;
use switchboard_identity::{
    Found, IdentityRules, IdentityStore, Limits, ProfileId, StitchError, look_up, stitch,
    stitch_found,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::consumer::{Stopped, Worker, Workers};
use crate::dead_letters::dead_letter;
use crate::output::{OutRecord, Publisher};
use crate::retry::until_ok;
use crate::{Metrics, now_ms};

/// Records larger than this go to the dead-letter topic unread (`oversize`): a channel event
/// is a few hundred bytes; a megabyte one is a bug upstream, not a customer.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// How far ahead of this machine's clock `occurred_at` may be (clock skew); beyond it, the
/// event goes to the dead-letter topic (`future_event`). Late events have no limit: they are
/// processed in order, and journeys act on the time they are processed.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// What a merge asks the engine to fold into the survivor.
pub const FOLD: [&str; 5] = ["attributes", "consent", "counters", "instances", "timers"];

/// Everything the stitcher's partitions share.
pub struct Stitcher<R, S> {
    pub codec: Arc<Codec<R>>,
    pub store: Arc<S>,
    pub rules: IdentityRules,
    pub limits: Limits,
    pub config: Arc<Config>,
    pub metrics: Metrics,
}

impl<R, S> Stitcher<R, S> {
    pub fn new(codec: Arc<Codec<R>>, store: Arc<S>, config: Arc<Config>, metrics: Metrics) -> Self {
        let rules = config.identity.clone();
        let limits = rules.limits();
        Self {
            codec,
            store,
            rules,
            limits,
            config,
            metrics,
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

/// Why an event is not stitched.
enum Outcome {
    Stitched(Vec<OutRecord>),
    DeadLetter(&'static str, String),
}

/// One partition of the stitcher.
pub struct StitcherPartition<R, S> {
    shared: Arc<Stitcher<R, S>>,
    publisher: Publisher,
    stop: CancellationToken,
}

/// Starts stitcher partitions from a shared [`Stitcher`].
pub struct StitcherWorkers<R, S>(pub Arc<Stitcher<R, S>>);

impl<R: SchemaResolver + 'static, S: IdentityStore + 'static> Workers for StitcherWorkers<R, S> {
    type Worker = StitcherPartition<R, S>;

    async fn start(
        &self,
        _topic: &str,
        _partition: i32,
        publisher: Publisher,
        stop: CancellationToken,
    ) -> Result<Self::Worker, Stopped> {
        Ok(StitcherPartition {
            shared: self.0.clone(),
            publisher,
            stop,
        })
    }
}

impl<R: SchemaResolver + 'static, S: IdentityStore + 'static> Worker for StitcherPartition<R, S> {
    async fn process(&mut self, batch: Vec<OwnedMessage>) -> Result<(), Stopped> {
        let s = &*self.shared;
        let last = batch.last().map(Message::offset);
        let mut prepared = Vec::with_capacity(batch.len());
        for msg in &batch {
            s.metrics
                .events_consumed
                .with_label_values(&[msg.topic()])
                .inc();
            let p = until_ok(
                "decode",
                &self.stop,
                s.metrics.store_errors.with_label_values(&["stitch"]),
                || prepare(s, msg),
            )
            .await?;
            prepared.push(p);
        }
        // Events that share no identifier (nor event id) are independent: each wave stitches
        // them concurrently, so their Redis round trips overlap; an event waits for the
        // earlier ones it shares an identifier with.
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
        let mut ready = Vec::new();
        for (i, (msg, p)) in batch.iter().zip(prepared).enumerate() {
            match p {
                Prepared::Ready(event, ids) => {
                    outcomes.push(None);
                    ready.push((i, msg, event, ids));
                }
                Prepared::Done(outcome) => outcomes.push(Some(outcome)),
            }
        }
        let mut resolved: HashMap<usize, Outcome> = HashMap::with_capacity(ready.len());
        for wave in waves(&ready) {
            // A wave's events share no identifier: their pointers, and the parents of the
            // profiles those point at, are read in one lookup, as their own lookups would
            // have read them at the same moment. A retry looks up afresh.
            let all: Vec<Identifier> = wave
                .iter()
                .flat_map(|(.., ids)| ids.iter().cloned())
                .collect();
            let Found { pointers, roots } = until_ok(
                "stitch",
                &self.stop,
                s.metrics.store_errors.with_label_values(&["stitch"]),
                || look_up(&*s.store, &all),
            )
            .await?;
            let roots: HashSet<ProfileId> = roots.into_iter().collect();
            let mut pointers = pointers.into_iter();
            let stitched = futures::future::join_all(wave.iter().map(|&(_, msg, event, ids)| {
                let pointers: Vec<_> = pointers.by_ref().take(ids.len()).collect();
                let roots = pointers
                    .iter()
                    .flatten()
                    .filter(|p| roots.contains(*p))
                    .cloned()
                    .collect();
                let mut found = Some(Found { pointers, roots });
                until_ok(
                    "stitch",
                    &self.stop,
                    s.metrics.store_errors.with_label_values(&["stitch"]),
                    move || resolve(s, msg, event, ids, found.take()),
                )
            }))
            .await;
            for (&(i, ..), outcome) in wave.iter().zip(stitched) {
                resolved.insert(i, outcome?);
            }
        }
        let outcomes = outcomes
            .into_iter()
            .enumerate()
            .map(|(i, done)| done.or_else(|| resolved.remove(&i)));
        let mut out = Vec::with_capacity(batch.len());
        for (msg, outcome) in batch.iter().zip(outcomes) {
            match outcome {
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
                    s.metrics.dead_letters.with_label_values(&[reason]).inc();
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
        until_ok(
            "produce customer events",
            &self.stop,
            s.metrics.kafka_errors.with_label_values(&["produce"]),
            || self.publisher.publish(&out, last),
        )
        .await
    }

    async fn tick(&mut self) -> Result<(), Stopped> {
        Ok(())
    }
}

/// An event of a batch ready to be stitched: its place in the batch, its record, the event
/// and its usable identifiers.
type Ready<'a> = (usize, &'a OwnedMessage, ChannelEvent, Vec<Identifier>);

type Wave<'r, 'a> = Vec<(usize, &'a OwnedMessage, &'r ChannelEvent, &'r [Identifier])>;

/// Splits a batch's events into waves of independent ones, in order: an event goes in the
/// wave after the last one holding any of its identifiers or its event id.
fn waves<'r, 'a>(ready: &'r [Ready<'a>]) -> Vec<Wave<'r, 'a>> {
    let mut last: HashMap<(&str, &str), usize> = HashMap::new();
    let mut waves: Vec<Wave<'r, 'a>> = Vec::new();
    for (i, msg, event, ids) in ready {
        let keys = || {
            ids.iter()
                .map(|id| (id.kind.as_str(), id.value.as_str()))
                .chain([("", event.event_id.as_str())])
        };
        let wave = keys()
            .filter_map(|k| last.get(&k).map(|w| w + 1))
            .max()
            .unwrap_or(0);
        for k in keys() {
            last.insert(k, wave);
        }
        let entry = (*i, *msg, event, ids.as_slice());
        // `wave` is at most one past the last wave.
        match waves.get_mut(wave) {
            Some(w) => w.push(entry),
            None => waves.push(vec![entry]),
        }
    }
    waves
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
    if e.event_type == crate::forget::FORGET_EVENT {
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

/// A decoded, valid event with its usable identifiers, or what becomes of it instead.
enum Prepared {
    Ready(ChannelEvent, Vec<Identifier>),
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
    if prepared.accepted.is_empty() {
        let kinds: Vec<String> = prepared
            .rejected
            .iter()
            .map(|(k, r)| format!("{k}: {}", r.reason()))
            .collect();
        return Ok(Prepared::Done(Outcome::DeadLetter(
            "no_identifiers",
            format!("no usable identifier ({})", kinds.join(", ")),
        )));
    }
    Ok(Prepared::Ready(event, prepared.accepted))
}

/// Resolves the event's profile and encodes what goes to the engine (which drops a
/// duplicate: a repeat is stitched again harmlessly, the graph already holds its links).
async fn resolve<R: SchemaResolver, S: IdentityStore>(
    s: &Stitcher<R, S>,
    msg: &OwnedMessage,
    event: &ChannelEvent,
    identifiers: &[Identifier],
    found: Option<Found>,
) -> Result<Outcome, StitchError> {
    let now = now_ms();
    let stitched = match found {
        Some(found) => stitch_found(&*s.store, &s.limits, identifiers, found, now).await?,
        None => stitch(&*s.store, &s.limits, identifiers, now).await?,
    };
    if stitched.created {
        s.metrics.profiles_created.inc();
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
        warn!(
            kind,
            reason = refusal.reason(),
            event_type = event.event_type,
            "identifier left unlinked"
        );
    }
    let source = SourcePosition {
        topic: msg.topic().to_owned(),
        partition: msg.partition(),
        offset: msg.offset(),
    };
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
                fold: FOLD.map(String::from).to_vec(),
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
        source,
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

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;

    use super::*;

    fn ready<'a>(msg: &'a OwnedMessage, id: &str, ids: &[(&str, &str)]) -> Ready<'a> {
        let event = ChannelEvent {
            event_id: id.into(),
            event_type: "t".into(),
            channel: "web".into(),
            occurred_at: 1,
            identifiers: Vec::new(),
            attributes: Default::default(),
            locale: None,
            timezone: None,
        };
        let ids = ids.iter().map(|(k, v)| Identifier::new(*k, *v)).collect();
        (msg.offset() as usize, msg, event, ids)
    }

    #[test]
    fn events_sharing_an_identifier_or_an_id_wait_for_each_other_in_order() {
        let msgs: Vec<OwnedMessage> = (0..5)
            .map(|o| OwnedMessage::new(None, None, "t".into(), Timestamp::NotAvailable, 0, o, None))
            .collect();
        let batch = [
            ready(&msgs[0], "a", &[("email", "x"), ("cookie", "1")]),
            ready(&msgs[1], "b", &[("cookie", "2")]),
            ready(&msgs[2], "c", &[("cookie", "1")]), // after a
            ready(&msgs[3], "a", &[("cookie", "3")]), // the same event id as a
            ready(&msgs[4], "d", &[("phone", "9"), ("cookie", "1")]), // after c
        ];
        let order: Vec<Vec<usize>> = waves(&batch)
            .iter()
            .map(|w| w.iter().map(|(i, ..)| *i).collect())
            .collect();
        assert_eq!(order, vec![vec![0, 1], vec![2, 3], vec![4]]);
    }
}

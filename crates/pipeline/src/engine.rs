//! The engine: for each partition of `customer.events`, load the profiles of a batch, apply
//! every input through the pure interpreter, write each profile's state, position and outbox
//! in one atomic step, publish the outbox (retrying what the broker could not take,
//! dead-lettering what it refuses), then let the offset move on; the next save, an idle tick
//! or the partition's end clears the published outboxes. Timers of the partition fire through
//! the same path, highest journey priority first when due together; timers a batch cancels
//! leave the shard once it is saved.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rdkafka::message::{Message, OwnedMessage};
use switchboard_codec::{
    Codec, CustomerEvent, CustomerPayload, JourneyTransition, SchemaResolver, TransitionKind,
};
use switchboard_config::Config;
use switchboard_journey::{Customer, Effect, Input, Profile, apply, fold};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::catalog::Catalog;
use crate::consumer::{Stopped, Worker, Workers};
use crate::dead_letters::dead_letter;
use crate::delivery::Delivery;
use crate::forget::{FORGET_EVENT, profiles_to_forget};
use crate::output::{OutRecord, Publisher};
use crate::retry::until_ok;
use crate::state::{Absorbed, DueTimer, MAX_ABSORBED, Outgoing, Record, Saved, StateStore, Write};
use crate::{Metrics, now_ms};

/// Timers fired per tick and partition, at most.
const TIMERS_PER_TICK: usize = 500;

/// Everything the engine's partitions share.
pub struct Engine<R, S> {
    pub codec: Arc<Codec<R>>,
    pub store: Arc<S>,
    pub catalog: watch::Receiver<Arc<Catalog>>,
    pub config: Arc<Config>,
    pub metrics: Metrics,
}

/// Starts engine partitions.
pub struct EngineWorkers<R, S>(pub Arc<Engine<R, S>>);

/// One owned partition of `customer.events`.
pub struct EnginePartition<R, S> {
    shared: Arc<Engine<R, S>>,
    publisher: Publisher,
    delivery: Delivery,
    partition: i32,
    epoch: u64,
    stop: CancellationToken,
    /// Profiles whose outboxes are published but not yet cleared: cleared by the next save
    /// (in its round trip), an idle tick, or the partition's end.
    published: Vec<String>,
}

/// A profile being changed within one batch.
struct Changing {
    record: Record,
    outbox: Vec<Outgoing>,
    /// Timers the batch cancelled (journey, due): removed from the shard once it is saved,
    /// so they cost neither a load nor a save when they would have fired.
    cancelled: Vec<(String, i64)>,
    timers: Vec<(String, i64)>,
    changed: bool,
    /// The profile had a stored record.
    found: bool,
}

impl<R: SchemaResolver + 'static, S: StateStore> Workers for EngineWorkers<R, S> {
    type Worker = EnginePartition<R, S>;

    async fn start(
        &self,
        _topic: &str,
        partition: i32,
        publisher: Publisher,
        stop: CancellationToken,
    ) -> Result<Self::Worker, Stopped> {
        let e = &self.0;
        let epoch = until_ok(
            "claim partition",
            &stop,
            e.metrics
                .store_errors
                .with_label_values(&["claim_partition"]),
            || e.store.claim_partition(partition),
        )
        .await?;
        info!(partition, epoch, "engine owns partition");
        let mut p = EnginePartition {
            shared: self.0.clone(),
            publisher,
            delivery: Delivery::new(&e.config.topics.dead_letters, &e.metrics),
            partition,
            epoch,
            stop,
            published: Vec::new(),
        };
        p.republish_outboxes().await?;
        Ok(p)
    }
}

impl<R: SchemaResolver + 'static, S: StateStore> Worker for EnginePartition<R, S> {
    async fn process(&mut self, batch: Vec<OwnedMessage>) -> Result<(), Stopped> {
        let e = self.shared.clone();
        let catalog = e.catalog.borrow().clone();
        let mut inputs = Vec::with_capacity(batch.len());
        let mut extra = Vec::new();
        // Counted once the batch is durable, not per attempt (a replay would count again).
        let mut dead: Vec<&'static str> = Vec::new();
        e.metrics.consumed(&batch);
        for msg in &batch {
            let Some(bytes) = msg.payload() else {
                dead.push("empty");
                extra.push(dead_letter(
                    &e.config.topics.dead_letters,
                    msg,
                    "empty",
                    "no value",
                ));
                continue;
            };
            match e.codec.decode::<CustomerEvent>(bytes).await {
                Ok(ce) => inputs.push((msg.offset(), ce)),
                Err(err) if err.is_retryable() => {
                    // The registry is away: stop here; the batch is replayed.
                    warn!(error = %err, "schema registry unavailable");
                    return Err(Stopped);
                }
                Err(err) => {
                    dead.push(err.reason());
                    extra.push(dead_letter(
                        &e.config.topics.dead_letters,
                        msg,
                        err.reason(),
                        &err.to_string(),
                    ));
                }
            }
        }
        let mut profiles: Vec<String> = Vec::new();
        for (_, ce) in &inputs {
            profiles.push(ce.profile_id.clone());
            if let CustomerPayload::Merged(m) = &ce.payload {
                profiles.push(m.loser.clone());
            }
        }
        profiles.sort();
        profiles.dedup();
        let mut pending = self.load(&profiles).await?;
        let now = now_ms();
        let dedup_window_ms = e.config.identity.dedup_window_secs.saturating_mul(1000);
        let mut losers = Vec::new();
        let mut forgets: Vec<(Vec<String>, String)> = Vec::new();
        let mut forgotten: HashSet<String> = HashSet::new();
        for (offset, ce) in inputs {
            if forgotten.contains(&ce.profile_id) {
                continue;
            }
            let Some(p) = pending.get(&ce.profile_id) else {
                continue;
            };
            if offset <= p.record.offset {
                continue; // applied before a crash or rebalance
            }
            if let Some(survivor) = p.record.merged_into.clone() {
                extra.push(self.forward(&ce, &survivor)?);
                continue;
            }
            match &ce.payload {
                CustomerPayload::Event(event) if event.event_type == FORGET_EVENT => {
                    let all = profiles_to_forget(&ce.profile_id, event);
                    for profile in &all {
                        pending.remove(profile);
                        forgotten.insert(profile.clone());
                    }
                    forgets.push((all, event.event_id.clone()));
                }
                CustomerPayload::Event(event) => {
                    if let Some(p) = pending.get_mut(&ce.profile_id)
                        && !p
                            .record
                            .recent
                            .first_time(&event.event_id, now, dedup_window_ms)
                    {
                        e.metrics.duplicates.inc();
                        continue;
                    }
                    // The stitched identifiers are the normalised ones (E.164 phones,
                    // lower-cased emails): addresses come from them.
                    let mut event = event.clone();
                    if !ce.identifiers.is_empty() {
                        event.identifiers = ce.identifiers.clone();
                    }
                    let latency_from = event.occurred_at;
                    self.apply_input(
                        &catalog,
                        &mut pending,
                        &ce.profile_id,
                        &Input::Event(event),
                        now,
                        latency_from,
                        Some(offset),
                    );
                }
                CustomerPayload::Merged(m) => {
                    let (loser, loser_recent) = pending
                        .get(&m.loser)
                        .map(|l| (l.record.customer.clone(), l.record.recent.clone()))
                        .unwrap_or_default();
                    if let Some(p) = pending.get_mut(&ce.profile_id) {
                        p.record.recent.absorb(&loser_recent);
                        let (took, ended): (Vec<String>, Vec<String>) = loser
                            .instances
                            .keys()
                            .cloned()
                            .partition(|j| !p.record.customer.instances.contains_key(j));
                        let absorbed = &mut p.record.absorbed;
                        if !absorbed.iter().any(|a| a.profile == m.loser) {
                            absorbed.push(Absorbed {
                                profile: m.loser.clone(),
                                at: now,
                                took,
                                ended,
                            });
                            let over = absorbed.len().saturating_sub(MAX_ABSORBED);
                            absorbed.drain(..over);
                        }
                        let survivor = std::mem::take(&mut p.record.customer);
                        let (mut folded, effects) = fold(survivor, loser, now);
                        folded.profile.id = ce.profile_id.clone();
                        p.record.customer = folded;
                        for eff in effects {
                            match eff {
                                Effect::ScheduleTimer { journey, at } => {
                                    p.timers.push((journey, at))
                                }
                                // The loser's instances that end here: on the loser's funnel.
                                Effect::Transition(t) => {
                                    push_transition(&e.metrics, p, &m.loser, t, Some(offset))
                                }
                                Effect::Send(_) | Effect::CancelTimer { .. } => {}
                            }
                        }
                        p.record.offset = offset;
                        p.changed = true;
                    }
                    losers.push((m.loser.clone(), m.survivor.clone()));
                }
            }
        }
        for (profiles, request) in forgets {
            extra.push(self.forget(&profiles, &request).await?);
        }
        // The losers are marked first (the batch's in one round trip), so their own
        // partitions stop firing their timers and forward their late records before the
        // survivors take their instances over. A crash in between replays the merge records,
        // which fold again from the losers' state.
        if !losers.is_empty() {
            until_ok(
                "mark merged",
                &self.stop,
                e.metrics.store_errors.with_label_values(&["mark_merged"]),
                || e.store.mark_merged(&losers),
            )
            .await?;
        }
        self.commit(
            pending,
            extra,
            batch.last().map(Message::offset),
            Vec::new(),
        )
        .await?;
        for reason in dead {
            e.metrics.dead_letters.with_label_values(&[reason]).inc();
        }
        Ok(())
    }

    async fn tick(&mut self) -> Result<(), Stopped> {
        let e = self.shared.clone();
        let now = now_ms();
        let due = until_ok(
            "due timers",
            &self.stop,
            e.metrics.store_errors.with_label_values(&["due_timers"]),
            || e.store.due_timers(self.partition, now, TIMERS_PER_TICK),
        )
        .await?;
        if due.is_empty() {
            self.clear_published().await?;
        } else {
            let catalog = e.catalog.borrow().clone();
            // Per profile, timers due at the same instant fire highest priority first, so the
            // journey that matters most gets the cap's room (as on events, and in simulate).
            let mut order: Vec<&DueTimer> = due.iter().collect();
            order.sort_by(|a, b| {
                a.profile.cmp(&b.profile).then_with(|| {
                    (catalog.journeys).timer_order((a.due, &a.journey), (b.due, &b.journey))
                })
            });
            let mut profiles: Vec<String> = due.iter().map(|t| t.profile.clone()).collect();
            profiles.sort();
            profiles.dedup();
            let mut pending = self.load(&profiles).await?;
            for DueTimer {
                profile,
                journey,
                due: at,
            } in order
            {
                e.metrics.timers_fired.inc();
                e.metrics
                    .timer_lag
                    .observe((now - at).max(0) as f64 / 1000.0);
                match pending.get(profile) {
                    // Forgotten, or never stored: nothing to wake up.
                    Some(p) if !p.found => continue,
                    // The instance moved to the survivor with its own timer.
                    Some(p) if p.record.merged_into.is_some() => continue,
                    _ => {}
                }
                self.apply_input(
                    &catalog,
                    &mut pending,
                    profile,
                    &Input::Timer {
                        journey: journey.clone(),
                        due: *at,
                    },
                    now,
                    *at,
                    None,
                );
            }
            // The fired timers leave the shard with those the batch cancelled.
            self.commit(pending, Vec::new(), None, due).await?;
        }
        if let Ok(n) = e.store.pending_timers(self.partition).await {
            e.metrics
                .timers_pending
                .with_label_values(&[&self.partition.to_string()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Ok(())
    }

    /// Clears the outboxes already published, so the next owner does not publish them again,
    /// and drops this partition's pending-timers gauge: its next owner reports it.
    async fn finish(&mut self) {
        let _ = self.clear_published().await;
        let _ = self
            .shared
            .metrics
            .timers_pending
            .remove_label_values(&[&self.partition.to_string()]);
    }
}

impl<R: SchemaResolver + 'static, S: StateStore> EnginePartition<R, S> {
    async fn load(&self, profiles: &[String]) -> Result<HashMap<String, Changing>, Stopped> {
        let e = &self.shared;
        let loaded = until_ok(
            "load profiles",
            &self.stop,
            e.metrics.store_errors.with_label_values(&["load"]),
            || e.store.load(profiles),
        )
        .await?;
        Ok(profiles
            .iter()
            .zip(loaded)
            .map(|(id, loaded)| {
                let found = loaded.is_some();
                let record = loaded.map(|(r, _)| r).unwrap_or_else(|| Record {
                    customer: Customer {
                        profile: Profile {
                            id: id.clone(),
                            ..Profile::default()
                        },
                        ..Customer::default()
                    },
                    offset: -1,
                    ..Record::default()
                });
                (
                    id.clone(),
                    Changing {
                        record,
                        outbox: Vec::new(),
                        cancelled: Vec::new(),
                        timers: Vec::new(),
                        changed: false,
                        found,
                    },
                )
            })
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_input(
        &self,
        catalog: &Catalog,
        pending: &mut HashMap<String, Changing>,
        profile: &str,
        input: &Input,
        now: i64,
        latency_from: i64,
        offset: Option<i64>,
    ) {
        let Some(p) = pending.get_mut(profile) else {
            return;
        };
        let customer = std::mem::take(&mut p.record.customer);
        let (customer, effects) = apply(&catalog.journeys, &catalog.policies, customer, input, now);
        p.record.customer = customer;
        if let Some(o) = offset {
            p.record.offset = o;
        }
        p.changed = true;
        let m = &self.shared.metrics;
        for effect in effects {
            match effect {
                Effect::Send(cmd) => {
                    m.commands.with_label_values(&[cmd.channel.as_str()]).inc();
                    m.latency
                        .with_label_values(&[cmd.channel.as_str()])
                        .observe((now - latency_from).max(0) as f64 / 1000.0);
                    p.outbox.push(Outgoing::Command(*cmd));
                }
                Effect::Transition(t) => push_transition(m, p, profile, t, offset),
                Effect::ScheduleTimer { journey, at } => p.timers.push((journey, at)),
                Effect::CancelTimer { journey, at } => p.cancelled.push((journey, at)),
            }
        }
    }

    /// Saves every changed profile (clearing the outboxes published before), publishes the
    /// outboxes (and `extra`); the next save clears them. Then `fired` timers and those the
    /// batch cancelled leave the shard, in one round trip.
    async fn commit(
        &mut self,
        pending: HashMap<String, Changing>,
        extra: Vec<OutRecord>,
        consumed: Option<i64>,
        fired: Vec<DueTimer>,
    ) -> Result<(), Stopped> {
        let e = &self.shared;
        let mut done = fired;
        let writes: Vec<Write> = pending
            .into_iter()
            .filter(|(_, p)| p.changed)
            .map(|(profile, mut p)| {
                // Unless the batch set the same timer again (a member is profile, journey, due).
                for (journey, due) in std::mem::take(&mut p.cancelled) {
                    if !p.timers.iter().any(|(j, at)| *j == journey && *at == due) {
                        done.push(DueTimer {
                            profile: profile.clone(),
                            journey,
                            due,
                        });
                    }
                }
                (profile, p)
            })
            .map(|(profile, p)| Write {
                profile,
                partition: self.partition,
                epoch: self.epoch,
                record: p.record,
                outbox: p.outbox,
                timers: p.timers,
            })
            .collect();
        let saved = until_ok(
            "save profiles",
            &self.stop,
            e.metrics.store_errors.with_label_values(&["save"]),
            || e.store.save(self.partition, &self.published, &writes),
        )
        .await?;
        self.published.clear();
        if saved.contains(&Saved::Fenced) {
            e.metrics.fenced.inc();
            warn!(
                partition = self.partition,
                epoch = self.epoch,
                "fenced: a newer owner wrote this partition; stopping"
            );
            self.stop.cancel();
            return Err(Stopped);
        }
        let mut records = extra;
        let mut with_outbox = Vec::new();
        for w in &writes {
            if !w.outbox.is_empty() {
                with_outbox.push(w.profile.clone());
                for o in &w.outbox {
                    records.push(self.encode(o)?);
                }
            }
        }
        self.delivery
            .deliver(&self.publisher, &records, consumed, &self.stop)
            .await?;
        self.published = with_outbox;
        if !done.is_empty() {
            until_ok(
                "remove timers",
                &self.stop,
                e.metrics.store_errors.with_label_values(&["remove_timers"]),
                || e.store.remove_timers(self.partition, &done),
            )
            .await?;
        }
        Ok(())
    }

    /// Clears the outboxes published since the last save.
    async fn clear_published(&mut self) -> Result<(), Stopped> {
        if self.published.is_empty() {
            return Ok(());
        }
        let e = &self.shared;
        until_ok(
            "clear outbox",
            &self.stop,
            e.metrics.store_errors.with_label_values(&["clear_outbox"]),
            || e.store.clear_outbox(self.partition, &self.published),
        )
        .await?;
        self.published.clear();
        Ok(())
    }

    /// Deletes the state of `profiles` (a forget request's profile and those merged into it)
    /// and returns the `profile.forgotten` transition to publish. Idempotent: a replayed
    /// request deletes nothing more and repeats the same transition id.
    async fn forget(&self, profiles: &[String], request: &str) -> Result<OutRecord, Stopped> {
        let e = &self.shared;
        until_ok(
            "forget",
            &self.stop,
            e.metrics.store_errors.with_label_values(&["forget"]),
            || e.store.forget(self.partition, profiles),
        )
        .await?;
        let profile = profiles.first().cloned().unwrap_or_default();
        let kind = TransitionKind::Forgotten.as_str();
        e.metrics.transitions.with_label_values(&["", kind]).inc();
        info!(
            partition = self.partition,
            profiles = profiles.len(),
            "profile forgotten"
        );
        let transition_id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{profile}|forgotten|{request}").as_bytes(),
        )
        .to_string();
        self.encode(&Outgoing::Transition(JourneyTransition {
            transition_id,
            profile_id: profile,
            journey: String::new(),
            version: 0,
            kind: TransitionKind::Forgotten,
            step: None,
            reason: Some(format!("erasure of {} profile(s)", profiles.len())),
            trigger: request.to_owned(),
            at: now_ms(),
        }))
    }

    /// After a crash: publish what was saved but not yet published.
    async fn republish_outboxes(&mut self) -> Result<(), Stopped> {
        let e = self.shared.clone();
        let profiles = until_ok(
            "pending outboxes",
            &self.stop,
            e.metrics
                .store_errors
                .with_label_values(&["pending_outboxes"]),
            || e.store.pending_outboxes(self.partition),
        )
        .await?;
        if profiles.is_empty() {
            return Ok(());
        }
        let loaded = until_ok(
            "load outboxes",
            &self.stop,
            e.metrics.store_errors.with_label_values(&["load"]),
            || e.store.load(&profiles),
        )
        .await?;
        let mut records = Vec::new();
        for (_, outbox) in loaded.into_iter().flatten() {
            for o in &outbox {
                records.push(self.encode(o)?);
            }
        }
        info!(
            partition = self.partition,
            profiles = profiles.len(),
            records = records.len(),
            "republishing outboxes"
        );
        self.delivery
            .deliver(&self.publisher, &records, None, &self.stop)
            .await?;
        until_ok(
            "clear outbox",
            &self.stop,
            e.metrics.store_errors.with_label_values(&["clear_outbox"]),
            || e.store.clear_outbox(self.partition, &profiles),
        )
        .await
    }

    fn encode(&self, o: &Outgoing) -> Result<OutRecord, Stopped> {
        let e = &self.shared;
        let t = &e.config.topics;
        let framing = e.config.schemas.framing;
        let (topic, key, payload) = match o {
            Outgoing::Command(c) => (
                format!("{}{}", t.commands_prefix, c.channel),
                c.profile_id.clone(),
                e.codec.encode(c, framing),
            ),
            Outgoing::Transition(x) => (
                t.transitions.clone(),
                x.profile_id.clone(),
                e.codec.encode(x, framing),
            ),
        };
        let payload = payload.map_err(|err| {
            warn!(error = %err, "cannot encode an outgoing record");
            Stopped
        })?;
        Ok(OutRecord {
            topic,
            key: Some(key.into_bytes()),
            payload,
            headers: Vec::new(),
        })
    }

    /// A customer event for a merged profile, sent on to its survivor.
    fn forward(&self, ce: &CustomerEvent, survivor: &str) -> Result<OutRecord, Stopped> {
        let e = &self.shared;
        let mut moved = ce.clone();
        moved.profile_id = survivor.to_owned();
        if let CustomerPayload::Merged(m) = &mut moved.payload {
            m.survivor = survivor.to_owned();
        }
        let payload = e
            .codec
            .encode(&moved, e.config.schemas.framing)
            .map_err(|_| Stopped)?;
        Ok(OutRecord {
            topic: e.config.topics.customer_events.clone(),
            key: Some(survivor.as_bytes().to_vec()),
            payload,
            headers: Vec::new(),
        })
    }
}

/// Counts a journey transition and puts it in `p`'s outbox, recorded against `profile`.
fn push_transition(
    m: &Metrics,
    p: &mut Changing,
    profile: &str,
    t: switchboard_journey::Transition,
    offset: Option<i64>,
) {
    let kind = t.kind.as_str();
    debug!(
        journey = t.journey.as_str(),
        step = t.step.as_deref().unwrap_or(""),
        kind,
        reason = t.reason.as_deref().unwrap_or(""),
        offset,
        "journey transition"
    );
    m.transitions
        .with_label_values(&[t.journey.as_str(), kind])
        .inc();
    if t.reason.as_deref() == Some("var_error") {
        warn!(
            journey = t.journey.as_str(),
            step = t.step.as_deref().unwrap_or(""),
            "a send's var failed to evaluate (an attribute the event lacks?): send suppressed"
        );
    }
    // A holdout is a send withheld on purpose, so it counts as a suppression.
    match t.kind {
        TransitionKind::Suppressed => m
            .suppressions
            .with_label_values(&[t.reason.as_deref().unwrap_or("unknown")])
            .inc(),
        TransitionKind::Holdout => m.suppressions.with_label_values(&["holdout"]).inc(),
        _ => {}
    }
    let transition_id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!(
            "{profile}|{}|{}|{kind}|{}|{}",
            t.journey,
            t.version,
            t.step.as_deref().unwrap_or(""),
            t.trigger
        )
        .as_bytes(),
    )
    .to_string();
    p.outbox.push(Outgoing::Transition(JourneyTransition {
        transition_id,
        profile_id: profile.to_owned(),
        journey: t.journey,
        version: i32::try_from(t.version).unwrap_or(i32::MAX),
        kind: t.kind,
        step: t.step,
        reason: t.reason,
        trigger: t.trigger,
        at: t.at,
    }));
}

/// The topic the engine consumes.
pub fn topics(config: &Config) -> Vec<String> {
    vec![config.topics.customer_events.clone()]
}

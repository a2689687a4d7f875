//! The engine service: for each partition of `customer.events`, load → plan → persist →
//! publish. The plan is [`switchboard_engine::Planner::plan`], pure; this module only carries
//! it out: it loads the records a batch touches, marks merges, erases forgotten profiles,
//! then saves and publishes through the outbox ([`outbox`]) and lets the offset move on.
//! Timers of the partition fire through the same path.
//!
//! Failures are of four kinds: a store, broker or schema registry away is retried with
//! backoff where it happened (the partition never stalls on it); bad input goes to the
//! dead-letter topic; a newer owner's write fences this one ([`Stopped::Fenced`]); and the
//! partition's end ([`Stopped::Shutdown`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use rdkafka::message::{Message, OwnedMessage};
use serde::Serialize;
use switchboard_codec::{AvroRecord, Codec, CodecError, CustomerEvent, SchemaResolver};
use switchboard_config::Config;
use switchboard_engine::{Inputs, Plan, Planner, StateStore};
use switchboard_identity::ProfileId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use switchboard_kafka::{
    Delivery, OutRecord, Publish, Publisher, Stopped, Worker, Workers, dead_letter, unencodable,
    until_ok,
};

use crate::Metrics;
use crate::catalog::Catalog;
use crate::metrics::StoreOperation;

mod optimize;
mod outbox;

pub use optimize::{CHECK_EVERY_MS, Winning};

/// Timers fired per tick and partition, at most.
const TIMERS_PER_TICK: usize = 500;

/// Everything the engine's partitions share.
pub struct Engine<R, S> {
    pub codec: Arc<Codec<R>>,
    pub store: Arc<S>,
    pub catalog: watch::Receiver<Arc<Catalog>>,
    pub config: Arc<Config>,
    pub metrics: Metrics,
    /// Milliseconds since the Unix epoch: [`now_ms`], or a test's clock.
    pub clock: fn() -> i64,
    /// The winners of optimized splits this process knows.
    pub winning: Winning,
}

/// Starts engine partitions.
pub struct EngineWorkers<R, S>(pub Arc<Engine<R, S>>);

/// One owned partition of `customer.events`.
pub struct EnginePartition<R, S, P> {
    shared: Arc<Engine<R, S>>,
    publisher: P,
    delivery: Delivery,
    partition: i32,
    epoch: u64,
    stop: CancellationToken,
    /// Profiles whose outboxes are published but not yet cleared: cleared by the next save
    /// (in its round trip), an idle tick, or the partition's end.
    published: Vec<ProfileId>,
}

impl<R: SchemaResolver + 'static, S: StateStore> Workers for EngineWorkers<R, S> {
    type Worker = EnginePartition<R, S, Publisher>;

    async fn start(
        &self,
        _topic: &str,
        partition: i32,
        publisher: Publisher,
        stop: CancellationToken,
    ) -> Result<Self::Worker, Stopped> {
        EnginePartition::start(self.0.clone(), partition, publisher, stop).await
    }
}

impl<R: SchemaResolver + 'static, S: StateStore, P: Publish> Worker for EnginePartition<R, S, P> {
    async fn process(&mut self, batch: Vec<OwnedMessage>) -> Result<(), Stopped> {
        let e = self.shared.clone();
        e.metrics.consumed(&batch);
        let mut events = Vec::with_capacity(batch.len());
        let mut extra = Vec::new();
        // Counted once the batch is durable, not per attempt (a replay would count again).
        let mut dead: Vec<&'static str> = Vec::new();
        let dead_letters = &e.config.topics.dead_letters;
        for msg in &batch {
            let Some(bytes) = msg.payload() else {
                dead.push("empty");
                extra.push(dead_letter(dead_letters, msg, "empty", "no value"));
                continue;
            };
            match self.decode(bytes).await? {
                Ok(ce) => events.push((msg.offset(), ce)),
                Err(err) => {
                    dead.push(err.reason());
                    extra.push(dead_letter(
                        dead_letters,
                        msg,
                        err.reason(),
                        &err.to_string(),
                    ));
                }
            }
        }
        let consumed = batch.last().map(Message::offset);
        self.carry_out(Inputs::Events(events), extra, consumed, &mut dead)
            .await?;
        for reason in dead {
            e.metrics.dead_letters.with_label_values(&[reason]).inc();
        }
        Ok(())
    }

    async fn tick(&mut self) -> Result<(), Stopped> {
        let e = self.shared.clone();
        let now = (e.clock)();
        let due = until_ok(
            "due timers",
            &self.stop,
            e.metrics.store_error(StoreOperation::DueTimers),
            || e.store.due_timers(self.partition, now, TIMERS_PER_TICK),
        )
        .await?;
        if due.is_empty() {
            self.clear_published().await?;
        } else {
            let mut dead = Vec::new();
            self.carry_out(Inputs::Timers(due), Vec::new(), None, &mut dead)
                .await?;
            for reason in dead {
                e.metrics.dead_letters.with_label_values(&[reason]).inc();
            }
        }
        self.check_winners(now).await?;
        if let Ok(n) = e.store.pending_timers(self.partition).await {
            e.metrics
                .timers_pending
                .with_label_values(&[&self.partition.to_string()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Ok(())
    }

    /// Clears the outboxes already published, so the next owner does not publish them again,
    /// adds the optimized splits' pending counts, and drops this partition's pending-timers
    /// gauge: its next owner reports it.
    async fn finish(&mut self) {
        let _ = self.clear_published().await;
        // The counts of optimized splits kept since the last check are not lost on a stop.
        let _ = self.shared.winning.flush(&*self.shared.store).await;
        let _ = self
            .shared
            .metrics
            .timers_pending
            .remove_label_values(&[&self.partition.to_string()]);
    }
}

impl<R: SchemaResolver + 'static, S: StateStore, P: Publish> EnginePartition<R, S, P> {
    /// Claims `partition` (a new fencing epoch) and publishes what an earlier owner saved but
    /// did not publish.
    pub async fn start(
        shared: Arc<Engine<R, S>>,
        partition: i32,
        publisher: P,
        stop: CancellationToken,
    ) -> Result<Self, Stopped> {
        let epoch = until_ok(
            "claim partition",
            &stop,
            shared.metrics.store_error(StoreOperation::ClaimPartition),
            || shared.store.claim_partition(partition),
        )
        .await?;
        info!(partition, epoch, "engine owns partition");
        let mut p = EnginePartition {
            delivery: Delivery::new(&shared.config.topics.dead_letters, &shared.metrics.kafka),
            shared,
            publisher,
            partition,
            epoch,
            stop,
            published: Vec::new(),
        };
        p.republish_outboxes().await?;
        Ok(p)
    }

    /// When a check of the optimized splits is due (one partition of the process makes it),
    /// adopts the winners settled and publishes the `winner` transitions of those it settles.
    /// A store away skips this check; the next period tries again.
    async fn check_winners(&mut self, now: i64) -> Result<(), Stopped> {
        let e = self.shared.clone();
        if !e.winning.due(now) {
            return Ok(());
        }
        let catalog = e.catalog.borrow().clone();
        if let Err(err) = e.winning.flush(&*e.store).await {
            warn!(error = %err, "cannot add the optimized splits' counts; next period tries again");
            e.metrics.store_error(StoreOperation::CountSplits).inc();
        }
        let announced = match e.winning.check(&*e.store, &catalog.journeys, now).await {
            Ok(announced) => announced,
            Err(err) => {
                warn!(error = %err, "cannot check the optimized splits; next period tries again");
                e.metrics.store_error(StoreOperation::CheckSplits).inc();
                return Ok(());
            }
        };
        for t in &announced {
            (e.metrics.transitions)
                .with_label_values(&[&t.journey, t.kind.as_str()])
                .inc();
        }
        let mut dead = Vec::new();
        let records: Vec<OutRecord> = (announced.iter())
            .map(|t| self.encode(&e.config.topics.transitions, &t.journey, t, &mut dead))
            .collect();
        (self.delivery)
            .deliver(&self.publisher, &records, None, &self.stop)
            .await?;
        for reason in dead {
            e.metrics.dead_letters.with_label_values(&[reason]).inc();
        }
        Ok(())
    }

    /// A record of `customer.events`, or why it cannot be read. While the schema registry is
    /// away, this waits for it (backing off) rather than give up the batch.
    async fn decode(&self, bytes: &[u8]) -> Result<Result<CustomerEvent, CodecError>, Stopped> {
        let e = &self.shared;
        until_ok(
            "decode (schema registry)",
            &self.stop,
            e.metrics.registry_errors.clone(),
            || async {
                match e.codec.decode::<CustomerEvent>(bytes).await {
                    Err(err) if err.is_retryable() => Err(err),
                    read => Ok(read),
                }
            },
        )
        .await
    }

    /// Load → plan → persist → publish.
    async fn carry_out(
        &mut self,
        inputs: Inputs,
        mut extra: Vec<OutRecord>,
        consumed: Option<i64>,
        dead: &mut Vec<&'static str>,
    ) -> Result<(), Stopped> {
        let e = self.shared.clone();
        let profiles = inputs.profiles();
        let loaded = until_ok(
            "load profiles",
            &self.stop,
            e.metrics.store_error(StoreOperation::Load),
            || e.store.load(&profiles),
        )
        .await?;
        let stored: BTreeMap<ProfileId, _> = profiles
            .into_iter()
            .zip(loaded)
            .filter_map(|(id, loaded)| loaded.map(|(record, _)| (id, record)))
            .collect();
        let catalog = e.catalog.borrow().clone();
        let planner = Planner::new(
            &catalog.journeys,
            &catalog.policies,
            e.config.identity.dedup_window_secs.saturating_mul(1000),
        );
        let winners = e.winning.current();
        let planner = planner.with_winners(&winners);
        let now = (e.clock)();
        let plan = planner.plan(stored, inputs, now);
        let Plan {
            merges,
            forgets,
            forwards,
            writes,
            done_timers,
            ..
        } = &plan;
        let topics = &e.config.topics;
        for forward in forwards {
            extra.push(self.encode(&topics.customer_events, &forward.profile_id, forward, dead));
        }
        for forget in forgets {
            until_ok(
                "forget",
                &self.stop,
                e.metrics.store_error(StoreOperation::Forget),
                || e.store.forget(self.partition, &forget.profiles),
            )
            .await?;
            info!(
                partition = self.partition,
                profiles = forget.profiles.len(),
                "profile forgotten"
            );
            let t = &forget.transition;
            extra.push(self.encode(&topics.transitions, &t.profile_id, t, dead));
        }
        // The losers are marked first (the batch's in one round trip), so their own
        // partitions stop firing their timers and forward their late records before the
        // survivors take their instances over. A crash in between replays the merge records,
        // which fold again from the losers' state.
        if !merges.is_empty() {
            until_ok(
                "mark merged",
                &self.stop,
                e.metrics.store_error(StoreOperation::MarkMerged),
                || e.store.mark_merged(merges),
            )
            .await?;
        }
        self.commit(writes, extra, consumed, done_timers, dead)
            .await?;
        e.winning.add(switchboard_engine::optimize::counted(
            &plan,
            &catalog.journeys,
        ));
        e.metrics.planned(&plan, catalog.counters(&e.metrics));
        Ok(())
    }

    /// `value` for `topic`, keyed by `key`. A value its schema cannot carry goes to the
    /// dead-letter topic as JSON, with the reason: nothing is lost and the partition goes on.
    fn encode<T: AvroRecord + Serialize>(
        &self,
        topic: &str,
        key: &str,
        value: &T,
        dead: &mut Vec<&'static str>,
    ) -> OutRecord {
        let e = &self.shared;
        match e.codec.encode(value, e.config.schemas.framing) {
            Ok(payload) => OutRecord {
                topic: topic.to_owned(),
                key: Some(key.as_bytes().to_vec()),
                payload,
                headers: Vec::new(),
            },
            Err(err) => {
                warn!(topic, error = %err, "cannot encode an outgoing record: dead-lettered");
                dead.push("unencodable");
                unencodable(&e.config.topics.dead_letters, topic, key, value, &err)
            }
        }
    }
}

/// The topic the engine consumes.
pub fn topics(config: &Config) -> Vec<String> {
    vec![config.topics.customer_events.clone()]
}

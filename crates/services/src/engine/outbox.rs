//! The outbox protocol, all of it. A batch's changes reach Kafka exactly as they were saved,
//! at least once, whatever crashes in between:
//!
//! 1. **save**: each changed profile's record is written with its outbox (the commands and
//!    transitions to publish) and its timers, in one atomic step per profile, fenced by the
//!    partition's epoch; the same round trip clears the outboxes published before;
//! 2. **publish** the outboxes (with the batch's other records), retrying what the broker
//!    could not take and dead-lettering what it refuses; only then does the offset move on;
//! 3. **clear**: the outboxes just published are cleared by the next save, an idle tick or
//!    the partition's end, whichever comes first;
//! 4. **republish** on start: a new owner publishes the outboxes its predecessor saved but
//!    did not clear (published or not: readers drop repeats by id).
//!
//! Timers that fired or were cancelled leave the shard once the save is done.

use switchboard_codec::SchemaResolver;
use switchboard_engine::{DueTimer, Outgoing, Saved, StateStore, Write};
use switchboard_kafka::{OutRecord, Publish, Stopped, until_ok};
use tracing::{info, warn};

use super::EnginePartition;
use crate::metrics::StoreOperation;

impl<R: SchemaResolver + 'static, S: StateStore, P: Publish> EnginePartition<R, S, P> {
    /// Saves every write (clearing the outboxes published before), publishes the outboxes
    /// (and `extra`); the next save clears them. Then `done` timers leave the shard.
    pub(super) async fn commit(
        &mut self,
        writes: &[Write],
        extra: Vec<OutRecord>,
        consumed: Option<i64>,
        done: &[DueTimer],
        dead: &mut Vec<&'static str>,
    ) -> Result<(), Stopped> {
        let e = self.shared.clone();
        let saved = until_ok(
            "save profiles",
            &self.stop,
            e.metrics.store_error(StoreOperation::Save),
            || {
                e.store
                    .save(self.partition, self.epoch, &self.published, writes)
            },
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
            return Err(Stopped::Fenced);
        }
        let mut records = extra;
        let mut with_outbox = Vec::new();
        for w in writes.iter().filter(|w| !w.outbox.is_empty()) {
            with_outbox.push(w.profile.clone());
            for o in &w.outbox {
                records.push(self.outgoing(o, dead));
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
                e.metrics.store_error(StoreOperation::RemoveTimers),
                || e.store.remove_timers(self.partition, done),
            )
            .await?;
        }
        Ok(())
    }

    /// Clears the outboxes published since the last save.
    pub(super) async fn clear_published(&mut self) -> Result<(), Stopped> {
        if self.published.is_empty() {
            return Ok(());
        }
        let e = &self.shared;
        until_ok(
            "clear outbox",
            &self.stop,
            e.metrics.store_error(StoreOperation::ClearOutbox),
            || e.store.clear_outbox(self.partition, &self.published),
        )
        .await?;
        self.published.clear();
        Ok(())
    }

    /// After a crash: publish what was saved but not yet published.
    pub(super) async fn republish_outboxes(&mut self) -> Result<(), Stopped> {
        let e = self.shared.clone();
        let profiles = until_ok(
            "pending outboxes",
            &self.stop,
            e.metrics.store_error(StoreOperation::PendingOutboxes),
            || e.store.pending_outboxes(self.partition),
        )
        .await?;
        if profiles.is_empty() {
            return Ok(());
        }
        let loaded = until_ok(
            "load outboxes",
            &self.stop,
            e.metrics.store_error(StoreOperation::Load),
            || e.store.load(&profiles),
        )
        .await?;
        let mut dead = Vec::new();
        let mut records = Vec::new();
        for (_, outbox) in loaded.into_iter().flatten() {
            for o in &outbox {
                records.push(self.outgoing(o, &mut dead));
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
        for reason in dead {
            e.metrics.dead_letters.with_label_values(&[reason]).inc();
        }
        until_ok(
            "clear outbox",
            &self.stop,
            e.metrics.store_error(StoreOperation::ClearOutbox),
            || e.store.clear_outbox(self.partition, &profiles),
        )
        .await
    }

    /// An outbox record, for its topic.
    fn outgoing(&self, o: &Outgoing, dead: &mut Vec<&'static str>) -> OutRecord {
        let t = &self.shared.config.topics;
        match o {
            Outgoing::Command(c) => {
                let topic = format!("{}{}", t.commands_prefix, c.channel);
                self.encode(&topic, &c.profile_id, c, dead)
            }
            Outgoing::Transition(x) => self.encode(&t.transitions, &x.profile_id, x, dead),
        }
    }
}

//! The engine's storage, split by concern: profile records, durable timers, outboxes and
//! partition epochs, and the counts of optimized splits. Redis (`switchboard-redis`) and process memory ([`crate::MemoryStateStore`])
//! implement them all; the engine service needs a [`StateStore`], which is all of them together.
//!
//! A profile's record is written in one atomic step (one script on one key in Redis), so the
//! state change, the position and the outbox land together or not at all.

use std::future::Future;

use switchboard_identity::ProfileId;

use crate::optimize::{Counted, Tally};
use crate::plan::Write;
use crate::record::{Outgoing, Record};

/// The answer to a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Done,
    /// A newer owner of the partition wrote this profile: this writer is a zombie.
    Fenced,
}

/// A due timer: the profile, the journey and when it was due.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DueTimer {
    pub profile: ProfileId,
    pub journey: String,
    pub due: i64,
}

/// A store failure: retried with backoff, never skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state store: {0}")]
pub struct StateError(pub String);

/// A profile's record with its unpublished outbox, if the profile is stored.
pub type Loaded = Option<(Record, Vec<Outgoing>)>;

/// Profile records (with their outboxes, written together).
pub trait Records: Send + Sync + 'static {
    /// The records of `profiles` (missing ones are `None`), with their pending outboxes.
    fn load(
        &self,
        profiles: &[ProfileId],
    ) -> impl Future<Output = Result<Vec<Loaded>, StateError>> + Send;

    /// Clears the outboxes of `published` (profiles of `partition` whose outboxes were
    /// published since the last save), then writes each profile atomically (record, outbox,
    /// timers), refusing a writer whose `epoch` is older than the last. On Redis, one round
    /// trip.
    fn save(
        &self,
        partition: i32,
        epoch: u64,
        published: &[ProfileId],
        writes: &[Write],
    ) -> impl Future<Output = Result<Vec<Saved>, StateError>> + Send;

    /// Marks each `(loser, survivor)`'s loser as merged into its survivor, whoever owns the
    /// loser's partition. On Redis, one round trip.
    fn mark_merged(
        &self,
        merges: &[(ProfileId, ProfileId)],
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Data protection: deletes the records and outboxes of `profiles`, and their timers in
    /// `partition`'s shard. (Their timers in other shards fire onto no record and are
    /// dropped.)
    fn forget(
        &self,
        partition: i32,
        profiles: &[ProfileId],
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}

/// Durable timers, sharded by partition.
pub trait Timers: Send + Sync + 'static {
    /// Timers of a partition due at `now`, oldest first, at most `limit`.
    fn due_timers(
        &self,
        partition: i32,
        now: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DueTimer>, StateError>> + Send;

    /// Removes fired and cancelled timers from the partition's shard.
    fn remove_timers(
        &self,
        partition: i32,
        timers: &[DueTimer],
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Timers pending in a partition's shard.
    fn pending_timers(
        &self,
        partition: i32,
    ) -> impl Future<Output = Result<u64, StateError>> + Send;
}

/// The outbox index: which profiles of a partition have records saved but not yet cleared.
pub trait Outboxes: Send + Sync + 'static {
    /// Clears the outboxes of `profiles` once their records are published.
    fn clear_outbox(
        &self,
        partition: i32,
        profiles: &[ProfileId],
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Profiles of a partition with an outbox still to publish (after a crash).
    fn pending_outboxes(
        &self,
        partition: i32,
    ) -> impl Future<Output = Result<Vec<ProfileId>, StateError>> + Send;
}

/// Partition ownership, fenced by epoch.
pub trait Epochs: Send + Sync + 'static {
    /// Takes ownership of a partition: a new epoch, greater than every earlier one.
    fn claim_partition(
        &self,
        partition: i32,
    ) -> impl Future<Output = Result<u64, StateError>> + Send;
}

/// The counts of optimized splits, shared by every engine process ([`crate::optimize`]).
pub trait Splits: Send + Sync + 'static {
    /// Adds a batch's counts, once the batch is saved.
    fn count(&self, counted: &[Counted]) -> impl Future<Output = Result<(), StateError>> + Send;

    /// `journey`'s counts and settled winner (empty when nothing was counted).
    fn tally(&self, journey: &str) -> impl Future<Output = Result<Tally, StateError>> + Send;

    /// Settles `arm` as `journey`'s winner unless one is settled already. Returns the winner
    /// that stands, and whether this call settled it.
    fn settle(
        &self,
        journey: &str,
        arm: &str,
    ) -> impl Future<Output = Result<(String, bool), StateError>> + Send;
}

/// Everything the engine service stores.
pub trait StateStore: Records + Timers + Outboxes + Epochs + Splits {}

impl<T: Records + Timers + Outboxes + Epochs + Splits> StateStore for T {}

/// The member of a timer in a shard: `profile` and `journey`, its due time the score. An
/// instance waits for one thing at a time, so a journey has one timer per profile: setting it
/// again moves its score, and a timer that fired or was cancelled is removed only while its
/// score is still the due it had (a later one set meanwhile stays). Without the due in it a
/// member fits Redis's 48-byte size class instead of the 64: 16 bytes less a timer.
pub fn timer_member(profile: &str, journey: &str) -> String {
    format!("{profile}\u{1f}{journey}")
}

/// The member of a timer as releases before 2026-12-05 wrote it, with its due
/// (`profile␟journey␟due`): removed with the timer, so shards written then drain.
pub fn timer_member_with_due(profile: &str, journey: &str, due: i64) -> String {
    format!("{profile}\u{1f}{journey}\u{1f}{due}")
}

/// The timer a shard's member and score name, if it is one (a member with its due in it, as
/// earlier releases wrote them, is read too).
pub fn parse_timer_member(member: &str, score: i64) -> Option<DueTimer> {
    let mut parts = member.split('\u{1f}');
    let profile = ProfileId::from(parts.next()?);
    let journey = parts.next()?.to_owned();
    let due = match parts.next() {
        Some(due) => due.parse().ok()?,
        None => score,
    };
    Some(DueTimer {
        profile,
        journey,
        due,
    })
}

//! The engine's storage port: one record per profile (its customer state, the last applied
//! position, the fencing epoch of its last writer and its outbox), a per-partition outbox
//! index, durable timers sharded by partition, and the partition epochs.
//!
//! A profile's record is written in one atomic step (one script on one key in Redis), so the
//! state change, the position and the outbox land together or not at all.

mod memory;
mod recent;
mod redis;
pub mod stored;

use std::future::Future;

use serde::{Deserialize, Serialize};
use switchboard_codec::{JourneyTransition, SendCommand};
use switchboard_journey::Customer;

pub use memory::MemoryStateStore;
pub use recent::{MAX_RECENT, RecentEvents};
pub use redis::RedisStateStore;

/// What a profile's record holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub customer: Customer,
    /// Offset in `customer.events` of the last input applied (per profile, its partition is
    /// fixed by its key); -1 before any.
    pub offset: i64,
    /// Set when the profile was merged into another: its events are forwarded there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// The event ids applied within the dedup window.
    #[serde(default, skip_serializing_if = "RecentEvents::is_empty")]
    pub recent: RecentEvents,
    /// The profiles merged into this one, oldest merge first (the last
    /// [`MAX_ABSORBED`]), and what became of their journeys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absorbed: Vec<Absorbed>,
}

/// The most merges a record remembers: the identity rules cap merges per profile anyway.
pub const MAX_ABSORBED: usize = 16;

/// A profile merged into this one: when, the journeys whose instances it took over, and those
/// that ended (`exited`, reason `merged`) because this profile was in them already.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absorbed {
    pub profile: String,
    pub at: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub took: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended: Vec<String>,
}

/// Records to publish after a state change: kept in the profile's record until published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outgoing {
    Command(SendCommand),
    Transition(JourneyTransition),
}

/// One atomic write of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub profile: String,
    pub partition: i32,
    pub epoch: u64,
    pub record: Record,
    /// Replaces the profile's outbox when not empty.
    pub outbox: Vec<Outgoing>,
    /// Timers to add to the partition's shard: (profile, journey, due).
    pub timers: Vec<(String, i64)>,
}

/// The answer to a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Done,
    /// A newer owner of the partition wrote this profile: this writer is a zombie.
    Fenced,
}

/// A due timer: the profile, the journey and when it was due.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DueTimer {
    pub profile: String,
    pub journey: String,
    pub due: i64,
}

/// A store failure: retried with backoff, never skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state store: {0}")]
pub struct StateError(pub String);

/// A profile's record with its unpublished outbox, if the profile is stored.
pub type Loaded = Option<(Record, Vec<Outgoing>)>;

/// The engine's storage.
pub trait StateStore: Send + Sync + 'static {
    /// Takes ownership of a partition: a new epoch, greater than every earlier one.
    fn claim_partition(
        &self,
        partition: i32,
    ) -> impl Future<Output = Result<u64, StateError>> + Send;

    /// The records of `profiles` (missing ones are `None`), with their pending outboxes.
    fn load(
        &self,
        profiles: &[String],
    ) -> impl Future<Output = Result<Vec<Loaded>, StateError>> + Send;

    /// Clears the outboxes of `published` (profiles of `partition` whose outboxes were
    /// published since the last save), then writes each profile atomically, refusing writers
    /// with an older epoch than the last. On Redis, one round trip.
    fn save(
        &self,
        partition: i32,
        published: &[String],
        writes: &[Write],
    ) -> impl Future<Output = Result<Vec<Saved>, StateError>> + Send;

    /// Clears the outboxes of `profiles` once their records are published.
    fn clear_outbox(
        &self,
        partition: i32,
        profiles: &[String],
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Profiles of a partition with an outbox still to publish (after a crash).
    fn pending_outboxes(
        &self,
        partition: i32,
    ) -> impl Future<Output = Result<Vec<String>, StateError>> + Send;

    /// Timers of a partition due at `now`, oldest first, at most `limit`.
    fn due_timers(
        &self,
        partition: i32,
        now: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DueTimer>, StateError>> + Send;

    /// Removes fired timers from the partition's shard.
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

    /// Marks each `(loser, survivor)`'s loser as merged into its survivor, whoever owns the
    /// loser's partition. On Redis, one round trip.
    fn mark_merged(
        &self,
        merges: &[(String, String)],
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Data protection: deletes the records and outboxes of `profiles`, and their timers in
    /// `partition`'s shard. (Their timers in other shards fire onto no record and are
    /// dropped.)
    fn forget(
        &self,
        partition: i32,
        profiles: &[String],
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}

/// The member of a timer in a shard: `profile`, `journey` and `due`, so a rescheduled timer is
/// a new member and a stale one is ignored by the interpreter.
pub fn timer_member(profile: &str, journey: &str, due: i64) -> String {
    format!("{profile}\u{1f}{journey}\u{1f}{due}")
}

pub(crate) fn parse_timer_member(member: &str) -> Option<DueTimer> {
    let mut parts = member.split('\u{1f}');
    let profile = parts.next()?.to_owned();
    let journey = parts.next()?.to_owned();
    let due = parts.next()?.parse().ok()?;
    Some(DueTimer {
        profile,
        journey,
        due,
    })
}

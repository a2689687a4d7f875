//! The engine's state in process memory, for the embedded mode.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use switchboard_identity::ProfileId;

use crate::optimize::{Counted, Tally};
use crate::plan::Write;
use crate::ports::{
    DueTimer, Epochs, Loaded, Outboxes, Records, Saved, Splits, StateError, Timers,
};
use crate::record::{Outgoing, Record};

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<ProfileId, (Record, u64, Vec<Outgoing>)>,
    epochs: HashMap<i32, u64>,
    outboxes: HashMap<i32, BTreeSet<ProfileId>>,
    timers: HashMap<i32, Shard>,
    splits: HashMap<String, Tally>,
}

/// A partition's timers as Redis keeps them: one per profile and journey, by due time.
#[derive(Debug, Default)]
struct Shard {
    by_due: BTreeSet<(i64, ProfileId, String)>,
    due_of: HashMap<(ProfileId, String), i64>,
}

impl Shard {
    /// Sets the timer of `profile` and `journey`, moving it if one was set.
    fn set(&mut self, profile: &ProfileId, journey: &str, due: i64) {
        let key = (profile.clone(), journey.to_owned());
        if let Some(old) = self.due_of.insert(key, due) {
            self.by_due
                .remove(&(old, profile.clone(), journey.to_owned()));
        }
        self.by_due
            .insert((due, profile.clone(), journey.to_owned()));
    }

    /// Removes `t` if it is still set for its due.
    fn remove(&mut self, t: &DueTimer) {
        let key = (t.profile.clone(), t.journey.clone());
        if self.due_of.get(&key) == Some(&t.due) {
            self.due_of.remove(&key);
            self.by_due.remove(&(t.due, key.0, key.1));
        }
    }

    fn forget(&mut self, profiles: &[ProfileId]) {
        self.by_due.retain(|(_, p, _)| !profiles.contains(p));
        self.due_of.retain(|(p, _), _| !profiles.contains(p));
    }
}

impl Inner {
    fn clear_outbox(&mut self, partition: i32, profiles: &[ProfileId]) {
        for p in profiles {
            if let Some((_, _, o)) = self.records.get_mut(p) {
                o.clear();
            }
            if let Some(set) = self.outboxes.get_mut(&partition) {
                set.remove(p);
            }
        }
    }
}

/// In-memory [`crate::StateStore`].
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    inner: Mutex<Inner>,
}

impl MemoryStateStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Result<T, StateError> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| StateError("memory store lock poisoned".into()))?;
        Ok(f(&mut g))
    }

    /// Profiles stored, for progress reports.
    pub fn profiles(&self) -> usize {
        self.with(|i| i.records.len()).unwrap_or(0)
    }
}

impl Epochs for MemoryStateStore {
    async fn claim_partition(&self, partition: i32) -> Result<u64, StateError> {
        self.with(|i| {
            let e = i.epochs.entry(partition).or_insert(0);
            *e += 1;
            *e
        })
    }
}

impl Records for MemoryStateStore {
    async fn load(&self, profiles: &[ProfileId]) -> Result<Vec<Loaded>, StateError> {
        self.with(|i| {
            profiles
                .iter()
                .map(|p| i.records.get(p).map(|(r, _, o)| (r.clone(), o.clone())))
                .collect()
        })
    }

    async fn save(
        &self,
        partition: i32,
        epoch: u64,
        published: &[ProfileId],
        writes: &[Write],
    ) -> Result<Vec<Saved>, StateError> {
        self.with(|i| {
            i.clear_outbox(partition, published);
            writes
                .iter()
                .map(|w| {
                    let stored_epoch = i.records.get(&w.profile).map_or(0, |(_, e, _)| *e);
                    if stored_epoch > epoch {
                        return Saved::Fenced;
                    }
                    let outbox = if w.outbox.is_empty() {
                        i.records
                            .get(&w.profile)
                            .map(|(_, _, o)| o.clone())
                            .unwrap_or_default()
                    } else {
                        i.outboxes
                            .entry(partition)
                            .or_default()
                            .insert(w.profile.clone());
                        w.outbox.clone()
                    };
                    for (journey, due) in &w.timers {
                        (i.timers.entry(partition).or_default()).set(&w.profile, journey, *due);
                    }
                    i.records
                        .insert(w.profile.clone(), (w.record.clone(), epoch, outbox));
                    Saved::Done
                })
                .collect()
        })
    }

    async fn mark_merged(&self, merges: &[(ProfileId, ProfileId)]) -> Result<(), StateError> {
        self.with(|i| {
            for (loser, survivor) in merges {
                let entry = i.records.entry(loser.clone()).or_insert_with(|| {
                    (
                        Record {
                            offset: -1,
                            ..Record::default()
                        },
                        0,
                        Vec::new(),
                    )
                });
                entry.0.merged_into = Some(survivor.clone());
            }
        })
    }

    async fn forget(&self, partition: i32, profiles: &[ProfileId]) -> Result<(), StateError> {
        self.with(|i| {
            for p in profiles {
                i.records.remove(p);
                if let Some(set) = i.outboxes.get_mut(&partition) {
                    set.remove(p);
                }
            }
            if let Some(shard) = i.timers.get_mut(&partition) {
                shard.forget(profiles);
            }
        })
    }
}

impl Outboxes for MemoryStateStore {
    async fn clear_outbox(&self, partition: i32, profiles: &[ProfileId]) -> Result<(), StateError> {
        self.with(|i| i.clear_outbox(partition, profiles))
    }

    async fn pending_outboxes(&self, partition: i32) -> Result<Vec<ProfileId>, StateError> {
        self.with(|i| {
            i.outboxes
                .get(&partition)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        })
    }
}

impl Timers for MemoryStateStore {
    async fn due_timers(
        &self,
        partition: i32,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueTimer>, StateError> {
        self.with(|i| {
            i.timers
                .get(&partition)
                .map(|s| {
                    (s.by_due.iter())
                        .take_while(|(due, _, _)| *due <= now)
                        .take(limit)
                        .map(|(due, profile, journey)| DueTimer {
                            profile: profile.clone(),
                            journey: journey.clone(),
                            due: *due,
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    async fn remove_timers(&self, partition: i32, timers: &[DueTimer]) -> Result<(), StateError> {
        self.with(|i| {
            if let Some(s) = i.timers.get_mut(&partition) {
                timers.iter().for_each(|t| s.remove(t));
            }
        })
    }

    async fn pending_timers(&self, partition: i32) -> Result<u64, StateError> {
        self.with(|i| {
            i.timers
                .get(&partition)
                .map_or(0, |s| s.by_due.len() as u64)
        })
    }
}

impl Splits for MemoryStateStore {
    async fn count(&self, counted: &[Counted]) -> Result<(), StateError> {
        self.with(|i| {
            for c in counted {
                i.splits.entry(c.journey.clone()).or_default().add(c);
            }
        })
    }

    async fn tally(&self, journey: &str) -> Result<Tally, StateError> {
        self.with(|i| i.splits.get(journey).cloned().unwrap_or_default())
    }

    async fn settle(&self, journey: &str, arm: &str) -> Result<(String, bool), StateError> {
        self.with(|i| {
            let tally = i.splits.entry(journey.to_owned()).or_default();
            match &tally.winner {
                Some(w) => (w.clone(), false),
                None => {
                    tally.winner = Some(arm.to_owned());
                    (arm.to_owned(), true)
                }
            }
        })
    }
}

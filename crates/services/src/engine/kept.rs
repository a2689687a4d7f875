//! The records an engine process keeps in memory between batches, so that a returning
//! profile's batch is planned without loading and decoding its record.
//!
//! Safe because a partition's owner is the only writer of its profiles' records (fenced by
//! epoch): a record this owner wrote stays the last one written until a newer owner claims
//! the partition, the profile is marked merged by its survivor's partition, or it is erased.
//! The save checks exactly that for every record planned from memory ([`Records::save_kept`])
//! and writes nothing of the batch when one is stale; the partition then loads and plans it
//! again. Only records this owner wrote are kept, under its partition and epoch, so a new
//! owner (or this process owning the partition again) starts from Redis.
//!
//! [`Records::save_kept`]: switchboard_engine::Records::save_kept

use std::collections::{BTreeMap, BTreeSet};

use quick_cache::sync::Cache;
use switchboard_engine::Record;
use switchboard_identity::ProfileId;

/// Records kept by this process's partition owners, bounded in number.
pub struct KeptRecords {
    cache: Option<Cache<ProfileId, Entry>>,
}

/// A record, and the owner that wrote it.
#[derive(Clone)]
struct Entry {
    partition: i32,
    epoch: u64,
    record: Record,
}

impl KeptRecords {
    /// Up to `entries` records (none: nothing kept).
    pub fn new(entries: u64) -> Self {
        let cache =
            (entries > 0).then(|| Cache::new(usize::try_from(entries).unwrap_or(usize::MAX)));
        Self { cache }
    }

    /// Takes out the records of `profiles` that `partition`'s owner of `epoch` wrote last:
    /// they come back with [`KeptRecords::keep`] once a save of them succeeds.
    pub(super) fn take(
        &self,
        partition: i32,
        epoch: u64,
        profiles: &BTreeSet<ProfileId>,
    ) -> BTreeMap<ProfileId, Record> {
        let Some(cache) = &self.cache else {
            return BTreeMap::new();
        };
        (profiles.iter())
            .filter_map(|p| cache.remove(p))
            .filter(|(_, e)| e.partition == partition && e.epoch == epoch)
            .map(|(p, e)| (p, e.record))
            .collect()
    }

    /// Keeps `record`, just saved by `partition`'s owner of `epoch`. A merged profile's is not
    /// kept: it only forwards, and its marker would make it stale.
    pub(super) fn keep(&self, partition: i32, epoch: u64, profile: ProfileId, record: Record) {
        if let Some(cache) = &self.cache
            && record.merged_into.is_none()
        {
            let entry = Entry {
                partition,
                epoch,
                record,
            };
            cache.insert(profile, entry);
        }
    }

    /// Drops the records of `profiles` (erased).
    pub(super) fn forget(&self, profiles: &[ProfileId]) {
        if let Some(cache) = &self.cache {
            for p in profiles {
                cache.remove(p);
            }
        }
    }
}

//! Profile ids: time-ordered, so the oldest profile of a merge is the smallest id.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A profile's id: a UUIDv7 string. Its text sorts by creation time (milliseconds), then by
/// its random bits, which is exactly the survivor order of a merge: oldest first, ties by id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileId(String);

impl ProfileId {
    /// A new id created at `now_ms`.
    pub fn generate(now_ms: i64) -> Self {
        let ms = u64::try_from(now_ms).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            ms / 1000,
            u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
        );
        Self(uuid::Uuid::new_v7(ts).to_string())
    }

    /// An id read back from a store or a record.
    pub fn from_stored(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_profiles_sort_first() {
        let old = ProfileId::generate(1_700_000_000_000);
        let new = ProfileId::generate(1_700_000_000_001);
        assert!(old < new);
        assert_ne!(ProfileId::generate(5), ProfileId::generate(5));
    }
}

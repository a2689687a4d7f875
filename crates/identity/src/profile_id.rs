//! Profile ids: time-ordered, so the oldest profile of a merge is the smallest id, and
//! derived from the event that created the profile, so the same events always give the same
//! ids (and with them the same holdout and split assignments, and the same command ids).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A profile's id: a ULID, 26 characters of Crockford base32 (`01KAYT4Z7Q6X0R1W6D8Y2V3N4P`):
/// 48 bits of Unix milliseconds (when the event that created the profile occurred), then 80
/// bits of a SHA-1 (UUIDv5) of the identifier that created it. Its text sorts by creation
/// time, then by those bits, which is exactly the survivor order of a merge: oldest first,
/// ties by id. The id is in every key, pointer and timer of its profile: the 10 characters
/// saved over a hyphenated UUID are about 50 bytes of Redis per profile.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileId(String);

/// The namespace of the UUIDv5 in a profile id.
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5b1c_7d2e_83f4_4a6b_9c0d_1e2f_3a4b_5c6d);

impl ProfileId {
    /// The id of the profile that `identifier` (`kind`, `value`) creates at `at_ms`: the
    /// same for the same inputs, on every run and every stitcher.
    pub fn derive(at_ms: i64, kind: &str, value: &str) -> Self {
        let ms = u128::from(u64::try_from(at_ms).unwrap_or(0) & 0xFFFF_FFFF_FFFF);
        let mut name = Vec::with_capacity(kind.len() + value.len() + 1);
        name.extend_from_slice(kind.as_bytes());
        name.push(0);
        name.extend_from_slice(value.as_bytes());
        let bits = uuid::Uuid::new_v5(&NAMESPACE, &name).as_u128() & ((1u128 << 80) - 1);
        Self(ulid::Ulid::from((ms << 80) | bits).to_string())
    }

    /// An id read back from a store or a record.
    pub fn from_stored(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When the profile was created (Unix milliseconds), read from the id itself: a ULID, or
    /// a UUIDv7 in its hyphenated form (ids of earlier builds). None for any other id.
    pub fn created_at(&self) -> Option<i64> {
        let ms = match ulid::Ulid::from_string(&self.0) {
            Ok(id) => id.timestamp_ms(),
            Err(_) => {
                let (secs, nanos) = uuid::Uuid::try_parse(&self.0)
                    .ok()
                    .filter(|u| u.get_version_num() == 7)?
                    .get_timestamp()?
                    .to_unix();
                secs * 1000 + u64::from(nanos / 1_000_000)
            }
        };
        i64::try_from(ms).ok()
    }
}

impl From<String> for ProfileId {
    /// An id as a record or a store carries it.
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for ProfileId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl AsRef<str> for ProfileId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ProfileId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ProfileId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for ProfileId {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

impl PartialEq<&str> for ProfileId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
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
        let old = ProfileId::derive(1_700_000_000_000, "email", "zed@example.com");
        let new = ProfileId::derive(1_700_000_000_001, "email", "ann@example.com");
        assert!(old < new);
    }

    #[test]
    fn the_same_identifier_at_the_same_time_gives_the_same_id_and_any_other_another() {
        let id = ProfileId::derive(5, "email", "ann@example.com");
        assert_eq!(id, ProfileId::derive(5, "email", "ann@example.com"));
        assert_ne!(id, ProfileId::derive(5, "email", "bob@example.com"));
        assert_ne!(id, ProfileId::derive(5, "phone", "ann@example.com"));
        assert_ne!(id, ProfileId::derive(6, "email", "ann@example.com"));
        assert_ne!(
            ProfileId::derive(5, "a", "b:c"),
            ProfileId::derive(5, "a:b", "c"),
            "the kind and the value are told apart"
        );
    }

    #[test]
    fn an_id_is_a_ulid_of_its_creation_time() {
        let id = ProfileId::derive(1_700_000_000_123, "email", "ann@example.com");
        assert_eq!(id.as_str().len(), 26);
        let ulid = ulid::Ulid::from_string(id.as_str()).unwrap();
        assert_eq!(ulid.timestamp_ms(), 1_700_000_000_123);
        assert_eq!(id.created_at(), Some(1_700_000_000_123));
    }

    #[test]
    fn the_creation_time_of_an_earlier_builds_id_is_read_too() {
        let v7 = ProfileId::from_stored("0193a5f0-7c1e-7d3a-9f2b-000000000007");
        assert_eq!(v7.created_at(), Some(0x0193_a5f0_7c1e));
        assert_eq!(ProfileId::from_stored("p1").created_at(), None);
        assert_eq!(
            ProfileId::from_stored("3a6316ff-b1f0-5613-98cf-6fb36f1e19f5").created_at(),
            None,
            "a UUID of another version holds no time"
        );
    }
}

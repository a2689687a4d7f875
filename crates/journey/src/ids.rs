//! Deterministic ids and draws: the same inputs give the same command ids, holdouts and
//! variants on every run, replay and machine.
//!
//! They are UUIDv5 (RFC 9562: SHA-1 of the namespace and the name) of the parts joined with
//! `/`, hashed with `sha1` (the CPU's SHA instructions where it has them) rather than through
//! `uuid`'s portable SHA-1: the same ids, a fraction of the cost, and the parts are hashed in
//! place rather than joined first. They are a contract (replays and downstream
//! deduplication rely on them), so only how they are computed may change.

use sha1::{Digest, Sha1};
use uuid::{Builder, Uuid};

/// Namespace of Switchboard's UUIDv5 ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x5b1c_7d0e_8a3f_4c21_9e6d_2f40_aa71_c0de);

/// The UUIDv5 of the parts joined with `/`.
fn v5(parts: &[&str]) -> Uuid {
    let mut hash = Sha1::new();
    hash.update(NAMESPACE.as_bytes());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash.update(b"/");
        }
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    // The first 16 of SHA-1's 20 bytes.
    let mut bytes = [0u8; 16];
    for (b, d) in bytes.iter_mut().zip(digest) {
        *b = d;
    }
    Builder::from_sha1_bytes(bytes).into_uuid()
}

/// A UUIDv5 of the parts, joined with `/`.
pub fn uuid(parts: &[&str]) -> String {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    v5(parts).hyphenated().encode_lower(&mut text).to_owned()
}

/// The id of the entry `event_id` makes into `journey` at `version` (its instance's id).
pub fn entry_id(journey: &str, version: u32, event_id: &str) -> String {
    uuid(&[journey, itoa::Buffer::new().format(version), event_id])
}

/// Whether `id` is [`entry_id`] of the rest, without building the id's text on the heap
/// (a stored record asks it of every instance it writes).
pub fn is_entry_id(id: &str, journey: &str, version: u32, event_id: &str) -> bool {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let mut decimal = itoa::Buffer::new();
    let parts = [journey, decimal.format(version), event_id];
    id == v5(&parts).hyphenated().encode_lower(&mut text)
}

/// A number in `[0, 1)` drawn from the parts: the same parts, the same number.
pub fn fraction(parts: &[&str]) -> f64 {
    let id = v5(parts);
    let high = u64::try_from(id.as_u128() >> 64).unwrap_or(0) >> 11; // 53 bits
    #[allow(clippy::cast_precision_loss)]
    let f = high as f64 / (1u64 << 53) as f64;
    f
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The same ids as `uuid`'s own UUIDv5 of the joined parts, as every earlier release
        /// computed them.
        #[test]
        fn ids_are_the_uuid_crates_v5_of_the_joined_parts(
            parts in proptest::collection::vec(".{0,40}", 1..5)
        ) {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let theirs = Uuid::new_v5(&NAMESPACE, parts.join("/").as_bytes());
            prop_assert_eq!(uuid(&parts), theirs.to_string());
            let high = u64::try_from(theirs.as_u128() >> 64).unwrap() >> 11;
            prop_assert_eq!(fraction(&parts), high as f64 / (1u64 << 53) as f64);
        }
    }

    /// RFC 9562's UUIDv5 of the namespace and `abandoned-cart/3/e-1` (Python's `uuid.uuid5`
    /// gives the same).
    #[test]
    fn an_id_is_pinned() {
        assert_eq!(
            uuid(&["abandoned-cart", "3", "e-1"]),
            "02c037ef-e429-557f-ab7c-7eb355f95690"
        );
        // An entry's id: of the journey, the version entered (in decimal) and the event.
        assert_eq!(
            entry_id("abandoned-cart", 3, "e-1"),
            "02c037ef-e429-557f-ab7c-7eb355f95690"
        );
        let id = "02c037ef-e429-557f-ab7c-7eb355f95690";
        assert!(is_entry_id(id, "abandoned-cart", 3, "e-1"));
        assert!(!is_entry_id(id, "abandoned-cart", 4, "e-1"));
    }
}

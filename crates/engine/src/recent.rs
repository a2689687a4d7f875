//! Event dedup, kept in the profile's record: a digest of each `event_id` the engine applied
//! within the window. The same `event_id` again, from whichever topic, partition or offset
//! (a channel system's retry, or the stitcher's own output replayed after a crash), is a
//! duplicate and reaches no journey.
//!
//! In the record it costs 13 to 20 bytes an event once compressed (a typical record with 2
//! ids: 39 bytes more, with 50: 630); a dedup key of its own in Redis cost about 160 (key,
//! value object and expiry entry).

use serde::{Deserialize, Serialize};

/// At most this many event ids are remembered per profile; past it the oldest are forgotten
/// first, so a customer with more events than this within the window can have an old repeat
/// applied again.
pub const MAX_RECENT: usize = 1_000;

/// `(digest of the event id, applied at in seconds)`, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecentEvents(Vec<(u64, i64)>);

impl RecentEvents {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True, and remembered, the first time `event_id` is seen within `window_ms` of `now_ms`;
    /// false for a duplicate. Forgets what the window has left behind.
    pub fn first_time(&mut self, event_id: &str, now_ms: i64, window_ms: u64) -> bool {
        self.forget_before(now_ms, window_ms);
        let digest = digest(event_id);
        if self.0.iter().any(|&(d, _)| d == digest) {
            return false;
        }
        self.0.push((digest, now_ms.div_euclid(1000)));
        self.cap();
        true
    }

    /// A merge: the survivor also remembers what the loser applied, so a repeat of the
    /// loser's event, now stitched to the survivor, is still a duplicate.
    pub fn absorb(&mut self, other: &RecentEvents) {
        for &(d, at) in &other.0 {
            match self.0.iter_mut().find(|(mine, _)| *mine == d) {
                Some(entry) => entry.1 = entry.1.max(at),
                None => self.0.push((d, at)),
            }
        }
        self.0.sort_by_key(|&(_, at)| at);
        self.cap();
    }

    fn forget_before(&mut self, now_ms: i64, window_ms: u64) {
        let window_secs = i64::try_from(window_ms / 1000).unwrap_or(i64::MAX);
        let oldest = now_ms.div_euclid(1000).saturating_sub(window_secs);
        self.0.retain(|&(_, at)| at >= oldest);
    }

    fn cap(&mut self) {
        let over = self.0.len().saturating_sub(MAX_RECENT);
        self.0.drain(..over);
    }
}

/// The first eight bytes of the event id's UUIDv5 (RFC 9562, so every release agrees). Two
/// event ids of one profile collide with odds of about n²/2⁶⁵ for n remembered.
fn digest(event_id: &str) -> u64 {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, event_id.as_bytes())
        .as_u64_pair()
        .0
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DAY_MS: u64 = 24 * 3600 * 1000;
    const NOW: i64 = 1_764_000_000_000;

    #[test]
    fn a_repeat_within_the_window_is_a_duplicate_and_after_it_is_not() {
        let mut r = RecentEvents::default();
        assert!(r.first_time("e1", NOW, DAY_MS));
        assert!(!r.first_time("e1", NOW + 1_000, DAY_MS));
        assert!(r.first_time("e2", NOW + 1_000, DAY_MS));
        assert!(!r.first_time("e1", NOW + DAY_MS as i64 - 1_000, DAY_MS));
        // A day and a second later e1 has left the window (e2 is still in it).
        assert!(r.first_time("e1", NOW + DAY_MS as i64 + 1_000, DAY_MS));
        assert!(!r.first_time("e2", NOW + DAY_MS as i64 + 1_000, DAY_MS));
    }

    #[test]
    fn the_digest_is_fixed_across_releases() {
        // Python: uuid.uuid5(uuid.NAMESPACE_OID, "evt-1") starts 4fefc6d6 04f55465.
        assert_eq!(digest("evt-1"), 0x4fef_c6d6_04f5_5465);
    }

    #[test]
    fn past_the_cap_the_oldest_are_forgotten_first() {
        let mut r = RecentEvents::default();
        for n in 0..=MAX_RECENT {
            assert!(r.first_time(&format!("e{n}"), NOW, DAY_MS));
        }
        assert_eq!(r.len(), MAX_RECENT);
        assert!(!r.first_time(&format!("e{MAX_RECENT}"), NOW, DAY_MS));
        assert!(r.first_time("e0", NOW, DAY_MS), "the oldest was forgotten");
    }

    #[test]
    fn a_survivor_remembers_the_losers_events() {
        let mut survivor = RecentEvents::default();
        let mut loser = RecentEvents::default();
        assert!(survivor.first_time("s1", NOW, DAY_MS));
        assert!(loser.first_time("l1", NOW + 5_000, DAY_MS));
        assert!(loser.first_time("s1", NOW + 6_000, DAY_MS));
        survivor.absorb(&loser);
        assert_eq!(survivor.len(), 2);
        assert!(!survivor.first_time("l1", NOW + 7_000, DAY_MS));
        assert!(!survivor.first_time("s1", NOW + 7_000, DAY_MS));
        assert!(survivor.first_time("l2", NOW + 7_000, DAY_MS));
    }

    #[test]
    fn a_record_without_recent_events_reads_as_empty() {
        let r: RecentEvents = serde_json::from_str("[[1,2]]").unwrap();
        assert_eq!(r, RecentEvents(vec![(1, 2)]));
    }

    proptest! {
        /// Against a model: an id is a duplicate exactly when it was first seen (and
        /// remembered) less than the window ago, while fewer than the cap came after it.
        #[test]
        fn agrees_with_a_model(steps in proptest::collection::vec((0u8..20, 0i64..40_000), 1..200)) {
            let window_ms = 30_000u64;
            let mut r = RecentEvents::default();
            let mut model: Vec<(String, i64)> = Vec::new();
            let mut now = NOW;
            for (id, advance) in steps {
                now += advance;
                let id = format!("e{id}");
                let oldest = now.div_euclid(1000) - (window_ms / 1000) as i64;
                model.retain(|(_, at)| *at >= oldest);
                let expected = !model.iter().any(|(m, _)| *m == id);
                if expected {
                    model.push((id.clone(), now.div_euclid(1000)));
                }
                prop_assert_eq!(r.first_time(&id, now, window_ms), expected);
            }
        }
    }
}

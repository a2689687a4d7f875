//! The identifiers this stitcher resolved lately, and the profile each resolved to: a
//! returning customer whose every identifier is known to point at one profile is stitched
//! without a round trip to Redis.
//!
//! Safe because the graph only grows: a pointer, once written, is repointed only to the root
//! of the profile it pointed at (path compression) and a profile, once merged, forwards to its
//! survivor, which the engine follows (a customer event of a merged profile is forwarded to
//! the survivor). What removes pointers is an erasure (`switchboard forget`): the graph
//! counts them, and the lane reads the count before the first event of a group it would
//! stitch from the cache, and forgets everything when it changed ([`Known::after_erasures`]). Entries also expire after
//! `identity.cache_ttl_secs`, so nothing outlives a change made to Redis by hand for long.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use switchboard_codec::Identifier;
use switchboard_identity::ProfileId;

/// Resolved identifiers, bounded in number and age.
pub(super) struct Known {
    cache: Option<Cache<Identifier, (ProfileId, Instant)>>,
    ttl: Duration,
    /// The graph's count of erasures when the cache was last cleared for them.
    erasures: AtomicU64,
}

impl Known {
    /// Up to `entries` identifiers (none: no cache), each trusted for `ttl`.
    pub(super) fn new(entries: u64, ttl: Duration) -> Self {
        let cache = (entries > 0 && !ttl.is_zero())
            .then(|| Cache::new(usize::try_from(entries).unwrap_or(usize::MAX)));
        Self {
            cache,
            ttl,
            erasures: AtomicU64::new(0),
        }
    }

    /// The graph has seen `erasures` erasures: if that is news, forget everything (an erased
    /// customer's identifiers must be looked up again, to start a new profile) and say so.
    pub(super) fn after_erasures(&self, erasures: u64) -> bool {
        let news = self.erasures.swap(erasures, Ordering::AcqRel) != erasures;
        if news && let Some(cache) = &self.cache {
            cache.clear();
        }
        news
    }

    /// The profile every one of `identifiers` resolved to, if they all resolved to the same
    /// one within the last `ttl`.
    pub(super) fn profile_of(&self, identifiers: &[Identifier]) -> Option<ProfileId> {
        let cache = self.cache.as_ref()?;
        let mut profile: Option<ProfileId> = None;
        for id in identifiers {
            let (p, at) = cache.get(id)?;
            if at.elapsed() > self.ttl || profile.as_ref().is_some_and(|q| *q != p) {
                return None;
            }
            profile = Some(p);
        }
        profile
    }

    /// `identifiers` all resolved to `profile` just now.
    pub(super) fn learn(&self, identifiers: &[Identifier], profile: &ProfileId) {
        let Some(cache) = &self.cache else { return };
        let now = Instant::now();
        for id in identifiers {
            cache.insert(id.clone(), (profile.clone(), now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(pairs: &[(&str, &str)]) -> Vec<Identifier> {
        pairs.iter().map(|(k, v)| Identifier::new(*k, *v)).collect()
    }

    #[test]
    fn only_identifiers_that_all_resolved_to_one_profile_are_known() {
        let known = Known::new(100, Duration::from_secs(60));
        let (ann, bob) = (ProfileId::from("p-ann"), ProfileId::from("p-bob"));
        known.learn(&ids(&[("email", "ann@x.io"), ("cookie", "c1")]), &ann);
        known.learn(&ids(&[("email", "bob@x.io")]), &bob);
        assert_eq!(
            known.profile_of(&ids(&[("cookie", "c1")])),
            Some(ann.clone())
        );
        assert_eq!(
            known.profile_of(&ids(&[("email", "ann@x.io"), ("cookie", "c1")])),
            Some(ann.clone())
        );
        // One identifier not known: the store must say.
        assert_eq!(
            known.profile_of(&ids(&[("cookie", "c1"), ("phone", "+44")])),
            None
        );
        // Two profiles: a merge, which the store must do.
        assert_eq!(
            known.profile_of(&ids(&[("cookie", "c1"), ("email", "bob@x.io")])),
            None
        );
        // After a merge the identifiers are the survivor's.
        known.learn(&ids(&[("cookie", "c1"), ("email", "bob@x.io")]), &bob);
        assert_eq!(known.profile_of(&ids(&[("cookie", "c1")])), Some(bob));
    }

    #[test]
    fn an_erasure_anywhere_clears_what_is_known() {
        let known = Known::new(100, Duration::from_secs(60));
        let p = ProfileId::from("p");
        known.learn(&ids(&[("email", "a@x.io")]), &p);
        assert!(!known.after_erasures(0), "no erasure yet");
        assert_eq!(
            known.profile_of(&ids(&[("email", "a@x.io")])),
            Some(p.clone())
        );
        assert!(known.after_erasures(1));
        assert_eq!(known.profile_of(&ids(&[("email", "a@x.io")])), None);
        known.learn(&ids(&[("email", "a@x.io")]), &p);
        assert!(!known.after_erasures(1), "already seen");
        assert_eq!(known.profile_of(&ids(&[("email", "a@x.io")])), Some(p));
    }

    #[test]
    fn an_entry_is_trusted_for_its_ttl_and_a_cache_of_nothing_knows_nothing() {
        let known = Known::new(100, Duration::from_millis(20));
        let p = ProfileId::from("p");
        known.learn(&ids(&[("email", "a@x.io")]), &p);
        assert_eq!(
            known.profile_of(&ids(&[("email", "a@x.io")])),
            Some(p.clone())
        );
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(known.profile_of(&ids(&[("email", "a@x.io")])), None);
        let off = Known::new(0, Duration::from_secs(60));
        off.learn(&ids(&[("email", "a@x.io")]), &p);
        assert_eq!(off.profile_of(&ids(&[("email", "a@x.io")])), None);
    }
}

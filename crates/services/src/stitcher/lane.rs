//! The stitcher's lane: where the batches of every partition are stitched together.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use switchboard_codec::{ChannelEvent, Identifier, SchemaResolver, SourcePosition};
use switchboard_identity::{Found, IdentityStore, ProfileId, look_up};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Outcome, Stitcher, resolve};
use switchboard_kafka::{Stopped, until_ok};

use crate::metrics::StoreOperation;

/// A decoded, valid event waiting to be stitched, with its usable identifiers.
pub(super) struct Pending {
    pub(super) source: SourcePosition,
    pub(super) event: ChannelEvent,
    pub(super) identifiers: Vec<Identifier>,
}

/// A partition's events handed to the lane, and where their outcomes go, in order.
struct Job {
    events: Vec<Pending>,
    reply: oneshot::Sender<Vec<Outcome>>,
}

/// Most events one group of the lane stitches.
const MAX_GROUP: usize = 2000;
/// Groups stitched at once.
const GROUPS_IN_FLIGHT: usize = 2;

/// Where the partitions' batches are stitched together: every batch waiting when a group
/// starts joins it, so the group's identifiers are read in one lookup and its new ones
/// reserved side by side, whatever the number of partitions. A partition hands one batch at
/// a time and waits for it, so its order holds; events of different partitions are not
/// ordered, together or apart.
#[derive(Clone)]
pub(super) struct Lane {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Lane {
    /// The lane, and the task that runs it: until every handle to the lane is gone (every
    /// partition and the workers that start them), then until its groups finish. The caller
    /// runs the task with the service, so nothing outlives the service untracked.
    pub(super) fn new<R: SchemaResolver + 'static, S: IdentityStore + 'static>(
        shared: Arc<Stitcher<R, S>>,
        stop: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        let run = async move {
            let slots = Arc::new(Semaphore::new(GROUPS_IN_FLIGHT));
            let mut groups = JoinSet::new();
            while let Some(first) = rx.recv().await {
                // Reap the groups done, so the set holds only those in flight.
                while groups.try_join_next().is_some() {}
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let mut n = first.events.len();
                let mut group = vec![first];
                while n < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(job) => {
                            n += job.events.len();
                            group.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let (shared, stop) = (shared.clone(), stop.clone());
                groups.spawn(async move {
                    let events: Vec<&Pending> = group.iter().flat_map(|j| &j.events).collect();
                    // Stopped: the replies are dropped, and each partition gives up its batch.
                    if let Ok(outcomes) = stitch_group(&shared, &stop, &events).await {
                        let mut outcomes = outcomes.into_iter();
                        for job in group {
                            let mine = outcomes.by_ref().take(job.events.len()).collect();
                            let _ = job.reply.send(mine);
                        }
                    }
                    drop(slot);
                });
            }
            while groups.join_next().await.is_some() {}
        };
        (Self { jobs }, run)
    }

    /// Stitches a partition's events with whatever other partitions hand in meanwhile;
    /// `Stopped` when the partition stops first (its batch is then replayed by the next
    /// owner: stitching again is harmless).
    pub(super) async fn stitch(
        &self,
        events: Vec<Pending>,
        stop: &CancellationToken,
    ) -> Result<Vec<Outcome>, Stopped> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, outcomes) = oneshot::channel();
        self.jobs
            .send(Job { events, reply })
            .map_err(|_| Stopped::Shutdown)?;
        tokio::select! {
            _ = stop.cancelled() => Err(Stopped::Shutdown),
            o = outcomes => o.map_err(|_| Stopped::Shutdown),
        }
    }
}

/// Stitches `events` in waves of independent ones (sharing no identifier nor event id):
/// each wave's pointers, and the parents of the profiles those point at, are read in one
/// lookup, as the events' own lookups would have read them at the same moment, and its
/// events stitched concurrently. A retry looks up afresh.
async fn stitch_group<'a, R: SchemaResolver, S: IdentityStore>(
    s: &Stitcher<R, S>,
    stop: &CancellationToken,
    events: &[&'a Pending],
) -> Result<Vec<Outcome>, Stopped> {
    let errors = s.metrics.store_error(StoreOperation::Stitch);
    let mut outcomes: Vec<Option<Outcome>> = (0..events.len()).map(|_| None).collect();
    // Whether the graph's erasures were read for this group: before the first event stitched
    // from the cache, so an erasure done before the group started is never missed.
    let mut erasures_read = false;
    for wave in waves(events) {
        // A returning customer whose identifiers all resolved to one profile lately: found
        // as it would be in the store (the profile a root), with no lookup.
        let split = |wave: Vec<(usize, &'a Pending)>| -> (Vec<_>, Vec<_>) {
            (wave.into_iter())
                .map(|(i, e)| (i, e, s.known.profile_of(&e.identifiers)))
                .partition(|(_, _, p)| p.is_some())
        };
        let (mut known, mut wave) = split(wave);
        if !known.is_empty() && !erasures_read {
            let erasures = until_ok("stitch", stop, errors.clone(), || s.store.erasures()).await?;
            erasures_read = true;
            if s.known.after_erasures(erasures) {
                let all = known.into_iter().chain(wave).map(|(i, e, _)| (i, e));
                (known, wave) = split(all.collect());
            }
        }
        s.metrics.identity_cache(known.len(), wave.len());
        let stitched = futures::future::join_all(known.into_iter().map(|(i, e, p)| {
            let pointers = vec![p.clone(); e.identifiers.len()];
            let mut found = p.map(|p| Found {
                pointers,
                roots: vec![p],
            });
            let errors = errors.clone();
            async move {
                let outcome =
                    until_ok("stitch", stop, errors, move || resolve(s, e, found.take())).await;
                (i, outcome)
            }
        }))
        .await;
        for (i, outcome) in stitched {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = Some(outcome?);
            }
        }
        let wave: Vec<(usize, &Pending)> = wave.into_iter().map(|(i, e, _)| (i, e)).collect();
        if wave.is_empty() {
            continue;
        }
        let all: Vec<Identifier> = wave
            .iter()
            .flat_map(|(_, e)| e.identifiers.iter().cloned())
            .collect();
        let Found { pointers, roots } =
            until_ok("stitch", stop, errors.clone(), || look_up(&*s.store, &all)).await?;
        let roots: HashSet<ProfileId> = roots.into_iter().collect();
        let mut pointers = pointers.into_iter();
        let stitched = futures::future::join_all(wave.iter().map(|&(_, e)| {
            let pointers: Vec<_> = pointers.by_ref().take(e.identifiers.len()).collect();
            let roots = pointers
                .iter()
                .flatten()
                .filter(|p| roots.contains(*p))
                .cloned()
                .collect();
            let mut found = Some(Found { pointers, roots });
            until_ok("stitch", stop, errors.clone(), move || {
                resolve(s, e, found.take())
            })
        }))
        .await;
        for ((i, _), outcome) in wave.iter().zip(stitched) {
            if let Some(slot) = outcomes.get_mut(*i) {
                *slot = Some(outcome?);
            }
        }
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// Splits events into waves of independent ones, in order, each event with its place in
/// `events`: an event goes in the wave after the last one holding any of its identifiers or
/// its event id.
fn waves<'a>(events: &[&'a Pending]) -> Vec<Vec<(usize, &'a Pending)>> {
    let mut last: HashMap<(&str, &str), usize> = HashMap::new();
    let mut waves: Vec<Vec<(usize, &Pending)>> = Vec::new();
    for (i, &e) in events.iter().enumerate() {
        let keys = || {
            e.identifiers
                .iter()
                .map(|id| (id.kind.as_str(), id.value.as_str()))
                .chain([("", e.event.event_id.as_str())])
        };
        let wave = keys()
            .filter_map(|k| last.get(&k).map(|w| w + 1))
            .max()
            .unwrap_or(0);
        for k in keys() {
            last.insert(k, wave);
        }
        // `wave` is at most one past the last wave.
        match waves.get_mut(wave) {
            Some(w) => w.push((i, e)),
            None => waves.push(vec![(i, e)]),
        }
    }
    waves
}

#[cfg(test)]
mod tests {
    use switchboard_codec::{Codec, CustomerEvent, LocalSchemas};
    use switchboard_config::Config;
    use switchboard_identity::MemoryIdentityStore;

    use super::*;
    use crate::Metrics;

    fn pending(offset: i64, id: &str, ids: &[(&str, &str)]) -> Pending {
        let event = ChannelEvent {
            event_id: id.into(),
            event_type: "t".into(),
            channel: "web".into(),
            occurred_at: 1,
            identifiers: Vec::new(),
            attributes: Default::default(),
            locale: None,
            timezone: None,
        };
        Pending {
            source: SourcePosition {
                topic: "t".into(),
                partition: 0,
                offset,
            },
            event,
            identifiers: ids.iter().map(|(k, v)| Identifier::new(*k, *v)).collect(),
        }
    }

    #[test]
    fn events_sharing_an_identifier_or_an_id_wait_for_each_other_in_order() {
        let events = [
            pending(0, "a", &[("email", "x"), ("cookie", "1")]),
            pending(1, "b", &[("cookie", "2")]),
            pending(2, "c", &[("cookie", "1")]), // after a
            pending(3, "a", &[("cookie", "3")]), // the same event id as a
            pending(4, "d", &[("phone", "9"), ("cookie", "1")]), // after c
        ];
        let events: Vec<&Pending> = events.iter().collect();
        let order: Vec<Vec<usize>> = waves(&events)
            .iter()
            .map(|w| w.iter().map(|(i, _)| *i).collect())
            .collect();
        assert_eq!(order, vec![vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[tokio::test]
    async fn a_partition_stopped_while_its_batch_waits_gives_the_batch_up() {
        // A lane busy elsewhere: nothing takes the job.
        let (jobs, _waiting) = mpsc::unbounded_channel();
        let lane = Lane { jobs };
        let stop = CancellationToken::new();
        let stopping = {
            let stop = stop.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                stop.cancel();
            }
        };
        let (given_up, ()) = tokio::join!(
            lane.stitch(vec![pending(3, "a", &[("cookie", "1")])], &stop),
            stopping
        );
        // Not an empty outcome, which would publish nothing and commit the offset.
        assert!(matches!(given_up, Err(Stopped::Shutdown)));
    }

    #[tokio::test]
    async fn a_lane_that_stops_answers_stopped() {
        let batch = || vec![pending(3, "a", &[("cookie", "1")])];
        let never = CancellationToken::new();
        // Stopped with the job taken: its reply is dropped unanswered.
        let (jobs, mut taken) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move { drop(taken.recv().await) });
        let lane = Lane { jobs };
        assert!(matches!(
            lane.stitch(batch(), &never).await,
            Err(Stopped::Shutdown)
        ));
        // Stopped before: nothing takes jobs any more.
        let (jobs, gone) = mpsc::unbounded_channel();
        drop(gone);
        let lane = Lane { jobs };
        assert!(matches!(
            lane.stitch(batch(), &never).await,
            Err(Stopped::Shutdown)
        ));
    }

    /// A returning customer whose identifiers the lane resolved lately is stitched to the same
    /// profile without a lookup; one with an identifier it does not know is looked up.
    #[tokio::test]
    async fn a_returning_customer_is_stitched_from_what_the_stitcher_knows() {
        let codec = Arc::new(Codec::new(LocalSchemas::embedded().unwrap()).await.unwrap());
        let run = async |config: Config| {
            let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
            let store = Arc::new(MemoryIdentityStore::new());
            let stitcher = Stitcher::new(codec.clone(), store, Arc::new(config), metrics.clone());
            let (lane, run) = Lane::new(Arc::new(stitcher), CancellationToken::new());
            let running = tokio::spawn(run);
            let stop = CancellationToken::new();
            let ann = [("email", "ann@example.com"), ("cookie", "c-1")];
            let mut profiles = Vec::new();
            for batch in [
                vec![pending(1, "a1", &ann)],
                vec![pending(2, "a2", &ann[1..])],
                vec![pending(
                    3,
                    "a3",
                    &[("cookie", "c-1"), ("phone", "+447700900000")],
                )],
                vec![pending(4, "a4", &[("phone", "+447700900000")])],
            ] {
                let outcomes = lane.stitch(batch, &stop).await.unwrap();
                profiles.extend(stitched(&codec, outcomes).await.into_iter().map(|(p, _)| p));
            }
            drop(lane);
            running.await.unwrap();
            let [hits, misses] = metrics.identity_cache.map(|c| c.get());
            (profiles, hits, misses)
        };
        let (profiles, hits, misses) = run(Config::default()).await;
        assert!(profiles.iter().all(|p| *p == profiles[0]), "{profiles:?}");
        // a2 (the cookie) and a4 (the phone a3 attached) are known; a1 and a3 are not.
        assert_eq!((hits, misses), (2, 2));
        let mut off = Config::default();
        off.identity.cache_entries = 0;
        let (uncached, hits, misses) = run(off).await;
        assert_eq!((hits, misses), (0, 4));
        assert!(uncached.iter().all(|p| *p == uncached[0]), "{uncached:?}");
    }

    /// The profile and source offset of each stitched event, in order.
    async fn stitched(codec: &Codec<LocalSchemas>, outcomes: Vec<Outcome>) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for outcome in outcomes {
            let Outcome::Stitched(records) = outcome else {
                panic!("an event was not stitched");
            };
            for r in records {
                let e: CustomerEvent = codec.decode(&r.payload).await.expect("a customer event");
                out.push((e.profile_id, e.source.offset));
            }
        }
        out
    }

    #[tokio::test]
    async fn partitions_stitched_together_each_get_their_own_events_back_in_order() {
        let codec = Arc::new(Codec::new(LocalSchemas::embedded().unwrap()).await.unwrap());
        let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
        let store = Arc::new(MemoryIdentityStore::new());
        let stitcher = Stitcher::new(codec.clone(), store, Arc::new(Config::default()), metrics);
        let (lane, run) = Lane::new(Arc::new(stitcher), CancellationToken::new());
        let running = tokio::spawn(run);
        let stop = CancellationToken::new();
        let ann = ("email", "ann@example.com");
        let first = vec![
            pending(10, "a1", &[ann]),
            pending(11, "a2", &[("cookie", "c-1")]),
            pending(12, "a3", &[("cookie", "c-1"), ann]),
        ];
        let second = vec![pending(7, "b1", &[("email", "bob@example.com")])];
        // Handed in before the lane runs: one group.
        let (first, second) = tokio::join!(lane.stitch(first, &stop), lane.stitch(second, &stop));
        let first = stitched(&codec, first.unwrap()).await;
        let second = stitched(&codec, second.unwrap()).await;

        let offsets: Vec<i64> = first.iter().map(|(_, o)| *o).collect();
        // a3 links the cookie to Ann: a `ProfileMerged` goes before it.
        assert_eq!(offsets, vec![10, 11, 12, 12]);
        let (ann, cookie) = (&first[0].0, &first[1].0);
        assert_ne!(cookie, ann, "the cookie starts a profile of its own");
        // Both profiles were made in the same millisecond: either may be the older.
        assert_eq!(first[2].0, first[3].0, "a3 goes to the merge's survivor");
        assert!(
            [ann, cookie].contains(&&first[3].0),
            "the survivor is one of the two"
        );
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].1, 7);
        assert!(
            first.iter().all(|(p, _)| *p != second[0].0),
            "Bob is not Ann"
        );
        // The lane's task ends once its last handle is gone.
        drop(lane);
        tokio::time::timeout(std::time::Duration::from_secs(5), running)
            .await
            .expect("the lane ends with its handles")
            .unwrap();
    }
}

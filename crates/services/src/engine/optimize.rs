//! The engine's side of winner selection ([`switchboard_engine::optimize`]): a saved batch's
//! entries and goals of optimized splits are added up in the process; every
//! [`CHECK_EVERY_MS`], one partition of the process adds them to the store's tallies (one
//! round trip for the period, not one per batch), reads each optimized journey's tally,
//! adopts the winner settled there, or settles the one the verdict picks and announces it
//! with a `winner` transition. Every process learns of a winner within one period; a stopping
//! partition adds what is pending, a crash loses the counts of its last period, a few
//! seconds out of the test's days.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use switchboard_codec::JourneyTransition;
use switchboard_engine::optimize::{self, Counted};
use switchboard_engine::{Splits, StateError};
use switchboard_journey::{JourneySet, Winners};
use tracing::info;

/// How often a process reads the tallies of optimized splits.
pub const CHECK_EVERY_MS: i64 = 10_000;

/// The winners this process sends new entries to, and when it next checks.
#[derive(Debug, Default)]
pub struct Winning {
    winners: RwLock<Arc<Winners>>,
    next_check: AtomicI64,
    /// Counts of saved batches not yet added to the store, by journey and variant.
    pending: Mutex<BTreeMap<(String, String), Counted>>,
}

impl Winning {
    /// The winners as of the last check.
    pub fn current(&self) -> Arc<Winners> {
        self.winners
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |w| w.clone())
    }

    /// Keeps a saved batch's counts until the next [`Winning::flush`].
    pub fn add(&self, counted: Vec<Counted>) {
        if counted.is_empty() {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for c in counted {
            match pending.entry((c.journey.clone(), c.arm.clone())) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(c);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let kept = o.get_mut();
                    kept.entries += c.entries;
                    kept.goals += c.goals;
                    kept.first_at = kept.first_at.min(c.first_at);
                }
            }
        }
    }

    /// Adds the counts kept since the last flush to the store (kept for the next one if the
    /// store is away).
    pub async fn flush<S: Splits>(&self, store: &S) -> Result<(), StateError> {
        let counted: Vec<Counted> = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *pending).into_values().collect()
        };
        if counted.is_empty() {
            return Ok(());
        }
        let added = store.count(&counted).await;
        if added.is_err() {
            self.add(counted);
        }
        added
    }

    /// Whether a check is due at `now`; the caller that gets `true` makes it, and the next
    /// is one period later.
    pub fn due(&self, now: i64) -> bool {
        let next = self.next_check.load(Ordering::Acquire);
        now >= next
            && (self.next_check)
                .compare_exchange(
                    next,
                    now + CHECK_EVERY_MS,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    /// Reads the tallies of `journeys`' optimized splits, settles the winners the verdict
    /// picks at `now`, and returns the `winner` transitions of those this call settled.
    pub async fn check<S: Splits>(
        &self,
        store: &S,
        journeys: &JourneySet,
        now: i64,
    ) -> Result<Vec<JourneyTransition>, StateError> {
        let mut winners = Winners::new();
        let mut announced = Vec::new();
        for j in (journeys.newest().into_iter()).filter(|j| j.optimized_split().is_some()) {
            let tally = store.tally(&j.id).await?;
            if let Some(w) = tally.winner {
                winners.insert(j.id.clone(), w);
                continue;
            }
            let Some(verdict) = optimize::verdict(j, &tally, now) else {
                continue;
            };
            let (standing, settled) = store.settle(&j.id, &verdict.arm).await?;
            if settled {
                let t = optimize::winner_transition(j, &verdict, now);
                info!(
                    journey = j.id.as_str(),
                    winner = standing.as_str(),
                    figures = t.reason.as_deref().unwrap_or(""),
                    "optimized split picked its winner: new entries go there"
                );
                announced.push(t);
            }
            winners.insert(j.id.clone(), standing);
        }
        let mut current = self.winners.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(winners);
        Ok(announced)
    }
}

//! The engine's side of winner selection ([`switchboard_engine::optimize`]): a saved batch's
//! entries and goals of optimized splits are added to the store's tallies; every
//! [`CHECK_EVERY_MS`], one partition of the process reads each optimized journey's tally,
//! adopts the winner settled there, or settles the one the verdict picks and announces it
//! with a `winner` transition. Every process learns of a winner within one period.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use switchboard_codec::JourneyTransition;
use switchboard_engine::optimize;
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
}

impl Winning {
    /// The winners as of the last check.
    pub fn current(&self) -> Arc<Winners> {
        self.winners
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |w| w.clone())
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
        let mut current = self
            .winners
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Arc::new(winners);
        Ok(announced)
    }
}

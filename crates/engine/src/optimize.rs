//! Winner selection for an optimized split (`split` with `optimize:`).
//!
//! Each optimized journey keeps a [`Tally`] that every engine process adds to and reads: the
//! entries of each variant at the split, and the goals of those entries (the journey's goal,
//! attributed as everywhere else: the first in the window, after the journey too). Once the
//! test period has passed since the first counted entry and every variant has its minimum of
//! entries, the variant converting best wins if it beats each other variant significantly:
//! a two-sided two-proportion z-test (pooled rate), at 5 % split evenly over the comparisons
//! (Bonferroni). Until then, or if no variant is clearly best, entries keep being split. The
//! first process to find a winner settles it in the store, where it stays; every process then
//! sends new entries there, and the settling one publishes a `winner` transition saying what
//! it was picked on.

use std::collections::BTreeMap;

use statrs::distribution::{ContinuousCDF, Normal};
use switchboard_codec::{JourneyTransition, TransitionKind};
use switchboard_journey::{Journey, JourneySet, Optimize, StepKind};
use uuid::Uuid;

use crate::plan::Plan;

/// The significance level a winner must reach, over all its comparisons together.
pub const ALPHA: f64 = 0.05;

/// One variant's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArmTally {
    pub entries: u64,
    pub goals: u64,
}

impl ArmTally {
    #[allow(clippy::cast_precision_loss)]
    pub fn conversion(self) -> f64 {
        if self.entries == 0 {
            0.0
        } else {
            self.goals as f64 / self.entries as f64
        }
    }
}

/// An optimized journey's counts, as the store keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// When the first counted entry reached the split.
    pub started: Option<i64>,
    pub arms: BTreeMap<String, ArmTally>,
    /// The variant settled as the winner, if one is.
    pub winner: Option<String>,
}

impl Tally {
    /// Adds what a plan counted for this journey.
    pub fn add(&mut self, c: &Counted) {
        self.started = Some(self.started.map_or(c.first_at, |s| s.min(c.first_at)));
        let arm = self.arms.entry(c.arm.clone()).or_default();
        arm.entries += c.entries;
        arm.goals += c.goals;
    }
}

/// What one plan adds to a journey's tally for one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub journey: String,
    pub arm: String,
    pub entries: u64,
    pub goals: u64,
    /// The earliest entry or goal counted.
    pub first_at: i64,
}

/// The entries and goals of optimized journeys' variants in `plan`'s transitions (held-out
/// entries are no variant's), per journey and variant.
pub fn counted(plan: &Plan, journeys: &JourneySet) -> Vec<Counted> {
    let mut by_arm: BTreeMap<(&str, &str), Counted> = BTreeMap::new();
    for t in plan.transitions() {
        let (Some(variant), false) = (&t.variant, t.holdout) else {
            continue;
        };
        let entry = t.kind == TransitionKind::Step && t.step_kind.as_deref() == Some("split");
        if !(entry || t.kind == TransitionKind::Goal) {
            continue;
        }
        let optimized = (journeys.get(&t.journey, u32::try_from(t.version).unwrap_or(0)))
            .is_some_and(|j| j.optimized_split().is_some());
        if !optimized {
            continue;
        }
        let c = by_arm
            .entry((&t.journey, variant))
            .or_insert_with(|| Counted {
                journey: t.journey.clone(),
                arm: variant.clone(),
                entries: 0,
                goals: 0,
                first_at: t.at,
            });
        c.first_at = c.first_at.min(t.at);
        if entry {
            c.entries += 1;
        } else {
            c.goals += 1;
        }
    }
    by_arm.into_values().collect()
}

/// A winner and the figures it was picked on.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub arm: String,
    /// The largest p-value of its comparisons with the other variants.
    pub p_value: f64,
    pub tally: Tally,
}

/// The winner of `journey`'s optimized split at `now`, if the test is over and one variant
/// converts significantly better than every other; `None` while it is not (or a winner is
/// settled already, or the journey optimizes nothing).
pub fn verdict(journey: &Journey, tally: &Tally, now: i64) -> Option<Verdict> {
    let (state, optimize) = journey.optimized_split()?;
    let StepKind::Split { arms, .. } = &state.kind else {
        return None;
    };
    if tally.winner.is_some() || !over(optimize, tally, now) {
        return None;
    }
    let variants: Vec<(&String, ArmTally)> = (arms.iter())
        .filter(|(_, weight, _)| *weight > 0)
        .map(|(v, _, _)| (v, tally.arms.get(v).copied().unwrap_or_default()))
        .collect();
    if variants.len() < 2
        || variants
            .iter()
            .any(|(_, t)| t.entries < optimize.min_entries)
    {
        return None;
    }
    let (best, best_tally) = *variants
        .iter()
        .max_by(|a, b| a.1.conversion().total_cmp(&b.1.conversion()))?;
    #[allow(clippy::cast_precision_loss)]
    let level = ALPHA / (variants.len() - 1) as f64;
    let mut worst_p: f64 = 0.0;
    for (v, t) in &variants {
        if *v == best {
            continue;
        }
        let p = two_proportion_p(best_tally, *t);
        if best_tally.conversion() <= t.conversion() || p >= level {
            return None;
        }
        worst_p = worst_p.max(p);
    }
    Some(Verdict {
        arm: best.clone(),
        p_value: worst_p,
        tally: tally.clone(),
    })
}

/// Whether the test period has passed since the first counted entry.
fn over(optimize: &Optimize, tally: &Tally, now: i64) -> bool {
    tally
        .started
        .is_some_and(|s| now >= s.saturating_add(optimize.after_ms))
}

/// The two-sided p-value of the two-proportion z-test with the pooled rate: how likely a
/// difference at least this large is if both convert alike. 1 without entries or goals.
#[allow(clippy::cast_precision_loss)]
pub fn two_proportion_p(a: ArmTally, b: ArmTally) -> f64 {
    if a.entries == 0 || b.entries == 0 {
        return 1.0;
    }
    let (n1, n2) = (a.entries as f64, b.entries as f64);
    let pooled_rate = (a.goals + b.goals) as f64 / (n1 + n2);
    let se = (pooled_rate * (1.0 - pooled_rate) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return 1.0;
    }
    let z = (a.conversion() - b.conversion()).abs() / se;
    2.0 * (1.0 - Normal::standard().cdf(z))
}

/// The `winner` transition of `journey` at `at`: no customer's (profile empty, keyed by the
/// journey), the variant the winner, the reason the figures. Its id depends on the journey
/// and the winner only, so a second announcement of the same choice is the same record.
pub fn winner_transition(journey: &Journey, verdict: &Verdict, at: i64) -> JourneyTransition {
    let split = journey.optimized_split().map(|(s, _)| s.name.clone());
    let figures: Vec<String> = (verdict.tally.arms.iter())
        .map(|(arm, t)| format!("{arm} {:.2}% of {}", 100.0 * t.conversion(), t.entries))
        .collect();
    let id = format!("{}|winner|{}", journey.id, verdict.arm);
    JourneyTransition {
        transition_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, id.as_bytes()).to_string(),
        profile_id: String::new(),
        journey: journey.id.clone(),
        version: i32::try_from(journey.version).unwrap_or(i32::MAX),
        kind: TransitionKind::Winner,
        step: split,
        reason: Some(format!(
            "{}; p = {:.4}",
            figures.join(", "),
            verdict.p_value
        )),
        trigger: format!("optimize:{}", journey.id),
        at,
        variant: Some(verdict.arm.clone()),
        holdout: false,
        entry_id: None,
        step_kind: Some("split".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_journey::compile;

    const DAY: i64 = 86_400_000;

    fn journey(arms: &str) -> Journey {
        let yaml = format!(
            "journey: subject\nversion: 1\ntrigger: {{ event: product.viewed }}\n\
             goal: {{ event: order.completed, within: 3d }}\nstart: choose\nsteps:\n  \
             choose:\n    split:\n{arms}    optimize: {{ after: 7d, min_entries: 100 }}\n  \
             done: {{ exit: sent }}\n"
        );
        compile("subject.yaml", &yaml, &["email".to_owned()]).unwrap()
    }

    fn two() -> Journey {
        journey(
            "      - { variant: a, weight: 50, next: done }\n      \
             - { variant: b, weight: 50, next: done }\n",
        )
    }

    fn tally(started: i64, arms: &[(&str, u64, u64)]) -> Tally {
        Tally {
            started: Some(started),
            arms: (arms.iter())
                .map(|(a, entries, goals)| {
                    let t = ArmTally {
                        entries: *entries,
                        goals: *goals,
                    };
                    ((*a).to_owned(), t)
                })
                .collect(),
            winner: None,
        }
    }

    #[test]
    fn a_clearly_better_variant_wins_once_the_period_is_over_and_every_variant_has_its_entries() {
        let j = two();
        let t = tally(0, &[("a", 1000, 40), ("b", 1000, 90)]);
        assert_eq!(
            verdict(&j, &t, 7 * DAY - 1),
            None,
            "the test period runs 7 days"
        );
        let v = verdict(&j, &t, 7 * DAY).unwrap();
        assert_eq!(v.arm, "b");
        // 4.0 % vs 9.0 % of 1000: pooled 6.5 %, se 0.01102, z 4.54.
        assert!(v.p_value < 1e-4, "{v:?}");

        let few = tally(0, &[("a", 99, 0), ("b", 1000, 90)]);
        assert_eq!(
            verdict(&j, &few, 8 * DAY),
            None,
            "a has fewer than min_entries"
        );
        let settled = Tally {
            winner: Some("a".into()),
            ..t.clone()
        };
        assert_eq!(verdict(&j, &settled, 8 * DAY), None, "a winner stands");
        assert_eq!(
            verdict(&j, &Tally::default(), 8 * DAY),
            None,
            "nothing counted"
        );
    }

    #[test]
    fn without_a_significant_difference_the_split_goes_on() {
        let j = two();
        // 5.0 % vs 6.0 % of 1000: p about 0.33.
        let close = tally(0, &[("a", 1000, 50), ("b", 1000, 60)]);
        assert_eq!(verdict(&j, &close, 30 * DAY), None);
        let same = tally(0, &[("a", 1000, 0), ("b", 1000, 0)]);
        assert_eq!(verdict(&j, &same, 30 * DAY), None);
    }

    /// With three variants the best must beat both others at 0.05 / 2 (Bonferroni).
    #[test]
    fn the_best_of_three_must_beat_each_other_at_the_corrected_level() {
        let j = journey(
            "      - { variant: a, weight: 1, next: done }\n      \
             - { variant: b, weight: 1, next: done }\n      \
             - { variant: c, weight: 1, next: done }\n",
        );
        // c beats a clearly, but b only at p about 0.04: above 0.025.
        let t = tally(0, &[("a", 1000, 40), ("b", 1000, 70), ("c", 1000, 95)]);
        let p_cb = two_proportion_p(t.arms["c"], t.arms["b"]);
        assert!(p_cb > 0.025 && p_cb < 0.05, "{p_cb}");
        assert_eq!(verdict(&j, &t, 8 * DAY), None);
        let clear = tally(0, &[("a", 1000, 40), ("b", 1000, 50), ("c", 1000, 95)]);
        assert_eq!(verdict(&j, &clear, 8 * DAY).unwrap().arm, "c");
    }

    #[test]
    fn the_pooled_z_test_gives_the_textbook_p_value() {
        // 200 of 1000 against 150 of 1000: pooled .175, se .016993, z 2.9424, p .00326.
        let p = two_proportion_p(
            ArmTally {
                entries: 1000,
                goals: 200,
            },
            ArmTally {
                entries: 1000,
                goals: 150,
            },
        );
        assert!((p - 0.00326).abs() < 1e-4, "{p}");
    }

    #[test]
    fn the_winner_transition_names_the_variant_and_the_figures_and_is_the_same_record_twice() {
        let j = two();
        let t = tally(0, &[("a", 1000, 40), ("b", 1000, 90)]);
        let v = verdict(&j, &t, 7 * DAY).unwrap();
        let w = winner_transition(&j, &v, 7 * DAY);
        assert_eq!(w.kind, TransitionKind::Winner);
        assert_eq!(w.variant.as_deref(), Some("b"));
        assert_eq!(w.step.as_deref(), Some("choose"));
        assert_eq!(
            w.reason.as_deref(),
            Some("a 4.00% of 1000, b 9.00% of 1000; p = 0.0000")
        );
        assert_eq!(
            w.transition_id,
            winner_transition(&j, &v, 8 * DAY).transition_id
        );
    }
}

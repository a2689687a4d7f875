//! `split`: a weighted variant, drawn deterministically per customer, journey and state; or
//! the winner an optimized split picked.

use super::Flow;
use crate::ids;
use crate::run::Run;
use crate::state::Instance;
use crate::{State, StateId};

/// Chooses the entry's variant: the winner, once an optimized split has one (the
/// transition's reason says `winner`), else a weighted draw (`split`).
pub(super) fn run(
    run: &mut Run<'_>,
    inst: &mut Instance,
    state: &State,
    arms: &[(String, u32, StateId)],
    optimized: bool,
) -> (Flow, &'static str) {
    let winner = optimized
        .then(|| run.winners.get(&inst.journey))
        .flatten()
        .and_then(|w| arms.iter().find(|(variant, _, _)| variant == w));
    let (chosen, how) = match winner {
        Some(arm) => (Some(arm), "winner"),
        None => (draw(run, inst, state, arms), "split"),
    };
    let Some((variant, _, next)) = chosen else {
        return (Flow::End("empty_split".into()), how);
    };
    inst.variant = Some(variant.clone());
    // The entry's goal is attributed to its variant.
    for a in (run.customer.attributions.iter_mut()).filter(|a| a.entry == inst.id) {
        a.variant = Some(variant.clone());
    }
    (Flow::Next(*next), how)
}

/// A weighted draw, deterministic per customer, journey and state.
fn draw<'s>(
    run: &Run<'_>,
    inst: &Instance,
    state: &State,
    arms: &'s [(String, u32, StateId)],
) -> Option<&'s (String, u32, StateId)> {
    let total: u64 = arms.iter().map(|(_, w, _)| u64::from(*w)).sum();
    let draw = ids::fraction(&[&run.customer.profile.id, &inst.journey, &state.name]);
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let mut point = (draw * total as f64) as u64;
    arms.iter()
        .find(|(_, weight, _)| {
            let inside = point < u64::from(*weight);
            point = point.saturating_sub(u64::from(*weight));
            inside
        })
        .or(arms.last())
}

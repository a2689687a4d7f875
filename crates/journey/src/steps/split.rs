//! `split`: a weighted variant, drawn deterministically per customer, journey and state.

use super::Flow;
use crate::ids;
use crate::run::Run;
use crate::state::Instance;
use crate::{State, StateId};

pub(super) fn run(
    run: &mut Run<'_>,
    inst: &mut Instance,
    state: &State,
    arms: &[(String, u32, StateId)],
) -> Flow {
    let total: u64 = arms.iter().map(|(_, w, _)| u64::from(*w)).sum();
    let draw = ids::fraction(&[&run.customer.profile.id, &inst.journey, &state.name]);
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let mut point = (draw * total as f64) as u64;
    let chosen = arms
        .iter()
        .find(|(_, weight, _)| {
            let inside = point < u64::from(*weight);
            point = point.saturating_sub(u64::from(*weight));
            inside
        })
        .or(arms.last());
    let Some((variant, _, next)) = chosen else {
        return Flow::End("empty_split".into());
    };
    inst.variant = Some(variant.clone());
    // The entry's goal is attributed to its variant.
    for a in (run.customer.attributions.iter_mut()).filter(|a| a.entry == inst.id) {
        a.variant = Some(variant.clone());
    }
    Flow::Next(*next)
}

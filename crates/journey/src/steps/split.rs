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
    for (variant, weight, next) in arms {
        if point < u64::from(*weight) {
            inst.variant = Some(variant.clone());
            return Flow::Next(*next);
        }
        point -= u64::from(*weight);
    }
    match arms.last() {
        Some((variant, _, next)) => {
            inst.variant = Some(variant.clone());
            Flow::Next(*next)
        }
        None => Flow::End("empty_split".into()),
    }
}

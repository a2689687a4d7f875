//! `branch`: the first arm whose CEL condition holds; `else` otherwise. A condition that
//! cannot be evaluated (a missing attribute) counts as false.

use switchboard_codec::ChannelEvent;

use super::Flow;
use crate::StateId;
use crate::condition::Condition;
use crate::run::Run;

pub(super) fn run(
    run: &mut Run<'_>,
    arms: &[(Condition, StateId)],
    otherwise: StateId,
    event: &ChannelEvent,
) -> Flow {
    let profile = &run.customer.profile;
    let taken = arms
        .iter()
        .find(|(c, _)| run.scope.holds(c, event, profile).unwrap_or(false))
        .map(|(_, next)| *next);
    Flow::Next(taken.unwrap_or(otherwise))
}

//! `branch`: the first arm whose CEL condition holds; `else` otherwise. A condition that
//! cannot be evaluated (a missing attribute) counts as false.

use switchboard_codec::ChannelEvent;

use super::Flow;
use crate::StateId;
use crate::condition::Condition;
use crate::context::{event_value, profile_value};
use crate::interpret::Run;

pub(super) fn run(
    run: &Run<'_>,
    arms: &[(Condition, StateId)],
    otherwise: StateId,
    event: &ChannelEvent,
) -> Flow {
    let (event, profile) = (event_value(event), profile_value(&run.customer.profile));
    let taken = arms
        .iter()
        .find(|(c, _)| c.holds(&event, &profile).unwrap_or(false))
        .map(|(_, next)| *next);
    Flow::Next(taken.unwrap_or(otherwise))
}

//! `wait`, `wait_until` and `wait_for`: schedule the instance's timer and suspend.

use super::Flow;
use crate::run::Run;
use crate::state::{Effect, Instance};

pub(super) fn start(run: &mut Run<'_>, inst: &mut Instance, at: i64) -> Flow {
    inst.wake_at = Some(at);
    run.effects.push(Effect::ScheduleTimer {
        journey: inst.journey.clone(),
        at,
    });
    Flow::Suspend
}

//! One file per kind of step. [`enter`] runs a state the customer has just reached;
//! [`resume`] runs the state whose timer fired.

mod branch;
mod exit;
mod send;
mod split;
mod update;
mod wait;

use switchboard_codec::{ChannelEvent, TransitionKind};

use crate::run::Run;
use crate::state::Instance;
use crate::{Journey, State, StateId, StepKind};

/// What happens after a state ran.
#[derive(Debug)]
pub(crate) enum Flow {
    /// Go on to this state now.
    Next(StateId),
    /// Stay here until a timer or an awaited event.
    Suspend,
    /// The journey is over, for this reason.
    End(String),
}

/// Runs a state the instance just reached. `event` is the event that moved it, if any;
/// conditions see it as `event`, else the journey's trigger event.
pub(crate) fn enter(
    run: &mut Run<'_>,
    j: &Journey,
    inst: &mut Instance,
    state: &State,
    event: Option<&ChannelEvent>,
    path: &[&str],
) -> Flow {
    // A split's own transition carries the variant it chose, so it says which arm the entry
    // joined; every other step's is recorded before it runs.
    if let StepKind::Split { arms, optimize } = &state.kind {
        let (flow, how) = split::run(run, inst, state, arms, optimize.is_some());
        run.transition(inst, TransitionKind::Step, Some(state), Some(how.into()));
        return flow;
    }
    run.transition(
        inst,
        TransitionKind::Step,
        Some(state),
        Some(state.kind.kind_name().to_owned()),
    );
    match &state.kind {
        StepKind::Send { .. } => send::run(run, j, inst, state, path),
        StepKind::Wait { ms, .. } => wait::start(run, inst, run.now.saturating_add(*ms)),
        StepKind::WaitUntil { minute_of_day, .. } => {
            let tz = run
                .customer
                .profile
                .timezone
                .clone()
                .unwrap_or_else(|| run.policies.default_timezone.clone());
            let at = crate::time::next_local_time(run.now, &tz, *minute_of_day);
            wait::start(run, inst, at)
        }
        StepKind::WaitFor { timeout_ms, .. } => {
            wait::start(run, inst, run.now.saturating_add(*timeout_ms))
        }
        StepKind::Branch { arms, otherwise } => branch::run(
            run,
            arms,
            *otherwise,
            event.unwrap_or(inst.trigger.as_ref()),
        ),
        // Run above, before its transition.
        StepKind::Split { .. } => Flow::End("split_not_run".into()),
        StepKind::Update {
            set,
            increment,
            add_tags,
            remove_tags,
            next,
        } => {
            update::run(
                run,
                event.unwrap_or(inst.trigger.as_ref()),
                set,
                increment,
                add_tags,
                remove_tags,
            );
            Flow::Next(*next)
        }
        StepKind::Exit { outcome } => exit::run(outcome),
    }
}

/// Runs the state whose timer fired: a wait ends, a `wait_for` times out, a send deferred
/// by quiet hours is tried again.
pub(crate) fn resume(run: &mut Run<'_>, j: &Journey, inst: &mut Instance, state: StateId) -> Flow {
    let Some(state) = j.state(state) else {
        return Flow::End("unknown_state".into());
    };
    match &state.kind {
        StepKind::Wait { next, .. } | StepKind::WaitUntil { next, .. } => Flow::Next(*next),
        StepKind::WaitFor { on_timeout, .. } => Flow::Next(*on_timeout),
        StepKind::Send { .. } => send::run(run, j, inst, state, &[state.name.as_str()]),
        // Other states never schedule a timer: a stray one leaves the instance where it is.
        _ => Flow::Suspend,
    }
}

//! One application of an input in progress, and the two things every step may do with it:
//! record a transition, end an instance. The interpreter ([`crate::interpret`]) drives it;
//! the steps ([`crate::steps`]) act on it.

use std::sync::Arc;

use switchboard_codec::{ChannelEvent, TransitionKind};

use crate::context::Scope;
use crate::policy::Policies;
use crate::set::JourneySet;
use crate::state::{Customer, Decision, Effect, Instance, MAX_DECISIONS, Transition};
use crate::{State, Winners};

/// One application in progress.
pub(crate) struct Run<'a> {
    pub journeys: &'a JourneySet,
    pub policies: &'a Policies,
    pub winners: &'a Winners,
    pub customer: Customer,
    pub effects: Vec<Effect>,
    pub now: i64,
    pub trigger: String,
    /// Where conditions are evaluated.
    pub scope: Scope,
    /// The event's trigger as instances keep it, once a journey was entered: every journey
    /// the event starts shares it.
    pub entered_by: Option<Arc<ChannelEvent>>,
}

impl<'a> Run<'a> {
    /// Records why `journey` did what it did (or did not) for this customer.
    pub(crate) fn decide(
        &mut self,
        journey: &str,
        step: Option<&str>,
        reason: &'static str,
        detail: Option<String>,
    ) {
        let decision = Decision {
            at: self.now,
            journey: journey.to_owned(),
            step: step.map(str::to_owned),
            reason: reason.to_owned(),
            detail,
            trigger: self.trigger.clone(),
        };
        let decisions = &mut self.customer.decisions;
        decisions.push(decision);
        let over = decisions.len().saturating_sub(MAX_DECISIONS);
        decisions.drain(..over);
        self.effects.push(Effect::Decided {
            journey: journey.to_owned(),
            reason,
        });
    }

    /// Records a transition of `inst`'s entry.
    pub(crate) fn transition(
        &mut self,
        inst: &Instance,
        kind: TransitionKind,
        step: Option<&State>,
        reason: Option<String>,
    ) {
        self.transition_of(inst, kind, step, reason, false);
    }

    /// Records a transition of `inst`'s entry, held out or not.
    pub(crate) fn transition_of(
        &mut self,
        inst: &Instance,
        kind: TransitionKind,
        step: Option<&State>,
        reason: Option<String>,
        holdout: bool,
    ) {
        self.effects.push(Effect::Transition(Transition {
            journey: inst.journey.clone(),
            version: inst.version,
            kind,
            step: step.map(|s| s.name.clone()),
            reason,
            trigger: self.trigger.clone(),
            at: self.now,
            variant: inst.variant.clone(),
            holdout,
            entry: inst.id.clone(),
            step_kind: step.map(|s| s.kind.kind_name()),
        }));
    }

    /// Ends an instance that is no longer in the map.
    pub(crate) fn end(&mut self, inst: &Instance, reason: String) {
        if let Some(at) = inst.wake_at {
            self.effects.push(Effect::CancelTimer {
                journey: inst.journey.clone(),
                at,
            });
        }
        self.transition(inst, TransitionKind::Exited, None, Some(reason));
    }
}

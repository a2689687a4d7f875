//! The pure interpreter: `apply(journeys, policies, customer, input, now)` returns the
//! customer's new state and the effects the engine must carry out. No I/O, no clock, no
//! randomness: the same arguments always give the same result.
//!
//! Order for an event: the profile learns from it (addresses, locale, consent); live
//! instances see it (goal, exit, awaited event), highest journey priority first; then
//! journeys it triggers are entered, highest priority first, so caps favour them.

use std::sync::Arc;

use switchboard_codec::{ChannelEvent, TransitionKind};

use crate::Winners;
use crate::context::Scope;
use crate::ids;
use crate::policy::Policies;
use crate::run::Run;
use crate::set::JourneySet;
use crate::state::{Attribution, Customer, Effect, Entry, Input, Instance, Transition};
use crate::steps::{self, Flow};
use crate::{Journey, Reentry};

/// Most states one input may run through for one instance; validation already rejects
/// cycles without a wait, so this only guards against a bug.
const STEP_BUDGET: usize = 1_000;

/// Applies one input to one customer, before any split picked a winner.
pub fn apply(
    journeys: &JourneySet,
    policies: &Policies,
    customer: Customer,
    input: &Input,
    now: i64,
) -> (Customer, Vec<Effect>) {
    static NONE: Winners = Winners::new();
    apply_with(journeys, policies, &NONE, customer, input, now)
}

/// Applies one input to one customer; an optimized split with a winner in `winners` sends
/// new entries there.
pub fn apply_with(
    journeys: &JourneySet,
    policies: &Policies,
    winners: &Winners,
    customer: Customer,
    input: &Input,
    now: i64,
) -> (Customer, Vec<Effect>) {
    let mut run = Run {
        journeys,
        policies,
        winners,
        customer,
        // Most inputs make a few effects: room for them without growing.
        effects: Vec::with_capacity(8),
        now,
        trigger: input.trigger(),
        scope: Scope::default(),
        entered_by: None,
    };
    run.prune();
    match input {
        Input::Event(e) => run.on_event(e),
        Input::Timer { journey, due } => run.on_timer(journey, *due),
    }
    (run.customer, run.effects)
}

impl<'a> Run<'a> {
    /// Forgets sends older than every cap window, and entries whose goal window closed.
    fn prune(&mut self) {
        let horizon = self.now.saturating_sub(self.policies.longest_window());
        self.customer.profile.sends.retain(|s| s.at > horizon);
        let now = self.now;
        let journeys = self.journeys;
        (self.customer.attributions)
            .retain(|a| a.goal(journeys).is_some_and(|(_, until)| until >= now));
    }

    /// Records a `goal` for every entry whose goal `e` is, inside its window: each entry
    /// counts its first goal once, held out or treated, running or ended. Returns the
    /// journeys whose entries converted.
    fn attribute_goals(&mut self, e: &ChannelEvent) -> Vec<String> {
        let now = self.now;
        let journeys = self.journeys;
        let reaches = |a: &Attribution| {
            a.goal(journeys).is_some_and(|(goal, until)| {
                goal == e.event_type && a.entered_at <= now && now <= until
            })
        };
        let (reached, open): (Vec<Attribution>, Vec<Attribution>) =
            std::mem::take(&mut self.customer.attributions)
                .into_iter()
                .partition(reaches);
        self.customer.attributions = open;
        let mut journeys = Vec::with_capacity(reached.len());
        for a in reached {
            self.effects.push(Effect::Transition(Transition {
                journey: a.journey.clone(),
                version: a.version,
                kind: TransitionKind::Goal,
                step: None,
                reason: Some(e.event_type.clone()),
                trigger: self.trigger.clone(),
                at: now,
                variant: a.variant,
                holdout: a.holdout,
                entry: a.entry,
                step_kind: None,
            }));
            journeys.push(a.journey);
        }
        journeys
    }

    fn observe(&mut self, e: &ChannelEvent) {
        let p = &mut self.customer.profile;
        for id in &e.identifiers {
            if let Some(channel) = self.policies.address_kinds.get(&id.kind)
                && p.addresses.get(channel) != Some(&id.value)
            {
                p.addresses.insert(channel.clone(), id.value.clone());
            }
        }
        if e.locale.is_some() {
            p.locale.clone_from(&e.locale);
        }
        if e.timezone.is_some() {
            p.timezone.clone_from(&e.timezone);
        }
        match &mut p.last_channel {
            Some(last) => last.clone_from(&e.channel),
            none => *none = Some(e.channel.clone()),
        }
        if e.event_type == "consent.changed" {
            let channel = e.attributes.get("channel");
            let granted = e.attributes.get("granted");
            if let (
                Some(switchboard_codec::AttrValue::String(c)),
                Some(switchboard_codec::AttrValue::Bool(g)),
            ) = (channel, granted)
            {
                p.consent.insert(c.clone(), *g);
            }
        } else if let Some((channel, what)) = e.event_type.split_once('.')
            && self.policies.channels.iter().any(|c| c == channel)
        {
            match what {
                "unsubscribed" => {
                    p.consent.insert(channel.to_owned(), false);
                }
                "subscribed" => {
                    p.consent.insert(channel.to_owned(), true);
                }
                _ => {}
            }
        }
    }

    /// The live instances, taken out of the customer to see an event: highest journey
    /// priority first, ties by journey id (the map's order, which a stable sort keeps).
    fn take_live_by_priority(&mut self) -> Vec<(String, Instance)> {
        let mut live = std::mem::take(&mut self.customer.instances).into_tuple_vec();
        let journeys = self.journeys;
        live.sort_by_key(|(_, i)| {
            std::cmp::Reverse(
                journeys
                    .get(&i.journey, i.version)
                    .map_or(0, |j| j.priority),
            )
        });
        live
    }

    fn on_event(&mut self, e: &ChannelEvent) {
        self.observe(e);
        let converted = self.attribute_goals(e);
        for (id, mut inst) in self.take_live_by_priority() {
            let Some(j) = self.migrate(&mut inst) else {
                continue;
            };
            if let Some((goal, window)) = &j.goal
                && *goal == e.event_type
                && self.now <= inst.entered_at.saturating_add(*window)
            {
                // An instance entered before entries were attributed has its goal counted
                // here; every other entry's goal was counted above.
                if !converted.contains(&inst.journey) {
                    self.transition(&inst, TransitionKind::Goal, None, Some(goal.clone()));
                }
                self.end(&inst, format!("goal:{goal}"));
                continue;
            }
            if j.exit_on.contains(&e.event_type) {
                self.end(&inst, format!("exit_on:{}", e.event_type));
                continue;
            }
            let awaited = j
                .state_id(&inst.state)
                .and_then(|s| j.state(s))
                .and_then(|s| match &s.kind {
                    crate::StepKind::WaitFor {
                        event, on_event, ..
                    } if *event == e.event_type => Some(*on_event),
                    _ => None,
                });
            match awaited {
                Some(next) => {
                    if let Some(at) = inst.wake_at.take() {
                        self.effects.push(Effect::CancelTimer {
                            journey: inst.journey.clone(),
                            at,
                        });
                    }
                    self.advance(j, inst, Some(next), Some(e));
                }
                None => {
                    self.customer.instances.insert(id, inst);
                }
            }
        }
        let journeys: &'a JourneySet = self.journeys;
        for j in journeys.triggered_by(&e.event_type) {
            if self.customer.instances.contains_key(&j.id) {
                self.decide(&j.id, None, "already_in", None);
            } else {
                self.try_enter(j, e);
            }
        }
    }

    fn on_timer(&mut self, journey: &str, due: i64) {
        let Some(mut inst) = self.customer.instances.remove(journey) else {
            return;
        };
        if inst.wake_at != Some(due) || self.now < due {
            // A stale or early timer (the instance moved on, or was rescheduled): ignore it.
            self.customer.instances.insert(journey.to_owned(), inst);
            return;
        }
        inst.wake_at = None;
        let Some(j) = self.migrate(&mut inst) else {
            return;
        };
        let Some(state) = j.state_id(&inst.state) else {
            self.end(&inst, "unknown_state".into());
            return;
        };
        match steps::resume(self, j, &mut inst, state) {
            Flow::Next(next) => self.advance(j, inst, Some(next), None),
            Flow::Suspend => {
                self.customer.instances.insert(inst.journey.clone(), inst);
            }
            Flow::End(reason) => self.end(&inst, reason),
        }
    }

    /// The journey an instance runs on, after moving it to a newer version that maps its
    /// state. `None` (and the instance ended) when its version is gone.
    fn migrate(&mut self, inst: &mut Instance) -> Option<&'a Journey> {
        let journeys: &'a JourneySet = self.journeys;
        if let Some(newest) = journeys.newest_of(&inst.journey)
            && newest.version == inst.version + 1
            && let Some(to) = newest
                .migrate_from_previous
                .get(&inst.state)
                .and_then(|s| newest.state(*s))
        {
            let reason = format!("migrated from v{} state {}", inst.version, inst.state);
            inst.version = newest.version;
            inst.state = to.name.clone();
            self.transition(inst, TransitionKind::Step, Some(to), Some(reason));
        }
        match journeys.get(&inst.journey, inst.version) {
            Some(j) => Some(j),
            None => {
                self.end(inst, "version_removed".into());
                None
            }
        }
    }

    fn try_enter(&mut self, j: &Journey, e: &ChannelEvent) {
        let history = self.customer.profile.history.get(&j.id).copied();
        let refused = match (j.reentry, history) {
            (_, None) | (Reentry::Always, _) => None,
            (Reentry::Never, Some(_)) => Some(("reentry_never", None)),
            (Reentry::AfterMs(ms), Some(h)) => (self.now.saturating_sub(h.at) < ms).then(|| {
                let again = crate::time::iso(h.at.saturating_add(ms));
                (
                    "cooldown",
                    Some(format!("entered before; again from {again}")),
                )
            }),
        };
        if let Some((reason, detail)) = refused {
            self.decide(&j.id, None, reason, detail);
            return;
        }
        let conditions = [
            (&j.trigger_if, "trigger_condition_false"),
            (&j.audience, "audience_false"),
        ];
        for (c, reason) in conditions {
            let Some(c) = c else { continue };
            let held = self.scope.holds(c, e, &self.customer.profile);
            match held {
                Ok(true) => {}
                Ok(false) => {
                    self.decide(&j.id, None, reason, Some(c.source().to_owned()));
                    return;
                }
                // A missing attribute, usually: the condition does not hold, and says why.
                Err(error) => {
                    self.decide(&j.id, None, "condition_error", Some(error));
                    return;
                }
            }
        }
        let inst = Instance {
            journey: j.id.clone(),
            version: j.version,
            id: ids::entry_id(&j.id, j.version, &e.event_id),
            state: j.state(j.start).map(|s| s.name.clone()).unwrap_or_default(),
            entered_at: self.now,
            variant: None,
            wake_at: None,
            trigger: Arc::clone(self.entered_by.get_or_insert_with(|| {
                // What steps read of the trigger (its type, channel, id, time and
                // attributes); the identifiers, locale and time zone are the profile's, and
                // would cost every instance their bytes.
                Arc::new(ChannelEvent {
                    event_id: e.event_id.clone(),
                    event_type: e.event_type.clone(),
                    channel: e.channel.clone(),
                    occurred_at: e.occurred_at,
                    attributes: e.attributes.clone(),
                    identifiers: Vec::new(),
                    locale: None,
                    timezone: None,
                })
            })),
        };
        // No draw for a journey without a control group: none would fall below 0.
        let holdout = j.holdout > 0.0
            && ids::fraction(&[&self.customer.profile.id, &j.id, "holdout"]) < j.holdout;
        self.customer.profile.history.insert(
            j.id.clone(),
            Entry {
                at: self.now,
                holdout,
            },
        );
        // A new entry takes the journey's attribution over: a goal from now on is its.
        self.customer.attributions.retain(|a| a.journey != j.id);
        if j.goal.is_some() {
            self.customer.attributions.push(Attribution {
                journey: j.id.clone(),
                version: j.version,
                entry: inst.id.clone(),
                variant: None,
                holdout,
                entered_at: self.now,
            });
        }
        if holdout {
            let share = format!("control group {:.0}%", j.holdout * 100.0);
            self.decide(&j.id, None, "holdout", Some(share));
            self.transition_of(
                &inst,
                TransitionKind::Holdout,
                None,
                Some(format!("control group {:.0}%", j.holdout * 100.0)),
                true,
            );
            return;
        }
        self.transition(&inst, TransitionKind::Entered, None, None);
        self.advance(j, inst, Some(j.start), Some(e));
    }

    /// Runs `inst` from `from` until it waits or ends.
    fn advance(
        &mut self,
        j: &Journey,
        mut inst: Instance,
        mut from: Option<crate::StateId>,
        event: Option<&ChannelEvent>,
    ) {
        let mut path = Vec::new();
        for _ in 0..STEP_BUDGET {
            let Some(state) = from.and_then(|s| j.state(s)) else {
                self.end(&inst, "unknown_state".into());
                return;
            };
            inst.state.clone_from(&state.name);
            path.push(state.name.as_str());
            let flow = steps::enter(self, j, &mut inst, state, event, &path);
            match flow {
                Flow::Next(next) => from = Some(next),
                Flow::Suspend => {
                    self.customer.instances.insert(inst.journey.clone(), inst);
                    return;
                }
                Flow::End(reason) => {
                    self.end(&inst, reason);
                    return;
                }
            }
        }
        self.end(&inst, "step_budget_exceeded".into());
    }
}

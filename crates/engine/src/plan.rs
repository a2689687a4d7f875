//! The engine's pure core: a batch of `customer.events` records, or of a partition's due
//! timers, planned over the records of the profiles it touches. The plan says everything the
//! engine service then does (load, plan, persist, publish): which losers to mark merged,
//! which profiles to forget, which records to forward to a merge's survivor, each changed
//! profile's new record with its outbox and timers, which timers leave the shard, and what
//! happened, for the metrics. `simulate` runs the same planner, so the two cannot disagree.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_codec::{CustomerEvent, CustomerPayload, JourneyTransition, TransitionKind};
use switchboard_identity::ProfileId;
use switchboard_journey::{
    Effect, Input, JourneySet, Policies, Transition, Winners, apply_with, fold,
};

use crate::forget::{FORGET_EVENT, profiles_to_forget};
use crate::ids::{forgotten_id, transition_id};
use crate::ports::DueTimer;
use crate::record::{Absorbed, MAX_ABSORBED, Outgoing, Record};

/// What the planner needs besides the records: the catalog, the dedup window and the
/// winners of optimized splits.
#[derive(Debug, Clone, Copy)]
pub struct Planner<'a> {
    pub journeys: &'a JourneySet,
    pub policies: &'a Policies,
    /// How long a profile remembers an event id: the same id again within it is a duplicate.
    pub dedup_window_ms: u64,
    /// Each optimized journey's winning variant, once settled ([`crate::optimize`]).
    pub winners: &'a Winners,
}

impl<'a> Planner<'a> {
    /// A planner before any optimized split has a winner.
    pub fn new(journeys: &'a JourneySet, policies: &'a Policies, dedup_window_ms: u64) -> Self {
        static NONE: Winners = Winners::new();
        Self {
            journeys,
            policies,
            dedup_window_ms,
            winners: &NONE,
        }
    }

    /// This planner, sending new entries of optimized splits to `winners`.
    #[must_use]
    pub fn with_winners(self, winners: &'a Winners) -> Self {
        Self { winners, ..self }
    }
}

/// One batch of a partition's inputs.
#[derive(Debug, Clone)]
pub enum Inputs {
    /// Records of `customer.events`, each with its offset, in offset order.
    Events(Vec<(i64, CustomerEvent)>),
    /// Due timers of the partition, in any order: per profile they fire by due time, the
    /// highest journey priority first when due together (so the journey that matters most
    /// gets the cap's room).
    Timers(Vec<DueTimer>),
}

impl Inputs {
    /// The profiles whose records a plan of these inputs reads, sorted, each once.
    pub fn profiles(&self) -> Vec<ProfileId> {
        let mut all: Vec<ProfileId> = Vec::new();
        match self {
            Self::Events(events) => {
                for (_, ce) in events {
                    all.push(ProfileId::from(ce.profile_id.as_str()));
                    if let CustomerPayload::Merged(m) = &ce.payload {
                        all.push(ProfileId::from(m.loser.as_str()));
                    }
                }
            }
            Self::Timers(timers) => all.extend(timers.iter().map(|t| t.profile.clone())),
        }
        all.sort();
        all.dedup();
        all
    }
}

/// One profile's atomic write: its record, its outbox (published once saved) and the timers
/// it sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub profile: ProfileId,
    pub record: Record,
    /// Replaces the profile's outbox when not empty.
    pub outbox: Vec<Outgoing>,
    /// Timers to add to the partition's shard: (journey, due).
    pub timers: Vec<(String, i64)>,
}

/// An erasure: the profiles whose state is deleted (the request's profile first, then those
/// merged into it) and the `forgotten` transition that tells of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Forget {
    pub profiles: Vec<ProfileId>,
    pub transition: JourneyTransition,
}

/// What happened in a plan that the records alone do not say, for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happened {
    /// An event id the profile applied within the dedup window: skipped.
    Duplicate,
    /// A send command, `latency_ms` after its event occurred (or its timer was due).
    Sent { channel: String, latency_ms: i64 },
    /// A timer fired, `lag_ms` after it was due.
    TimerFired { lag_ms: i64 },
    /// A decision of `journey` about the customer (see `switchboard_journey::Decision`).
    Decided {
        journey: String,
        reason: &'static str,
    },
}

/// Everything a batch changes, in the order the engine service carries it out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// `(loser, survivor)`: marked first, so the losers' own partitions stop firing their
    /// timers and forward their late records before the survivors take their instances over.
    pub merges: Vec<(ProfileId, ProfileId)>,
    /// Erasures, carried out before the writes.
    pub forgets: Vec<Forget>,
    /// Records for merged profiles, re-keyed to their survivors.
    pub forwards: Vec<CustomerEvent>,
    /// Each changed profile's write, by profile.
    pub writes: Vec<Write>,
    /// Timers that leave the shard once the writes are saved: those fired, and those
    /// cancelled and not set again.
    pub done_timers: Vec<DueTimer>,
    pub happened: Vec<Happened>,
}

impl Plan {
    /// Every transition the plan publishes: the writes' and the erasures'.
    pub fn transitions(&self) -> impl Iterator<Item = &JourneyTransition> {
        let outbox = self.writes.iter().flat_map(|w| &w.outbox);
        let forgotten = self.forgets.iter().map(|f| &f.transition);
        outbox
            .filter_map(|o| match o {
                Outgoing::Transition(t) => Some(t),
                Outgoing::Command(_) => None,
            })
            .chain(forgotten)
    }
}

/// A profile being changed by the batch.
struct Changing {
    record: Record,
    outbox: Vec<Outgoing>,
    timers: Vec<(String, i64)>,
    cancelled: Vec<(String, i64)>,
    changed: bool,
    /// The profile had a stored record.
    found: bool,
}

impl Planner<'_> {
    /// Plans `inputs` over `stored`, the records of [`Inputs::profiles`] that exist (the
    /// others start empty), at `now`.
    pub fn plan(&self, mut stored: BTreeMap<ProfileId, Record>, inputs: Inputs, now: i64) -> Plan {
        let mut profiles: BTreeMap<ProfileId, Changing> = inputs
            .profiles()
            .into_iter()
            .map(|id| {
                let found = stored.remove(&id);
                let changing = Changing {
                    found: found.is_some(),
                    record: found.unwrap_or_else(|| Record::new(&id)),
                    outbox: Vec::new(),
                    timers: Vec::new(),
                    cancelled: Vec::new(),
                    changed: false,
                };
                (id, changing)
            })
            .collect();
        let mut plan = Plan::default();
        match inputs {
            Inputs::Events(events) => {
                let mut forgotten = BTreeSet::new();
                for (offset, ce) in events {
                    self.event(&mut profiles, &mut forgotten, &mut plan, offset, ce, now);
                }
            }
            Inputs::Timers(mut timers) => {
                timers.sort_by(|a, b| {
                    a.profile.cmp(&b.profile).then_with(|| {
                        (self.journeys).timer_order((a.due, &a.journey), (b.due, &b.journey))
                    })
                });
                for timer in &timers {
                    self.timer(&mut profiles, &mut plan, timer, now);
                }
                plan.done_timers = timers;
            }
        }
        for (profile, p) in profiles {
            if !p.changed {
                continue;
            }
            // A cancelled timer leaves the shard, unless the batch set it again.
            for (journey, due) in p.cancelled {
                if !p.timers.iter().any(|(j, at)| *j == journey && *at == due) {
                    plan.done_timers.push(DueTimer {
                        profile: profile.clone(),
                        journey,
                        due,
                    });
                }
            }
            plan.writes.push(Write {
                profile,
                record: p.record,
                outbox: p.outbox,
                timers: p.timers,
            });
        }
        plan
    }

    fn event(
        &self,
        profiles: &mut BTreeMap<ProfileId, Changing>,
        forgotten: &mut BTreeSet<ProfileId>,
        plan: &mut Plan,
        offset: i64,
        ce: CustomerEvent,
        now: i64,
    ) {
        if forgotten.contains(ce.profile_id.as_str()) {
            return;
        }
        let Some(p) = profiles.get_mut(ce.profile_id.as_str()) else {
            return;
        };
        if offset <= p.record.offset {
            return; // applied before a crash or rebalance
        }
        if let Some(survivor) = p.record.merged_into.clone() {
            plan.forwards.push(forward(ce, survivor));
            return;
        }
        let CustomerEvent {
            profile_id,
            payload,
            identifiers,
            ..
        } = ce;
        let profile_id = ProfileId::from(profile_id);
        match payload {
            CustomerPayload::Event(event) if event.event_type == FORGET_EVENT => {
                let all = profiles_to_forget(&profile_id, &event);
                for profile in &all {
                    profiles.remove(profile);
                    forgotten.insert(profile.clone());
                }
                plan.forgets.push(Forget {
                    transition: JourneyTransition {
                        transition_id: forgotten_id(profile_id.as_str(), &event.event_id),
                        profile_id: profile_id.to_string(),
                        journey: String::new(),
                        version: 0,
                        kind: TransitionKind::Forgotten,
                        step: None,
                        reason: Some(format!("erasure of {} profile(s)", all.len())),
                        trigger: event.event_id,
                        at: now,
                        variant: None,
                        holdout: false,
                        entry_id: None,
                        step_kind: None,
                    },
                    profiles: all,
                });
            }
            CustomerPayload::Event(mut event) => {
                if !p
                    .record
                    .recent
                    .first_time(&event.event_id, now, self.dedup_window_ms)
                {
                    plan.happened.push(Happened::Duplicate);
                    return;
                }
                // The stitched identifiers are the normalised ones (E.164 phones, lower-cased
                // emails): addresses come from them.
                if !identifiers.is_empty() {
                    event.identifiers = identifiers;
                }
                let from = event.occurred_at;
                self.apply(p, plan, &profile_id, &Input::Event(event), now, from);
                p.record.offset = offset;
            }
            CustomerPayload::Merged(m) => {
                let (survivor, loser_id) = (ProfileId::from(m.survivor), ProfileId::from(m.loser));
                let (loser, loser_recent) = profiles
                    .get(&loser_id)
                    .map(|l| (l.record.customer.clone(), l.record.recent.clone()))
                    .unwrap_or_default();
                // From here on the loser forwards, in this batch as after it; and should it
                // be written (it absorbed a merge earlier in the batch), it says so itself.
                if let Some(l) = profiles.get_mut(&loser_id) {
                    l.record.merged_into = Some(survivor.clone());
                }
                plan.merges.push((loser_id.clone(), survivor));
                let Some(p) = profiles.get_mut(&profile_id) else {
                    return;
                };
                p.record.recent.absorb(&loser_recent);
                let (took, ended): (Vec<String>, Vec<String>) = loser
                    .instances
                    .keys()
                    .cloned()
                    .partition(|j| !p.record.customer.instances.contains_key(j));
                let absorbed = &mut p.record.absorbed;
                if !absorbed.iter().any(|a| a.profile == loser_id) {
                    absorbed.push(Absorbed {
                        profile: loser_id.clone(),
                        at: now,
                        took,
                        ended,
                    });
                    let over = absorbed.len().saturating_sub(MAX_ABSORBED);
                    absorbed.drain(..over);
                }
                let survivor = std::mem::take(&mut p.record.customer);
                let (mut folded, effects) = fold(survivor, loser, now);
                folded.profile.id = profile_id.to_string();
                p.record.customer = folded;
                for effect in effects {
                    match effect {
                        Effect::ScheduleTimer { journey, at } => p.timers.push((journey, at)),
                        // The loser's instances that end here: on the loser's funnel.
                        Effect::Transition(t) => p.outbox.push(transition(&loser_id, t)),
                        Effect::Send(_) | Effect::CancelTimer { .. } | Effect::Decided { .. } => {}
                    }
                }
                p.record.offset = offset;
                p.changed = true;
            }
        }
    }

    fn timer(
        &self,
        profiles: &mut BTreeMap<ProfileId, Changing>,
        plan: &mut Plan,
        timer: &DueTimer,
        now: i64,
    ) {
        plan.happened.push(Happened::TimerFired {
            lag_ms: (now - timer.due).max(0),
        });
        let Some(p) = profiles.get_mut(&timer.profile) else {
            return;
        };
        // Forgotten or never stored: nothing to wake up. Merged: the instance moved to the
        // survivor with a timer of its own.
        if !p.found || p.record.merged_into.is_some() {
            return;
        }
        let input = Input::Timer {
            journey: timer.journey.clone(),
            due: timer.due,
        };
        self.apply(p, plan, &timer.profile, &input, now, timer.due);
    }

    /// Applies one input to `p` through the interpreter and sorts out its effects.
    fn apply(
        &self,
        p: &mut Changing,
        plan: &mut Plan,
        profile: &ProfileId,
        input: &Input,
        now: i64,
        latency_from: i64,
    ) {
        let customer = std::mem::take(&mut p.record.customer);
        let (customer, effects) = apply_with(
            self.journeys,
            self.policies,
            self.winners,
            customer,
            input,
            now,
        );
        p.record.customer = customer;
        p.changed = true;
        for effect in effects {
            match effect {
                Effect::Send(cmd) => {
                    plan.happened.push(Happened::Sent {
                        channel: cmd.channel.clone(),
                        latency_ms: (now - latency_from).max(0),
                    });
                    p.outbox.push(Outgoing::Command(*cmd));
                }
                Effect::Transition(t) => p.outbox.push(transition(profile, t)),
                Effect::ScheduleTimer { journey, at } => p.timers.push((journey, at)),
                Effect::CancelTimer { journey, at } => p.cancelled.push((journey, at)),
                Effect::Decided { journey, reason } => {
                    plan.happened.push(Happened::Decided { journey, reason })
                }
            }
        }
    }
}

/// A journey transition of `profile`, as published.
fn transition(profile: &ProfileId, t: Transition) -> Outgoing {
    Outgoing::Transition(JourneyTransition {
        transition_id: transition_id(profile.as_str(), &t),
        profile_id: profile.to_string(),
        journey: t.journey,
        version: i32::try_from(t.version).unwrap_or(i32::MAX),
        kind: t.kind,
        step: t.step,
        reason: t.reason,
        trigger: t.trigger,
        at: t.at,
        variant: t.variant,
        holdout: t.holdout,
        entry_id: Some(t.entry),
        step_kind: t.step_kind.map(str::to_owned),
    })
}

/// A record for a merged profile, re-keyed to its survivor.
fn forward(mut ce: CustomerEvent, survivor: ProfileId) -> CustomerEvent {
    if let CustomerPayload::Merged(m) = &mut ce.payload {
        m.survivor = survivor.to_string();
    }
    ce.profile_id = survivor.to_string();
    ce
}

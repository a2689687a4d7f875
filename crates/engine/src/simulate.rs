//! `switchboard simulate`: runs the engine's planner over a file of events with a simulated
//! clock. Timers fire in time order, before any event at or after their due time.
//!
//! Who an event is about is the caller's to say ([`simulate_with`]): `switchboard simulate`
//! stitches each event's identifiers with the stitcher's rules and code, in memory, and folds
//! a merged profile into its survivor as the engine does. [`simulate`] takes the event's
//! strongest identifier as its customer, for tests of journeys alone.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_codec::{
    ChannelEvent, CustomerEvent, CustomerPayload, Identifier, ProfileMerged, SourcePosition,
    TransitionKind,
};
use switchboard_identity::ProfileId;
use switchboard_journey::{JourneySet, Policies, Winners};

use crate::optimize::{self, Tally};
use crate::plan::{Inputs, Planner};
use crate::ports::DueTimer;
use crate::record::{Outgoing, Record};

const STRONGEST_FIRST: [&str; 6] = [
    "customer_id",
    "email",
    "phone",
    "loyalty_card",
    "device_id",
    "anonymous_id",
];
/// Most timers fired after the last event, so a journey that keeps rescheduling ends.
const TIMERS_AFTER_LAST_EVENT: usize = 100_000;

/// One thing that happened to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Happening {
    pub at: i64,
    pub customer: String,
    pub what: What,
}

/// The kinds of [`Happening`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Entered {
        journey: String,
        version: u32,
    },
    Holdout {
        journey: String,
    },
    Step {
        journey: String,
        step: String,
    },
    Send {
        journey: String,
        step: String,
        channel: String,
        template: String,
        trigger: String,
        fallback_from: Vec<String>,
        variant: Option<String>,
    },
    Suppressed {
        journey: String,
        step: String,
        reason: String,
    },
    /// A send waits for the end of quiet hours.
    Deferred {
        journey: String,
        step: String,
        reason: String,
    },
    /// The goal of an entry, treated or held out, came inside its window.
    Goal {
        journey: String,
        variant: Option<String>,
        holdout: bool,
    },
    Exited {
        journey: String,
        reason: String,
    },
    /// The customer's state was erased (`switchboard forget`).
    Forgotten {
        reason: String,
    },
    /// An optimized split picked its winner: new entries go to `variant`. Shown under
    /// [`WINNERS`], not a customer.
    Winner {
        journey: String,
        variant: String,
        reason: String,
    },
    /// The event reached no journey: it has no usable identifier (the stitcher would send it
    /// to the dead-letter topic).
    Rejected {
        event_id: String,
        reason: String,
    },
}

/// What the stitcher makes of an event: its profile, its identifiers as normalised, and the
/// merges it caused (survivor, loser), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stitch {
    pub profile: String,
    pub identifiers: Vec<Identifier>,
    pub merges: Vec<(String, String)>,
}

/// A customer as the event's strongest identifier, raw (no stitching, no normalisation).
pub fn strongest_identifier(e: &ChannelEvent) -> Result<Stitch, String> {
    Ok(Stitch {
        profile: customer_key(e),
        identifiers: e.identifiers.clone(),
        merges: Vec::new(),
    })
}

/// The customer key used by the simulation.
pub fn customer_key(e: &ChannelEvent) -> String {
    STRONGEST_FIRST
        .iter()
        .find_map(|k| e.identifiers.iter().find(|i| i.kind == *k))
        .or_else(|| e.identifiers.first())
        .map_or_else(
            || "unknown".to_owned(),
            |i| format!("{}:{}", i.kind, i.value),
        )
}

/// How long `simulate` remembers an event id per profile: the engine's default.
pub const DEFAULT_DEDUP_WINDOW_MS: u64 = 24 * 3600 * 1000;

/// [`simulate_with`] a customer per strongest identifier ([`strongest_identifier`]), and the
/// engine's default dedup window.
pub fn simulate(
    journeys: &JourneySet,
    policies: &Policies,
    events: Vec<ChannelEvent>,
) -> Vec<Happening> {
    let planner = Planner::new(journeys, policies, DEFAULT_DEDUP_WINDOW_MS);
    simulate_with(&planner, events, &mut strongest_identifier)
}

/// Runs `events` (in `occurred_at` order, stable) and every timer they cause through the
/// engine's planner, each event on the profile `stitch` names, with the identifiers it gives,
/// and a merge as the stitcher announces it (a merge record on the survivor, before the
/// event). The records, the timer shard and the dedup window behave as the engine's store:
/// so what simulate shows is what the engine does. The happenings of a merge's loser and
/// survivor are the survivor's in the end: each is labelled with the strongest identifier of
/// its final profile.
pub fn simulate_with(
    planner: &Planner<'_>,
    events: Vec<ChannelEvent>,
    stitch: &mut dyn FnMut(&ChannelEvent) -> Result<Stitch, String>,
) -> Vec<Happening> {
    let run = drive(planner, events, stitch);
    let mut out = run.engine.out;
    label(&mut out, &run.merged_into, &run.known);
    out
}

/// Every command and transition [`simulate_with`] publishes, in order, as the engine
/// publishes them onto its topics.
pub fn published(
    planner: &Planner<'_>,
    events: Vec<ChannelEvent>,
    stitch: &mut dyn FnMut(&ChannelEvent) -> Result<Stitch, String>,
) -> Vec<Outgoing> {
    drive(planner, events, stitch).engine.published
}

/// The timeline of [`simulate_with`], and [`crate::explain::explain`] of the customer named
/// `who` (as the timeline names customers, e.g. `email:ann@example.com`) at the end of the
/// run; `None` for a name no customer has.
pub fn simulate_and_explain(
    planner: &Planner<'_>,
    events: Vec<ChannelEvent>,
    stitch: &mut dyn FnMut(&ChannelEvent) -> Result<Stitch, String>,
    who: &str,
) -> (Vec<Happening>, Option<String>) {
    let run = drive(planner, events, stitch);
    let mut out = run.engine.out.clone();
    label(&mut out, &run.merged_into, &run.known);
    let end = out.iter().map(|h| h.at).max().unwrap_or_default();
    let found = (run.known.iter())
        .filter(|(p, _)| !run.merged_into.contains_key(*p))
        .find(|(_, ids)| strongest(ids).as_deref() == Some(who));
    let explained = found.map(|(profile, ids)| {
        let merged: Vec<ProfileId> = (run.merged_into.keys())
            .filter(|loser| final_profile(&run.merged_into, loser) == *profile)
            .map(|p| ProfileId::from(p.as_str()))
            .collect();
        let id = ProfileId::from(profile.as_str());
        let identifiers: Vec<Identifier> = ids.iter().cloned().collect();
        let who = crate::explain::Who {
            profile: &id,
            identifiers: &identifiers,
            merged: &merged,
        };
        let record = run.engine.records.get(&id);
        crate::explain::explain(who, record, planner.journeys, planner.policies, end)
    });
    (out, explained)
}

/// The profile `profile` ended up in, after every merge.
fn final_profile(merged_into: &BTreeMap<String, String>, profile: &str) -> String {
    let mut p = profile.to_owned();
    while let Some(s) = merged_into.get(&p) {
        p.clone_from(s);
    }
    p
}

/// A customer's name: their strongest identifier.
fn strongest(ids: &BTreeSet<Identifier>) -> Option<String> {
    STRONGEST_FIRST
        .iter()
        .find_map(|k| ids.iter().find(|i| i.kind == *k))
        .or_else(|| ids.iter().next())
        .map(|i| format!("{}:{}", i.kind, i.value))
}

/// A simulated run: the engine's state and output, and who ended up whom.
struct Run {
    engine: Simulated,
    merged_into: BTreeMap<String, String>,
    known: BTreeMap<String, BTreeSet<Identifier>>,
}

fn drive(
    planner: &Planner<'_>,
    mut events: Vec<ChannelEvent>,
    stitch: &mut dyn FnMut(&ChannelEvent) -> Result<Stitch, String>,
) -> Run {
    events.sort_by_key(|e| e.occurred_at);
    let mut engine = Simulated::default();
    let mut merged_into: BTreeMap<String, String> = BTreeMap::new();
    let mut known: BTreeMap<String, BTreeSet<Identifier>> = BTreeMap::new();
    let mut events = events.into_iter().peekable();
    let mut after_last = 0usize;
    loop {
        // The earliest timers; those due at the same instant fire highest priority first.
        let next_timer = engine
            .timers
            .iter()
            .take_while(|(due, _, _)| Some(*due) == engine.timers.first().map(|t| t.0))
            .min_by(|a, b| {
                a.1.cmp(&b.1)
                    .then_with(|| (planner.journeys).timer_order((a.0, &a.2), (b.0, &b.2)))
            })
            .map(|(due, profile, journey)| DueTimer {
                profile: profile.clone(),
                journey: journey.clone(),
                due: *due,
            });
        let take_timer = match (&next_timer, events.peek()) {
            (Some(t), Some(e)) => t.due <= e.occurred_at,
            (Some(_), None) => {
                after_last += 1;
                after_last <= TIMERS_AFTER_LAST_EVENT
            }
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_timer {
            let Some(timer) = next_timer else { break };
            let now = timer.due;
            engine.run(planner, Inputs::Timers(vec![timer]), now);
            continue;
        }
        let Some(mut e) = events.next() else { break };
        let stitched = match stitch(&e) {
            Ok(s) => s,
            Err(reason) => {
                engine.out.push(Happening {
                    at: e.occurred_at,
                    customer: REJECTED.to_owned(),
                    what: What::Rejected {
                        event_id: e.event_id,
                        reason,
                    },
                });
                continue;
            }
        };
        let now = e.occurred_at;
        for (survivor, loser) in &stitched.merges {
            let merged = CustomerPayload::Merged(ProfileMerged {
                survivor: survivor.clone(),
                loser: loser.clone(),
                cause_event_id: e.event_id.clone(),
            });
            engine.consume(planner, survivor, merged, Vec::new(), now);
            merged_into.insert(loser.clone(), survivor.clone());
            let absorbed = known.remove(loser).unwrap_or_default();
            known.entry(survivor.clone()).or_default().extend(absorbed);
        }
        known
            .entry(stitched.profile.clone())
            .or_default()
            .extend(stitched.identifiers.iter().cloned());
        e.identifiers.clone_from(&stitched.identifiers);
        let payload = CustomerPayload::Event(e);
        engine.consume(
            planner,
            &stitched.profile,
            payload,
            stitched.identifiers,
            now,
        );
    }
    Run {
        engine,
        merged_into,
        known,
    }
}

/// The engine's store, in memory, and what its output shows.
#[derive(Default)]
struct Simulated {
    records: BTreeMap<ProfileId, Record>,
    /// The timer shard, as the store keeps it: (due, profile, journey), so a rescheduled
    /// timer is a new member and the stale one fires onto nothing.
    timers: BTreeSet<(i64, ProfileId, String)>,
    /// The next offset of `customer.events`.
    offset: i64,
    published: Vec<Outgoing>,
    out: Vec<Happening>,
    /// Optimized journeys' counts, and the winners settled from them.
    tallies: BTreeMap<String, Tally>,
    winners: Winners,
}

impl Simulated {
    /// A record of `customer.events` for `profile`, and every record it forwards.
    fn consume(
        &mut self,
        planner: &Planner<'_>,
        profile: &str,
        payload: CustomerPayload,
        identifiers: Vec<Identifier>,
        now: i64,
    ) {
        let record = CustomerEvent {
            profile_id: profile.to_owned(),
            stitched_at: now,
            source: SourcePosition {
                topic: String::new(),
                partition: -1,
                offset: -1,
            },
            payload,
            identifiers,
        };
        let mut queue = vec![record];
        while let Some(record) = queue.pop() {
            self.offset += 1;
            let forwards = self.run(planner, Inputs::Events(vec![(self.offset, record)]), now);
            queue.extend(forwards.into_iter().rev());
        }
    }

    /// Plans `inputs` and carries the plan out as the engine does; returns its forwards.
    fn run(&mut self, planner: &Planner<'_>, inputs: Inputs, now: i64) -> Vec<CustomerEvent> {
        self.pick_winners(planner.journeys, now);
        let stored = inputs
            .profiles()
            .into_iter()
            .filter_map(|p| self.records.get(&p).cloned().map(|r| (p, r)))
            .collect();
        let plan = planner
            .with_winners(&self.winners)
            .plan(stored, inputs, now);
        for c in optimize::counted(&plan, planner.journeys) {
            self.tallies.entry(c.journey.clone()).or_default().add(&c);
        }
        for (loser, survivor) in plan.merges {
            self.records
                .entry(loser)
                .or_insert_with(|| Record {
                    offset: -1,
                    ..Record::default()
                })
                .merged_into = Some(survivor);
        }
        for forget in plan.forgets {
            for p in &forget.profiles {
                self.records.remove(p);
            }
            self.timers.retain(|(_, p, _)| !forget.profiles.contains(p));
            self.show(&Outgoing::Transition(forget.transition));
        }
        for w in plan.writes {
            for (journey, due) in w.timers {
                self.timers.insert((due, w.profile.clone(), journey));
            }
            for o in &w.outbox {
                self.show(o);
            }
            self.records.insert(w.profile, w.record);
        }
        for t in plan.done_timers {
            self.timers.remove(&(t.due, t.profile, t.journey));
        }
        plan.forwards
    }

    /// Settles the winner of each optimized split whose test is over, as the engine's
    /// check does, before the next input.
    fn pick_winners(&mut self, journeys: &JourneySet, now: i64) {
        for j in journeys.newest() {
            let Some(tally) = self.tallies.get_mut(&j.id) else {
                continue;
            };
            if let Some(v) = optimize::verdict(j, tally, now) {
                tally.winner = Some(v.arm.clone());
                self.winners.insert(j.id.clone(), v.arm.clone());
                self.show(&Outgoing::Transition(optimize::winner_transition(
                    j, &v, now,
                )));
            }
        }
    }

    fn show(&mut self, o: &Outgoing) {
        let happening = match o {
            Outgoing::Command(c) => Happening {
                at: c.created_at,
                customer: c.profile_id.clone(),
                what: What::Send {
                    journey: c.journey.clone(),
                    step: c.step.clone(),
                    channel: c.channel.clone(),
                    template: c.template.clone(),
                    trigger: c.reason.trigger.clone(),
                    fallback_from: c.reason.fallback_from.clone(),
                    variant: c.variant.clone(),
                },
            },
            Outgoing::Transition(t) => {
                let journey = t.journey.clone();
                let what = match t.kind {
                    TransitionKind::Entered => What::Entered {
                        journey,
                        version: u32::try_from(t.version).unwrap_or_default(),
                    },
                    TransitionKind::Holdout => What::Holdout { journey },
                    TransitionKind::Step => What::Step {
                        journey,
                        step: t.step.clone().unwrap_or_default(),
                    },
                    TransitionKind::Suppressed => What::Suppressed {
                        journey,
                        step: t.step.clone().unwrap_or_default(),
                        reason: t.reason.clone().unwrap_or_default(),
                    },
                    TransitionKind::Deferred => What::Deferred {
                        journey,
                        step: t.step.clone().unwrap_or_default(),
                        reason: t.reason.clone().unwrap_or_default(),
                    },
                    TransitionKind::Goal => What::Goal {
                        journey,
                        variant: t.variant.clone(),
                        holdout: t.holdout,
                    },
                    TransitionKind::Forgotten => What::Forgotten {
                        reason: t.reason.clone().unwrap_or_default(),
                    },
                    TransitionKind::Winner => What::Winner {
                        journey,
                        variant: t.variant.clone().unwrap_or_default(),
                        reason: t.reason.clone().unwrap_or_default(),
                    },
                    TransitionKind::Exited | TransitionKind::Unknown => What::Exited {
                        journey,
                        reason: t.reason.clone().unwrap_or_default(),
                    },
                };
                let customer = if t.kind == TransitionKind::Winner {
                    WINNERS.to_owned()
                } else {
                    t.profile_id.clone()
                };
                Happening {
                    at: t.at,
                    customer,
                    what,
                }
            }
        };
        self.out.push(happening);
        self.published.push(o.clone());
    }
}

/// The customer of events without a usable identifier.
const REJECTED: &str = "(events without a usable identifier)";
/// Where the winners of optimized splits are shown.
pub const WINNERS: &str = "(optimized splits)";

/// Names each happening's customer by the strongest identifier of the profile it ended in
/// (the survivor of any merges): what a designer recognises, not a profile id.
fn label(
    out: &mut [Happening],
    merged_into: &BTreeMap<String, String>,
    known: &BTreeMap<String, BTreeSet<Identifier>>,
) {
    for h in (out.iter_mut()).filter(|h| h.customer != REJECTED && h.customer != WINNERS) {
        let profile = final_profile(merged_into, &h.customer);
        h.customer = known.get(&profile).and_then(strongest).unwrap_or(profile);
    }
}

/// The timeline per customer, as `switchboard simulate` prints it.
pub fn render(happenings: &[Happening]) -> String {
    let mut by_customer: BTreeMap<&str, Vec<&Happening>> = BTreeMap::new();
    for h in happenings {
        by_customer.entry(&h.customer).or_default().push(h);
    }
    let mut s = String::new();
    for (customer, list) in by_customer {
        s.push_str(&format!("customer {customer}\n"));
        for h in list {
            let at = jiff::Timestamp::from_millisecond(h.at)
                .map_or_else(|_| h.at.to_string(), |t| t.to_string());
            let line = match &h.what {
                What::Entered { journey, version } => format!("entered     {journey} v{version}"),
                What::Holdout { journey } => {
                    format!("holdout     {journey} (control group: no messages)")
                }
                What::Step { journey, step } => format!("step        {journey}/{step}"),
                What::Send {
                    journey,
                    step,
                    channel,
                    template,
                    trigger,
                    fallback_from,
                    variant,
                } => {
                    let fallback = if fallback_from.is_empty() {
                        String::new()
                    } else {
                        format!(", fell back from {}", fallback_from.join(","))
                    };
                    let variant = variant
                        .as_ref()
                        .map(|v| format!(", variant {v}"))
                        .unwrap_or_default();
                    format!(
                        "send        {journey}/{step} {channel} {template} (because {trigger}{fallback}{variant})"
                    )
                }
                What::Suppressed {
                    journey,
                    step,
                    reason,
                } => format!("suppressed  {journey}/{step}: {reason}"),
                What::Deferred {
                    journey,
                    step,
                    reason,
                } => format!("deferred    {journey}/{step}: {reason}"),
                What::Goal {
                    journey,
                    variant,
                    holdout,
                } => match (holdout, variant) {
                    (true, _) => format!("goal        {journey} (control group)"),
                    (false, Some(v)) => format!("goal        {journey} (variant {v})"),
                    (false, None) => format!("goal        {journey}"),
                },
                What::Exited { journey, reason } => format!("exited      {journey} ({reason})"),
                What::Forgotten { reason } => format!("forgotten   ({reason})"),
                What::Winner {
                    journey,
                    variant,
                    reason,
                } => format!("winner      {journey}: {variant} ({reason})"),
                What::Rejected { event_id, reason } => {
                    format!("rejected    event {event_id}: {reason}")
                }
            };
            s.push_str(&format!("  {at}  {line}\n"));
        }
    }
    s
}

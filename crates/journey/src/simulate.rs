//! `switchboard simulate`: runs the interpreter over a file of events with a simulated clock.
//! Timers fire in time order, before any event at or after their due time.
//!
//! Who an event is about is the caller's to say ([`simulate_with`]): `switchboard simulate`
//! stitches each event's identifiers with the stitcher's rules and code, in memory, and folds
//! a merged profile into its survivor as the engine does. [`simulate`] takes the event's
//! strongest identifier as its customer, for tests of journeys alone.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use switchboard_codec::{ChannelEvent, Identifier, TransitionKind};

use crate::state::{Customer, Effect, Input, Profile};
use crate::{JourneySet, Policies, apply, fold};

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
    Goal {
        journey: String,
    },
    Exited {
        journey: String,
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

/// [`simulate_with`] a customer per strongest identifier ([`strongest_identifier`]).
pub fn simulate(
    journeys: &JourneySet,
    policies: &Policies,
    events: Vec<ChannelEvent>,
) -> Vec<Happening> {
    simulate_with(journeys, policies, events, &mut strongest_identifier)
}

/// Runs `events` (in `occurred_at` order, stable) and every timer they cause, each event on
/// the profile `stitch` names, with the identifiers it gives. A merge folds the loser into the
/// survivor as the engine does (its timers move over), and the happenings of both are the
/// survivor's in the end: each is labelled with the strongest identifier of its final profile.
/// A repeated `event_id` is a duplicate and is skipped, as the engine skips it.
pub fn simulate_with(
    journeys: &JourneySet,
    policies: &Policies,
    mut events: Vec<ChannelEvent>,
    stitch: &mut dyn FnMut(&ChannelEvent) -> Result<Stitch, String>,
) -> Vec<Happening> {
    events.sort_by_key(|e| e.occurred_at);
    let mut customers: BTreeMap<String, Customer> = BTreeMap::new();
    let mut merged_into: BTreeMap<String, String> = BTreeMap::new();
    let mut known: BTreeMap<String, BTreeSet<Identifier>> = BTreeMap::new();
    let mut timers: BTreeSet<(i64, String, String)> = BTreeSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let mut events = events.into_iter().peekable();
    let mut after_last = 0usize;
    loop {
        // The earliest timers; those due at the same instant fire highest priority first.
        let next_timer = timers
            .iter()
            .take_while(|(due, _, _)| Some(*due) == timers.first().map(|t| t.0))
            .min_by(|a, b| {
                a.1.cmp(&b.1)
                    .then_with(|| journeys.timer_order((a.0, &a.2), (b.0, &b.2)))
            })
            .cloned();
        let take_timer = match (&next_timer, events.peek()) {
            (Some((due, _, _)), Some(e)) => *due <= e.occurred_at,
            (Some(_), None) => {
                after_last += 1;
                after_last <= TIMERS_AFTER_LAST_EVENT
            }
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let (key, input, now) = if take_timer {
            let Some((due, key, journey)) = next_timer else {
                break;
            };
            timers.remove(&(due, key.clone(), journey.clone()));
            (key, Input::Timer { journey, due }, due)
        } else {
            let Some(mut e) = events.next() else { break };
            if !seen.insert(e.event_id.clone()) {
                continue;
            }
            let stitched = match stitch(&e) {
                Ok(s) => s,
                Err(reason) => {
                    out.push(Happening {
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
            for (survivor, loser) in &stitched.merges {
                let now = e.occurred_at;
                merge(&mut customers, &mut timers, survivor, loser, now, &mut out);
                merged_into.insert(loser.clone(), survivor.clone());
                let absorbed = known.remove(loser).unwrap_or_default();
                known.entry(survivor.clone()).or_default().extend(absorbed);
            }
            known
                .entry(stitched.profile.clone())
                .or_default()
                .extend(stitched.identifiers.iter().cloned());
            e.identifiers = stitched.identifiers;
            let at = e.occurred_at;
            (stitched.profile, Input::Event(e), at)
        };
        let customer = customers.remove(&key).unwrap_or_else(|| Customer {
            profile: Profile {
                id: key.clone(),
                ..Profile::default()
            },
            ..Customer::default()
        });
        let (customer, effects) = apply(journeys, policies, customer, &input, now);
        customers.insert(key.clone(), customer);
        for effect in effects {
            match effect {
                Effect::ScheduleTimer { journey, at } => {
                    timers.retain(|(_, k, j)| !(*k == key && *j == journey));
                    timers.insert((at, key.clone(), journey));
                }
                Effect::CancelTimer { journey, .. } => {
                    timers.retain(|(_, k, j)| !(*k == key && *j == journey))
                }
                Effect::Send(c) => out.push(Happening {
                    at: now,
                    customer: key.clone(),
                    what: What::Send {
                        journey: c.journey,
                        step: c.step,
                        channel: c.channel,
                        template: c.template,
                        trigger: c.reason.trigger,
                        fallback_from: c.reason.fallback_from,
                        variant: c.variant,
                    },
                }),
                Effect::Transition(t) => {
                    let journey = t.journey.clone();
                    let what = match t.kind {
                        TransitionKind::Entered => What::Entered {
                            journey,
                            version: t.version,
                        },
                        TransitionKind::Holdout => What::Holdout { journey },
                        TransitionKind::Step => What::Step {
                            journey,
                            step: t.step.unwrap_or_default(),
                        },
                        TransitionKind::Suppressed => What::Suppressed {
                            journey,
                            step: t.step.unwrap_or_default(),
                            reason: t.reason.unwrap_or_default(),
                        },
                        TransitionKind::Goal => What::Goal { journey },
                        TransitionKind::Exited
                        | TransitionKind::Forgotten
                        | TransitionKind::Unknown => What::Exited {
                            journey,
                            reason: t.reason.unwrap_or_default(),
                        },
                    };
                    out.push(Happening {
                        at: now,
                        customer: key.clone(),
                        what,
                    });
                }
            }
        }
    }
    label(&mut out, &merged_into, &known);
    out
}

/// The customer of events without a usable identifier.
const REJECTED: &str = "(events without a usable identifier)";

/// Folds `loser` into `survivor` at `now`: the loser's timers become the survivor's for the
/// instances that moved over, and an instance that ends is an exit of the loser.
fn merge(
    customers: &mut BTreeMap<String, Customer>,
    timers: &mut BTreeSet<(i64, String, String)>,
    survivor: &str,
    loser: &str,
    now: i64,
    out: &mut Vec<Happening>,
) {
    let fresh = |id: &str| Customer {
        profile: Profile {
            id: id.to_owned(),
            ..Profile::default()
        },
        ..Customer::default()
    };
    let s = customers
        .remove(survivor)
        .unwrap_or_else(|| fresh(survivor));
    let l = customers.remove(loser).unwrap_or_else(|| fresh(loser));
    timers.retain(|(_, k, _)| k != loser);
    let (folded, effects) = fold(s, l, now);
    customers.insert(survivor.to_owned(), folded);
    for effect in effects {
        match effect {
            Effect::ScheduleTimer { journey, at } => {
                timers.insert((at, survivor.to_owned(), journey));
            }
            Effect::Transition(t) => out.push(Happening {
                at: now,
                customer: loser.to_owned(),
                what: What::Exited {
                    journey: t.journey,
                    reason: t.reason.unwrap_or_default(),
                },
            }),
            Effect::Send(_) | Effect::CancelTimer { .. } => {}
        }
    }
}

/// Names each happening's customer by the strongest identifier of the profile it ended in
/// (the survivor of any merges): what a designer recognises, not a profile id.
fn label(
    out: &mut [Happening],
    merged_into: &BTreeMap<String, String>,
    known: &BTreeMap<String, BTreeSet<Identifier>>,
) {
    let last = |profile: &str| {
        let mut p = profile.to_owned();
        while let Some(s) = merged_into.get(&p) {
            p.clone_from(s);
        }
        p
    };
    let name = |profile: &str| {
        let ids = known.get(profile)?;
        STRONGEST_FIRST
            .iter()
            .find_map(|k| ids.iter().find(|i| i.kind == *k))
            .or_else(|| ids.iter().next())
            .map(|i| format!("{}:{}", i.kind, i.value))
    };
    for h in out.iter_mut().filter(|h| h.customer != REJECTED) {
        let profile = last(&h.customer);
        h.customer = name(&profile).unwrap_or(profile);
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
                What::Goal { journey } => format!("goal        {journey}"),
                What::Exited { journey, reason } => format!("exited      {journey} ({reason})"),
                What::Rejected { event_id, reason } => {
                    format!("rejected    event {event_id}: {reason}")
                }
            };
            s.push_str(&format!("  {at}  {line}\n"));
        }
    }
    s
}

//! `switchboard simulate`: runs the interpreter over a file of events with a simulated clock.
//! Timers fire in time order, before any event at or after their due time.
//!
//! There is no identity stitching here: a customer is the event's strongest identifier
//! (`customer_id`, then `email`, `phone`, `loyalty_card`, `device_id`, `anonymous_id`, then
//! the first one), so give a simulated customer one such identifier throughout.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use switchboard_codec::{ChannelEvent, TransitionKind};

use crate::state::{Customer, Effect, Input, Profile};
use crate::{JourneySet, Policies, apply};

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

/// Runs `events` (in `occurred_at` order, stable) and every timer they cause. A repeated
/// `event_id` is a duplicate and is skipped, as the engine skips it.
pub fn simulate(
    journeys: &JourneySet,
    policies: &Policies,
    mut events: Vec<ChannelEvent>,
) -> Vec<Happening> {
    events.sort_by_key(|e| e.occurred_at);
    let mut customers: BTreeMap<String, Customer> = BTreeMap::new();
    let mut timers: BTreeSet<(i64, String, String)> = BTreeSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let mut events = events.into_iter().peekable();
    let mut after_last = 0usize;
    loop {
        let next_timer = timers.first().cloned();
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
            let Some(e) = events.next() else { break };
            if !seen.insert(e.event_id.clone()) {
                continue;
            }
            (customer_key(&e), Input::Event(e.clone()), e.occurred_at)
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
                Effect::CancelTimer { journey } => {
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
    out
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
            };
            s.push_str(&format!("  {at}  {line}\n"));
        }
    }
    s
}

//! From records to a report: transitions grouped by the entry they belong to, entries by
//! journey, version and arm (a split variant, the whole journey when it has no split, or the
//! control group), sends by arm from the commands.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use switchboard_codec::{JourneyTransition, SendCommand, TransitionKind};

use crate::lift::{Lift, lift};

/// A record of `journeys.transitions` or of a `commands.<channel>` topic.
#[derive(Debug, Clone)]
pub enum Seen {
    Transition(JourneyTransition),
    Command(SendCommand),
}

/// The arm of a journey without a split.
pub const ALL: &str = "all";
/// The arm of the held-out entries.
pub const CONTROL: &str = "control";

/// Everything a report says.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Distinct transitions and commands read (repeats dropped by id).
    pub transitions: u64,
    pub commands: u64,
    /// Transitions of no known entry (written before entries carried ids, or whose entry is
    /// outside what was read).
    pub unattributed: u64,
    pub journeys: Vec<JourneyReport>,
}

/// One version of one journey.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JourneyReport {
    pub journey: String,
    pub version: i32,
    /// The treated arms, by variant name (or [`ALL`]).
    pub arms: Vec<Arm>,
    /// The held-out entries.
    pub control: Arm,
    /// Each treated arm against the control group.
    pub lifts: Vec<Lift>,
    /// The winner its optimized split picked, if one was read.
    pub winner: Option<Winner>,
}

/// A `winner` transition: the variant new entries go to since `at`, and the figures it was
/// picked on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Winner {
    pub variant: String,
    pub at: i64,
    pub reason: String,
}

/// The entries of one arm and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Arm {
    pub name: String,
    pub entries: u64,
    /// Entries whose goal came inside its window (each at most once).
    pub goals: u64,
    /// `goals / entries`.
    pub conversion: f64,
    /// Each step with the entries that reached it, in the order entries first reached them.
    pub funnel: Vec<Step>,
    /// Send commands by channel and template.
    pub sends: Vec<Sends>,
    /// Sends suppressed, by reason.
    pub suppressed: BTreeMap<String, u64>,
    /// Sends deferred, by reason (quiet hours).
    pub deferred: BTreeMap<String, u64>,
    /// From entry to goal, the median, in milliseconds.
    pub median_time_to_goal_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Step {
    pub step: String,
    pub entries: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sends {
    pub channel: String,
    pub template: String,
    pub commands: u64,
}

/// Commands by (journey, version, arm), then by (channel, template).
type SendsByArm = BTreeMap<(String, i32, String), BTreeMap<(String, String), u64>>;

/// What is known of one entry.
#[derive(Debug, Default)]
struct Entry {
    journey: String,
    version: i32,
    entered_at: Option<i64>,
    holdout: bool,
    variant: Option<String>,
    goal_at: Option<i64>,
    /// (first reached at, step)
    steps: Vec<(i64, String)>,
    suppressed: Vec<String>,
    deferred: Vec<String>,
}

/// The report of `records`, whatever their order; a repeated transition or command (by id) is
/// read once.
pub fn report(records: impl IntoIterator<Item = Seen>) -> Report {
    let mut seen_ids: HashSet<String> = HashSet::new();
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut commands: Vec<SendCommand> = Vec::new();
    let mut winners: BTreeMap<String, Winner> = BTreeMap::new();
    let mut out = Report::default();
    for record in records {
        match record {
            Seen::Transition(t) => {
                if !seen_ids.insert(t.transition_id.clone()) {
                    continue;
                }
                out.transitions += 1;
                if t.kind == TransitionKind::Winner {
                    winners.insert(
                        t.journey,
                        Winner {
                            variant: t.variant.unwrap_or_default(),
                            at: t.at,
                            reason: t.reason.unwrap_or_default(),
                        },
                    );
                    continue;
                }
                let Some(id) = t.entry_id.clone() else {
                    if t.kind != TransitionKind::Forgotten {
                        out.unattributed += 1;
                    }
                    continue;
                };
                note(entries.entry(id).or_default(), t);
            }
            Seen::Command(c) => {
                if seen_ids.insert(format!("command:{}", c.command_id)) {
                    out.commands += 1;
                    commands.push(c);
                }
            }
        }
    }
    // Only entries whose entry (or holdout) was read are counted.
    let (entered, partial): (Vec<Entry>, Vec<Entry>) =
        entries.into_values().partition(|e| e.entered_at.is_some());
    out.unattributed += partial.len() as u64;
    let mut by_journey: BTreeMap<(String, i32), BTreeMap<String, Vec<Entry>>> = BTreeMap::new();
    for e in entered {
        let arm = if e.holdout {
            CONTROL.to_owned()
        } else {
            e.variant.clone().unwrap_or_else(|| ALL.to_owned())
        };
        (by_journey
            .entry((e.journey.clone(), e.version))
            .or_default())
        .entry(arm)
        .or_default()
        .push(e);
    }
    let mut sends: SendsByArm = BTreeMap::new();
    for c in commands {
        let arm = c.variant.unwrap_or_else(|| ALL.to_owned());
        *(sends.entry((c.journey, c.version, arm)).or_default())
            .entry((c.channel, c.template))
            .or_default() += 1;
    }
    for ((journey, version), mut arms) in by_journey {
        let control = arm(
            CONTROL,
            arms.remove(CONTROL).unwrap_or_default(),
            BTreeMap::new(),
        );
        let treated: Vec<Arm> = arms
            .into_iter()
            .map(|(name, list)| {
                let sent = sends
                    .remove(&(journey.clone(), version, name.clone()))
                    .unwrap_or_default();
                arm(&name, list, sent)
            })
            .collect();
        let lifts = treated
            .iter()
            .filter_map(|t| lift(&t.name, t.entries, t.goals, control.entries, control.goals))
            .collect();
        out.journeys.push(JourneyReport {
            winner: winners.get(&journey).cloned(),
            journey,
            version,
            arms: treated,
            control,
            lifts,
        });
    }
    out
}

fn note(e: &mut Entry, t: JourneyTransition) {
    e.journey = t.journey;
    e.version = t.version;
    e.holdout |= t.holdout;
    if t.variant.is_some() {
        e.variant = t.variant;
    }
    match t.kind {
        TransitionKind::Entered | TransitionKind::Holdout => {
            e.entered_at = Some(e.entered_at.map_or(t.at, |at| at.min(t.at)));
        }
        TransitionKind::Goal => {
            e.goal_at = Some(e.goal_at.map_or(t.at, |at| at.min(t.at)));
        }
        TransitionKind::Step => {
            if let Some(step) = t.step
                && !e.steps.iter().any(|(_, s)| *s == step)
            {
                e.steps.push((t.at, step));
            }
        }
        TransitionKind::Suppressed => e.suppressed.push(t.reason.unwrap_or_default()),
        TransitionKind::Deferred => e.deferred.push(t.reason.unwrap_or_default()),
        TransitionKind::Exited
        | TransitionKind::Forgotten
        | TransitionKind::Winner
        | TransitionKind::Unknown => {}
    }
}

fn arm(name: &str, entries: Vec<Entry>, sent: BTreeMap<(String, String), u64>) -> Arm {
    let n = entries.len() as u64;
    let mut to_goal: Vec<i64> = entries
        .iter()
        .filter_map(|e| Some(e.goal_at? - e.entered_at?))
        .collect();
    to_goal.sort_unstable();
    let goals = to_goal.len() as u64;
    // Steps in the order entries reached them: by how soon after entry, then by their place
    // in the entry's path (steps of one instant happen in order).
    let mut first: BTreeMap<String, ((i64, usize), u64)> = BTreeMap::new();
    let mut suppressed: BTreeMap<String, u64> = BTreeMap::new();
    let mut deferred: BTreeMap<String, u64> = BTreeMap::new();
    for e in &entries {
        let since = e.entered_at.unwrap_or_default();
        for (place, (at, step)) in e.steps.iter().enumerate() {
            let slot = first
                .entry(step.clone())
                .or_insert(((i64::MAX, usize::MAX), 0));
            slot.0 = slot.0.min((at - since, place));
            slot.1 += 1;
        }
        for r in &e.suppressed {
            *suppressed.entry(r.clone()).or_default() += 1;
        }
        for r in &e.deferred {
            *deferred.entry(r.clone()).or_default() += 1;
        }
    }
    let mut funnel: Vec<((i64, usize), Step)> = first
        .into_iter()
        .map(|(step, (at, entries))| (at, Step { step, entries }))
        .collect();
    funnel.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.entries.cmp(&a.1.entries)));
    Arm {
        name: name.to_owned(),
        entries: n,
        goals,
        conversion: if n == 0 { 0.0 } else { goals as f64 / n as f64 },
        funnel: funnel.into_iter().map(|(_, s)| s).collect(),
        sends: sent
            .into_iter()
            .map(|((channel, template), commands)| Sends {
                channel,
                template,
                commands,
            })
            .collect(),
        suppressed,
        deferred,
        median_time_to_goal_ms: to_goal.get(to_goal.len() / 2).copied(),
    }
}

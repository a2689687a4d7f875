//! A validated journey: every state reference is an index that exists, every duration is
//! parsed, every condition compiled.

use std::collections::BTreeMap;

use crate::condition::Condition;

/// Index of a state within its journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateId(pub(crate) usize);

/// A journey ready to run.
#[derive(Debug, Clone)]
pub struct Journey {
    pub id: String,
    pub version: u32,
    pub description: String,
    pub priority: i32,
    pub trigger_event: String,
    pub trigger_if: Option<Condition>,
    pub audience: Option<Condition>,
    pub reentry: Reentry,
    pub holdout: f64,
    pub exit_on: Vec<String>,
    /// Goal event and window in milliseconds.
    pub goal: Option<(String, i64)>,
    pub start: StateId,
    pub states: Vec<State>,
    /// Previous version's state name → state of this version.
    pub migrate_from_previous: BTreeMap<String, StateId>,
    /// The file it was read from.
    pub source: String,
}

/// A split's winner selection: after `after_ms` from its first entry, once every variant
/// has `min_entries`, the variant converting best wins if it beats every other
/// significantly (see `switchboard_engine::optimize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Optimize {
    pub after_ms: i64,
    pub min_entries: u64,
}

/// Each optimized journey's winning variant, once one was picked: new entries of its split
/// go there.
pub type Winners = BTreeMap<String, String>;

/// Re-entry rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reentry {
    Never,
    Always,
    AfterMs(i64),
}

/// One state.
#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub line: u32,
    pub kind: StepKind,
}

/// What a state does.
#[derive(Debug, Clone)]
pub enum StepKind {
    Send {
        channels: Vec<String>,
        template: String,
        vars: Vec<(String, Condition)>,
        locale: Option<String>,
        next: StateId,
    },
    Wait {
        ms: i64,
        next: StateId,
    },
    WaitUntil {
        minute_of_day: u32,
        next: StateId,
    },
    WaitFor {
        event: String,
        timeout_ms: i64,
        on_event: StateId,
        on_timeout: StateId,
    },
    Branch {
        arms: Vec<(Condition, StateId)>,
        otherwise: StateId,
    },
    Split {
        arms: Vec<(String, u32, StateId)>,
        optimize: Option<Optimize>,
    },
    Update {
        set: Vec<(String, Condition)>,
        increment: Vec<(String, i64)>,
        add_tags: Vec<String>,
        remove_tags: Vec<String>,
        next: StateId,
    },
    Exit {
        outcome: String,
    },
}

impl StepKind {
    /// The states this one can lead to, with a label for drawings.
    pub fn successors(&self) -> Vec<(StateId, String)> {
        match self {
            Self::Send { next, .. } | Self::Update { next, .. } => vec![(*next, String::new())],
            Self::Wait { next, .. } | Self::WaitUntil { next, .. } => vec![(*next, String::new())],
            Self::WaitFor {
                event,
                on_event,
                on_timeout,
                ..
            } => vec![(*on_event, event.clone()), (*on_timeout, "timeout".into())],
            Self::Branch { arms, otherwise } => {
                let mut s: Vec<_> = arms
                    .iter()
                    .map(|(c, n)| (*n, c.source().to_owned()))
                    .collect();
                s.push((*otherwise, "else".into()));
                s
            }
            Self::Split { arms, .. } => arms
                .iter()
                .map(|(v, w, n)| (*n, format!("{v} ({w})")))
                .collect(),
            Self::Exit { .. } => Vec::new(),
        }
    }

    /// Whether reaching this state suspends the customer until time passes or an event comes.
    pub fn waits(&self) -> bool {
        matches!(
            self,
            Self::Wait { .. } | Self::WaitUntil { .. } | Self::WaitFor { .. }
        )
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Send { .. } => "send",
            Self::Wait { .. } => "wait",
            Self::WaitUntil { .. } => "wait_until",
            Self::WaitFor { .. } => "wait_for",
            Self::Branch { .. } => "branch",
            Self::Split { .. } => "split",
            Self::Update { .. } => "update",
            Self::Exit { .. } => "exit",
        }
    }
}

impl Journey {
    pub fn state(&self, id: StateId) -> Option<&State> {
        self.states.get(id.0)
    }

    /// The split that picks a winner (at most one per journey), with its settings.
    pub fn optimized_split(&self) -> Option<(&State, &Optimize)> {
        self.states.iter().find_map(|s| match &s.kind {
            StepKind::Split {
                optimize: Some(o), ..
            } => Some((s, o)),
            _ => None,
        })
    }

    pub fn state_id(&self, name: &str) -> Option<StateId> {
        self.states.iter().position(|s| s.name == name).map(StateId)
    }
}

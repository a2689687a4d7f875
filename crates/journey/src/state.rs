//! What the interpreter reads and returns: a customer's profile and journey instances, the
//! inputs that advance them, and the effects the engine carries out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use litemap::LiteMap;
use serde::{Deserialize, Serialize};
use switchboard_codec::{AttrValue, ChannelEvent, SendCommand, TransitionKind};

/// One customer's state, as stored per profile.
/// Serialized by `compact.rs`: a binary format leaves out what it can work out again.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "crate::compact::CustomerIn")]
pub struct Customer {
    pub profile: Profile,
    /// Live instances by journey id: at most one per journey. A sorted vector (stored as a
    /// map, like a `BTreeMap`): a customer is in a few journeys, and a tree's first node
    /// would take 3.6 KB for one.
    pub instances: LiteMap<String, Instance>,
    /// Entries whose goal window is open, treated and held out alike, whether or not their
    /// instance still runs: the latest entry of each journey with a goal (and, after a
    /// merge, the merged profile's too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributions: Vec<Attribution>,
    /// Why recent triggers did not make an entry and recent sends did or did not go out,
    /// oldest first: the last [`MAX_DECISIONS`], for `switchboard explain`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

/// The most decisions a customer's record keeps.
pub const MAX_DECISIONS: usize = 50;

/// A decision about a customer: a trigger that made no entry, or a send made, suppressed or
/// deferred, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub at: i64,
    pub journey: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// One of [`DECISION_REASONS`].
    pub reason: String,
    /// What else there is to say: the condition's error, the channel and template sent, the
    /// time a deferred send is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `event:<id>` or `timer:<journey>@<due>`.
    pub trigger: String,
}

/// Why a customer did not enter a journey (the first six), or what became of a send.
pub const DECISION_REASONS: [&str; 13] = [
    "trigger_condition_false",
    "audience_false",
    "condition_error",
    "cooldown",
    "already_in",
    "holdout",
    "sent",
    "consent",
    "cap",
    "no_channel",
    "var_error",
    "quiet_hours",
    "reentry_never",
];

/// An entry into a journey with a goal, until its goal window closes: the first goal event in
/// the window counts for it, once ([`crate::apply`] records a `goal` transition and drops it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    pub journey: String,
    pub version: u32,
    /// The entry's id (its instance's, for a treated customer).
    pub entry: String,
    /// The split variant, once the entry reached a split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The entry is in the control group.
    #[serde(default, skip_serializing_if = "is_false")]
    pub holdout: bool,
    pub entered_at: i64,
}

impl Attribution {
    /// The goal's event type and the instant its window closes (inclusive), from the journey
    /// version entered; `None` once that version is gone from the catalog.
    pub fn goal<'j>(&self, journeys: &'j crate::JourneySet) -> Option<(&'j str, i64)> {
        let (goal, window) = journeys.get(&self.journey, self.version)?.goal.as_ref()?;
        Some((goal.as_str(), self.entered_at.saturating_add(*window)))
    }
}

/// What Switchboard knows of a customer.
/// Stored by field name in the engine's record: empty and absent fields are left out (and read
/// back as empty), which keeps a profile's record small.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
    /// Attributes set by `update` steps, visible to conditions as `profile.<name>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttrValue>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    /// Channel → consent; absent means the policies' default.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consent: BTreeMap<String, bool>,
    /// Channel → address (email, E.164 phone, device token), from the identifiers seen.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub addresses: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The channel of the last event: the one the customer uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_channel: Option<String>,
    /// Sends inside the longest cap window, for frequency caps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<Sent>,
    /// Journey id → last entry, for re-entry rules and holdouts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub history: BTreeMap<String, Entry>,
}

/// A send, remembered for frequency caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub channel: String,
    pub at: i64,
}

/// The last time a customer entered (or was held out of) a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub at: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub holdout: bool,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !b
}

/// A customer's place in one journey.
/// Serialized by `compact.rs`: a binary format leaves out the id where it is derivable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "crate::compact::InstanceIn")]
pub struct Instance {
    pub journey: String,
    pub version: u32,
    /// Deterministic: journey, version and the entering event.
    pub id: String,
    /// State name (names survive version changes; indices do not).
    pub state: String,
    pub entered_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// When the pending timer of this instance fires, if one is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<i64>,
    /// The event that started the journey: `event` in conditions and vars after a wait.
    /// Shared by the instances one event starts (stored in each, as before).
    pub trigger: Arc<ChannelEvent>,
}

/// What advances a customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Event(ChannelEvent),
    /// A timer of `journey` due at `due` (a wait ended, a timeout passed, quiet hours ended).
    Timer {
        journey: String,
        due: i64,
    },
}

impl Input {
    /// `event:<id>` or `timer:<journey>@<due>`, the trigger named in commands and transitions.
    pub fn trigger(&self) -> String {
        match self {
            Self::Event(e) => format!("event:{}", e.event_id),
            Self::Timer { journey, due } => format!("timer:{journey}@{due}"),
        }
    }
}

/// What the engine must do after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Box<SendCommand>),
    Transition(Transition),
    /// (Re)schedule the timer of `journey` for this customer.
    ScheduleTimer {
        journey: String,
        at: i64,
    },
    /// Drop the pending timer of `journey`, due `at`.
    CancelTimer {
        journey: String,
        at: i64,
    },
    /// A decision of `journey` (recorded in the customer's record), for the metrics.
    Decided {
        journey: String,
        reason: &'static str,
    },
}

/// A journey change, for `journeys.transitions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub journey: String,
    pub version: u32,
    pub kind: TransitionKind,
    pub step: Option<String>,
    pub reason: Option<String>,
    pub trigger: String,
    pub at: i64,
    /// The entry's split variant, once chosen.
    pub variant: Option<String>,
    /// The entry is in the control group.
    pub holdout: bool,
    /// The entry's id.
    pub entry: String,
    /// The kind of `step` (`send`, `wait`, ...), where there is a step.
    pub step_kind: Option<&'static str>,
}

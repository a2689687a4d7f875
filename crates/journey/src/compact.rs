//! A customer in a binary format (the engine's record in Redis) leaves out what it can work
//! out again: an instance's id, which is the UUIDv5 of its journey, the version it
//! entered and its trigger's event id (kept when a version migration made them differ),
//! and an attribution's entry id while the live instance of its journey is that entry (each
//! a UUID, which compresses to nothing: the two are 40 of a record's 256 stored bytes); and
//! an attribution's entry time while it is its journey's last entry in the profile's history
//! (7 bytes more: Redis stores a string in size classes, and that takes most records of two
//! journeys in flight from the 320-byte class to the 256). Human-readable formats (JSON)
//! keep them all; a value without them reads either way.

use std::collections::BTreeMap;

use litemap::LiteMap;
use serde::{Deserialize, Serialize, Serializer};
use switchboard_codec::ChannelEvent;

use crate::ids;
use crate::state::{Attribution, Customer, Decision, Entry, Instance, Profile, is_false};

impl Instance {
    /// The id this instance would have if it still ran the version it entered.
    fn derived_id(&self) -> String {
        ids::entry_id(&self.journey, self.version, &self.trigger.event_id)
    }

    /// Its id is the derived one (it did not move to another version since it entered).
    fn id_is_derived(&self) -> bool {
        ids::is_entry_id(
            &self.id,
            &self.journey,
            self.version,
            &self.trigger.event_id,
        )
    }
}

/// An instance as written: the id left out of a binary format where it can be derived.
#[derive(Serialize)]
struct InstanceOut<'a> {
    journey: &'a str,
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    state: &'a str,
    entered_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wake_at: Option<i64>,
    trigger: &'a ChannelEvent,
}

impl Serialize for Instance {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let derivable = !s.is_human_readable() && self.id_is_derived();
        InstanceOut {
            journey: &self.journey,
            version: self.version,
            id: (!derivable).then_some(self.id.as_str()),
            state: &self.state,
            entered_at: self.entered_at,
            variant: self.variant.as_deref(),
            wake_at: self.wake_at,
            trigger: &self.trigger,
        }
        .serialize(s)
    }
}

/// An instance as read: without an id, the derived one.
#[derive(Deserialize)]
pub(crate) struct InstanceIn {
    journey: String,
    version: u32,
    #[serde(default)]
    id: Option<String>,
    state: String,
    entered_at: i64,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    wake_at: Option<i64>,
    trigger: std::sync::Arc<ChannelEvent>,
}

impl From<InstanceIn> for Instance {
    fn from(i: InstanceIn) -> Self {
        let mut instance = Self {
            journey: i.journey,
            version: i.version,
            id: String::new(),
            state: i.state,
            entered_at: i.entered_at,
            variant: i.variant,
            wake_at: i.wake_at,
            trigger: i.trigger,
        };
        instance.id = i.id.unwrap_or_else(|| instance.derived_id());
        instance
    }
}

/// An attribution as written: in a binary format, the entry id left out while the live
/// instance of its journey is that entry, the entry time while the profile's history has it.
#[derive(Serialize)]
struct AttributionOut<'a> {
    journey: &'a str,
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    holdout: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    entered_at: Option<i64>,
}

/// A customer's attributions, written beside what they can be worked out from.
struct Attributions<'a> {
    all: &'a [Attribution],
    instances: &'a LiteMap<String, Instance>,
    history: &'a BTreeMap<String, Entry>,
}

impl Serialize for Attributions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let compact = !s.is_human_readable();
        s.collect_seq(self.all.iter().map(|a| {
            let live = (self.instances.get(&a.journey)).is_some_and(|i| i.id == a.entry);
            let last = (self.history.get(&a.journey)).is_some_and(|e| e.at == a.entered_at);
            AttributionOut {
                journey: &a.journey,
                version: a.version,
                entry: (!(compact && live)).then_some(a.entry.as_str()),
                variant: a.variant.as_deref(),
                holdout: a.holdout,
                entered_at: (!(compact && last)).then_some(a.entered_at),
            }
        }))
    }
}

/// An attribution as read: what is missing is worked out by [`CustomerIn`].
#[derive(Deserialize)]
struct AttributionIn {
    journey: String,
    version: u32,
    #[serde(default)]
    entry: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    holdout: bool,
    #[serde(default)]
    entered_at: Option<i64>,
}

#[derive(Serialize)]
struct CustomerOut<'a> {
    profile: &'a Profile,
    instances: &'a LiteMap<String, Instance>,
    #[serde(skip_serializing_if = "is_empty")]
    attributions: Attributions<'a>,
    #[serde(skip_serializing_if = "<[Decision]>::is_empty")]
    decisions: &'a [Decision],
}

fn is_empty(a: &Attributions<'_>) -> bool {
    a.all.is_empty()
}

impl Serialize for Customer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CustomerOut {
            profile: &self.profile,
            instances: &self.instances,
            attributions: Attributions {
                all: &self.attributions,
                instances: &self.instances,
                history: &self.profile.history,
            },
            decisions: &self.decisions,
        }
        .serialize(s)
    }
}

/// A customer as read: an attribution without an entry id takes its journey's live
/// instance's, without an entry time its journey's last entry's.
#[derive(Deserialize)]
pub(crate) struct CustomerIn {
    profile: Profile,
    instances: LiteMap<String, Instance>,
    #[serde(default)]
    attributions: Vec<AttributionIn>,
    #[serde(default)]
    decisions: Vec<Decision>,
}

impl From<CustomerIn> for Customer {
    fn from(c: CustomerIn) -> Self {
        let attributions = (c.attributions.into_iter())
            .map(|a| Attribution {
                entry: a.entry.unwrap_or_else(|| {
                    (c.instances.get(&a.journey)).map_or_else(String::new, |i| i.id.clone())
                }),
                entered_at: a
                    .entered_at
                    .unwrap_or_else(|| (c.profile.history.get(&a.journey)).map_or(0, |e| e.at)),
                journey: a.journey,
                version: a.version,
                variant: a.variant,
                holdout: a.holdout,
            })
            .collect();
        Self {
            profile: c.profile,
            instances: c.instances,
            attributions,
            decisions: c.decisions,
        }
    }
}

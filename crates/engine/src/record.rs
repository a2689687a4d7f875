//! What the engine keeps per profile, and what waits in its outbox to be published.

use serde::{Deserialize, Serialize};
use switchboard_codec::{JourneyTransition, SendCommand};
use switchboard_identity::ProfileId;
use switchboard_journey::{Customer, Profile};

use crate::recent::RecentEvents;

/// What a profile's record holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub customer: Customer,
    /// Offset in `customer.events` of the last input applied (per profile, its partition is
    /// fixed by its key); -1 before any.
    pub offset: i64,
    /// Set when the profile was merged into another: its events are forwarded there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<ProfileId>,
    /// The event ids applied within the dedup window.
    #[serde(default, skip_serializing_if = "RecentEvents::is_empty")]
    pub recent: RecentEvents,
    /// The profiles merged into this one, oldest merge first (the last
    /// [`MAX_ABSORBED`]), and what became of their journeys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absorbed: Vec<Absorbed>,
}

impl Record {
    /// The record of a profile never stored: no journeys, no position.
    pub fn new(profile: &ProfileId) -> Self {
        Self {
            customer: Customer {
                profile: Profile {
                    id: profile.to_string(),
                    ..Profile::default()
                },
                ..Customer::default()
            },
            offset: -1,
            ..Self::default()
        }
    }
}

/// The most merges a record remembers: the identity rules cap merges per profile anyway.
pub const MAX_ABSORBED: usize = 16;

/// A profile merged into this one: when, the journeys whose instances it took over, and those
/// that ended (`exited`, reason `merged`) because this profile was in them already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absorbed {
    pub profile: ProfileId,
    pub at: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub took: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended: Vec<String>,
}

/// Records to publish after a state change: kept in the profile's record until published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outgoing {
    Command(SendCommand),
    Transition(JourneyTransition),
}

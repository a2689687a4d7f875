//! The ids of published transitions: derived from what they record, so a replay publishes
//! the same ids and readers drop the repeats.

use switchboard_journey::Transition;
use uuid::Uuid;

/// A journey transition's id: UUIDv5 of the profile, journey, version, kind, step and trigger.
pub fn transition_id(profile: &str, t: &Transition) -> String {
    let name = format!(
        "{profile}|{}|{}|{}|{}|{}",
        t.journey,
        t.version,
        t.kind.as_str(),
        t.step.as_deref().unwrap_or(""),
        t.trigger
    );
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// The id of the `forgotten` transition of `profile` for the forget request `request`.
pub fn forgotten_id(profile: &str, request: &str) -> String {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("{profile}|forgotten|{request}").as_bytes(),
    )
    .to_string()
}

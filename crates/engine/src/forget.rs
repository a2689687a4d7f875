//! Forget requests as the planner reads them (`switchboard forget` writes them).

use switchboard_codec::{AttrValue, ChannelEvent};
use switchboard_identity::ProfileId;

/// The event type of a forget request. The stitcher refuses it on channel topics.
pub const FORGET_EVENT: &str = "profile.forget";

/// The attribute of a forget request listing the profiles merged into it, comma-separated.
pub const MERGED_ATTRIBUTE: &str = "merged";

/// The profiles a forget request names: its own, then those merged into it.
pub fn profiles_to_forget(profile: &ProfileId, event: &ChannelEvent) -> Vec<ProfileId> {
    let mut all = vec![profile.clone()];
    if let Some(AttrValue::String(merged)) = event.attributes.get(MERGED_ATTRIBUTE) {
        all.extend(
            merged
                .split(',')
                .filter(|p| !p.is_empty())
                .map(ProfileId::from),
        );
    }
    all
}

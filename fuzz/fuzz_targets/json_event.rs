//! The JSON channel path: parse a channel event, then prepare its identifiers by the default
//! rules; whatever is accepted is normalised (preparing it again changes nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_codec::ChannelEvent;
use switchboard_identity::IdentityRules;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<ChannelEvent>(data) else {
        return;
    };
    let rules = IdentityRules::default();
    let prepared = rules.prepare(&event.identifiers);
    let again = rules.prepare(&prepared.accepted);
    assert_eq!(again.accepted, prepared.accepted);
});

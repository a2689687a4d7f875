//! The in-memory identity store passes the shared conformance suite, and stitching is
//! independent of event order.

use std::sync::Arc;

use proptest::prelude::*;
use switchboard_codec::Identifier;
use switchboard_identity::MemoryIdentityStore;
use switchboard_test_support::identity_conformance as suite;

#[tokio::test]
async fn conformance() {
    suite::same_identifiers_same_profile(&MemoryIdentityStore::new()).await;
    suite::linking_event_merges_into_the_oldest(&MemoryIdentityStore::new()).await;
    suite::two_customer_ids_never_merge(&MemoryIdentityStore::new()).await;
    suite::blocked_values_never_link(&MemoryIdentityStore::new()).await;
    suite::caps_hold(&MemoryIdentityStore::new()).await;
    suite::an_event_of_the_same_millisecond_joins_the_profile_it_would_make(
        &MemoryIdentityStore::new(),
    )
    .await;
    suite::forget_erases_the_group(&MemoryIdentityStore::new()).await;
    suite::stale_lookups_find_the_profile_that_claimed_them(&MemoryIdentityStore::new()).await;
    suite::the_same_events_give_the_same_profile_ids(
        &MemoryIdentityStore::new(),
        &MemoryIdentityStore::new(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_stitchers_reach_the_sequential_grouping() {
    for seed in 1..20 {
        let events = suite::overlapping_events(200, seed);
        let sequential = suite::sequential(&MemoryIdentityStore::new(), &events).await;
        assert_eq!(sequential, suite::components(&events));
        suite::concurrent_stitchers_agree(Arc::new(MemoryIdentityStore::new()), events).await;
    }
}

fn event() -> impl Strategy<Value = Vec<Identifier>> {
    let id = prop_oneof![
        (0..12u8).prop_map(|n| Identifier::new("anonymous_id", format!("a{n}"))),
        (0..12u8).prop_map(|n| Identifier::new("device_id", format!("d{n}"))),
        (0..12u8).prop_map(|n| Identifier::new("email", format!("e{n}@example.com"))),
    ];
    prop::collection::vec(id, 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Without conflicts, every order of the same events groups identifiers the same way:
    /// the connected components.
    #[test]
    fn grouping_does_not_depend_on_event_order(
        events in prop::collection::vec(event(), 1..30),
        order in any::<prop::sample::Index>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let expected = suite::components(&events);
        let mut shuffled = events.clone();
        let k = order.index(shuffled.len());
        shuffled.rotate_left(k);
        shuffled.reverse();
        for run in [events, shuffled] {
            let got = runtime.block_on(suite::sequential(&MemoryIdentityStore::new(), &run));
            prop_assert_eq!(&got, &expected);
        }
    }
}

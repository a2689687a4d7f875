//! The Redis identity store against a real redis-server and a real 3-master Redis Cluster:
//! the shared conformance suite, order independence, and 8 concurrent stitchers.

use std::sync::Arc;

use proptest::prelude::*;
use switchboard_codec::Identifier;
use switchboard_config::RedisConfig;
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_test_support::identity_conformance as suite;
use switchboard_test_support::{RedisCluster, RedisServer, unique};

async fn store(config: &RedisConfig) -> RedisIdentityStore {
    let redis = connect(config).await.expect("connect");
    RedisIdentityStore::new(redis, Keys::new(unique("t")))
}

fn single(server: &RedisServer) -> RedisConfig {
    RedisConfig {
        url: server.url(),
        ..RedisConfig::default()
    }
}

fn cluster(c: &RedisCluster) -> RedisConfig {
    let urls = c.urls();
    RedisConfig {
        url: urls[0].clone(),
        cluster: true,
        cluster_seeds: urls[1..].to_vec(),
        ..RedisConfig::default()
    }
}

async fn conformance(config: &RedisConfig) {
    suite::same_identifiers_same_profile(&store(config).await).await;
    suite::linking_event_merges_into_the_oldest(&store(config).await).await;
    suite::two_customer_ids_never_merge(&store(config).await).await;
    suite::blocked_values_never_link(&store(config).await).await;
    suite::caps_hold(&store(config).await).await;
    suite::an_event_of_the_same_millisecond_joins_the_profile_it_would_make(&store(config).await)
        .await;
    suite::forget_erases_the_group(&store(config).await).await;
    suite::stale_lookups_find_the_profile_that_claimed_them(&store(config).await).await;
    suite::the_same_events_give_the_same_profile_ids(&store(config).await, &store(config).await)
        .await;
}

#[tokio::test]
async fn conformance_on_redis() {
    let server = RedisServer::start();
    conformance(&single(&server)).await;
}

#[tokio::test]
async fn conformance_on_redis_cluster() {
    let c = RedisCluster::start();
    conformance(&cluster(&c)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_stitchers_on_redis() {
    let server = RedisServer::start();
    for seed in 1..6 {
        let events = suite::overlapping_events(300, seed);
        suite::concurrent_stitchers_agree(Arc::new(store(&single(&server)).await), events).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_stitchers_on_redis_cluster() {
    let c = RedisCluster::start();
    for seed in 1..4 {
        let events = suite::overlapping_events(300, seed);
        suite::concurrent_stitchers_agree(Arc::new(store(&cluster(&c)).await), events).await;
    }
}

fn event() -> impl Strategy<Value = Vec<Identifier>> {
    let id = prop_oneof![
        (0..8u8).prop_map(|n| Identifier::new("anonymous_id", format!("a{n}"))),
        (0..8u8).prop_map(|n| Identifier::new("device_id", format!("d{n}"))),
        (0..8u8).prop_map(|n| Identifier::new("email", format!("e{n}@example.com"))),
    ];
    prop::collection::vec(id, 1..4)
}

#[test]
fn grouping_does_not_depend_on_event_order_on_redis() {
    let server = RedisServer::start();
    let config = single(&server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    proptest!(ProptestConfig::with_cases(24), |(events in prop::collection::vec(event(), 1..15), k in any::<prop::sample::Index>())| {
        let expected = suite::components(&events);
        let mut shuffled = events.clone();
        shuffled.rotate_left(k.index(events.len()));
        shuffled.reverse();
        for run in [events, shuffled] {
            let got = runtime.block_on(async { suite::sequential(&store(&config).await, &run).await });
            prop_assert_eq!(&got, &expected);
        }
    });
}

//! Stitch throughput and memory per identifier on a real redis-server started for the run.
//!
//! `cargo run --release -p switchboard-redis --example stitch_load -- [events] [concurrency]`

use std::sync::Arc;
use std::time::Instant;

use switchboard_codec::Identifier;
use switchboard_config::RedisConfig;
use switchboard_identity::{IdentityRules, stitch};
use switchboard_redis::{Keys, RedisIdentityStore, connect};
use switchboard_test_support::RedisServer;

fn event(n: u64, customers: u64) -> Vec<Identifier> {
    let c = (n.wrapping_mul(2_654_435_761)) % customers;
    match n % 4 {
        0 => vec![Identifier::new("anonymous_id", format!("cookie-{c}"))],
        1 => vec![
            Identifier::new("anonymous_id", format!("cookie-{c}")),
            Identifier::new("email", format!("s{c}@example.com")),
        ],
        2 => vec![
            Identifier::new("customer_id", format!("C{c}")),
            Identifier::new("email", format!("s{c}@example.com")),
        ],
        _ => vec![
            Identifier::new("device_id", format!("dev-{c}")),
            Identifier::new("customer_id", format!("C{c}")),
        ],
    }
}

async fn used_memory(url: &str) -> redis::RedisResult<u64> {
    let client = redis::Client::open(url)?;
    let mut c = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut c).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(100_000);
    let concurrency = args.get(1).copied().unwrap_or(64);
    let customers = events / 4;
    let server = RedisServer::start();
    let config = RedisConfig {
        url: server.url(),
        ..RedisConfig::default()
    };
    let store = Arc::new(RedisIdentityStore::new(
        connect(&config).await?,
        Keys::new("sb"),
    ));
    let rules = Arc::new(IdentityRules::default());
    let before = used_memory(&server.url()).await?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (store, rules) = (store.clone(), rules.clone());
        tasks.spawn(async move {
            let limits = rules.limits();
            let mut n = worker;
            while n < events {
                let prepared = rules.prepare(&event(n, customers));
                stitch(
                    &*store,
                    &limits,
                    &prepared.accepted,
                    i64::try_from(n).unwrap_or(0),
                )
                .await?;
                n += concurrency;
            }
            Ok::<(), switchboard_identity::StitchError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let secs = start.elapsed().as_secs_f64();
    let after = used_memory(&server.url()).await?;
    let identifiers = customers * 4;
    println!(
        "stitched {events} events in {secs:.2} s with {concurrency} concurrent stitches: {:.0} events/s",
        events as f64 / secs
    );
    println!(
        "redis memory: {} bytes for {identifiers} identifiers in {customers} profiles: {:.0} bytes per identifier",
        after - before,
        (after - before) as f64 / identifiers as f64
    );
    Ok(())
}

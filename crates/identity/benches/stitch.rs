//! Identity resolution on the in-memory store: a returning customer (every identifier
//! known), a new customer (a profile created) and a linking event (a merge). Reports events
//! per second on one core; the store's lock stands in for Redis round trips.
#![allow(clippy::expect_used)] // a benchmark whose setup fails has nothing to measure

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use switchboard_codec::Identifier;
use switchboard_identity::{IdentityRules, MemoryIdentityStore, stitch};

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let rules = IdentityRules::default();
    let limits = rules.limits();
    let prepare = |ids: &[(&str, String)]| {
        rules
            .prepare(
                &ids.iter()
                    .map(|(k, v)| Identifier::new(*k, v.as_str()))
                    .collect::<Vec<_>>(),
            )
            .accepted
    };
    let mut group = c.benchmark_group("stitch");
    group.throughput(Throughput::Elements(1));

    // A population of 10 000 customers, each with a cookie and an email.
    let store = MemoryIdentityStore::new();
    let population: Vec<_> = (0..10_000)
        .map(|n| {
            prepare(&[
                ("anonymous_id", format!("cookie-{n}")),
                ("email", format!("shopper{n}@example.com")),
            ])
        })
        .collect();
    runtime.block_on(async {
        for ids in &population {
            stitch(&store, &limits, ids, 1).await.expect("stitch");
        }
    });
    let mut returning = population.iter().cycle();
    group.bench_function("returning", |b| {
        b.iter(|| {
            let ids = returning.next().expect("a population");
            runtime.block_on(stitch(&store, &limits, black_box(ids), 2))
        })
    });

    let mut fresh = 0u64;
    group.bench_function("new_profile", |b| {
        b.iter(|| {
            fresh += 1;
            let ids = prepare(&[("device_id", format!("dev-new-{fresh}"))]);
            runtime.block_on(stitch(&store, &limits, black_box(&ids), 3))
        })
    });

    group.bench_function("merge", |b| {
        b.iter_batched(
            || {
                let store = MemoryIdentityStore::new();
                let web = prepare(&[("anonymous_id", "cookie-m".to_owned())]);
                let app = prepare(&[("device_id", "dev-m".to_owned())]);
                runtime.block_on(async {
                    stitch(&store, &limits, &web, 1).await.expect("stitch");
                    stitch(&store, &limits, &app, 2).await.expect("stitch");
                });
                let login = prepare(&[
                    ("anonymous_id", "cookie-m".to_owned()),
                    ("device_id", "dev-m".to_owned()),
                ]);
                (store, login)
            },
            |(store, login)| runtime.block_on(stitch(&store, &limits, &login, 3)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

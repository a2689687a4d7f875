//! An engine record written and read as Redis stores it (MessagePack, zstd against the
//! record dictionary), next to the MessagePack alone and the JSON earlier releases stored.
//! Reports records per second on one core.
#![allow(clippy::expect_used)] // a benchmark whose setup fails has nothing to measure

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_engine::{RecentEvents, Record};
use switchboard_redis::stored;

use switchboard_test_support::customers::after_cart_and_view;

fn bench(c: &mut Criterion) {
    // The customer's two events, remembered for dedup.
    let mut recent = RecentEvents::default();
    for event in ["cart-7", "view-7"] {
        recent.first_time(event, 1_764_000_000_000, 86_400_000);
    }
    let record = Record {
        customer: after_cart_and_view(7),
        offset: 41,
        merged_into: None,
        recent,
        absorbed: Vec::new(),
    };
    let value = stored::encode(3, &record).expect("the record encodes");
    let json = serde_json::to_vec(&record).expect("the record serializes");
    let packed = stored::packed(&record).expect("the record packs");
    let mut group = c.benchmark_group(format!(
        "record ({} bytes of MessagePack, {} of JSON, {} stored)",
        packed.len(),
        json.len(),
        value.len()
    ));
    group.throughput(Throughput::Elements(1));
    group.bench_function("write (stored::encode)", |b| {
        b.iter(|| stored::encode(3, black_box(&record)))
    });
    group.bench_function("read (stored::decode)", |b| {
        b.iter(|| stored::decode(black_box(&value)))
    });
    group.bench_function("JSON alone, write", |b| {
        b.iter(|| serde_json::to_vec(black_box(&record)))
    });
    group.bench_function("JSON alone, read", |b| {
        b.iter(|| serde_json::from_slice::<Record>(black_box(&json)))
    });
    group.bench_function("MessagePack alone, write", |b| {
        b.iter(|| stored::packed(black_box(&record)))
    });
    group.bench_function("MessagePack alone, read", |b| {
        b.iter(|| rmp_serde::from_slice::<Record>(black_box(&packed)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

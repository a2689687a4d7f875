//! One interpreter application per example journey: the event that enters it, and the
//! timer that moves it on. Reports applications per second on one core.
#![allow(clippy::expect_used)] // a benchmark whose setup fails has nothing to measure

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use switchboard_codec::{AttrValue, ChannelEvent, Identifier};
use switchboard_journey::{
    Customer, Effect, Input, JourneySet, Policies, Profile, apply, load_dir,
};

/// The allocator the `switchboard` binary ships with: the interpreter allocates for every
/// effect and transition, and glibc's malloc costs it about a third more.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const T0: i64 = 1_768_471_200_000;

fn event(event_type: &str, channel: &str) -> ChannelEvent {
    ChannelEvent {
        event_id: "e-1".into(),
        event_type: event_type.into(),
        channel: channel.into(),
        occurred_at: T0,
        identifiers: vec![
            Identifier::new("customer_id", "c-1"),
            Identifier::new("email", "c1@example.com"),
            Identifier::new("push_token", "tok"),
        ],
        attributes: [
            ("cart_value".to_owned(), AttrValue::Double(129.0)),
            ("sku".to_owned(), AttrValue::String("SKU-1".into())),
        ]
        .into(),
        locale: Some("en-GB".into()),
        timezone: Some("Europe/London".into()),
    }
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let policies =
        Policies::from_path(&root.join("deploy/policies.yaml")).expect("deploy/policies.yaml");
    let journeys = JourneySet::new(
        load_dir(&root.join("journeys"), &policies.channels).expect("example journeys are valid"),
    );
    let fresh = Customer {
        profile: Profile {
            id: "c-1".into(),
            ..Profile::default()
        },
        ..Customer::default()
    };
    let mut group = c.benchmark_group("interpreter");
    group.throughput(Throughput::Elements(1));
    for (name, event_type, channel) in [
        ("abandoned-cart", "cart.updated", "web"),
        ("welcome", "app.installed", "app"),
        ("win-back+store-to-app", "order.completed", "pos"),
        ("daily-reminder", "app.opened", "app"),
        ("browse-ab-test", "product.viewed", "web"),
    ] {
        let input = Input::Event(event(event_type, channel));
        group.bench_function(format!("enter/{name}"), |b| {
            b.iter_batched(
                || fresh.clone(),
                |customer| drop(apply(&journeys, &policies, customer, black_box(&input), T0)),
                BatchSize::SmallInput,
            )
        });
        // The state after entering, and the timer it scheduled: the next step.
        let (waiting, effects) = apply(&journeys, &policies, fresh.clone(), &input, T0);
        if let Some((journey, at)) = effects.iter().find_map(|e| match e {
            Effect::ScheduleTimer { journey, at } => Some((journey.clone(), *at)),
            _ => None,
        }) {
            let timer = Input::Timer { journey, due: at };
            group.bench_function(format!("timer/{name}"), |b| {
                b.iter_batched(
                    || waiting.clone(),
                    |customer| drop(apply(&journeys, &policies, customer, black_box(&timer), at)),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

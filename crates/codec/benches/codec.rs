//! Avro encode and decode of a typical channel event and send command, in both framings.
//! Reports records per second on one core.
#![allow(clippy::expect_used)] // a benchmark whose setup fails has nothing to measure

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_codec::{
    AttrValue, ChannelEvent, Codec, Framing, Identifier, LocalSchemas, SendCommand, SendReason,
};

fn event() -> ChannelEvent {
    ChannelEvent {
        event_id: "gen-123456-987654321".into(),
        event_type: "cart.updated".into(),
        channel: "web".into(),
        occurred_at: 1_768_471_200_000,
        identifiers: vec![
            Identifier::new("anonymous_id", "cookie-123456"),
            Identifier::new("email", "shopper123456@example.com"),
        ],
        attributes: BTreeMap::from([
            ("cart_value".to_owned(), AttrValue::Double(129.5)),
            ("sku".to_owned(), AttrValue::String("SKU-42".into())),
            ("items".to_owned(), AttrValue::Long(3)),
        ]),
        locale: Some("en-GB".into()),
        timezone: Some("Europe/London".into()),
    }
}

fn command() -> SendCommand {
    SendCommand {
        command_id: "6f1c7c1e-3b0a-5f5e-9d53-2f6a1c0e9b11".into(),
        profile_id: "01a20ed2-dc49-7d18-b351-f426ffafddd3".into(),
        channel: "email".into(),
        address: "shopper123456@example.com".into(),
        template: "cart-reminder".into(),
        locale: "en-GB".into(),
        vars: BTreeMap::from([("value".to_owned(), "129.5".to_owned())]),
        journey: "abandoned-cart".into(),
        version: 3,
        step: "remind".into(),
        variant: None,
        not_after: None,
        reason: SendReason {
            trigger: "gen-123456-987654321".into(),
            path: vec!["pause".into(), "remind".into()],
            fallback_from: vec!["push".into()],
        },
        created_at: 1_768_471_202_000,
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let codec = runtime
        .block_on(Codec::new(
            LocalSchemas::embedded().expect("embedded schemas"),
        ))
        .expect("codec");
    let (event, command) = (event(), command());
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    for (name, framing) in [
        ("confluent", Framing::Confluent),
        ("single_object", Framing::SingleObject),
    ] {
        let bytes = codec.encode(&event, framing).expect("encode");
        let writer = runtime.block_on(codec.writer_of(&bytes)).expect("writer");
        group.bench_function(format!("encode/channel_event/{name}"), |b| {
            b.iter(|| codec.encode(black_box(&event), framing))
        });
        group.bench_function(format!("decode/channel_event/{name}"), |b| {
            b.iter(|| codec.decode_with::<ChannelEvent>(&writer, black_box(&bytes)))
        });
    }
    let bytes = codec.encode(&command, Framing::Confluent).expect("encode");
    let writer = runtime.block_on(codec.writer_of(&bytes)).expect("writer");
    group.bench_function("encode/send_command/confluent", |b| {
        b.iter(|| codec.encode(black_box(&command), Framing::Confluent))
    });
    group.bench_function("decode/send_command/confluent", |b| {
        b.iter(|| codec.decode_with::<SendCommand>(&writer, black_box(&bytes)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Synthetic omnichannel traffic for `switchboard run --generate`: a population of customers,
//! each with a customer id, loyalty card, email, phone, device and web cookie, doing what
//! shoppers do on the web, in the app, by email and SMS, and at the store till.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureProducer;
use switchboard_codec::{AttrValue, ChannelEvent, Codec, Framing, Identifier, SchemaResolver};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use switchboard_kafka::{OutRecord, produce_all};

use crate::now_ms;

/// Generator settings.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub events_per_second: u32,
    pub customers: u32,
    pub events_prefix: String,
    pub framing: Framing,
    pub seed: u64,
    /// Every Nth record is truncated (a malformed record for the dead-letter topic); 0: never.
    pub malformed_every: u64,
}

/// One synthetic event for customer `n`.
pub fn event(rng: &mut impl Rng, customers: u32, seq: u64) -> ChannelEvent {
    let n = rng.random_range(0..customers.max(1));
    let ids = |kinds: &[&str]| -> Vec<Identifier> {
        kinds
            .iter()
            .map(|k| {
                let v = match *k {
                    "customer_id" => format!("C{n:07}"),
                    "loyalty_card" => format!("L{n:09}"),
                    "email" => format!("shopper{n}@example.com"),
                    "phone" => format!("+447911{:06}", n % 1_000_000),
                    "device_id" => format!("dev-{n}"),
                    "push_token" => format!("tok-{n}"),
                    _ => format!("cookie-{n}"),
                };
                Identifier::new(*k, v)
            })
            .collect()
    };
    let roll = rng.random_range(0..100u32);
    let (event_type, channel, identifiers, attrs): (
        &str,
        &str,
        Vec<Identifier>,
        Vec<(&str, AttrValue)>,
    ) = match roll {
        0..=29 => (
            "product.viewed",
            "web",
            ids(&["anonymous_id"]),
            vec![(
                "sku",
                AttrValue::String(format!("SKU-{}", rng.random_range(0..500))),
            )],
        ),
        30..=44 => (
            "cart.updated",
            "web",
            ids(&["anonymous_id", "email"]),
            vec![(
                "cart_value",
                AttrValue::Double(f64::from(rng.random_range(5..900u32))),
            )],
        ),
        45..=59 => (
            "app.opened",
            "app",
            ids(&["device_id", "customer_id", "push_token"]),
            vec![],
        ),
        60..=64 => (
            "app.installed",
            "app",
            ids(&["device_id", "customer_id", "email", "push_token"]),
            vec![],
        ),
        65..=74 => ("email.clicked", "email", ids(&["email"]), vec![]),
        75..=89 => (
            "order.completed",
            "pos",
            ids(&["loyalty_card", "customer_id", "phone"]),
            vec![(
                "total",
                AttrValue::Double(f64::from(rng.random_range(5..400u32))),
            )],
        ),
        90..=96 => (
            "order.completed",
            "web",
            ids(&["customer_id", "email", "anonymous_id"]),
            vec![(
                "total",
                AttrValue::Double(f64::from(rng.random_range(5..400u32))),
            )],
        ),
        // A family tablet: this customer signs in on the next customer's device, so the
        // device cannot join both (an identity conflict, as in real traffic).
        99 => {
            let mut shared = ids(&["customer_id"]);
            let next = (n + 1) % customers.max(1);
            shared.push(Identifier::new("device_id", format!("dev-{next}")));
            ("app.opened", "app", shared, vec![])
        }
        _ => ("sms.unsubscribed", "sms", ids(&["phone"]), vec![]),
    };
    ChannelEvent {
        event_id: format!("gen-{seq}-{}", rng.random::<u32>()),
        event_type: event_type.into(),
        channel: channel.into(),
        occurred_at: now_ms(),
        identifiers,
        attributes: attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        locale: Some("en-GB".into()),
        timezone: Some("Europe/London".into()),
    }
}

/// Produces `events_per_second` events (in 20 ms slices) until `shutdown`.
pub async fn generate<R: SchemaResolver>(
    traffic: Traffic,
    codec: Arc<Codec<R>>,
    producer: FutureProducer,
    produced: Arc<std::sync::atomic::AtomicU64>,
    shutdown: CancellationToken,
) {
    let mut rng = StdRng::seed_from_u64(traffic.seed);
    let slice = Duration::from_millis(20);
    let per_slice = f64::from(traffic.events_per_second) / 50.0;
    let mut owed = 0.0;
    let mut seq = 0u64;
    let mut ticker = tokio::time::interval(slice);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        owed += per_slice;
        let mut batch = Vec::new();
        while owed >= 1.0 {
            owed -= 1.0;
            seq += 1;
            let e = event(&mut rng, traffic.customers, seq);
            match codec.encode(&e, traffic.framing) {
                Ok(mut payload) => {
                    if traffic.malformed_every > 0 && seq.is_multiple_of(traffic.malformed_every) {
                        payload.truncate(payload.len() / 2);
                    }
                    batch.push(OutRecord {
                        topic: format!("{}{}", traffic.events_prefix, e.channel),
                        key: e.identifiers.first().map(|i| i.value.clone().into_bytes()),
                        payload,
                        headers: Vec::new(),
                    });
                }
                Err(err) => warn!(error = %err, "cannot encode a generated event"),
            }
        }
        let n = batch.len() as u64;
        match produce_all(&producer, &batch).await {
            Ok(()) => {
                produced.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
            Err(err) => warn!(error = %err, "generator produce failed"),
        }
    }
}

//! Synthetic omnichannel traffic for `switchboard run --generate`: a population of customers,
//! each with a customer id, loyalty card, email, phone, device and web cookie, doing what
//! shoppers do on the web, in the app, by email and SMS, and at the store till.
//!
//! They also convert, so that a journey's variants and its control group differ: a customer
//! who views a product buys it online a little later with probability [`BASE_RATE`], message
//! or not, and a customer who receives a message buys with the probability its template adds
//! ([`UPLIFT`]), read from the `commands.<channel>` topics by [`respond`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    pub mix: Mix,
    /// New events stop after this many (the purchases they cause still come); `None`: never.
    pub limit: Option<u64>,
    /// A purchase comes this many milliseconds after its cause, at random in the range.
    pub purchase_delay_ms: std::ops::Range<u64>,
}

impl Traffic {
    /// Shoppers at `events_per_second` until stopped, buying 5 s to a minute after a view or
    /// a message.
    pub fn shoppers(events_per_second: u32, customers: u32, events_prefix: String) -> Self {
        Self {
            events_per_second,
            customers,
            events_prefix,
            framing: Framing::Confluent,
            seed: 7,
            malformed_every: 0,
            mix: Mix::Shoppers,
            limit: None,
            purchase_delay_ms: 5_000..60_000,
        }
    }
}

/// What the generated customers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Everything shoppers do ([`event`]), purchases and opt-outs included.
    Shoppers,
    /// Only product views by signed-in shoppers ([`signed_in_view`]), and the purchases they
    /// lead to: an A/B test whose true conversion per arm is known (see [`true_conversion`]).
    SignedInViews,
}

/// The conversion of a signed-in viewer who receives `template` (if any), in the
/// [`Mix::SignedInViews`] traffic: they buy on their own at [`BASE_RATE`], and, independently,
/// because of the message at its [`UPLIFT`]; a goal counts their first purchase.
pub fn true_conversion(template: Option<&str>) -> f64 {
    let uplift = template.map_or(0.0, uplift_of);
    1.0 - (1.0 - BASE_RATE) * (1.0 - uplift)
}

fn uplift_of(template: &str) -> f64 {
    UPLIFT
        .iter()
        .find(|(t, _)| *t == template)
        .map_or(0.0, |(_, u)| *u)
}

/// The chance that a customer who viewed a product buys it online soon after, message or not:
/// the control group's conversion.
pub const BASE_RATE: f64 = 0.05;

/// The chance a message of each template adds: a customer who receives it buys soon after
/// with this probability (on top of [`BASE_RATE`] and of the traffic's own purchases).
pub const UPLIFT: [(&str, f64); 5] = [
    ("browse-a", 0.20),
    ("browse-b", 0.10),
    ("cart-reminder", 0.15),
    ("cart-10-off", 0.25),
    ("store-app-offer", 0.10),
];

/// The generated customer a command is addressed to: `shopper<n>@example.com`,
/// `+447911<n>`, `tok-<n>` or `dev-<n>`.
pub fn customer_of(address: &str) -> Option<u32> {
    let digits = address
        .strip_prefix("shopper")
        .and_then(|a| a.strip_suffix("@example.com"))
        .or_else(|| address.strip_prefix("+447911"))
        .or_else(|| address.strip_prefix("tok-"))
        .or_else(|| address.strip_prefix("dev-"))?;
    digits.parse().ok()
}

/// Whether the customer who receives a message of `template` buys because of it.
pub fn buys_after(template: &str, rng: &mut impl Rng) -> bool {
    rng.random_bool(uplift_of(template))
}

/// An online purchase of customer `n`, with the identifiers of their web orders.
pub fn purchase(n: u32, seq: u64, rng: &mut impl Rng) -> ChannelEvent {
    ChannelEvent {
        event_id: format!("buy-{seq}-{}", rng.random::<u32>()),
        event_type: "order.completed".into(),
        channel: "web".into(),
        occurred_at: now_ms(),
        identifiers: vec![
            Identifier::new("customer_id", format!("C{n:07}")),
            Identifier::new("email", format!("shopper{n}@example.com")),
            Identifier::new("anonymous_id", format!("cookie-{n}")),
        ],
        attributes: [(
            "total".to_owned(),
            AttrValue::Double(f64::from(rng.random_range(5..400u32))),
        )]
        .into(),
        locale: Some("en-GB".into()),
        timezone: Some("Europe/London".into()),
    }
}

/// One synthetic event of a customer drawn from `customers`.
pub fn event(rng: &mut impl Rng, customers: u32, seq: u64) -> ChannelEvent {
    let n = rng.random_range(0..customers.max(1));
    let roll = rng.random_range(0..100u32);
    shaped(rng, customers, n, roll, seq)
}

/// A product view by a signed-in customer drawn from `customers` (a follow-up can reach them
/// by email).
pub fn signed_in_view(rng: &mut impl Rng, customers: u32, seq: u64) -> ChannelEvent {
    let n = rng.random_range(0..customers.max(1));
    shaped(rng, customers, n, SIGNED_IN_VIEW, seq)
}

/// The roll of [`shaped`] that makes a signed-in product view.
const SIGNED_IN_VIEW: u32 = 15;

/// Customer `n`'s event of the kind `roll` (0..100) picks.
fn shaped(rng: &mut impl Rng, customers: u32, n: u32, roll: u32, seq: u64) -> ChannelEvent {
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
    let (event_type, channel, identifiers, attrs): (
        &str,
        &str,
        Vec<Identifier>,
        Vec<(&str, AttrValue)>,
    ) = match roll {
        // Half the views are by signed-in shoppers, whom a follow-up can reach.
        0..SIGNED_IN_VIEW => (
            "product.viewed",
            "web",
            ids(&["anonymous_id"]),
            vec![(
                "sku",
                AttrValue::String(format!("SKU-{}", rng.random_range(0..500))),
            )],
        ),
        SIGNED_IN_VIEW..=29 => (
            "product.viewed",
            "web",
            ids(&["anonymous_id", "email"]),
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

/// Produces `events_per_second` events (in 20 ms slices) until `shutdown`, and the purchases
/// of the customers who convert: a viewer at [`BASE_RATE`], and each customer `buys` names
/// (those a message won over, from [`respond`]), a few seconds to a minute later.
pub async fn generate<R: SchemaResolver>(
    traffic: Traffic,
    codec: Arc<Codec<R>>,
    producer: FutureProducer,
    produced: Arc<std::sync::atomic::AtomicU64>,
    mut buys: tokio::sync::mpsc::UnboundedReceiver<u32>,
    shutdown: CancellationToken,
) {
    let mut rng = StdRng::seed_from_u64(traffic.seed);
    let slice = Duration::from_millis(20);
    let per_slice = f64::from(traffic.events_per_second) / 50.0;
    let mut owed = 0.0;
    let mut seq = 0u64;
    let mut made = 0u64;
    let mut ticker = tokio::time::interval(slice);
    let mut later: BinaryHeap<Reverse<(Instant, u32)>> = BinaryHeap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        let delay = traffic.purchase_delay_ms.clone();
        let soon = |rng: &mut StdRng| now + Duration::from_millis(rng.random_range(delay.clone()));
        while let Ok(n) = buys.try_recv() {
            later.push(Reverse((soon(&mut rng), n)));
        }
        owed += per_slice;
        let mut events = Vec::new();
        while owed >= 1.0 && traffic.limit.is_none_or(|limit| made < limit) {
            owed -= 1.0;
            seq += 1;
            made += 1;
            let e = match traffic.mix {
                Mix::Shoppers => event(&mut rng, traffic.customers, seq),
                Mix::SignedInViews => signed_in_view(&mut rng, traffic.customers, seq),
            };
            if e.event_type == "product.viewed"
                && let Some(n) = (e.identifiers.iter())
                    .find_map(|i| i.value.strip_prefix("cookie-")?.parse().ok())
                && rng.random_bool(BASE_RATE)
            {
                later.push(Reverse((soon(&mut rng), n)));
            }
            events.push(e);
        }
        while let Some(Reverse((at, n))) = later.peek().copied()
            && at <= now
        {
            later.pop();
            seq += 1;
            events.push(purchase(n, seq, &mut rng));
        }
        let mut batch = Vec::with_capacity(events.len());
        for e in events {
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

/// The generated customers' side of the messages: reads every command of `commands` (from
/// now on) and names on `buys` each customer a message won over ([`buys_after`]), until
/// `shutdown`.
pub async fn respond<R: SchemaResolver>(
    consumer: rdkafka::consumer::StreamConsumer,
    codec: Arc<Codec<R>>,
    buys: tokio::sync::mpsc::UnboundedSender<u32>,
    seed: u64,
    shutdown: CancellationToken,
) {
    use rdkafka::message::Message;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            m = consumer.recv() => m,
        };
        let Ok(message) = message else { continue };
        let Some(bytes) = message.payload() else {
            continue;
        };
        let Ok(command) = codec.decode::<switchboard_codec::SendCommand>(bytes).await else {
            continue;
        };
        if let Some(n) = customer_of(&command.address)
            && buys_after(&command.template, &mut rng)
        {
            let _ = buys.send(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commands_address_names_its_generated_customer() {
        assert_eq!(customer_of("shopper42@example.com"), Some(42));
        assert_eq!(customer_of("+447911000042"), Some(42));
        assert_eq!(customer_of("tok-7"), Some(7));
        assert_eq!(customer_of("dev-9"), Some(9));
        assert_eq!(customer_of("ann@example.com"), None);
    }

    /// The variants of the A/B test and the control group convert differently, by as much as
    /// the model says.
    #[test]
    fn a_message_wins_over_its_templates_share_of_customers() {
        let mut rng = StdRng::seed_from_u64(1);
        let share = |template: &str, rng: &mut StdRng| {
            (0..20_000).filter(|_| buys_after(template, rng)).count() as f64 / 20_000.0
        };
        let (a, b) = (share("browse-a", &mut rng), share("browse-b", &mut rng));
        assert!((a - 0.20).abs() < 0.01, "{a}");
        assert!((b - 0.10).abs() < 0.01, "{b}");
        assert_eq!(
            share("daily-streak", &mut rng),
            0.0,
            "a template with no uplift"
        );
        // A purchase lands on the customer's profile: the cookie of their views is in it.
        let p = purchase(42, 1, &mut rng);
        assert!(
            p.identifiers
                .contains(&Identifier::new("anonymous_id", "cookie-42"))
        );
        assert_eq!(p.event_type, "order.completed");
    }
}

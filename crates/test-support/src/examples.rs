//! The example journeys and policies as deployed, and a builder of channel events, for tests
//! of journeys (through the interpreter or `simulate`).

use std::path::Path;

use switchboard_codec::{AttrValue, ChannelEvent, Identifier};
use switchboard_journey::{JourneySet, Policies, load_dir};

pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;
/// 2026-01-15T10:00:00Z, a Thursday.
pub const T0: i64 = 1_768_471_200_000;

/// `deploy/policies.yaml`.
pub fn policies() -> Policies {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/policies.yaml");
    Policies::from_path(Path::new(path)).expect("the deployed files are valid")
}

/// The example journeys of `journeys/`.
pub fn journeys() -> JourneySet {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../journeys");
    JourneySet::new(
        load_dir(Path::new(dir), &policies().channels).expect("the deployed files are valid"),
    )
}

/// An A/B test of two email subject lines whose split picks its winner after a day, once
/// each variant has 100 entries (for tests of `optimize`).
pub const SUBJECT_LINE: &str = r#"journey: subject-line
version: 1
trigger: { event: product.viewed }
reentry: never
goal: { event: order.completed, within: 3d }
start: choose
steps:
  choose:
    split:
      - { variant: a, weight: 50, next: send-a }
      - { variant: b, weight: 50, next: send-b }
    optimize: { after: 1d, min_entries: 100 }
  send-a:
    send: { channel: email, template: subject-a }
    next: done
  send-b:
    send: { channel: email, template: subject-b }
    next: done
  done:
    exit: sent
"#;

/// A channel event being built.
#[derive(Debug, Clone)]
pub struct Ev(pub ChannelEvent);

/// Event `id` of `event_type` on `channel` at `at`, of customer id `customer`.
pub fn ev(id: &str, event_type: &str, channel: &str, at: i64, customer: &str) -> Ev {
    Ev(ChannelEvent {
        event_id: id.into(),
        event_type: event_type.into(),
        channel: channel.into(),
        occurred_at: at,
        identifiers: vec![Identifier::new("customer_id", customer)],
        attributes: Default::default(),
        locale: None,
        timezone: None,
    })
}

impl Ev {
    pub fn id(mut self, kind: &str, value: &str) -> Self {
        self.0.identifiers.push(Identifier::new(kind, value));
        self
    }
    pub fn num(mut self, k: &str, v: f64) -> Self {
        self.0.attributes.insert(k.into(), AttrValue::Double(v));
        self
    }
    pub fn text(mut self, k: &str, v: &str) -> Self {
        self.0
            .attributes
            .insert(k.into(), AttrValue::String(v.into()));
        self
    }
    pub fn flag(mut self, k: &str, v: bool) -> Self {
        self.0.attributes.insert(k.into(), AttrValue::Bool(v));
        self
    }
    pub fn tz(mut self, tz: &str) -> Self {
        self.0.timezone = Some(tz.into());
        self
    }
}

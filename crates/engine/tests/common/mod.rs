//! Shared fixtures: the example journeys and policies, and an event builder.
#![allow(dead_code)]

use std::path::Path;

use switchboard_codec::{AttrValue, ChannelEvent, Identifier};
use switchboard_engine::simulate::{Happening, What, simulate};
use switchboard_journey::{JourneySet, Policies, load_dir};

pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;
/// 2026-01-15T10:00:00Z, a Thursday.
pub const T0: i64 = 1_768_471_200_000;

pub fn policies() -> Policies {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/policies.yaml");
    Policies::from_path(Path::new(path)).unwrap()
}

pub fn journeys() -> JourneySet {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../journeys");
    JourneySet::new(load_dir(Path::new(dir), &policies().channels).unwrap())
}

#[derive(Debug, Clone)]
pub struct Ev(pub ChannelEvent);

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

pub fn run(events: Vec<Ev>) -> Vec<Happening> {
    simulate(
        &journeys(),
        &policies(),
        events.into_iter().map(|e| e.0).collect(),
    )
}

/// (time, journey, step, channel, template) of every send.
pub fn sends(h: &[Happening]) -> Vec<(i64, String, String, String, String)> {
    h.iter()
        .filter_map(|h| match &h.what {
            What::Send {
                journey,
                step,
                channel,
                template,
                ..
            } => Some((
                h.at,
                journey.clone(),
                step.clone(),
                channel.clone(),
                template.clone(),
            )),
            _ => None,
        })
        .collect()
}

pub fn sends_of<'a>(h: &'a [Happening], journey: &str) -> Vec<(i64, String, String)> {
    sends(h)
        .into_iter()
        .filter(|s| s.1 == journey)
        .map(|s| (s.0, s.3, s.4))
        .collect()
}

pub fn suppressions(h: &[Happening]) -> Vec<(i64, String, String)> {
    h.iter()
        .filter_map(|h| match &h.what {
            What::Suppressed {
                journey, reason, ..
            } => Some((h.at, journey.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

pub fn exits(h: &[Happening], journey: &str) -> Vec<(i64, String)> {
    h.iter()
        .filter_map(|h| match &h.what {
            What::Exited { journey: j, reason } if j == journey => Some((h.at, reason.clone())),
            _ => None,
        })
        .collect()
}

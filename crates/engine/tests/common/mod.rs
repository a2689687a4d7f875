//! Shared fixtures: the example journeys and policies, an event builder, and what simulate
//! shows of them.
#![allow(dead_code, unused_imports)]

use switchboard_engine::simulate::{Happening, What, simulate};
pub use switchboard_test_support::examples::*;

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

pub fn deferrals(h: &[Happening]) -> Vec<(i64, String, String)> {
    h.iter()
        .filter_map(|h| match &h.what {
            What::Deferred {
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

//! The two services, wired: the stitcher and the engine, each a consumer-group member with a
//! task per partition (`switchboard-kafka`), over an identity store and a state store (Redis,
//! or memory in the embedded mode). Their domain logic is elsewhere and pure: identity
//! resolution in `switchboard-identity`, the engine's planner in `switchboard-engine`.
// Services hold librdkafka handles and generic stores; their Debug output would say nothing.
#![allow(missing_debug_implementations)]

pub mod catalog;
pub mod engine;
pub mod forget;
pub mod generate;
pub mod metrics;
pub mod repeated;
pub mod services;
pub mod stitcher;

pub use metrics::Metrics;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

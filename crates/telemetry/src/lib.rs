//! What an SRE sees of a Switchboard process: structured logs, Prometheus metrics, and an
//! admin HTTP server with `/metrics`, `/healthz` (the process is alive) and `/readyz` (every
//! component that reported in is ready: Kafka assigned, Redis reachable, journeys loaded).

mod admin;
mod health;
mod logs;
mod metrics;

pub use admin::{AdminServer, serve};
pub use health::Health;
pub use logs::init_logs;
pub use metrics::{BUILD_INFO, Registering, new_registry};

/// Telemetry failures; all are fatal at startup.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("log filter `{filter}`: {reason}")]
    LogFilter { filter: String, reason: String },
    #[error("admin server cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("metric registration: {0}")]
    Metrics(#[from] prometheus::Error),
}

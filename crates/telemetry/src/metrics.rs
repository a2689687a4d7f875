//! The process-wide Prometheus registry.

use prometheus::{IntGaugeVec, Opts, Registry};

use crate::TelemetryError;

/// `switchboard_build_info{version, commit}`: always 1, for joins and version dashboards.
pub const BUILD_INFO: &str = "switchboard_build_info";

/// A registry holding the build info; each component registers its own metrics in it.
pub fn new_registry(version: &str, commit: &str) -> Result<Registry, TelemetryError> {
    let registry = Registry::new();
    let info = IntGaugeVec::new(
        Opts::new(BUILD_INFO, "Build of the running Switchboard: always 1."),
        &["version", "commit"],
    )?;
    info.with_label_values(&[version, commit]).set(1);
    registry.register(Box::new(info))?;
    Ok(registry)
}

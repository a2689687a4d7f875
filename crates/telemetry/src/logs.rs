//! The `tracing` subscriber: human lines on a terminal, JSON lines in production.

use switchboard_config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

use crate::TelemetryError;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `log.level`.
/// Calling it twice keeps the first subscriber.
pub fn init_logs(config: &LogConfig) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => f,
        _ => config.level.clone(),
    };
    let env_filter = EnvFilter::try_new(&filter).map_err(|e| TelemetryError::LogFilter {
        filter: filter.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let _already_set = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    Ok(())
}

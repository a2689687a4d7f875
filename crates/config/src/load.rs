//! Layering defaults, file, environment and flags.

use std::path::Path;

use crate::{Config, ConfigError};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

/// Values given as command-line flags; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub kafka_bootstrap: Option<String>,
    pub redis_url: Option<String>,
    pub admin_listen: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
}

/// Loads and validates the configuration: defaults, then `file` (if any), then the
/// `SWITCHBOARD_<SECTION>__<KEY>` environment, then `overrides`. Other `SWITCHBOARD_*`
/// variables (`SWITCHBOARD_CONFIG`, the test harness's) are not configuration keys.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::Parse(format!(
                "config file {} does not exist",
                path.display()
            )));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(
        Env::prefixed("SWITCHBOARD_")
            .split("__")
            .filter(|key| key.as_str().contains('.')),
    );
    for (key, value) in flat(overrides) {
        figment = figment.merge(Serialized::default(&key, value));
    }
    let config: Config = figment
        .extract()
        .map_err(|e| ConfigError::Parse(describe(&e)))?;
    config.validate()?;
    Ok(config)
}

fn flat(o: &Overrides) -> Vec<(String, String)> {
    [
        ("kafka.bootstrap_servers", &o.kafka_bootstrap),
        ("redis.url", &o.redis_url),
        ("admin.listen", &o.admin_listen),
        ("log.format", &o.log_format),
        ("log.level", &o.log_level),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
    .collect()
}

/// Every error figment found, each with its key path and where the value came from.
fn describe(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("key `{}`: ", e.path.join("."))
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            format!("{key}{}{source}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

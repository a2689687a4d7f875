//! Switchboard's configuration.
//!
//! Layers, each overriding the one before: built-in defaults, a TOML file, environment
//! variables `SWITCHBOARD_<SECTION>__<KEY>` (for example `SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS`,
//! `SWITCHBOARD_REDIS__URL`), then command-line flags. Unknown keys are errors, and
//! [`Config::validate`] checks values against each other; every message names the key.

mod error;
mod load;
mod model;
mod validate;

pub use error::ConfigError;
pub use load::{Overrides, load};
pub use model::{
    AdminConfig, Config, KafkaConfig, LogConfig, LogFormat, RedisConfig, SchemaConfig, TopicsConfig,
};

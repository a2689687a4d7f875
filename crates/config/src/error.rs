//! Configuration errors, each naming the offending key.

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read or did not match the expected shape
    /// (unknown key, wrong type); figment's message names the key and its source.
    #[error("configuration: {0}")]
    Parse(String),
    /// A value is out of range or inconsistent with another.
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

//! Checks of values against each other, after the layers are merged.

use std::net::SocketAddr;

use crate::{Config, ConfigError};

const SECURITY_PROTOCOLS: [&str; 4] = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
const REDIS_SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis+unix://", "unix://"];

impl Config {
    /// Rejects values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.identity
            .validate()
            .map_err(|e| ConfigError::invalid(&format!("identity.{}", e.key), e.reason))?;
        let k = &self.kafka;
        if k.bootstrap_servers.split(',').any(|s| s.trim().is_empty()) {
            return Err(ConfigError::invalid(
                "kafka.bootstrap_servers",
                "must be a comma-separated list of host:port",
            ));
        }
        if let Some(p) = k.properties.get("security.protocol")
            && !SECURITY_PROTOCOLS.contains(&p.to_lowercase().as_str())
        {
            return Err(ConfigError::invalid(
                "kafka.properties.\"security.protocol\"",
                format!("`{p}` is not one of {}", SECURITY_PROTOCOLS.join(", ")),
            ));
        }
        let sasl = k
            .properties
            .get("security.protocol")
            .is_some_and(|p| p.to_lowercase().starts_with("sasl"));
        let mechanism = k.properties.get("sasl.mechanism").map(|m| m.to_uppercase());
        if sasl
            && mechanism.as_deref() != Some("GSSAPI")
            && mechanism.as_deref() != Some("OAUTHBEARER")
        {
            for key in ["sasl.username", "sasl.password"] {
                if !k.properties.contains_key(key) {
                    return Err(ConfigError::invalid(
                        &format!("kafka.properties.\"{key}\""),
                        "required when security.protocol is SASL_* with a PLAIN or SCRAM mechanism",
                    ));
                }
            }
        }
        for reserved in ["bootstrap.servers", "group.id", "transactional.id"] {
            if k.properties.contains_key(reserved) {
                return Err(ConfigError::invalid(
                    &format!("kafka.properties.\"{reserved}\""),
                    "is set by Switchboard itself (use kafka.bootstrap_servers for the brokers)",
                ));
            }
        }

        let r = &self.redis;
        for (key, url) in std::iter::once(("redis.url", &r.url))
            .chain(r.cluster_seeds.iter().map(|u| ("redis.cluster_seeds", u)))
        {
            if !REDIS_SCHEMES.iter().any(|s| url.starts_with(s)) {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "`{url}` must start with one of {}",
                        REDIS_SCHEMES.join(", ")
                    ),
                ));
            }
        }
        if !r.cluster && !r.cluster_seeds.is_empty() {
            return Err(ConfigError::invalid(
                "redis.cluster_seeds",
                "only used with redis.cluster = true",
            ));
        }
        if r.key_prefix.is_empty() || r.key_prefix.contains(['{', '}', ' ']) {
            return Err(ConfigError::invalid(
                "redis.key_prefix",
                "must be non-empty, without braces or spaces",
            ));
        }

        let t = &self.topics;
        if t.channels.is_empty() {
            return Err(ConfigError::invalid(
                "topics.channels",
                "needs at least one channel",
            ));
        }
        if let Some(c) = t.json_channels.iter().find(|c| !t.channels.contains(c)) {
            return Err(ConfigError::invalid(
                "topics.json_channels",
                format!("`{c}` is not in topics.channels"),
            ));
        }
        if t.partitions < 1 {
            return Err(ConfigError::invalid(
                "topics.partitions",
                "must be at least 1",
            ));
        }
        if t.replication_factor < 1 {
            return Err(ConfigError::invalid(
                "topics.replication_factor",
                "must be at least 1",
            ));
        }

        if self.admin.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::invalid(
                "admin.listen",
                format!("`{}` is not a host:port socket address", self.admin.listen),
            ));
        }
        if self.schemas.registry_username.is_some() != self.schemas.registry_password.is_some() {
            return Err(ConfigError::invalid(
                "schemas.registry_password",
                "registry_username and registry_password go together",
            ));
        }
        if let Some(url) = &self.schemas.registry_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                "schemas.registry_url",
                format!("`{url}` must be an http(s) URL"),
            ));
        }
        Ok(())
    }
}

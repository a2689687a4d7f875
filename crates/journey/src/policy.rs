//! Global policies: channels, consent, frequency caps, quiet hours, defaults.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::time::{parse_duration, parse_time_of_day};

/// The policies file as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoliciesFile {
    /// Every channel journeys may name.
    pub channels: Vec<String>,
    /// Channel → identifier kind that holds its address. Default: email → `email`,
    /// sms → `phone`, push → `push_token`, app → `device_id` (for the channels declared).
    #[serde(default)]
    pub addresses: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub consent: ConsentFile,
    /// Frequency caps across all journeys.
    #[serde(default)]
    pub caps: Vec<CapFile>,
    #[serde(default)]
    pub quiet_hours: Option<QuietHoursFile>,
    #[serde(default = "utc")]
    pub default_timezone: String,
    #[serde(default = "en")]
    pub default_locale: String,
}

/// Consent rules.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentFile {
    /// Whether a channel without a recorded choice may be used.
    #[serde(default = "yes")]
    pub granted_by_default: bool,
}

impl Default for ConsentFile {
    fn default() -> Self {
        Self {
            granted_by_default: true,
        }
    }
}

/// At most `max` sends per rolling `per` window, on `channel` or (without it) overall.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapFile {
    #[serde(default)]
    pub channel: Option<String>,
    pub max: u32,
    pub per: String,
}

/// Local hours in which sends on `channels` (all if empty) are deferred to `to`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursFile {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub channels: Vec<String>,
}

fn default_addresses() -> BTreeMap<String, String> {
    [
        ("email", "email"),
        ("sms", "phone"),
        ("push", "push_token"),
        ("app", "device_id"),
    ]
    .into_iter()
    .map(|(c, k)| (c.to_owned(), k.to_owned()))
    .collect()
}
fn utc() -> String {
    "UTC".into()
}
fn en() -> String {
    "en".into()
}
fn yes() -> bool {
    true
}

/// Validated policies.
#[derive(Debug, Clone)]
pub struct Policies {
    pub channels: Vec<String>,
    /// Identifier kind → channel whose address it is.
    pub address_kinds: BTreeMap<String, String>,
    pub consent_by_default: bool,
    pub caps: Vec<Cap>,
    pub quiet_hours: Option<QuietHours>,
    pub default_timezone: String,
    pub default_locale: String,
}

/// A validated cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    pub channel: Option<String>,
    pub max: u32,
    pub window_ms: i64,
}

/// Validated quiet hours, in minutes after local midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietHours {
    pub from: u32,
    pub to: u32,
    pub channels: Vec<String>,
}

impl QuietHours {
    /// Whether `minute` (local) is inside the quiet window, which may span midnight.
    pub fn contains(&self, minute: u32) -> bool {
        if self.from <= self.to {
            (self.from..self.to).contains(&minute)
        } else {
            minute >= self.from || minute < self.to
        }
    }

    pub fn applies_to(&self, channel: &str) -> bool {
        self.channels.is_empty() || self.channels.iter().any(|c| c == channel)
    }
}

impl Policies {
    /// Parses and validates a policies file; the error names the key.
    pub fn parse(file: &str, text: &str) -> Result<Self, String> {
        let f: PoliciesFile = serde_saphyr::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        Self::from_file(f).map_err(|e| format!("{file}: {e}"))
    }

    /// Reads, parses and validates the policies file at `path`; the error names the file.
    pub fn from_path(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read policies {}: {e}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn from_file(f: PoliciesFile) -> Result<Self, String> {
        let known = |c: &String, key: &str| {
            if f.channels.contains(c) {
                Ok(())
            } else {
                Err(format!("{key}: unknown channel `{c}`"))
            }
        };
        let mut caps = Vec::new();
        for (i, c) in f.caps.iter().enumerate() {
            if let Some(ch) = &c.channel {
                known(ch, &format!("caps[{i}].channel"))?;
            }
            caps.push(Cap {
                channel: c.channel.clone(),
                max: c.max,
                window_ms: parse_duration(&c.per).map_err(|e| format!("caps[{i}].per: {e}"))?,
            });
        }
        let quiet_hours = match &f.quiet_hours {
            None => None,
            Some(q) => {
                for c in &q.channels {
                    known(c, "quiet_hours.channels")?;
                }
                Some(QuietHours {
                    from: parse_time_of_day(&q.from)
                        .map_err(|e| format!("quiet_hours.from: {e}"))?,
                    to: parse_time_of_day(&q.to).map_err(|e| format!("quiet_hours.to: {e}"))?,
                    channels: q.channels.clone(),
                })
            }
        };
        let addresses = match f.addresses {
            Some(given) => {
                for c in given.keys() {
                    known(c, "addresses")?;
                }
                given
            }
            None => default_addresses()
                .into_iter()
                .filter(|(c, _)| f.channels.contains(c))
                .collect(),
        };
        if jiff::tz::TimeZone::get(&f.default_timezone).is_err() {
            return Err(format!(
                "default_timezone: unknown time zone `{}`",
                f.default_timezone
            ));
        }
        Ok(Self {
            channels: f.channels,
            address_kinds: addresses
                .into_iter()
                .map(|(channel, kind)| (kind, channel))
                .collect(),
            consent_by_default: f.consent.granted_by_default,
            caps,
            quiet_hours,
            default_timezone: f.default_timezone,
            default_locale: f.default_locale,
        })
    }

    /// The longest cap window: sends older than this can be forgotten.
    pub fn longest_window(&self) -> i64 {
        self.caps.iter().map(|c| c.window_ms).max().unwrap_or(0)
    }
}

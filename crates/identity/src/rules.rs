//! The identity rules from configuration, and the preparation of an event's identifiers.

use std::collections::BTreeSet;

use phonenumber::country;
use serde::{Deserialize, Serialize};
use switchboard_codec::Identifier;

use crate::normalise::{BUILT_IN_BLOCKED, Normalisation, Rejected, normalise, unquote};

/// One identifier kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindRule {
    pub kind: String,
    pub normalise: Normalisation,
    /// Higher is stronger: on a conflict, the weakest identifier of the event is left
    /// unlinked.
    pub priority: u32,
    /// How many values of this kind one profile may hold (`customer_id`: 1). A second,
    /// different value is a conflict, never a merge.
    #[serde(default)]
    pub max_per_profile: Option<u32>,
}

/// The `[identity]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityRules {
    pub kinds: Vec<KindRule>,
    /// Values blocked for every kind, in addition to the built-in junk values.
    pub blocked: Vec<String>,
    /// ISO 3166 region for phone numbers written without a country code.
    pub default_region: String,
    /// Most identifiers one profile may hold, all kinds together.
    pub max_identifiers_per_profile: u32,
    /// Most merges one profile may take part in: a shared device cannot build a super-profile.
    pub max_merges_per_profile: u32,
    /// An `event_id` seen again within this many seconds is a duplicate, dropped by the engine.
    pub dedup_window_secs: u64,
    /// Identifiers each stitcher remembers the profile of, so a returning customer is stitched
    /// without reading Redis; 0 turns the cache off.
    pub cache_entries: u64,
    /// How long a remembered identifier is trusted (an erasure by `switchboard forget`
    /// clears every stitcher's cache before its next batch).
    pub cache_ttl_secs: u64,
}

impl Default for IdentityRules {
    fn default() -> Self {
        let kind = |kind: &str, normalise, priority, max| KindRule {
            kind: kind.into(),
            normalise,
            priority,
            max_per_profile: max,
        };
        Self {
            kinds: vec![
                kind("customer_id", Normalisation::Trim, 100, Some(1)),
                kind("loyalty_card", Normalisation::Trim, 90, Some(1)),
                kind("email", Normalisation::Email, 80, Some(5)),
                kind("phone", Normalisation::Phone, 70, Some(5)),
                kind("push_token", Normalisation::Trim, 40, Some(10)),
                kind("device_id", Normalisation::Trim, 30, Some(10)),
                kind("anonymous_id", Normalisation::Trim, 10, Some(50)),
            ],
            blocked: Vec::new(),
            default_region: "GB".into(),
            max_identifiers_per_profile: 100,
            max_merges_per_profile: 20,
            dedup_window_secs: 24 * 3600,
            cache_entries: 200_000,
            cache_ttl_secs: 60,
        }
    }
}

/// A configuration that cannot be used, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identity.{key}: {reason}")]
pub struct RulesError {
    pub key: String,
    pub reason: String,
}

/// An event's identifiers, ready for the identity graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// Normalised and deduplicated, strongest first (priority, then kind, then value).
    pub accepted: Vec<Identifier>,
    /// The kind of each identifier not used, and why (never the value).
    pub rejected: Vec<(String, Rejected)>,
}

impl Prepared {
    /// Why no identifier was usable, by kind (never a value): `no usable identifier (email:
    /// blocked, phone: bad_phone)`.
    pub fn none_usable(&self) -> String {
        let kinds: Vec<String> = self
            .rejected
            .iter()
            .map(|(k, r)| format!("{k}: {}", r.reason()))
            .collect();
        format!("no usable identifier ({})", kinds.join(", "))
    }
}

impl IdentityRules {
    /// Checks the rules against each other.
    pub fn validate(&self) -> Result<(), RulesError> {
        let err = |key: &str, reason: String| {
            Err(RulesError {
                key: key.into(),
                reason,
            })
        };
        let mut seen = BTreeSet::new();
        for (i, k) in self.kinds.iter().enumerate() {
            if k.kind.trim().is_empty() || k.kind.contains([':', '{', '}', ' ']) {
                return err(
                    &format!("kinds[{i}].kind"),
                    format!(
                        "`{}` must be non-empty, without `:`, braces or spaces",
                        k.kind
                    ),
                );
            }
            if !seen.insert(&k.kind) {
                return err(
                    &format!("kinds[{i}].kind"),
                    format!("`{}` is configured twice", k.kind),
                );
            }
            if k.max_per_profile == Some(0) {
                return err(
                    &format!("kinds[{i}].max_per_profile"),
                    "must be at least 1".into(),
                );
            }
        }
        if self.default_region.parse::<country::Id>().is_err() {
            return err(
                "default_region",
                format!("`{}` is not an ISO 3166 region code", self.default_region),
            );
        }
        if self.max_identifiers_per_profile == 0 {
            return err("max_identifiers_per_profile", "must be at least 1".into());
        }
        Ok(())
    }

    pub fn kind(&self, kind: &str) -> Option<&KindRule> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    fn blocked(&self, value: &str) -> bool {
        let v = unquote(value);
        BUILT_IN_BLOCKED.iter().any(|b| v.eq_ignore_ascii_case(b))
            || self
                .blocked
                .iter()
                .any(|b| unquote(b).eq_ignore_ascii_case(v))
    }

    /// Normalises, filters and orders an event's identifiers.
    pub fn prepare(&self, raw: &[Identifier]) -> Prepared {
        let region = self
            .default_region
            .parse::<country::Id>()
            .unwrap_or(country::Id::GB);
        let mut out = Prepared::default();
        let mut seen = BTreeSet::new();
        let mut ranked = Vec::new();
        for id in raw {
            let Some(rule) = self.kind(&id.kind) else {
                out.rejected
                    .push((id.kind.clone(), Rejected::UnknownKind(id.kind.clone())));
                continue;
            };
            if self.blocked(&id.value) {
                out.rejected.push((id.kind.clone(), Rejected::Blocked));
                continue;
            }
            match normalise(rule.normalise, &id.value, region) {
                Err(e) => out.rejected.push((id.kind.clone(), e)),
                Ok(value) if self.blocked(&value) => {
                    out.rejected.push((id.kind.clone(), Rejected::Blocked))
                }
                Ok(value) => {
                    if seen.insert((id.kind.clone(), value.clone())) {
                        ranked.push((rule.priority, Identifier::new(id.kind.clone(), value)));
                    } else {
                        out.rejected.push((id.kind.clone(), Rejected::Duplicate));
                    }
                }
            }
        }
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, id) in ranked {
            let limit = self.kind(&id.kind).and_then(|k| k.max_per_profile);
            let already = out.accepted.iter().filter(|a| a.kind == id.kind).count();
            match limit {
                Some(l) if already >= l as usize => out.rejected.push((
                    id.kind.clone(),
                    Rejected::OverLimit {
                        kind: id.kind.clone(),
                        limit: l,
                    },
                )),
                _ => out.accepted.push(id),
            }
        }
        out
    }
}

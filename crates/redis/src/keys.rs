//! Key names. Everything of one profile shares the `{<profile id>}` hash tag; an identifier's
//! pointer is tagged by the identifier itself.

use switchboard_codec::Identifier;
use switchboard_identity::ProfileId;

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// `kind:value`, the member form of an identifier in a profile's identifier set.
    pub fn member(id: &Identifier) -> String {
        format!("{}:{}", id.kind, id.value)
    }

    /// The identifier back from its member form (kinds never contain `:`).
    pub fn parse_member(member: &str) -> Option<Identifier> {
        member.split_once(':').map(|(k, v)| Identifier::new(k, v))
    }

    /// Identifier → profile pointer (a string).
    pub fn identifier(&self, id: &Identifier) -> String {
        format!("{}:id:{{{}}}", self.prefix, Self::member(id))
    }

    /// A profile's graph node, a hash: `parent`, `version`, `merges` (absent while 0), and
    /// for a root its identifiers, one field `i:<kind>:<value>` each. One small hash (a
    /// listpack in Redis) instead of a hash and a set. (Its creation time is in its id.)
    pub fn node(&self, p: &ProfileId) -> String {
        format!("{}:p:{{{p}}}", self.prefix)
    }

    /// The prefix of an identifier's field in its root's node.
    pub const IDENTIFIER_FIELD: &'static str = "i:";

    /// Profiles merged into this one (a list).
    /// The count of erasures (`switchboard forget`), read by stitchers that cache.
    pub fn erasures(&self) -> String {
        format!("{}:erasures", self.prefix)
    }

    pub fn merged(&self, p: &ProfileId) -> String {
        format!("{}:p:{{{p}}}:merged", self.prefix)
    }
}

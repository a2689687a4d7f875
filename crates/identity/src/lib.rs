//! Identity rules: which identifier kinds Switchboard links, how each is normalised (trim,
//! lower-cased email, E.164 phone), their priority, how many of each a profile may hold, and
//! which junk values never link anything.
//!
//! [`IdentityRules::prepare`] turns an event's raw identifiers into the normalised ones the
//! identity graph may use, highest priority first, and says why each other one was dropped.
//! Pure: the identity graph (Redis and in-memory stores) builds on it.

mod normalise;
mod rules;

pub use normalise::{Normalisation, Rejected};
pub use rules::{IdentityRules, KindRule, Prepared, RulesError};

//! Identity: the rules (identifier kinds, normalisation, priority, limits, blocked values)
//! and the identity graph, a union-find over identifiers and profiles.
//!
//! [`IdentityRules::prepare`] turns an event's raw identifiers into the normalised ones the
//! graph may use, strongest first. [`stitch`] resolves them into one profile through an
//! [`IdentityStore`], merging and refusing merges as the rules say. The algorithm is written
//! once over the store's single-profile operations; Redis (in `switchboard-redis`) and
//! [`MemoryIdentityStore`] implement them.

mod memory;
mod normalise;
mod profile_id;
mod rules;
mod stitch;
pub mod store;

pub use memory::MemoryIdentityStore;
pub use normalise::{Normalisation, Rejected};
pub use profile_id::ProfileId;
pub use rules::{IdentityRules, KindRule, Prepared, RulesError};
pub use stitch::{
    Found, Merge, ProfileView, StitchError, Stitched, erase, find_root, forget, look_up, show,
    stitch, stitch_found,
};
pub use store::{IdentityStore, Limits, Refusal, StoreError};

//! The journey language and its pure interpreter.
//!
//! Journey designers write journeys as YAML ([`model`]); [`compile`] validates them into a
//! [`Journey`] or lists every error with file, line and state. [`apply`] is a pure function,
//! `(journeys, policies, customer, input, now) -> (customer', effects)`, with no I/O; the
//! engine's planner (`switchboard-engine`) runs it, in the engine service and in
//! `switchboard simulate` alike.

mod compact;
pub mod compile;
pub mod condition;
mod context;
pub mod graph;
mod ids;
mod interpret;
pub mod journey;
pub mod merge;
pub mod model;
pub mod policy;
mod run;
pub mod set;
pub mod state;
mod steps;
pub mod time;

pub use compile::{JourneyError, compile, load_dir};
pub use interpret::{apply, apply_with};
pub use journey::{Journey, Optimize, Reentry, State, StateId, StepKind, Winners};
pub use merge::fold;
pub use policy::Policies;
pub use set::JourneySet;
pub use state::{
    Attribution, Customer, DECISION_REASONS, Decision, Effect, Input, Instance, MAX_DECISIONS,
    Profile, Transition,
};

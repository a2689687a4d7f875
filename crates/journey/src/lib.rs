//! The journey language and its pure interpreter.
//!
//! Journey designers write journeys as YAML ([`model`]); [`compile`] validates them into a
//! [`Journey`] or lists every error with file, line and state. The interpreter is a pure
//! function: `(customer, input, now) -> (customer', effects)` with no I/O, so the engine,
//! `switchboard simulate` and the tests run the same code.

pub mod compile;
pub mod condition;
pub mod journey;
pub mod model;
pub mod time;

pub use compile::{JourneyError, compile, load_dir};
pub use journey::{Journey, Reentry, State, StateId, StepKind};

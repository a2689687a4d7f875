//! Shared fixtures: the example journeys and policies, and an event builder.
#![allow(unused_imports)]

pub use switchboard_test_support::examples::*;

//! The engine's pure core. [`Planner::plan`] takes a batch of a partition's inputs (records
//! of `customer.events`, or due timers) and the records of the profiles they touch, and says
//! what changes: writes, output, timers set and done, merges, erasures, forwards. No I/O: the
//! engine service loads, plans, persists and publishes around it, through the storage
//! [`ports`]; [`simulate`] runs the same planner on a simulated clock; [`explain`] says what
//! a customer's record holds and why.

pub mod explain;
pub mod forget;
mod ids;
mod memory;
pub mod optimize;
pub mod plan;
pub mod ports;
mod recent;
mod record;
pub mod simulate;

pub use memory::MemoryStateStore;
pub use plan::{Forget, Happened, Inputs, Plan, Planner, Write};
pub use ports::{
    DueTimer, Epochs, Loaded, Outboxes, Records, Saved, Splits, StateError, StateStore, Timers,
    parse_timer_member, timer_member, timer_member_with_due,
};
pub use recent::{MAX_RECENT, RecentEvents};
pub use record::{Absorbed, MAX_ABSORBED, Outgoing, Record};

//! Redis adapters for Switchboard's storage ports.
//!
//! Every write is one command or one Lua script whose keys share a hash slot (`{profile}` or
//! `{identifier}` hash tags), so the same code is correct on a single Redis, with many
//! concurrent writers, and on Redis Cluster.

mod connection;
mod identity;
mod keys;
mod state;

pub use connection::{Redis, connect};
pub use identity::RedisIdentityStore;
pub use keys::Keys;
pub use state::{RedisStateStore, stored};

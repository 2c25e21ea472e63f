//! Events: appending to the outbox (here) and, later, the dispatcher that delivers them.
//!
//! The outbox is written only through [`append`], inside the caller's transaction.

pub mod asyncapi;
pub mod brokers;
pub mod dispatcher;
pub mod plugins;
pub mod plugins_file;
pub mod safety;
pub mod signing;
pub mod sinks;
pub mod subscriptions;

pub use crate::domain::event::{EventContext, EventName, NewEvent};
pub use crate::store::outbox::{StoredEvent, append, find};

//! Pure domain logic: no I/O, no clock, no database. Values here are valid once built.

pub mod accommodation;
pub mod assessment;
pub mod attempt;
pub mod draw;
pub mod enums;
pub mod event;
pub mod event_data;
pub mod files;
pub mod ids;
pub mod lifecycle;
pub mod marks;
pub mod question;
pub mod regrade;
pub mod scoring;
pub mod statistics;

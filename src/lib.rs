//! Shiksha assessment service.
//!
//! A multi-tenant HTTP service for building tests, taking them and scoring them, with every
//! change that matters written to a transactional outbox for reliable delivery.
//!
//! Layout (see `shared/ARCHITECTURE.md`): `http` extracts and validates, `domain` decides
//! (pure, no I/O), `store` persists on SQLite or PostgreSQL, `events` owns the outbox.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod secret;
pub mod service;
pub mod store;
pub mod telemetry;

pub use app::{AppState, build_app};
pub use config::Config;
pub use error::AppError;
pub use secret::Secret;

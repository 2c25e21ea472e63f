//! Integration tests: the real application, driven over HTTP, on the database named by
//! `TEST_DATABASE_URL` (unset: a fresh SQLite file per test; `postgres://...`: a fresh schema
//! per test). CI runs the whole suite once on each.

mod harness;
mod probe;

mod attempts;
mod auth_headers;
mod auth_jwt;
mod delivery;
mod envelope;
mod health;
mod metrics;
mod migrations;
mod openapi;
mod outbox;
mod process;
mod questions;
mod rules_sections;
mod tests_api;

//! Integration tests: the real application, driven over HTTP, on the database named by
//! `TEST_DATABASE_URL` (unset: a fresh SQLite file per test; `postgres://...`: a fresh schema
//! per test). CI runs the whole suite once on each.
//!
//! Tests named `postgres_...` are PostgreSQL-only: nextest's default profile (SQLite) reports
//! them as skipped, its `postgres` profile runs them (`.config/nextest.toml`), and the harness
//! fails one run without PostgreSQL.
//!
//! `harness` holds the shared fixtures (`published_test`, `start`, `answer`, `submit`,
//! `events`, ...): each states the HTTP status it expects.

mod harness;
mod probe;

mod accommodations;
mod answer_save;
mod asyncapi;
mod attempts;
mod auth_headers;
mod auth_jwt;
mod brokers;
mod console;
mod custom_plugins;
mod delivery;
mod envelope;
mod exam_day;
mod files;
mod files_s3;
mod flaky_network;
mod health;
mod learner_views;
mod limits;
mod metrics;
mod migrations;
mod openapi;
mod outbox;
mod process;
mod questions;
mod regrade;
mod rules_sections;
mod schemas;
mod statistics;
mod tenant_config;
mod tests_api;
mod versions;

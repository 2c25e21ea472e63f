//! A transaction on either database, and what its commit tells the rest of the process.

use std::sync::Arc;

use sqlx::{Postgres, Sqlite, Transaction};
use uuid::Uuid;

use super::watch::TestWatch;
use super::{Backend, CommitSignal};

/// A transaction on either database. Dropped without `commit`, it rolls back.
///
/// It remembers whether it appended events ([`outbox::append`](super::outbox::append)): only
/// such a commit fires the store's [`CommitSignal`]. It also remembers the tests it changed:
/// their commit makes this instance's [`TestWatch`] forget them at once (other instances hear
/// of it from PostgreSQL's notification).
#[derive(Debug)]
pub struct Tx {
    conn: TxConn,
    appended: bool,
    signal: Arc<CommitSignal>,
    watch: Arc<TestWatch>,
    changed_tests: Vec<Uuid>,
    /// Tenants whose question bank this transaction changed.
    changed_banks: Vec<Uuid>,
}

/// The driver's transaction inside a [`Tx`] (what [`on_tx!`](crate::on_tx) matches on).
#[derive(Debug)]
pub enum TxConn {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection, once per driver.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx.conn_mut() {
            $crate::store::TxConn::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::store::TxConn::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

impl Tx {
    pub(super) fn new(conn: TxConn, signal: Arc<CommitSignal>, watch: Arc<TestWatch>) -> Tx {
        Tx {
            conn,
            appended: false,
            signal,
            watch,
            changed_tests: Vec::new(),
            changed_banks: Vec::new(),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.conn {
            TxConn::Sqlite(_) => Backend::Sqlite,
            TxConn::Postgres(_) => Backend::Postgres,
        }
    }

    /// The driver's transaction (for [`on_tx!`](crate::on_tx)).
    pub fn conn_mut(&mut self) -> &mut TxConn {
        &mut self.conn
    }

    /// Notes that this transaction appended events: its commit fires the store's signal.
    pub(crate) fn mark_appended(&mut self) {
        self.appended = true;
    }

    /// Notes that this transaction changed (or deleted) the test `id`.
    pub(crate) fn mark_test_changed(&mut self, id: Uuid) {
        self.changed_tests.push(id);
    }

    /// Notes that this transaction changed a question of `tenant`'s bank.
    pub(crate) fn mark_bank_changed(&mut self, tenant: Uuid) {
        self.changed_banks.push(tenant);
    }

    /// Whether this transaction appended events.
    pub fn appended(&self) -> bool {
        self.appended
    }

    /// Commits; if the transaction appended events, then fires the store's [`CommitSignal`]
    /// (its dispatcher wakes, and on PostgreSQL other instances are notified). Commits without
    /// events (the dispatcher's own bookkeeping among them) wake nobody.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let Tx {
            conn,
            appended,
            signal,
            watch,
            changed_tests,
            changed_banks,
        } = self;
        match conn {
            TxConn::Sqlite(t) => t.commit().await?,
            TxConn::Postgres(t) => t.commit().await?,
        }
        for id in changed_tests {
            watch.changed(id);
        }
        for tenant in changed_banks {
            watch.bank_changed(tenant);
        }
        if appended {
            // After the commit, so the events are visible to whoever wakes; the PostgreSQL
            // notification goes outside the transaction too (a NOTIFY inside it would hold
            // PostgreSQL's global notify lock through the commit's WAL flush and serialise
            // every writer's commit).
            signal.events_committed();
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.conn {
            TxConn::Sqlite(t) => t.rollback().await,
            TxConn::Postgres(t) => t.rollback().await,
        }
    }
}

/// True when the error is a unique-constraint violation (both drivers).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

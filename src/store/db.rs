//! Where a read runs: on a read connection of the store, or inside a transaction (a
//! transaction must never wait for a second pooled connection: under load that deadlocks the
//! pool). A query is written once, against [`Db`], and runs on either.

use uuid::Uuid;

use super::{Backend, Id, Store, Tx};
use crate::domain::ids::Scope;

/// A read connection of the store, or an open transaction.
#[derive(Debug)]
pub enum Db<'a> {
    Reader(&'a Store),
    Tx(&'a mut Tx),
}

impl Db<'_> {
    /// The same connection for one more query (a [`Db`] is used up by a query).
    pub fn reborrow(&mut self) -> Db<'_> {
        match self {
            Db::Reader(s) => Db::Reader(s),
            Db::Tx(t) => Db::Tx(t),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Reader(s) => s.backend(),
            Db::Tx(t) => t.backend(),
        }
    }
}

impl<'a> From<&'a Store> for Db<'a> {
    fn from(store: &'a Store) -> Self {
        Db::Reader(store)
    }
}

impl<'a> From<&'a mut Tx> for Db<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Db::Tx(tx)
    }
}

/// The tenant and organisation of a scope, as stored.
pub fn sid(scope: &Scope) -> (Id, Id) {
    (Id(scope.tenant.as_uuid()), Id(scope.organisation.as_uuid()))
}

/// Deletes the rows of `table` whose `column` is `id`, within the scope (both names quoted);
/// returns how many went.
pub async fn delete_scoped(
    tx: &mut Tx,
    table: &str,
    column: &str,
    scope: &Scope,
    id: Uuid,
) -> Result<u64, sqlx::Error> {
    let (t, o) = sid(scope);
    let sql = format!(
        r#"DELETE FROM {table} WHERE {column} = $1 AND "tenantId" IS NOT DISTINCT FROM $2 AND "organisationId" IS NOT DISTINCT FROM $3"#
    );
    crate::on_tx!(tx, c => {
        sqlx::query(&sql).bind(Id(id)).bind(t).bind(o).execute(c).await.map(|r| r.rows_affected())
    })
}

/// Runs `$body` with `$conn` bound to the [`Db`]'s connection (a pool or the transaction's
/// connection), once per driver and kind, so the body is type-checked against all four.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Reader(store) => $crate::on_reader!(store, $conn => $body),
            $crate::store::Db::Tx(tx) => $crate::on_tx!(tx, $conn => $body),
        }
    };
}

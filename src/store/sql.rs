//! A small portable query builder: SQL text with `$n` placeholders plus the values to bind,
//! so a filter built once runs on both drivers (see [`bind_args!`](crate::bind_args)).

use uuid::Uuid;

use super::db::sid;
use super::{Backend, Id, Store, Ts};
use crate::domain::ids::Scope;

/// A value to bind.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    /// Text or NULL.
    OptText(Option<String>),
    Int(i64),
    Bool(bool),
    Id(Id),
    Ts(Ts),
    /// A time or NULL.
    OptTs(Option<Ts>),
}

/// Why statements that find rows by id write their scope as `"tenantId" IS NOT DISTINCT FROM
/// $n` (the same test on these NOT NULL columns) rather than `"tenantId" = $n`.
///
/// The scoped tables have indexes that start with `("tenantId", "organisationId", ...)`, for
/// listings. While a table has no statistics (a new database, before autovacuum's first
/// ANALYZE), PostgreSQL's planner estimates each equality at a fixed selectivity, so two or
/// three matched columns of such an index look more selective than the primary key or a
/// parent-id index: a lookup of one attempt then walked every answer of the tenant (5.5
/// million index entries for 13,000 learner requests in one measured run). `IS NOT DISTINCT
/// FROM` is not an index operator, so the scope stays a filter on the rows the id finds,
/// whatever the statistics say.
pub const SCOPE_FILTER: &str = "IS NOT DISTINCT FROM";

/// SQL text and its arguments, built in order.
#[derive(Debug, Clone)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
    pub backend: Backend,
}

impl Sql {
    pub fn new(backend: Backend, text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            args: Vec::new(),
            backend,
        }
    }

    /// Appends raw SQL (never user input).
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.text.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let n = self.args.len();
        self.text.push('$');
        self.text.push_str(&n.to_string());
        self
    }

    /// Appends ` WHERE "tenantId" = $n AND "organisationId" = $m`: the rows of `scope` only,
    /// found through an index that starts with the scope (listings).
    pub fn where_scope(&mut self, scope: &Scope) -> &mut Self {
        let (t, o) = sid(scope);
        self.push(r#" WHERE "tenantId" = "#)
            .bind(Arg::Id(t))
            .push(r#" AND "organisationId" = "#)
            .bind(Arg::Id(o))
    }

    /// As [`where_scope`](Self::where_scope), for statements that find their rows by ids
    /// (their own or a parent's), which the caller appends: the scope is then a filter the
    /// planner cannot turn into an index condition (see [`SCOPE_FILTER`]).
    pub fn where_scope_filter(&mut self, scope: &Scope) -> &mut Self {
        let (t, o) = sid(scope);
        self.push(&format!(r#" WHERE "tenantId" {SCOPE_FILTER} "#))
            .bind(Arg::Id(t))
            .push(&format!(r#" AND "organisationId" {SCOPE_FILTER} "#))
            .bind(Arg::Id(o))
    }

    /// Appends ` AND column IN (...)` bound to `ids` (at least one).
    pub fn and_in(&mut self, column: &str, ids: &[Uuid]) -> &mut Self {
        self.push(&format!(" AND {column} IN "))
            .bind_list(ids.iter().map(|i| Arg::Id(Id(*i))))
    }

    /// Appends `ORDER BY column` with NULLs last on both databases (their defaults disagree),
    /// then `tiebreak` in the same direction.
    pub fn order_nulls_last(
        &mut self,
        column: &str,
        tiebreak: &str,
        descending: bool,
    ) -> &mut Self {
        let dir = if descending { "DESC" } else { "ASC" };
        self.push(&format!(
            " ORDER BY ({column} IS NULL), {column} {dir}, {tiebreak} {dir}"
        ))
    }

    /// Appends ` LIMIT $n OFFSET $m`.
    pub fn page(&mut self, limit: i64, offset: i64) -> &mut Self {
        self.push(" LIMIT ")
            .bind(Arg::Int(limit))
            .push(" OFFSET ")
            .bind(Arg::Int(offset))
    }

    /// Appends `(p1, p2, ...)` bound to `args` (at least one).
    pub fn bind_list(&mut self, args: impl IntoIterator<Item = Arg>) -> &mut Self {
        self.text.push('(');
        for (i, a) in args.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(a);
        }
        self.text.push(')');
        self
    }

    /// Runs this `SELECT COUNT(...)` on a read connection or in a transaction.
    pub async fn fetch_count<'a>(&self, db: impl Into<super::Db<'a>>) -> Result<i64, sqlx::Error> {
        crate::on_db!(db.into(), c => {
            crate::bind_args!(sqlx::query_scalar::<_, i64>(&self.text), &self.args).fetch_one(c).await
        })
    }

    /// Runs this query on a read connection or in a transaction and decodes every row as `T`.
    pub async fn fetch_rows<'a, T>(
        &self,
        db: impl Into<super::Db<'a>>,
    ) -> Result<Vec<T>, sqlx::Error>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        crate::on_db!(db.into(), c => {
            crate::bind_args!(sqlx::query_as::<_, T>(&self.text), &self.args).fetch_all(c).await
        })
    }

    /// The set-returning call that yields the text elements of a JSON array column as `value`.
    pub fn json_array_elements(&self, column: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("json_each({column})"),
            Backend::Postgres => format!("jsonb_array_elements_text({column}) AS value"),
        }
    }
}

/// A table that is listed a page at a time under a filter (see [`Listing::page`]).
#[derive(Debug, Clone, Copy)]
pub struct Listing {
    /// The quoted table name.
    pub table: &'static str,
    /// The columns a row is read with.
    pub columns: &'static str,
    /// The quoted unique key: it breaks ties in the order, so pages neither overlap nor skip.
    pub key: &'static str,
}

impl Listing {
    /// One page of the rows that `filter` (which appends the `WHERE` clause) keeps, sorted by
    /// `order_by` with NULLs last, and how many rows it keeps in all.
    pub async fn page<T>(
        &self,
        store: &Store,
        filter: impl Fn(&mut Sql),
        order_by: &str,
        descending: bool,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<T>, i64), sqlx::Error>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let mut count = Sql::new(
            store.backend(),
            format!("SELECT COUNT(*) FROM {}", self.table),
        );
        filter(&mut count);
        let mut page = Sql::new(
            store.backend(),
            format!("SELECT {} FROM {}", self.columns, self.table),
        );
        filter(&mut page);
        page.order_nulls_last(order_by, self.key, descending)
            .page(limit, offset);
        let total = count.fetch_count(store).await?;
        Ok((page.fetch_rows(store).await?, total))
    }
}

/// The quoted column of `columns` that an API parameter calls `name` (its unquoted name).
pub fn named_column(columns: &[&'static str], name: &str) -> Option<&'static str> {
    columns
        .iter()
        .copied()
        .find(|c| c.trim_matches('"') == name)
}

/// `$1, $2, ..., $n`: the placeholders of an `INSERT` of `n` columns.
pub fn placeholders(n: usize) -> String {
    numbered(1, n)
}

/// `($first, ..., $first+n-1)`: one row of a multi-row `VALUES`.
pub fn placeholders_from(first: usize, n: usize) -> String {
    format!("({})", numbered(first, n))
}

fn numbered(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `SET` list of an `UPDATE` that rewrites a row from the column list of its `INSERT`
/// (comma-separated, the key first): every column but the key, each set to the placeholder
/// of its place in the list (`"b" = $2, "c" = $3, ...`), so one bind order serves both.
pub fn assignments(columns: &str) -> String {
    columns
        .split(',')
        .map(str::trim)
        .enumerate()
        .skip(1)
        .map(|(i, col)| format!("{col} = ${}", i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` FOR UPDATE` on PostgreSQL; nothing on SQLite, where the one writer serialises anyway.
pub fn lock_clause(backend: Backend) -> &'static str {
    if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub fn like_contains(s: &str) -> String {
    let mut out = String::from("%");
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Binds every [`Arg`] of `$args` to the sqlx query `$q`, once per driver arm.
#[macro_export]
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                $crate::store::sql::Arg::Text(v) => q.bind(v.clone()),
                $crate::store::sql::Arg::OptText(v) => q.bind(v.clone()),
                $crate::store::sql::Arg::Int(v) => q.bind(*v),
                $crate::store::sql::Arg::Bool(v) => q.bind(*v),
                $crate::store::sql::Arg::Id(v) => q.bind(*v),
                $crate::store::sql::Arg::Ts(v) => q.bind(*v),
                $crate::store::sql::Arg::OptTs(v) => q.bind(*v),
            };
        }
        q
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_nulls_last_and_pages() {
        let mut s = Sql::new(Backend::Sqlite, "SELECT 1");
        s.order_nulls_last(r#""title""#, r#""testId""#, true)
            .page(10, 20);
        assert_eq!(
            s.text,
            r#"SELECT 1 ORDER BY ("title" IS NULL), "title" DESC, "testId" DESC LIMIT $1 OFFSET $2"#
        );
        assert_eq!(s.args.len(), 2);
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut s = Sql::new(Backend::Sqlite, "SELECT 1 WHERE a = ");
        s.bind(Arg::Int(1)).push(" AND b IN ");
        s.bind_list([Arg::Text("x".into()), Arg::Text("y".into())]);
        assert_eq!(s.text, "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(s.args.len(), 3);
    }

    #[test]
    fn insert_placeholders_and_update_assignments_agree() {
        assert_eq!(placeholders(3), "$1, $2, $3");
        assert_eq!(placeholders_from(9, 3), "($9, $10, $11)");
        assert_eq!(
            assignments("\"a\", \"b\",\n    \"c\""),
            "\"b\" = $2, \"c\" = $3"
        );
    }

    #[test]
    fn columns_are_found_by_their_unquoted_name() {
        let columns = [r#""createdAt""#, r#""type""#];
        assert_eq!(named_column(&columns, "type"), Some(r#""type""#));
        assert_eq!(named_column(&columns, r#""type""#), None);
        assert_eq!(named_column(&columns, "title"), None);
    }

    #[test]
    fn scope_and_id_lists_are_bound_in_order() {
        use crate::domain::ids::{OrganisationId, TenantId};
        let scope = Scope {
            tenant: TenantId::from_uuid(Uuid::nil()),
            organisation: OrganisationId::from_uuid(Uuid::nil()),
        };
        let mut s = Sql::new(Backend::Sqlite, r#"SELECT 1 FROM "t""#);
        s.where_scope(&scope)
            .and_in(r#""k""#, &[Uuid::nil(), Uuid::nil()]);
        assert_eq!(
            s.text,
            r#"SELECT 1 FROM "t" WHERE "tenantId" = $1 AND "organisationId" = $2 AND "k" IN ($3, $4)"#
        );
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(like_contains("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}

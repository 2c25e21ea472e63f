//! Storage on SQLite (embedded default) or PostgreSQL, with one SQL text where the dialects
//! agree (`$1` placeholders, `RETURNING`, `ON CONFLICT`) and the backend-specific parts kept
//! in the function that needs them.
//!
//! Queries run through [`on_tx!`](crate::on_tx) and [`on_reader!`](crate::on_reader), which
//! expand the same body once per driver, so each body is type-checked against both.
//!
//! SQLite runs with one writer connection and a pool of read-only connections: SQLite allows
//! one writer at a time anyway, and queuing writers in the pool (instead of letting them race
//! for the file lock) means no `SQLITE_BUSY` under load.
//!
//! A [`Store`] carries its [`CommitSignal`], shared by its clones: a [`Tx`] knows whether it
//! appended events, and only such a commit fires the signal (waking the dispatcher, and on
//! PostgreSQL the other instances' through a notification sent after the commit).

pub mod accommodations;
pub mod assessments;
pub mod attempts;
mod checkpoint;
pub mod db;
pub mod deliveries;
pub mod outbox;
pub mod questions;
pub mod regrades;
pub mod revisions;
pub mod rules;
pub mod saves;
pub mod sql;
pub mod starts;
pub mod statistics;
pub mod tenant_configs;
mod tx;
pub mod types;
pub mod watch;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use db::Db;
pub use outbox::CommitSignal;
pub use tx::{Tx, TxConn, is_unique_violation};
pub use types::{Id, Ts};

use crate::config::{self, DatabaseUrl};

/// How long start-up waits for PostgreSQL to answer a first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Embedded migrations, one folder per dialect with the same version numbers.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
pub static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Whether to connect without TLS: the URL names no `sslmode` (nor does `PGSSLMODE`) and the
/// server is on this machine (a loopback address, `localhost` or a Unix socket). There TLS
/// protects nothing, and with the default `prefer` it took about a third of the service's CPU
/// under load (every message to the database is its own encrypted write).
fn plain_on_loopback(url: &str, env_sslmode: Option<&str>) -> bool {
    if env_sslmode.is_some_and(|m| !m.is_empty()) {
        return false;
    }
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    if parsed
        .query_pairs()
        .any(|(k, _)| k == "sslmode" || k == "ssl-mode")
    {
        return false;
    }
    // `host` and `hostaddr` parameters replace the URL's host: only a Unix socket path counts
    // as this machine.
    let mut socket = false;
    for (k, v) in parsed.query_pairs() {
        if k == "host" || k == "hostaddr" {
            if !v.starts_with('/') {
                return false;
            }
            socket = true;
        }
    }
    if socket {
        return true;
    }
    match parsed.host() {
        // `postgres:` is not a special scheme: its host comes back as text, IPs included.
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    pub pool_size: u32,
    /// PostgreSQL connections opened in the background right after connecting, so the first
    /// burst of requests does not wait for new connections. Start-up does not wait for them,
    /// and a failure to open them only logs (the pool opens connections on demand as before).
    pub warm_connections: u32,
    pub sqlite_synchronous: config::SqliteSynchronous,
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            pool_size: config::DEFAULT_POOL_SIZE,
            warm_connections: 0,
            sqlite_synchronous: config::SqliteSynchronous::Full,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The connection pools of a store.
#[derive(Debug, Clone)]
pub enum Pools {
    Sqlite {
        /// The single connection that writes.
        writer: SqlitePool,
        /// Read-only connections.
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// The database handle: its pools and its [`CommitSignal`]. Cheap to clone; clones share both
/// (pools are reference-counted), so a dispatcher holding a clone hears the commits of every
/// other clone.
#[derive(Debug, Clone)]
pub struct Store {
    pools: Pools,
    signal: Arc<CommitSignal>,
    /// The queue of guarded answer saves that share commits, started at first use.
    saves: Arc<std::sync::OnceLock<saves::Queue>>,
    /// The tests as they are now, as far as this instance knows.
    watch: Arc<watch::TestWatch>,
}

/// Runs `$body` with `$pool` bound to a pool that may serve reads, once per driver.
#[macro_export]
macro_rules! on_reader {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.pools() {
            $crate::store::Pools::Sqlite { reader: $pool, .. } => $body,
            $crate::store::Pools::Postgres($pool) => $body,
        }
    };
}

/// Pool occupancy, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub name: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

impl Store {
    /// Connects (creating the SQLite file and its folder when missing). Does not migrate.
    pub async fn connect(url: &DatabaseUrl, opts: StoreOptions) -> anyhow::Result<Store> {
        match url {
            DatabaseUrl::Sqlite(u) => {
                let options = SqliteConnectOptions::from_str(u)
                    .with_context(|| format!("parsing DATABASE_URL {u:?}"))?;
                Store::connect_sqlite(options, opts).await
            }
            DatabaseUrl::Postgres(u) => {
                let u = u.expose();
                let mut options = PgConnectOptions::from_str(u).context("parsing DATABASE_URL")?;
                if plain_on_loopback(u, std::env::var("PGSSLMODE").ok().as_deref()) {
                    options = options.ssl_mode(sqlx::postgres::PgSslMode::Disable);
                }
                Store::connect_postgres(options, opts).await
            }
        }
    }

    pub async fn connect_sqlite(
        options: SqliteConnectOptions,
        opts: StoreOptions,
    ) -> anyhow::Result<Store> {
        let file = options.get_filename().to_path_buf();
        let name = file.to_string_lossy();
        if name.is_empty() || name == ":memory:" || name.starts_with("file::memory:") {
            bail!(
                "an in-memory SQLite database is not supported (the service keeps a writer and \
                 reader pools); give a file path such as sqlite://./data/assessment.db"
            );
        }
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database folder {}", dir.display()))?;
            tracing::info!(folder = %dir.display(), "created the database folder");
        }
        let synchronous = match opts.sqlite_synchronous {
            config::SqliteSynchronous::Full => SqliteSynchronous::Full,
            config::SqliteSynchronous::Normal => SqliteSynchronous::Normal,
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .synchronous(synchronous);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await
            .with_context(|| format!("opening SQLite database {}", file.display()))?;
        checkpoint::checkpoint_in_background(&options, &writer)
            .await
            .with_context(|| {
                format!("opening SQLite database {} for checkpoints", file.display())
            })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.pool_size)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(options.read_only(true))
            .await
            .with_context(|| format!("opening SQLite database {} for reading", file.display()))?;
        Ok(Store::new(Pools::Sqlite { writer, reader }))
    }

    pub async fn connect_postgres(
        options: PgConnectOptions,
        opts: StoreOptions,
    ) -> anyhow::Result<Store> {
        // One connection first, on its own: a pool retries a refused connection until its
        // acquire timeout and then reports only that it timed out.
        let (host, port) = (options.get_host().to_string(), options.get_port());
        match tokio::time::timeout(
            CONNECT_TIMEOUT,
            <PgConnection as sqlx::Connection>::connect_with(&options),
        )
        .await
        {
            Err(_) => bail!(
                "PostgreSQL at {host}:{port} did not answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
            Ok(Err(e)) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("connecting to PostgreSQL at {host}:{port}"));
            }
            Ok(Ok(c)) => {
                let _ = sqlx::Connection::close(c).await;
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(opts.pool_size)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(options.clone())
            .await
            .context("connecting to PostgreSQL")?;
        let warm = opts.warm_connections.min(opts.pool_size) as usize;
        if warm > 1 {
            let pool = pool.clone();
            tokio::spawn(async move {
                // Held together so each acquire opens a new connection; idle ones then stay in
                // the pool until its idle timeout.
                let opened = futures::future::join_all((0..warm).map(|_| pool.acquire())).await;
                if let Some(Err(e)) = opened.iter().find(|c| c.is_err()) {
                    tracing::debug!(error = %e, "warming the connection pool stopped early");
                }
            });
        }
        let store = Store::new(Pools::Postgres(pool.clone()));
        watch::watch_in_background(store.watch.clone(), pool, options);
        Ok(store)
    }

    fn new(pools: Pools) -> Store {
        let notify_through = match &pools {
            Pools::Sqlite { .. } => None,
            Pools::Postgres(pool) => Some(pool.clone()),
        };
        Store {
            pools,
            signal: Arc::new(CommitSignal::new(notify_through)),
            saves: Arc::default(),
            watch: Arc::default(),
        }
    }

    /// The queue of guarded saves, started by the first save. Its tasks hold a handle
    /// without the queue, so it ends once every clone of this store is gone.
    pub(crate) fn save_queue(&self) -> &saves::Queue {
        self.saves.get_or_init(|| {
            saves::Queue::start(Store {
                pools: self.pools.clone(),
                signal: self.signal.clone(),
                saves: Arc::default(),
                watch: self.watch.clone(),
            })
        })
    }

    /// The connection pools (for [`on_reader!`](crate::on_reader), and code that needs a
    /// driver's pool).
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    /// The PostgreSQL pool, if this store is on PostgreSQL.
    pub fn postgres(&self) -> Option<&PgPool> {
        match &self.pools {
            Pools::Sqlite { .. } => None,
            Pools::Postgres(pool) => Some(pool),
        }
    }

    /// What this store fires after every commit that appended events (and, once
    /// [`outbox::listen`] runs, when other instances commit events).
    pub fn signal(&self) -> &CommitSignal {
        &self.signal
    }

    /// The tests as they are now, as far as this instance knows (see [`watch`]).
    pub fn test_watch(&self) -> &watch::TestWatch {
        &self.watch
    }

    pub fn backend(&self) -> Backend {
        match &self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every pending migration of this backend's folder.
    ///
    /// On SQLite they run with foreign keys off, as SQLite's procedure for rebuilding a table
    /// asks (dropping a parent table would otherwise cascade into its children), on the one
    /// writer connection; the keys are checked afterwards and turned back on.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pools {
            Pools::Sqlite { writer, .. } => {
                let mut conn = writer.acquire().await?;
                sqlx::query("PRAGMA foreign_keys = OFF")
                    .execute(&mut *conn)
                    .await?;
                let migrated = SQLITE_MIGRATOR.run(&mut *conn).await;
                let broken: Vec<(String,)> =
                    sqlx::query_as(r#"SELECT "table" FROM pragma_foreign_key_check"#)
                        .fetch_all(&mut *conn)
                        .await?;
                sqlx::query("PRAGMA foreign_keys = ON")
                    .execute(&mut *conn)
                    .await?;
                migrated.context("running database migrations")?;
                if let Some((table,)) = broken.first() {
                    bail!("after migrating, rows of {table:?} refer to missing rows");
                }
                Ok(())
            }
            Pools::Postgres(pool) => POSTGRES_MIGRATOR
                .run(pool)
                .await
                .context("running database migrations"),
        }
    }

    fn tx(&self, conn: TxConn) -> Tx {
        Tx::new(conn, self.signal.clone(), self.watch.clone())
    }

    /// Starts a read-write transaction.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(self.tx(match &self.pools {
            // IMMEDIATE: the write lock is taken at the start, waiting (busy timeout) while
            // another process holds it. A deferred transaction that reads first and then
            // writes would fail at once with SQLITE_BUSY if another process (a second
            // service, the `replay` command) committed in between.
            Pools::Sqlite { writer, .. } => {
                TxConn::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?)
            }
            Pools::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
        }))
    }

    /// Starts a transaction whose commit need not wait for the disk (PostgreSQL's
    /// `synchronous_commit = off`; SQLite is unchanged). Only for bookkeeping that a crash may
    /// roll back without losing anything acknowledged: the dispatcher's fan-outs, leases and
    /// try records, whose loss means at worst a delivery sent again (at least once).
    ///
    /// On PostgreSQL its statements are also planned with `enable_seqscan = off`. Each reads
    /// or writes a few rows of the queue by key, and each is prepared once per connection: a
    /// generic plan made while the queue tables were small (a new database) chose a
    /// sequential scan and kept it as they grew (a try record read every delivery).
    pub async fn begin_async_commit(&self) -> Result<Tx, sqlx::Error> {
        match &self.pools {
            // One round trip for all (the dispatcher begins several of these per pass).
            Pools::Postgres(pool) => Ok(self.tx(TxConn::Postgres(
                pool.begin_with(
                    "BEGIN; SET LOCAL synchronous_commit TO off; SET LOCAL enable_seqscan TO off",
                )
                .await?,
            ))),
            Pools::Sqlite { .. } => self.begin().await,
        }
    }

    /// Starts a transaction that only reads. On SQLite it runs on a read connection, so it
    /// never waits for (or blocks) the writer.
    pub async fn begin_read(&self) -> Result<Tx, sqlx::Error> {
        Ok(self.tx(match &self.pools {
            Pools::Sqlite { reader, .. } => TxConn::Sqlite(reader.begin().await?),
            Pools::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
        }))
    }

    /// A round trip on a read connection: the service can answer (readiness). On SQLite this
    /// does not wait for the writer, so a long write does not make the instance unready.
    pub async fn ping_reader(&self) -> Result<(), sqlx::Error> {
        crate::on_reader!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// A round trip on every pool, the writer included (overall health).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match &self.pools {
            Pools::Sqlite { writer, reader } => {
                sqlx::query("SELECT 1").execute(reader).await?;
                // The writer is the connection every write waits for: check it too.
                sqlx::query("SELECT 1").execute(writer).await?;
            }
            Pools::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    pub fn pool_stats(&self) -> Vec<PoolStats> {
        fn stats<DB: sqlx::Database>(name: &'static str, p: &sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                name,
                size: p.size(),
                idle: p.num_idle() as u32,
                max: p.options().get_max_connections(),
            }
        }
        match &self.pools {
            Pools::Sqlite { writer, reader } => {
                vec![stats("writer", writer), stats("reader", reader)]
            }
            Pools::Postgres(pool) => vec![stats("primary", pool)],
        }
    }

    /// Closes every connection (graceful shutdown), once a notification still being sent to
    /// other instances has gone.
    pub async fn close(&self) {
        self.signal.close().await;
        match &self.pools {
            Pools::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod loopback_tests {
    use super::plain_on_loopback;

    #[test]
    fn tls_is_skipped_only_for_a_local_server_without_an_explicit_mode() {
        assert!(plain_on_loopback("postgres://u@127.0.0.1:5432/db", None));
        assert!(plain_on_loopback("postgres://u@localhost/db", None));
        assert!(plain_on_loopback("postgres://u@[::1]:5432/db", None));
        assert!(plain_on_loopback(
            "postgres:///db?host=/var/run/postgresql",
            None
        ));
        assert!(!plain_on_loopback("postgres://u@db.example.com/db", None));
        assert!(!plain_on_loopback("postgres://u@10.0.0.5/db", None));
        assert!(!plain_on_loopback(
            "postgres://u@127.0.0.1/db?sslmode=require",
            None
        ));
        assert!(!plain_on_loopback(
            "postgres://u@127.0.0.1/db",
            Some("require")
        ));
        assert!(plain_on_loopback("postgres://u@127.0.0.1/db", Some("")));
        assert!(!plain_on_loopback(
            "postgres://u@localhost/db?host=db.example.com",
            None
        ));
        assert!(!plain_on_loopback(
            "postgres://u@localhost/db?hostaddr=10.1.2.3",
            None
        ));
    }
}

//! The command line: `serve` (default), `migrate`, `openapi`, `asyncapi`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{AppState, Components, build_app, open_store, store_options};
use crate::config::{Config, DatabaseUrl};
use crate::events::{EventContext, EventName, NewEvent};
use crate::http::auth::AuthMode;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "assessment-service",
    version,
    about = "Shiksha assessment service"
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) and exit.
    Openapi {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print the AsyncAPI document of the events (JSON) and exit.
    Asyncapi {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print the operator's delivery log (the environment's and the plugins file's webhooks
    /// and brokers, the internal plugins) as JSON lines, newest first.
    Deliveries {
        #[command(flatten)]
        select: Selection,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// With each delivery's tries.
        #[arg(long)]
        tries: bool,
    },
    /// Put the operator's matching deliveries back in the queue (a dead letter after its
    /// broker or receiver is fixed), due now with a fresh retry budget; a running service
    /// sends them.
    Replay {
        #[command(flatten)]
        select: Selection,
        /// Only this delivery.
        #[arg(long)]
        delivery: Option<uuid::Uuid>,
    },
}

/// Which deliveries an operator command covers.
#[derive(Debug, clap::Args)]
struct Selection {
    /// A subscription by name (e.g. `message-queue`, `event-stream`, a plugin's name) or id.
    #[arg(long)]
    subscription: Option<String>,
    /// `pending`, `delivering`, `delivered`, `dead` or `cancelled`.
    #[arg(long)]
    status: Option<String>,
    /// Only this event's deliveries.
    #[arg(long)]
    event: Option<uuid::Uuid>,
    /// Events created at or after (RFC 3339).
    #[arg(long)]
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// Events created at or before (RFC 3339).
    #[arg(long)]
    to: Option<chrono::DateTime<chrono::Utc>>,
}

/// Parses the command line and runs the chosen command.
pub fn main() -> ExitCode {
    let started = Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation
            ) =>
        {
            eprintln!(
                "assessment-service: invalid configuration: {}",
                crate::config::invalid::setting(&e, &<Cli as clap::CommandFactory>::command())
            );
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    // Logging first: the components ask it whether events are logged at debug level. A bad
    // `LOG_LEVEL` falls back to `info` there and is reported just below.
    crate::telemetry::init(&cli.config);
    let components = match Components::from_config(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("assessment-service: {e}");
            return ExitCode::from(2);
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("assessment-service: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(cli.config, components, started).await,
            Command::Migrate => migrate(&cli.config, &components.database).await,
            Command::Openapi { output } => write_out(
                crate::http::openapi::document_json(&components.prefix),
                output,
            ),
            Command::Asyncapi { output } => {
                write_out(crate::events::asyncapi::document_json(), output)
            }
            Command::Deliveries {
                select,
                limit,
                tries,
            } => {
                let store = operator_store(&cli.config, &components.database).await?;
                let filter = select.filter(&store).await?;
                let rows =
                    crate::service::webhooks::operator_deliveries(&store, &filter, limit, tries)
                        .await?;
                for row in rows {
                    println!("{row}");
                }
                store.close().await;
                Ok(())
            }
            Command::Replay { select, delivery } => {
                let store = operator_store(&cli.config, &components.database).await?;
                let filter = select.filter(&store).await?;
                let n = crate::service::webhooks::operator_replay(
                    &store,
                    &crate::clock::Clock::system(),
                    &filter,
                    delivery,
                )
                .await?;
                println!("{}", serde_json::json!({ "replayed": n }));
                store.close().await;
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line on stderr, whatever the log level.
            eprintln!("assessment-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config, url: &DatabaseUrl) -> anyhow::Result<()> {
    let options = crate::store::StoreOptions {
        warm_connections: 0,
        ..store_options(config)
    };
    let store = Store::connect(url, options)
        .await
        .with_context(|| format!("connecting to {}", url.redacted()))?;
    store.migrate().await?;
    tracing::info!(database = %url.redacted(), "migrations applied");
    store.close().await;
    Ok(())
}

/// The store for an operator command: connected and migrated, no pool warm-up.
async fn operator_store(config: &Config, url: &DatabaseUrl) -> anyhow::Result<Store> {
    let options = crate::store::StoreOptions {
        warm_connections: 0,
        ..store_options(config)
    };
    let store = Store::connect(url, options)
        .await
        .with_context(|| format!("connecting to {}", url.redacted()))?;
    store.migrate().await?;
    Ok(store)
}

impl Selection {
    async fn filter(
        &self,
        store: &Store,
    ) -> anyhow::Result<crate::store::deliveries::DeliveryFilter> {
        if let Some(s) = &self.status {
            anyhow::ensure!(
                matches!(
                    s.as_str(),
                    "pending" | "delivering" | "delivered" | "dead" | "cancelled"
                ),
                "--status must be pending, delivering, delivered, dead or cancelled"
            );
        }
        let subscription_id = match &self.subscription {
            None => None,
            Some(s) => {
                let subs = crate::store::deliveries::all_subscriptions(store).await?;
                let found = subs.iter().find(|x| {
                    x.tenant_id.is_none() && (x.name == *s || x.subscription_id.0.to_string() == *s)
                });
                Some(
                    found
                        .with_context(|| format!("no configured subscription named {s:?}"))?
                        .subscription_id
                        .0,
                )
            }
        };
        Ok(crate::store::deliveries::DeliveryFilter {
            event_id: self.event,
            event_name: None,
            subscription_id,
            status: self.status.clone(),
            created_from: self.from.map(crate::store::Ts::new),
            created_to: self.to.map(crate::store::Ts::new),
        })
    }
}

/// A generated document, to `output` or standard output.
fn write_out(text: String, output: Option<PathBuf>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        None => print!("{text}"),
    }
    Ok(())
}

async fn serve(config: Config, components: Components, started: Instant) -> anyhow::Result<()> {
    let addr = SocketAddr::new(config.host, config.port);
    let database = components.database.redacted();
    let shutdown_timeout = config.shutdown_timeout();
    let allow_private = config.webhook_allow_private_networks;
    let retention_days = config.event_retention_days;
    let store = open_store(&config, &components.database).await?;
    components.sync_subscriptions(&store).await?;
    let state = AppState::assemble(config, components, store);
    let plugins = state.plugins.clone();
    let brokers = state.brokers.clone();
    if exposed_in_header_mode(state.auth.mode(), addr) {
        tracing::warn!(
            %addr,
            "serving on a non-loopback address in header mode: anyone who can reach this port \
             can act as any tenant and user; set JWT_SECRET or JWT_PUBLIC_KEY, or keep the \
             service behind an authenticating gateway"
        );
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let addr = listener.local_addr().unwrap_or(addr);
    let store = state.store.clone();
    let clock = state.clock.clone();
    let state_limits = state.limits.clone();
    let stopping = state.stopping.clone();
    let app = build_app(state);
    tracing::info!(
        %addr,
        database = %database,
        startup_ms = started.elapsed().as_millis() as u64,
        "listening"
    );

    // Every background task is tracked: the shutdown awaits them (bounded) before the store
    // closes. `token` stops them.
    let token = stopping;
    let tasks = TaskTracker::new();
    spawn_sweeper(&tasks, store.clone(), clock.clone(), token.clone());
    if retention_days > 0 {
        spawn_retention(
            &tasks,
            store.clone(),
            clock.clone(),
            retention_days,
            token.clone(),
        );
    }
    if !brokers.is_empty() {
        let brokers = brokers.clone();
        tasks.spawn(async move { brokers.connect_all().await });
    }
    let dispatcher = crate::events::dispatcher::Dispatcher::with_targets(
        store.clone(),
        clock.clone(),
        allow_private,
        plugins,
        brokers,
    );
    tasks.spawn(dispatcher.run(token.clone()));
    let instance = uuid::Uuid::new_v4();
    {
        // In the background: start-up does not wait for this commit.
        let (store, clock) = (store.clone(), clock.clone());
        tasks.spawn(async move {
            if let Err(e) =
                system_event(&store, &clock, EventName::SystemStartup, instance, None).await
            {
                tracing::warn!(error = %e, "recording system.startup failed");
            }
        });
    }
    let signal_token = token.clone();
    // Not tracked: it waits for a signal that may never come, and only cancels `token`.
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; finishing in-flight requests");
        signal_token.cancel();
    });
    let graceful_token = token.clone();
    {
        // Keys whose allowance is whole again are forgotten now and then.
        let (limits, token) = (state_limits, token.clone());
        tasks.spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = every.tick() => limits.forget_idle(),
                    _ = token.cancelled() => return,
                }
            }
        });
    }
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { graceful_token.cancelled().await });
    let mut server = tokio::spawn(async move { server.await });

    let served: anyhow::Result<()> = tokio::select! {
        // The server stopped on its own (an accept error): report it after the clean-up.
        joined = &mut server => joined.context("server task").and_then(|r| r.context("serving")),
        _ = token.cancelled() => {
            match tokio::time::timeout(shutdown_timeout, &mut server).await {
                Ok(joined) => joined.context("server task").and_then(|r| r.context("serving")),
                Err(_) => {
                    tracing::warn!(
                        seconds = shutdown_timeout.as_secs(),
                        "in-flight requests did not finish in time; abandoning them"
                    );
                    // Dropping their futures rolls their transactions back.
                    server.abort();
                    Ok(())
                }
            }
        }
    };
    token.cancel();
    // The background tasks stop; the dispatcher finishes its sends in flight and records their
    // tries (bounded: what is still running then is sent again by the next dispatcher, as after
    // a crash).
    tasks.close();
    if tokio::time::timeout(shutdown_timeout, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            running = tasks.len(),
            "background tasks did not finish in time; deliveries in flight will be sent again"
        );
    }
    // Recorded once no request runs; delivered by the next dispatcher that runs (this one has
    // stopped), like any committed event.
    if let Err(e) = system_event(
        &store,
        &clock,
        EventName::SystemShutdown,
        instance,
        Some(started),
    )
    .await
    {
        tracing::warn!(error = %e, "recording system.shutdown failed");
    }
    if tokio::time::timeout(Duration::from_secs(5), store.close())
        .await
        .is_err()
    {
        tracing::warn!("database connections did not close within 5 s");
    }
    tracing::info!("stopped");
    served
}

/// Submits attempts whose deadline has passed, once a second, until shutdown.
fn spawn_sweeper(
    tasks: &TaskTracker,
    store: Store,
    clock: crate::clock::Clock,
    token: CancellationToken,
) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => {
                    match crate::service::attempts::sweep_once(&store, &clock, 100).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(submitted = n, "deadline sweeper submitted attempts"),
                        Err(e) => tracing::warn!(error = %e, "deadline sweeper step failed"),
                    }
                }
            }
        }
    });
}

/// Appends `system.startup` or `system.shutdown` (no tenant: only global subscriptions, from the
/// environment or the plugins file, receive them).
async fn system_event(
    store: &Store,
    clock: &crate::clock::Clock,
    name: EventName,
    instance: uuid::Uuid,
    started: Option<Instant>,
) -> anyhow::Result<()> {
    let data = crate::domain::event_data::ServiceLifecycle {
        service: "assessment-service".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        instance_id: instance,
        database: match store.backend() {
            crate::store::Backend::Sqlite => "sqlite",
            crate::store::Backend::Postgres => "postgres",
        }
        .into(),
        uptime_seconds: started.map(|s| s.elapsed().as_secs()),
    };
    let event = NewEvent::new(
        uuid::Uuid::now_v7(),
        name,
        EventContext::default(),
        crate::domain::event_data::to_data(name, &data),
        clock.now().0,
    );
    let mut tx = store.begin().await?;
    crate::events::append(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes finished events older than `days` (with their deliveries and tries) at start-up and
/// then hourly, in batches so no statement holds its locks for long.
fn spawn_retention(
    tasks: &TaskTracker,
    store: Store,
    clock: crate::clock::Clock,
    days: u32,
    token: CancellationToken,
) {
    const BATCH: i64 = 1000;
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = clock.now();
            let cutoff = crate::store::Ts::new(now.0 - chrono::Duration::days(i64::from(days)));
            let mut deleted = 0;
            loop {
                match crate::store::deliveries::purge_before(&store, cutoff, BATCH).await {
                    Ok((d, e)) => {
                        deleted += e;
                        if (d < BATCH as u64 && e < BATCH as u64) || token.is_cancelled() {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "deleting old events failed");
                        break;
                    }
                }
            }
            if deleted > 0 {
                tracing::info!(deleted, days, "deleted finished events past retention");
            }
        }
    });
}

/// Header mode trusts whoever can reach the port; that is only safe on loopback (or behind a
/// gateway, which the operator must know about: hence the warning).
fn exposed_in_header_mode(mode: AuthMode, addr: SocketAddr) -> bool {
    mode == AuthMode::Headers && !addr.ip().is_loopback()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_only_for_header_mode_off_loopback() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let v6_any: SocketAddr = "[::]:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let v6_local: SocketAddr = "[::1]:8080".parse().unwrap();
        assert!(exposed_in_header_mode(AuthMode::Headers, public));
        assert!(exposed_in_header_mode(AuthMode::Headers, v6_any));
        assert!(!exposed_in_header_mode(AuthMode::Headers, local));
        assert!(!exposed_in_header_mode(AuthMode::Headers, v6_local));
        assert!(!exposed_in_header_mode(AuthMode::Jwt, public));
    }

    #[test]
    fn cli_parses_subcommands_and_flags() {
        let cli = Cli::try_parse_from(["assessment-service", "migrate", "--port", "9000"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Migrate)));
        assert_eq!(cli.config.port, 9000);
        let cli = Cli::try_parse_from(["assessment-service"]).unwrap();
        assert!(cli.command.is_none(), "no subcommand means serve");
    }
}

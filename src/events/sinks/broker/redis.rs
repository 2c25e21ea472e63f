//! Redis Streams: `XADD <topic> * id <event id> name <event name> tenantId <..>
//! organisationId <..> payload <the webhook body> [traceparent <..>]`, acknowledged by the entry id
//! Redis returns.
//! Redis keeps no message ids: a re-send after a crash adds a second entry with the same `id`
//! field (at-least-once; consumers de-duplicate on it).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Backoff, CONNECT_TIMEOUT, Health, Message, SendError};
use crate::events::brokers::{BrokerUrl, Template};

pub(super) struct Link {
    url: BrokerUrl,
    pub(super) health: Health,
    /// Made on first use (it needs the runtime); it reconnects by itself on the next command
    /// after a lost connection.
    manager: tokio::sync::OnceCell<ConnectionManager>,
    backoff: std::sync::Mutex<Backoff>,
}

impl Link {
    pub(super) fn new(url: BrokerUrl, health: Health) -> Link {
        Link {
            url,
            health,
            manager: tokio::sync::OnceCell::new(),
            backoff: std::sync::Mutex::new(Backoff::default()),
        }
    }

    async fn manager(&self) -> Result<ConnectionManager, SendError> {
        if let Some(wait) = self.lock_backoff().wait() {
            return Err(self.health.unreachable("Redis", wait));
        }
        let m = self
            .manager
            .get_or_try_init(|| async {
                let client = redis::Client::open(self.url.expose())
                    .map_err(|e| SendError::Refused(format!("Redis URL: {e}")))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(Duration::from_secs(30)))
                    .set_number_of_retries(1);
                ConnectionManager::new_lazy_with_config(client, config)
                    .map_err(|e| SendError::Refused(format!("Redis: {e}")))
            })
            .await?;
        Ok(m.clone())
    }

    fn lock_backoff(&self) -> std::sync::MutexGuard<'_, Backoff> {
        self.backoff.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a command; a connection failure defers (and backs off the next connects).
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, SendError> {
        let mut m = self.manager().await?;
        match cmd.query_async::<T>(&mut m).await {
            Ok(v) => {
                self.lock_backoff().succeeded();
                self.health.up();
                Ok(v)
            }
            Err(e)
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout() =>
            {
                let error = e.to_string();
                self.health.down(&error);
                let retry_after = self.lock_backoff().failed();
                Err(SendError::Unreachable {
                    error: format!("Redis unreachable: {error}"),
                    retry_after,
                })
            }
            Err(e) => Err(SendError::Refused(format!("Redis: {e}"))),
        }
    }

    pub(super) async fn ping(&self) -> Result<(), SendError> {
        self.run::<String>(&redis::cmd("PING")).await.map(drop)
    }

    pub(super) async fn publish(
        &self,
        topic: &Template,
        partition: Option<u32>,
        m: &Message<'_>,
    ) -> Result<String, SendError> {
        let mut key = topic.render(m.envelope);
        if let Some(p) = partition {
            key = format!("{key}.{p}");
        }
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&key)
            .arg("*")
            .arg("id")
            .arg(&m.id)
            .arg("name")
            .arg(m.name)
            .arg("tenantId")
            .arg(m.tenant)
            .arg("organisationId")
            .arg(m.organisation)
            .arg("payload")
            .arg(&m.body[..]);
        if let Some(traceparent) = m.traceparent {
            cmd.arg("traceparent").arg(traceparent);
        }
        let entry: String = self.run(&cmd).await?;
        Ok(format!("{key} {entry}"))
    }
}

//! NATS JetStream: the stream is created if missing (its subjects derived from the topic),
//! each message carries `Nats-Msg-Id` = the event id (so the stream's duplicate window drops a
//! re-send), and the publish ack is awaited. The client reconnects by itself; while it is
//! disconnected, sends are deferred.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;

use super::{CONNECT_TIMEOUT, Health, Message, SendError};
use crate::events::brokers::{BrokerUrl, Template};

struct Open {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    /// When the client was made: until its first connection has had time to come up, a
    /// send waits for it rather than being deferred.
    made: tokio::time::Instant,
}

pub(super) struct Link {
    url: BrokerUrl,
    pub(super) health: Arc<Health>,
    client: tokio::sync::OnceCell<Result<Open, String>>,
    /// Streams known to exist.
    streams: Mutex<HashSet<String>>,
}

impl Link {
    pub(super) fn new(url: BrokerUrl, health: Health) -> Link {
        Link {
            url,
            health: Arc::new(health),
            client: tokio::sync::OnceCell::new(),
            streams: Mutex::new(HashSet::new()),
        }
    }

    /// The client, made on first use. It connects (and reconnects) in the background; a
    /// send waits for its first connection (up to [`CONNECT_TIMEOUT`] after it was made), and
    /// is deferred at once while it is reconnecting.
    pub(super) async fn open(&self) -> Result<&async_nats::Client, SendError> {
        let open = self.open_inner().await?;
        let first_until = open.made + CONNECT_TIMEOUT;
        loop {
            if open.client.connection_state() == async_nats::connection::State::Connected {
                return Ok(&open.client);
            }
            if tokio::time::Instant::now() >= first_until {
                return Err(self.unreachable());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn open_inner(&self) -> Result<&Open, SendError> {
        let made = self
            .client
            .get_or_init(|| async {
                let health = self.health.clone();
                let client = async_nats::ConnectOptions::new()
                    .name("shiksha-assessment")
                    .retry_on_initial_connect()
                    .connection_timeout(CONNECT_TIMEOUT)
                    .event_callback(move |event| {
                        let health = health.clone();
                        async move {
                            match event {
                                async_nats::Event::Connected => health.up(),
                                async_nats::Event::Disconnected => health.down("disconnected"),
                                async_nats::Event::ClientError(e) => health.down(&e.to_string()),
                                async_nats::Event::ServerError(e) => health.error(&e.to_string()),
                                _ => {}
                            }
                        }
                    })
                    .connect(self.url.expose())
                    .await
                    .map_err(|e| e.to_string())?;
                let mut jetstream = jetstream::new(client.clone());
                jetstream.set_timeout(Duration::from_secs(30));
                Ok(Open {
                    client,
                    jetstream,
                    made: tokio::time::Instant::now(),
                })
            })
            .await;
        made.as_ref().map_err(|e| SendError::Refused(e.clone()))
    }

    fn unreachable(&self) -> SendError {
        self.health.unreachable("NATS", Duration::from_secs(1))
    }

    /// Publishes to the topic's subject and waits for the stream's ack.
    pub(super) async fn publish(
        &self,
        topic: &Template,
        partition: Option<u32>,
        m: &Message<'_>,
    ) -> Result<String, SendError> {
        self.open().await?;
        let open = self.open_inner().await?;
        // Checked at start-up.
        let (stream, subjects) = topic.jetstream(partition).map_err(SendError::Refused)?;
        let known = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&stream);
        if !known {
            open.jetstream
                .get_or_create_stream(jetstream::stream::Config {
                    name: stream.clone(),
                    subjects,
                    ..Default::default()
                })
                .await
                .map_err(|e| self.failed(format!("creating the stream {stream}: {e}")))?;
            self.streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(stream);
        }
        let mut subject = topic.render(m.envelope);
        if let Some(p) = partition {
            subject = format!("{subject}.{p}");
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, m.id.as_str());
        headers.insert("Content-Type", "application/json");
        headers.insert("eventName", m.name);
        headers.insert("tenantId", m.tenant);
        headers.insert("organisationId", m.organisation);
        if let Some(traceparent) = m.traceparent {
            headers.insert("traceparent", traceparent);
        }
        let ack = open
            .jetstream
            .publish_with_headers(subject.clone(), headers, m.body.clone().into())
            .await
            .map_err(|e| self.failed(format!("publishing to {subject}: {e}")))?
            .await
            .map_err(|e| self.failed(format!("waiting for the ack on {subject}: {e}")))?;
        Ok(format!(
            "stream {} seq {}{}",
            ack.stream,
            ack.sequence,
            if ack.duplicate { " (duplicate)" } else { "" }
        ))
    }

    /// An error: unreachable if the client lost its connection, refused otherwise.
    fn failed(&self, error: String) -> SendError {
        let connected = self
            .client
            .get()
            .and_then(|o| o.as_ref().ok())
            .is_some_and(|o| {
                o.client.connection_state() == async_nats::connection::State::Connected
            });
        if connected {
            SendError::Refused(error)
        } else {
            self.health.down(&error);
            SendError::Unreachable {
                error: format!("NATS unreachable: {error}"),
                retry_after: Duration::from_secs(1),
            }
        }
    }
}

//! RabbitMQ over AMQP 0.9.1: persistent messages on a channel in confirm mode, `mandatory` so
//! that an unroutable message is returned rather than dropped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use super::{Backoff, CONNECT_TIMEOUT, Health, Message, SendError};
use crate::events::brokers::{BrokerUrl, Destination};

/// One connection and its publishing channel.
pub(super) struct Open {
    connection: Arc<Connection>,
    channel: Channel,
    /// Queues, exchanges and bindings declared on this connection.
    declared: Mutex<HashSet<String>>,
}

pub(super) struct Link {
    url: BrokerUrl,
    pub(super) health: Health,
    current: tokio::sync::Mutex<(Option<Arc<Open>>, Backoff)>,
}

impl Link {
    pub(super) fn new(url: BrokerUrl, health: Health) -> Link {
        Link {
            url,
            health,
            current: tokio::sync::Mutex::new((None, Backoff::default())),
        }
    }

    /// The open connection, opening it (or a new channel on it) if needed.
    pub(super) async fn open(&self) -> Result<Arc<Open>, SendError> {
        let mut current = self.current.lock().await;
        let (open, backoff) = &mut *current;
        if let Some(o) = open.as_ref() {
            if o.connection.status().connected() && o.channel.status().connected() {
                return Ok(o.clone());
            }
            if o.connection.status().connected() {
                // The broker closed the channel (a refused declaration): a new one.
                match channel(&o.connection).await {
                    Ok(channel) => {
                        let fresh = Arc::new(Open {
                            connection: o.connection.clone(),
                            channel,
                            declared: Mutex::new(HashSet::new()),
                        });
                        *open = Some(fresh.clone());
                        return Ok(fresh);
                    }
                    Err(e) => self.health.down(&format!("opening a channel: {e}")),
                }
            } else {
                self.health.down("the connection closed");
            }
            *open = None;
        }
        if let Some(retry_after) = backoff.wait() {
            return Err(self.unreachable(retry_after));
        }
        let props = ConnectionProperties::default()
            .with_connection_name("shiksha-assessment".into())
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current());
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let connection = Connection::connect(self.url.expose(), props).await?;
            let channel = channel(&connection).await?;
            Ok::<_, lapin::Error>(Open {
                connection: Arc::new(connection),
                channel,
                declared: Mutex::new(HashSet::new()),
            })
        })
        .await;
        match connected {
            Ok(Ok(o)) => {
                backoff.succeeded();
                self.health.up();
                let o = Arc::new(o);
                *open = Some(o.clone());
                Ok(o)
            }
            Ok(Err(e)) => {
                self.health.down(&format!("connecting: {e}"));
                Err(self.unreachable(backoff.failed()))
            }
            Err(_) => {
                self.health
                    .down(&format!("connecting: no answer within {CONNECT_TIMEOUT:?}"));
                Err(self.unreachable(backoff.failed()))
            }
        }
    }

    fn unreachable(&self, retry_after: std::time::Duration) -> SendError {
        self.health.unreachable("RabbitMQ", retry_after)
    }

    /// An error while the connection was thought open: unreachable if the connection went,
    /// refused if only this message (or its channel) was.
    fn failed(&self, open: &Open, what: &str, e: lapin::Error) -> SendError {
        if open.connection.status().connected() {
            SendError::Refused(format!("{what}: {e}"))
        } else {
            self.health.down(&format!("{what}: {e}"));
            SendError::Unreachable {
                error: format!("RabbitMQ connection lost: {what}: {e}"),
                retry_after: std::time::Duration::from_millis(500),
            }
        }
    }

    /// Declares the queue (and exchange and binding) once per connection, publishes, and
    /// waits for the broker's confirm.
    pub(super) async fn publish(
        &self,
        destination: &Destination,
        m: &Message<'_>,
    ) -> Result<String, SendError> {
        let Destination::Queue {
            queue,
            exchange,
            routing_key,
        } = destination
        else {
            return Err(SendError::Refused("not a queue".into()));
        };
        let open = self.open().await?;
        self.declare(&open, queue, exchange.as_deref(), routing_key.binding_key())
            .await?;
        let (exchange, key) = match exchange {
            Some(x) => (x.as_str(), routing_key.render(m.envelope)),
            None => ("", queue.clone()),
        };
        let mut headers = FieldTable::default();
        for (k, v) in [
            ("eventName", m.name),
            ("tenantId", m.tenant),
            ("organisationId", m.organisation),
        ] {
            headers.insert(k.into(), AMQPValue::LongString(LongString::from(v)));
        }
        if let Some(traceparent) = m.traceparent {
            headers.insert(
                "traceparent".into(),
                AMQPValue::LongString(LongString::from(traceparent)),
            );
        }
        let properties = BasicProperties::default()
            .with_message_id(ShortString::from(m.id.as_str()))
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_type(ShortString::from(m.name))
            .with_app_id("shiksha-assessment".into())
            .with_headers(headers);
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = open
            .channel
            .basic_publish(exchange, &key, options, &m.body, properties)
            .await
            .map_err(|e| self.failed(&open, "publishing", e))?
            .await
            .map_err(|e| self.failed(&open, "waiting for the confirm", e))?;
        match confirm {
            Confirmation::Ack(None) => Ok(format!("confirmed: routing key {key}")),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                Err(SendError::Refused(format!(
                    "returned unroutable ({} {}): no queue is bound for routing key {key}",
                    returned.reply_code,
                    returned.reply_text.as_str()
                )))
            }
            Confirmation::Nack(None) => Err(SendError::Refused(
                "the broker refused the message (nack)".into(),
            )),
            Confirmation::NotRequested => Err(SendError::Refused(
                "the channel is not in confirm mode".into(),
            )),
        }
    }

    async fn declare(
        &self,
        open: &Open,
        queue: &str,
        exchange: Option<&str>,
        binding: String,
    ) -> Result<(), SendError> {
        let key = format!("{queue}\u{0}{}\u{0}{binding}", exchange.unwrap_or_default());
        if lock(&open.declared).contains(&key) {
            return Ok(());
        }
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        open.channel
            .queue_declare(queue, durable, FieldTable::default())
            .await
            .map_err(|e| self.failed(open, &format!("declaring the queue {queue}"), e))?;
        if let Some(x) = exchange {
            let durable = ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            };
            open.channel
                .exchange_declare(x, ExchangeKind::Topic, durable, FieldTable::default())
                .await
                .map_err(|e| self.failed(open, &format!("declaring the exchange {x}"), e))?;
            open.channel
                .queue_bind(
                    queue,
                    x,
                    &binding,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| self.failed(open, &format!("binding {queue} to {x}"), e))?;
        }
        lock(&open.declared).insert(key);
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn channel(connection: &Connection) -> Result<Channel, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

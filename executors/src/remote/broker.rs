//! The seam between the remote executor and its broker, and its NATS JetStream side.
//!
//! Everything above this module speaks of two queues per namespace (runs to workers, outcomes
//! back to the scheduler), publishing with the broker's confirmation, and deliveries that are
//! acknowledged only once handled. An AMQP broker fits the same seam (a durable queue each,
//! publisher confirms, manual acks, `x-max-length` with `reject-publish`).

use std::fmt::Debug;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use scheduler_core::clock::BoxFuture;
use scheduler_core::{Error, Result};

/// The two queues of a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queue {
    /// Runs, from the scheduler to any one worker.
    Runs,
    /// Outcomes, from the workers to the scheduler.
    Outcomes,
}

/// A message taken from a queue, kept by the broker until acknowledged.
pub(crate) trait Delivery: Send + Sync {
    /// The frame as published.
    fn frame(&self) -> &[u8];
    /// Which delivery of this message this is (1 = the first).
    fn attempt(&self) -> u32;
    /// Done with it: the broker forgets it. With `confirm`, returns once the broker has
    /// confirmed (a lost ack would mean the message is delivered again).
    fn ack(&self, confirm: bool) -> BoxFuture<'_, Result<()>>;
    /// Still working on it: the broker must not hand it to another consumer yet.
    fn extend(&self) -> BoxFuture<'_, Result<()>>;
    /// Never deliver it again (a forged or unreadable message).
    fn reject(&self) -> BoxFuture<'_, Result<()>>;
}

/// Deliveries of one queue, as they come.
pub(crate) type Deliveries = BoxStream<'static, Result<Box<dyn Delivery>>>;

/// A broker seen by the remote executor and its workers.
pub(crate) trait Broker: Send + Sync + Debug {
    /// Whether the connection is up now (a publish would otherwise wait, then fail).
    fn is_connected(&self) -> bool;
    /// The largest frame the broker takes.
    fn max_frame(&self) -> usize;
    /// Publishes `frame` to `queue`, returning once the broker has stored it.
    fn publish(&self, queue: Queue, frame: Vec<u8>) -> BoxFuture<'_, Result<()>>;
    /// Takes up to `max` deliveries of `queue`, each as it comes, for at most `wait`.
    fn take(&self, queue: Queue, max: usize, wait: Duration) -> BoxFuture<'_, Result<Deliveries>>;
}

/// Queue sizes and acknowledgement deadlines, chosen by the scheduler side.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) namespace: String,
    pub(crate) run_capacity: i64,
    pub(crate) outcome_capacity: i64,
    pub(crate) ack_wait: Duration,
    /// Unacknowledged runs at once over all workers.
    pub(crate) max_ack_pending: i64,
}

/// Whether `namespace` can name streams and subjects: ASCII letters, digits, `-` and `_`.
pub(crate) fn check_namespace(namespace: &str) -> Result<()> {
    let fits = !namespace.is_empty()
        && namespace.len() <= 64
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fits {
        Ok(())
    } else {
        Err(Error::config(format!(
            "namespace {namespace:?} must be 1 to 64 ASCII letters, digits, '-' or '_'"
        )))
    }
}

pub(crate) mod nats {
    use super::*;
    use async_nats::jetstream::{self, consumer, stream};

    /// NATS JetStream: a work-queue stream per queue, `SCHEDULER_<ns>_RUNS` on subject
    /// `scheduler.<ns>.runs` (and `..._OUTCOMES`), with one durable pull consumer each.
    #[derive(Debug, Clone)]
    pub(crate) struct Nats {
        client: async_nats::Client,
        js: jetstream::Context,
        namespace: String,
        /// The consumers opened so far, by queue (opening one costs two round trips).
        consumers: std::sync::Arc<std::sync::Mutex<Vec<(Queue, consumer::PullConsumer)>>>,
    }

    fn stream_name(ns: &str, queue: Queue) -> String {
        match queue {
            Queue::Runs => format!("SCHEDULER_{ns}_RUNS"),
            Queue::Outcomes => format!("SCHEDULER_{ns}_OUTCOMES"),
        }
    }

    fn subject(ns: &str, queue: Queue) -> String {
        match queue {
            Queue::Runs => format!("scheduler.{ns}.runs"),
            Queue::Outcomes => format!("scheduler.{ns}.outcomes"),
        }
    }

    fn consumer_name(queue: Queue) -> &'static str {
        match queue {
            Queue::Runs => "workers",
            Queue::Outcomes => "scheduler",
        }
    }

    fn backend(what: &str, e: impl Into<scheduler_core::BoxError>) -> Error {
        Error::backend(format!("NATS: {what}"), e).set_temporary()
    }

    impl Nats {
        /// Connects to `url`; the client reconnects on its own afterwards, backing off up to
        /// 5 s between attempts. `url` may carry credentials, so it never appears in errors.
        pub(crate) async fn connect(url: &str, namespace: &str, name: &str) -> Result<Self> {
            check_namespace(namespace)?;
            let options = async_nats::ConnectOptions::new()
                .name(name)
                .connection_timeout(Duration::from_secs(5))
                .request_timeout(Some(Duration::from_secs(5)))
                .reconnect_delay_callback(|attempts| {
                    let exp = attempts.min(6) as u32;
                    Duration::from_millis(100 * 2u64.pow(exp)).min(Duration::from_secs(5))
                });
            let client = tokio::time::timeout(Duration::from_secs(10), options.connect(url))
                .await
                .map_err(|e| backend("cannot connect to the server (timed out)", e))?
                .map_err(|e| backend("cannot connect to the server", e))?;
            Ok(Nats {
                js: jetstream::new(client.clone()),
                client,
                namespace: namespace.to_owned(),
                consumers: std::sync::Arc::default(),
            })
        }

        /// Creates (or updates) both streams and their consumers to fit `layout`.
        pub(crate) async fn declare(&self, layout: &Layout) -> Result<()> {
            for (queue, capacity) in [
                (Queue::Runs, layout.run_capacity),
                (Queue::Outcomes, layout.outcome_capacity),
            ] {
                let config = stream::Config {
                    name: stream_name(&self.namespace, queue),
                    subjects: vec![subject(&self.namespace, queue)],
                    retention: stream::RetentionPolicy::WorkQueue,
                    // A full queue refuses new messages rather than dropping old ones.
                    discard: stream::DiscardPolicy::New,
                    max_messages: capacity,
                    storage: stream::StorageType::File,
                    ..Default::default()
                };
                self.js
                    .create_or_update_stream(config)
                    .await
                    .map_err(|e| backend("cannot declare a stream", e))?;
                let consumer = consumer::pull::Config {
                    durable_name: Some(consumer_name(queue).to_owned()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: layout.ack_wait,
                    // Workers count attempts themselves (and give up with an outcome), so the
                    // broker never drops a run on its own.
                    max_deliver: -1,
                    max_ack_pending: match queue {
                        Queue::Runs => layout.max_ack_pending,
                        Queue::Outcomes => 1_000,
                    },
                    ..Default::default()
                };
                let js_stream = self
                    .js
                    .get_stream(stream_name(&self.namespace, queue))
                    .await
                    .map_err(|e| backend("cannot open a stream", e))?;
                js_stream
                    .create_consumer(consumer)
                    .await
                    .map_err(|e| backend("cannot declare a consumer", e))?;
            }
            Ok(())
        }

        async fn consumer(&self, queue: Queue) -> Result<consumer::PullConsumer> {
            let known = self
                .consumers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .find(|(q, _)| *q == queue)
                .map(|(_, c)| c.clone());
            if let Some(consumer) = known {
                return Ok(consumer);
            }
            let stream = self
                .js
                .get_stream(stream_name(&self.namespace, queue))
                .await
                .map_err(|e| backend("cannot open a stream (is a scheduler started?)", e))?;
            let consumer: consumer::PullConsumer = stream
                .get_consumer(consumer_name(queue))
                .await
                .map_err(|e| backend("cannot open a consumer", e))?;
            self.consumers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((queue, consumer.clone()));
            Ok(consumer)
        }

        /// Deletes both streams (and so their consumers and messages).
        pub(crate) async fn delete(&self) -> Result<()> {
            for queue in [Queue::Runs, Queue::Outcomes] {
                let _ = self
                    .js
                    .delete_stream(stream_name(&self.namespace, queue))
                    .await;
            }
            Ok(())
        }
    }

    impl Broker for Nats {
        fn is_connected(&self) -> bool {
            self.client.connection_state() == async_nats::connection::State::Connected
        }

        fn max_frame(&self) -> usize {
            self.client.server_info().max_payload
        }

        fn publish(&self, queue: Queue, frame: Vec<u8>) -> BoxFuture<'_, Result<()>> {
            Box::pin(async move {
                let ack = self
                    .js
                    .publish(subject(&self.namespace, queue), frame.into())
                    .await
                    .map_err(|e| backend("cannot publish", e))?;
                ack.await.map_err(|e| {
                    let text = e.to_string();
                    if text.contains("maximum messages") {
                        Error::backend(
                            "the queue is full (its capacity is set by the executor's \
                             queue_capacity)",
                            e,
                        )
                    } else {
                        backend("the server did not confirm the message", e)
                    }
                })?;
                Ok(())
            })
        }

        fn take(
            &self,
            queue: Queue,
            max: usize,
            wait: Duration,
        ) -> BoxFuture<'_, Result<Deliveries>> {
            Box::pin(async move {
                let consumer = self.consumer(queue).await?;
                // A pull request for exactly the room the caller has: the server hands over
                // each message as it comes, never more than were asked for.
                let messages = consumer
                    .batch()
                    .max_messages(max.max(1))
                    .expires(wait)
                    .messages()
                    .await
                    .map_err(|e| backend("cannot take messages", e))?;
                let deliveries = messages.map(|m| match m {
                    Ok(message) => Ok(Box::new(NatsDelivery(message)) as Box<dyn Delivery>),
                    Err(e) => Err(backend("receiving messages failed", e)),
                });
                Ok(deliveries.boxed())
            })
        }
    }

    struct NatsDelivery(jetstream::Message);

    impl NatsDelivery {
        fn send(&self, kind: jetstream::AckKind) -> BoxFuture<'_, Result<()>> {
            Box::pin(async move {
                self.0
                    .ack_with(kind)
                    .await
                    .map_err(|e| backend("cannot acknowledge", e))
            })
        }
    }

    impl Delivery for NatsDelivery {
        fn frame(&self) -> &[u8] {
            &self.0.payload
        }
        fn attempt(&self) -> u32 {
            self.0
                .info()
                .map(|info| u32::try_from(info.delivered).unwrap_or(u32::MAX))
                .unwrap_or(1)
        }
        fn ack(&self, confirm: bool) -> BoxFuture<'_, Result<()>> {
            if !confirm {
                return self.send(jetstream::AckKind::Ack);
            }
            // The double ack waits for the server's confirmation, so a run whose ack was lost
            // with the connection is retried here rather than silently redelivered.
            Box::pin(async move {
                self.0
                    .double_ack()
                    .await
                    .map_err(|e| backend("cannot acknowledge", e))
            })
        }
        fn extend(&self) -> BoxFuture<'_, Result<()>> {
            self.send(jetstream::AckKind::Progress)
        }
        fn reject(&self) -> BoxFuture<'_, Result<()>> {
            self.send(jetstream::AckKind::Term)
        }
    }
}

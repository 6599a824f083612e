//! Wake-ups across schedulers: every write that gives a job a run time publishes the
//! earliest one it wrote on the store's channel (in the same Lua script), and each started
//! store listens on a connection of its own, waking its scheduler for every message whose run
//! time comes before its planned look at the store.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use scheduler_core::StoreContext;
use scheduler_core::store::wake_feed::{Backoff, keep_listening, wake_on_notification};

/// The first wait before subscribing again after the subscription was lost, and the longest.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(5),
};

/// How often a quiet subscription is checked with a PING, so that a connection the network
/// dropped silently (no reset) is noticed and replaced: a half-open connection delivers
/// nothing and would otherwise leave the scheduler on its `max_wait` polling for good.
const PING_INTERVAL: Duration = Duration::from_secs(15);

/// A subscription on the wake-up channel.
struct Subscription {
    sink: PubSubSink,
    stream: PubSubStream,
}

/// Subscribes to `channel` on a connection of its own, within `timeout`.
async fn subscribe(
    client: &redis::Client,
    channel: &str,
    timeout: Duration,
) -> Result<Subscription, String> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        let (sink, stream) = pubsub.split();
        redis::RedisResult::Ok(Subscription { sink, stream })
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(subscription)) => Ok(subscription),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Subscribes, wakes `ctx` once the subscription is live (what was written before it is
/// not delivered), then wakes it on every message, and when the subscription is lost
/// subscribes again ([`keep_listening`]). Runs until aborted at the store's shutdown.
pub(crate) async fn listen(
    client: redis::Client,
    channel: String,
    ctx: StoreContext,
    timeout: Duration,
    redacted_url: String,
) {
    let first = match subscribe(&client, &channel, timeout).await {
        Ok(subscription) => {
            ctx.wake();
            Some(subscription)
        }
        Err(e) => {
            tracing::warn!(
                url = %redacted_url,
                error = %e,
                "cannot subscribe to the Redis wake-up channel yet; retrying in the background"
            );
            None
        }
    };
    keep_listening(
        &ctx,
        first,
        BACKOFF,
        || subscribe(&client, &channel, timeout),
        move |live, ctx| Box::pin(deliver(live, ctx, timeout)),
        |why| {
            tracing::warn!(
                url = %redacted_url,
                channel = %channel,
                reason = %why,
                "the Redis wake-up subscription was lost; subscribing again (jobs changed by \
                 other schedulers meanwhile are seen at the next poll)"
            );
        },
        |e| tracing::debug!(url = %redacted_url, error = %e, "subscribing to wake-ups failed"),
    )
    .await;
}

/// Wakes `ctx` per message until the connection ends or stops answering PINGs; answers why
/// it stopped.
async fn deliver(live: &mut Subscription, ctx: &StoreContext, timeout: Duration) -> String {
    loop {
        match tokio::time::timeout(PING_INTERVAL, live.stream.next()).await {
            // A payload that is not text wakes as any unreadable one does.
            Ok(Some(message)) => wake_on_notification(
                ctx,
                std::str::from_utf8(message.get_payload_bytes()).unwrap_or_default(),
            ),
            Ok(None) => return "the connection ended".to_owned(),
            Err(_quiet) => {
                match tokio::time::timeout(timeout, live.sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return format!("no PONG within {timeout:?}"),
                }
            }
        }
    }
}

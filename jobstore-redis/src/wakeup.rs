//! Wake-ups across schedulers: every write that gives a job a run time publishes on the
//! store's channel (in the same Lua script), and each started store listens on a connection
//! of its own, waking its scheduler on every message.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use scheduler_core::StoreContext;

/// The first wait before subscribing again after the subscription was lost; it doubles up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How often a quiet subscription is checked with a PING, so that a connection the network
/// dropped silently (no reset) is noticed and replaced: a half-open connection delivers
/// nothing and would otherwise leave the scheduler on its `max_wait` polling for good.
const PING_INTERVAL: Duration = Duration::from_secs(15);

/// A subscription on the wake-up channel.
pub(crate) struct Subscription {
    sink: PubSubSink,
    stream: PubSubStream,
}

/// Subscribes to `channel` on a connection of its own, within `timeout`.
pub(crate) async fn subscribe(
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

/// Wakes `ctx` on every message of `first` (a subscription made by the caller), and when the
/// subscription is lost subscribes again with a growing backoff, waking once after each
/// (what was published in between is lost). Runs until aborted at the store's shutdown.
pub(crate) async fn listen(
    client: redis::Client,
    channel: String,
    ctx: StoreContext,
    first: Option<Subscription>,
    timeout: Duration,
    redacted_url: String,
) {
    let mut subscription = first;
    let mut backoff = MIN_BACKOFF;
    loop {
        if let Some(mut live) = subscription.take() {
            backoff = MIN_BACKOFF;
            deliver(&mut live, &ctx, timeout).await;
            tracing::warn!(
                url = %redacted_url,
                channel = %channel,
                "the Redis wake-up subscription was lost; subscribing again (jobs changed by \
                 other schedulers meanwhile are seen at the next poll)"
            );
        }
        tokio::time::sleep(backoff).await;
        match subscribe(&client, &channel, timeout).await {
            Ok(live) => {
                subscription = Some(live);
                // Messages published while away are gone: look once now.
                ctx.wake();
            }
            Err(e) => {
                tracing::debug!(url = %redacted_url, error = %e, "subscribing to wake-ups failed");
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Wakes `ctx` per message until the connection ends or stops answering PINGs.
async fn deliver(live: &mut Subscription, ctx: &StoreContext, timeout: Duration) {
    loop {
        match tokio::time::timeout(PING_INTERVAL, live.stream.next()).await {
            Ok(Some(_message)) => ctx.wake(),
            Ok(None) => return,
            Err(_quiet) => {
                let ping = tokio::time::timeout(timeout, live.sink.ping::<redis::Value>()).await;
                if !matches!(ping, Ok(Ok(_))) {
                    return;
                }
            }
        }
    }
}

//! PostgreSQL wake-ups across nodes: every job write sends `pg_notify(<table>_wakeup)` with
//! the earliest run time it wrote, and each started store listens on that channel on a
//! connection of its own, waking its scheduler's loop so a job another node added or moved
//! earlier fires on time (a scheduler that looks by then anyway is left asleep).

use std::time::Duration;

use scheduler_core::StoreContext;
use scheduler_core::store::wake_feed::wake_on_notification;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

/// The first and the longest pause between attempts to reach the server again.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Spawns the listener task: LISTEN on `channel` and wake `ctx` on each notification
/// ([`wake_on_notification`]), and once after every reconnection (notifications sent while
/// it was away are lost). It runs until aborted (the store's `shutdown`).
pub(crate) fn spawn_listener(
    options: PgConnectOptions,
    channel: String,
    ctx: StoreContext,
    redacted_url: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut outage = Outage {
            backoff: FIRST_BACKOFF,
            reported: false,
        };
        loop {
            let e = listen(&options, &channel, &ctx, &mut outage).await;
            // Logged once per outage; the loop's max_wait polling covers the gap.
            if !outage.reported {
                tracing::warn!(
                    url = %redacted_url,
                    channel = %channel,
                    error = %e,
                    "the PostgreSQL wake-up listener lost the server; retrying with backoff \
                     (jobs are still found by polling)"
                );
                outage.reported = true;
            }
            tokio::time::sleep(outage.backoff).await;
            outage.backoff = (outage.backoff * 2).min(MAX_BACKOFF);
        }
    })
}

/// How long to wait before the next attempt, and whether this outage was logged.
struct Outage {
    backoff: Duration,
    reported: bool,
}

/// One listening session: connects (a one-connection pool of its own, outside the store's
/// pool), listens, and wakes on every notification until an error.
async fn listen(
    options: &PgConnectOptions,
    channel: &str,
    ctx: &StoreContext,
    outage: &mut Outage,
) -> sqlx::Error {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options.clone());
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(listener) => listener,
        Err(e) => return e,
    };
    if let Err(e) = listener.listen(channel).await {
        return e;
    }
    tracing::debug!(channel, "listening for wake-ups");
    *outage = Outage {
        backoff: FIRST_BACKOFF,
        reported: false,
    };
    // Anything sent before this LISTEN was missed.
    ctx.wake();
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => wake_on_notification(ctx, notification.payload()),
            // The connection dropped and was made again (sqlx listens again on it); what was
            // sent in between is lost.
            Ok(None) => ctx.wake(),
            Err(e) => return e,
        }
    }
}

//! Keeping a backend's wake-up feed (a change stream, a pub/sub subscription) open: the
//! reconnect loop the backends that push wake-ups share.

use std::future::Future;
use std::time::Duration;

use super::StoreContext;
use crate::clock::BoxFuture;

/// Wakes `ctx` for one notification whose payload is the earliest run time written, in
/// integer microseconds since 1970 ([`StoreContext::wake_for`]: a scheduler that looks at its
/// stores by then anyway stays asleep); any other payload (empty, from an older writer, or a
/// time out of range) wakes it ([`StoreContext::wake`]).
pub fn wake_on_notification(ctx: &StoreContext, payload: &str) {
    match payload.parse::<i64>().ok().map(super::from_micros) {
        Some(Ok(run_time)) => ctx.wake_for(run_time),
        _ => ctx.wake(),
    }
}

/// The pauses between attempts to open a lost feed again: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The pause after the feed is lost, and after each opening that worked.
    pub first: Duration,
    /// The longest pause.
    pub max: Duration,
}

/// Wakes `ctx` through `deliver` (given the feed and `ctx`) while the feed is live, and when
/// it is lost opens it again with `backoff`, waking once after each opening: what changed
/// while it was closed is not replayed. `first` is a feed the caller opened, if any.
/// `deliver` runs until the feed is lost and answers why (given to `lost`); a failed `open`
/// is given to `failed`. Runs until aborted (the store's shutdown).
pub async fn keep_listening<F, Open>(
    ctx: &StoreContext,
    first: Option<F>,
    backoff: Backoff,
    mut open: impl FnMut() -> Open,
    // Boxed (and so `Send` for every borrow of the feed): an `async` closure's future here
    // is not provably `Send` for all lifetimes, which `tokio::spawn` needs.
    mut deliver: impl for<'a> FnMut(&'a mut F, &'a StoreContext) -> BoxFuture<'a, String>,
    lost: impl Fn(&str),
    failed: impl Fn(&str),
) where
    Open: Future<Output = Result<F, String>>,
{
    let mut feed = first;
    let mut pause = backoff.first;
    loop {
        if let Some(mut live) = feed.take() {
            pause = backoff.first;
            lost(&deliver(&mut live, ctx).await);
        }
        tokio::time::sleep(pause).await;
        match open().await {
            Ok(live) => {
                feed = Some(live);
                ctx.wake();
            }
            Err(e) => {
                failed(&e);
                pause = (pause * 2).min(backoff.max);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{EventBus, JobCodec};

    #[test]
    fn a_notification_wakes_only_for_a_run_time_before_the_planned_look() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counted = wakes.clone();
        let planned = chrono::DateTime::from_timestamp(1_000, 0).unwrap();
        let ctx = StoreContext::new("s", JobCodec::default(), EventBus::new())
            .with_waker(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .with_planned_look(move |run_time| run_time >= planned);
        let woken = |payload: &str| {
            let before = wakes.load(Ordering::SeqCst);
            wake_on_notification(&ctx, payload);
            wakes.load(Ordering::SeqCst) > before
        };
        assert!(!woken("1000000000"), "at the planned look");
        assert!(!woken("2000000000"), "after it");
        assert!(woken("999999999"), "before it");
        for other in [
            "",
            "w",
            "12ab",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert!(woken(other), "{other:?} wakes");
        }
    }
}

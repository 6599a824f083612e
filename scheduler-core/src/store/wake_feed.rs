//! Keeping a backend's wake-up feed (a change stream, a pub/sub subscription) open: the
//! reconnect loop the backends that push wake-ups share.

use std::future::Future;
use std::time::Duration;

use super::StoreContext;
use crate::clock::BoxFuture;

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

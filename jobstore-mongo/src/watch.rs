//! Wake-ups across schedulers on a replica set or a sharded cluster: each started store
//! watches its jobs collection with a change stream and wakes its scheduler when a job is
//! added, replaced, or given another run time, so a job another node added or moved earlier
//! fires on time. A standalone server has no change streams: the store then polls within
//! `max_wait`, as every store does anyway (the stream only wakes; it is never the truth).

use std::sync::atomic::Ordering;
use std::time::Duration;

use mongodb::Collection;
use mongodb::ServerType;
use mongodb::bson::{Bson, Document, doc};
use mongodb::change_stream::ChangeStream;
use mongodb::event::EventHandler;
use mongodb::event::sdam::SdamEvent;
use scheduler_core::StoreContext;
use scheduler_core::store::wake_feed::{Backoff, keep_listening};
use tokio::sync::watch;

use crate::records::{MongoRecords, field};

/// The first and the longest pause between attempts to open the stream again.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(10),
};

/// How long the server holds one `getMore` of the stream open when nothing changes: each
/// `getMore` answers within it, so one that takes much longer means a lost connection.
const MAX_AWAIT: Duration = Duration::from_secs(1);

/// Whether the server that answered `hello` has change streams: a replica set member
/// (`setName`) or a sharded cluster's router (`msg: "isdbgrid"`). A standalone server has
/// none.
fn has_change_streams(hello: &Document) -> bool {
    let set_name = matches!(hello.get("setName"), Some(Bson::String(name)) if !name.is_empty());
    let router = matches!(hello.get("msg"), Some(Bson::String(msg)) if msg == "isdbgrid");
    set_name || router
}

/// The longest wait for the driver's description of the server once a call has reached it
/// (then asked with `hello` instead).
const DESCRIBED_WAIT: Duration = Duration::from_secs(1);

/// Whether a server the driver's monitor described has change streams, as
/// [`has_change_streams`] judges its `hello`: a router, or a replica set member (`setName`).
/// `None` while the type is not known from the description: not yet checked, or behind a
/// load balancer (which the driver does not monitor).
fn described_with_change_streams(server_type: ServerType, set_name: Option<&str>) -> Option<bool> {
    match server_type {
        ServerType::Unknown | ServerType::LoadBalancer => None,
        ServerType::Mongos => Some(true),
        _ => Some(set_name.is_some_and(|name| !name.is_empty())),
    }
}

/// What the driver's monitor learned of the server from its own `hello`, so that `start` need
/// not ask again on the way to the first run: `None` until the monitor has described a
/// server, then whether it has change streams (`None` inside when the description cannot
/// say).
#[derive(Debug, Clone)]
pub(crate) struct Described(watch::Sender<Option<Option<bool>>>);

impl Default for Described {
    fn default() -> Self {
        Described(watch::Sender::new(None))
    }
}

impl Described {
    /// The handler of the client's monitoring events that keeps this up to date.
    pub(crate) fn handler(&self) -> EventHandler<SdamEvent> {
        let known = self.0.clone();
        EventHandler::callback(move |event| {
            if let SdamEvent::ServerDescriptionChanged(changed) = event {
                let server = &changed.new_description;
                if server.server_type() != ServerType::Unknown {
                    known.send_replace(Some(described_with_change_streams(
                        server.server_type(),
                        server.replica_set_name(),
                    )));
                }
            }
        })
    }

    /// Whether the server has change streams, as described, waiting at most `bound` for the
    /// description. Once a call has reached the server the driver has described it and only
    /// the delivery of the event is awaited, which is at once.
    async fn change_streams(&self, bound: Duration) -> Option<bool> {
        let mut known = self.0.subscribe();
        let described = tokio::time::timeout(bound, known.wait_for(Option::is_some)).await;
        match described {
            Ok(Ok(value)) => value.flatten(),
            _ => None,
        }
    }
}

/// The events that may make a job due earlier: inserts and replacements, and updates that
/// write the run time. Claims, releases and runs in flight leave `next_run_time` alone, so
/// they wake no one.
fn wake_pipeline() -> Vec<Document> {
    let run_time_written = format!("updateDescription.updatedFields.{}", field::NEXT_RUN_TIME);
    vec![doc! { "$match": { "$or": [
        { "operationType": { "$in": ["insert", "replace"] } },
        { "operationType": "update", run_time_written: { "$exists": true } },
    ] } }]
}

/// A change stream of wake-up events; the events' contents are never read.
type Stream = ChangeStream<Document>;

/// Opens the stream within `timeout`.
async fn open(coll: &Collection<Document>, timeout: Duration) -> Result<Stream, String> {
    let watch = coll
        .watch()
        .pipeline(wake_pipeline())
        .max_await_time(MAX_AWAIT);
    match tokio::time::timeout(timeout, watch).await {
        Ok(Ok(stream)) => Ok(stream.with_type::<Document>()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Wakes `ctx` on every event of `first` (a stream opened by the caller, or none), and when
/// the stream is lost opens it again ([`keep_listening`]). Runs until aborted at the store's
/// shutdown.
async fn listen(
    coll: Collection<Document>,
    ctx: StoreContext,
    first: Option<Stream>,
    timeout: Duration,
    redacted_url: String,
) {
    keep_listening(
        &ctx,
        first,
        BACKOFF,
        || open(&coll, timeout),
        move |live, ctx| Box::pin(deliver(live, ctx, timeout)),
        |why| {
            tracing::warn!(
                url = %redacted_url,
                collection = %coll.name(),
                reason = %why,
                "the MongoDB change stream was lost; opening it again (jobs changed by other \
                 schedulers meanwhile are seen at the next poll)"
            );
        },
        |e| tracing::debug!(url = %redacted_url, error = %e, "opening the change stream failed"),
    )
    .await;
}

/// Wakes `ctx` per event until the stream ends, fails, or a `getMore` hangs past
/// [`MAX_AWAIT`] plus `timeout`; answers why it stopped.
async fn deliver(live: &mut Stream, ctx: &StoreContext, timeout: Duration) -> String {
    loop {
        match tokio::time::timeout(MAX_AWAIT + timeout, live.next_if_any()).await {
            Ok(Ok(Some(_event))) => ctx.wake(),
            Ok(Ok(None)) if live.is_alive() => {}
            Ok(Ok(None)) => return "the server closed it".to_owned(),
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return format!("no answer within {:?}", MAX_AWAIT + timeout),
        }
    }
}

impl Drop for MongoRecords {
    fn drop(&mut self) {
        // The task holds the context (and through it the scheduler's wake-up); it must not
        // outlive the store.
        self.stop_watcher();
    }
}

impl MongoRecords {
    /// Learns whether the server has change streams: from the driver's monitor (`described`)
    /// once it has checked the server, else by asking (`hello`, or `isMaster` on servers older
    /// than 4.4.2, which answers the same fields). When it has, opens one on the jobs
    /// collection (here, so that writes after `start` returns wake this store) and leaves a
    /// task waking `ctx` on it, reopening it when lost. A server that answers neither is taken
    /// for one without change streams: the store polls.
    pub(crate) async fn start_watcher(
        &self,
        coll: &Collection<Document>,
        ctx: &StoreContext,
        described: &Described,
    ) {
        self.stop_watcher();
        let streams = match described.change_streams(DESCRIBED_WAIT).await {
            Some(streams) => streams,
            None => self.ask_change_streams(coll).await,
        };
        self.change_streams.store(streams, Ordering::Release);
        if !streams {
            tracing::debug!(
                url = self.redacted_url(),
                "a standalone MongoDB server has no change streams: other schedulers' changes \
                 are seen by polling, within max_wait"
            );
            return;
        }
        let timeout = self.settings.call_timeout;
        let first = match open(coll, timeout).await {
            Ok(stream) => Some(stream),
            Err(e) => {
                tracing::warn!(
                    url = self.redacted_url(),
                    error = %e,
                    "cannot open the MongoDB change stream yet; retrying in the background"
                );
                None
            }
        };
        let task = tokio::spawn(listen(
            coll.clone(),
            ctx.clone(),
            first,
            timeout,
            self.redacted_url().to_owned(),
        ));
        *self.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    /// Whether the server's own answer to `hello` (or `isMaster`) shows change streams.
    async fn ask_change_streams(&self, coll: &Collection<Document>) -> bool {
        let admin = coll.client().database("admin");
        for command in ["hello", "isMaster"] {
            let asked = admin.run_command(doc! { command: 1 });
            match self.call("asking the server what it is", asked).await {
                Ok(hello) => return has_change_streams(&hello),
                Err(e) => tracing::debug!(command, error = %e, "the server did not answer"),
            }
        }
        false
    }

    pub(crate) fn stop_watcher(&self) {
        let task = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_replica_sets_and_routers_have_change_streams() {
        // nx-27017, and a standalone mongod: no `setName`, no `msg`.
        let standalone = doc! { "ok": 1, "isWritablePrimary": true, "maxWireVersion": 25 };
        assert!(!has_change_streams(&standalone));
        let primary = doc! { "ok": 1, "isWritablePrimary": true, "setName": "rs0" };
        assert!(has_change_streams(&primary));
        let secondary = doc! { "ok": 1, "secondary": true, "setName": "rs0" };
        assert!(has_change_streams(&secondary));
        let mongos = doc! { "ok": 1, "isWritablePrimary": true, "msg": "isdbgrid" };
        assert!(has_change_streams(&mongos));
        for odd in [
            doc! { "ok": 1, "setName": "" },
            doc! { "ok": 1, "setName": 1 },
            doc! { "ok": 1, "msg": "something else" },
        ] {
            assert!(!has_change_streams(&odd), "{odd}");
        }
    }

    #[test]
    fn the_monitors_description_decides_as_hello_would_or_leaves_it_to_hello() {
        let described = described_with_change_streams;
        assert_eq!(described(ServerType::Standalone, None), Some(false));
        assert_eq!(described(ServerType::RsPrimary, Some("rs0")), Some(true));
        assert_eq!(described(ServerType::RsSecondary, Some("rs0")), Some(true));
        assert_eq!(described(ServerType::Mongos, None), Some(true));
        assert_eq!(described(ServerType::RsGhost, None), Some(false));
        assert_eq!(described(ServerType::RsPrimary, Some("")), Some(false));
        // Not checked yet, or not monitored: `start` asks.
        assert_eq!(described(ServerType::Unknown, None), None);
        assert_eq!(described(ServerType::LoadBalancer, None), None);
    }
}

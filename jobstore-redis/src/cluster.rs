//! Several schedulers on one store: claims on due rows, heartbeats, runs in flight.
//!
//! * `{prefix}claims`, a hash: job id -> `node|token|until µs`. Taken by [`scripts::CLAIM`]
//!   over the run-time sorted set; cleared by every write of the row and by
//!   [`release_claims`](RedisRecords::release_claim_ids). A claim is not a write: the
//!   revision stays.
//! * `{prefix}nodes`, a hash: node id -> `last seen µs|info`.
//! * `{prefix}inflight`, a hash: `run µs|job id` -> node, written by the fire commit's script
//!   (so an entry exists exactly when the commit applied) and removed when the run ends.
//!
//! The micros come first in the compound values because they cannot contain `|`; ids and the
//! info may.

use redis::AsyncCommands;
use scheduler_core::Result;
use scheduler_core::chrono::{DateTime, Utc};
use scheduler_core::store::{Claim, InflightRun, NodeRecord, StoredRecord, from_micros, to_micros};

use crate::records::{MAX_EXACT_MICROS, RedisRecords, due_rows, text};
use crate::scripts;

/// Rows the claim script reads from the sorted set at a time.
const CLAIM_PAGE: usize = 500;

impl RedisRecords {
    pub(crate) async fn claim_rows(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &Claim,
    ) -> Result<Vec<StoredRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = to_micros(now)
            .clamp(-MAX_EXACT_MICROS, MAX_EXACT_MICROS)
            .to_string();
        // Counted as doubles in Lua: exact far beyond any batch.
        let limit = limit.min(1 << 53);
        let page = limit.min(CLAIM_PAGE).to_string();
        let limit = limit.to_string();
        let until = to_micros(claim.until).to_string();
        let flat: Vec<Vec<u8>> = self
            .script(
                "claim due",
                &scripts::CLAIM,
                &[
                    now.as_bytes(),
                    limit.as_bytes(),
                    page.as_bytes(),
                    claim.node.as_bytes(),
                    claim.token.as_bytes(),
                    until.as_bytes(),
                ],
            )
            .await?;
        Ok(due_rows(flat))
    }

    pub(crate) async fn release_claim_ids(&self, node: &str, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(1_000) {
            let mut args: Vec<&[u8]> = Vec::with_capacity(chunk.len() + 1);
            args.push(node.as_bytes());
            args.extend(chunk.iter().map(|id| id.as_bytes()));
            let _: i64 = self
                .script("release claims", &scripts::RELEASE, &args)
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn write_heartbeat(&self, node: &NodeRecord) -> Result<()> {
        let value = format!("{}|{}", to_micros(node.last_seen), node.info);
        let key = &self.keys().nodes;
        let _: i64 = self
            .call("heartbeat", |mut c| {
                let value = value.clone();
                async move { c.hset(key, &node.id, value).await }
            })
            .await?;
        Ok(())
    }

    /// Keeps this node's first heartbeat since the start, to be sent beside the first read of
    /// due rows (see `RecordStore::join`): the start's first runs then wait for one round
    /// trip less.
    pub(crate) fn keep_joined(&self, node: &NodeRecord) {
        *self.joined() = Some(node.clone());
    }

    /// `read` (of due rows, or nothing), with the kept first heartbeat, if any, sent beside it
    /// on the connection. Both are answered before this returns, so the heartbeat is written before
    /// the fire commit that follows records any run in flight; if it fails, it is kept and
    /// the read fails too.
    pub(crate) async fn with_joined<T>(&self, read: impl Future<Output = Result<T>>) -> Result<T> {
        let Some(node) = self.joined().take() else {
            return read.await;
        };
        let (written, read) = tokio::join!(self.write_heartbeat(&node), read);
        if let Err(e) = written {
            self.joined().get_or_insert(node);
            return Err(e);
        }
        read
    }

    /// Writes the kept first heartbeat, if any: before anything that reads or records runs
    /// in flight, so that this node is listed by then.
    pub(crate) async fn write_joined(&self) -> Result<()> {
        self.with_joined(std::future::ready(Ok(()))).await
    }

    pub(crate) async fn node_records(&self) -> Result<Vec<NodeRecord>> {
        let key = &self.keys().nodes;
        let all: Vec<(Vec<u8>, Vec<u8>)> = self
            .call("nodes", |mut c| async move { c.hgetall(key).await })
            .await?;
        let mut nodes = Vec::with_capacity(all.len());
        for (id, value) in all {
            let id = text(id);
            let value = text(value);
            let parsed = value
                .split_once('|')
                .and_then(|(micros, info)| Some((micros.parse::<i64>().ok()?, info)))
                .and_then(|(micros, info)| Some((from_micros(micros).ok()?, info)));
            match parsed {
                Some((last_seen, info)) => nodes.push(NodeRecord {
                    id,
                    last_seen,
                    info: info.to_owned(),
                }),
                // Not written by this store: shown to no one, removed by no one.
                None => tracing::warn!(
                    node = %id,
                    key = %key,
                    "a node heartbeat that is not `micros|info` is ignored"
                ),
            }
        }
        Ok(nodes)
    }

    pub(crate) async fn remove_node_if(&self, id: &str, last_seen: DateTime<Utc>) -> Result<bool> {
        let micros = to_micros(last_seen).to_string();
        let removed: i64 = self
            .script(
                "remove node",
                &scripts::REMOVE_NODE,
                &[id.as_bytes(), micros.as_bytes()],
            )
            .await?;
        Ok(removed == 1)
    }

    pub(crate) async fn finish_inflight(
        &self,
        job_id: &str,
        run_time: DateTime<Utc>,
    ) -> Result<()> {
        let field = format!("{}|{job_id}", to_micros(run_time));
        let key = &self.keys().inflight;
        let _: i64 = self
            .call("finish run", |mut c| {
                let field = field.clone();
                async move { c.hdel(key, field).await }
            })
            .await?;
        Ok(())
    }

    pub(crate) async fn adopt_inflight(&self, from: &str, to: &str) -> Result<Vec<InflightRun>> {
        let fields: Vec<Vec<u8>> = self
            .script(
                "adopt runs",
                &scripts::ADOPT,
                &[from.as_bytes(), to.as_bytes()],
            )
            .await?;
        Ok(fields
            .into_iter()
            .filter_map(|field| inflight_run(text(field), to.to_owned()))
            .collect())
    }

    pub(crate) async fn all_inflight(&self) -> Result<Vec<InflightRun>> {
        let key = &self.keys().inflight;
        let all: Vec<(Vec<u8>, Vec<u8>)> = self
            .call(
                "in-flight runs",
                |mut c| async move { c.hgetall(key).await },
            )
            .await?;
        Ok(all
            .into_iter()
            .filter_map(|(field, node)| inflight_run(text(field), text(node)))
            .collect())
    }
}

/// An entry of the in-flight hash: its field `run µs|job id` and its node; `None` (logged)
/// for a field this store did not write.
fn inflight_run(field: String, node: String) -> Option<InflightRun> {
    let parsed = field
        .split_once('|')
        .and_then(|(micros, job_id)| Some((micros.parse::<i64>().ok()?, job_id)))
        .and_then(|(micros, job_id)| Some((from_micros(micros).ok()?, job_id)));
    match parsed {
        Some((run_time, job_id)) => Some(InflightRun {
            job_id: job_id.to_owned(),
            run_time,
            node,
        }),
        None => {
            tracing::warn!(
                entry = %field,
                node = %node,
                "an in-flight run entry that is not `micros|job id` is ignored"
            );
            None
        }
    }
}

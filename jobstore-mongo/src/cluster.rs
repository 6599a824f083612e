//! Several schedulers on one collection: claims on due jobs, heartbeats, runs in flight.
//! Every operation is a single-document write or a plain query (no transactions), and means
//! the same on a real MongoDB as on the test server. Wake-ups are `watch.rs`'s.
//!
//! * Claims are three fields of the job's document (`claimed_by`, `claim_token`,
//!   `claim_until` in integer µs), absent when unclaimed. Every write of the job unsets them;
//!   a claim leaves the revision alone.
//! * Heartbeats are documents `{_id: node, last_seen: µs, info}` in `<collection>_nodes`.
//! * Runs in flight are an embedded document `inflight: {"r<run µs>": node}` on the job's
//!   document, set by the fire commit's own conditional update (so an entry exists exactly
//!   when the commit applied) and unset when the run ends. Keys are fields, not array
//!   elements, so that each entry is read and moved by a conditional update of its own path.
//! * A fire commit with an instance limit reads the job's entries and the listed nodes, and
//!   writes only if the job is still at its revision and every entry it read is unchanged
//!   (entries are added only by commits, which change the revision): the count it read is
//!   then the count at the write. `$expr` would count in the filter itself, but the test
//!   server evaluates it wrongly when combined with `_id`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};
use scheduler_core::Result;
use scheduler_core::store::{
    Claim, FireAnswer, FireAnswers, InflightRun, NodeRecord, RecordFireCommit, StoredRecord,
    from_micros, to_micros,
};

use crate::document::{
    conditional, from_document, id_of, integer, micros_bson, scheduled_until, write_update,
};
use crate::records::{MongoRecords, field};

/// Reads of a job's runs in flight per limited fire commit before the fire is refused instead:
/// each further read follows a run that finished (or was adopted) meanwhile.
const LIMITED_ROUNDS: usize = 4;

/// Rounds of "find candidates, claim those still claimable" per call: a round only falls
/// short when another node claimed some candidates in between.
const CLAIM_ROUNDS: usize = 3;

/// The fields of a heartbeat document.
const LAST_SEEN: &str = "last_seen";
const INFO: &str = "info";

/// The `$unset` of a job's claim.
pub(crate) fn no_claim() -> Document {
    doc! { field::CLAIMED_BY: "", field::CLAIM_TOKEN: "", field::CLAIM_UNTIL: "" }
}

/// The path of the in-flight entry of the run at `run_time`.
pub(crate) fn inflight_path(run_time: DateTime<Utc>) -> String {
    format!("{}.r{}", field::INFLIGHT, to_micros(run_time))
}

/// Documents claimable by `node` at `now`: unclaimed, claimed by `node`, or with a claim that
/// has lapsed. `{f: null}` matches a missing field on every server.
fn claimable(node: &str, now: i64) -> Document {
    doc! { "$or": [
        { field::CLAIM_UNTIL: Bson::Null },
        { field::CLAIM_UNTIL: { "$lte": now } },
        { field::CLAIMED_BY: node },
    ] }
}

/// Whether `doc` is claimable by `node` at `now` as [`claimable`] would match it (a missing
/// or null `claim_until`, an integer one at or before `now`, or `node`'s own claim). Only
/// chooses what to try: the claim's own filter decides.
fn claimable_here(doc: &Document, node: &str, now: i64) -> bool {
    let lapsed = match doc.get(field::CLAIM_UNTIL) {
        None | Some(Bson::Null) => true,
        Some(until) => integer(until).is_some_and(|until| until <= now),
    };
    lapsed || matches!(doc.get(field::CLAIMED_BY), Some(Bson::String(by)) if by == node)
}

impl MongoRecords {
    /// The heartbeat collection, `<collection>_nodes` beside the jobs.
    fn nodes_coll(&self) -> Result<Collection<Document>> {
        let jobs = self.coll()?;
        Ok(jobs
            .client()
            .database(self.database())
            .collection(&format!("{}_nodes", self.collection())))
    }

    /// Finds the first due, claimable documents in run-time order, claims those still
    /// claimable with one `update_many` (the condition checked again per document, so of two
    /// nodes racing for a document only one matches), and answers the claimed documents.
    ///
    /// The first round asks for due documents only and judges claimability here: nx-27017
    /// evaluates an `$or` outside SQLite, 7 ms for 500 due documents against 1.3 ms without
    /// (most of a restart's first claim). Its page holds others' claims only where several
    /// nodes share a backlog; the later rounds then ask with the claim condition. The
    /// candidates are read whole, so when every claim applied they are the answer; a claim
    /// that fell short reads back the documents holding this call's token.
    pub(crate) async fn claim_documents(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        claim: &Claim,
    ) -> Result<Vec<StoredRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let coll = self.coll()?;
        let now_micros = to_micros(now);
        let until = micros_bson(Some(claim.until));
        let mut passed_over: Vec<Bson> = Vec::new();
        // Every document this call tried to claim, and those known claimed as read.
        let mut tried: Vec<Bson> = Vec::new();
        let mut claimed_docs: Vec<Document> = Vec::new();
        let mut claimed = 0;
        let mut read_back = false;
        for round in 0..CLAIM_ROUNDS {
            let asked = limit - claimed;
            let mut and = Document::new();
            if round > 0 {
                // One `$and`: nx-27017 ignores the conditions after an `$or` in some calls.
                and = doc! { "$and": [
                    { field::ID: { "$nin": passed_over.clone() } },
                    claimable(&claim.node, now_micros),
                ] };
            }
            let page = self
                .ordered(
                    "finding due jobs to claim",
                    scheduled_until(now),
                    and,
                    asked,
                    None,
                )
                .await?;
            if page.is_empty() {
                break;
            }
            let short = page.len() < asked;
            passed_over.extend(page.iter().filter_map(|d| d.get(field::ID).cloned()));
            let candidates: Vec<Document> = page
                .into_iter()
                .filter(|d| round > 0 || claimable_here(d, &claim.node, now_micros))
                .collect();
            if !candidates.is_empty() {
                let ids: Vec<Bson> = candidates
                    .iter()
                    .filter_map(|d| d.get(field::ID).cloned())
                    .collect();
                // One `$and`: nx-27017's update_many ignores the conditions after an `$or`.
                let filter = doc! { "$and": [
                    { field::ID: { "$in": ids.clone() } },
                    scheduled_until(now),
                    claimable(&claim.node, now_micros),
                ] };
                let update = doc! { "$set": {
                    field::CLAIMED_BY: claim.node.as_str(),
                    field::CLAIM_TOKEN: claim.token.as_str(),
                    field::CLAIM_UNTIL: until.clone(),
                } };
                let result = self
                    .call("claiming due jobs", coll.update_many(filter, update))
                    .await?;
                let matched = usize::try_from(result.matched_count).unwrap_or(usize::MAX);
                claimed += matched;
                // All matched: exactly these documents were claimed (the filter names them),
                // as read just before; a write since then is as one just after the claim.
                if matched == ids.len() {
                    claimed_docs.extend(candidates);
                } else {
                    read_back = true;
                }
                tried.extend(ids);
            }
            if short || claimed >= limit {
                break;
            }
        }
        if read_back {
            let filter = doc! {
                field::ID: { "$in": tried },
                field::CLAIM_TOKEN: claim.token.as_str(),
            };
            claimed_docs = self
                .find("reading claimed jobs", filter, None, None, None)
                .await?;
        }
        let mut rows: Vec<StoredRecord> = claimed_docs.iter().map(from_document).collect();
        rows.sort_by(|a, b| (a.next_run_time, &a.id).cmp(&(b.next_run_time, &b.id)));
        rows.truncate(limit);
        Ok(rows)
    }

    pub(crate) async fn release_documents(&self, node: &str, ids: &[String]) -> Result<()> {
        let coll = self.coll()?;
        for chunk in ids.chunks(1_000) {
            let filter = doc! { field::ID: { "$in": chunk.to_vec() }, field::CLAIMED_BY: node };
            let update = doc! { "$unset": no_claim() };
            self.call("releasing claims", coll.update_many(filter, update))
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn write_heartbeat(&self, node: &NodeRecord) -> Result<()> {
        let coll = self.nodes_coll()?;
        let doc = doc! {
            field::ID: node.id.as_str(),
            LAST_SEEN: to_micros(node.last_seen),
            INFO: node.info.as_str(),
        };
        // `_id` in the replacement: some servers otherwise insert a new id.
        self.call(
            "writing a heartbeat",
            coll.replace_one(doc! { field::ID: node.id.as_str() }, doc)
                .upsert(true),
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn node_documents(&self) -> Result<Vec<NodeRecord>> {
        let coll = self.nodes_coll()?;
        let docs = self
            .call("reading heartbeats", async move {
                let mut cursor = coll.find(Document::new()).await?;
                let mut docs = Vec::new();
                while cursor.advance().await? {
                    docs.push(Document::try_from(cursor.current())?);
                }
                Ok(docs)
            })
            .await?;
        let mut nodes = Vec::with_capacity(docs.len());
        for doc in docs {
            let last_seen = doc
                .get(LAST_SEEN)
                .and_then(integer)
                .and_then(|micros| from_micros(micros).ok());
            match (last_seen, doc.get(INFO)) {
                (Some(last_seen), Some(Bson::String(info))) => nodes.push(NodeRecord {
                    id: id_of(&doc),
                    last_seen,
                    info: info.clone(),
                }),
                _ => tracing::warn!(
                    node = %id_of(&doc),
                    "a heartbeat document without integer last_seen and string info is ignored"
                ),
            }
        }
        Ok(nodes)
    }

    pub(crate) async fn remove_node_if(&self, id: &str, last_seen: DateTime<Utc>) -> Result<bool> {
        let coll = self.nodes_coll()?;
        let filter = doc! { field::ID: id, LAST_SEEN: to_micros(last_seen) };
        let result = self
            .call("removing a node", coll.delete_one(filter))
            .await?;
        Ok(result.deleted_count == 1)
    }

    pub(crate) async fn finish_inflight(
        &self,
        job_id: &str,
        run_time: DateTime<Utc>,
    ) -> Result<()> {
        let coll = self.coll()?;
        let update = doc! { "$unset": { inflight_path(run_time): "" } };
        self.call(
            "finishing a run",
            coll.update_one(doc! { field::ID: job_id }, update),
        )
        .await?;
        Ok(())
    }

    /// The documents with runs in flight, as (job id, run time, node) entries.
    async fn inflight_entries(&self) -> Result<Vec<InflightRun>> {
        let filter = doc! { field::INFLIGHT: { "$exists": true } };
        let projection = doc! { field::ID: 1, field::INFLIGHT: 1 };
        let docs = self
            .find(
                "reading runs in flight",
                filter,
                None,
                None,
                Some(projection),
            )
            .await?;
        let mut entries = Vec::new();
        for doc in &docs {
            let Some(Bson::Document(runs)) = doc.get(field::INFLIGHT) else {
                continue;
            };
            for (key, node) in runs {
                let run_time = key
                    .strip_prefix('r')
                    .and_then(|micros| micros.parse::<i64>().ok())
                    .and_then(|micros| from_micros(micros).ok());
                match (run_time, node) {
                    (Some(run_time), Bson::String(node)) => entries.push(InflightRun {
                        job_id: id_of(doc),
                        run_time,
                        node: node.clone(),
                    }),
                    _ => tracing::warn!(
                        job = %id_of(doc),
                        entry = %key,
                        "an in-flight entry that is not `r<micros>: node` is ignored"
                    ),
                }
            }
        }
        Ok(entries)
    }

    /// Moves each entry of `from` with an update conditional on the entry still naming
    /// `from`: of several adopters, exactly one matches each entry.
    pub(crate) async fn adopt_inflight(&self, from: &str, to: &str) -> Result<Vec<InflightRun>> {
        let coll = self.coll()?;
        let mut adopted = Vec::new();
        for entry in self.inflight_entries().await? {
            if entry.node != from {
                continue;
            }
            let path = inflight_path(entry.run_time);
            let filter = doc! { field::ID: entry.job_id.as_str(), path.as_str(): from };
            let update = doc! { "$set": { path.as_str(): to } };
            let result = self
                .call("adopting a run", coll.update_one(filter, update))
                .await?;
            if result.matched_count == 1 {
                adopted.push(InflightRun {
                    node: to.to_owned(),
                    ..entry
                });
            }
        }
        Ok(adopted)
    }

    pub(crate) async fn all_inflight(&self) -> Result<Vec<InflightRun>> {
        self.inflight_entries().await
    }

    /// Commits those of `commits` that carry an instance limit, one after another (see the
    /// module docs), adding their answers.
    pub(crate) async fn commit_limited(
        &self,
        commits: &[RecordFireCommit],
        answers: &mut FireAnswers,
    ) -> Result<()> {
        let limited: Vec<&RecordFireCommit> = commits
            .iter()
            .filter(|c| c.max_inflight.is_some())
            .collect();
        if limited.is_empty() {
            return Ok(());
        }
        let listed: HashSet<String> = self
            .node_documents()
            .await?
            .into_iter()
            .map(|n| n.id)
            .collect();
        for commit in limited {
            let answer = self.commit_below_limit(commit, &listed).await?;
            answers.insert(commit.id.clone(), answer);
        }
        Ok(())
    }

    async fn commit_below_limit(
        &self,
        commit: &RecordFireCommit,
        listed: &HashSet<String>,
    ) -> Result<FireAnswer> {
        let coll = self.coll()?;
        let limit = commit.max_inflight.map_or(usize::MAX, |n| n as usize);
        let at_revision = conditional(&commit.id, commit.expected_revision)?;
        for _ in 0..LIMITED_ROUNDS {
            let read = coll
                .find_one(at_revision.clone())
                .projection(doc! { field::INFLIGHT: 1 });
            let Some(job) = self.call("reading a job's runs in flight", read).await? else {
                return Ok(FireAnswer::Stale);
            };
            let runs = match job.get(field::INFLIGHT) {
                Some(Bson::Document(runs)) => runs.clone(),
                _ => Document::new(),
            };
            let live = runs
                .values()
                .filter(|node| matches!(node, Bson::String(n) if listed.contains(n)))
                .count();
            if live >= limit {
                break;
            }
            let mut unchanged = at_revision.clone();
            for (key, node) in &runs {
                unchanged.insert(format!("{}.{key}", field::INFLIGHT), node.clone());
            }
            if self
                .apply_fire(unchanged, commit, commit.inflight.as_ref())
                .await?
            {
                return Ok(FireAnswer::Committed);
            }
        }
        // At the limit (or the entries kept changing): the schedule still moves on.
        Ok(if self.apply_fire(at_revision, commit, None).await? {
            FireAnswer::Refused
        } else {
            FireAnswer::Stale
        })
    }

    /// Writes `commit` where `filter` matches, recording `inflight`; answers whether it did.
    async fn apply_fire(
        &self,
        filter: Document,
        commit: &RecordFireCommit,
        inflight: Option<&(String, Vec<DateTime<Utc>>)>,
    ) -> Result<bool> {
        let coll = self.coll()?;
        Ok(match &commit.write {
            Some(write) => {
                let update = write_update(write, inflight)?;
                let result = self
                    .call("committing a fire", coll.update_one(filter, update))
                    .await?;
                result.matched_count == 1
            }
            None => {
                let result = self
                    .call("committing a fire", coll.delete_one(filter))
                    .await?;
                result.deleted_count == 1
            }
        })
    }
}

//! Several schedulers on one store: claims on due rows, heartbeats, in-flight runs and
//! wake-ups, called at the record level on two handles of one namespace. Each case passes at
//! once for a store whose capabilities do not have `cluster` (it does not claim to share).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::store::{Claim, DynRecordStore, NodeRecord, RecordFireCommit};
use crate::testkit::RawRecords;

use super::*;

/// Whether the store under test declares the cluster contract; the cases pass otherwise.
fn clustered(f: &Fixture) -> bool {
    f.store().capabilities().cluster
}

/// The two handles: the fixture's record store, and a second handle's raw rows (another
/// process).
async fn two_handles(
    f: &Fixture,
) -> anyhow::Result<(
    &dyn DynRecordStore,
    Arc<dyn DynJobStore>,
    Arc<dyn RawRecords>,
)> {
    let (other, other_raw) = f.second_raw(|| ()).await?;
    Ok((records(f.raw()?)?, other, other_raw))
}

/// The record store below a raw handle, whose record-level contract the cases call.
fn records(raw: &dyn RawRecords) -> anyhow::Result<&dyn DynRecordStore> {
    raw.record_store()
        .context("this case needs the record store below the job store")
}

fn ids_of(rows: &[StoredRecord]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

fn claim(node: &str, until: DateTime<Utc>) -> Claim {
    Claim::new(node, until)
}

/// Adds one job per id, due at `at(0)`.
async fn add_due(f: &Fixture, ids: &[&str]) -> anyhow::Result<()> {
    let jobs: Vec<Job> = ids.iter().map(|id| f.job(id, Some(at(0)))).collect();
    add_all(f, &jobs).await
}

/// A row claimed by a node is not handed to another node while the claim holds; concurrent
/// claims from two handles and several nodes never hand out one row twice.
pub async fn cluster_claims_are_exclusive(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    add_due(f, &["a", "b", "c"]).await?;
    let first = a.claim_due(at(0), 2, &claim("n1", at(30))).await?;
    ensure!(
        ids_of(&first) == ["a", "b"],
        "n1 claimed {:?}",
        ids_of(&first)
    );
    let second = b.claim_due(at(0), 10, &claim("n2", at(30))).await?;
    ensure!(ids_of(&second) == ["c"], "n2 claimed {:?}", ids_of(&second));
    let third = b.claim_due(at(1), 10, &claim("n3", at(30))).await?;
    ensure!(
        third.is_empty(),
        "n3 claimed held rows {:?}",
        ids_of(&third)
    );

    // A race: four nodes on two handles claim small batches until nothing is left.
    let many: Vec<String> = (0..60).map(|i| format!("race{i:02}")).collect();
    let jobs: Vec<Job> = many.iter().map(|id| f.job(id, Some(at(-5)))).collect();
    add_all(f, &jobs).await?;
    let handles: [Arc<dyn RawRecords>; 2] = [f.second_raw(|| ()).await?.1, b_handle];
    let mut tasks = Vec::new();
    for n in 0..4 {
        let raw = handles[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let c = Claim::new(format!("racer{n}"), at(300));
                let rows = records(&*raw)?.claim_due(at(-5), 3, &c).await?;
                if rows.is_empty() {
                    return anyhow::Ok(got);
                }
                // Mark them fired for this node so the same node does not claim them again.
                for row in &rows {
                    let mut moved = row.clone();
                    moved.next_run_time = Some(at(3600));
                    moved.revision = row.revision + 1;
                    let commit = RecordFireCommit {
                        id: row.id.as_str().into(),
                        due_at: at(-5),
                        expected_revision: row.revision,
                        write: Some(moved),
                        inflight: None,
                        max_inflight: None,
                    };
                    let answers = records(&*raw)?
                        .commit_fires(std::slice::from_ref(&commit))
                        .await?;
                    // The claim held, so no other node can have fired the row in between.
                    anyhow::ensure!(
                        answers.get(&row.id) == Some(FireAnswer::Committed),
                        "{} was claimed by racer{n} but its fire commit was not applied",
                        row.id
                    );
                }
                got.extend(rows.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.extend(task.await??);
    }
    let distinct: BTreeSet<&String> = seen.iter().collect();
    ensure!(
        distinct.len() == seen.len(),
        "rows handed out twice: {} claims of {} rows",
        seen.len(),
        distinct.len()
    );
    ensure!(
        distinct.len() == many.len(),
        "{} of {} rows claimed",
        distinct.len(),
        many.len()
    );
    Ok(())
}

/// A claim lapses at its `until`: one microsecond before, another node is refused the row;
/// at `until`, it gets it.
pub async fn cluster_a_lapsed_claim_can_be_taken(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    add_due(f, &["j"]).await?;
    ensure!(a.claim_due(at(0), 10, &claim("n1", at(10))).await?.len() == 1);
    let before = at(10) - TimeDelta::microseconds(1);
    let early = b.claim_due(before, 10, &claim("n2", at(40))).await?;
    ensure!(
        early.is_empty(),
        "a held claim was taken: {:?}",
        ids_of(&early)
    );
    let late = b.claim_due(at(10), 10, &claim("n2", at(40))).await?;
    ensure!(ids_of(&late) == ["j"], "a lapsed claim was not taken");
    // Now n2 holds it: n1 is refused until it lapses again.
    let back = a.claim_due(at(20), 10, &claim("n1", at(50))).await?;
    ensure!(
        back.is_empty(),
        "n2's claim was taken by n1 {:?}",
        ids_of(&back)
    );
    Ok(())
}

/// A node may claim again the rows it holds (its earlier pass did not fire them).
pub async fn cluster_the_same_node_claims_again(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    add_due(f, &["a", "b"]).await?;
    ensure!(a.claim_due(at(0), 10, &claim("n1", at(30))).await?.len() == 2);
    // The same node through the other handle (a restarted process keeps its node id).
    let again = b.claim_due(at(1), 10, &claim("n1", at(30))).await?;
    ensure!(
        ids_of(&again) == ["a", "b"],
        "re-claimed {:?}",
        ids_of(&again)
    );
    Ok(())
}

/// `release_claims` frees the releasing node's claims only.
pub async fn cluster_release_frees_only_own_claims(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    add_due(f, &["a", "b"]).await?;
    ensure!(a.claim_due(at(0), 10, &claim("n1", at(30))).await?.len() == 2);
    let both = vec!["a".to_owned(), "b".to_owned()];
    // Another node's release leaves n1's claims alone.
    b.release_claims("n2", &both).await?;
    let none = b.claim_due(at(0), 10, &claim("n2", at(30))).await?;
    ensure!(none.is_empty(), "n2 freed n1's claims: {:?}", ids_of(&none));
    a.release_claims("n1", &both[..1]).await?;
    let freed = b.claim_due(at(0), 10, &claim("n2", at(30))).await?;
    ensure!(
        ids_of(&freed) == ["a"],
        "after release: {:?}",
        ids_of(&freed)
    );
    Ok(())
}

/// Every write of a row clears its claim: update, upsert, and an applied fire commit.
pub async fn cluster_a_write_clears_the_claim(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, other, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    add_due(f, &["updated", "upserted", "fired", "held"]).await?;
    ensure!(a.claim_due(at(0), 10, &claim("n1", at(300))).await?.len() == 4);
    let mut updated = fetch(&*other, "updated").await?;
    updated.set_next_run_time(Some(at(1)));
    other.update_job(updated).await?;
    other
        .upsert_job(f.job("upserted", Some(at(1))))
        .await
        .context("upsert")?;
    let fired = fetch(&*other, "fired").await?;
    let answers = other
        .commit_fires(&[commit(&fired, FireOutcome::Reschedule(at(1)))?])
        .await?;
    ensure!(answers.get("fired") == Some(FireAnswer::Committed));
    let taken = b.claim_due(at(1), 10, &claim("n2", at(300))).await?;
    ensure!(
        ids_of(&taken) == ["fired", "updated", "upserted"],
        "after the writes n2 claimed {:?} (\"held\" must stay n1's)",
        ids_of(&taken)
    );
    Ok(())
}

/// A claim is not a write: the revision stays, and a fire commit at the revision read before
/// the claim still applies.
pub async fn cluster_a_claim_does_not_change_the_revision(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, _) = two_handles(f).await?;
    add_due(f, &["j"]).await?;
    let before = fetch(f.store(), "j").await?;
    let claimed = a.claim_due(at(0), 10, &claim("n1", at(30))).await?;
    ensure!(claimed.len() == 1);
    ensure!(
        claimed[0].revision == before.revision(),
        "claim answered revision {} for {}",
        claimed[0].revision,
        before.revision()
    );
    let after = fetch(f.store(), "j").await?;
    ensure!(
        after.revision() == before.revision(),
        "the claim changed the revision"
    );
    let answers = f
        .store()
        .commit_fires(&[commit(&before, FireOutcome::Reschedule(at(60)))?])
        .await?;
    ensure!(answers.get("j") == Some(FireAnswer::Committed));
    Ok(())
}

/// Claims come in run-time order, ties by id, at most `limit`; paused and later rows never.
pub async fn cluster_claims_follow_run_time_order_and_limit(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, _) = two_handles(f).await?;
    add_all(
        f,
        &[
            f.job("late", Some(at(5))),
            f.job("b-tie", Some(at(-1))),
            f.job("a-tie", Some(at(-1))),
            f.job("first", Some(at(-9))),
            f.job("paused", None),
            f.job("future", Some(at(6))),
        ],
    )
    .await?;
    let two = a.claim_due(at(5), 2, &claim("n1", at(30))).await?;
    ensure!(
        ids_of(&two) == ["first", "a-tie"],
        "limit 2: {:?}",
        ids_of(&two)
    );
    let all = a.claim_due(at(5), 100, &claim("n1", at(30))).await?;
    ensure!(
        ids_of(&all) == ["first", "a-tie", "b-tie", "late"],
        "all due: {:?}",
        ids_of(&all)
    );
    ensure!(
        all[0].next_run_time == Some(at(-9)),
        "run time {:?}",
        all[0].next_run_time
    );
    Ok(())
}

/// `due_unclaimed` (where the backend answers it) reads the rows `claim_due` would take, in
/// run-time order up to the limit, leaving out those under another node's live claim, and
/// claims none of them.
pub async fn cluster_unclaimed_due_rows_claim_nothing(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    add_due(f, &["a", "b", "c", "d"]).await?;
    let held = a.claim_due(at(0), 1, &claim("n1", at(30))).await?;
    ensure!(ids_of(&held) == ["a"], "n1 claimed {:?}", ids_of(&held));
    let Some(first) = b.due_unclaimed(at(1), 2, "n2").await? else {
        return Ok(()); // the backend claims its first batch like any other
    };
    ensure!(ids_of(&first) == ["b", "c"], "n2 read {:?}", ids_of(&first));
    let own = b
        .due_unclaimed(at(1), 10, "n1")
        .await?
        .context("answered once, then not")?;
    ensure!(
        ids_of(&own) == ["a", "b", "c", "d"],
        "n1 read {:?} (its own claim hides nothing from it)",
        ids_of(&own)
    );
    let taken = a.claim_due(at(1), 10, &claim("n3", at(30))).await?;
    ensure!(
        ids_of(&taken) == ["b", "c", "d"],
        "after the reads n3 claimed {:?} (they must have claimed nothing)",
        ids_of(&taken)
    );
    Ok(())
}

/// A node's first heartbeat handed over with `join` is listed by every handle once a fire
/// commit of that node applied (with its runs in flight), or once the nodes are read; a
/// `heartbeat` written meanwhile replaces it.
pub async fn cluster_a_joined_node_is_listed(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    add_due(f, &["j"]).await?;
    let node = |id: &str, last_seen| NodeRecord {
        id: id.into(),
        last_seen,
        info: "{}".into(),
    };
    a.join(&node("n1", at(0))).await?;
    commit_inflight(a, "j", "n1", &[at(0)]).await?;
    ensure!(
        b.nodes().await? == [node("n1", at(0))],
        "after n1's first commit the nodes are {:?}",
        b.nodes().await?
    );
    ensure!(entries_of(b, "j").await? == [("n1".to_owned(), at(0))]);
    b.join(&node("n2", at(1))).await?;
    let mut listed = b.nodes().await?;
    listed.sort_by(|x, y| x.id.cmp(&y.id));
    ensure!(
        listed == [node("n1", at(0)), node("n2", at(1))],
        "with n2 joined the nodes are {listed:?}"
    );
    a.join(&node("n3", at(2))).await?;
    a.heartbeat(&node("n3", at(5))).await?;
    a.inflight_runs().await?;
    let n3: Vec<NodeRecord> = a
        .nodes()
        .await?
        .into_iter()
        .filter(|n| n.id == "n3")
        .collect();
    ensure!(
        n3 == [node("n3", at(5))],
        "n3 after its join and a later heartbeat: {n3:?}"
    );
    Ok(())
}

/// `heartbeat` upserts one row per node, which every handle lists with its info unchanged.
pub async fn cluster_heartbeats_upsert_and_list(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    let info = r#"{"host":"hôte-1","pid":42,"note":"\"quoted\""}"#.to_owned();
    let n1 = NodeRecord {
        id: "n1".into(),
        last_seen: at(0),
        info: info.clone(),
    };
    a.heartbeat(&n1).await?;
    b.heartbeat(&NodeRecord {
        id: "n2".into(),
        last_seen: at(1),
        info: "{}".into(),
    })
    .await?;
    let later = NodeRecord {
        last_seen: at(7) + TimeDelta::microseconds(3),
        ..n1.clone()
    };
    a.heartbeat(&later).await?;
    let mut nodes = b.nodes().await?;
    nodes.sort_by(|x, y| x.id.cmp(&y.id));
    ensure!(nodes.len() == 2, "nodes {nodes:?}");
    ensure!(nodes[0] == later, "n1 as listed: {:?}", nodes[0]);
    ensure!(nodes[0].info == info, "info changed: {}", nodes[0].info);
    ensure!(nodes[1].last_seen == at(1));
    Ok(())
}

/// `remove_node` removes a heartbeat only at the `last_seen` given, and exactly one of several
/// concurrent callers gets `true`.
pub async fn cluster_remove_node_is_conditional_and_exclusive(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    let node = NodeRecord {
        id: "dead".into(),
        last_seen: at(3),
        info: "{}".into(),
    };
    a.heartbeat(&node).await?;
    ensure!(
        !b.remove_node("dead", at(2)).await?,
        "removed at a last_seen it no longer has"
    );
    ensure!(b.nodes().await?.len() == 1, "the node was removed");
    ensure!(!b.remove_node("nobody", at(3)).await?);
    let handles: [Arc<dyn RawRecords>; 2] = [f.second_raw(|| ()).await?.1, b_handle.clone()];
    let mut tasks = Vec::new();
    for n in 0..8 {
        let raw = handles[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            anyhow::Ok(records(&*raw)?.remove_node("dead", at(3)).await?)
        }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await??);
    }
    ensure!(winners == 1, "{winners} callers removed the node");
    ensure!(b.nodes().await?.is_empty(), "the node is still listed");
    Ok(())
}

/// A fire commit with `inflight` records the runs on the node iff it applies.
pub async fn cluster_inflight_is_written_iff_the_commit_applies(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    add_due(f, &["applied", "stale"]).await?;
    let runs = vec![at(0), at(0) + TimeDelta::microseconds(1)];
    let mut commits = Vec::new();
    for id in ["applied", "stale"] {
        let row = a.get(id).await?.with_context(|| format!("{id} missing"))?;
        let mut next = row.clone();
        next.next_run_time = Some(at(60));
        next.revision = row.revision + 1;
        let expected = if id == "stale" {
            row.revision + 7
        } else {
            row.revision
        };
        commits.push(RecordFireCommit {
            id: id.into(),
            due_at: at(0),
            expected_revision: expected,
            write: Some(next),
            inflight: Some(("n1".into(), runs.clone())),
            max_inflight: None,
        });
    }
    let answers = a.commit_fires(&commits).await?;
    ensure!(answers.get("applied") == Some(FireAnswer::Committed));
    ensure!(answers.get("stale") == Some(FireAnswer::Stale));
    let mut inflight = b.inflight_runs().await?;
    inflight.sort_by_key(|r| r.run_time);
    ensure!(inflight.len() == 2, "in flight {inflight:?}");
    for (entry, t) in inflight.iter().zip(&runs) {
        ensure!(
            entry.job_id == "applied" && entry.node == "n1" && entry.run_time == *t,
            "entry {entry:?}"
        );
    }
    Ok(())
}

/// `finish_run` removes exactly one entry, whichever node holds it; a missing one is no error.
pub async fn cluster_finish_run_removes_one_entry(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    add_due(f, &["j"]).await?;
    commit_inflight(a, "j", "n1", &[at(0), at(60)]).await?;
    b.finish_run("j", at(0)).await?;
    b.finish_run("j", at(0)).await?;
    b.finish_run("other", at(60)).await?;
    let left = a.inflight_runs().await?;
    ensure!(
        left.len() == 1 && left[0].run_time == at(60),
        "left {left:?}"
    );
    Ok(())
}

/// `adopt_runs` moves a node's entries to the caller, each to exactly one of several racing
/// callers, and leaves other nodes' entries alone.
pub async fn cluster_adopt_runs_is_exclusive(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    add_due(f, &["j0", "j1", "j2", "j3", "mine"]).await?;
    for id in ["j0", "j1", "j2", "j3"] {
        commit_inflight(a, id, "dead", &[at(0), at(1)]).await?;
    }
    commit_inflight(a, "mine", "alive", &[at(0)]).await?;
    let handles: [Arc<dyn RawRecords>; 2] = [f.second_raw(|| ()).await?.1, b_handle.clone()];
    let mut tasks = Vec::new();
    for n in 0..4 {
        let raw = handles[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            anyhow::Ok(
                records(&*raw)?
                    .adopt_runs("dead", &format!("heir{n}"))
                    .await?,
            )
        }));
    }
    let mut adopted = Vec::new();
    for (n, task) in tasks.into_iter().enumerate() {
        for run in task.await?? {
            ensure!(
                run.node == format!("heir{n}"),
                "answered {run:?} to heir{n}"
            );
            adopted.push((run.job_id, run.run_time));
        }
    }
    adopted.sort();
    let distinct: BTreeSet<_> = adopted.iter().cloned().collect();
    ensure!(
        distinct.len() == adopted.len(),
        "an entry was adopted twice: {adopted:?}"
    );
    ensure!(adopted.len() == 8, "{} of 8 entries adopted", adopted.len());
    let now = b.inflight_runs().await?;
    ensure!(now.len() == 9, "entries now {now:?}");
    ensure!(
        now.iter().all(|r| r.node != "dead"),
        "entries left on the dead node"
    );
    ensure!(
        now.iter().any(|r| r.job_id == "mine" && r.node == "alive"),
        "another node's entry moved"
    );
    Ok(())
}

/// With `notifies`, a write through one handle wakes another handle's context.
pub async fn cluster_a_write_wakes_other_nodes(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) || !f.store().capabilities().notifies {
        return Ok(());
    }
    let woken = Arc::new(tokio::sync::Notify::new());
    let notify = woken.clone();
    let (other, _) = f.second_raw(move || notify.notify_one()).await?;
    // A handle may start listening at the end of its scheduler's first pass rather than at
    // its start (the SQL store does, to keep the listener's connection off the first run's
    // way): make that pass's last look.
    other.get_next_run_time().await?;
    // The listener may subscribe asynchronously: write until a wake-up arrives.
    for attempt in 0..20 {
        let job = f.job(&format!("w{attempt}"), Some(at(0)));
        f.store().add_job(job).await?;
        let waited = tokio::time::timeout(Duration::from_millis(500), woken.notified()).await;
        if waited.is_ok() {
            return Ok(());
        }
    }
    bail!("no wake-up reached the other handle within 10 s of writes")
}

/// Commits a fire of `id` (added by the case) with runs in flight on `node`.
async fn commit_inflight(
    raw: &dyn DynRecordStore,
    id: &str,
    node: &str,
    runs: &[DateTime<Utc>],
) -> anyhow::Result<()> {
    let answer = commit_limited(raw, id, node, runs, None).await?;
    ensure!(
        answer == FireAnswer::Committed,
        "commit of {id}: {answer:?}"
    );
    Ok(())
}

/// Commits a fire of `id` at its current revision, moving its run time a minute on, with
/// runs in flight on `node` admitted only below `max_inflight`; answers the store's answer.
async fn commit_limited(
    raw: &dyn DynRecordStore,
    id: &str,
    node: &str,
    runs: &[DateTime<Utc>],
    max_inflight: Option<u32>,
) -> anyhow::Result<FireAnswer> {
    let row = raw
        .get(id)
        .await?
        .with_context(|| format!("{id} missing"))?;
    let mut next = row.clone();
    next.revision = row.revision + 1;
    next.next_run_time = row.next_run_time.map(|t| t + TimeDelta::minutes(1));
    let commit = RecordFireCommit {
        id: id.into(),
        due_at: row.next_run_time.unwrap_or(at(0)),
        expected_revision: row.revision,
        write: Some(next),
        inflight: Some((node.into(), runs.to_vec())),
        max_inflight,
    };
    let answers = raw.commit_fires(std::slice::from_ref(&commit)).await?;
    answers
        .get(id)
        .with_context(|| format!("no answer for {id}"))
}

/// Writes a heartbeat for each of `nodes`.
async fn beat(raw: &dyn DynRecordStore, nodes: &[&str]) -> anyhow::Result<()> {
    for id in nodes {
        let node = NodeRecord {
            id: (*id).into(),
            last_seen: at(0),
            info: "{}".into(),
        };
        raw.heartbeat(&node).await?;
    }
    Ok(())
}

/// The job's in-flight entries as (node, run time), sorted.
async fn entries_of(
    raw: &dyn DynRecordStore,
    id: &str,
) -> anyhow::Result<Vec<(String, DateTime<Utc>)>> {
    let mut entries: Vec<_> = raw
        .inflight_runs()
        .await?
        .into_iter()
        .filter(|r| r.job_id == id)
        .map(|r| (r.node, r.run_time))
        .collect();
    entries.sort();
    Ok(entries)
}

/// `max_inflight` across two handles (nodes): the second node's fire is refused while the
/// first node's run is in flight (its schedule still moves on, and nothing is recorded), and
/// admitted once that run is finished; a stale commit stays stale.
pub async fn cluster_max_inflight_bounds_runs_across_nodes(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    beat(a, &["n1", "n2"]).await?;
    add_due(f, &["j", "other"]).await?;
    commit_inflight(a, "other", "n2", &[at(0)]).await?;
    let first = commit_limited(a, "j", "n1", &[at(0)], Some(1)).await?;
    ensure!(first == FireAnswer::Committed, "first fire: {first:?}");

    let before = b.get("j").await?.context("j missing")?;
    let second = commit_limited(b, "j", "n2", &[at(60)], Some(1)).await?;
    ensure!(second == FireAnswer::Refused, "second fire: {second:?}");
    let after = b.get("j").await?.context("j missing")?;
    ensure!(
        after.revision == before.revision + 1 && after.next_run_time == Some(at(120)),
        "a refused fire still moves the schedule on: {before:?} -> {after:?}"
    );
    let entries = entries_of(b, "j").await?;
    ensure!(
        entries == [("n1".to_owned(), at(0))],
        "a refused fire records nothing: {entries:?}"
    );
    let roomier = commit_limited(b, "j", "n2", &[at(120)], Some(2)).await?;
    ensure!(
        roomier == FireAnswer::Committed,
        "below a limit of 2: {roomier:?}"
    );
    b.finish_run("j", at(120)).await?;

    a.finish_run("j", at(0)).await?;
    let third = commit_limited(b, "j", "n2", &[at(180)], Some(1)).await?;
    ensure!(
        third == FireAnswer::Committed,
        "after finish_run: {third:?}"
    );
    let entries = entries_of(a, "j").await?;
    ensure!(
        entries == [("n2".to_owned(), at(180))],
        "entries {entries:?}"
    );

    let row = a.get("j").await?.context("j missing")?;
    let stale = RecordFireCommit {
        id: "j".into(),
        due_at: at(0),
        expected_revision: row.revision + 7,
        write: Some(row.clone()),
        inflight: Some(("n1".into(), vec![at(240)])),
        max_inflight: Some(5),
    };
    let answers = a.commit_fires(std::slice::from_ref(&stale)).await?;
    ensure!(answers.get("j") == Some(FireAnswer::Stale), "{answers:?}");
    ensure!(entries_of(a, "j").await?.len() == 1);
    Ok(())
}

/// Entries of a node whose heartbeat is gone ([`remove_node`](crate::store::ClusterStore::remove_node), or
/// never written) do not count against `max_inflight`: a dead node's runs do not block
/// the job for ever.
pub async fn cluster_max_inflight_ignores_removed_nodes(f: &Fixture) -> anyhow::Result<()> {
    if !clustered(f) {
        return Ok(());
    }
    let (a, _, b_handle) = two_handles(f).await?;
    let b = records(&*b_handle)?;
    beat(a, &["dead", "n1"]).await?;
    add_due(f, &["j"]).await?;
    commit_inflight(a, "j", "dead", &[at(0), at(1)]).await?;
    commit_inflight(a, "j", "unlisted", &[at(2)]).await?;
    let blocked = commit_limited(b, "j", "n1", &[at(60)], Some(2)).await?;
    ensure!(
        blocked == FireAnswer::Refused,
        "while dead is listed: {blocked:?}"
    );
    ensure!(b.remove_node("dead", at(0)).await?, "dead not removed");
    let admitted = commit_limited(b, "j", "n1", &[at(120)], Some(1)).await?;
    ensure!(
        admitted == FireAnswer::Committed,
        "after remove_node: {admitted:?}"
    );
    ensure!(entries_of(a, "j").await?.len() == 4);
    Ok(())
}

//! Group commit against a backend whose inserts wait for the test to let them through.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use super::*;
use crate::store::record::{RecordFireCommit, ScheduleEntry, fresh_revision};
use crate::store::{FireAnswers, StoreContext};
use crate::testkit::RecordMap;

/// The model backend, with every insert call waiting for a permit of `gate`, and the rows of
/// each call logged. `insert_many` adds its rows one by one and fails, adding none of the
/// rest, at an id starting with `bad`, as a backend refusing one row would.
#[derive(Debug)]
struct Gated {
    rows: RecordMap,
    gate: Semaphore,
    /// The rows of each insert call, in the order the calls began (1: `insert`).
    calls: Mutex<Vec<usize>>,
}

impl Gated {
    fn calls(&self) -> Vec<usize> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn pass(&self, rows: usize) -> Result<()> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rows);
        self.gate
            .acquire()
            .await
            .expect("the gate is never closed")
            .forget();
        Ok(())
    }
}

fn refused(id: &str) -> Error {
    Error::new(ErrorKind::Backend, format!("{id:?} is refused")).with_job_id(id)
}

impl RecordStore for Gated {
    async fn start(&self, ctx: &StoreContext) -> Result<()> {
        self.rows.start(ctx).await
    }
    async fn shutdown(&self) -> Result<()> {
        self.rows.shutdown().await
    }
    async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
        self.rows.get(id).await
    }
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<StoredRecord>> {
        self.rows.due(now, limit).await
    }
    async fn next_run_times(&self, limit: usize) -> Result<Vec<ScheduleEntry>> {
        self.rows.next_run_times(limit).await
    }
    async fn all(&self) -> Result<Vec<StoredRecord>> {
        self.rows.all().await
    }
    async fn insert(&self, record: StoredRecord) -> Result<bool> {
        self.pass(1).await?;
        if record.id.starts_with("bad") {
            return Err(refused(&record.id));
        }
        self.rows.insert(record).await
    }
    async fn insert_many(&self, records: Vec<StoredRecord>) -> Result<Vec<bool>> {
        self.pass(records.len()).await?;
        let mut added = Vec::with_capacity(records.len());
        for record in records {
            if record.id.starts_with("bad") {
                return Err(refused(&record.id));
            }
            added.push(self.rows.insert(record).await?);
        }
        Ok(added)
    }
    async fn upsert(&self, record: StoredRecord) -> Result<()> {
        self.rows.upsert(record).await
    }
    async fn update(&self, record: StoredRecord, expected_revision: u64) -> Result<bool> {
        self.rows.update(record, expected_revision).await
    }
    async fn remove(&self, id: &str) -> Result<bool> {
        self.rows.remove(id).await
    }
    async fn remove_all(&self) -> Result<()> {
        self.rows.remove_all().await
    }
    async fn commit_fires(&self, commits: &[RecordFireCommit]) -> Result<FireAnswers> {
        self.rows.commit_fires(commits).await
    }
}

type Fixture = Arc<(AddGroups, Gated)>;

fn fixture() -> Fixture {
    let gated = Gated {
        rows: RecordMap::new(),
        gate: Semaphore::new(0),
        calls: Mutex::default(),
    };
    Arc::new((AddGroups::new(), gated))
}

fn row(id: &str) -> StoredRecord {
    StoredRecord {
        id: id.to_owned(),
        next_run_time: None,
        revision: fresh_revision(),
        json: format!("{{\"id\":{id:?}}}"),
    }
}

/// Adds `row` from a task of its own; answers with the row's revision.
fn add(f: &Fixture, row: StoredRecord) -> JoinHandle<(u64, Result<bool>)> {
    let f = f.clone();
    tokio::spawn(async move {
        let revision = row.revision;
        (revision, f.0.insert(&f.1, row).await)
    })
}

/// Lets the other tasks run until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never: {what}");
}

fn queued(f: &Fixture) -> usize {
    f.0.queue().waiting.len()
}

/// Adds "a" and waits until its insert is in flight (held at the gate).
async fn first_in_flight(f: &Fixture) -> JoinHandle<(u64, Result<bool>)> {
    let first = add(f, row("a"));
    until("the first insert is in flight", || f.1.calls() == [1]).await;
    first
}

/// "a" in flight, then "b" and "c" queued behind it.
async fn a_then_b_and_c(f: &Fixture) -> [JoinHandle<(u64, Result<bool>)>; 3] {
    let first = first_in_flight(f).await;
    let b = queue_behind(f, "b").await;
    [first, b, queue_behind(f, "c").await]
}

/// Adds `id` and waits until it is queued (behind the others, in this order).
async fn queue_behind(f: &Fixture, id: &str) -> JoinHandle<(u64, Result<bool>)> {
    let before = queued(f);
    let task = add(f, row(id));
    until("queued", || queued(f) == before + 1).await;
    task
}

async fn stored(f: &Fixture) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> =
        f.1.all()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.revision))
            .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn a_lone_add_goes_at_once_with_a_single_insert() {
    let f = fixture();
    f.1.gate.add_permits(3);
    assert!(f.0.insert(&f.1, row("a")).await.unwrap());
    assert!(f.0.insert(&f.1, row("b")).await.unwrap());
    assert!(!f.0.insert(&f.1, row("a")).await.unwrap(), "a taken id");
    assert_eq!(f.1.calls(), [1, 1, 1]);
    assert!(!f.0.queue().busy);
}

#[tokio::test]
async fn adds_waiting_for_one_in_flight_go_as_one_group_each_answered() {
    let f = fixture();
    f.1.rows.insert(row("taken")).await.unwrap();
    let first = first_in_flight(&f).await;
    let mut waiting = Vec::new();
    for id in ["b", "c", "b", "taken", "d"] {
        waiting.push(queue_behind(&f, id).await);
    }
    f.1.gate.add_permits(2);
    let (a, answer) = first.await.unwrap();
    assert!(answer.unwrap());
    let mut answers = Vec::new();
    for task in waiting {
        answers.push(task.await.unwrap());
    }
    let added: Vec<bool> = answers.iter().map(|(_, a)| *a.as_ref().unwrap()).collect();
    assert_eq!(added, [true, true, false, false, true]);
    assert_eq!(f.1.calls(), [1, 5], "the five waiting went as one group");
    let mut expected = vec![
        ("a".to_owned(), a),
        ("b".to_owned(), answers[0].0),
        ("c".to_owned(), answers[1].0),
        ("d".to_owned(), answers[4].0),
    ];
    let taken = stored(&f)
        .await
        .into_iter()
        .find(|(id, _)| id == "taken")
        .unwrap();
    expected.push(taken);
    expected.sort();
    assert_eq!(stored(&f).await, expected);
    assert!(!f.0.queue().busy);
}

#[tokio::test]
async fn adds_beyond_the_bound_wait_for_a_place() {
    let f = fixture();
    let first = first_in_flight(&f).await;
    const MORE: usize = 20;
    let waiting: Vec<_> = (0..MAX_GROUP + MORE)
        .map(|n| add(&f, row(&format!("j{n:04}"))))
        .collect();
    until("the queue is full", || queued(&f) == MAX_GROUP).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(queued(&f), MAX_GROUP, "the queue is bounded");
    f.1.gate.add_permits(1_000);
    assert!(first.await.unwrap().1.unwrap());
    for task in waiting {
        assert!(task.await.unwrap().1.unwrap());
    }
    let calls = f.1.calls();
    assert!(calls.iter().all(|&n| n <= MAX_GROUP), "groups {calls:?}");
    assert_eq!(calls.iter().sum::<usize>(), 1 + MAX_GROUP + MORE);
    assert!(calls.len() <= 4, "{calls:?}: grouped");
    assert_eq!(stored(&f).await.len(), 1 + MAX_GROUP + MORE);
}

#[tokio::test]
async fn a_refused_row_fails_only_its_own_add() {
    let f = fixture();
    let first = first_in_flight(&f).await;
    let mut waiting = Vec::new();
    for id in ["x", "bad", "y"] {
        waiting.push(queue_behind(&f, id).await);
    }
    f.1.gate.add_permits(10);
    assert!(first.await.unwrap().1.unwrap());
    let mut answers = Vec::new();
    for task in waiting {
        answers.push(task.await.unwrap().1);
    }
    // The group added "x" before failing: "x" is found at its own revision.
    assert!(answers[0].as_ref().unwrap());
    assert_eq!(answers[1].as_ref().unwrap_err().job_id(), Some("bad"));
    assert!(answers[2].as_ref().unwrap());
    let ids: Vec<String> = stored(&f).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["a", "x", "y"]);
}

#[tokio::test]
async fn a_lead_cancelled_mid_insert_answers_its_group_and_hands_on() {
    let f = fixture();
    let [first, lead, member] = a_then_b_and_c(&f).await;
    f.1.gate.add_permits(1);
    assert!(first.await.unwrap().1.unwrap());
    until("the group insert is in flight", || f.1.calls() == [1, 2]).await;
    let later = queue_behind(&f, "d").await;
    // The caller of "b" gives up (its call timed out).
    lead.abort();
    assert!(lead.await.unwrap_err().is_cancelled());
    let e = member.await.unwrap().1.unwrap_err();
    assert_eq!((e.kind(), e.is_temporary()), (ErrorKind::Backend, true));
    assert_eq!(e.job_id(), Some("c"));
    // The lead went on: "d" is inserted, alone.
    until("the next insert is in flight", || f.1.calls() == [1, 2, 1]).await;
    f.1.gate.add_permits(1);
    assert!(later.await.unwrap().1.unwrap());
    assert!(!f.0.queue().busy);
}

#[tokio::test]
async fn a_queued_add_dropped_leaves_the_queue() {
    let f = fixture();
    let [first, kept, dropped] = a_then_b_and_c(&f).await;
    dropped.abort();
    assert!(dropped.await.unwrap_err().is_cancelled());
    assert_eq!(queued(&f), 1);
    assert_eq!(f.0.places.available_permits(), MAX_GROUP - 1);
    f.1.gate.add_permits(2);
    assert!(first.await.unwrap().1.unwrap());
    assert!(kept.await.unwrap().1.unwrap());
    assert_eq!(f.1.calls(), [1, 1]);
    let ids: Vec<String> = stored(&f).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(f.0.places.available_permits(), MAX_GROUP);
}

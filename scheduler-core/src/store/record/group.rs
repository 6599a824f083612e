//! Group commit of concurrent single adds.
//!
//! Each [`add_job`](crate::JobStore::add_job) of a persistent store is one durable commit, and
//! the disk flush bounds how many a second one caller gets. Callers adding at once share
//! commits instead: while one add's insert is in flight, the adds that arrive queue, and when
//! it ends the first of them inserts itself and the others as one group, in one
//! [`RecordStore::insert_many`] call (one transaction on the SQL stores). An add with nothing
//! in flight goes at once, as before; only adds that would have waited for a busy store wait
//! for the group instead.
//!
//! Every caller gets its own answer: added, or the id was taken (by a stored row, or by an
//! add earlier in the same group), or its store error. A group that fails with an error that
//! is not [temporary](Error::is_temporary) (one row the backend refuses, such as an id too
//! long for its column) is inserted again row by row, so one bad job fails only its own add.
//! An add answers once its group's call has returned, that is, once its row is committed.
//!
//! At most [`MAX_GROUP`] adds wait for the next group; later ones wait for a place in the
//! queue (back-pressure), in the order they came.
//!
//! Cancellation: an add dropped while it waits leaves the queue (or hands on the lead it was
//! given); an add dropped while its group's insert is in flight (its caller's call timed out)
//! ends that insert, whose rows may or may not have been committed: the other adds of the
//! group get a temporary [`Backend`](ErrorKind::Backend) error saying so, as the dropped
//! caller would have for its own add.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Semaphore, oneshot};

use super::{RecordStore, StoredRecord};
use crate::error::{Error, ErrorKind, Result};

/// The most rows one group inserts, and the most adds that wait for the next group.
pub(crate) const MAX_GROUP: usize = 256;

/// The queue of adds waiting for the insert in flight to end. See the [module docs](self).
#[derive(Debug)]
pub(super) struct AddGroups {
    queue: Mutex<Queue>,
    /// Places in the queue: an add takes one before it queues, and gives it back when it
    /// leaves the queue (taken into a group, handed the lead, or dropped).
    places: Semaphore,
}

#[derive(Debug, Default)]
struct Queue {
    /// An insert is in flight, or a queued add has been handed the lead of the next group.
    /// While it is set, adds queue; when the lead finds the queue empty, it clears it.
    busy: bool,
    waiting: VecDeque<Waiting>,
    next_ticket: u64,
}

/// A queued add.
#[derive(Debug)]
struct Waiting {
    ticket: u64,
    row: StoredRecord,
    turn: oneshot::Sender<Turn>,
}

/// What a queued add is told.
#[derive(Debug)]
enum Turn {
    /// Its row went in another add's group: whether it was added.
    Answered(Result<bool>),
    /// It leads the next group, starting with its row (it has left the queue).
    Lead(StoredRecord),
}

impl AddGroups {
    pub(super) fn new() -> Self {
        AddGroups {
            queue: Mutex::new(Queue::default()),
            places: Semaphore::new(MAX_GROUP),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // No code path panics while holding the lock with the queue half changed.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts `row` into `records` as [`RecordStore::insert`] does (answers whether it was
    /// added), in a group with the adds that wait at the same time.
    pub(super) async fn insert<R: RecordStore>(
        &self,
        records: &R,
        row: StoredRecord,
    ) -> Result<bool> {
        if self.take_lead() {
            return self.insert_alone(records, row).await;
        }
        // Never closed, so this waits for a place and gets one.
        let place = self.places.acquire().await.map_err(|_| {
            Error::new(ErrorKind::Backend, "the queue of adds is closed").with_job_id(&row.id)
        })?;
        let queued = {
            let mut queue = self.queue();
            if queue.busy {
                let ticket = queue.next_ticket;
                queue.next_ticket += 1;
                let (tx, rx) = oneshot::channel();
                queue.waiting.push_back(Waiting {
                    ticket,
                    row,
                    turn: tx,
                });
                // Given back by whoever takes the add out of the queue.
                place.forget();
                Ok((ticket, rx))
            } else {
                // The insert in flight ended while this add waited for a place.
                queue.busy = true;
                drop(place);
                Err(row)
            }
        };
        let (ticket, turn) = match queued {
            Ok(queued) => queued,
            Err(row) => return self.insert_alone(records, row).await,
        };
        let mut waiter = Waiter {
            groups: self,
            ticket,
            turn,
            answered: false,
        };
        let turn = (&mut waiter.turn).await;
        waiter.answered = true;
        drop(waiter);
        match turn {
            Ok(Turn::Answered(answer)) => answer,
            Ok(Turn::Lead(row)) => self.lead(records, row).await,
            // Every queued add is answered or handed the lead before its sender is dropped.
            Err(_) => Err(Error::new(
                ErrorKind::Backend,
                "an add waiting for a group insert was dropped unanswered",
            )
            .set_temporary()),
        }
    }

    /// Marks an insert in flight if none is: then the caller goes at once.
    fn take_lead(&self) -> bool {
        let mut queue = self.queue();
        !std::mem::replace(&mut queue.busy, true)
    }

    /// Inserts `row` alone, holding the lead.
    async fn insert_alone<R: RecordStore>(&self, records: &R, row: StoredRecord) -> Result<bool> {
        let lead = Lead {
            groups: self,
            members: Vec::new(),
        };
        let answer = records.insert(row).await;
        drop(lead);
        answer
    }

    /// Inserts `row` and the adds waiting (up to [`MAX_GROUP`] rows), holding the lead;
    /// answers each of them and returns `row`'s answer.
    async fn lead<R: RecordStore>(&self, records: &R, row: StoredRecord) -> Result<bool> {
        let taken: Vec<Waiting> = {
            let mut queue = self.queue();
            let n = queue.waiting.len().min(MAX_GROUP - 1);
            queue.waiting.drain(..n).collect()
        };
        self.places.add_permits(taken.len());
        if taken.is_empty() {
            return self.insert_alone(records, row).await;
        }
        let mut rows = Vec::with_capacity(taken.len() + 1);
        rows.push(row);
        let mut lead = Lead {
            groups: self,
            members: Vec::with_capacity(taken.len()),
        };
        for waiting in taken {
            lead.members.push((waiting.row.id.clone(), waiting.turn));
            rows.push(waiting.row);
        }
        let mut answers = insert_group(records, rows).await.into_iter();
        let own = answers.next();
        for ((_, turn), answer) in lead.members.drain(..).zip(answers) {
            // A member whose caller is gone has nobody to tell.
            let _ = turn.send(Turn::Answered(answer));
        }
        // Let the adds just answered come back first (a caller adding one job after another
        // does so at once), so that the next group holds them all rather than one going
        // alone and the others waiting for it: one commit for all of them. A scheduling
        // round, far shorter than a commit.
        tokio::task::yield_now().await;
        drop(lead);
        own.unwrap_or_else(|| {
            Err(Error::new(
                ErrorKind::Backend,
                "a group insert answered no row",
            ))
        })
    }

    /// Hands the lead to the first queued add, or, with none, marks no insert in flight.
    fn hand_on(&self) {
        let mut queue = self.queue();
        while let Some(next) = queue.waiting.pop_front() {
            self.places.add_permits(1);
            // A queued add's receiver lives until it has left the queue (see `Waiter`), so the
            // send fails only for one dropped without its guard running: try the next.
            if next.turn.send(Turn::Lead(next.row)).is_ok() {
                return;
            }
        }
        queue.busy = false;
    }
}

/// One insert of `rows` (the first is the lead's), answering every row in order.
async fn insert_group<R: RecordStore>(records: &R, rows: Vec<StoredRecord>) -> Vec<Result<bool>> {
    let expected = rows.len();
    // Kept to insert row by row if the group fails as a whole.
    let copies = rows.clone();
    let failed = match records.insert_many(rows).await {
        Ok(added) if added.len() == expected => return added.into_iter().map(Ok).collect(),
        Ok(added) => Error::new(
            ErrorKind::Backend,
            format!(
                "the job store answered {} of {expected} inserts; which jobs were added is \
                 unknown",
                added.len()
            ),
        ),
        Err(e) if e.is_temporary() => e,
        Err(_) => {
            let mut answers = Vec::with_capacity(expected);
            for row in copies {
                answers.push(insert_checked(records, row).await);
            }
            return answers;
        }
    };
    copies
        .iter()
        .map(|row| Err(failed.clone_shallow().with_job_id(&row.id)))
        .collect()
}

/// Inserts `row` after its group failed: a row the group added before failing (a backend's
/// `insert_many` need not be atomic) is found at its own revision, which is fresh, and is
/// answered as added.
async fn insert_checked<R: RecordStore>(records: &R, row: StoredRecord) -> Result<bool> {
    let (id, revision) = (row.id.clone(), row.revision);
    if records.insert(row).await? {
        return Ok(true);
    }
    Ok(records
        .get(&id)
        .await?
        .is_some_and(|stored| stored.revision == revision))
}

/// The lead of the insert in flight: answers the members it has not answered and hands the
/// lead on when dropped, also when its caller's future is dropped mid-insert.
struct Lead<'a> {
    groups: &'a AddGroups,
    /// The ids and answer senders of the group's other adds.
    members: Vec<(String, oneshot::Sender<Turn>)>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        for (id, turn) in self.members.drain(..) {
            let unknown = Error::new(
                ErrorKind::Backend,
                format!(
                    "the group insert job {id:?} went in was cancelled (the call of the add \
                     that led it timed out or was dropped); whether the job was added is \
                     unknown"
                ),
            )
            .with_job_id(id)
            .set_temporary();
            let _ = turn.send(Turn::Answered(Err(unknown)));
        }
        self.groups.hand_on();
    }
}

/// A queued add's place: leaves the queue, or hands on the lead it was given and did not
/// take, when its caller's future is dropped before its turn came.
struct Waiter<'a> {
    groups: &'a AddGroups,
    ticket: u64,
    turn: oneshot::Receiver<Turn>,
    /// Its turn came: nothing to undo.
    answered: bool,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let mut queue = self.groups.queue();
        if let Some(at) = queue.waiting.iter().position(|w| w.ticket == self.ticket) {
            queue.waiting.remove(at);
            drop(queue);
            self.groups.places.add_permits(1);
            return;
        }
        drop(queue);
        // Out of the queue: in a group in flight (its answer goes unread), or handed the lead
        // (sent under the lock, so it is here by now), which must go on.
        if let Ok(Turn::Lead(_)) = self.turn.try_recv() {
            self.groups.hand_on();
        }
    }
}

#[cfg(test)]
mod tests;

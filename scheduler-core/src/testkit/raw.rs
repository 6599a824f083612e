//! Raw access to a persistent store's rows and cluster tables, for the cases that plant
//! records or call the record-level contract directly.

use crate::clock::BoxFuture;
use crate::error::Result;
use crate::store::{DynRecordStore, RecordJobStore, RecordStore, StoredRecord};

/// Raw access to a persistent store's rows, for the cases that plant records a process cannot
/// read and check that they are left untouched, and to the record store below (its cluster
/// methods). Every [`RecordJobStore`] has it.
pub trait RawRecords: Send + Sync + 'static {
    /// Writes `record` as is (adding or replacing the row), bypassing the codec.
    fn put_raw(&self, record: StoredRecord) -> BoxFuture<'_, Result<()>>;

    /// The row with `id` as stored.
    fn get_raw<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRecord>>>;

    /// The record store below, for the cases that call the record-level contract directly
    /// ([`RecordStore::commit_fires`] as given, the cluster methods); `None` by default.
    fn record_store(&self) -> Option<&dyn DynRecordStore> {
        None
    }
}

impl<R: RecordStore> RawRecords for RecordJobStore<R> {
    fn put_raw(&self, record: StoredRecord) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.records().upsert(record))
    }

    fn get_raw<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRecord>>> {
        Box::pin(self.records().get(id))
    }

    fn record_store(&self) -> Option<&dyn DynRecordStore> {
        Some(self.records())
    }
}

//! Stores and executors by alias: one table type with one duplicate rule, and the scheduler's
//! API to add and remove them.

use std::sync::{Arc, RwLock};

use super::{Scheduler, read, write};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::executor::{DynExecutor, Executor};
use crate::store::{DynJobStore, JobStore, TimedStore};

/// Components by alias, in the order they were added: the job stores or the executors.
///
/// An alias is taken from the moment it is [reserved](Self::reserve) until it is removed, so
/// a component is started only once its alias is known to be free, and two callers adding
/// the same alias cannot both succeed. Reserved aliases are invisible to lookups.
pub(super) struct Aliased<T: ?Sized> {
    /// "job store" or "executor", for messages.
    what: &'static str,
    entries: Vec<(Arc<str>, Option<Arc<T>>)>,
}

impl<T: ?Sized> Clone for Aliased<T> {
    fn clone(&self) -> Self {
        Aliased {
            what: self.what,
            entries: self.entries.clone(),
        }
    }
}

impl Aliased<dyn DynJobStore> {
    /// No job stores.
    pub(super) fn stores() -> Self {
        Aliased::named("job store")
    }
}

impl Aliased<dyn DynExecutor> {
    /// No executors.
    pub(super) fn executors() -> Self {
        Aliased::named("executor")
    }
}

impl<T: ?Sized> Aliased<T> {
    fn named(what: &'static str) -> Self {
        Aliased {
            what,
            entries: Vec::new(),
        }
    }

    /// Takes `alias` for a component yet to be [filled in](Self::fill); fails with
    /// [`Config`](crate::ErrorKind::Config) when it is taken.
    pub(super) fn reserve(&mut self, alias: Arc<str>) -> Result<()> {
        if self.entries.iter().any(|(a, _)| *a == alias) {
            let article = if self.what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return Err(Error::config(format!(
                "this scheduler already has {article} {} named {alias:?}",
                self.what
            )));
        }
        self.entries.push((alias, None));
        Ok(())
    }

    /// Puts `item` under its reserved `alias`.
    pub(super) fn fill(&mut self, alias: &str, item: Arc<T>) {
        if let Some((_, slot)) = self.entries.iter_mut().find(|(a, _)| &**a == alias) {
            *slot = Some(item);
        }
    }

    /// Gives up a reservation that was not filled.
    pub(super) fn release(&mut self, alias: &str) {
        self.entries
            .retain(|(a, slot)| &**a != alias || slot.is_some());
    }

    /// Adds `item` under `alias` at once.
    pub(super) fn insert(&mut self, alias: Arc<str>, item: Arc<T>) -> Result<()> {
        self.reserve(alias.clone())?;
        self.fill(&alias, item);
        Ok(())
    }

    /// Takes out the component under `alias`.
    pub(super) fn remove(&mut self, alias: &str) -> Result<Arc<T>> {
        let index = self
            .entries
            .iter()
            .position(|(a, slot)| &**a == alias && slot.is_some())
            .ok_or_else(|| Error::config(format!("no {} named {alias:?}", self.what)))?;
        let (_, item) = self.entries.remove(index);
        item.ok_or_else(|| Error::config(format!("no {} named {alias:?}", self.what)))
    }

    /// The component under `alias`.
    pub(super) fn get(&self, alias: &str) -> Option<Arc<T>> {
        self.entries
            .iter()
            .find(|(a, _)| &**a == alias)
            .and_then(|(_, slot)| slot.clone())
    }

    /// The components with their aliases, in the order they were added.
    pub(super) fn snapshot(&self) -> Vec<(Arc<str>, Arc<T>)> {
        self.entries
            .iter()
            .filter_map(|(a, slot)| Some((a.clone(), slot.clone()?)))
            .collect()
    }

    /// The aliases of the components, in the order they were added.
    pub(super) fn aliases(&self) -> Vec<Arc<str>> {
        self.entries
            .iter()
            .filter(|(_, slot)| slot.is_some())
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// "no job store named ..." for a missing alias.
    pub(super) fn missing(&self, alias: &str) -> Error {
        Error::config(format!("no {} named {alias:?}", self.what))
    }
}

/// A reserved alias in one of the scheduler's tables; the reservation is given up unless it
/// is [filled](Self::fill), so a caller that gives up (an error, a dropped future) leaves the
/// alias free.
struct Reservation<'a, T: ?Sized> {
    table: &'a RwLock<Aliased<T>>,
    alias: Arc<str>,
    filled: bool,
}

impl<'a, T: ?Sized> Reservation<'a, T> {
    fn new(table: &'a RwLock<Aliased<T>>, alias: &str) -> Result<Self> {
        let alias: Arc<str> = alias.into();
        write(table).reserve(alias.clone())?;
        Ok(Reservation {
            table,
            alias,
            filled: false,
        })
    }

    fn fill(mut self, item: Arc<T>) {
        write(self.table).fill(&self.alias, item);
        self.filled = true;
    }
}

impl<T: ?Sized> Drop for Reservation<'_, T> {
    fn drop(&mut self) {
        if !self.filled {
            write(self.table).release(&self.alias);
        }
    }
}

impl Scheduler {
    /// Adds a job store under `alias`; starts it if the scheduler is running.
    ///
    /// Fails with [`Config`](crate::ErrorKind::Config) when the alias is taken, before the
    /// store is started.
    pub async fn add_jobstore(&self, alias: &str, store: impl JobStore) -> Result<()> {
        self.add_jobstore_dyn(alias, Arc::new(store)).await
    }

    /// Adds a job store that is already a trait object.
    pub async fn add_jobstore_dyn(&self, alias: &str, store: Arc<dyn DynJobStore>) -> Result<()> {
        self.settled().await;
        self.lifecycle().ensure_usable()?;
        let reservation = Reservation::new(&self.inner.stores, alias)?;
        if self.running() {
            self.timed(alias.into(), store.clone())
                .start(self.store_context(alias))
                .await?;
        }
        reservation.fill(store);
        self.inner.events.publish(Event::JobstoreAdded {
            alias: alias.into(),
        });
        if self.running() {
            self.wakeup();
        }
        Ok(())
    }

    /// Removes the job store `alias`, shutting it down when `shutdown`.
    pub async fn remove_jobstore(&self, alias: &str, shutdown: bool) -> Result<()> {
        let store = write(&self.inner.stores).remove(alias)?;
        if shutdown {
            self.timed(alias.into(), store).shutdown().await?;
        }
        self.inner.events.publish(Event::JobstoreRemoved {
            alias: alias.into(),
        });
        Ok(())
    }

    /// Adds an executor under `alias`; starts it if the scheduler is running.
    ///
    /// Fails with [`Config`](crate::ErrorKind::Config) when the alias is taken, before the
    /// executor is started.
    pub async fn add_executor(&self, alias: &str, executor: impl Executor) -> Result<()> {
        self.add_executor_dyn(alias, Arc::new(executor)).await
    }

    /// Adds an executor that is already a trait object.
    pub async fn add_executor_dyn(
        &self,
        alias: &str,
        executor: Arc<dyn DynExecutor>,
    ) -> Result<()> {
        self.settled().await;
        self.lifecycle().ensure_usable()?;
        let reservation = Reservation::new(&self.inner.executors, alias)?;
        if self.running() {
            let runtime = super::lock(&self.inner.runtime).clone();
            if let Some(runtime) = runtime {
                executor
                    .start(self.executor_context(alias, &runtime))
                    .await?;
            }
        }
        reservation.fill(executor);
        self.inner.events.publish(Event::ExecutorAdded {
            alias: alias.into(),
        });
        // Jobs set aside because their executor was missing may be runnable now.
        for (_, store) in self.store_snapshot() {
            store.clear_skipped();
        }
        if self.running() {
            self.wakeup();
        }
        Ok(())
    }

    /// Removes the executor `alias`, shutting it down (without waiting) when `shutdown`.
    pub async fn remove_executor(&self, alias: &str, shutdown: bool) -> Result<()> {
        let executor = write(&self.inner.executors).remove(alias)?;
        if shutdown {
            executor.shutdown(false).await?;
        }
        self.inner.events.publish(Event::ExecutorRemoved {
            alias: alias.into(),
        });
        Ok(())
    }

    /// The store aliases, in the order they were added.
    pub fn jobstore_aliases(&self) -> Vec<String> {
        read(&self.inner.stores)
            .aliases()
            .iter()
            .map(|a| a.to_string())
            .collect()
    }

    /// The store `alias` as the scheduler calls it (every call bounded by the
    /// [call timeout](super::SchedulerBuilder::jobstore_call_timeout)), or a
    /// [`Config`](crate::ErrorKind::Config) error that says how to add one.
    pub(super) fn store(&self, alias: &str) -> Result<Arc<dyn DynJobStore>> {
        let stores = read(&self.inner.stores);
        let store = stores.get(alias).ok_or_else(|| {
            Error::config(format!(
                "{}; add one with SchedulerBuilder::jobstore \
                 (for example jobstore_memory::MemoryJobStore)",
                stores.missing(alias).message()
            ))
        })?;
        drop(stores);
        Ok(self.timed(alias.into(), store))
    }

    /// The stores with their aliases, in the order they were added, as the scheduler calls
    /// them (every call bounded by the call timeout).
    pub(super) fn store_snapshot(&self) -> Vec<(Arc<str>, Arc<dyn DynJobStore>)> {
        let stores = read(&self.inner.stores).snapshot();
        stores
            .into_iter()
            .map(|(alias, store)| (alias.clone(), self.timed(alias, store)))
            .collect()
    }

    /// `store` with every call bounded by the call timeout: the only way the scheduler calls
    /// a store, so a hung server cannot freeze the loop or an API call.
    fn timed(&self, alias: Arc<str>, store: Arc<dyn DynJobStore>) -> Arc<dyn DynJobStore> {
        let timeout = read(&self.inner.settings).jobstore_call_timeout;
        Arc::new(TimedStore::new(alias, store, timeout))
    }

    /// The executors with their aliases, in the order they were added.
    pub(super) fn executor_snapshot(&self) -> Vec<(Arc<str>, Arc<dyn DynExecutor>)> {
        read(&self.inner.executors).snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn table() -> Aliased<str> {
        Aliased::named("widget")
    }

    fn item(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn keeps_insertion_order_and_refuses_duplicates_with_one_message() {
        let mut t = table();
        t.insert("b".into(), item("1")).unwrap();
        t.insert("a".into(), item("2")).unwrap();
        let err = t.insert("b".into(), item("3")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(
            err.to_string(),
            "this scheduler already has a widget named \"b\""
        );
        assert_eq!(t.aliases(), [item("b"), item("a")]);
        assert_eq!(t.get("b").as_deref(), Some("1"));
        let mut executors = Aliased::executors();
        let err = executors
            .reserve("x".into())
            .and_then(|()| executors.reserve("x".into()));
        assert_eq!(
            err.unwrap_err().to_string(),
            "this scheduler already has an executor named \"x\""
        );
    }

    #[test]
    fn a_reserved_alias_is_taken_but_invisible_until_filled() {
        let mut t = table();
        t.reserve("r".into()).unwrap();
        assert_eq!(t.reserve("r".into()).unwrap_err().kind(), ErrorKind::Config);
        assert!(t.get("r").is_none());
        assert!(t.snapshot().is_empty());
        assert!(t.aliases().is_empty());
        assert_eq!(t.remove("r").unwrap_err().kind(), ErrorKind::Config);
        t.fill("r", item("x"));
        assert_eq!(t.get("r").as_deref(), Some("x"));
        assert_eq!(t.snapshot().len(), 1);
    }

    #[test]
    fn a_released_reservation_frees_the_alias_and_release_keeps_filled_entries() {
        let mut t = table();
        t.insert("kept".into(), item("k")).unwrap();
        t.reserve("r".into()).unwrap();
        t.release("r");
        t.release("kept");
        t.insert("r".into(), item("again")).unwrap();
        assert_eq!(t.aliases(), [item("kept"), item("r")]);
    }

    #[test]
    fn remove_takes_the_component_out() {
        let mut t = table();
        t.insert("a".into(), item("1")).unwrap();
        assert_eq!(&*t.remove("a").unwrap(), "1");
        let err = t.remove("a").unwrap_err();
        assert_eq!(err.to_string(), "no widget named \"a\"");
        t.insert("a".into(), item("2")).unwrap();
    }

    #[test]
    fn a_reservation_guard_releases_unless_filled() {
        let lock = RwLock::new(table());
        {
            let _r = Reservation::new(&lock, "gone").unwrap();
            assert!(Reservation::new(&lock, "gone").is_err());
        }
        Reservation::new(&lock, "gone").unwrap().fill(item("now"));
        assert_eq!(read(&lock).get("gone").as_deref(), Some("now"));
    }
}

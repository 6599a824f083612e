//! The jobs added before start (APScheduler's `_pending_jobs`).

use crate::job::{Job, JobDefaults, JobSpec};

/// Jobs waiting for the scheduler to start, in the order they were added.
#[derive(Debug, Default)]
pub(super) struct PendingJobs {
    specs: Vec<JobSpec>,
}

/// Whether `spec` is in `jobstore`, or in any store when none is named.
fn in_store(spec: &JobSpec, jobstore: Option<&str>) -> bool {
    jobstore.is_none_or(|alias| alias == &*spec.jobstore)
}

/// Whether `spec` is the job `id` (in `jobstore`, when one is named): the one lookup rule of
/// every call that names a job.
fn is_job(spec: &JobSpec, id: &str, jobstore: Option<&str>) -> bool {
    spec.id.as_deref() == Some(id) && in_store(spec, jobstore)
}

impl PendingJobs {
    /// Appends a job.
    pub(super) fn push(&mut self, spec: JobSpec) {
        self.specs.push(spec);
    }

    /// The pending job `id`.
    pub(super) fn get(&self, id: &str, jobstore: Option<&str>) -> Option<&JobSpec> {
        self.specs.iter().find(|s| is_job(s, id, jobstore))
    }

    /// The pending job `id`, to change it.
    pub(super) fn get_mut(&mut self, id: &str, jobstore: Option<&str>) -> Option<&mut JobSpec> {
        self.specs.iter_mut().find(|s| is_job(s, id, jobstore))
    }

    /// Takes out the pending job `id`.
    pub(super) fn remove(&mut self, id: &str, jobstore: Option<&str>) -> Option<JobSpec> {
        let index = self.specs.iter().position(|s| is_job(s, id, jobstore))?;
        Some(self.specs.remove(index))
    }

    /// Drops every pending job of `jobstore` (of all stores when `None`).
    pub(super) fn remove_all(&mut self, jobstore: Option<&str>) {
        self.specs.retain(|s| !in_store(s, jobstore));
    }

    /// The pending jobs of `jobstore` as they would be added now, without run times.
    pub(super) fn previews(&self, jobstore: Option<&str>, defaults: &JobDefaults) -> Vec<Job> {
        self.specs
            .iter()
            .filter(|s| in_store(s, jobstore))
            .map(|s| s.preview(defaults))
            .collect()
    }

    /// Takes all pending jobs, to add them to their stores.
    pub(super) fn take(&mut self) -> Vec<JobSpec> {
        std::mem::take(&mut self.specs)
    }

    /// Puts back jobs that were taken and not added, ahead of any pending job added since.
    pub(super) fn put_back(&mut self, unadded: impl IntoIterator<Item = JobSpec>) {
        let later = std::mem::take(&mut self.specs);
        self.specs = unadded.into_iter().chain(later).collect();
    }

    /// The first job whose (store, id) an earlier pending job already has, unless it
    /// replaces existing jobs: adding these would fail midway.
    pub(super) fn first_repeated(specs: &[JobSpec]) -> Option<&JobSpec> {
        let mut seen = std::collections::HashSet::new();
        specs.iter().find(|spec| {
            let first = seen.insert((&*spec.jobstore, spec.id.as_deref()));
            !first && !spec.replace_existing
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobTarget;
    use crate::testkit::StepTrigger;
    use chrono::DateTime;

    fn spec(id: &str, store: &str) -> JobSpec {
        let trigger = StepTrigger {
            start: DateTime::from_timestamp(1_000_000, 0).unwrap(),
            step_secs: 60,
        };
        JobSpec::new(JobTarget::closure("j", || ()), trigger)
            .id(id)
            .jobstore(store)
    }

    fn ids(jobs: &[Job]) -> Vec<&str> {
        jobs.iter().map(Job::id).collect()
    }

    fn pending() -> PendingJobs {
        let mut p = PendingJobs::default();
        p.push(spec("a", "one"));
        p.push(spec("b", "two"));
        p.push(spec("a", "two"));
        p
    }

    #[test]
    fn a_job_is_found_by_id_in_any_store_or_in_the_store_named() {
        let p = pending();
        assert_eq!(p.get("a", None).unwrap().jobstore, "one".into());
        assert_eq!(p.get("a", Some("two")).unwrap().jobstore, "two".into());
        assert!(p.get("b", Some("one")).is_none());
        assert!(p.get("c", None).is_none());
    }

    #[test]
    fn removing_takes_the_first_match_only() {
        let mut p = pending();
        assert_eq!(p.remove("a", None).unwrap().jobstore, "one".into());
        assert_eq!(p.remove("a", None).unwrap().jobstore, "two".into());
        assert!(p.remove("a", None).is_none());
        assert_eq!(ids(&p.previews(None, &JobDefaults::default())), ["b"]);
    }

    #[test]
    fn remove_all_and_previews_respect_the_store() {
        let mut p = pending();
        let defaults = JobDefaults::default();
        assert_eq!(ids(&p.previews(Some("two"), &defaults)), ["b", "a"]);
        assert!(
            p.previews(Some("one"), &defaults)[0]
                .next_run_time()
                .is_none()
        );
        p.remove_all(Some("two"));
        assert_eq!(ids(&p.previews(None, &defaults)), ["a"]);
        p.remove_all(None);
        assert!(p.previews(None, &defaults).is_empty());
    }

    #[test]
    fn jobs_put_back_go_ahead_of_jobs_added_meanwhile() {
        let mut p = pending();
        let mut taken = p.take();
        p.push(spec("late", "one"));
        taken.remove(0);
        p.put_back(taken);
        let defaults = JobDefaults::default();
        assert_eq!(ids(&p.previews(None, &defaults)), ["b", "a", "late"]);
    }

    #[test]
    fn a_repeated_id_in_the_same_store_is_found_unless_it_replaces() {
        let mut specs = vec![spec("a", "one"), spec("a", "two")];
        assert!(PendingJobs::first_repeated(&specs).is_none());
        specs.push(spec("a", "one").replace_existing(true));
        assert!(PendingJobs::first_repeated(&specs).is_none());
        specs.push(spec("a", "one"));
        assert_eq!(
            PendingJobs::first_repeated(&specs).unwrap().jobstore,
            "one".into()
        );
    }
}

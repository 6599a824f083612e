use super::*;
use crate::{ErrorKind, TriggerState};
use chrono::TimeDelta;

#[derive(Debug)]
struct At(DateTime<Utc>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "date[{}]", self.0.format("%Y-%m-%d %H:%M:%S UTC"))
    }
}

impl Trigger for At {
    fn next_fire_time(
        &self,
        p: Option<DateTime<Utc>>,
        _: DateTime<Utc>,
    ) -> std::result::Result<Option<DateTime<Utc>>, SearchExhausted> {
        Ok(p.is_none().then_some(self.0))
    }
    fn to_state(&self) -> Result<TriggerState> {
        TriggerState::new("at", &self.0)
    }
}

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

#[test]
fn defaults_fill_unset_options_and_trigger_gives_first_run() {
    let spec = JobSpec::new(JobTarget::closure("tick", || ()), At(t(60)));
    let job = spec.into_job(&JobDefaults::default(), t(0)).unwrap();
    assert_eq!(job.id().len(), 32, "uuid4 hex like APScheduler");
    assert_eq!(job.name(), "tick");
    assert_eq!(job.misfire_grace_time(), Some(Duration::from_secs(1)));
    assert!(job.coalesce());
    assert_eq!(job.max_instances(), 1);
    assert_eq!(job.next_run_time(), Some(t(60)));
}

#[test]
fn explicit_options_win_and_paused_means_no_run_time() {
    let spec = JobSpec::new(JobTarget::closure("tick", || ()), At(t(60)))
        .id("x")
        .name("ticker")
        .misfire_grace_time(None)
        .coalesce(false)
        .max_instances(3)
        .paused();
    let job = spec.into_job(&JobDefaults::default(), t(0)).unwrap();
    assert_eq!(
        (
            job.id(),
            job.name(),
            job.misfire_grace_time(),
            job.coalesce(),
            job.max_instances()
        ),
        ("x", "ticker", None, false, 3)
    );
    assert!(job.is_paused());
    assert_eq!(
        job.to_string(),
        "ticker (trigger: date[2023-11-14 22:14:20 UTC], paused)"
    );
}

#[test]
fn the_timeout_comes_from_the_spec_or_the_defaults_and_changes_with_modify() {
    let spec = || JobSpec::new(JobTarget::closure("tick", || ()), At(t(60)));
    let defaults = JobDefaults {
        timeout: Some(Duration::from_secs(30)),
        ..JobDefaults::default()
    };
    assert_eq!(
        JobDefaults::default().timeout,
        None,
        "no timeout unless asked"
    );
    let job = spec().into_job(&defaults, t(0)).unwrap();
    assert_eq!(job.timeout(), Some(Duration::from_secs(30)));
    let mut job = spec().timeout(None).into_job(&defaults, t(0)).unwrap();
    assert_eq!(
        job.timeout(),
        None,
        "an explicit None wins over the default"
    );
    job.apply(JobChanges::new().timeout(Some(Duration::from_secs(5))))
        .unwrap();
    assert_eq!(job.timeout(), Some(Duration::from_secs(5)));
    let err = job
        .apply(JobChanges::new().timeout(Some(Duration::ZERO)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidJob);
}

#[test]
fn run_times_are_kept_to_whole_microseconds() {
    let fine = t(0) + TimeDelta::nanoseconds(1_999);
    let job = JobSpec::new(JobTarget::closure("tick", || ()), At(fine))
        .into_job(&JobDefaults::default(), t(0))
        .unwrap();
    assert_eq!(job.next_run_time(), Some(t(0) + TimeDelta::microseconds(1)));
    let mut job = job;
    job.set_next_run_time(Some(fine + TimeDelta::nanoseconds(500)));
    assert_eq!(job.next_run_time(), Some(t(0) + TimeDelta::microseconds(2)));
    assert_eq!(job.revision(), 0, "a job never stored has revision 0");
}

#[test]
fn invalid_options_are_rejected() {
    let base = || JobSpec::new(JobTarget::closure("tick", || ()), At(t(60)));
    let defaults = JobDefaults::default();
    for spec in [
        base().max_instances(0),
        base().misfire_grace_time(Some(Duration::ZERO)),
        base().timeout(Some(Duration::ZERO)),
        base().name(""),
    ] {
        assert_eq!(
            spec.into_job(&defaults, t(0)).unwrap_err().kind(),
            ErrorKind::InvalidJob
        );
    }
}

#[test]
fn display_shows_next_run_in_the_given_zone() {
    let job = JobSpec::new(JobTarget::closure("tick", || ()), At(t(0)))
        .into_job(&JobDefaults::default(), t(0))
        .unwrap();
    assert_eq!(
        job.display_in(chrono_tz::Europe::Berlin).to_string(),
        "tick (trigger: date[2023-11-14 22:13:20 UTC], next run at: 2023-11-14 23:13:20 CET)"
    );
}

#[test]
fn job_defaults_parse_seconds_and_null() {
    let d: JobDefaults =
        serde_json::from_str(r#"{"misfire_grace_time": 30, "max_instances": 3}"#).unwrap();
    assert_eq!(d.misfire_grace_time, Some(Duration::from_secs(30)));
    assert!(d.coalesce);
    assert_eq!(d.max_instances, 3);
    let d: JobDefaults = serde_json::from_str(r#"{"misfire_grace_time": null}"#).unwrap();
    assert_eq!(d.misfire_grace_time, None);
    assert!(serde_json::from_str::<JobDefaults>(r#"{"misfire_grace_time": -1}"#).is_err());
    assert!(serde_json::from_str::<JobDefaults>(r#"{"grace": 1}"#).is_err());
    let d: JobDefaults = serde_json::from_str(r#"{"timeout": 90.5}"#).unwrap();
    assert_eq!(d.timeout, Some(Duration::from_millis(90_500)));
    assert_eq!(d.misfire_grace_time, Some(Duration::from_secs(1)));
}

//! The persisted form of a job and the codec between it and a live [`Job`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Job, JobRegistry, JobTarget, Options, RunNowRequest, RunTime, opt_seconds, validate_grace,
    validate_max_instances, validate_timeout,
};
use crate::error::{Error, ErrorKind, Result};
use crate::trigger::{TriggerRegistry, TriggerState};

/// A job as persistent stores save it: plain data, JSON-friendly, language-neutral.
///
/// ```json
/// {"version": 1, "id": "cancel-42", "name": "cancel_order", "func": "cancel_order",
///  "args": {"order_id": 42}, "trigger": {"kind": "date", "state": {...}},
///  "executor": "default", "misfire_grace_time": 1.0, "coalesce": true,
///  "max_instances": 1, "timeout": 30.0, "next_run_time": "2024-05-01T09:00:00Z"}
/// ```
///
/// # Record versions: how later fields enter records
///
/// A record carries the `version` of its schema ([`JobRecord::VERSION`]). Records outlive
/// the build that wrote them and are shared by every process on a store, so during a rolling
/// upgrade an older build reads records a newer one wrote, and the other way round. The rule:
///
/// * **A new field that is optional does not bump the version.** Absent means the behaviour
///   before the field existed, so a newer reader reads old records as they were meant; an
///   older reader ignores the field, and keeps it (unknown fields are carried through a
///   decoded [`Job`] and written back), so rewriting a record never loses what a newer build
///   put there. `timeout` is the first such field; `recover` (lost runs recovered on another
///   node) the second; `run_requested_at` (a pending [`RunNowRequest`]) the third (and
///   `max_instances_across_nodes` the fourth): an older
///   build sees only a job due at the request's time and runs it as an ordinary due run (moving
///   its schedule as APScheduler's `modify_job(next_run_time=now)` does, and resuming a paused
///   job), which also ends the request, so the job still runs once. Request runs of paused jobs
///   only once every build on the store reads the field.
/// * **A change that an older reader must not ignore bumps the version**: a field whose
///   absence would change what the job does, a field that changes meaning, a field removed.
///   An older reader refuses the record clearly: [`JobCodec::decode`] fails with
///   [`Serialization`](ErrorKind::Serialization) naming both versions, and stores skip the
///   record, report it and leave it untouched until a build that reads it comes along.
///
/// So a field added later is declared `#[serde(default, skip_serializing_if = ...)]` (absent
/// when it has its default value, so records that do not use it stay byte-for-byte what older
/// builds write), documented with the release that added it, and never made mandatory
/// without a version bump.
///
/// The store's revision of the job is not part of the record (it is the store's, kept beside
/// it), and the run time here is a copy of the store's indexed run time, written with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobRecord {
    /// The record's schema version ([`JobRecord::VERSION`] when written by this crate).
    pub version: u32,
    /// The job's id.
    pub id: String,
    /// The job's name.
    pub name: String,
    /// The registered name of the job function.
    pub func: String,
    /// The function's arguments.
    pub args: serde_json::Value,
    /// The trigger's kind and state.
    pub trigger: TriggerState,
    /// The executor alias.
    pub executor: String,
    /// The misfire grace time in seconds; `null` = no limit.
    #[serde(with = "opt_seconds")]
    pub misfire_grace_time: Option<Duration>,
    /// Whether due run times coalesce.
    pub coalesce: bool,
    /// The instance limit.
    pub max_instances: u32,
    /// How long one run may take, in seconds; absent or `null` = no limit. Added within
    /// version 1 as an optional field (see [record versions](JobRecord#record-versions)).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_seconds")]
    pub timeout: Option<Duration>,
    /// Whether a run lost with a dead scheduler node is run again by another
    /// ([`JobSpec::recover_lost_runs`](crate::JobSpec::recover_lost_runs)); absent = `false`.
    /// Added within version 1 as an optional field: an older build ignores it (and keeps it),
    /// so its runs are not recovered, which is what absent means.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recover: bool,
    /// Whether `max_instances` is counted across the nodes sharing the store
    /// ([`JobSpec::max_instances_across_nodes`](crate::JobSpec::max_instances_across_nodes));
    /// absent = `false`. Added within version 1 as an optional field: an older build ignores
    /// it (and keeps it) and counts the job's instances on its own node only, which is what
    /// absent means.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub max_instances_across_nodes: bool,
    /// The next run time; `null` = paused. While a run-now request is pending
    /// (`run_requested_at`), the planned one, which the store's run time replaces until the
    /// request is honoured.
    pub next_run_time: Option<DateTime<Utc>>,
    /// When a pending run-now request ([`RunNowRequest`]) was made: the store's run time while it
    /// is pending. Absent = none. Added within version 1 as an optional field (see
    /// [record versions](JobRecord#record-versions)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_requested_at: Option<DateTime<Utc>>,
    /// Fields this build does not know, written by a newer one: kept so that rewriting the
    /// record does not drop them.
    #[serde(flatten)]
    pub unknown_fields: serde_json::Map<String, serde_json::Value>,
}

impl JobRecord {
    /// The schema version this crate writes and the newest it reads.
    pub const VERSION: u32 = 1;
}

/// Turns jobs into [`JobRecord`]s and back, resolving function names and trigger kinds.
///
/// Persistent stores get one in their [`StoreContext`](crate::StoreContext).
#[derive(Debug, Clone, Default)]
pub struct JobCodec {
    functions: JobRegistry,
    triggers: TriggerRegistry,
}

impl JobCodec {
    /// A codec resolving names in these registries.
    pub fn new(functions: JobRegistry, triggers: TriggerRegistry) -> Self {
        JobCodec {
            functions,
            triggers,
        }
    }

    /// The job functions known to this codec.
    pub fn functions(&self) -> &JobRegistry {
        &self.functions
    }

    /// The trigger kinds known to this codec.
    pub fn triggers(&self) -> &TriggerRegistry {
        &self.triggers
    }

    /// The persisted form of `job`.
    ///
    /// Fails with [`NotPersistable`](ErrorKind::NotPersistable) for closure jobs.
    pub fn encode(&self, job: &Job) -> Result<JobRecord> {
        let (Some(func), Some(args)) = (job.target.function_name(), job.target.args_json()) else {
            return Err(Error::not_persistable(job.id()));
        };
        let args = serde_json::from_str(args).map_err(|e| {
            Error::serialization("the job's arguments are not valid JSON", e).with_job_id(job.id())
        })?;
        let trigger = job
            .trigger
            .to_state()
            .map_err(|e| with_job_id(e, job.id()))?;
        // A pending request is saved as such; a spent one is dropped.
        let (next_run_time, run_requested_at) = match job.run_request() {
            Some(request) => (request.planned, Some(request.at)),
            None => (job.next_run_time(), None),
        };
        Ok(JobRecord {
            version: JobRecord::VERSION,
            id: job.id().to_owned(),
            name: job.name().to_owned(),
            func: func.to_owned(),
            args,
            trigger,
            executor: job.executor().to_owned(),
            misfire_grace_time: job.misfire_grace_time(),
            coalesce: job.coalesce(),
            max_instances: job.max_instances(),
            timeout: job.timeout(),
            recover: job.recover_lost_runs(),
            max_instances_across_nodes: job.max_instances_across_nodes(),
            next_run_time,
            run_requested_at,
            unknown_fields: (job.options.unknown_fields.as_deref().cloned()).unwrap_or_default(),
        })
    }

    /// The live job for `record`, with revision 0 (stores set the revision they keep).
    ///
    /// Fails with [`UnknownJobFunction`](ErrorKind::UnknownJobFunction) when the function is
    /// not registered, [`InvalidTrigger`](ErrorKind::InvalidTrigger) when the trigger kind is
    /// unknown or its state does not fit, and [`Serialization`](ErrorKind::Serialization) for a
    /// record written by a newer version. The error names the job.
    pub fn decode(&self, record: JobRecord) -> Result<Job> {
        let id = record.id;
        if record.version > JobRecord::VERSION {
            return Err(Error::new(
                ErrorKind::Serialization,
                format!(
                    "job {id:?} was saved with record version {}, newer than this build reads ({})",
                    record.version,
                    JobRecord::VERSION
                ),
            )
            .with_job_id(id));
        }
        let target = JobTarget::restore(
            &self.functions,
            &record.func,
            Arc::from(record.args.to_string()),
        )
        .map_err(|e| with_job_id(e, &id))?;
        let trigger = self
            .triggers
            .restore(&record.trigger)
            .map_err(|e| with_job_id(e, &id))?;
        let misfire_grace_time =
            validate_grace(record.misfire_grace_time).map_err(|e| with_job_id(e, &id))?;
        let max_instances =
            validate_max_instances(record.max_instances).map_err(|e| with_job_id(e, &id))?;
        let timeout = validate_timeout(record.timeout).map_err(|e| with_job_id(e, &id))?;
        let unknown_fields =
            (!record.unknown_fields.is_empty()).then(|| Arc::new(record.unknown_fields));
        let run_request = record
            .run_requested_at
            .map(|at| RunNowRequest::new(at, record.next_run_time));
        Ok(Job {
            id: id.into(),
            target,
            trigger,
            options: Options {
                name: record.name.into(),
                executor: record.executor.into(),
                misfire_grace_time,
                coalesce: record.coalesce,
                max_instances,
                timeout,
                recover_lost_runs: record.recover,
                max_instances_across_nodes: record.max_instances_across_nodes,
                unknown_fields,
            }
            .shared(),
            next_run_time: RunTime::new(run_request.map_or(record.next_run_time, |r| Some(r.at))),
            revision: 0,
            run_request: run_request.map(Box::new),
        })
    }

    /// `job` as JSON bytes, for stores that keep one blob per job.
    pub fn encode_json(&self, job: &Job) -> Result<Vec<u8>> {
        let record = self.encode(job)?;
        serde_json::to_vec(&record)
            .map_err(|e| Error::serialization("cannot serialize the job", e).with_job_id(job.id()))
    }

    /// The job saved as JSON `bytes` by [`encode_json`](Self::encode_json).
    ///
    /// `id` names the row in errors, since a corrupt blob may not yield one.
    pub fn decode_json(&self, id: &str, bytes: &[u8]) -> Result<Job> {
        let record: JobRecord = serde_json::from_slice(bytes).map_err(|e| {
            Error::serialization(format!("the stored record of job {id:?} is corrupt"), e)
                .with_job_id(id)
        })?;
        self.decode(record)
    }
}

fn with_job_id(e: Error, id: &str) -> Error {
    if e.job_id().is_some() {
        e
    } else {
        e.with_job_id(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobDefaults, JobSpec};
    use crate::trigger::Trigger;
    use std::fmt;

    #[derive(Debug, Serialize, Deserialize)]
    struct At(DateTime<Utc>);

    impl fmt::Display for At {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "at[{}]", self.0)
        }
    }

    impl Trigger for At {
        fn next_fire_time(
            &self,
            p: Option<DateTime<Utc>>,
            _: DateTime<Utc>,
        ) -> std::result::Result<Option<DateTime<Utc>>, crate::SearchExhausted> {
            Ok(p.is_none().then_some(self.0))
        }
        fn to_state(&self) -> Result<TriggerState> {
            TriggerState::new("at", self)
        }
    }

    fn codec() -> (JobCodec, crate::JobFunction<u32>) {
        let functions = JobRegistry::new();
        let f = functions.register_sync("count", |_: u32| ());
        let triggers = TriggerRegistry::new();
        triggers.register_serde::<At>("at");
        (JobCodec::new(functions, triggers), f)
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap()
    }

    #[test]
    fn round_trips_every_field() {
        let (codec, f) = codec();
        let job = JobSpec::new(f.call(7), At(at()))
            .id("j")
            .name("counter")
            .executor("pool")
            .misfire_grace_time(Some(Duration::from_millis(1500)))
            .coalesce(false)
            .max_instances(4)
            .into_job(&JobDefaults::default(), at())
            .unwrap();
        let bytes = codec.encode_json(&job).unwrap();
        let back = codec.decode_json("j", &bytes).unwrap();
        assert_eq!(codec.encode(&back).unwrap(), codec.encode(&job).unwrap());
        assert_eq!(back.next_run_time(), Some(at()));
        assert_eq!(back.target().args_json(), Some("7"));
        assert_eq!(back.misfire_grace_time(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn a_run_now_request_round_trips_until_the_run_time_moves() {
        let (codec, f) = codec();
        let job = JobSpec::new(f.call(1), At(at()))
            .id("r")
            .into_job(&JobDefaults::default(), at())
            .unwrap();
        let mut record = codec.encode(&job).unwrap();
        assert_eq!(record.run_requested_at, None, "absent unless requested");
        let requested = at() - chrono::TimeDelta::seconds(30);
        record.run_requested_at = Some(requested);
        let mut back = codec.decode(record.clone()).unwrap();
        assert_eq!(back.next_run_time(), Some(requested), "due at the request");
        assert_eq!(
            back.run_request(),
            Some(RunNowRequest::new(requested, Some(at())))
        );
        assert_eq!(
            codec.encode(&back).unwrap(),
            record,
            "kept through a rewrite"
        );

        // The fire that honours it puts the plan back, and the request is gone.
        back.set_next_run_time(Some(at()));
        assert_eq!(back.run_request(), None);
        let rewritten = codec.encode(&back).unwrap();
        assert_eq!(
            (rewritten.next_run_time, rewritten.run_requested_at),
            (Some(at()), None)
        );
    }

    #[test]
    fn the_timeout_round_trips_and_is_left_out_when_unset() {
        let (codec, f) = codec();
        let with = JobSpec::new(f.call(1), At(at()))
            .id("t")
            .timeout(Some(Duration::from_millis(2500)))
            .into_job(&JobDefaults::default(), at())
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&codec.encode_json(&with).unwrap()).unwrap();
        assert_eq!(json["timeout"], 2.5);
        let back = codec
            .decode_json("t", &codec.encode_json(&with).unwrap())
            .unwrap();
        assert_eq!(back.timeout(), Some(Duration::from_millis(2500)));

        let without = JobSpec::new(f.call(1), At(at()))
            .id("t")
            .into_job(&JobDefaults::default(), at())
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&codec.encode_json(&without).unwrap()).unwrap();
        assert!(
            json.get("timeout").is_none(),
            "a record without a timeout is what version 1 wrote before the field existed: {json}"
        );
    }

    #[test]
    fn cluster_options_round_trip_and_are_left_out_when_off() {
        let (codec, f) = codec();
        let spec = || JobSpec::new(f.call(1), At(at())).id("r");
        let on = spec()
            .recover_lost_runs(true)
            .max_instances_across_nodes(true)
            .into_job(&JobDefaults::default(), at())
            .unwrap();
        let bytes = codec.encode_json(&on).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["recover"], true);
        assert_eq!(json["max_instances_across_nodes"], true);
        let back = codec.decode_json("r", &bytes).unwrap();
        assert!(back.recover_lost_runs());
        assert!(back.max_instances_across_nodes());
        let off = spec().into_job(&JobDefaults::default(), at()).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&codec.encode_json(&off).unwrap()).unwrap();
        assert!(json.get("recover").is_none(), "absent means off: {json}");
        assert!(
            json.get("max_instances_across_nodes").is_none(),
            "absent means off: {json}"
        );
    }

    /// A record exactly as this crate wrote it before `timeout` existed (release 0.1.0).
    const RECORD_V1_BEFORE_TIMEOUT: &str = r#"{"version":1,"id":"j","name":"counter","func":"count","args":7,"trigger":{"kind":"at","state":"2023-11-14T22:13:20.123456Z"},"executor":"pool","misfire_grace_time":1.5,"coalesce":false,"max_instances":4,"next_run_time":"2023-11-14T22:13:20.123456Z"}"#;

    #[test]
    fn a_record_written_before_optional_fields_existed_reads_and_writes_back_the_same() {
        let (codec, _) = codec();
        let job = codec
            .decode_json("j", RECORD_V1_BEFORE_TIMEOUT.as_bytes())
            .unwrap();
        assert_eq!(job.timeout(), None);
        assert_eq!(job.max_instances(), 4);
        assert_eq!(job.next_run_time(), Some(at()));
        assert_eq!(
            String::from_utf8(codec.encode_json(&job).unwrap()).unwrap(),
            RECORD_V1_BEFORE_TIMEOUT,
            "rewriting an old record must not change it"
        );
    }

    #[test]
    fn fields_a_newer_build_added_are_ignored_and_kept() {
        let (codec, _) = codec();
        let mut json: serde_json::Value = serde_json::from_str(RECORD_V1_BEFORE_TIMEOUT).unwrap();
        json["priority"] = 5.into();
        json["tags"] = serde_json::json!(["a", "b"]);
        let job = codec.decode_json("j", json.to_string().as_bytes()).unwrap();
        assert_eq!(job.max_instances(), 4);
        let written: serde_json::Value =
            serde_json::from_slice(&codec.encode_json(&job).unwrap()).unwrap();
        assert_eq!(
            written, json,
            "a rewrite dropped or changed a field it does not know"
        );
    }

    #[test]
    fn run_times_from_records_are_whole_microseconds() {
        let (codec, _) = codec();
        let mut json: serde_json::Value = serde_json::from_str(RECORD_V1_BEFORE_TIMEOUT).unwrap();
        json["next_run_time"] = "2023-11-14T22:13:20.123456789Z".into();
        let job = codec.decode_json("j", json.to_string().as_bytes()).unwrap();
        assert_eq!(job.next_run_time(), Some(at()));
    }

    #[test]
    fn closures_are_refused() {
        let (codec, _) = codec();
        let job = JobSpec::new(JobTarget::closure("c", || ()), At(at()))
            .id("c")
            .into_job(&JobDefaults::default(), at())
            .unwrap();
        let err = codec.encode(&job).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotPersistable);
        assert_eq!(err.job_id(), Some("c"));
    }

    #[test]
    fn unreadable_records_are_typed_errors_naming_the_job() {
        let (codec, f) = codec();
        let job = JobSpec::new(f.call(1), At(at()))
            .id("j")
            .into_job(&JobDefaults::default(), at())
            .unwrap();
        let good = codec.encode(&job).unwrap();

        let mut unknown_func = good.clone();
        unknown_func.func = "gone".into();
        let mut unknown_trigger = good.clone();
        unknown_trigger.trigger.kind = "lunar".into();
        let mut newer = good.clone();
        newer.version = 2;
        let mut zero_timeout = good.clone();
        zero_timeout.timeout = Some(Duration::ZERO);
        let mut zero_instances = good;
        zero_instances.max_instances = 0;
        for (record, kind) in [
            (unknown_func, ErrorKind::UnknownJobFunction),
            (unknown_trigger, ErrorKind::InvalidTrigger),
            (newer, ErrorKind::Serialization),
            (zero_timeout, ErrorKind::InvalidJob),
            (zero_instances, ErrorKind::InvalidJob),
        ] {
            let err = codec.decode(record).unwrap_err();
            assert_eq!((err.kind(), err.job_id()), (kind, Some("j")), "{err}");
        }
        let err = codec.decode_json("j", b"{not json").unwrap_err();
        assert_eq!(
            (err.kind(), err.job_id()),
            (ErrorKind::Serialization, Some("j"))
        );
    }
}

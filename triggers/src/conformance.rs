//! APScheduler's keyword arguments and the conformance case format (feature `conformance`).
//!
//! The conformance data in this repository (`tests/data/`) is APScheduler 3.11's own answer
//! for thousands of trigger cases. Each case is a JSON object naming a trigger kind and its
//! keyword arguments as APScheduler takes them (`{"trigger": "cron", "args": {"hour": 2}}` or
//! `{"crontab": "0 2 * * *"}`), the scheduler's time zone, a "now" and how many fire times
//! to produce. [`run_case`] answers a case in the same JSON format APScheduler's oracle
//! writes, so the two can be diffed line by line. The `fire_times` example in the `examples`
//! crate wraps it for standard input and output.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use scheduler_core::Trigger;
use serde_json::{Map, Value, json};

use crate::zone::{Zone, ZonedDateTime};
use crate::{FixedJitter, JitterSource, LocalTrigger, TriggerError};

/// A trigger described the way the conformance cases (and APScheduler's `add_job`) do: a kind
/// plus keyword arguments, or a crontab line.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerSpec {
    /// `{"trigger": kind, "args": {...}}`.
    Kind {
        /// `date`, `interval`, `cron`, `calendarinterval`, `and` or `or`.
        kind: String,
        /// APScheduler's keyword arguments.
        args: Map<String, Value>,
    },
    /// `{"crontab": "m h dom mon dow"}`, built with `CronTrigger::from_crontab`.
    Crontab(String),
}

impl TriggerSpec {
    /// Reads a spec from a case object (or a sub-trigger of `and`/`or`).
    pub fn from_json(value: &Value) -> Result<Self, TriggerError> {
        let bad = |reason: &str| TriggerError::InvalidOption {
            kind: "spec".into(),
            option: "trigger".into(),
            reason: reason.into(),
        };
        if let Some(crontab) = value.get("crontab") {
            let text = crontab
                .as_str()
                .ok_or_else(|| bad("crontab must be a string"))?;
            return Ok(TriggerSpec::Crontab(text.to_owned()));
        }
        let kind = value
            .get("trigger")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("missing \"trigger\" or \"crontab\""))?;
        let args = match value.get("args") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(bad("args must be an object")),
        };
        Ok(TriggerSpec::Kind {
            kind: kind.to_owned(),
            args,
        })
    }

    /// Builds the trigger. `timezone` is the scheduler's zone, used unless the arguments name
    /// one (as `add_job` does); `jitter_source` replaces the random source of every jittered
    /// trigger in the tree.
    pub fn build(
        &self,
        timezone: Zone,
        jitter_source: Option<Arc<dyn JitterSource>>,
    ) -> Result<Built, TriggerError> {
        let context = Context {
            timezone,
            jitter_source,
        };
        context.build(self)
    }
}

/// A trigger built from a [`TriggerSpec`].
#[derive(Debug, Clone)]
pub struct Built {
    local: Arc<dyn LocalTrigger>,
    shared: Arc<dyn Trigger>,
    kind: &'static str,
    zone: Option<Zone>,
}

impl Built {
    fn new<T: LocalTrigger>(trigger: T, kind: &'static str, zone: Option<Zone>) -> Self {
        let trigger = Arc::new(trigger);
        Built {
            local: trigger.clone(),
            shared: trigger,
            kind,
            zone,
        }
    }

    /// The trigger, answering local times.
    pub fn local(&self) -> &dyn LocalTrigger {
        &*self.local
    }

    /// The kind name (`date`, `cron`, …).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The zone APScheduler shows this trigger's fire times in (`None` for `and`/`or`, whose
    /// answers come from their children).
    pub fn zone(&self) -> Option<Zone> {
        self.zone
    }

    /// The trigger as a shareable [`Trigger`].
    pub fn trigger(&self) -> Arc<dyn Trigger> {
        self.shared.clone()
    }
}

struct Context {
    timezone: Zone,
    jitter_source: Option<Arc<dyn JitterSource>>,
}

/// Reads keyword arguments, refusing unknown ones as Python's `TypeError` does.
struct Args<'a> {
    kind: &'a str,
    args: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    fn new(
        kind: &'a str,
        args: &'a Map<String, Value>,
        known: &[&str],
    ) -> Result<Self, TriggerError> {
        if let Some(unknown) = args.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(TriggerError::InvalidOption {
                kind: kind.into(),
                option: unknown.clone(),
                reason: "unknown option".into(),
            });
        }
        Ok(Args { kind, args })
    }

    fn error(&self, option: &str, reason: &str) -> TriggerError {
        TriggerError::InvalidOption {
            kind: self.kind.into(),
            option: option.into(),
            reason: reason.into(),
        }
    }

    fn get(&self, option: &str) -> Option<&'a Value> {
        self.args.get(option).filter(|v| !v.is_null())
    }

    fn number(&self, option: &str) -> Result<Option<f64>, TriggerError> {
        self.get(option)
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| self.error(option, "expected a number"))
            })
            .transpose()
    }

    fn integer(&self, option: &str) -> Result<Option<i64>, TriggerError> {
        self.get(option)
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| self.error(option, "expected an integer"))
            })
            .transpose()
    }

    fn string(&self, option: &str) -> Result<Option<&'a str>, TriggerError> {
        self.get(option)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.error(option, "expected a string"))
            })
            .transpose()
    }

    /// A cron field: an integer or a string, as APScheduler's `str(value)`.
    fn expression(&self, option: &str) -> Result<Option<String>, TriggerError> {
        self.get(option)
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
                _ => Err(self.error(option, "expected an integer or a string")),
            })
            .transpose()
    }

    fn timezone(&self, default: Zone) -> Result<Zone, TriggerError> {
        Ok(match self.string("timezone")? {
            Some(name) => name.parse()?,
            None => default,
        })
    }
}

impl Context {
    fn build(&self, spec: &TriggerSpec) -> Result<Built, TriggerError> {
        let (kind, args) = match spec {
            TriggerSpec::Crontab(line) => return self.crontab(line),
            TriggerSpec::Kind { kind, args } => (kind.as_str(), args),
        };
        match kind {
            #[cfg(feature = "date")]
            "date" => {
                let args = Args::new(kind, args, &["run_date", "timezone"])?;
                let zone = args.timezone(self.timezone)?;
                let run_date = args.string("run_date")?.ok_or_else(|| {
                    args.error("run_date", "required (APScheduler's default is now)")
                })?;
                let trigger = crate::DateTrigger::in_zone(run_date, zone)?;
                let zone = trigger.zone();
                Ok(Built::new(trigger, "date", Some(zone)))
            }
            #[cfg(feature = "interval")]
            "interval" => {
                let args = Args::new(
                    kind,
                    args,
                    &[
                        "weeks",
                        "days",
                        "hours",
                        "minutes",
                        "seconds",
                        "start_date",
                        "end_date",
                        "timezone",
                        "jitter",
                    ],
                )?;
                let zone = args.timezone(self.timezone)?;
                let unit = |name| args.number(name).map(|v| v.unwrap_or(0.0));
                let mut builder = crate::IntervalTrigger::builder()
                    .timezone(zone)
                    .weeks(unit("weeks")?)
                    .days(unit("days")?)
                    .hours(unit("hours")?)
                    .minutes(unit("minutes")?)
                    .seconds(unit("seconds")?);
                if let Some(start) = args.string("start_date")? {
                    builder = builder.start_date(start);
                }
                if let Some(end) = args.string("end_date")? {
                    builder = builder.end_date(end);
                }
                let mut builder = builder.jitter_seconds(args.number("jitter")?.unwrap_or(0.0));
                if let Some(source) = &self.jitter_source {
                    builder = builder.jitter_source(source.clone());
                }
                Ok(Built::new(builder.build()?, "interval", Some(zone)))
            }
            #[cfg(feature = "cron")]
            "cron" => {
                const FIELDS: [&str; 8] = [
                    "year",
                    "month",
                    "day",
                    "week",
                    "day_of_week",
                    "hour",
                    "minute",
                    "second",
                ];
                let known: Vec<&str> = FIELDS
                    .iter()
                    .copied()
                    .chain(["start_date", "end_date", "timezone", "jitter"])
                    .collect();
                let args = Args::new(kind, args, &known)?;
                let zone = args.timezone(self.timezone)?;
                let mut builder = crate::CronTrigger::builder().timezone(zone);
                for name in FIELDS {
                    if let Some(value) = args.expression(name)? {
                        builder = match name {
                            "year" => builder.year(value),
                            "month" => builder.month(value),
                            "day" => builder.day(value),
                            "week" => builder.week(value),
                            "day_of_week" => builder.day_of_week(value),
                            "hour" => builder.hour(value),
                            "minute" => builder.minute(value),
                            _ => builder.second(value),
                        };
                    }
                }
                if let Some(start) = args.string("start_date")? {
                    builder = builder.start_date(start);
                }
                if let Some(end) = args.string("end_date")? {
                    builder = builder.end_date(end);
                }
                let mut builder = builder.jitter_seconds(args.number("jitter")?.unwrap_or(0.0));
                if let Some(source) = &self.jitter_source {
                    builder = builder.jitter_source(source.clone());
                }
                Ok(Built::new(builder.build()?, "cron", Some(zone)))
            }
            #[cfg(feature = "calendar-interval")]
            "calendarinterval" => {
                let args = Args::new(
                    kind,
                    args,
                    &[
                        "years",
                        "months",
                        "weeks",
                        "days",
                        "hour",
                        "minute",
                        "second",
                        "start_date",
                        "end_date",
                        "timezone",
                        "jitter",
                    ],
                )?;
                let zone = args.timezone(self.timezone)?;
                let count = |name: &str| -> Result<u32, TriggerError> {
                    let value = args.integer(name)?.unwrap_or(0);
                    u32::try_from(value).map_err(|_| {
                        args.error(name, "must be a non-negative integer (negative ones run backwards in APScheduler)")
                    })
                };
                let mut builder = crate::CalendarIntervalTrigger::builder()
                    .timezone(zone)
                    .years(count("years")?)
                    .months(count("months")?)
                    .weeks(count("weeks")?)
                    .days(count("days")?)
                    .time(count("hour")?, count("minute")?, count("second")?)
                    .jitter_seconds(args.number("jitter")?.unwrap_or(0.0));
                if let Some(start) = args.string("start_date")? {
                    builder =
                        builder.start_date(crate::datespec::parse_iso_date(start, "start_date")?);
                }
                if let Some(end) = args.string("end_date")? {
                    builder = builder.end_date(crate::datespec::parse_iso_date(end, "end_date")?);
                }
                if let Some(source) = &self.jitter_source {
                    builder = builder.jitter_source(source.clone());
                }
                Ok(Built::new(builder.build()?, "calendarinterval", Some(zone)))
            }
            #[cfg(feature = "combining")]
            "and" | "or" => {
                let args = Args::new(kind, args, &["triggers", "jitter"])?;
                let children = args
                    .get("triggers")
                    .and_then(Value::as_array)
                    .ok_or_else(|| args.error("triggers", "expected a list of triggers"))?
                    .iter()
                    .map(|child| Ok(self.build(&TriggerSpec::from_json(child)?)?.local))
                    .collect::<Result<Vec<_>, TriggerError>>()?;
                let jitter = args.number("jitter")?.unwrap_or(0.0);
                let source = self.jitter_source.clone();
                if kind == "and" {
                    let mut trigger =
                        crate::AndTrigger::new_local(children)?.jitter_seconds(jitter);
                    if let Some(source) = source {
                        trigger = trigger.jitter_source(source);
                    }
                    Ok(Built::new(trigger, "and", None))
                } else {
                    let mut trigger = crate::OrTrigger::new_local(children)?.jitter_seconds(jitter);
                    if let Some(source) = source {
                        trigger = trigger.jitter_source(source);
                    }
                    Ok(Built::new(trigger, "or", None))
                }
            }
            other => Err(TriggerError::InvalidOption {
                kind: other.into(),
                option: "trigger".into(),
                reason: "unknown trigger kind (or its cargo feature is disabled)".into(),
            }),
        }
    }

    #[cfg(feature = "cron")]
    fn crontab(&self, line: &str) -> Result<Built, TriggerError> {
        let trigger = crate::CronTrigger::from_crontab(line, self.timezone)?;
        Ok(Built::new(trigger, "cron", Some(self.timezone)))
    }

    #[cfg(not(feature = "cron"))]
    fn crontab(&self, line: &str) -> Result<Built, TriggerError> {
        Err(TriggerError::InvalidOption {
            kind: "cron".into(),
            option: "crontab".into(),
            reason: format!("cannot build {line:?}: the cron feature is disabled"),
        })
    }
}

/// Answers one conformance case (a JSON object, format in `tests/data/README.md`) in
/// APScheduler's output format:
/// `{"id", "fire_times", "exhausted", "error", "timeout", ["raw"], ["jitter_fraction"]}`.
///
/// Fire times are shown as APScheduler's oracle normalises them: the real local time of the
/// instant in the answer's own zone. `raw` lists the local times exactly as answered when
/// they differ (a non-existent wall time with the offset from before a DST gap).
pub fn run_case(case: &Value) -> Value {
    let id = case.get("id").cloned().unwrap_or(Value::Null);
    let fraction = case
        .get("jitter_fraction")
        .and_then(Value::as_f64)
        .unwrap_or(0.5);
    let mut out = json!({
        "id": id,
        "fire_times": [],
        "exhausted": false,
        "error": null,
        "timeout": false,
    });
    let mut fire_times = Vec::new();
    let mut raw = Vec::new();
    let result = (|| -> Result<bool, String> {
        let zone: Zone = match case.get("timezone").and_then(Value::as_str) {
            Some(name) => name.parse().map_err(|e: TriggerError| e.to_string())?,
            None => return Err("the case has no timezone".into()),
        };
        let spec = TriggerSpec::from_json(case).map_err(|e| e.to_string())?;
        let source: Arc<dyn JitterSource> = Arc::new(FixedJitter::new(fraction));
        let built = spec.build(zone, Some(source)).map_err(|e| e.to_string())?;
        if has_jitter(case) {
            out["jitter_fraction"] = json!(fraction);
        }
        let start = case
            .get("start")
            .and_then(Value::as_str)
            .ok_or("the case has no start")?;
        let mut now = parse_now(start, zone)?.instant();
        let mut previous = match case.get("previous").and_then(Value::as_str) {
            Some(text) => Some(parse_now(text, zone)?.to_local()),
            None => None,
        };
        let count = case.get("count").and_then(Value::as_u64).unwrap_or(10);
        // Answers of `and`/`or` come from children whose zones they do not know; show them
        // in the scheduler's zone, which is every child's zone in the cases.
        let display = built.zone().unwrap_or(zone);
        for _ in 0..count {
            let next = built
                .local()
                .next_local_fire_time(previous, now)
                .map_err(|e| e.to_string())?;
            let Some(next) = next else {
                return Ok(true);
            };
            let zone = match built.zone() {
                Some(zone) => ZonedDateTime::from_local(next, zone).zone,
                None => display,
            };
            let canonical = ZonedDateTime::from_utc(next.naive_utc(), zone).to_local();
            fire_times.push(isoformat(canonical));
            raw.push(if built.zone().is_some() {
                isoformat(next)
            } else {
                isoformat(canonical)
            });
            previous = Some(next);
            now = next.to_utc();
        }
        Ok(false)
    })();
    match result {
        Ok(exhausted) => out["exhausted"] = json!(exhausted),
        Err(message) => out["error"] = json!(message),
    }
    if raw != fire_times {
        out["raw"] = json!(raw);
    }
    out["fire_times"] = json!(fire_times);
    out
}

fn has_jitter(spec: &Value) -> bool {
    let args = spec.get("args");
    let own = args
        .and_then(|a| a.get("jitter"))
        .and_then(Value::as_f64)
        .is_some_and(|j| j != 0.0);
    own || args
        .and_then(|a| a.get("triggers"))
        .and_then(Value::as_array)
        .is_some_and(|children| children.iter().any(has_jitter))
}

/// The oracle's `parse_now`: an aware ISO time converted into the zone, a naive one localised.
fn parse_now(text: &str, zone: Zone) -> Result<ZonedDateTime, String> {
    if let Ok(aware) = DateTime::parse_from_rfc3339(text) {
        return Ok(ZonedDateTime::from_instant(aware.to_utc(), zone));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .map(|wall| ZonedDateTime::localize(wall, zone))
        .map_err(|e| format!("bad time {text:?}: {e}"))
}

/// Python's `datetime.isoformat()`.
pub fn isoformat(value: DateTime<FixedOffset>) -> String {
    let micros = value.timestamp_subsec_micros();
    let mut text = value.naive_local().format("%Y-%m-%dT%H:%M:%S").to_string();
    if micros != 0 {
        text.push_str(&format!(".{micros:06}"));
    }
    text.push_str(&crate::zone::format_offset(*value.offset()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_the_oracle_format() {
        let case = json!({
            "id": "x", "trigger": "interval", "timezone": "Europe/Berlin",
            "args": {"hours": 1, "start_date": "2024-10-27 01:30:00"},
            "start": "2024-10-27T00:00:00+02:00", "count": 3
        });
        assert_eq!(
            run_case(&case),
            json!({
                "id": "x",
                "fire_times": [
                    "2024-10-27T01:30:00+02:00",
                    "2024-10-27T02:30:00+02:00",
                    "2024-10-27T02:30:00+01:00"
                ],
                "exhausted": false, "error": null, "timeout": false
            })
        );
        let broken = json!({"id": "y", "trigger": "interval", "timezone": "UTC",
            "args": {"hours": "one"}, "start": "2024-01-01T00:00:00Z"});
        assert!(
            run_case(&broken)["error"]
                .as_str()
                .unwrap()
                .contains("hours")
        );
    }
}

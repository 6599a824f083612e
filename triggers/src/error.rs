//! The one error type of this crate.

#[cfg(any(
    feature = "date",
    feature = "interval",
    feature = "cron",
    feature = "calendar-interval",
    feature = "combining"
))]
use std::fmt;

/// Why a trigger could not be built or restored.
///
/// Every variant names what was wrong (the field or argument, the input and the reason), so
/// the message alone tells a user what to fix. It converts into [`scheduler_core::Error`] of
/// kind [`InvalidTrigger`](scheduler_core::ErrorKind::InvalidTrigger), keeping itself as the
/// source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// A cron field expression does not parse or is out of range.
    #[error("invalid {field} expression {expression:?}: {reason}")]
    CronExpression {
        /// The field, such as `day_of_week`.
        field: &'static str,
        /// The whole expression as given.
        expression: String,
        /// What is wrong with it.
        #[source]
        reason: ExpressionError,
    },
    /// A crontab line does not have exactly five fields.
    #[error(
        "invalid crontab {expression:?}: expected 5 fields (minute hour day month day_of_week), \
         got {found}"
    )]
    CrontabFieldCount {
        /// The crontab line as given.
        expression: String,
        /// How many whitespace-separated fields it has.
        found: usize,
    },
    /// A date or date/time argument does not parse or does not exist.
    #[error("invalid {argument} {input:?}: {reason}")]
    InvalidDate {
        /// The argument, such as `start_date`.
        argument: &'static str,
        /// The input as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A time zone name is not in the IANA database bundled with `chrono-tz`.
    #[error("unknown time zone {name:?}")]
    UnknownTimeZone {
        /// The name as given.
        name: String,
    },
    /// An argument is out of range or inconsistent with another one.
    #[error("invalid {argument}: {reason}")]
    InvalidArgument {
        /// The argument, such as `interval` or `end_date`.
        argument: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An option map (APScheduler-style keyword arguments) names an unknown option or has a
    /// value of the wrong type.
    #[error("invalid option {option:?} for a {kind} trigger: {reason}")]
    InvalidOption {
        /// The trigger kind, such as `cron`.
        kind: String,
        /// The option name.
        option: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A saved trigger state cannot be read back.
    #[error("cannot restore a {kind:?} trigger: {reason}")]
    InvalidState {
        /// The trigger kind.
        kind: &'static str,
        /// What is wrong with the state.
        reason: String,
    },
}

impl TriggerError {
    #[cfg(any(
        feature = "interval",
        feature = "cron",
        feature = "calendar-interval",
        feature = "combining"
    ))]
    pub(crate) fn argument(argument: &'static str, reason: impl fmt::Display) -> Self {
        TriggerError::InvalidArgument {
            argument,
            reason: reason.to_string(),
        }
    }

    #[cfg(any(
        feature = "date",
        feature = "interval",
        feature = "cron",
        feature = "calendar-interval",
        feature = "combining"
    ))]
    pub(crate) fn state(kind: &'static str, reason: impl fmt::Display) -> Self {
        TriggerError::InvalidState {
            kind,
            reason: reason.to_string(),
        }
    }
}

/// What is wrong with one cron field expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpressionError {
    /// An element of a comma-separated list is empty (`1,,2`).
    #[error("an element of the list is empty")]
    EmptyElement,
    /// An element matches no form of the grammar.
    #[error("{element:?} is not a valid expression for this field")]
    Unrecognized {
        /// The offending list element.
        element: String,
    },
    /// An element starts with a valid form but has more text after it. APScheduler 3.x
    /// silently ignores that text (`mon-fri/2` means `mon-fri`); this crate refuses it.
    #[error(
        "unexpected {rest:?} after {accepted:?} (APScheduler 3.x silently ignores it; \
         write the expression without it)"
    )]
    TrailingText {
        /// The valid leading part.
        accepted: String,
        /// The ignored rest.
        rest: String,
    },
    /// A step of zero (`*/0`).
    #[error("the step must be higher than 0")]
    ZeroStep,
    /// A step larger than the range it steps through (`*/60` for minutes).
    #[error("the step value ({step}) is higher than the total range of the expression ({range})")]
    StepTooLarge {
        /// The step as written.
        step: u64,
        /// The size of the range.
        range: u64,
    },
    /// A value below the field's minimum.
    #[error("the first value ({value}) is lower than the minimum value ({min})")]
    BelowMinimum {
        /// The value as written.
        value: u64,
        /// The field's minimum.
        min: u32,
    },
    /// A value above the field's maximum.
    #[error("the last value ({value}) is higher than the maximum value ({max})")]
    AboveMaximum {
        /// The value as written.
        value: u64,
        /// The field's maximum.
        max: u32,
    },
    /// A range whose start is after its end (`5-3`, `fri-mon`); ranges do not wrap around.
    #[error("the minimum value in a range ({first}) must not be higher than the maximum ({last})")]
    ReversedRange {
        /// The start as written.
        first: String,
        /// The end as written.
        last: String,
    },
    /// A month name other than `jan`..`dec`.
    #[error("invalid month name {0:?}")]
    UnknownMonth(String),
    /// A weekday name other than `mon`..`sun`.
    #[error("invalid weekday name {0:?}")]
    UnknownWeekday(String),
}

impl From<TriggerError> for scheduler_core::Error {
    fn from(error: TriggerError) -> Self {
        scheduler_core::Error::invalid_trigger(error.to_string()).with_source(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn converts_into_an_invalid_trigger_error_keeping_the_source() {
        let error = TriggerError::CronExpression {
            field: "minute",
            expression: "*/0".into(),
            reason: ExpressionError::ZeroStep,
        };
        let core: scheduler_core::Error = error.clone().into();
        assert_eq!(core.kind(), scheduler_core::ErrorKind::InvalidTrigger);
        assert_eq!(
            core.to_string(),
            "invalid minute expression \"*/0\": the step must be higher than 0"
        );
        let source = core
            .source()
            .expect("the trigger error is kept as the source");
        assert_eq!(source.downcast_ref::<TriggerError>(), Some(&error));
    }
}

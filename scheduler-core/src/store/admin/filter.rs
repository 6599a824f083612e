//! Which rows a listing shows: the questions an operator asks of a store ("what is paused?",
//! "what runs in the next hour?", "which jobs call `send_report`?").

use chrono::{DateTime, Utc};

use super::RecordView;

/// A filter for [`list`](super::list)'s rows: every condition set must hold (the default,
/// with none set, keeps every row). Text conditions are globs (`*` any run of characters,
/// `?` one character; without either, the text must be equal). An unreadable record matches
/// only the conditions on its row (id, paused, run time), never one on its record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Filter {
    /// `Some(true)`: only paused jobs; `Some(false)`: only scheduled ones.
    pub paused: Option<bool>,
    /// Only jobs whose run time (the store's, which a pending run-now request sets) is at or
    /// before this time: the ones due by then.
    pub due_before: Option<DateTime<Utc>>,
    /// A glob on the job id.
    pub id: Option<String>,
    /// A glob on the job name.
    pub name: Option<String>,
    /// A glob on the registered name of the job function.
    pub function: Option<String>,
    /// A glob on the executor alias.
    pub executor: Option<String>,
    /// Only records this build cannot read.
    pub unreadable: bool,
    /// Only jobs with a pending run-now request.
    pub run_requested: bool,
}

impl Filter {
    /// Whether `view` passes every condition set.
    pub fn matches(&self, view: &RecordView) -> bool {
        let record = view.record.as_ref().ok();
        let text = |glob: &Option<String>, field: Option<&str>| match glob {
            None => true,
            Some(glob) => field.is_some_and(|f| glob_matches(glob, f)),
        };
        self.paused
            .is_none_or(|paused| view.next_run_time.is_none() == paused)
            && self
                .due_before
                .is_none_or(|limit| view.next_run_time.is_some_and(|t| t <= limit))
            && text(&self.id, Some(&view.id))
            && text(&self.name, record.map(|r| r.name.as_str()))
            && text(&self.function, record.map(|r| r.func.as_str()))
            && text(&self.executor, record.map(|r| r.executor.as_str()))
            && (!self.unreadable || view.unreadable())
            && (!self.run_requested || view.run_request().is_some())
    }
}

/// Whether `text` matches `glob` (`*`: any run of characters, `?`: one character), in time
/// linear in their lengths times the number of `*`s.
pub(crate) fn glob_matches(glob: &str, text: &str) -> bool {
    let (glob, text): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut g, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and try again from there.
                Some((sg, st)) => {
                    star = Some((sg, st + 1));
                    g = sg + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs_match_as_a_shell_does() {
        for (glob, text, expected) in [
            ("report", "report", true),
            ("report", "reports", false),
            ("rep*", "report", true),
            ("*port", "report", true),
            ("r*p*t", "report", true),
            ("r?port", "report", true),
            ("r?port", "rport", false),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("nightly-*", "nightly-é", true),
        ] {
            assert_eq!(glob_matches(glob, text), expected, "{glob:?} on {text:?}");
        }
    }
}

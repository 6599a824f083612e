//! Triggers with APScheduler 3.x fire times (work in progress).

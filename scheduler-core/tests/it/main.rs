//! The scheduler's behaviour, ported from APScheduler's scheduler and job tests, on the memory
//! store and the real executors with a manual clock.

mod cluster;
mod components;
mod conformance;
mod events;
mod failure;
mod harness;
mod jobs;
mod lifecycle;
mod processing;
mod run_now;
mod shutdown;
mod stores;
mod sync;
mod trigger_calls;

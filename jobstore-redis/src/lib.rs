//! A Redis job store (coming with the persistent-stores issue).
//!
//! This crate is a placeholder in the workspace layout; its store arrives with the
//! persistent-stores issue and will run `scheduler_core::jobstore_conformance!` like every
//! other store.
//!
//! ```
//! // Until then, the contract it will implement:
//! fn assert_store<S: scheduler_core::JobStore>() {}
//! ```

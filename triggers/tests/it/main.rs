//! Integration tests: one binary (so the crate links once).

mod conformance;
mod persistence;
mod properties;
mod timezone;

//! The quick start (placeholder until written).
fn main() {}

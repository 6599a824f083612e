//! Workspace automation (placeholder until written).
fn main() {}

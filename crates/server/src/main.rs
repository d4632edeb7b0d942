//! The `inferscope` binary.
fn main() {}

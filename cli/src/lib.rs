//! The `toystore` command's library: running the store locally, loading it, evaluating it.

pub mod local;
pub mod stats;

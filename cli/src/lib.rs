//! The `toystore` command's library: running the store locally, loading it, evaluating it.

pub mod etcd;
pub mod eval;
pub mod load;
pub mod local;
pub mod plot;
pub mod report;
pub mod stats;

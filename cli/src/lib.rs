//! The `toystore` command's library: running the store locally.

pub mod local;

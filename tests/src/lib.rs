//! Support for dbuild's end-to-end tests (`tests/tests/*.rs`), which start
//! real processes and containers: commands with deadlines ([`cmd`]), the
//! Docker CLI and a guard that removes what a test made ([`docker`]), a
//! cached base image made with debootstrap and `docker import` ([`base`]),
//! and HTTP to a server listening on loopback inside a container's network
//! namespace ([`netns`]).

pub mod base;
pub mod cmd;
pub mod docker;
pub mod netns;

use std::path::PathBuf;

/// The repository's top directory.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".."))
}

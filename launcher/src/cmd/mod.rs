//! One module per `dbuild` subcommand.

pub mod bench;
pub mod spec_args;
pub mod spec_dump;
pub mod graph;
pub mod simulate;
pub mod rootfs;

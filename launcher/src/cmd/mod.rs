//! One module per `dbuild` subcommand.

pub mod bench;
pub mod graph;
pub mod local;
pub mod logs;
pub mod reach;
pub mod rootfs;
pub mod simulate;
pub mod spec_args;
pub mod spec_dump;
pub mod status;
pub mod verify;

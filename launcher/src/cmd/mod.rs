//! One module per `dbuild` subcommand.

pub mod graph;

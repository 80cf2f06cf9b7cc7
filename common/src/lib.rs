//! dbuild-common: the pure logic shared by dbuild's binaries.
//!
//! Nothing here starts a server or a process: parsing, graphs and wire types
//! only, so that every piece can be unit tested and reused by the scheduler,
//! the worker, the launcher and the simulator alike.

pub mod corpus;
pub mod dispatch;
pub mod eta;
pub mod evr;
pub mod exit;
pub mod graph;
pub mod plan;
pub mod provided;
pub mod settings;
pub mod share;
pub mod simulate;
pub mod spec;
pub mod weights;
pub mod wire;

//! dbuild's build worker: leases a package from the scheduler, builds it with
//! `rpmbuild` in a fresh chroot and publishes the RPMs on the shared volume.
//!
//! The pipeline ([`job::run_job`]) is driven by a [`job::BuildJob`] and knows
//! nothing of HTTP; [`client`] is the thin layer that turns leases into jobs.
//!
//! | module | concern |
//! |---|---|
//! | [`sandbox`] | the private namespaces a build runs in (PID 1 `dbuild-sandbox`: overlay, proc, /dev, /tmp, binds, steps) |
//! | [`mounts`] | bind and root-layout types, the overlay probe, crash leftovers |
//! | [`chroot`] | one slot's directories (overlay upper/work or a copy of the base) and their removal |
//! | [`prepared`] | a slot and its waiting sandbox made before the lease arrives |
//! | [`ahead`] | the reserved next build prepared (chroot, sources, install) during the current one |
//! | [`install`] | installing the BuildRequires closure into the chroot with rpm |
//! | [`provides`] | provides-only packages: the base root's Debian packages, `--assume-provided` |
//! | [`sources`] | staging spec, includes, patches and sources; `config.yaml` sha512 checks |
//! | [`rpmbuild`] | running a command with a streamed log, wall-time and silent-time limits |
//! | [`publish`] | atomic publication of RPMs/SRPMs with sha256 |
//! | [`rootfs`] | creating the base builder root (debootstrap) |
//! | [`apt_sources`] | the host's apt sources: the default Debian mirror |
//! | [`client`] | the scheduler protocol: register, lease, heartbeat, report |
//! | [`startup`] | the scheduler's URL checked, the scheduler waited for at start-up |
//! | [`health`] | the `--listen` HTTP listener: `/healthz`, `/readyz`, `/metrics` |
//! | [`metrics`] | the worker's Prometheus metrics |

pub mod ahead;
pub mod apt_sources;
pub mod chroot;
pub mod client;
pub mod health;
pub mod install;
pub mod job;
pub mod metrics;
pub mod mounts;
pub mod prepared;
pub mod provides;
pub mod publish;
pub mod rootfs;
pub mod rpmbuild;
pub mod sandbox;
pub mod sources;
pub mod startup;

/// Where the build tree lives inside every chroot (rpm's `%_topdir`).
pub const TOPDIR_IN_CHROOT: &str = "/usr/src/dbuild";

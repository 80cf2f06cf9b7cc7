//! A slot made ready before its lease: the chroot's directories and a
//! sandbox that has mounted what every build needs and waits for the build's
//! own part (see [`crate::sandbox::Go`]). The worker makes one while it waits
//! for a lease, so that the sandbox's start-up is not paid between two builds.

use crate::chroot::{Chroot, ChrootError};
use crate::job::{BuildError, WorkerConfig};
use crate::rpmbuild::RunError;
use tokio::process::Child;

/// See the module documentation. Dropping it kills the sandbox but leaves
/// the slot directory: call [`Prepared::close`].
pub struct Prepared {
    pub(crate) chroot: Chroot,
    pub(crate) sandbox: Child,
}

impl Prepared {
    /// Creates slot `slot`'s chroot and starts its waiting sandbox.
    pub async fn start(cfg: &WorkerConfig, slot: &str) -> Result<Prepared, BuildError> {
        let chroot = match Chroot::create(&cfg.slots_dir(), slot, &cfg.base_root, cfg.overlay).await
        {
            Ok(c) => c,
            Err(e) => {
                // Whatever was half made.
                let _ = crate::chroot::remove_tree(&cfg.slots_dir().join(slot)).await;
                return Err(e.into());
            }
        };
        let spawned = chroot
            .waiting_sandbox()
            .command()
            .map_err(ChrootError::from)
            .map_err(BuildError::from)
            .and_then(|mut cmd| {
                cmd.spawn().map_err(|source| {
                    BuildError::Run(RunError::Spawn {
                        what: "the build sandbox".into(),
                        source,
                    })
                })
            });
        match spawned {
            Ok(sandbox) => Ok(Prepared { chroot, sandbox }),
            Err(e) => {
                chroot.discard().await;
                Err(e)
            }
        }
    }

    /// The sandbox is still waiting (it has not ended).
    pub fn alive(&mut self) -> bool {
        matches!(self.sandbox.try_wait(), Ok(None))
    }

    /// Ends the sandbox (killing it if it still runs) and removes the slot
    /// directory (in the background): after a build, or instead of one.
    pub async fn close(mut self) {
        let _ = self.sandbox.start_kill();
        let _ = self.sandbox.wait().await;
        self.chroot.discard().await;
    }
}

//! One build slot's chroot: directories on the host, made from the base root.
//!
//! Layout of a slot, `<work-dir>/slots/<name>/`:
//! - `root/`  the chroot (overlay mount point, or a full copy of the base)
//! - `upper/`, `work/`  overlayfs upper and work directories
//! - `build/` rpm's `%_topdir` (SPECS, SOURCES, RPMS, SRPMS, BUILD, BUILDROOT), bind-mounted
//!   at [`crate::TOPDIR_IN_CHROOT`] so that the worker reads results without entering the namespace.

use crate::mounts::{Bind, MountError, RootLayout};
use crate::sandbox::{Plan as SandboxPlan, Step};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use thiserror::Error;
use tokio::sync::Notify;

/// How chroots are made (`--chroot-mode`).
pub use dbuild_common::settings::ChrootMode;

#[derive(Debug, Error)]
pub enum ChrootError {
    #[error("base root {base} is not a builder root (missing {missing})")]
    NotABase {
        base: PathBuf,
        missing: &'static str,
    },
    #[error("creating chroot directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("copying base root {base} to {dest}: {detail}")]
    Copy {
        base: PathBuf,
        dest: PathBuf,
        detail: String,
    },
    #[error(transparent)]
    Mount(#[from] MountError),
}

/// A prepared chroot. Call [`Chroot::remove`] when done (the slot directory is removed).
#[derive(Debug)]
pub struct Chroot {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub topdir: PathBuf,
    pub layout: RootLayout,
}

/// Checks that `base` looks like a builder root.
pub fn check_base(base: &Path) -> Result<(), ChrootError> {
    for missing in [
        "bin/sh",
        "usr/bin/rpmbuild",
        "usr/bin/rpm",
        "proc",
        "dev",
        "tmp",
    ] {
        if !base.join(missing).exists() {
            return Err(ChrootError::NotABase {
                base: base.to_path_buf(),
                missing,
            });
        }
    }
    Ok(())
}

impl Chroot {
    /// Creates slot `name` under `slots_dir` from `base`. `overlay` chooses overlayfs over a copy.
    pub async fn create(
        slots_dir: &Path,
        name: &str,
        base: &Path,
        overlay: bool,
    ) -> Result<Chroot, ChrootError> {
        let dir = slots_dir.join(name);
        let mk = |p: &Path| {
            std::fs::create_dir_all(p).map_err(|source| ChrootError::Create {
                path: p.to_path_buf(),
                source,
            })
        };
        if dir.exists() {
            remove_tree(&dir)
                .await
                .map_err(|source| ChrootError::Create {
                    path: dir.clone(),
                    source,
                })?;
        }
        let root = dir.join("root");
        let topdir = dir.join("build");
        for sub in ["SPECS", "SOURCES", "RPMS", "SRPMS", "BUILD", "BUILDROOT"] {
            mk(&topdir.join(sub))?;
        }
        let layout = if overlay {
            let (upper, work) = (dir.join("upper"), dir.join("work"));
            mk(&root)?;
            mk(&upper)?;
            mk(&work)?;
            RootLayout::Overlay {
                lower: base.to_path_buf(),
                upper,
                work,
            }
        } else {
            let out = tokio::process::Command::new("cp")
                .arg("-a")
                .arg("--reflink=auto")
                .arg(base)
                .arg(&root)
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|e| ChrootError::Copy {
                    base: base.to_path_buf(),
                    dest: root.clone(),
                    detail: e.to_string(),
                })?;
            if !out.status.success() {
                return Err(ChrootError::Copy {
                    base: base.to_path_buf(),
                    dest: root.clone(),
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            RootLayout::Copy
        };
        Ok(Chroot {
            dir,
            root,
            topdir,
            layout,
        })
    }

    /// The bind of the slot's `%_topdir` into the chroot.
    pub fn topdir_bind(&self) -> Bind {
        Bind {
            host: self.topdir.clone(),
            target: crate::TOPDIR_IN_CHROOT.to_string(),
            read_only: false,
        }
    }

    /// A sandbox over this chroot running `steps`, with `binds` mounted and
    /// its status file in the slot directory.
    pub fn sandbox(&self, binds: Vec<Bind>, steps: Vec<Step>, network: bool) -> SandboxPlan {
        SandboxPlan {
            binds,
            network,
            status_file: Some(self.status_file()),
            ..SandboxPlan::new(self.root.clone(), self.layout.clone(), steps)
        }
    }

    /// A sandbox over this chroot that mounts what every build needs (and
    /// `%_topdir`), then waits for its [`crate::sandbox::Go`] line; `go`
    /// may ask for the worker's own network.
    pub fn waiting_sandbox(&self) -> SandboxPlan {
        SandboxPlan {
            wait_for_go: true,
            host_netns: Some(PathBuf::from(format!(
                "/proc/{}/ns/net",
                std::process::id()
            ))),
            ..self.sandbox(vec![self.topdir_bind()], vec![], false)
        }
    }

    /// Where the sandbox reports how its steps ended.
    pub fn status_file(&self) -> PathBuf {
        self.dir.join("sandbox.status")
    }

    /// `argv` run chrooted in a sandbox of its own (one step, `command`), private network.
    pub fn chrooted(
        &self,
        binds: &[Bind],
        argv: &[String],
    ) -> Result<tokio::process::Command, ChrootError> {
        let step = Step {
            name: "command".into(),
            argv: argv.to_vec(),
            unmount_after: vec![],
        };
        Ok(self.sandbox(binds.to_vec(), vec![step], false).command()?)
    }

    /// Removes the slot directory (every process using it must have ended).
    pub async fn remove(self) -> std::io::Result<()> {
        remove_tree(&self.dir).await
    }

    /// Moves the slot directory aside with one rename and removes it in the
    /// background, so that reporting a build never waits for the deletion
    /// (every process using it must have ended); removes it now if the
    /// rename fails. [`removals_done`] waits for these; a worker's start-up
    /// clean-up removes what a crash left.
    pub async fn discard(self) {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let aside = self.dir.with_file_name(format!(
            ".discarded-{name}-{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        if let Err(e) = std::fs::rename(&self.dir, &aside) {
            tracing::error!(dir = %self.dir.display(), error = %e, "could not move the chroot aside");
            if let Err(e) = remove_tree(&self.dir).await {
                tracing::error!(dir = %self.dir.display(), error = %e, "could not remove the chroot");
            }
            return;
        }
        REMOVING.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if let Err(e) = remove_tree(&aside).await {
                tracing::error!(dir = %aside.display(), error = %e, "could not remove a discarded chroot");
            }
            REMOVING.fetch_sub(1, Ordering::SeqCst);
            REMOVED.notify_waiters();
        });
    }
}

/// Discarded slot directories still being removed.
static REMOVING: AtomicUsize = AtomicUsize::new(0);
static REMOVED: Notify = Notify::const_new();

/// Waits until every [`Chroot::discard`]ed directory is gone.
pub async fn removals_done() {
    loop {
        // Registered before the check, so a removal ending in between still wakes us.
        let removed = REMOVED.notified();
        if REMOVING.load(Ordering::SeqCst) == 0 {
            return;
        }
        removed.await;
    }
}

/// Removes a directory tree without ever following a mount into another
/// filesystem: in-process when nothing is mounted below it in this
/// namespace (the usual case: builds mount only in their own), else with
/// `rm -rf --one-file-system`.
pub async fn remove_tree(path: &Path) -> std::io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let canonical = std::fs::canonicalize(path)?;
    if crate::mounts::mounts_under(&canonical).is_empty() {
        let dir = canonical.clone();
        // std's remove_dir_all does not follow symbolic links.
        return tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir))
            .await
            .map_err(std::io::Error::other)?;
    }
    let out = tokio::process::Command::new("rm")
        .args(["-rf", "--one-file-system", "--"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .await?;
    if out.status.success() && !path.exists() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "rm -rf {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

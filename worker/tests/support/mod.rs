//! Shared by the worker's integration tests: the cached builder root, a
//! throw-away share with specs, and a worker configuration around them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod deadline;
pub mod promtool;
pub mod workspace_bin;

use dbuild_worker::job::{run_job, BuildJob, BuildResult, WorkerConfig};
use dbuild_worker::publish::Published;
use dbuild_worker::rootfs::{self, RootfsSpec};
use dbuild_worker::rpmbuild::Limits;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{watch, OnceCell};

static ROOT: OnceCell<PathBuf> = OnceCell::const_new();

/// The builder root, made once per machine (debootstrap, a few minutes) and
/// cached under /var/tmp keyed by a hash of its package list.
pub async fn base_root() -> PathBuf {
    ROOT.get_or_init(|| async {
        let spec = RootfsSpec {
            mirror: std::env::var("DBUILD_TEST_MIRROR")
                .unwrap_or_else(|_| rootfs::DEFAULT_MIRROR.into()),
            ..RootfsSpec::default()
        };
        let dest = PathBuf::from(format!("/var/tmp/dbuild-test-rootfs-{}", spec.key()));
        let report = rootfs::ensure(&spec, &dest)
            .await
            .expect("making the test builder root");
        eprintln!(
            "builder root {} ({}; {:.0} MiB, {:.1}s)",
            dest.display(),
            if report.reused { "reused" } else { "created" },
            report.bytes as f64 / 1048576.0,
            report.seconds
        );
        dest
    })
    .await
    .clone()
}

/// A build directory (share) and a work dir, both temporary.
pub struct Env {
    pub share: tempfile::TempDir,
    pub work: tempfile::TempDir,
    pub cfg: WorkerConfig,
}

impl Env {
    pub async fn new() -> Env {
        let base = base_root().await;
        let share = tempfile::Builder::new()
            .prefix("dbuild-share-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let work = tempfile::Builder::new()
            .prefix("dbuild-work-")
            .tempdir_in("/var/tmp")
            .unwrap();
        for d in [
            "SPECS",
            "SOURCES",
            "stage/RPMS",
            "stage/SRPMS",
            "stage/LOGS",
        ] {
            std::fs::create_dir_all(share.path().join(d)).unwrap();
        }
        assert!(
            dbuild_worker::mounts::overlay_works(&base, work.path()).await,
            "overlayfs must work here"
        );
        let cfg = WorkerConfig {
            build_dir: share.path().to_path_buf(),
            base_root: base,
            work_dir: work.path().to_path_buf(),
            overlay: true,
            prebuilt: Vec::new(),
            sources: Vec::new(),
            install_limits: Limits {
                wall: Duration::from_secs(300),
                silent: Duration::from_secs(120),
            },
            build_limits: Limits {
                wall: Duration::from_secs(300),
                silent: Duration::from_secs(60),
            },
            build_fsync: false,
        };
        Env { share, work, cfg }
    }

    /// Writes SPECS/<name>/<name>.spec (and extra files beside it); returns the spec path relative to the share.
    pub fn spec(&self, name: &str, text: &str, extra: &[(&str, &[u8])]) -> String {
        let dir = self.share.path().join("SPECS").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.spec")), text).unwrap();
        for (file, content) in extra {
            std::fs::write(dir.join(file), content).unwrap();
        }
        format!("SPECS/{name}/{name}.spec")
    }

    pub fn job(&self, name: &str, spec: &str, install: &[String], slot: &str) -> BuildJob {
        use std::sync::atomic::{AtomicU32, Ordering};
        static LEASES: AtomicU32 = AtomicU32::new(0);
        BuildJob {
            lease_id: format!("test-lease-{}", LEASES.fetch_add(1, Ordering::Relaxed)),
            package: name.into(),
            spec: spec.into(),
            attempt: 1,
            install: install.to_vec(),
            macros: vec![("dist".into(), ".ph5".into())],
            arch: "x86_64".into(),
            log_path: format!("stage/LOGS/{name}/1.log"),
            slot: slot.into(),
            check: true,
            macro_files: Vec::new(),
            assume_provided: Vec::new(),
        }
    }

    pub async fn run(&self, job: &BuildJob) -> BuildResult {
        let (_tx, rx) = watch::channel(false);
        let r = run_job(&self.cfg, job, rx).await;
        // The slot directory is removed in the background; the tests check it is gone.
        dbuild_worker::chroot::removals_done().await;
        r
    }

    /// Stands in for the scheduler accepting a build: moves its published
    /// files from `incoming/<lease>/` to their `stage/` paths (where later
    /// builds install them from); returns those paths.
    pub fn accept(&self, files: &[Published]) -> Vec<String> {
        for f in files {
            let dest = self.share.path().join(&f.rel_path);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::rename(self.share.path().join(&f.incoming), dest).unwrap();
        }
        files.iter().map(|f| f.rel_path.clone()).collect()
    }

    pub fn log_of(&self, r: &BuildResult) -> String {
        std::fs::read_to_string(r.log.as_ref().expect("a log")).unwrap()
    }

    /// No mount under the work dir in this namespace and no slot directory left.
    pub fn assert_clean(&self) {
        assert_clean(self.work.path());
    }
}

pub fn assert_clean(work: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let w = work.to_string_lossy();
    assert!(!info.contains(w.as_ref()), "mounts left under {w}:\n{info}");
    let slots = work.join("slots");
    if slots.exists() {
        let left: Vec<_> = std::fs::read_dir(&slots)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "chroot directories left: {left:?}");
    }
    let procs = dbuild_worker::mounts::processes_rooted_under(work);
    assert!(
        procs.is_empty(),
        "processes still running in chroots: {procs:?}"
    );
}

/// A noarch package shipping one marker file.
pub fn dep_spec(name: &str, file: &str) -> String {
    format!(
        "Name: {name}\nVersion: 1\nRelease: 1%{{?dist}}\nSummary: test dependency\nLicense: MIT\nBuildArch: noarch\n\
         %description\nShips {file}.\n\
         %install\nmkdir -p %{{buildroot}}$(dirname {file})\necho from-{name} > %{{buildroot}}{file}\n\
         %files\n{file}\n"
    )
}

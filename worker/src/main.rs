//! `dbuild-worker`: builds the packages the scheduler leases to it.

use anyhow::{bail, Context};
use clap::Parser;
use dbuild_worker::chroot::{self, ChrootMode};
use dbuild_worker::client::{self, ClientConfig, Ended};
use dbuild_worker::job::WorkerConfig;
use dbuild_worker::mounts;
use dbuild_worker::rpmbuild::Limits;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "dbuild-worker",
    version,
    about = "Build leased packages with rpmbuild in fresh chroots and publish the RPMs"
)]
struct Args {
    /// Scheduler base URL (e.g. http://127.0.0.1:8080).
    #[arg(long, env = "DBUILD_SCHEDULER")]
    scheduler: String,
    /// File holding the build's bearer token.
    #[arg(long, env = "DBUILD_TOKEN_FILE")]
    token_file: PathBuf,
    /// The shared volume: the build directory (SPECS/, SOURCES/, stage/), or its parent with --build-id.
    #[arg(long, env = "DBUILD_SHARE")]
    share: PathBuf,
    /// Build id: the build directory is <share>/<build-id>.
    #[arg(long, env = "DBUILD_BUILD_ID")]
    build_id: Option<String>,
    /// Builds run at once.
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// The base builder root (see `dbuild rootfs`).
    #[arg(
        long,
        env = "DBUILD_BASE_ROOT",
        default_value = "/var/lib/dbuild/rootfs"
    )]
    base_root: PathBuf,
    /// Local scratch directory for chroots (not on NFS: overlayfs needs a local upper dir).
    #[arg(
        long,
        env = "DBUILD_WORK_DIR",
        default_value = "/var/tmp/dbuild-worker"
    )]
    work_dir: PathBuf,
    /// How chroots are made.
    #[arg(long, value_enum, default_value_t = ChrootMode::Auto)]
    chroot_mode: ChrootMode,
    /// Directory of prebuilt RPMs to install from when a lease's RPM is not on the share (repeatable).
    #[arg(long = "prebuilt-repo")]
    prebuilt: Vec<PathBuf>,
    /// Directory to look up sources in, after the spec's own directory (repeatable, in order;
    /// <build-dir>/SOURCES is always searched last).
    #[arg(long = "sources", env = "DBUILD_SOURCES", value_delimiter = ',')]
    sources: Vec<PathBuf>,
    /// Worker name [default: hostname-pid].
    #[arg(long, env = "DBUILD_WORKER_NAME")]
    name: Option<String>,
    #[arg(long, default_value = "x86_64")]
    arch: String,
    /// Wall-time limit of one rpmbuild, in seconds.
    #[arg(long, default_value_t = 4 * 3600)]
    build_timeout: u64,
    /// Kill rpmbuild after this many seconds without output.
    #[arg(long, default_value_t = 1800)]
    silent_timeout: u64,
    /// On SIGTERM, how long a running build may go on before it is handed back.
    #[arg(long, default_value_t = 60)]
    grace: u64,
    /// Let fsync and its relatives inside builds reach the disk. By default they
    /// return at once: the chroot is thrown away, and the published RPMs are
    /// synced by the worker itself.
    #[arg(long, env = "DBUILD_BUILD_FSYNC")]
    build_fsync: bool,
    /// Do not prepare a slot's next build (reserved by the scheduler) while
    /// the current one runs: every build then starts with its chroot, sources
    /// and BuildRequires install after the previous one ended.
    #[arg(long, env = "DBUILD_NO_PREFETCH")]
    no_prefetch: bool,
    /// Long-poll duration of a lease request, in seconds.
    #[arg(long, default_value_t = 30)]
    wait: u64,
    /// Serve /healthz and /readyz on this address (e.g. 0.0.0.0:8081; off unless given).
    #[arg(long, env = "DBUILD_LISTEN")]
    listen: Option<String>,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "worker".into())
}

async fn run(args: Args) -> anyhow::Result<Ended> {
    let health = std::sync::Arc::new(dbuild_worker::health::Health::default());
    if let Some(addr) = &args.listen {
        let bound = dbuild_worker::health::start(addr, health.clone())?;
        println!("dbuild-worker listening on http://{bound}");
    }
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("reading token file {}", args.token_file.display()))?
        .trim()
        .to_string();
    let build_dir = match &args.build_id {
        Some(id) => args.share.join(id),
        None => args.share.clone(),
    };
    if !build_dir.is_dir() {
        bail!("build directory {} does not exist", build_dir.display());
    }
    chroot::check_base(&args.base_root)?;
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating work dir {}", args.work_dir.display()))?;
    let slots_dir = args.work_dir.join("slots");
    let cleaned = mounts::clean_leftovers(&slots_dir).await?;
    if cleaned > 0 {
        tracing::warn!(slots = cleaned, dir = %slots_dir.display(), "removed chroots left by an earlier run");
    }
    let overlay = match args.chroot_mode {
        ChrootMode::Copy => false,
        ChrootMode::Overlay => {
            if !mounts::overlay_works(&args.base_root, &args.work_dir).await {
                bail!(
                    "overlayfs cannot be mounted over {} with upper dirs in {}",
                    args.base_root.display(),
                    args.work_dir.display()
                );
            }
            true
        }
        ChrootMode::Auto => mounts::overlay_works(&args.base_root, &args.work_dir).await,
    };
    tracing::info!(overlay, base = %args.base_root.display(), work_dir = %args.work_dir.display(), "chroots");
    let wc = WorkerConfig {
        build_dir,
        base_root: args.base_root.clone(),
        work_dir: args.work_dir.clone(),
        overlay,
        prebuilt: args.prebuilt.clone(),
        sources: args.sources.clone(),
        install_limits: Limits {
            wall: Duration::from_secs(1800),
            silent: Duration::from_secs(600),
        },
        build_limits: Limits {
            wall: Duration::from_secs(args.build_timeout),
            silent: Duration::from_secs(args.silent_timeout),
        },
        build_fsync: args.build_fsync,
    };
    let cc = ClientConfig {
        scheduler: args.scheduler.clone(),
        token,
        name: args
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id())),
        arch: args.arch.clone(),
        slots: args.slots,
        wait_secs: args.wait,
        grace: Duration::from_secs(args.grace),
        prefetch: !args.no_prefetch,
        health,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stop requested: no new leases");
        let _ = stop_tx.send(true);
    });
    let ended = client::run(cc, wc, stop_rx).await?;
    let _ = mounts::clean_leftovers(&slots_dir).await;
    Ok(ended)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DBUILD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dbuild-worker: error: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(ended) => {
            tracing::info!(?ended, "worker done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dbuild-worker: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

//! `dbuild-worker`: builds the packages the scheduler leases to it.

use anyhow::{bail, Context};
use clap::Parser;
use dbuild_common::exit;
use dbuild_common::settings::{self, required, ConfigFile, SettingsError, WorkerSettings};
use dbuild_worker::chroot::{self, ChrootMode};
use dbuild_worker::client::{self, ClientConfig, Ended};
use dbuild_worker::job::WorkerConfig;
use dbuild_worker::mounts;
use dbuild_worker::rpmbuild::Limits;
use dbuild_worker::startup;
use reqwest::Url;
use std::process::ExitCode;
use std::time::Duration;

const BIN: &str = "dbuild-worker";

#[derive(Parser, Debug)]
#[command(
    name = BIN,
    version,
    about = "Build leased packages with rpmbuild in fresh chroots and publish the RPMs"
)]
struct Cli {
    #[command(flatten)]
    file: ConfigFile,
    #[command(flatten)]
    settings: WorkerSettings,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "worker".into())
}

async fn run(s: WorkerSettings, url: Url) -> anyhow::Result<Ended> {
    let health = std::sync::Arc::new(dbuild_worker::health::Health::default());
    if let Some(addr) = &s.listen {
        let bound = dbuild_worker::health::start(addr, health.clone())?;
        println!("dbuild-worker listening on http://{bound}");
    }
    let token_file = required(&s.token_file, "token_file")?;
    let token = std::fs::read_to_string(token_file)
        .map_err(|e| SettingsError::invalid("token_file", token_file.display(), e))?
        .trim()
        .to_string();
    let share = required(&s.share, "share")?;
    let build_dir = match &s.build_id {
        Some(id) => share.join(id),
        None => share.clone(),
    };
    if !build_dir.is_dir() {
        return Err(SettingsError::invalid(
            "share",
            share.display(),
            format!("build directory {} does not exist", build_dir.display()),
        )
        .into());
    }
    chroot::check_base(&s.base_root)
        .map_err(|e| SettingsError::invalid("base_root", s.base_root.display(), e))?;
    startup::wait_for_scheduler(&url, s.connect_timeout.get()).await?;
    std::fs::create_dir_all(&s.work_dir)
        .with_context(|| format!("creating work dir {}", s.work_dir.display()))?;
    let slots_dir = s.work_dir.join("slots");
    let cleaned = mounts::clean_leftovers(&slots_dir).await?;
    if cleaned > 0 {
        tracing::warn!(slots = cleaned, dir = %slots_dir.display(), "removed chroots left by an earlier run");
    }
    let overlay = match s.build.chroot_mode {
        ChrootMode::Copy => false,
        ChrootMode::Overlay => {
            if !mounts::overlay_works(&s.base_root, &s.work_dir).await {
                bail!(
                    "overlayfs cannot be mounted over {} with upper dirs in {}",
                    s.base_root.display(),
                    s.work_dir.display()
                );
            }
            true
        }
        ChrootMode::Auto => mounts::overlay_works(&s.base_root, &s.work_dir).await,
    };
    tracing::info!(overlay, base = %s.base_root.display(), work_dir = %s.work_dir.display(), "chroots");
    let wc = WorkerConfig {
        build_dir,
        base_root: s.base_root.clone(),
        work_dir: s.work_dir.clone(),
        overlay,
        prebuilt: s.build.prebuilt_repo.clone(),
        sources: s.build.sources.clone(),
        install_limits: Limits {
            wall: Duration::from_secs(1800),
            silent: Duration::from_secs(600),
        },
        build_limits: Limits {
            wall: s.build.build_timeout.get(),
            silent: s.build.silent_timeout.get(),
        },
        build_fsync: s.build.build_fsync,
    };
    let cc = ClientConfig {
        scheduler: url.to_string(),
        token,
        name: s
            .worker_name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id())),
        arch: s.arch.clone(),
        slots: s.build.slots,
        wait_secs: s.wait.get().as_secs().max(1),
        grace: s.grace.get(),
        prefetch: !s.build.no_prefetch,
        // A test hook, read once here: see `ClientConfig::test_pause_after_publish`.
        test_pause_after_publish: std::env::var_os("DBUILD_TEST_PAUSE_AFTER_PUBLISH")
            .is_some_and(|v| !v.is_empty() && v != "0"),
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
        .with_ansi(dbuild_common::exit::color_wanted(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ))
        .init();
    exit::run(BIN, start)
}

fn start(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let sources = settings::Sources::of_process(cli.file.config);
    let s: WorkerSettings = settings::load(&cli.settings, matches, sources)?;
    let url = startup::scheduler_url(required(&s.scheduler, "scheduler")?)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let ended = rt.block_on(run(s, url))?;
    tracing::info!(?ended, "worker done");
    Ok(ExitCode::SUCCESS)
}

//! `dbuild local`: the whole distributed build on this machine. Starts the
//! real `dbuild-scheduler` and N real `dbuild-worker` processes with a local
//! directory as the shared volume, shows progress, prints a summary, and
//! exits 0 only when everything asked for was built (or up to date).

pub mod processes;
pub mod progress;
mod provided;
mod selection;
mod settings;
mod staging;

use anyhow::{bail, Context};
use dbuild_common::dispatch::PkgState;
use dbuild_common::exit::{self, UsageError};
use dbuild_common::settings::{
    required, ConfigFile, SchedulerSettings, SettingsError, Span, WorkerSettings,
};
use dbuild_common::spec::ParseOptions;
use dbuild_common::wire::{PackageInfo, Summary};
use processes::{child_command, last_line, listening_url, scheduler_url, Managed};
use progress::Progress;
use settings::LocalSettings;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub file: ConfigFile,
    /// Photon's distributed_build_options.json (pods, nfs-server-path, command).
    #[arg(long, value_name = "FILE")]
    pub photon_options: Option<PathBuf>,
    #[command(flatten)]
    pub settings: LocalSettings,
}

/// The run after every layer was applied and checked.
struct Plan {
    /// The settings, every path in them absolute.
    local: LocalSettings,
    specs: PathBuf,
    build_dir: PathBuf,
    /// The `--define`s for parsing (`with_check 1` included in check mode).
    defines: Vec<(String, String)>,
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

fn absolute_all(paths: &mut [PathBuf]) -> anyhow::Result<()> {
    for path in paths {
        *path = absolute(path)?;
    }
    Ok(())
}

/// Checks the settings and makes their paths absolute: the settings files
/// of the scheduler and the workers name them, and those read them anywhere.
fn resolve(mut local: LocalSettings) -> anyhow::Result<Plan> {
    let specs = required(&local.specs, "specs")?.clone();
    let build_id = &local.build_id;
    if build_id.is_empty() || build_id.contains('/') || build_id.starts_with('.') {
        return Err(
            SettingsError::invalid("build_id", build_id, "must be a plain directory name").into(),
        );
    }
    if local.workers == 0 {
        return Err(SettingsError::invalid("workers", 0, "must be at least 1").into());
    }
    let defines = local
        .spec
        .effective_defines()
        .iter()
        .map(|d| ParseOptions::parse_define(d).map_err(|e| SettingsError::invalid("define", d, e)))
        .collect::<Result<Vec<_>, _>>()?;
    local.state_dir = absolute(&local.state_dir)?;
    absolute_all(&mut local.spec.macro_files)?;
    absolute_all(&mut local.worker.sources)?;
    absolute_all(&mut local.worker.prebuilt_repo)?;
    let policy = &mut local.policy;
    for file in [&mut policy.weights, &mut policy.assume_provided_file]
        .into_iter()
        .flatten()
    {
        *file = absolute(file)?;
    }
    Ok(Plan {
        build_dir: local.state_dir.join(&local.build_id),
        specs,
        defines,
        local,
    })
}

pub fn run(args: Args, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let local = settings::load(
        &args.settings,
        matches,
        args.file.config,
        args.photon_options.as_deref(),
        std::env::vars().collect(),
    )?;
    let plan = resolve(local)?;
    if !nix::unistd::geteuid().is_root() {
        bail!("dbuild local needs root: workers build in chroots with their own mounts");
    }
    let tty = !plan.local.plain && std::io::stderr().is_terminal();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_build(plan, tty))
}

fn token_file(plan: &Plan) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = plan.local.state_dir.join("token");
    let token = match (&plan.local.token, std::fs::read_to_string(&path)) {
        (Some(t), _) => t.clone(),
        (None, Ok(existing)) if !existing.trim().is_empty() => return Ok(path),
        (None, _) => uuid::Uuid::new_v4().simple().to_string(),
    };
    std::fs::write(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

async fn base_root(plan: &Plan) -> anyhow::Result<PathBuf> {
    if let Some(root) = &plan.local.base_root {
        return Ok(root.clone());
    }
    let mut spec = dbuild_worker::rootfs::RootfsSpec::default();
    spec.mirror = dbuild_worker::rootfs::default_mirror(&spec.suite).0;
    let packages = plan.local.base_packages.iter().flat_map(|p| p.split(','));
    spec.packages.extend(
        packages
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from),
    );
    // One root per content: changing --base-packages makes a new one.
    let dest = plan.local.state_dir.join(format!("rootfs-{}", spec.key()));
    if !dest.join(dbuild_worker::rootfs::MARKER).exists() {
        eprintln!(
            "dbuild local: creating the base builder root {} (debootstrap; minutes, once) ...",
            dest.display()
        );
    }
    let report = dbuild_worker::rootfs::ensure(&spec, &dest)
        .await
        .with_context(|| format!("making the builder root {}", dest.display()))?;
    if !report.reused {
        eprintln!(
            "dbuild local: builder root ready: {:.0} MiB in {:.0}s",
            report.bytes as f64 / 1048576.0,
            report.seconds
        );
    }
    Ok(dest)
}

struct Services {
    scheduler: Managed,
    workers: Vec<Managed>,
    url: String,
    /// `<state-dir>/scheduler.url`, removed when the scheduler stops.
    url_file: PathBuf,
    /// Each worker's `--listen` URL (its `/metrics`), in worker order.
    worker_urls: Vec<String>,
    /// [`TARGETS_FILE`] in the state directory.
    targets_file: PathBuf,
}

/// Prometheus file-based service discovery (`file_sd_configs`) of a running
/// `dbuild local`: the scheduler's and each worker's metrics address, with
/// the label `component` (scheduler, worker); removed when it ends.
pub const TARGETS_FILE: &str = "prometheus-targets.json";

impl Services {
    fn write_targets(&self) {
        let host = |url: &str| {
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        };
        let groups = serde_json::json!([
            {"targets": [host(&self.url)], "labels": {"component": "scheduler"}},
            {"targets": self.worker_urls.iter().map(|u| host(u)).collect::<Vec<_>>(),
             "labels": {"component": "worker"}},
        ]);
        // Written whole, then renamed: Prometheus never reads half a file.
        let tmp = self.targets_file.with_extension("json.tmp");
        let written = std::fs::write(&tmp, groups.to_string())
            .and_then(|()| std::fs::rename(&tmp, &self.targets_file));
        if let Err(e) = written {
            tracing::warn!(file = %self.targets_file.display(), error = %e, "cannot write the Prometheus targets");
        }
    }

    async fn stop_scheduler(&mut self) {
        let _ = std::fs::remove_file(&self.url_file);
        let _ = std::fs::remove_file(&self.targets_file);
        self.scheduler.stop(Duration::from_secs(10)).await;
    }
}

async fn start(
    plan: &Plan,
    token: &Path,
    root: &Path,
    base_provides: &Path,
) -> anyhow::Result<Services> {
    let logs = plan.local.state_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let settings = scheduler_settings(plan, token, base_provides);
    let cmd = child_command(
        "dbuild-scheduler",
        &settings,
        &settings_file(plan, "scheduler")?,
    )?;
    let mut scheduler = Managed::spawn("scheduler", cmd, &logs.join("scheduler.log"), true)?;
    let url = scheduler_url(&mut scheduler, Duration::from_secs(120)).await?;
    tracing::info!(url = %url, "scheduler up");
    // `dbuild status` / `dbuild logs --state-dir` find the running scheduler here.
    let url_file = crate::cmd::reach::url_file(&plan.local.state_dir);
    std::fs::write(&url_file, format!("{url}\n"))
        .with_context(|| format!("writing {}", url_file.display()))?;
    let mut services = Services {
        scheduler,
        workers: Vec::new(),
        worker_urls: Vec::new(),
        url,
        url_file,
        targets_file: plan.local.state_dir.join(TARGETS_FILE),
    };
    for i in 1..=plan.local.workers {
        let (w, metrics) = spawn_worker(plan, &services.url, token, root, i).await?;
        services.workers.push(w);
        services.worker_urls.push(metrics);
    }
    services.write_targets();
    Ok(services)
}

/// `<state-dir>/settings/NAME.toml`, where a child's settings are written.
fn settings_file(plan: &Plan, name: &str) -> anyhow::Result<PathBuf> {
    let dir = plan.local.state_dir.join("settings");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join(format!("{name}.toml")))
}

/// What the scheduler is given: `dbuild local`'s spec and policy groups as
/// they are, and the run's own choices.
fn scheduler_settings(plan: &Plan, token: &Path, base_provides: &Path) -> SchedulerSettings {
    let local = &plan.local;
    SchedulerSettings {
        build_dir: Some(plan.build_dir.clone()),
        listen: "127.0.0.1:0".into(),
        token_file: Some(token.to_path_buf()),
        restart_finished: true,
        state_sync: local.state_sync,
        // The launcher checked already; the scheduler checks again on the staged tree.
        fail_on_unresolved: true,
        base_provides_file: Some(base_provides.to_path_buf()),
        spec: local.spec.clone(),
        policy: local.policy.clone(),
        ..SchedulerSettings::default()
    }
}

/// What worker `name` is given: `dbuild local`'s worker group as it is, and
/// the run's own choices.
fn worker_settings(
    plan: &Plan,
    url: &str,
    token: &Path,
    root: &Path,
    name: &str,
) -> WorkerSettings {
    let local = &plan.local;
    WorkerSettings {
        scheduler: Some(url.to_string()),
        worker_name: Some(name.to_string()),
        arch: local.spec.arch.clone(),
        token_file: Some(token.to_path_buf()),
        share: Some(plan.build_dir.clone()),
        base_root: root.to_path_buf(),
        work_dir: local.state_dir.join("work").join(name),
        // On Ctrl-C a running build gets this long to finish before it is handed back.
        grace: Span(WORKER_GRACE),
        // Its /metrics (and probes) on a free loopback port, in the targets file.
        listen: Some("127.0.0.1:0".into()),
        build: local.worker.clone(),
        ..WorkerSettings::default()
    }
}

/// Starts worker `i`; returns it and the URL of its listener (`/metrics`).
async fn spawn_worker(
    plan: &Plan,
    url: &str,
    token: &Path,
    root: &Path,
    i: u32,
) -> anyhow::Result<(Managed, String)> {
    let name = format!("local-{i}");
    let settings = worker_settings(plan, url, token, root, &name);
    let cmd = child_command("dbuild-worker", &settings, &settings_file(plan, &name)?)?;
    let log = plan
        .local
        .state_dir
        .join("logs")
        .join(format!("{name}.log"));
    let mut worker = Managed::spawn(&name, cmd, &log, true)?;
    let metrics = listening_url(&mut worker, Duration::from_secs(60)).await?;
    Ok((worker, metrics))
}

async fn get<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<T> {
    let resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("GET {url}: {status}");
    }
    resp.json()
        .await
        .with_context(|| format!("GET {url}: bad body"))
}

/// How long workers may finish running builds after Ctrl-C.
const WORKER_GRACE: Duration = Duration::from_secs(10);

/// How many times a worker that died is started again.
const WORKER_RESTARTS: u32 = 3;

async fn run_build(plan: Plan, tty: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    std::fs::create_dir_all(&plan.build_dir)
        .with_context(|| format!("creating {}", plan.build_dir.display()))?;
    let staged = staging::stage_specs(&plan)?;
    eprintln!(
        "dbuild local: {} spec(s) from {} into {}",
        staged.len(),
        plan.specs.display(),
        plan.build_dir.display()
    );
    let token = token_file(&plan)?;
    let root = base_root(&plan).await?;
    let base_provides = match provided::check(&plan, staged, &root).await? {
        Ok(file) => file,
        Err(unresolved) => return Err(UsageError::new(unresolved).into()),
    };
    let mut services = start(&plan, &token, &root, &base_provides).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut progress = Progress::new(tty);
    let mut restarts = 0u32;
    // Loopback polls are cheap; a short period ends the run promptly.
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let summary_url = format!("{}/v1/summary", services.url);
    let building_url = format!("{}/v1/packages?state=building", services.url);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let finished: Summary = loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                progress.clear();
                eprintln!("\ndbuild local: interrupted; stopping workers and scheduler (run again to resume)");
                stop_all(&mut services).await;
                return Ok(ExitCode::from(exit::INTERRUPTED));
            }
            _ = ticker.tick() => {}
        }
        if let Ok(Some(status)) = services.scheduler.child.try_wait() {
            progress.clear();
            stop_all(&mut services).await;
            let s = &services.scheduler;
            bail!(
                "the scheduler exited ({status}): {} (log: {})",
                last_line(&s.log),
                s.log.display()
            );
        }
        let summary: Summary = match get(&http, &summary_url).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler not answering");
                continue;
            }
        };
        let building: Vec<PackageInfo> = get(&http, &building_url).await.unwrap_or_default();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        progress.show(&summary, &building, now_ms);
        if summary.finished {
            break summary;
        }
        for i in 0..services.workers.len() {
            if let Ok(Some(status)) = services.workers[i].child.try_wait() {
                if restarts >= WORKER_RESTARTS {
                    stop_all(&mut services).await;
                    let w = &services.workers[i];
                    bail!(
                        "worker {} exited ({status}) too often: {} (log: {})",
                        w.name,
                        last_line(&w.log),
                        w.log.display()
                    );
                }
                restarts += 1;
                eprintln!(
                    "dbuild local: worker {} exited ({status}); starting it again",
                    services.workers[i].name
                );
                let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
                let (w, metrics) = spawn_worker(&plan, &services.url, &token, &root, index).await?;
                services.workers[i] = w;
                services.worker_urls[i] = metrics;
                services.write_targets();
            }
        }
    };
    let packages: Vec<PackageInfo> = get(&http, &format!("{}/v1/packages", services.url)).await?;
    // Workers leave by themselves once the scheduler says the build is over.
    for w in &mut services.workers {
        if tokio::time::timeout(Duration::from_secs(15), w.child.wait())
            .await
            .is_err()
        {
            w.stop(Duration::from_secs(10)).await;
        }
    }
    // The share against what the scheduler accepted, as `dbuild verify` checks it.
    let share = super::verify::check_share(&services.url, &plan.build_dir).await;
    services.stop_scheduler().await;
    let ok = progress::print_summary(
        &finished,
        &packages,
        &plan.build_dir,
        started.elapsed().as_secs_f64(),
        &share,
    );
    let all_done = packages
        .iter()
        .all(|p| matches!(p.state, PkgState::Succeeded | PkgState::UpToDate));
    Ok(if ok && all_done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILED)
    })
}

async fn stop_all(services: &mut Services) {
    for w in &mut services.workers {
        w.stop(WORKER_GRACE + Duration::from_secs(20)).await;
    }
    services.stop_scheduler().await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::{Args as _, FromArgMatches};
    use dbuild_common::settings::{self as common_settings, Layered, StateSync};

    fn plan(args: &[&str]) -> Plan {
        let matches = Args::augment_args(clap::Command::new("local"))
            .try_get_matches_from(std::iter::once("local").chain(args.iter().copied()))
            .unwrap();
        let args = Args::from_arg_matches(&matches).unwrap();
        let local = settings::load(&args.settings, &matches, None, None, Vec::new()).unwrap();
        resolve(local).unwrap()
    }

    /// `settings` written as the launcher writes them, read back by the child's loader.
    fn read_back<S: Layered>(settings: &S) -> S {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("child.toml");
        std::fs::write(&file, common_settings::to_toml(settings).unwrap()).unwrap();
        let matches = S::augment_args(clap::Command::new("child"))
            .try_get_matches_from(["child"])
            .unwrap();
        let sources = common_settings::Sources {
            file: Some(file),
            ..common_settings::Sources::default()
        };
        common_settings::load(&S::from_arg_matches(&matches).unwrap(), &matches, sources).unwrap()
    }

    #[test]
    fn the_groups_reach_the_children_whole() {
        let plan = plan(&[
            "--specs",
            "SPECS",
            "--check",
            "-D",
            "dist .ph5",
            "--max-attempts",
            "7",
            "--lease-ttl",
            "2m",
            "--no-prefetch",
            "--sources",
            "src",
            "--slots",
            "3",
        ]);
        let token = Path::new("/state/token");
        let s = scheduler_settings(&plan, token, Path::new("/state/base-provides"));
        assert_eq!((s.spec.check, s.policy.max_attempts), (true, 7));
        assert_eq!(s.policy.lease_ttl, Span::from_secs(120));
        assert_eq!(s.spec.defines, ["dist .ph5"]);
        assert_eq!(s.state_sync, StateSync::Normal);
        assert_eq!(read_back(&s), s);
        let w = worker_settings(
            &plan,
            "http://127.0.0.1:1",
            token,
            Path::new("/root"),
            "local-1",
        );
        assert!(w.build.no_prefetch);
        assert_eq!(w.build.slots, 3);
        // Relative paths are made absolute: the child reads them from a file elsewhere.
        assert!(w.build.sources[0].is_absolute() && w.build.sources[0].ends_with("src"));
        assert_eq!(read_back(&w), w);
    }
}

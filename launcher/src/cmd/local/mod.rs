//! `dbuild local`: the whole distributed build on this machine. Starts the
//! real `dbuild-scheduler` and N real `dbuild-worker` processes with a local
//! directory as the shared volume, shows progress, prints a summary, and
//! exits 0 only when everything asked for was built (or up to date).

pub mod processes;
mod progress;
mod provided;
mod selection;
mod settings;
mod staging;

use anyhow::{bail, Context};
use dbuild_common::dispatch::PkgState;
use dbuild_common::spec::ParseOptions;
use dbuild_common::wire::{PackageInfo, Summary};
use processes::{last_line, locate, scheduler_url, Managed};
use progress::Progress;
use settings::{Settings, StateSync};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::process::Command;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// TOML file with any of the options below (keys like `workers`, `state_dir`, `defines`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Photon's distributed_build_options.json (pods, nfs-server-path, command).
    #[arg(long, value_name = "FILE")]
    pub photon_options: Option<PathBuf>,
    /// The SPECS tree to build.
    #[arg(long, value_name = "DIR")]
    pub specs: Option<PathBuf>,
    /// Number of worker processes [default: 2].
    #[arg(long)]
    pub workers: Option<u32>,
    /// Builds each worker runs at once [default: 1].
    #[arg(long)]
    pub slots: Option<u32>,
    /// The shared volume [default: ./dbuild-state].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Build id: the build directory is <state-dir>/<build-id> [default: local].
    #[arg(long)]
    pub build_id: Option<String>,
    /// Base builder root for the chroots [default: created once under <state-dir>/rootfs-<key>].
    #[arg(long, value_name = "DIR")]
    pub base_root: Option<PathBuf>,
    /// Macro for parsing and rpmbuild: --define 'dist .ph5' (repeatable).
    #[arg(long = "define", short = 'D', value_name = "'NAME VALUE'")]
    pub defines: Vec<String>,
    /// Target architecture [default: x86_64].
    #[arg(long)]
    pub arch: Option<String>,
    /// rpm macro file for the parser (repeatable).
    #[arg(long = "macros-file", value_name = "FILE")]
    pub macro_files: Vec<PathBuf>,
    /// Only what these packages need: a Photon packages_*.json file or NAME,NAME,...
    #[arg(long)]
    pub packages: Option<String>,
    /// The build's bearer token [default: generated once into <state-dir>/token].
    #[arg(long)]
    pub token: Option<String>,
    /// Package weights (Photon's packageWeights.json) for priorities before durations are known.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Capabilities the build root provides besides its rpm database
    /// (comma separated, repeatable); workers get a package providing them.
    #[arg(long = "assume-provided", value_name = "NAME,...")]
    pub assume_provided: Vec<String>,
    /// File of names as for --assume-provided: one per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    pub assume_provided_file: Option<PathBuf>,
    /// Run `%check` (defines `with_check 1`; switching rebuilds everything).
    #[arg(long)]
    pub check: bool,
    /// Retry a package whose own build failed (rpmbuild exited non-zero, a
    /// bad source, a time limit) up to three attempts, as transient failures
    /// are: for flaky test suites. By default such a failure is final.
    #[arg(long)]
    pub retry_package_failures: bool,
    /// Directory the workers look for sources in (repeatable).
    #[arg(long = "sources", value_name = "DIR")]
    pub sources: Vec<PathBuf>,
    /// Debian packages to add to the base builder root dbuild makes (comma separated,
    /// repeatable; e.g. python3-dev,python3-pip for Python specs). Ignored with --base-root.
    #[arg(long = "base-packages", value_name = "NAME,...", value_delimiter = ',')]
    pub base_packages: Vec<String>,
    /// When the scheduler's state commits count as done: `normal` (handed to
    /// the OS: a crash of this machine may lose the last few, which are then
    /// built again; it ends the workers too) or `full` (on disk) [default: normal].
    #[arg(long, value_enum)]
    pub state_sync: Option<StateSync>,
    /// Plain log lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

/// Options after every layer was applied.
struct Plan {
    specs: PathBuf,
    workers: u32,
    slots: u32,
    state_dir: PathBuf,
    build_dir: PathBuf,
    base_root: Option<PathBuf>,
    defines: Vec<(String, String)>,
    arch: String,
    macro_files: Vec<PathBuf>,
    packages: Option<String>,
    token: Option<String>,
    weights: Option<PathBuf>,
    /// The user's assumed-provided names (entries may be comma lists).
    assume_provided: Vec<String>,
    /// Absolute.
    assume_provided_file: Option<PathBuf>,
    check: bool,
    retry_package_failures: bool,
    /// Absolute.
    sources: Vec<PathBuf>,
    base_packages: Vec<String>,
    state_sync: StateSync,
}

impl Plan {
    /// `--define`s for parsing, with `with_check 1` last in check mode (as
    /// the scheduler adds it).
    fn parse_defines(&self) -> Vec<(String, String)> {
        let mut defines = self.defines.clone();
        if self.check {
            defines.push(("with_check".into(), "1".into()));
        }
        defines
    }
}

fn flags(args: &Args) -> Settings {
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    Settings {
        specs: args.specs.clone(),
        workers: args.workers,
        slots: args.slots,
        state_dir: args.state_dir.clone(),
        build_id: args.build_id.clone(),
        base_root: args.base_root.clone(),
        defines: non_empty(&args.defines),
        arch: args.arch.clone(),
        macro_files: (!args.macro_files.is_empty()).then(|| args.macro_files.clone()),
        packages: args.packages.clone(),
        token: args.token.clone(),
        weights: args.weights.clone(),
        assume_provided: non_empty(&args.assume_provided),
        assume_provided_file: args.assume_provided_file.clone(),
        check: args.check.then_some(true),
        retry_package_failures: args.retry_package_failures.then_some(true),
        sources: (!args.sources.is_empty()).then(|| args.sources.clone()),
        base_packages: (!args.base_packages.is_empty()).then(|| args.base_packages.clone()),
        state_sync: args.state_sync,
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

fn resolve(args: &Args) -> anyhow::Result<Plan> {
    let mut s = Settings::default();
    if let Some(p) = &args.photon_options {
        s = s.overlay(Settings::from_photon_options(p)?);
    }
    if let Some(c) = &args.config {
        s = s.overlay(Settings::from_toml(c)?);
    }
    s = s
        .overlay(Settings::from_env(std::env::vars())?)
        .overlay(flags(args));
    let specs = s
        .specs
        .context("no SPECS tree: give --specs DIR (or `specs` in --config)")?;
    let state_dir = s.state_dir.unwrap_or_else(|| PathBuf::from("dbuild-state"));
    let state_dir = absolute(&state_dir)?;
    let build_id = s.build_id.unwrap_or_else(|| "local".into());
    if build_id.is_empty() || build_id.contains('/') || build_id.starts_with('.') {
        bail!("build id {build_id:?} must be a plain directory name");
    }
    let defines = s
        .defines
        .unwrap_or_default()
        .iter()
        .map(|d| ParseOptions::parse_define(d))
        .collect::<Result<Vec<_>, _>>()?;
    let workers = s.workers.unwrap_or(2);
    if workers == 0 {
        bail!("--workers must be at least 1");
    }
    Ok(Plan {
        specs,
        workers,
        slots: s.slots.unwrap_or(1).max(1),
        build_dir: state_dir.join(&build_id),
        state_dir,
        base_root: s.base_root,
        defines,
        arch: s.arch.unwrap_or_else(|| "x86_64".into()),
        macro_files: s.macro_files.unwrap_or_default(),
        packages: s.packages,
        token: s.token,
        weights: s.weights,
        assume_provided: s.assume_provided.unwrap_or_default(),
        assume_provided_file: s
            .assume_provided_file
            .as_deref()
            .map(absolute)
            .transpose()?,
        check: s.check.unwrap_or(false),
        retry_package_failures: s.retry_package_failures.unwrap_or(false),
        sources: s
            .sources
            .unwrap_or_default()
            .iter()
            .map(|d| absolute(d))
            .collect::<anyhow::Result<_>>()?,
        base_packages: s
            .base_packages
            .unwrap_or_default()
            .iter()
            .flat_map(|p| p.split(','))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        state_sync: s.state_sync.unwrap_or(StateSync::Normal),
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let plan = resolve(&args)?;
    if !nix::unistd::geteuid().is_root() {
        bail!("dbuild local needs root: workers build in chroots with their own mounts");
    }
    let tty = !args.plain && std::io::stderr().is_terminal();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_build(plan, tty))
}

fn token_file(plan: &Plan) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = plan.state_dir.join("token");
    let token = match (&plan.token, std::fs::read_to_string(&path)) {
        (Some(t), _) => t.clone(),
        (None, Ok(existing)) if !existing.trim().is_empty() => return Ok(path),
        (None, _) => uuid::Uuid::new_v4().simple().to_string(),
    };
    std::fs::write(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

async fn base_root(plan: &Plan) -> anyhow::Result<PathBuf> {
    if let Some(root) = &plan.base_root {
        return Ok(root.clone());
    }
    let mut spec = dbuild_worker::rootfs::RootfsSpec::default();
    spec.packages
        .extend(plan.base_packages.iter().filter(|p| !p.is_empty()).cloned());
    // One root per content: changing --base-packages makes a new one.
    let dest = plan.state_dir.join(format!("rootfs-{}", spec.key()));
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
}

async fn start(
    plan: &Plan,
    token: &Path,
    root: &Path,
    base_provides: &Path,
) -> anyhow::Result<Services> {
    let logs = plan.state_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut cmd = Command::new(locate("dbuild-scheduler"));
    cmd.arg("--build-dir")
        .arg(&plan.build_dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--restart-finished",
            "--arch",
            &plan.arch,
        ])
        .arg("--token-file")
        .arg(token);
    cmd.args(["--state-sync", plan.state_sync.as_arg()]);
    // The launcher checked already; the scheduler checks again on the staged tree.
    cmd.arg("--fail-on-unresolved")
        .arg("--base-provides-file")
        .arg(base_provides);
    for names in &plan.assume_provided {
        cmd.arg("--assume-provided").arg(names);
    }
    if let Some(f) = &plan.assume_provided_file {
        cmd.arg("--assume-provided-file").arg(f);
    }
    if plan.check {
        cmd.arg("--check");
    }
    if plan.retry_package_failures {
        cmd.arg("--retry-package-failures");
    }
    for (name, value) in &plan.defines {
        cmd.arg("--define").arg(format!("{name} {value}"));
    }
    for f in &plan.macro_files {
        cmd.arg("--macros-file").arg(f);
    }
    if let Some(w) = &plan.weights {
        cmd.arg("--weights").arg(w);
    }
    let mut scheduler = Managed::spawn("scheduler", cmd, &logs.join("scheduler.log"), true)?;
    let url = scheduler_url(&mut scheduler, Duration::from_secs(120)).await?;
    tracing::info!(url = %url, "scheduler up");
    let mut workers = Vec::new();
    for i in 1..=plan.workers {
        workers.push(spawn_worker(plan, &url, token, root, i)?);
    }
    Ok(Services {
        scheduler,
        workers,
        url,
    })
}

fn spawn_worker(
    plan: &Plan,
    url: &str,
    token: &Path,
    root: &Path,
    i: u32,
) -> anyhow::Result<Managed> {
    let name = format!("local-{i}");
    let mut cmd = Command::new(locate("dbuild-worker"));
    cmd.args(["--scheduler", url, "--name", &name, "--arch", &plan.arch])
        .arg("--token-file")
        .arg(token)
        .arg("--share")
        .arg(&plan.build_dir)
        .arg("--base-root")
        .arg(root)
        .arg("--work-dir")
        .arg(plan.state_dir.join("work").join(&name))
        .args(["--slots", &plan.slots.to_string()])
        // On Ctrl-C a running build gets this long to finish before it is handed back.
        .args(["--grace", &WORKER_GRACE.as_secs().to_string()]);
    for dir in &plan.sources {
        cmd.arg("--sources").arg(dir);
    }
    Managed::spawn(
        &name,
        cmd,
        &plan.state_dir.join("logs").join(format!("{name}.log")),
        false,
    )
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
        Err(unresolved) => {
            eprintln!("dbuild local: {unresolved}");
            return Ok(ExitCode::from(2));
        }
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
                eprintln!("\ndbuild local: interrupted; stopping workers and scheduler (run again to resume)");
                stop_all(&mut services).await;
                return Ok(ExitCode::from(130));
            }
            _ = ticker.tick() => {}
        }
        if let Ok(Some(status)) = services.scheduler.child.try_wait() {
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
                services.workers[i] = spawn_worker(&plan, &services.url, &token, &root, index)?;
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
    services.scheduler.stop(Duration::from_secs(10)).await;
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
        ExitCode::from(1)
    })
}

async fn stop_all(services: &mut Services) {
    for w in &mut services.workers {
        w.stop(WORKER_GRACE + Duration::from_secs(20)).await;
    }
    services.scheduler.stop(Duration::from_secs(10)).await;
}

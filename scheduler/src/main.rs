//! dbuild-scheduler: serves a build's packages to workers over REST, by
//! critical path, with leases, retries and state in SQLite.

mod api;
mod app;
mod auth;
mod db;
mod error;
mod macros_dir;
mod metrics;
mod plan_source;
mod state;

use anyhow::Context;
use app::now_ms;
use clap::Parser;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "dbuild-scheduler",
    version,
    about = "Serve a dbuild build to workers"
)]
struct Args {
    /// The build directory on the share (holds SPECS/, stage/, state/).
    #[arg(long, env = "DBUILD_BUILD_DIR")]
    build_dir: PathBuf,
    /// The spec tree [default: <build-dir>/SPECS].
    #[arg(long)]
    specs: Option<PathBuf>,
    /// Use this JSON plan (dbuild_common::plan::Plan) instead of parsing the specs.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Macro definition 'NAME VALUE' (repeatable), as rpmbuild --define.
    #[arg(long = "define", value_name = "'NAME VALUE'")]
    defines: Vec<String>,
    /// rpm macro file to load when parsing (repeatable).
    #[arg(long = "macros-file", alias = "macro-file")]
    macro_files: Vec<PathBuf>,
    /// Target architecture.
    #[arg(long, default_value = "x86_64")]
    arch: String,
    /// Static weights file (Photon packageWeights.json: {"name": weight}).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", env = "DBUILD_LISTEN")]
    listen: String,
    /// File holding the build's bearer token [default: <build-dir>/state/token, created if absent].
    #[arg(long, env = "DBUILD_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// The build's bearer token.
    #[arg(long, env = "DBUILD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A lease expires this long after its last heartbeat (e.g. 90s, 1500ms, 2m).
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    lease_ttl: Duration,
    /// A lease is revoked this long after it was granted, even with heartbeats (a hung build).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    max_build_time: Duration,
    /// Longest long poll of a lease request.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    max_wait: Duration,
    /// Attempts per package before it fails for good.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// Lost leases (expired, or the worker restarted) after which a package fails for good.
    #[arg(long, default_value_t = 5)]
    max_lease_losses: u32,
    /// Retry packages recorded as failed for good in an earlier run.
    #[arg(long)]
    retry_failed: bool,
    /// Retry a package whose own build failed (rpmbuild exited non-zero, a
    /// bad source, a time limit), as transient failures are, up to
    /// --max-attempts: for flaky test suites. By default such a failure is final.
    #[arg(long, env = "DBUILD_RETRY_PACKAGE_FAILURES")]
    retry_package_failures: bool,
    /// If the build recorded in the state file had finished, start a new one:
    /// unchanged packages are up-to-date, failed ones are tried again (an
    /// interrupted build is resumed either way). `dbuild local` uses this.
    #[arg(long)]
    restart_finished: bool,
    /// History events kept per package (the oldest are forgotten at start-up).
    #[arg(long, default_value_t = 200)]
    keep_history: u32,
    /// When a state commit counts as done, and so when a lease or report is
    /// answered: `full` (on disk) or `normal` (handed to the OS; a host crash
    /// may lose the last ones, which are then built again).
    #[arg(long, value_enum, default_value_t = db::StateSync::Full, env = "DBUILD_STATE_SYNC")]
    state_sync: db::StateSync,
    /// Keep state in memory only (benchmark baseline; nothing survives a restart, no lock).
    #[arg(long)]
    memory_state: bool,
    /// HTTP worker threads.
    #[arg(long, default_value_t = 2)]
    http_workers: usize,
    /// Capabilities the build root provides (comma separated, repeatable): no
    /// edge, never unresolved; also sent to workers in every lease.
    #[arg(long, value_name = "NAME,...")]
    assume_provided: Vec<String>,
    /// File of names as for --assume-provided: one per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    assume_provided_file: Option<PathBuf>,
    /// Capabilities of the base builder root's rpm database, one per line:
    /// they satisfy what no spec provides (`dbuild local` writes it).
    #[arg(long, value_name = "FILE")]
    base_provides_file: Option<PathBuf>,
    /// Refuse to start when a BuildRequires is provided by no spec, the base
    /// root or --assume-provided (without it such dependencies are warnings).
    #[arg(long)]
    fail_on_unresolved: bool,
    /// Run `%check`: defines `with_check 1` for parsing, hashing and rpmbuild,
    /// and tells workers to run `%check`.
    #[arg(long)]
    check: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?}: use e.g. 90s, 1500ms, 2m"))?;
    Duration::try_from_secs_f64(v * mult).map_err(|e| format!("bad duration {s:?}: {e}"))
}

fn load_token(args: &Args, state_dir: &std::path::Path) -> anyhow::Result<String> {
    if let Some(t) = &args.token {
        anyhow::ensure!(!t.trim().is_empty(), "--token is empty");
        return Ok(t.trim().to_string());
    }
    let path = args
        .token_file
        .clone()
        .unwrap_or_else(|| state_dir.join("token"));
    if args.token_file.is_none() && !path.exists() {
        let token =
            uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating token file {}", path.display()))?;
        f.write_all(token.as_bytes())
            .with_context(|| format!("writing token file {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("chmod 600 {}", path.display()))?;
        }
        tracing::info!(file = %path.display(), "generated the build's token");
        return Ok(token);
    }
    let t = std::fs::read_to_string(&path)
        .with_context(|| format!("reading token file {}", path.display()))?;
    let t = t.trim().to_string();
    anyhow::ensure!(!t.is_empty(), "token file {} is empty", path.display());
    Ok(t)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let build_dir = args.build_dir.clone();
    anyhow::ensure!(
        build_dir.is_dir(),
        "build directory {} does not exist",
        build_dir.display()
    );
    let state_dir = build_dir.join("state");
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let loc = if args.memory_state {
        db::Location::Memory
    } else {
        db::Location::File(db::state_file(&build_dir), args.state_sync)
    };
    // Lock first: a second scheduler must stop before doing anything else.
    let mut conn = db::open(&loc).await?;
    let token = load_token(&args, &state_dir)?;

    let specs = args
        .specs
        .clone()
        .unwrap_or_else(|| build_dir.join("SPECS"));
    let provided = plan_source::read_provided(
        &args.assume_provided,
        args.assume_provided_file.as_deref(),
        args.base_provides_file.as_deref(),
    )?;
    let mut defines = args.defines.clone();
    if args.check {
        // Last, so it wins over a `--define 'with_check 0'`; part of the input hash.
        defines.push("with_check 1".into());
    }
    let lease_assume_provided: Vec<String> = provided.assumed.iter().cloned().collect();
    tracing::info!(
        assumed = provided.assumed.len(),
        base = provided.base.len(),
        check = args.check,
        fail_on_unresolved = args.fail_on_unresolved,
        "provided capabilities"
    );
    let source = plan_source::Source {
        specs: specs.clone(),
        plan_file: args.plan.clone(),
        defines,
        macro_files: args.macro_files.clone(),
        arch: args.arch.clone(),
        weights: args.weights.clone(),
        provided,
        fail_on_unresolved: args.fail_on_unresolved,
    };
    let started = std::time::Instant::now();
    let (plan, hash_extra) = plan_source::load(&source)?;
    plan.validate()
        .context("the build plan cannot be scheduled")?;
    let hashes = plan.input_hashes(&specs, &hash_extra)?;
    let macro_files = macros_dir::stage(&build_dir, &args.macro_files)?;
    tracing::info!(
        packages = plan.packages.len(),
        secs = started.elapsed().as_secs_f64(),
        "plan loaded"
    );

    let specs_rel = match specs.strip_prefix(&build_dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => "SPECS".to_string(),
    };
    let cfg = state::Config {
        specs_rel,
        lease_ttl_ms: u64::try_from(args.lease_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
        max_attempts: args.max_attempts.max(1),
        max_lease_losses: args.max_lease_losses.max(1),
        max_build_ms: u64::try_from(args.max_build_time.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
        retry_failed: args.retry_failed,
        retry_package_failures: args.retry_package_failures,
        restart_finished: args.restart_finished,
        check: args.check,
        macro_files,
        assume_provided: lease_assume_provided,
    };
    let keep = db::Keep {
        events_per_package: args.keep_history.max(1),
        closed_leases: 100_000,
    };
    let pruned = db::prune(&mut conn, keep).await?;
    if pruned != db::Pruned::default() {
        tracing::info!(
            events = pruned.events,
            leases = pruned.leases,
            "forgot the oldest history"
        );
    }
    let snap = db::load(&mut conn).await?;
    let bd = build_dir.clone();
    let exists = move |r: &dbuild_common::wire::RpmFile| bd.join(&r.path).is_file();
    let mut build = state::Build::new(cfg, plan, hashes, snap, &exists, now_ms());
    let writer = db::writer::Writer::spawn(conn);
    writer
        .submit(build.take_ops())
        .wait()
        .await
        .context("recording the initial state")?;
    let s = build.summary(now_ms());
    tracing::info!(packages = s.packages, counts = ?s.counts, "state restored");

    let metrics = metrics::Metrics::new()?;
    let app =
        actix_web::web::Data::new(app::App::new(build, writer, metrics, token, args.max_wait));
    tokio::spawn(app::reaper(app.clone()));

    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let data = app.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .configure(api::configure)
    })
    .workers(args.http_workers.max(1))
    // SIGTERM stops the scheduler within a second: long polls are not waited
    // for (the workers ask again), and nothing is lost (every answer follows its commit).
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    tracing::info!(addr = %addr, build_dir = %build_dir.display(), "scheduler listening");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "dbuild-scheduler listening on http://{addr}")?;
        out.flush()?;
    }
    server.await?;
    Ok(())
}

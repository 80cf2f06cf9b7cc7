//! dbuild-scheduler: serves a build's packages to workers over REST, by
//! critical path, with leases, retries and state in SQLite.

mod api;
mod app;
mod auth;
mod db;
mod error;
mod incoming;
mod macros_dir;
mod metrics;
mod plan_source;
mod promoter;
mod read_only;
mod state;
mod stored_plan;

use anyhow::Context;
use app::now_ms;
use clap::Parser;
use dbuild_common::exit::{self, UsageError};
use dbuild_common::settings::{self, required, ConfigFile, SchedulerSettings, SettingsError};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

const BIN: &str = "dbuild-scheduler";

#[derive(Debug, Parser)]
#[command(name = BIN, version, about = "Serve a dbuild build to workers")]
struct Cli {
    #[command(flatten)]
    file: ConfigFile,
    #[command(flatten)]
    settings: SchedulerSettings,
}

fn load_token(s: &SchedulerSettings, state_dir: &std::path::Path) -> anyhow::Result<String> {
    if let Some(t) = &s.token {
        if t.trim().is_empty() {
            return Err(SettingsError::invalid("token", t, "empty").into());
        }
        return Ok(t.trim().to_string());
    }
    let path = s
        .token_file
        .clone()
        .unwrap_or_else(|| state_dir.join("token"));
    if s.token_file.is_none() && !path.exists() {
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
        .map_err(|e| SettingsError::invalid("token_file", path.display(), e))?;
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err(SettingsError::invalid("token_file", path.display(), "empty file").into());
    }
    Ok(t)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(exit::color_wanted(std::io::stderr().is_terminal()))
        .init();
    exit::run(BIN, start)
}

fn start(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let sources = settings::Sources::of_process(cli.file.config);
    let s: SchedulerSettings = settings::load(&cli.settings, matches, sources)?;
    if s.token.is_some() && s.token_file.is_some() {
        return Err(SettingsError::invalid(
            "token",
            "(hidden)",
            "give the token or a token file (--token-file), not both",
        )
        .into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(s))?;
    Ok(ExitCode::SUCCESS)
}

async fn run(s: SchedulerSettings) -> anyhow::Result<()> {
    let build_dir = required(&s.build_dir, "build_dir")?.clone();
    if !build_dir.is_dir() {
        return Err(
            SettingsError::invalid("build_dir", build_dir.display(), "no such directory").into(),
        );
    }
    if s.read_only {
        return read_only::serve(&build_dir, &s.listen).await;
    }
    let state_dir = build_dir.join("state");
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let loc = if s.memory_state {
        db::Location::Memory
    } else {
        db::Location::File(db::state_file(&build_dir), s.state_sync)
    };
    // Lock first: a second scheduler must stop before doing anything else.
    let mut conn = db::open(&loc).await?;
    let token = load_token(&s, &state_dir)?;

    let specs = s.specs.clone().unwrap_or_else(|| build_dir.join("SPECS"));
    let provided = plan_source::read_provided(
        &s.policy.assume_provided,
        s.policy.assume_provided_file.as_deref(),
        s.base_provides_file.as_deref(),
    )?;
    let lease_assume_provided: Vec<String> = provided.assumed.iter().cloned().collect();
    tracing::info!(
        assumed = provided.assumed.len(),
        base = provided.base.len(),
        check = s.spec.check,
        fail_on_unresolved = s.fail_on_unresolved,
        "provided capabilities"
    );
    let source = plan_source::Source {
        specs: specs.clone(),
        plan_file: s.plan.clone(),
        // Part of every input hash: with_check included.
        defines: s.spec.effective_defines(),
        macro_files: s.spec.macro_files.clone(),
        arch: s.spec.arch.clone(),
        weights: s.policy.weights.clone(),
        provided,
        fail_on_unresolved: s.fail_on_unresolved,
    };
    let started = std::time::Instant::now();
    let (plan, hash_extra) = plan_source::load(&source).map_err(|e| match e {
        // The user must provide them or say they are there: a usage error.
        unresolved @ plan_source::PlanSourceError::Unresolved { .. } => {
            anyhow::Error::new(UsageError::new(unresolved))
        }
        other => other.into(),
    })?;
    plan.validate()
        .context("the build plan cannot be scheduled")?;
    let hashes = plan.input_hashes(&specs, &hash_extra)?;
    let macro_files = macros_dir::stage(&build_dir, &s.spec.macro_files)?;
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
        lease_ttl_ms: millis(s.policy.lease_ttl),
        max_attempts: s.policy.max_attempts.max(1),
        max_lease_losses: s.policy.max_lease_losses.max(1),
        max_build_ms: millis(s.policy.max_build_time),
        retry_failed: s.retry_failed,
        retry_package_failures: s.policy.retry_package_failures,
        restart_finished: s.restart_finished,
        check: s.spec.check,
        macro_files,
        assume_provided: lease_assume_provided,
    };
    let keep = db::Keep {
        events_per_package: s.keep_history.max(1),
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
    let mut snap = db::load(&mut conn).await?;
    // What was accepted becomes visible before anything is served (a stop
    // between a commit and its promotion); incoming/ keeps only live leases.
    let accepted = state::Accepted::new(std::mem::take(&mut snap.last_success));
    let sync = !s.memory_state && s.state_sync == db::StateSync::Full;
    let live: std::collections::HashSet<String> =
        snap.live_leases.iter().map(|l| l.id.clone()).collect();
    let reconciled = promoter::reconcile_at_start(&build_dir, &accepted, &live, sync)?;
    if reconciled != promoter::Reconciled::default() {
        tracing::info!(?reconciled, "incoming/ reconciled");
    }
    let bd = build_dir.clone();
    let exists = move |r: &dbuild_common::wire::RpmFile| bd.join(&r.path).is_file();
    let lease_ttl_ms = cfg.lease_ttl_ms;
    let stored = stored_plan::StoredPlan {
        plan: plan.clone(),
        hashes: hashes.clone(),
        specs_rel: cfg.specs_rel.clone(),
    }
    .to_json()?;
    let mut build = state::Build::new(cfg, plan, hashes, snap, accepted, &exists, now_ms());
    let metrics = metrics::Metrics::new()?;
    build.set_metrics(metrics.build.clone());
    let writer = db::writer::Writer::spawn(conn, metrics.commit_seconds.clone());
    let mut initial = build.take_ops();
    initial.push(db::writer::DbOp::Meta {
        key: stored_plan::KEY.into(),
        value: stored,
    });
    writer
        .submit(initial)
        .wait()
        .await
        .context("recording the initial state")?;
    let restored = build.summary(now_ms());
    tracing::info!(packages = restored.packages, counts = ?restored.counts, "state restored");

    let share = promoter::Share::new(build_dir.clone(), sync, lease_ttl_ms);
    let app = actix_web::web::Data::new(app::App::new(
        build,
        writer,
        metrics,
        token,
        s.max_wait.get(),
        share,
    ));
    tokio::spawn(app::reaper(app.clone()));
    tokio::spawn(promoter::sweeper(app.clone()));

    let listener = std::net::TcpListener::bind(&s.listen)
        .with_context(|| format!("listening on {}", s.listen))?;
    let addr = listener.local_addr()?;
    let data = app.clone();
    let http_metrics = actix_web::web::Data::new(app.metrics.http.clone());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(http_metrics.clone())
            .wrap(actix_web::middleware::from_fn(metrics::http::track))
            .configure(api::configure)
    })
    .workers(s.http_workers.max(1))
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

/// A duration in whole milliseconds, at least 1.
fn millis(span: settings::Span) -> u64 {
    u64::try_from(span.get().as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

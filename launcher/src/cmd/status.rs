//! `dbuild status`: the build at a glance from a terminal, as the status
//! page shows it: progress and time left, what builds where and for how
//! long, what failed (and how to read its log), the head of the ready
//! queue, the workers. For a scheduler URL or a `dbuild local` state
//! directory (see [`super::reach`]).

use super::local::progress::{clock, status_line};
use super::reach::{reach, Target};
use dbuild_common::dispatch::PkgState;
use dbuild_common::wire::{PackageInfo, Summary, WorkerInfo};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// How many ready packages to list (in the order workers get them).
    #[arg(long, default_value_t = 10)]
    pub ready: usize,
}

pub(crate) async fn get<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<T> {
    let resp = http.get(url).send().await?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        anyhow::bail!("GET {url}: {status}: {}", body.trim());
    }
    Ok(resp.json().await?)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The report, from what the scheduler's read endpoints said.
pub fn render(
    s: &Summary,
    packages: &[PackageInfo],
    workers: &[WorkerInfo],
    ready_max: usize,
    now: u64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "build {}: {}", s.outcome, status_line(s));
    let _ = writeln!(
        out,
        "  elapsed: {} since the build started ({} since its scheduler started)",
        clock(s.elapsed_secs),
        clock(s.run_elapsed_secs)
    );
    if !s.finished {
        let _ = writeln!(
            out,
            "  time left: about {} (the remaining critical path is {}; the remaining work over {} live slot(s) may be longer)",
            clock(s.estimate_left_secs),
            clock(s.critical_path_left_secs),
            s.slots_live
        );
    }
    let of = |st: PkgState| packages.iter().filter(move |p| p.state == st);
    for p in of(PkgState::Building) {
        let since = p
            .since_unix_ms
            .map_or(0.0, |t| now.saturating_sub(t) as f64 / 1000.0);
        let _ = writeln!(
            out,
            "  building: {} on {} for {} (attempt {}; dbuild logs {} --follow)",
            p.name,
            p.worker
                .as_deref()
                .unwrap_or("(accepted, its files being moved)"),
            clock(since),
            p.attempts,
            p.name
        );
    }
    for p in of(PkgState::Failed) {
        let _ = writeln!(
            out,
            "  failed: {}: {} (log: dbuild logs {} --attempt {})",
            p.name,
            p.reason.as_deref().unwrap_or("failed"),
            p.name,
            p.attempts.max(1)
        );
    }
    for p in of(PkgState::DepFailed) {
        let _ = writeln!(
            out,
            "  dep-failed: {}: needs {}, which failed",
            p.name,
            p.dep_failed_on.as_deref().unwrap_or("?")
        );
    }
    let mut ready: Vec<&PackageInfo> = of(PkgState::Ready).collect();
    ready.sort_by(|a, b| b.priority.total_cmp(&a.priority));
    if !ready.is_empty() {
        let names: Vec<&str> = ready
            .iter()
            .take(ready_max)
            .map(|p| p.name.as_str())
            .collect();
        let more = ready.len().saturating_sub(ready_max);
        let _ = writeln!(
            out,
            "  ready ({}, by priority): {}{}",
            ready.len(),
            names.join(", "),
            if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            }
        );
    }
    let waiting = of(PkgState::Waiting).count();
    if waiting > 0 {
        let _ = writeln!(
            out,
            "  waiting: {waiting} (why one waits: curl -s URL/v1/packages/NAME)"
        );
    }
    for w in workers {
        let _ = writeln!(
            out,
            "  worker {}: {} slot(s), {}{}",
            w.name,
            w.slots,
            if w.gone { "gone" } else { "live" },
            if w.building.is_empty() {
                String::new()
            } else {
                format!(", building {}", w.building.join(", "))
            }
        );
    }
    out
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = super::reach::runtime()?;
    rt.block_on(async {
        let reached = reach(&args.target, "status").await?;
        let shown = async {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?;
            let url = &reached.url;
            let s: Summary = get(&http, &format!("{url}/v1/summary")).await?;
            let packages: Vec<PackageInfo> = get(&http, &format!("{url}/v1/packages")).await?;
            let workers: Vec<WorkerInfo> = get(&http, &format!("{url}/v1/workers")).await?;
            anyhow::Ok(render(&s, &packages, &workers, args.ready, now_ms()))
        }
        .await;
        let read_only = reached.read_only();
        let url = reached.url.clone();
        reached.stop().await;
        let text = shown?;
        if read_only {
            println!("dbuild status: no scheduler runs; as the state file recorded it:");
        } else {
            println!("dbuild status: {url} (status page: {url}/)");
        }
        print!("{text}");
        Ok(ExitCode::SUCCESS)
    })
}

//! What `dbuild local` shows while it runs (a progress bar on a terminal,
//! plain lines otherwise) and the summary at the end. Every time figure says
//! what it measures: this run's wall time, the scheduler's estimate of the
//! time left (along the remaining critical path and the remaining work over
//! the live slots), the time the scheduler spent building.

use crate::cmd::verify::ShareCheck;
use dbuild_common::dispatch::PkgState;
use dbuild_common::wire::{log_path, PackageInfo, Summary};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn count(summary: &Summary, state: PkgState) -> usize {
    summary.counts.get(state.as_str()).copied().unwrap_or(0)
}

/// The counts of a summary in one line.
pub fn status_line(summary: &Summary) -> String {
    let done = count(summary, PkgState::Succeeded) + count(summary, PkgState::UpToDate);
    format!(
        "{done}/{} done ({} built, {} up-to-date), {} building, {} waiting, {} failed, {} dep-failed",
        summary.packages,
        count(summary, PkgState::Succeeded),
        count(summary, PkgState::UpToDate),
        count(summary, PkgState::Building),
        count(summary, PkgState::Waiting) + count(summary, PkgState::Ready),
        count(summary, PkgState::Failed),
        count(summary, PkgState::DepFailed),
    )
}

/// This run's elapsed time and the scheduler's estimate of the time left,
/// each saying what it measures.
fn times(summary: &Summary, run_secs: f64) -> String {
    let left = if summary.finished {
        "nothing left".to_string()
    } else {
        format!(
            "about {} left (remaining critical path {}, by measured or estimated build times)",
            clock(summary.estimate_left_secs),
            clock(summary.critical_path_left_secs)
        )
    };
    format!("this run {}, {left}", clock(run_secs))
}

/// `name (0:42 on local-1)` for each running build.
fn building_list(building: &[PackageInfo], now_ms: u64) -> Vec<String> {
    building
        .iter()
        .map(|p| {
            let since = p
                .since_unix_ms
                .map_or(0.0, |t| now_ms.saturating_sub(t) as f64 / 1000.0);
            format!(
                "{} ({} on {})",
                p.name,
                clock(since),
                p.worker.as_deref().unwrap_or("?")
            )
        })
        .collect()
}

/// Without a terminal, how long the output may stay silent while builds run.
const QUIET_LIMIT: Duration = Duration::from_secs(30);

/// Shows progress: on a terminal a progress bar (done of all, rate, time
/// left) with the running builds under it; otherwise a line per change of
/// the counts, and every half minute without one a line of what builds and
/// for how long.
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    /// Packages finished when this run started (up to date, or done before a resume).
    done_at_start: Option<usize>,
    last_plain: String,
    last_line_at: Instant,
}

impl Progress {
    pub fn new(tty: bool) -> Self {
        let bar = tty.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "dbuild local: [{bar:32.cyan/blue}] {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            done_at_start: None,
            last_plain: String::new(),
            last_line_at: Instant::now(),
        }
    }

    pub fn show(&mut self, summary: &Summary, building: &[PackageInfo], now_ms: u64) {
        let run_secs = self.started.elapsed().as_secs_f64();
        let finished_now = count(summary, PkgState::Succeeded)
            + count(summary, PkgState::UpToDate)
            + count(summary, PkgState::Failed)
            + count(summary, PkgState::DepFailed);
        let at_start = *self.done_at_start.get_or_insert(finished_now);
        if let Some(bar) = &self.bar {
            // Rate: packages this run finished, per minute of this run.
            let rate = finished_now.saturating_sub(at_start) as f64 / run_secs.max(1.0) * 60.0;
            let mut msg = format!(
                "{} building, {} waiting, {} failed, {} dep-failed; {rate:.1}/min; {}",
                count(summary, PkgState::Building),
                count(summary, PkgState::Waiting) + count(summary, PkgState::Ready),
                count(summary, PkgState::Failed),
                count(summary, PkgState::DepFailed),
                times(summary, run_secs)
            );
            for b in building_list(building, now_ms) {
                let _ = write!(msg, "\n  building {b}");
            }
            bar.set_length(summary.packages as u64);
            bar.set_position(finished_now as u64);
            bar.set_message(msg);
            if summary.finished {
                bar.finish();
            }
            return;
        }
        let mut err = std::io::stderr().lock();
        let counts = status_line(summary);
        if counts != self.last_plain || summary.finished {
            let _ = writeln!(err, "dbuild local: {counts}; {}", times(summary, run_secs));
            self.last_plain = counts;
            self.last_line_at = Instant::now();
        } else if self.last_line_at.elapsed() >= QUIET_LIMIT && !building.is_empty() {
            let _ = writeln!(
                err,
                "dbuild local: still building {}; {}",
                building_list(building, now_ms).join(", "),
                times(summary, run_secs)
            );
            self.last_line_at = Instant::now();
        }
    }

    /// Removes the bar (before other output).
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The end-of-build report; returns true when everything succeeded and the
/// share holds exactly what the scheduler accepted.
pub fn print_summary(
    summary: &Summary,
    packages: &[PackageInfo],
    build_dir: &Path,
    wall_secs: f64,
    share: &anyhow::Result<ShareCheck>,
) -> bool {
    let of = |state: PkgState| packages.iter().filter(move |p| p.state == state);
    let names = |state: PkgState| {
        of(state)
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    let share_ok = share.as_ref().is_ok_and(|c| c.problems.is_empty());
    let built = summary.finished
        && of(PkgState::Failed).count() == 0
        && of(PkgState::DepFailed).count() == 0;
    let _ = writeln!(
        out,
        "dbuild local: {} in {} (this run's wall time, start-up included; building took {} of it)",
        match (built, share_ok) {
            (true, true) => "build succeeded",
            (true, false) => "build FAILED: the share does not hold what was accepted",
            (false, _) => "build FAILED",
        },
        clock(wall_secs),
        clock(summary.run_elapsed_secs)
    );
    let _ = writeln!(
        out,
        "  built ({}): {}",
        of(PkgState::Succeeded).count(),
        names(PkgState::Succeeded)
    );
    let _ = writeln!(
        out,
        "  up-to-date ({}): {}",
        of(PkgState::UpToDate).count(),
        names(PkgState::UpToDate)
    );
    let failed: Vec<&PackageInfo> = of(PkgState::Failed).collect();
    let _ = writeln!(
        out,
        "  failed ({}){}",
        failed.len(),
        if failed.is_empty() { "" } else { ":" }
    );
    for p in failed {
        let log = build_dir.join(log_path(&p.name, p.attempts.max(1)));
        let _ = writeln!(
            out,
            "    {}: {} (log: {})",
            p.name,
            p.reason.as_deref().unwrap_or("failed"),
            log.display()
        );
    }
    let dep_failed: Vec<&PackageInfo> = of(PkgState::DepFailed).collect();
    let _ = writeln!(
        out,
        "  dep-failed ({}){}",
        dep_failed.len(),
        if dep_failed.is_empty() { "" } else { ":" }
    );
    for p in dep_failed {
        let _ = writeln!(
            out,
            "    {}: needs {}, which failed",
            p.name,
            p.dep_failed_on.as_deref().unwrap_or("?")
        );
    }
    let unfinished = packages
        .iter()
        .filter(|p| {
            matches!(
                p.state,
                PkgState::Waiting | PkgState::Ready | PkgState::Building
            )
        })
        .count();
    if unfinished > 0 {
        let _ = writeln!(out, "  not finished: {unfinished}");
    }
    let _ = writeln!(out, "  RPMs: {}", build_dir.join("stage/RPMS").display());
    match share {
        Ok(check) => {
            let _ = writeln!(out, "  verify: {}", check.summary());
            for p in &check.problems {
                let _ = writeln!(out, "    {p}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  verify: the share could not be checked: {e:#}");
        }
    }
    print!("{out}");
    built && share_ok
}

//! What `dbuild local` shows while it runs (a live view on a terminal,
//! plain log lines otherwise) and the summary at the end.

use crate::cmd::verify::ShareCheck;
use dbuild_common::dispatch::PkgState;
use dbuild_common::wire::{log_path, PackageInfo, Summary};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

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

/// The counts, and the failures with the times.
fn status_parts(summary: &Summary) -> (String, String) {
    let done = count(summary, PkgState::Succeeded) + count(summary, PkgState::UpToDate);
    let counts = format!(
        "{done}/{} done ({} built, {} up-to-date), {} building, {} waiting",
        summary.packages,
        count(summary, PkgState::Succeeded),
        count(summary, PkgState::UpToDate),
        count(summary, PkgState::Building),
        count(summary, PkgState::Waiting) + count(summary, PkgState::Ready),
    );
    let rest = format!(
        "{} failed, {} dep-failed; elapsed {}, about {} left",
        count(summary, PkgState::Failed),
        count(summary, PkgState::DepFailed),
        clock(summary.elapsed_secs),
        clock(summary.estimate_left_secs),
    );
    (counts, rest)
}

/// One line of counts and times (for logs).
pub fn status_line(summary: &Summary) -> String {
    let (counts, rest) = status_parts(summary);
    format!("{counts}, {rest}")
}

/// Renders progress: redraws a block on a terminal, prints a line per change otherwise.
pub struct Progress {
    tty: bool,
    drawn_lines: usize,
    last_plain: String,
}

impl Progress {
    pub fn new(tty: bool) -> Self {
        Progress {
            tty,
            drawn_lines: 0,
            last_plain: String::new(),
        }
    }

    pub fn show(&mut self, summary: &Summary, building: &[PackageInfo], now_ms: u64) {
        let mut err = std::io::stderr().lock();
        if !self.tty {
            let line = status_line(summary);
            // Elapsed time changes every second: compare without it.
            let key = line
                .split("; elapsed")
                .next()
                .unwrap_or_default()
                .to_string();
            if key != self.last_plain {
                let _ = writeln!(err, "dbuild local: {line}");
                self.last_plain = key;
            }
            return;
        }
        // Two short lines rather than one long one: a line wider than the
        // terminal wraps, and the redraw would no longer erase all of it.
        let (counts, times) = status_parts(summary);
        let mut block = format!("dbuild local: {counts}\n              {times}\n");
        for p in building {
            let since = p
                .since_unix_ms
                .map(|t| now_ms.saturating_sub(t) as f64 / 1000.0)
                .unwrap_or(0.0);
            let _ = writeln!(
                block,
                "  building {:<28} on {:<12} {}",
                p.name,
                p.worker.as_deref().unwrap_or("?"),
                clock(since)
            );
        }
        if self.drawn_lines > 0 {
            let _ = write!(err, "\x1b[{}A\x1b[J", self.drawn_lines);
        }
        let _ = write!(err, "{block}");
        let _ = err.flush();
        self.drawn_lines = block.lines().count();
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
        "dbuild local: {} in {} (build {:.2} s as the scheduler measured it)",
        match (built, share_ok) {
            (true, true) => "build succeeded",
            (true, false) => "build FAILED: the share does not hold what was accepted",
            (false, _) => "build FAILED",
        },
        clock(wall_secs),
        summary.elapsed_secs
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

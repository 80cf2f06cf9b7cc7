//! `dbuild verify`: checks a build directory's share against what its
//! scheduler accepted (`GET /v1/rpms`): every accepted file present in
//! `stage/` with its recorded sha256, and nothing else in `stage/RPMS` or
//! `stage/SRPMS` (temporary files included). With `--state-dir` (a finished
//! `dbuild local` build, no scheduler running) it starts
//! `dbuild-scheduler --read-only` on the build directory, since only a
//! scheduler may open the state file, and asks it. `dbuild local` runs the
//! same check at the end of a build. The rule itself is
//! [`dbuild_common::share::compare`].

use anyhow::{bail, Context};
use dbuild_common::share::{compare, AcceptedRpm, Problem, RpmsPage, STAGE_RPMS, STAGE_SRPMS};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("accepted").required(true).args(["scheduler", "state_dir"])))]
pub struct Args {
    /// URL of the scheduler serving the build (its read calls need no token).
    #[arg(long, value_name = "URL", requires = "build_dir")]
    pub scheduler: Option<String>,
    /// The build directory on the share (holds stage/), with --scheduler.
    #[arg(long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
    /// The state directory of a finished `dbuild local` build (no scheduler
    /// running on it): the build directory is <state-dir>/<build-id>.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["scheduler", "build_dir"])]
    pub state_dir: Option<PathBuf>,
    /// With --state-dir: the build id [default: local].
    #[arg(long, requires = "state_dir")]
    pub build_id: Option<String>,
}

/// The outcome of a check.
#[derive(Debug)]
pub struct ShareCheck {
    pub accepted: usize,
    pub present: usize,
    pub problems: Vec<Problem>,
}

impl ShareCheck {
    /// One line: the share matches, or how many problems.
    pub fn summary(&self) -> String {
        if self.problems.is_empty() {
            format!(
                "stage/ holds exactly what the scheduler accepted ({} files)",
                self.accepted
            )
        } else {
            format!(
                "stage/ does NOT match what the scheduler accepted: {} problem(s) ({} files accepted, {} in stage/RPMS and stage/SRPMS)",
                self.problems.len(),
                self.accepted,
                self.present
            )
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = super::reach::runtime()?;
    let check = rt.block_on(async {
        match (&args.scheduler, &args.build_dir, &args.state_dir) {
            (Some(url), Some(build_dir), None) => check_share(url, build_dir).await,
            (None, None, Some(state_dir)) => {
                let id = args.build_id.as_deref().unwrap_or("local");
                super::reach::check_build_id(id)?;
                check_state_dir(state_dir, &state_dir.join(id)).await
            }
            _ => bail!("give --scheduler URL --build-dir DIR, or --state-dir DIR"),
        }
    })?;
    for p in &check.problems {
        println!("{p}");
    }
    println!("dbuild verify: {}", check.summary());
    Ok(if check.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Starts `dbuild-scheduler --read-only` on `build_dir` and checks against it.
async fn check_state_dir(state_dir: &Path, build_dir: &Path) -> anyhow::Result<ShareCheck> {
    let (mut scheduler, url) =
        super::reach::start_read_only(state_dir, build_dir, "verify").await?;
    let checked = check_share(&url, build_dir).await;
    scheduler.stop(Duration::from_secs(10)).await;
    checked
}

/// Every file the scheduler at `url` accepted, following the pages.
async fn accepted_files(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<AcceptedRpm>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut req = http
            .get(format!("{}/v1/rpms", url.trim_end_matches('/')))
            .query(&[("limit", "10000")]);
        if let Some(a) = &after {
            req = req.query(&[("after", a.as_str())]);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("asking {url} for the accepted RPMs"))?;
        let status = resp.status();
        if !status.is_success() {
            bail!("{url}/v1/rpms answered {status}");
        }
        let page: RpmsPage = resp
            .json()
            .await
            .with_context(|| format!("{url}/v1/rpms: bad answer"))?;
        all.extend(page.rpms);
        match page.next_after {
            Some(next) if Some(&next) != after.as_ref() => after = Some(next),
            _ => return Ok(all),
        }
    }
}

/// Every file (anything but a directory) under stage/RPMS and stage/SRPMS,
/// relative to `build_dir`.
fn stage_files(build_dir: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<PathBuf> = [STAGE_RPMS, STAGE_SRPMS]
        .iter()
        .map(|d| build_dir.join(d))
        .filter(|d| d.is_dir())
        .collect();
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("reading {}", dir.display()))?;
            let path = e.path();
            if e.file_type()?.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(build_dir) {
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    Ok(out)
}

/// Checks `build_dir`'s stage/ against what the scheduler at `url` accepted.
pub async fn check_share(url: &str, build_dir: &Path) -> anyhow::Result<ShareCheck> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let accepted = accepted_files(&http, url).await?;
    let dir = build_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let present = stage_files(&dir)?;
        // Hash what there is to hash, in parallel (RPMs can be large).
        let hashes: HashMap<&str, Result<String, String>> = accepted
            .par_iter()
            .filter(|a| present.contains(&a.path))
            .map(|a| {
                let h = dbuild_worker::publish::sha256_file(&dir.join(&a.path))
                    .map(|(sha, _)| sha)
                    .map_err(|e| e.to_string());
                (a.path.as_str(), h)
            })
            .collect();
        let problems = compare(&accepted, &present, |p| {
            hashes
                .get(p)
                .cloned()
                .unwrap_or_else(|| Err("not hashed".to_string()))
        });
        Ok(ShareCheck {
            accepted: accepted.len(),
            present: present.len(),
            problems,
        })
    })
    .await
    .context("checking the share")?
}

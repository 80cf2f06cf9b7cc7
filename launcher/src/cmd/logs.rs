//! `dbuild logs PACKAGE [--follow] [--attempt N]`: one attempt's build log
//! from the scheduler (`GET /v1/packages/{name}/log`), written to stdout as
//! it arrives; with `--follow` a running attempt's log is followed until
//! the attempt ends.

use super::reach::{reach, Target};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The source package.
    pub package: String,
    /// Follow the log of a running attempt until it ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Which attempt (1 for the first) [default: the latest].
    #[arg(long, value_name = "N")]
    pub attempt: Option<u32>,
    #[command(flatten)]
    pub target: Target,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = super::reach::runtime()?;
    rt.block_on(async {
        let reached = reach(&args.target, "logs").await?;
        let copied = copy(&reached.url, &args).await;
        reached.stop().await;
        copied?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn copy(url: &str, args: &Args) -> anyhow::Result<()> {
    // No overall timeout: a followed log lasts as long as its build.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let mut req = http
        .get(format!("{url}/v1/packages/{}/log", args.package))
        .query(&[("follow", args.follow)]);
    if let Some(n) = args.attempt {
        req = req.query(&[("attempt", n)]);
    }
    let mut resp = req.send().await?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        let why = serde_json::from_str::<dbuild_common::wire::ErrorBody>(&body)
            .map(|e| e.error)
            .unwrap_or(body);
        anyhow::bail!("no log of {}: {} ({status})", args.package, why.trim());
    }
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = resp.chunk().await? {
        out.write_all(&chunk)?;
        out.flush()?;
    }
    Ok(())
}

//! `dbuild rootfs`: create (or reuse) the base builder root the workers make
//! their chroots from: rpm/rpmbuild, a shell, coreutils and a C toolchain.

use anyhow::Context;
use dbuild_worker::rootfs::{self, RootfsSpec};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the root goes (reused when a complete root is already there).
    #[arg(long, default_value = "/var/lib/dbuild/rootfs")]
    pub dest: PathBuf,
    /// Debian mirror for debootstrap [default: the one the host's apt sources
    /// use for the suite (/etc/apt/sources.list, sources.list.d/*.list and
    /// *.sources), else http://deb.debian.org/debian].
    #[arg(long)]
    pub mirror: Option<String>,
    /// Debian suite.
    #[arg(long, default_value = rootfs::DEFAULT_SUITE)]
    pub suite: String,
    /// Extra Debian packages to include (repeatable or comma-separated).
    #[arg(long = "include", value_delimiter = ',')]
    pub include: Vec<String>,
    /// Make the root from a directory of RPMs (installed with rpm --root) instead of debootstrap.
    #[arg(long)]
    pub from_rpms: Option<PathBuf>,
    /// Rebuild even if a root is already there.
    #[arg(long)]
    pub force: bool,
    /// Make this system's own root (`/`) a builder root instead: install with
    /// apt-get only the packages it lacks, then finish it (for the worker
    /// image's build, `docker/worker.Dockerfile`).
    #[arg(long, conflicts_with_all = ["dest", "from_rpms", "force", "mirror", "suite"])]
    pub in_place: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mirror = args.mirror.unwrap_or_else(|| {
        let (url, why) = rootfs::default_mirror(&args.suite);
        eprintln!("dbuild rootfs: mirror {url} ({why})");
        url
    });
    let mut spec = RootfsSpec {
        suite: args.suite,
        mirror,
        from_rpms: args.from_rpms,
        ..RootfsSpec::default()
    };
    spec.packages
        .extend(args.include.into_iter().filter(|p| !p.is_empty()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    if args.in_place {
        let report = rt
            .block_on(rootfs::finish_in_place(&spec))
            .context("making / a builder root")?;
        println!("finished / as a builder root in {:.1}s", report.seconds);
        return Ok(ExitCode::SUCCESS);
    }
    let report = rt.block_on(async {
        if args.force {
            dbuild_worker::chroot::remove_tree(&args.dest)
                .await
                .with_context(|| format!("removing {}", args.dest.display()))?;
        }
        eprintln!(
            "dbuild rootfs: preparing {} (key {}) ...",
            args.dest.display(),
            spec.key()
        );
        rootfs::ensure(&spec, &args.dest)
            .await
            .with_context(|| format!("making the builder root {}", args.dest.display()))
    })?;
    println!(
        "{} builder root {}: {:.1} MiB, {:.1}s",
        if report.reused { "reused" } else { "created" },
        report.path.display(),
        report.bytes as f64 / (1024.0 * 1024.0),
        report.seconds
    );
    Ok(ExitCode::SUCCESS)
}

//! The base image the test builds dbuild's images FROM, with no registry:
//! a `debootstrap --variant=minbase` root turned into an image by
//! `docker import`. It is cached between runs under a tag keyed by what
//! makes its content (suite and package list), so a second run skips
//! debootstrap; `docker image inspect` tells whether it is there.

use crate::cmd::{bash, check, run};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Bumped whenever how the base is made changes.
const RECIPE: &str = "dbuild-e2e-base-1 debootstrap --variant=minbase";

/// What the base needs beyond `minbase`: everything both images install when
/// missing (the worker's builder root packages, tini), so that building the
/// images needs no network.
pub fn packages() -> Vec<String> {
    let mut p: Vec<String> = dbuild_worker::rootfs::BASE_PACKAGES
        .iter()
        .map(|s| s.to_string())
        .chain(["tini".to_string()])
        .collect();
    p.sort();
    p.dedup();
    p
}

/// The image tag for `suite` and `packages`: `dbuild-e2e-base:<hash>`.
pub fn tag(suite: &str, packages: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(RECIPE.as_bytes());
    h.update(b"\0");
    h.update(suite.as_bytes());
    let mut sorted = packages.to_vec();
    sorted.sort();
    for p in &sorted {
        h.update(b"\0");
        h.update(p.as_bytes());
    }
    format!("dbuild-e2e-base:{}", hex::encode(&h.finalize()[..8]))
}

/// The base image and how it was had.
#[derive(Debug, Clone)]
pub struct Base {
    pub image: String,
    pub reused: bool,
    pub secs: f64,
}

/// Removes a directory tree (on drop too, so a failed debootstrap leaves nothing).
struct TreeGuard(PathBuf);

impl Drop for TreeGuard {
    fn drop(&mut self) {
        let _ = run(
            Command::new("rm")
                .arg("-rf")
                .arg("--one-file-system")
                .arg(&self.0),
            Duration::from_secs(300),
        );
    }
}

/// The cached base image for `suite`, made now unless it exists.
pub fn ensure(suite: &str, mirror: &str) -> anyhow::Result<Base> {
    let started = Instant::now();
    let packages = packages();
    let image = tag(suite, &packages);
    let exists = run(
        Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &image]),
        Duration::from_secs(60),
    )?
    .ok();
    if exists {
        return Ok(Base {
            image,
            reused: true,
            secs: started.elapsed().as_secs_f64(),
        });
    }
    let dir = Path::new("/var/tmp").join(format!(
        "{}.tmp-{}",
        image.replace(':', "-"),
        std::process::id()
    ));
    let _guard = TreeGuard(dir.clone());
    check(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", packages.join(",")))
            .arg(suite)
            .arg(&dir)
            .arg(mirror),
        Duration::from_secs(1800),
    )?;
    // debootstrap leaves the downloaded .debs behind.
    check(
        Command::new("find")
            .arg(dir.join("var/cache/apt/archives"))
            .args(["-name", "*.deb", "-delete"]),
        Duration::from_secs(60),
    )?;
    let comment = format!("{RECIPE} {suite} {}", packages.join(","));
    check(
        &mut bash(
            r#"tar -C "$1" --numeric-owner -c . | docker import -m "$3" - "$2""#,
            &[dir.as_os_str(), image.as_ref(), comment.as_ref()],
        ),
        Duration::from_secs(600),
    )?;
    Ok(Base {
        image,
        reused: false,
        secs: started.elapsed().as_secs_f64(),
    })
}

//! `dbuild rootfs` reuses a complete builder root and reports it, and the
//! mirror it would use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dbuild_worker::rootfs::RootfsSpec;
use std::process::Command;

#[test]
fn rootfs_creates_or_reuses_the_builder_root() {
    // The same root (same package list, same path) as the worker's tests, so it is made once.
    let dest = format!(
        "/var/tmp/dbuild-test-rootfs-{}",
        RootfsSpec::default().key()
    );
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_dbuild"))
            .args(["rootfs", "--dest", &dest])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without --mirror, the host's apt mirror for the suite (or the public one), said on stderr.
    let (mirror, _) = dbuild_worker::rootfs::default_mirror("bookworm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("dbuild rootfs: mirror {mirror} (")),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("reused builder root {dest}: ")) && stdout.contains(" MiB, "),
        "{stdout}"
    );
    for f in [
        "usr/bin/rpmbuild",
        "usr/bin/gcc",
        "bin/sh",
        "etc/rpm/macros.dbuild",
        ".dbuild-rootfs.json",
    ] {
        assert!(std::path::Path::new(&dest).join(f).exists(), "{f} missing");
    }
    let q = Command::new("chroot")
        .arg(&dest)
        .args(["rpm", "-q", "--whatprovides", "gcc", "make", "glibc-devel"])
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stdout));
}

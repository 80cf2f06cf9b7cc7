//! Another package's binary, built before a test runs it.
//!
//! `CARGO_BIN_EXE_*` exists only for the test's own package; a binary of
//! another workspace package left in target/ may be stale (`cargo test -p
//! dbuild-worker` does not rebuild `dbuild-scheduler`). So the first call
//! per test binary runs `cargo build` for it with the profile and target
//! directory this test was built with, as the `escargot` crate does, and a
//! failed build fails the test with cargo's output.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// `target/<profile>/<bin>` of `package`, freshly built (once per test binary).
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    // This test runs as target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()).unwrap() {
        "debug" => "dev",
        other => other,
    };
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.contains(bin) {
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--locked",
                "--profile",
                profile,
                "-p",
                package,
                "--bin",
                bin,
            ])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap_or_else(|e| panic!("running cargo to build {bin}: {e}"));
        assert!(
            out.status.success(),
            "cargo build -p {package} --bin {bin} --profile {profile} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        built.insert(bin.to_string());
    }
    profile_dir.join(bin)
}

//! `promtool check metrics` (Debian's `prometheus` package) on a `/metrics` text.

use std::io::Write;
use std::process::{Command, Stdio};

/// What promtool said about `text` (empty: nothing to complain about);
/// panics when promtool is missing or fails to run.
pub fn promtool_check(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool not found ({e}): install Debian's prometheus package (apt-get install prometheus)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() || !said.trim().is_empty(),
        "promtool failed silently"
    );
    said
}

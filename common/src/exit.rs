//! How every dbuild binary ends: one error style on stderr,
//! `<binary>: error: <message>: <cause>: ...` (no backtrace), and one table
//! of exit statuses (README, "Exit status"):
//!
//! | status | meaning |
//! |---|---|
//! | 0 | everything asked for succeeded |
//! | 1 | the work failed (a package failed, the share did not verify, ...) |
//! | 2 | usage or configuration error ([`SettingsError`], [`UsageError`], a bad flag) |
//! | 130 | interrupted (Ctrl-C) before the work was done |

use crate::settings::SettingsError;
use std::process::ExitCode;

/// The work failed.
pub const FAILED: u8 = 1;
/// A usage or configuration error.
pub const USAGE: u8 = 2;
/// Interrupted by Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// A usage or configuration error other than a [`SettingsError`] (e.g.
/// BuildRequires nothing provides): exit status 2. Shows the error it wraps.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UsageError(pub Box<dyn std::error::Error + Send + Sync>);

impl UsageError {
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> UsageError {
        UsageError(error.into())
    }
}

/// A binary's `main`: parses the command line of `P` and runs `body` with
/// it. A bad command line is printed in our style with status 2 (`--help`
/// and `--version` print and give 0); an error of `body` as [`finish`] says.
pub fn run<P: clap::Parser>(
    binary: &str,
    body: impl FnOnce(P, &clap::ArgMatches) -> anyhow::Result<ExitCode>,
) -> ExitCode {
    let parsed = P::command()
        .try_get_matches()
        .and_then(|m| P::from_arg_matches(&m).map(|p| (p, m)));
    match parsed {
        Ok((args, matches)) => finish(binary, body(args, &matches)),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{binary}: error: {}", clap_message(&e));
            ExitCode::from(USAGE)
        }
    }
}

/// clap's message without its `error:` prefix and usage block, tips kept.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line.strip_prefix("error: ").unwrap_or(line).to_string());
        }
    }
    parts.push("see --help".into());
    parts.join("; ")
}

/// The exit status of a run: its own, or for an error the table's (after
/// printing it).
pub fn finish(binary: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{binary}: error: {}", message(&e));
            ExitCode::from(status(&e))
        }
    }
}

/// 2 when a usage or configuration error is among the causes, else 1.
pub fn status(e: &anyhow::Error) -> u8 {
    let usage = e.downcast_ref::<SettingsError>().is_some()
        || e.downcast_ref::<UsageError>().is_some()
        || e.chain()
            .any(|c| c.is::<SettingsError>() || c.is::<UsageError>());
    if usage {
        USAGE
    } else {
        FAILED
    }
}

/// The error and its causes joined by `: `, skipping causes whose text the
/// message already shows (many error types print their source themselves,
/// so `{:#}` would repeat it).
pub fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usage_errors_are_found_under_context() {
        let e = anyhow::Error::new(SettingsError::missing("specs")).context("dbuild local");
        assert_eq!(status(&e), USAGE);
        assert_eq!(
            message(&e),
            "dbuild local: missing --specs: give it as a flag, as `specs` in the --config file or as DBUILD_SPECS"
        );
        let e = anyhow::Error::new(UsageError::new("2 BuildRequires are not provided"))
            .context("checking");
        assert_eq!(status(&e), USAGE);
        let e = anyhow::anyhow!("a package failed").context("building");
        assert_eq!(
            (status(&e), message(&e).as_str()),
            (FAILED, "building: a package failed")
        );
    }

    #[test]
    fn repeated_causes_are_shown_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(io).context("reading x: gone");
        assert_eq!(message(&e), "reading x: gone");
    }
}

/// Whether log lines may carry colour codes: only on a terminal, and never
/// when `NO_COLOR` is set to anything but "" (<https://no-color.org>).
pub fn color_wanted(is_terminal: bool) -> bool {
    color_allowed(is_terminal, std::env::var_os("NO_COLOR").as_deref())
}

fn color_allowed(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod color_tests {
    use super::color_allowed;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(color_allowed(true, None));
        assert!(color_allowed(true, Some(OsStr::new(""))));
        assert!(!color_allowed(true, Some(OsStr::new("1"))));
        assert!(!color_allowed(false, None));
    }
}

//! Where the Photon 5.0 corpus lies, for tests and benches.
//!
//! `DBUILD_CORPUS` names the corpus directory (the one holding `SPECS/` and
//! `data/`); without it, `../shared/corpus/photon-5.0` beside the checkout.
//! A test whose corpus is missing fails and says what to set: a skipped
//! corpus test would look exactly like a passing one.

use std::path::PathBuf;

/// The environment variable that names the corpus directory.
pub const ENV: &str = "DBUILD_CORPUS";

/// The corpus is not where it was looked for.
#[derive(Debug, thiserror::Error)]
#[error(
    "the Photon 5.0 corpus is not at {} (no {}/): set {ENV} to the directory that holds \
     SPECS/ and data/ (default: ../shared/corpus/photon-5.0 beside the checkout)",
    .dir.display(), .missing
)]
pub struct CorpusMissing {
    pub dir: PathBuf,
    pub missing: &'static str,
}

/// The corpus directory, checked to hold `SPECS/` and `data/`.
pub fn photon() -> Result<PathBuf, CorpusMissing> {
    let dir = std::env::var_os(ENV).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/photon-5.0"),
        PathBuf::from,
    );
    for missing in ["SPECS", "data"] {
        if !dir.join(missing).is_dir() {
            return Err(CorpusMissing { dir, missing });
        }
    }
    Ok(dir)
}

/// [`photon`] for tests and benches: panics with the message saying what to set.
#[track_caller]
pub fn photon_or_panic() -> PathBuf {
    match photon() {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

/// `SPECS/` of [`photon_or_panic`].
#[track_caller]
pub fn photon_specs() -> PathBuf {
    photon_or_panic().join("SPECS")
}

/// `data/NAME` of [`photon_or_panic`].
#[track_caller]
pub fn photon_data(name: &str) -> PathBuf {
    photon_or_panic().join("data").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_directory_and_the_variable() {
        let e = CorpusMissing {
            dir: PathBuf::from("/nowhere"),
            missing: "SPECS",
        };
        let msg = e.to_string();
        assert!(
            msg.contains("/nowhere") && msg.contains("DBUILD_CORPUS"),
            "{msg}"
        );
    }
}

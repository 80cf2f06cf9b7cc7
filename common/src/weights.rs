//! Package build weights (relative durations) for critical-path priorities.
//!
//! The file format is Photon's `packageWeights.json`: one JSON object whose
//! keys are *source* package names (the spec's `Name:`, e.g. `linux-rt`) and
//! whose values are non-negative numbers (Photon writes integers; floats are
//! accepted so measured durations can be saved in the same format).
//! Packages not listed weigh [`Weights::DEFAULT`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{file}: cannot read weights: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not a JSON object of package weights: {source}")]
    Json {
        file: PathBuf,
        source: serde_json::Error,
    },
    #[error("{file}: weight of package {package:?} must be a non-negative number, found {value}")]
    BadValue {
        file: PathBuf,
        package: String,
        value: String,
    },
}

/// Weights by source package name, with a default for unlisted packages.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    by_name: HashMap<String, f64>,
    default: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            by_name: HashMap::new(),
            default: Self::DEFAULT,
        }
    }
}

impl Weights {
    /// The weight of a package nobody measured: every package counts.
    pub const DEFAULT: f64 = 1.0;

    /// Loads a `packageWeights.json` file.
    pub fn load(path: &Path) -> Result<Weights, WeightsError> {
        let text = std::fs::read_to_string(path).map_err(|source| WeightsError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses the JSON text of a weights file; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &Path) -> Result<Weights, WeightsError> {
        let raw: HashMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|source| WeightsError::Json {
                file: origin.to_path_buf(),
                source,
            })?;
        let mut by_name = HashMap::with_capacity(raw.len());
        for (package, value) in raw {
            match value.as_f64() {
                Some(w) if w.is_finite() && w >= 0.0 => {
                    by_name.insert(package, w);
                }
                _ => {
                    return Err(WeightsError::BadValue {
                        file: origin.to_path_buf(),
                        package,
                        value: value.to_string(),
                    })
                }
            }
        }
        Ok(Weights {
            by_name,
            default: Self::DEFAULT,
        })
    }

    /// Builds weights from known values (e.g. measured build durations).
    pub fn from_map(by_name: HashMap<String, f64>, default: f64) -> Weights {
        Weights { by_name, default }
    }

    /// The weight of a source package.
    pub fn get(&self, source_name: &str) -> f64 {
        self.by_name
            .get(source_name)
            .copied()
            .unwrap_or(self.default)
    }

    /// Whether the file listed this package.
    pub fn contains(&self, source_name: &str) -> bool {
        self.by_name.contains_key(source_name)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_photon_format() {
        let w = Weights::from_json(r#"{"linux": 124, "go": 7, "x": 0.5}"#, Path::new("w.json"))
            .unwrap();
        assert_eq!(w.get("linux"), 124.0);
        assert_eq!(w.get("x"), 0.5);
        assert_eq!(w.get("unknown"), Weights::DEFAULT);
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn rejects_bad_values_naming_file_and_package() {
        let err = Weights::from_json(r#"{"linux": "big"}"#, Path::new("w.json")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("w.json") && msg.contains("linux"), "{msg}");
        assert!(Weights::from_json(r#"{"a": -1}"#, Path::new("w.json")).is_err());
        assert!(Weights::from_json("[1]", Path::new("w.json")).is_err());
    }

    #[test]
    fn loads_the_photon_file() {
        let w = Weights::load(&crate::corpus::photon_data("packageWeights.json")).unwrap();
        assert!(w.len() > 100);
        assert!(w.get("linux") > 1.0);
        assert!(matches!(
            Weights::load(Path::new("/nonexistent/w.json")),
            Err(WeightsError::Io { .. })
        ));
    }
}

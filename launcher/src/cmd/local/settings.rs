//! Where `dbuild local`'s options come from: built-in defaults, Photon's
//! `distributed_build_options.json`, a TOML file (`--config`), `DBUILD_*`
//! environment variables and flags, each overriding the one before.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every option of `dbuild local` (all optional: layers fill them in).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub specs: Option<PathBuf>,
    pub workers: Option<u32>,
    pub slots: Option<u32>,
    pub state_dir: Option<PathBuf>,
    pub build_id: Option<String>,
    pub base_root: Option<PathBuf>,
    /// `NAME VALUE` strings, as for `--define`.
    pub defines: Option<Vec<String>>,
    pub arch: Option<String>,
    pub macro_files: Option<Vec<PathBuf>>,
    pub packages: Option<String>,
    pub token: Option<String>,
    pub weights: Option<PathBuf>,
    /// Capabilities the build root provides (`NAME` or `NAME,NAME` entries).
    pub assume_provided: Option<Vec<String>>,
    /// File of such names, one per line (`#` comments).
    pub assume_provided_file: Option<PathBuf>,
    /// Run `%check`.
    pub check: Option<bool>,
    /// Retry packages whose own build failed (flaky tests).
    pub retry_package_failures: Option<bool>,
    /// Directories the workers look for sources in.
    pub sources: Option<Vec<PathBuf>>,
    /// Debian packages added to the base builder root dbuild makes.
    pub base_packages: Option<Vec<String>>,
    /// The scheduler's `--state-sync`.
    pub state_sync: Option<StateSync>,
}

/// When the scheduler's state commits count as done (its `--state-sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StateSync {
    /// On disk.
    Full,
    /// Handed to the OS.
    Normal,
}

impl StateSync {
    /// The scheduler's value for it.
    pub fn as_arg(self) -> &'static str {
        match self {
            StateSync::Full => "full",
            StateSync::Normal => "normal",
        }
    }
}

/// Options that are lists; a `DBUILD_*` variable gives them comma separated.
const LIST_KEYS: [&str; 5] = [
    "defines",
    "macro_files",
    "assume_provided",
    "sources",
    "base_packages",
];

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{file}: {message}")]
    File { file: PathBuf, message: String },
    #[error("environment: {0}")]
    Environment(String),
}

impl Settings {
    /// `other`'s options win where it has them.
    pub fn overlay(self, other: Settings) -> Settings {
        Settings {
            specs: other.specs.or(self.specs),
            workers: other.workers.or(self.workers),
            slots: other.slots.or(self.slots),
            state_dir: other.state_dir.or(self.state_dir),
            build_id: other.build_id.or(self.build_id),
            base_root: other.base_root.or(self.base_root),
            defines: other.defines.or(self.defines),
            arch: other.arch.or(self.arch),
            macro_files: other.macro_files.or(self.macro_files),
            packages: other.packages.or(self.packages),
            token: other.token.or(self.token),
            weights: other.weights.or(self.weights),
            assume_provided: other.assume_provided.or(self.assume_provided),
            assume_provided_file: other.assume_provided_file.or(self.assume_provided_file),
            check: other.check.or(self.check),
            retry_package_failures: other.retry_package_failures.or(self.retry_package_failures),
            sources: other.sources.or(self.sources),
            base_packages: other.base_packages.or(self.base_packages),
            state_sync: other.state_sync.or(self.state_sync),
        }
    }

    /// A TOML file; unknown keys are an error naming them.
    pub fn from_toml(path: &Path) -> Result<Settings, SettingsError> {
        let err = |message: String| SettingsError::File {
            file: path.to_path_buf(),
            message,
        };
        config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .build()
            .map_err(|e| err(e.to_string()))?
            .try_deserialize()
            .map_err(|e| err(e.to_string()))
    }

    /// `DBUILD_<OPTION>` variables (e.g. `DBUILD_WORKERS=4`,
    /// `DBUILD_DEFINES="dist .ph5,with_check 0"`). Other `DBUILD_*`
    /// variables belong to other programs and are left alone.
    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        const KEYS: [&str; 19] = [
            "specs",
            "workers",
            "slots",
            "state_dir",
            "build_id",
            "base_root",
            "defines",
            "arch",
            "macro_files",
            "packages",
            "token",
            "weights",
            "assume_provided",
            "assume_provided_file",
            "check",
            "sources",
            "base_packages",
            "state_sync",
            "retry_package_failures",
        ];
        let mut builder = config::Config::builder();
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("DBUILD_").map(str::to_ascii_lowercase) else {
                continue;
            };
            if !KEYS.contains(&key.as_str()) {
                continue;
            }
            builder = if LIST_KEYS.contains(&key.as_str()) {
                let list: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                builder.set_override(key, list)
            } else {
                builder.set_override(key, value)
            }
            .map_err(|e| SettingsError::Environment(e.to_string()))?;
        }
        builder
            .build()
            .map_err(|e| SettingsError::Environment(e.to_string()))?
            .try_deserialize()
            .map_err(|e| SettingsError::Environment(e.to_string()))
    }

    /// Photon's `distributed_build_options.json` (`make distributed-build`):
    /// `pods` is the number of workers, `nfs-server-path` the shared volume,
    /// `command` the make target (`make packages` builds everything,
    /// `make packages-NAME` the list in `packages_NAME.json` beside the file).
    /// `nfs-server-ip` only makes sense in a cluster and must be empty here.
    /// Any other key is an error that names it.
    pub fn from_photon_options(path: &Path) -> Result<Settings, SettingsError> {
        let err = |message: String| SettingsError::File {
            file: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let known = ["command", "nfs-server-ip", "nfs-server-path", "pods"];
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !known.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(err(format!("unknown key(s): {}", unknown.join(", "))));
        }
        let mut settings = Settings::default();
        if let Some(pods) = map.get("pods") {
            let n = pods
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| err(format!("pods must be a positive integer, not {pods}")))?;
            settings.workers =
                Some(u32::try_from(n).map_err(|_| err(format!("pods too large: {n}")))?);
        }
        if let Some(share) = map
            .get("nfs-server-path")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
        {
            settings.state_dir = Some(PathBuf::from(share));
        }
        if let Some(ip) = map
            .get("nfs-server-ip")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
        {
            return Err(err(format!(
                "nfs-server-ip ({ip}) is for a cluster; dbuild local uses a local directory"
            )));
        }
        if let Some(command) = map.get("command") {
            let command = command
                .as_str()
                .ok_or_else(|| err("command must be a string".into()))?;
            let mut words = command.split_whitespace();
            if words.next() != Some("make") {
                return Err(err(format!(
                    "command must be a make target, not {command:?}"
                )));
            }
            match words.next() {
                Some("packages") => {}
                Some(target) if target.starts_with("packages-") => {
                    let list = path
                        .with_file_name(format!("packages_{}.json", &target["packages-".len()..]));
                    settings.packages = Some(list.display().to_string());
                }
                other => {
                    return Err(err(format!(
                        "unsupported make target {:?} in command",
                        other.unwrap_or("")
                    )))
                }
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn layers_override_in_order_and_env_ignores_foreign_variables() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("dbuild.toml");
        std::fs::write(
            &toml,
            "workers = 3\narch = \"aarch64\"\ndefines = [\"dist .ph5\"]\n",
        )
        .unwrap();
        let file = Settings::from_toml(&toml).unwrap();
        let env = Settings::from_env([
            ("DBUILD_WORKERS".into(), "5".into()),
            ("DBUILD_LOG".into(), "debug".into()),
            ("DBUILD_STATE_SYNC".into(), "full".into()),
        ])
        .unwrap();
        let flags = Settings {
            arch: Some("x86_64".into()),
            ..Settings::default()
        };
        let merged = file.overlay(env).overlay(flags);
        assert_eq!(merged.workers, Some(5));
        assert_eq!(merged.state_sync, Some(StateSync::Full));
        assert_eq!(merged.arch.as_deref(), Some("x86_64"));
        assert_eq!(merged.defines, Some(vec!["dist .ph5".to_string()]));
    }

    #[test]
    fn provided_check_and_sources_from_every_layer() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("dbuild.toml");
        std::fs::write(
            &toml,
            "assume_provided = [\"python3-foo\", \"bar\"]\nassume_provided_file = \"names.txt\"\ncheck = true\nsources = [\"/srv/src\"]\n\
             retry_package_failures = true\n",
        )
        .unwrap();
        let file = Settings::from_toml(&toml).unwrap();
        assert_eq!(
            file.assume_provided,
            Some(vec!["python3-foo".to_string(), "bar".to_string()])
        );
        assert_eq!(file.assume_provided_file, Some(PathBuf::from("names.txt")));
        assert_eq!(
            (file.check, file.sources.clone()),
            (Some(true), Some(vec![PathBuf::from("/srv/src")]))
        );
        let env = Settings::from_env([
            ("DBUILD_ASSUME_PROVIDED".into(), "a, b".into()),
            ("DBUILD_CHECK".into(), "false".into()),
            ("DBUILD_SOURCES".into(), "/x,/y".into()),
            ("DBUILD_RETRY_PACKAGE_FAILURES".into(), "false".into()),
        ])
        .unwrap();
        assert_eq!(
            (file.retry_package_failures, env.retry_package_failures),
            (Some(true), Some(false))
        );
        assert_eq!(
            env.assume_provided,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(env.check, Some(false));
        assert_eq!(
            env.sources,
            Some(vec![PathBuf::from("/x"), PathBuf::from("/y")])
        );
        let merged = file.overlay(env).overlay(Settings {
            check: Some(true),
            ..Settings::default()
        });
        assert_eq!(merged.check, Some(true));
        assert_eq!(
            merged.assume_provided,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            merged.assume_provided_file,
            Some(PathBuf::from("names.txt"))
        );
    }

    #[test]
    fn unknown_toml_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("dbuild.toml");
        std::fs::write(&toml, "workerz = 3\n").unwrap();
        assert!(Settings::from_toml(&toml)
            .unwrap_err()
            .to_string()
            .contains("workerz"));
    }

    #[test]
    fn photon_options_map_onto_ours() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpus/photon-5.0/data/distributed_build_options.json");
        let s = Settings::from_photon_options(&corpus).unwrap();
        assert_eq!(s.workers, Some(1));
        assert_eq!(s.packages, None);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("distributed_build_options.json");
        std::fs::write(&f, r#"{"command": "make packages-minimal", "pods": 4, "nfs-server-path": "/srv/share", "nfs-server-ip": ""}"#).unwrap();
        let s = Settings::from_photon_options(&f).unwrap();
        assert_eq!(
            (s.workers, s.state_dir.clone()),
            (Some(4), Some(PathBuf::from("/srv/share")))
        );
        assert!(s.packages.unwrap().ends_with("packages_minimal.json"));
        std::fs::write(&f, r#"{"pods": 2, "kubeconfig": "x", "extra": 1}"#).unwrap();
        let e = Settings::from_photon_options(&f).unwrap_err().to_string();
        assert!(e.contains("extra") && e.contains("kubeconfig"), "{e}");
    }
}

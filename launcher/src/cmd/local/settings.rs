//! `dbuild local`'s settings: its own options and the groups it hands to the
//! scheduler and the workers it starts, layered by `common::settings`
//! (defaults < Photon's `distributed_build_options.json` < `--config` TOML <
//! `DBUILD_*` variables < flags).

use dbuild_common::settings::{
    self, clap_defaults, read, Layer, Layered, PolicyOptions, SettingsError, SpecOptions,
    StateSync, WorkerOptions,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every option of `dbuild local`.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalSettings {
    /// The SPECS tree to build. Required.
    #[arg(long, value_name = "DIR")]
    pub specs: Option<PathBuf>,
    /// Number of worker processes.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// The shared volume.
    #[arg(long, value_name = "DIR", default_value = "dbuild-state")]
    pub state_dir: PathBuf,
    /// Build id: the build directory is <state-dir>/<build-id>.
    #[arg(long, default_value = "local")]
    pub build_id: String,
    /// Base builder root for the chroots [default: created once under <state-dir>/rootfs-<key>].
    #[arg(long, value_name = "DIR")]
    pub base_root: Option<PathBuf>,
    /// Only what these packages need: a Photon packages_*.json file or NAME,NAME,...
    #[arg(long)]
    pub packages: Option<String>,
    /// The build's bearer token [default: generated once into <state-dir>/token].
    #[arg(long)]
    pub token: Option<String>,
    /// Debian packages to add to the base builder root dbuild makes (comma separated,
    /// repeatable; e.g. python3-dev,python3-pip for Python specs). Ignored with --base-root.
    #[arg(long = "base-packages", value_name = "NAME,...", value_delimiter = ',')]
    pub base_packages: Vec<String>,
    /// When the scheduler's state commits count as done: `normal` (handed to
    /// the OS: a crash of this machine may lose the last few, which are then
    /// built again; it ends the workers too) or `full` (on disk).
    #[arg(long, value_enum, default_value_t = StateSync::Normal)]
    pub state_sync: StateSync,
    /// Plain log lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    #[command(flatten)]
    #[serde(flatten, skip_deserializing)]
    pub spec: SpecOptions,
    #[command(flatten)]
    #[serde(flatten, skip_deserializing)]
    pub policy: PolicyOptions,
    #[command(flatten)]
    #[serde(flatten, skip_deserializing)]
    pub worker: WorkerOptions,
}

impl Default for LocalSettings {
    fn default() -> Self {
        clap_defaults()
    }
}

impl Layered for LocalSettings {
    fn from_layers(layers: &config::Config) -> Result<Self, config::ConfigError> {
        Ok(LocalSettings {
            spec: read(layers)?,
            policy: read(layers)?,
            worker: read(layers)?,
            ..read(layers)?
        })
    }
}

/// The settings from every layer: `flags` (what clap parsed, `matches`
/// telling which were given), the `config` file, Photon's `photon` options
/// and the environment `env`.
pub fn load(
    flags: &LocalSettings,
    matches: &clap::ArgMatches,
    config: Option<PathBuf>,
    photon: Option<&Path>,
    env: Vec<(String, String)>,
) -> Result<LocalSettings, SettingsError> {
    let below_file = match photon {
        Some(file) => vec![PhotonOptions::read(file)?.layer(file)],
        None => Vec::new(),
    };
    let sources = settings::Sources {
        below_file,
        file: config,
        env,
    };
    settings::load(flags, matches, sources)
}

/// What Photon's `distributed_build_options.json` says, in our options.
#[derive(Debug, Default, PartialEq)]
pub struct PhotonOptions {
    pub workers: Option<u32>,
    pub state_dir: Option<PathBuf>,
    pub packages: Option<String>,
}

impl PhotonOptions {
    /// The layer of these options; `file` names it in messages.
    fn layer(&self, file: &Path) -> Layer {
        let mut layer = Layer::new(file.display().to_string());
        if let Some(workers) = self.workers {
            layer.set("workers", workers);
        }
        if let Some(dir) = &self.state_dir {
            layer.set("state_dir", dir.display().to_string());
        }
        if let Some(packages) = &self.packages {
            layer.set("packages", packages.as_str());
        }
        layer
    }

    /// Photon's `distributed_build_options.json` (`make distributed-build`):
    /// `pods` is the number of workers, `nfs-server-path` the shared volume,
    /// `command` the make target (`make packages` builds everything,
    /// `make packages-NAME` the list in `packages_NAME.json` beside the file).
    /// `nfs-server-ip` only makes sense in a cluster and must be empty here.
    /// Any other key is an error that names it.
    pub fn read(path: &Path) -> Result<PhotonOptions, SettingsError> {
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
        let mut settings = PhotonOptions::default();
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
    use clap::{Args, FromArgMatches};

    /// `dbuild local ARGS` with these layers below the flags.
    fn load_local(
        args: &[&str],
        config: Option<PathBuf>,
        photon: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Result<LocalSettings, SettingsError> {
        let matches = LocalSettings::augment_args(clap::Command::new("local"))
            .try_get_matches_from(std::iter::once("local").chain(args.iter().copied()))
            .unwrap();
        let flags = LocalSettings::from_arg_matches(&matches).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(&flags, &matches, config, photon, env)
    }

    #[test]
    fn each_layer_wins_over_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let photon = dir.path().join("distributed_build_options.json");
        std::fs::write(&photon, r#"{"pods": 3, "nfs-server-path": "/srv/photon"}"#).unwrap();
        let toml = dir.path().join("dbuild.toml");
        std::fs::write(
            &toml,
            "workers = 4\narch = \"aarch64\"\ndefines = [\"dist .ph5\"]\n",
        )
        .unwrap();
        let env = [
            ("DBUILD_WORKERS", "5"),
            ("DBUILD_LOG", "debug"),
            ("DBUILD_STATE_SYNC", "full"),
        ];
        let s = load_local(&[], None, None, &[]).unwrap();
        assert_eq!(
            (s.workers, s.state_dir.clone()),
            (2, PathBuf::from("dbuild-state"))
        );
        let s = load_local(&[], None, Some(&photon), &[]).unwrap();
        assert_eq!(
            (s.workers, s.state_dir.clone()),
            (3, PathBuf::from("/srv/photon"))
        );
        let s = load_local(&[], Some(toml.clone()), Some(&photon), &[]).unwrap();
        assert_eq!((s.workers, s.spec.arch.as_str()), (4, "aarch64"));
        let s = load_local(&[], Some(toml.clone()), Some(&photon), &env).unwrap();
        assert_eq!((s.workers, s.state_sync), (5, StateSync::Full));
        let flags = ["--workers", "6", "--arch", "x86_64"];
        let s = load_local(&flags, Some(toml), Some(&photon), &env).unwrap();
        assert_eq!((s.workers, s.spec.arch.as_str()), (6, "x86_64"));
        assert_eq!(s.spec.defines, ["dist .ph5"]);
        assert_eq!(s.state_dir, PathBuf::from("/srv/photon"));
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
        let file = load_local(&[], Some(toml.clone()), None, &[]).unwrap();
        assert_eq!(file.policy.assume_provided, ["python3-foo", "bar"]);
        assert_eq!(
            file.policy.assume_provided_file,
            Some(PathBuf::from("names.txt"))
        );
        assert!(file.spec.check && file.policy.retry_package_failures);
        assert_eq!(file.worker.sources, [PathBuf::from("/srv/src")]);
        let env = [
            ("DBUILD_ASSUME_PROVIDED", "a, b"),
            ("DBUILD_CHECK", "false"),
            ("DBUILD_SOURCES", "/x,/y"),
            ("DBUILD_RETRY_PACKAGE_FAILURES", "false"),
        ];
        let s = load_local(&[], Some(toml.clone()), None, &env).unwrap();
        assert_eq!(s.policy.assume_provided, ["a", "b"]);
        assert!(!s.spec.check && !s.policy.retry_package_failures);
        assert_eq!(s.worker.sources, [PathBuf::from("/x"), PathBuf::from("/y")]);
        assert_eq!(
            s.policy.assume_provided_file,
            Some(PathBuf::from("names.txt"))
        );
        let s = load_local(&["--check"], Some(toml), None, &env).unwrap();
        assert!(s.spec.check);
    }

    #[test]
    fn worker_options_reach_dbuild_local() {
        let s = load_local(&["--no-prefetch", "--build-timeout", "90"], None, None, &[]).unwrap();
        assert!(s.worker.no_prefetch);
        assert_eq!(s.worker.build_timeout, settings::Span::from_secs(90));
        let s = load_local(&[], None, None, &[("DBUILD_NO_PREFETCH", "1")]).unwrap();
        assert!(s.worker.no_prefetch);
    }

    #[test]
    fn unknown_toml_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("dbuild.toml");
        std::fs::write(&toml, "workerz = 3\n").unwrap();
        let e = load_local(&[], Some(toml), None, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("workerz") && e.contains("dbuild.toml"), "{e}");
    }

    #[test]
    fn photon_options_map_onto_ours() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpus/photon-5.0/data/distributed_build_options.json");
        let s = PhotonOptions::read(&corpus).unwrap();
        assert_eq!(s.workers, Some(1));
        assert_eq!(s.packages, None);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("distributed_build_options.json");
        std::fs::write(&f, r#"{"command": "make packages-minimal", "pods": 4, "nfs-server-path": "/srv/share", "nfs-server-ip": ""}"#).unwrap();
        let s = PhotonOptions::read(&f).unwrap();
        assert_eq!(
            (s.workers, s.state_dir.clone()),
            (Some(4), Some(PathBuf::from("/srv/share")))
        );
        assert!(s.packages.unwrap().ends_with("packages_minimal.json"));
        std::fs::write(&f, r#"{"pods": 2, "kubeconfig": "x", "extra": 1}"#).unwrap();
        let e = PhotonOptions::read(&f).unwrap_err().to_string();
        assert!(e.contains("extra") && e.contains("kubeconfig"), "{e}");
    }
}

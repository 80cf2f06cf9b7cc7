//! The settings of dbuild's binaries: one type per binary
//! ([`SchedulerSettings`], [`WorkerSettings`], and `dbuild local`'s
//! `LocalSettings` in the launcher), which clap parses, serde reads and
//! writes, and the config crate stacks from these layers, each winning over
//! the one before:
//!
//! 1. the defaults (clap's `default_value`s),
//! 2. layers a binary adds (`dbuild local`: Photon's `distributed_build_options.json`),
//! 3. the TOML file of `--config` (an unknown key is an error naming it and the file),
//! 4. `DBUILD_<KEY>` variables (lists comma separated),
//! 5. flags given on the command line.
//!
//! One option is one field: its doc comment is the `--help` text, its name
//! gives the flag (`lease_ttl`: `--lease-ttl`), the TOML key and the variable
//! (`DBUILD_LEASE_TTL`), and its clap default is the bottom layer. Options
//! that several binaries take are groups defined once ([`options`]).

mod env;
pub mod options;
mod scheduler;
mod span;
#[cfg(test)]
mod tests;
mod worker;

pub use env::env_name;
pub use options::{ChrootMode, PolicyOptions, SpecOptions, StateSync, WorkerOptions, DEFAULT_ARCH};
pub use scheduler::SchedulerSettings;
pub use span::{Span, SpanError};
pub use worker::WorkerSettings;

use clap::parser::ValueSource;
use config::{Config, ConfigError, Map, Value, ValueKind};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A usage or configuration error (exit status 2); names the option and
/// where its value came from.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings file {file}: {message}")]
    File { file: PathBuf, message: String },
    #[error("settings file {file}: unknown key(s) {keys} (keys are the options' names with `_`, e.g. `{example}`)")]
    UnknownKeys {
        file: PathBuf,
        keys: String,
        example: String,
    },
    /// A value of one layer (a file, a variable, the command line) is wrong.
    #[error("{origin}: {message}")]
    Layer { origin: String, message: String },
    #[error(
        "missing --{flag}: give it as a flag, as `{key}` in the --config file or as {variable}"
    )]
    Missing {
        flag: String,
        key: String,
        variable: String,
    },
    #[error("--{flag} {value:?}: {message}")]
    Invalid {
        flag: String,
        value: String,
        message: String,
    },
}

impl SettingsError {
    /// Option `key` has no value in any layer.
    pub fn missing(key: &str) -> SettingsError {
        SettingsError::Missing {
            flag: key.replace('_', "-"),
            key: key.to_string(),
            variable: env_name(key),
        }
    }

    /// Option `key` has an unusable `value`.
    pub fn invalid(key: &str, value: impl ToString, message: impl ToString) -> SettingsError {
        SettingsError::Invalid {
            flag: key.replace('_', "-"),
            value: value.to_string(),
            message: message.to_string(),
        }
    }
}

/// The value of a required option (`Option` in the settings type, since no
/// single layer has to give it), or the error saying how to give it.
pub fn required<'a, T>(value: &'a Option<T>, key: &str) -> Result<&'a T, SettingsError> {
    value.as_ref().ok_or_else(|| SettingsError::missing(key))
}

/// `--config FILE`: every binary's settings file.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigFile {
    /// TOML file with any of the options below, keys as the options' names
    /// with `_` (`lease_ttl = "90s"`, `defines = ["dist .ph5"]`); DBUILD_<KEY>
    /// variables and flags win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A binary's settings type. Its `Default` is [`clap_defaults`].
pub trait Layered: clap::Args + clap::FromArgMatches + Serialize + Default {
    /// Reads the settings from the stacked layers. Option groups flattened
    /// into the type (`#[serde(flatten, skip_deserializing)]`) are read on
    /// their own with [`read`]: serde's `flatten` hands values on untyped, so
    /// a group's number or boolean given as text by a variable would not
    /// convert.
    fn from_layers(layers: &Config) -> Result<Self, ConfigError>;
}

/// The values no layer changed: clap's defaults, the `Default` of every
/// settings type and group.
///
/// # Panics
/// When `T` has a required argument, which no settings type may have (a
/// required option is an `Option`, checked with [`required`] after all
/// layers); the unit tests read every type's defaults.
pub fn clap_defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults").no_binary_name(true));
    match command
        .try_get_matches_from(std::iter::empty::<String>())
        .and_then(|m| T::from_arg_matches(&m))
    {
        Ok(defaults) => defaults,
        Err(e) => panic!("a settings type has a required argument: {e}"),
    }
}

/// Reads a settings type or group from the stacked layers (keys it does not
/// know are other groups').
pub fn read<T: DeserializeOwned>(layers: &Config) -> Result<T, ConfigError> {
    layers.clone().try_deserialize()
}

/// One option of a settings type: its key and whether it takes a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionKey {
    pub key: String,
    pub list: bool,
}

/// Every option of `S`, as clap knows them.
pub fn option_keys<S: clap::Args>() -> Vec<OptionKey> {
    S::augment_args(clap::Command::new("options"))
        .get_arguments()
        .map(|arg| OptionKey {
            key: arg.get_id().to_string(),
            list: matches!(arg.get_action(), clap::ArgAction::Append),
        })
        .collect()
}

/// The values of one layer, with the place they came from for messages.
#[derive(Debug, Clone)]
pub struct Layer {
    origin: String,
    values: Map<String, Value>,
}

impl Layer {
    pub fn new(origin: impl Into<String>) -> Layer {
        Layer {
            origin: origin.into(),
            values: Map::new(),
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<ValueKind>) {
        let value = Value::new(Some(&self.origin), value);
        self.values.insert(key.to_string(), value);
    }

    /// The options of `settings` for which `keep(key)` holds (never unset ones).
    fn of<T: Serialize>(
        origin: &str,
        settings: &T,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Layer, SettingsError> {
        let err = |e: ConfigError| SettingsError::Layer {
            origin: origin.to_string(),
            message: e.to_string(),
        };
        let values =
            config::Source::collect(&Config::try_from(settings).map_err(err)?).map_err(err)?;
        let mut layer = Layer::new(origin);
        for (key, value) in values {
            if keep(&key) && !matches!(value.kind, ValueKind::Nil) {
                layer.set(&key, value.kind);
            }
        }
        Ok(layer)
    }
}

impl config::Source for Layer {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, ConfigError> {
        Ok(self.values.clone())
    }
}

/// Where a binary's settings come from besides its defaults and flags.
#[derive(Debug, Default)]
pub struct Sources {
    /// Layers between the defaults and the file (`dbuild local`: Photon's options).
    pub below_file: Vec<Layer>,
    /// The `--config` file.
    pub file: Option<PathBuf>,
    /// The environment (`std::env::vars()`; tests give their own).
    pub env: Vec<(String, String)>,
}

impl Sources {
    /// This process's: the `--config` file `file` and its environment.
    pub fn of_process(file: Option<PathBuf>) -> Sources {
        Sources {
            below_file: Vec::new(),
            file,
            env: std::env::vars().collect(),
        }
    }
}

/// The settings of `S`: defaults, `sources`, then the flags: those of
/// `given` (what clap parsed) that `matches` says were on the command line.
/// Each layer wins over the ones before.
pub fn load<S: Layered>(
    given: &S,
    matches: &clap::ArgMatches,
    sources: Sources,
) -> Result<S, SettingsError> {
    let options = option_keys::<S>();
    let mut layers = vec![Layer::of("the defaults", &S::default(), |_| true)?];
    layers.extend(sources.below_file);
    if let Some(file) = &sources.file {
        layers.push(file_layer(file, &options)?);
    }
    layers.extend(env::layers(sources.env, &options));
    let on_command_line = |key: &str| {
        options.iter().any(|o| o.key == key)
            && matches.value_source(key) == Some(ValueSource::CommandLine)
    };
    layers.push(Layer::of("the command line", given, on_command_line)?);
    stack(layers)
}

/// Reads the layers stacked in order. Each layer is read as it is added, so
/// that a wrong value is reported with the layer it came from.
fn stack<S: Layered>(layers: Vec<Layer>) -> Result<S, SettingsError> {
    let mut builder = Config::builder();
    let mut settings = Err(SettingsError::Layer {
        origin: "the settings".into(),
        message: "no layer".into(),
    });
    for layer in layers {
        let err = |e: ConfigError| {
            let message = e.to_string();
            // config names the origin of a wrongly typed value too.
            let message = message
                .strip_suffix(&format!(" in {}", layer.origin))
                .unwrap_or(&message);
            SettingsError::Layer {
                origin: layer.origin.clone(),
                message: message.to_string(),
            }
        };
        builder = builder.add_source(layer.clone());
        let config = builder.build_cloned().map_err(err)?;
        settings = Ok(S::from_layers(&config).map_err(err)?);
    }
    settings
}

/// The `--config` file; an unknown key is an error naming it.
fn file_layer(file: &Path, options: &[OptionKey]) -> Result<Layer, SettingsError> {
    let err = |message: String| SettingsError::File {
        file: file.to_path_buf(),
        message,
    };
    if !file.is_file() {
        return Err(err("no such file".into()));
    }
    let source = config::File::from(file)
        .format(config::FileFormat::Toml)
        .required(true);
    let values = config::Source::collect(&source).map_err(|e| err(e.to_string()))?;
    let mut unknown: Vec<&str> = values
        .keys()
        .map(String::as_str)
        .filter(|k| !options.iter().any(|o| o.key == *k))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(SettingsError::UnknownKeys {
            file: file.to_path_buf(),
            keys: unknown.join(", "),
            example: options.first().map(|o| o.key.clone()).unwrap_or_default(),
        });
    }
    let mut layer = Layer::new(file.display().to_string());
    for (key, value) in values {
        layer.set(&key, value.kind);
    }
    Ok(layer)
}

/// `settings` as the TOML a `--config` file holds (what `dbuild local`
/// gives the processes it starts).
pub fn to_toml<T: Serialize>(settings: &T) -> Result<String, toml::ser::Error> {
    toml::to_string(settings)
}

//! The `DBUILD_<KEY>` layer: one variable per option, lists comma separated.
//!
//! config's own `Environment` source splits lists only together with
//! `try_parsing`, which turns every number-like text into a number (a build
//! id `007` would become `7`); this source keeps values as text, which config
//! converts to the option's type when the settings are read, and splits only
//! list options.

use super::{Layer, OptionKey};
use config::{Value, ValueKind};

/// The variable that sets option `key` (`lease_ttl` -> `DBUILD_LEASE_TTL`).
pub fn env_name(key: &str) -> String {
    format!("DBUILD_{}", key.to_ascii_uppercase())
}

/// One layer per variable naming an option of `options`, so that an error
/// names its variable. Other variables, `DBUILD_*` ones included (another
/// binary's options, `DBUILD_LOG`), are left alone. An empty variable is
/// unset, except that it empties a list.
pub fn layers(
    vars: impl IntoIterator<Item = (String, String)>,
    options: &[OptionKey],
) -> Vec<Layer> {
    let mut vars: Vec<(String, String)> = vars.into_iter().collect();
    vars.sort();
    let mut layers = Vec::new();
    for (name, value) in vars {
        let Some(option) = options.iter().find(|o| env_name(&o.key) == name) else {
            continue;
        };
        let kind = if option.list {
            ValueKind::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| Value::new(Some(&name), item))
                    .collect(),
            )
        } else if value.is_empty() {
            continue;
        } else {
            ValueKind::String(value)
        };
        let mut layer = Layer::new(name);
        layer.set(&option.key, kind);
        layers.push(layer);
    }
    layers
}

//! Staging a package's inputs into the chroot's `%_topdir`: the spec into
//! SPECS/, and its `%include`d files, patches and sources into SOURCES/,
//! verifying sources against the spec directory's `config.yaml` (Photon's
//! format: `sources: [{archive: NAME, archive_sha512sum: HEX}]`).
//!
//! A file is looked for by name in the spec's directory (Photon keeps small
//! sources, `license.txt` and patches there), then in each configured source
//! directory (`--sources`), then in `<build>/SOURCES/`. Every staged file that
//! `config.yaml` lists is checked against its sha512 before the build starts.
//! Photon's `skip_validation` flag is about its upstream-source audit, not the
//! archive checksum, so checksums are always verified.

use dbuild_common::spec::{parse_spec_file, ParseOptions};
use serde::Deserialize;
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("package {package}: spec {spec}: {detail}")]
    Spec {
        package: String,
        spec: PathBuf,
        detail: String,
    },
    #[error("package {package}: {kind} {file} not found (looked in {searched})")]
    Missing {
        package: String,
        kind: &'static str,
        file: String,
        searched: String,
    },
    #[error("package {package}: source {file}: sha512 mismatch: config.yaml expects {expected}, file has {actual}")]
    Checksum {
        package: String,
        file: String,
        expected: String,
        actual: String,
    },
    #[error("package {package}: {path}: {detail}")]
    Config {
        package: String,
        path: PathBuf,
        detail: String,
    },
    #[error("package {package}: copying {path}: {source}")]
    Io {
        package: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Deserialize)]
struct ConfigYaml {
    #[serde(default)]
    sources: Vec<ConfigSource>,
}

#[derive(Debug, Deserialize)]
struct ConfigSource {
    archive: String,
    #[serde(default)]
    archive_sha512sum: Option<String>,
}

/// Expected sha512 by archive file name, from `<spec dir>/config.yaml` (empty when absent).
pub fn expected_checksums(
    package: &str,
    spec_dir: &Path,
) -> Result<BTreeMap<String, String>, SourceError> {
    let path = spec_dir.join("config.yaml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(SourceError::Io {
                package: package.into(),
                path,
                source,
            })
        }
    };
    let cfg: ConfigYaml = serde_norway::from_str(&text).map_err(|e| SourceError::Config {
        package: package.into(),
        path: path.clone(),
        detail: e.to_string(),
    })?;
    Ok(cfg
        .sources
        .into_iter()
        .filter_map(|s| {
            s.archive_sha512sum
                .map(|h| (s.archive, h.trim().to_ascii_lowercase()))
        })
        .collect())
}

/// What was staged.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The spec's path inside the chroot.
    pub spec_in_chroot: String,
    pub files: usize,
    pub bytes: u64,
    pub verified: usize,
    /// The spec asks for the network (Photon's `network_required`).
    pub network_required: bool,
}

/// Copies `from` to `to`, returning (bytes, lowercase hex sha512).
fn copy_hashing(from: &Path, to: &Path) -> std::io::Result<(u64, String)> {
    let mut input = std::fs::File::open(from)?;
    let mut output = std::fs::File::create(to)?;
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// Stages the inputs of `package` (spec at `spec_path`) into `topdir`,
/// looking for sources in the spec's directory, then in `source_dirs` in order.
pub fn stage(
    package: &str,
    spec_path: &Path,
    source_dirs: &[PathBuf],
    topdir: &Path,
    opts: &ParseOptions,
) -> Result<Staged, SourceError> {
    let spec = parse_spec_file(spec_path, opts).map_err(|e| SourceError::Spec {
        package: package.into(),
        spec: spec_path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let spec_dir = spec_path.parent().unwrap_or(Path::new("."));
    let checksums = expected_checksums(package, spec_dir)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::Io {
            package: package.into(),
            path,
            source,
        }
    };
    let spec_name = spec_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{package}.spec"));
    let spec_dest = topdir.join("SPECS").join(&spec_name);
    let (mut bytes, _) = copy_hashing(spec_path, &spec_dest).map_err(io(spec_path))?;
    let mut staged = Staged {
        spec_in_chroot: format!("{}/SPECS/{spec_name}", crate::TOPDIR_IN_CHROOT),
        files: 1,
        bytes: 0,
        verified: 0,
        network_required: spec.network_required,
    };

    let mut wanted: Vec<(&'static str, String)> = Vec::new();
    wanted.extend(
        spec.sources
            .iter()
            .map(|s| ("source", s.file_name().to_string())),
    );
    wanted.extend(
        spec.patches
            .iter()
            .map(|p| ("patch", p.file_name().to_string())),
    );
    for inc in &spec.includes {
        if let Some(name) = inc.file_name() {
            wanted.push(("included file", name.to_string_lossy().into_owned()));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (kind, name) in wanted {
        if name.is_empty() || name.contains('/') || name == ".." || !seen.insert(name.clone()) {
            continue;
        }
        let dirs = || std::iter::once(spec_dir).chain(source_dirs.iter().map(PathBuf::as_path));
        let Some(found) = dirs().map(|d| d.join(&name)).find(|p| p.is_file()) else {
            let searched: Vec<String> = dirs().map(|d| d.display().to_string()).collect();
            return Err(SourceError::Missing {
                package: package.into(),
                kind,
                file: name,
                searched: searched.join(", "),
            });
        };
        let (n, sha512) =
            copy_hashing(&found, &topdir.join("SOURCES").join(&name)).map_err(io(&found))?;
        bytes += n;
        staged.files += 1;
        if let Some(expected) = checksums.get(&name) {
            if *expected != sha512 {
                return Err(SourceError::Checksum {
                    package: package.into(),
                    file: name,
                    expected: expected.clone(),
                    actual: sha512,
                });
            }
            staged.verified += 1;
        }
    }
    staged.bytes = bytes;
    Ok(staged)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_photon_config_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            "sources:\n    - archive: a-1.tar.xz\n      archive_sha512sum: ABC\n      skip_validation: true\n      spdx:\n          package:\n              home_page: x\n    - archive: b.tar\n",
        )
        .unwrap();
        let m = expected_checksums("a", dir.path()).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m["a-1.tar.xz"], "abc");
    }

    #[test]
    fn every_photon_config_yaml_parses() {
        let root = dbuild_common::corpus::photon_specs();
        let entries = std::fs::read_dir(&root).unwrap();
        let mut n = 0;
        for e in entries.flatten() {
            if e.path().join("config.yaml").exists() {
                expected_checksums("x", &e.path()).unwrap();
                n += 1;
            }
        }
        assert!(n > 100);
    }
}

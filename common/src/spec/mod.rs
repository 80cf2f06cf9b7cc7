//! RPM spec parsing with rpm's own semantics (see ARCHITECTURE.md, "Spec parser").
//!
//! `rpmspec -q` is the oracle: `tests/rpmspec_oracle.rs` compares us with it
//! over the whole Photon corpus.

mod defaults;
mod deps;
mod expr;
mod lua;
mod macros;
mod model;
mod parser;
mod reader;

pub use deps::parse_dependencies;
pub use macros::{Expander, MacroError, MacroTable};
pub use model::{BinaryPackage, Constraint, Dependency, Op, SourceEntry, Spec};

use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// How to parse: the macros and target a build uses.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// `--define 'NAME VALUE'` pairs, applied after the built-in macros.
    pub defines: Vec<(String, String)>,
    /// Target architecture (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// Target OS for `%ifos` (`linux`).
    pub os: String,
    /// Extra rpm macro files to load (e.g. Photon's `macros.python`).
    pub macro_files: Vec<PathBuf>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            defines: Vec::new(),
            arch: "x86_64".into(),
            os: "linux".into(),
            macro_files: Vec::new(),
        }
    }
}

impl ParseOptions {
    /// Parses a `--define` argument: `NAME VALUE` (rpm's syntax).
    pub fn parse_define(arg: &str) -> Result<(String, String), SpecError> {
        let arg = arg.trim_start().trim_start_matches('%');
        let (name, value) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
        let starts_well = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        if !starts_well
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || value.trim().is_empty()
        {
            return Err(SpecError::Define(arg.to_string()));
        }
        Ok((name.to_string(), value.trim().to_string()))
    }
}

/// Everything that can go wrong parsing one spec; always names the file (and line).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// A problem of the spec as a whole (a missing tag, a bad macro file).
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("bad --define '{0}': expected 'NAME VALUE'")]
    Define(String),
}

fn read(path: &Path) -> Result<String, SpecError> {
    let bytes = std::fs::read(path).map_err(|source| SpecError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn base_macros(opts: &ParseOptions) -> Result<MacroTable, SpecError> {
    let files = opts
        .macro_files
        .iter()
        .map(|p| Ok((p.clone(), read(p)?)))
        .collect::<Result<Vec<_>, SpecError>>()?;
    parser::base_macros(opts, &files)
}

/// Parses one spec file.
pub fn parse_spec_file(path: &Path, opts: &ParseOptions) -> Result<Spec, SpecError> {
    parser::parse(path, &read(path)?, opts, &base_macros(opts)?)
}

/// Parses spec text as if read from `path` (for tests and tools).
pub fn parse_spec_text(path: &Path, text: &str, opts: &ParseOptions) -> Result<Spec, SpecError> {
    parser::parse(path, text, opts, &base_macros(opts)?)
}

/// Every `*.spec` below `dir`, sorted, as paths relative to `dir`.
pub fn find_specs(dir: &Path) -> Result<Vec<PathBuf>, SpecError> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| SpecError::Io {
            file: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| SpecError::Io {
                file: d.clone(),
                source,
            })?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|source| SpecError::Io {
                file: path.clone(),
                source,
            })?;
            if kind.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "spec") {
                found.push(path.strip_prefix(dir).unwrap_or(&path).to_path_buf());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// One spec's outcome in a tree parse.
pub type TreeEntry = (PathBuf, Result<Spec, SpecError>);

/// Parses every `*.spec` below `specs_dir` (in parallel), sorted by the path
/// relative to `specs_dir`. One bad spec never stops the others.
pub fn parse_tree(specs_dir: &Path, opts: &ParseOptions) -> Result<Vec<TreeEntry>, SpecError> {
    let files = find_specs(specs_dir)?;
    let base = base_macros(opts)?;
    Ok(files
        .into_par_iter()
        .map(|rel| {
            let path = specs_dir.join(&rel);
            let result = read(&path).and_then(|text| parser::parse(&path, &text, opts, &base));
            (rel, result)
        })
        .collect())
}

//! RPM spec parsing with rpm's own semantics (see ARCHITECTURE.md, "Spec parser").

mod model;

pub use model::{BinaryPackage, Constraint, Dependency, Op, SourceEntry, Spec};

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
        ParseOptions { defines: Vec::new(), arch: "x86_64".into(), os: "linux".into(), macro_files: Vec::new() }
    }
}

/// Everything that can go wrong parsing one spec; always names the file (and line).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{file}: cannot read: {source}")]
    Io { file: PathBuf, source: std::io::Error },
    #[error("{file}:{line}: {message}")]
    Syntax { file: PathBuf, line: usize, message: String },
}

/// Parses one spec file.
pub fn parse_spec_file(path: &Path, opts: &ParseOptions) -> Result<Spec, SpecError> {
    let _ = (path, opts);
    Err(SpecError::Syntax { file: path.to_path_buf(), line: 0, message: "parser not written yet".into() })
}

/// Parses every `*.spec` below `specs_dir` (in parallel), sorted by the path
/// relative to `specs_dir`. One bad spec never stops the others.
pub fn parse_tree(specs_dir: &Path, opts: &ParseOptions) -> Result<Vec<(PathBuf, Result<Spec, SpecError>)>, SpecError> {
    let _ = (specs_dir, opts);
    Ok(Vec::new())
}

//! The `--macros-file`s as workers see them: copied at start into
//! `<build-dir>/MACROS/<NN>-<basename>` (NN = 2-digit position), named in
//! every lease relative to the build directory. The directory is made anew
//! on each start so files of an earlier run do not linger.

use std::path::{Path, PathBuf};

/// The directory under the build directory holding the copies.
pub const MACROS_DIR: &str = "MACROS";

#[derive(Debug, thiserror::Error)]
#[error("macro file {file}: {action} {path}: {source}")]
pub struct MacrosDirError {
    pub file: PathBuf,
    pub action: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Copies `files` into `<build_dir>/MACROS/` (each to a temporary name, then
/// renamed) and returns their paths relative to `build_dir`, in order.
pub fn stage(build_dir: &Path, files: &[PathBuf]) -> Result<Vec<String>, MacrosDirError> {
    let dir = build_dir.join(MACROS_DIR);
    let fail = |file: &Path, action: &'static str, path: &Path| {
        let (file, path) = (file.to_path_buf(), path.to_path_buf());
        move |source| MacrosDirError {
            file,
            action,
            path,
            source,
        }
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(fail(&dir, "removing", &dir))?;
    }
    std::fs::create_dir_all(&dir).map_err(fail(&dir, "creating", &dir))?;
    let mut out = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let base = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "macros".into());
        let name = format!("{i:02}-{base}");
        let text = std::fs::read(file).map_err(fail(file, "reading", file))?;
        let tmp = dir.join(format!(".{name}.tmp"));
        let dest = dir.join(&name);
        std::fs::write(&tmp, text).map_err(fail(file, "writing", &tmp))?;
        std::fs::rename(&tmp, &dest).map_err(fail(file, "renaming to", &dest))?;
        tracing::info!(file = %file.display(), copy = %dest.display(), "macro file staged for workers");
        out.push(format!("{MACROS_DIR}/{name}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn copies_in_order_and_clears_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let build = dir.path().join("b");
        std::fs::create_dir_all(build.join("MACROS")).unwrap();
        std::fs::write(build.join("MACROS/07-stale"), "old").unwrap();
        let a = dir.path().join("macros.a");
        let b = dir.path().join("macros.photon");
        std::fs::write(&a, "%a 1\n").unwrap();
        std::fs::write(&b, "%b 2\n").unwrap();
        let rel = stage(&build, &[a, b]).unwrap();
        assert_eq!(rel, ["MACROS/00-macros.a", "MACROS/01-macros.photon"]);
        assert_eq!(
            std::fs::read_to_string(build.join(&rel[1])).unwrap(),
            "%b 2\n"
        );
        let mut left: Vec<String> = std::fs::read_dir(build.join("MACROS"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["00-macros.a", "01-macros.photon"]);
        let missing = stage(&build, &[dir.path().join("nope")])
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope"), "{missing}");
    }
}

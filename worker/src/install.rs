//! Installing a lease's BuildRequires closure into the chroot.
//!
//! The RPMs are installed by the chroot's own `rpm` (`chroot ROOT rpm -i`,
//! equivalent to `rpm --root ROOT -i` but with the base root's rpm, so the
//! database format always matches and the worker host needs no rpm), from
//! read-only bind mounts of the directories that hold them; those binds are
//! unmounted once the install step is done, so rpmbuild never sees them.
//!
//! `--nodeps`: the scheduler computed the closure from the spec graph, and the
//! binary RPMs' automatic requirements (sonames, `/bin/sh`) are met by the
//! Debian base, which rpm's database does not list file by file. rpmbuild's own
//! BuildRequires check still runs without `--nodeps`: it is satisfied by these
//! installed RPMs and by `dbuild-base-provides` (see [`crate::rootfs`]).

use crate::mounts::Bind;
use crate::sandbox::Step;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum InstallError {
    #[error("package {package}: RPM {rpm} to install not found (looked in {searched})")]
    Missing {
        package: String,
        rpm: String,
        searched: String,
    },
    #[error("package {package}: bad RPM path {rpm}")]
    BadPath { package: String, rpm: String },
}

/// Resolves the lease's RPM paths (relative to the build directory); a file
/// absent there is looked up by name in the prebuilt repositories.
pub fn resolve(
    package: &str,
    build_dir: &Path,
    install: &[String],
    prebuilt: &[PathBuf],
) -> Result<Vec<PathBuf>, InstallError> {
    install
        .iter()
        .map(|rel| {
            let relp = Path::new(rel);
            if relp.is_absolute()
                || relp
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(InstallError::BadPath {
                    package: package.into(),
                    rpm: rel.clone(),
                });
            }
            let on_share = build_dir.join(relp);
            if on_share.is_file() {
                return Ok(on_share);
            }
            let name = relp.file_name().ok_or_else(|| InstallError::BadPath {
                package: package.into(),
                rpm: rel.clone(),
            })?;
            for repo in prebuilt {
                for candidate in [repo.join(name), repo.join(relp)] {
                    if candidate.is_file() {
                        return Ok(candidate);
                    }
                }
            }
            let mut searched = vec![build_dir.display().to_string()];
            searched.extend(prebuilt.iter().map(|p| p.display().to_string()));
            Err(InstallError::Missing {
                package: package.into(),
                rpm: rel.clone(),
                searched: searched.join(", "),
            })
        })
        .collect()
}

/// Binds for the RPMs' directories and the RPM paths as seen in the chroot.
pub fn binds_for(rpms: &[PathBuf]) -> (Vec<Bind>, Vec<String>) {
    let mut dirs: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut binds = Vec::new();
    let mut inside = Vec::new();
    for rpm in rpms {
        let dir = rpm.parent().map(Path::to_path_buf).unwrap_or_default();
        let next = dirs.len();
        let i = *dirs.entry(dir.clone()).or_insert_with(|| {
            binds.push(Bind {
                host: dir,
                target: format!("/.dbuild-rpms/{next}"),
                read_only: true,
            });
            next
        });
        let file = rpm
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        inside.push(format!("/.dbuild-rpms/{i}/{file}"));
    }
    (binds, inside)
}

/// The sandbox step that installs `rpms`, and the binds it needs (unmounted
/// again when it succeeded, so rpmbuild never sees them): `rpm -i --nodeps`,
/// then `ldconfig` (the packages' own ldconfig scriptlets may be missing, and
/// the loader cache must know the new libraries for `%check` and build tools).
pub fn install_step(rpms: &[PathBuf]) -> (Vec<Bind>, Step) {
    let (binds, inside) = binds_for(rpms);
    let script = r#"rpm -i -v --nodeps --nosignature "$@" || exit $?
if command -v ldconfig >/dev/null 2>&1; then ldconfig; fi"#;
    let mut argv: Vec<String> = vec![
        "/bin/sh".into(),
        "-c".into(),
        script.into(),
        "dbuild-install".into(),
    ];
    argv.extend(inside);
    let unmount_after = binds.iter().map(|b| b.target.clone()).collect();
    (
        binds,
        Step {
            name: INSTALL_STEP.into(),
            argv,
            unmount_after,
        },
    )
}

/// The name of the install step in the sandbox's status.
pub const INSTALL_STEP: &str = "install";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bind_per_directory() {
        let rpms = [
            PathBuf::from("/s/RPMS/x86_64/a-1-1.x86_64.rpm"),
            PathBuf::from("/s/RPMS/noarch/b-1-1.noarch.rpm"),
            PathBuf::from("/s/RPMS/x86_64/c-1-1.x86_64.rpm"),
        ];
        let (binds, inside) = binds_for(&rpms);
        assert_eq!(binds.len(), 2);
        assert_eq!(
            inside,
            [
                "/.dbuild-rpms/0/a-1-1.x86_64.rpm",
                "/.dbuild-rpms/1/b-1-1.noarch.rpm",
                "/.dbuild-rpms/0/c-1-1.x86_64.rpm"
            ]
        );
        assert!(binds.iter().all(|b| b.read_only));
    }

    #[test]
    fn rejects_escaping_paths() {
        assert!(matches!(
            resolve("p", Path::new("/b"), &["../x.rpm".into()], &[]),
            Err(InstallError::BadPath { .. })
        ));
        assert!(matches!(
            resolve("p", Path::new("/b"), &["stage/RPMS/x/none.rpm".into()], &[]),
            Err(InstallError::Missing { .. })
        ));
    }
}

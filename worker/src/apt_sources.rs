//! The Debian mirror the host's apt uses, so `dbuild rootfs` works behind a
//! local mirror or a caching proxy without a flag.
//!
//! Reads `/etc/apt/sources.list`, `sources.list.d/*.list` (one-line form:
//! `deb [options] URI SUITE COMPONENT...`) and `sources.list.d/*.sources`
//! (deb822 stanzas: `Types:`, `URIs:`, `Suites:`, `Enabled:`). The first
//! enabled binary (`deb`) entry that carries the requested suite itself
//! (`bookworm`, not `bookworm-security`) over a scheme debootstrap can
//! fetch from (http, https, file) gives the mirror.

use std::path::{Path, PathBuf};

/// One apt source entry: where it was read, its URIs and suites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub file: PathBuf,
    pub uris: Vec<String>,
    pub suites: Vec<String>,
}

/// A mirror chosen from the host's apt sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMirror {
    pub url: String,
    /// The sources file it came from.
    pub file: PathBuf,
}

/// Binary entries of a one-line sources file (`sources.list`, `*.list`).
pub fn parse_list(file: &Path, text: &str) -> Vec<AptSource> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            if words.next()? != "deb" {
                return None;
            }
            let mut rest: Vec<&str> = words.collect();
            // `[arch=amd64 signed-by=...]` options come before the URI.
            if rest.first().is_some_and(|w| w.starts_with('[')) {
                let close = rest.iter().position(|w| w.ends_with(']'))?;
                rest.drain(..=close);
            }
            let (uri, suite) = (rest.first()?, rest.get(1)?);
            Some(AptSource {
                file: file.to_path_buf(),
                uris: vec![uri.to_string()],
                suites: vec![suite.to_string()],
            })
        })
        .collect()
}

/// Enabled binary entries of a deb822 sources file (`*.sources`).
pub fn parse_deb822(file: &Path, text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with(char::is_whitespace) {
                // A continuation line belongs to the field before it.
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let enabled = field("enabled")
            .first()
            .is_none_or(|v| !matches!(v.to_ascii_lowercase().as_str(), "no" | "false" | "0"));
        if enabled && field("types").iter().any(|t| t == "deb") {
            out.push(AptSource {
                file: file.to_path_buf(),
                uris: field("uris"),
                suites: field("suites"),
            });
        }
    }
    out
}

/// Every entry under `etc_apt` (normally `/etc/apt`), in apt's order:
/// `sources.list`, then `sources.list.d/` by file name. Unreadable files are skipped.
pub fn read_sources(etc_apt: &Path) -> Vec<AptSource> {
    let mut out = Vec::new();
    let main = etc_apt.join("sources.list");
    if let Ok(text) = std::fs::read_to_string(&main) {
        out.extend(parse_list(&main, &text));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(etc_apt.join("sources.list.d"))
        .map(|dir| dir.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        match file.extension().and_then(|e| e.to_str()) {
            Some("list") => out.extend(parse_list(&file, &text)),
            Some("sources") => out.extend(parse_deb822(&file, &text)),
            _ => {}
        }
    }
    out
}

/// The first entry's mirror for `suite`, if any.
pub fn mirror_for(suite: &str, sources: &[AptSource]) -> Option<HostMirror> {
    let fetchable = |uri: &&String| {
        ["http://", "https://", "file:/"]
            .iter()
            .any(|s| uri.starts_with(s))
    };
    sources
        .iter()
        .filter(|s| s.suites.iter().any(|x| x == suite))
        .find_map(|s| {
            s.uris.iter().find(fetchable).map(|uri| HostMirror {
                url: uri.trim_end_matches('/').to_string(),
                file: s.file.clone(),
            })
        })
}

/// The mirror this host's apt uses for `suite` (from `/etc/apt`), if any.
pub fn host_mirror(suite: &str) -> Option<HostMirror> {
    mirror_for(suite, &read_sources(Path::new("/etc/apt")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn etc_apt(list: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sources.list"), list).unwrap();
        std::fs::create_dir(dir.path().join("sources.list.d")).unwrap();
        for (name, text) in extra {
            std::fs::write(dir.path().join("sources.list.d").join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn one_line_entries_with_options_and_comments() {
        let dir = etc_apt(
            "# a comment\n\
             deb-src http://src.example/debian bookworm main\n\
             deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.lan/debian/ bookworm main contrib # local\n\
             deb http://security.debian.org/debian-security bookworm-security main\n",
            &[],
        );
        let m = mirror_for("bookworm", &read_sources(dir.path())).unwrap();
        assert_eq!(m.url, "http://mirror.lan/debian");
        assert_eq!(m.file, dir.path().join("sources.list"));
        assert_eq!(mirror_for("trixie", &read_sources(dir.path())), None);
    }

    #[test]
    fn deb822_stanzas_skip_disabled_source_only_and_other_suites() {
        let sources = "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n\n\
             Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n\
             Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: mirror+file:/etc/apt/mirrors.txt\n  https://proxy.lan:3142/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
             Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n";
        let dir = etc_apt(
            "",
            &[
                ("debian.sources", sources),
                ("z.list.disabled", "deb http://no/ bookworm main\n"),
            ],
        );
        let all = read_sources(dir.path());
        assert_eq!(all.len(), 2, "{all:?}");
        let m = mirror_for("bookworm", &all).unwrap();
        // mirror+file: is apt's own method, which debootstrap cannot use.
        assert_eq!(m.url, "https://proxy.lan:3142/debian");
        assert_eq!(m.file, dir.path().join("sources.list.d/debian.sources"));
    }

    #[test]
    fn sources_list_comes_first_then_the_directory_by_name() {
        let dir = etc_apt(
            "deb http://first.lan/debian bookworm main\n",
            &[("a.list", "deb http://second.lan/debian bookworm main\n")],
        );
        let all = read_sources(dir.path());
        assert_eq!(all.len(), 2);
        assert_eq!(
            mirror_for("bookworm", &all).unwrap().url,
            "http://first.lan/debian"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(
            read_sources(empty.path()).is_empty(),
            "no /etc/apt at all: no entries"
        );
    }
}

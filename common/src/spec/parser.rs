//! Sections and preamble tags (rpm's `parseSpec.c` / `parsePreamble.c`).

use super::deps::{check_chars, parse_dependencies};
use super::macros::{Expander, MacroTable};
use super::model::{BinaryPackage, Dependency, SourceEntry, Spec};
use super::reader::{Line, Reader};
use super::{defaults, ParseOptions, SpecError};
use std::path::Path;

/// How a preamble tag is written (rpm's `preambleList` types).
#[derive(Clone, Copy, PartialEq, Eq)]
enum TagForm {
    /// `Tag: value`
    Plain,
    /// `Tag(lang): value` (Summary, Group)
    Lang,
    /// `Tag(pre,post): value` (Requires, PreReq, OrderWithRequires)
    Qualified,
    /// `SourceN: value`, `PatchN: value`
    Numbered,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tag {
    Name,
    Version,
    Release,
    Epoch,
    Summary,
    License,
    Other,
    Source,
    Patch,
    ExcludeArch,
    ExclusiveArch,
    Provides,
    Requires,
    WeakDep,
    PreReq,
    Conflicts,
    Obsoletes,
    BuildArch,
    BuildConflicts,
    BuildRequires,
    OrderWithRequires,
}

/// rpm 4.18's preamble tags, in its matching order (first prefix match wins);
/// the bool says whether the tag also defines a macro of its name.
const TAGS: &[(&str, Tag, TagForm, bool)] = &[
    ("name", Tag::Name, TagForm::Plain, true),
    ("version", Tag::Version, TagForm::Plain, true),
    ("release", Tag::Release, TagForm::Plain, true),
    ("epoch", Tag::Epoch, TagForm::Plain, true),
    ("summary", Tag::Summary, TagForm::Lang, true),
    ("license", Tag::License, TagForm::Plain, true),
    ("distribution", Tag::Other, TagForm::Plain, true),
    ("disturl", Tag::Other, TagForm::Plain, true),
    ("vendor", Tag::Other, TagForm::Plain, true),
    ("group", Tag::Other, TagForm::Lang, true),
    ("packager", Tag::Other, TagForm::Plain, true),
    ("url", Tag::Other, TagForm::Plain, true),
    ("vcs", Tag::Other, TagForm::Plain, true),
    ("source", Tag::Source, TagForm::Numbered, false),
    ("patch", Tag::Patch, TagForm::Numbered, false),
    ("nosource", Tag::Other, TagForm::Plain, false),
    ("nopatch", Tag::Other, TagForm::Plain, false),
    ("excludearch", Tag::ExcludeArch, TagForm::Plain, false),
    ("exclusivearch", Tag::ExclusiveArch, TagForm::Plain, false),
    ("excludeos", Tag::Other, TagForm::Plain, false),
    ("exclusiveos", Tag::Other, TagForm::Plain, false),
    ("icon", Tag::Other, TagForm::Plain, false),
    ("provides", Tag::Provides, TagForm::Plain, false),
    ("requires", Tag::Requires, TagForm::Qualified, false),
    ("recommends", Tag::WeakDep, TagForm::Plain, false),
    ("suggests", Tag::WeakDep, TagForm::Plain, false),
    ("supplements", Tag::WeakDep, TagForm::Plain, false),
    ("enhances", Tag::WeakDep, TagForm::Plain, false),
    ("prereq", Tag::PreReq, TagForm::Qualified, false),
    ("conflicts", Tag::Conflicts, TagForm::Plain, false),
    ("obsoletes", Tag::Obsoletes, TagForm::Plain, false),
    ("prefixes", Tag::Other, TagForm::Plain, true),
    ("prefix", Tag::Other, TagForm::Plain, true),
    ("buildroot", Tag::Other, TagForm::Plain, false),
    ("buildarchitectures", Tag::BuildArch, TagForm::Plain, false),
    ("buildarch", Tag::BuildArch, TagForm::Plain, false),
    ("buildconflicts", Tag::BuildConflicts, TagForm::Plain, false),
    ("buildprereq", Tag::BuildRequires, TagForm::Plain, false),
    ("buildrequires", Tag::BuildRequires, TagForm::Plain, false),
    ("autoreqprov", Tag::Other, TagForm::Plain, false),
    ("autoreq", Tag::Other, TagForm::Plain, false),
    ("autoprov", Tag::Other, TagForm::Plain, false),
    ("docdir", Tag::Other, TagForm::Plain, false),
    ("disttag", Tag::Other, TagForm::Plain, true),
    ("bugurl", Tag::Other, TagForm::Plain, true),
    ("translationurl", Tag::Other, TagForm::Plain, true),
    ("upstreamreleases", Tag::Other, TagForm::Plain, true),
    (
        "orderwithrequires",
        Tag::OrderWithRequires,
        TagForm::Qualified,
        false,
    ),
    ("removepathpostfixes", Tag::Other, TagForm::Plain, true),
    ("modularitylabel", Tag::Other, TagForm::Plain, true),
];

const REQUIRES_QUALIFIERS: [&str; 12] = [
    "interp",
    "preun",
    "pre",
    "postun",
    "post",
    "rpmlib",
    "verify",
    "pretrans",
    "posttrans",
    "hint",
    "meta",
    "prereq",
];

/// Section keywords (rpm's `partList`); a section starts at column 0.
const SECTIONS: [&str; 34] = [
    "%package",
    "%prep",
    "%build",
    "%install",
    "%check",
    "%clean",
    "%preun",
    "%postun",
    "%pretrans",
    "%posttrans",
    "%pre",
    "%post",
    "%files",
    "%changelog",
    "%description",
    "%triggerpostun",
    "%triggerprein",
    "%triggerun",
    "%triggerin",
    "%trigger",
    "%verifyscript",
    "%sepolicy",
    "%filetriggerin",
    "%filetrigger",
    "%filetriggerun",
    "%filetriggerpostun",
    "%transfiletriggerin",
    "%transfiletrigger",
    "%transfiletriggerun",
    "%transfiletriggerpostun",
    "%end",
    "%patchlist",
    "%sourcelist",
    "%generate_buildrequires",
];

/// The section keyword a line starts, if any (case-insensitive, like rpm).
fn section_of(line: &str) -> Option<&'static str> {
    if !line.starts_with('%') {
        return None;
    }
    SECTIONS.iter().copied().find(|kw| {
        line.len() >= kw.len()
            && line.is_char_boundary(kw.len())
            && line[..kw.len()].eq_ignore_ascii_case(kw)
            && line[kw.len()..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace)
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Preamble,
    SourceList,
    PatchList,
    Other,
}

struct Package {
    pkg: BinaryPackage,
    has_description: bool,
    has_summary: bool,
}

struct SpecParser {
    file: std::path::PathBuf,
    name: Option<String>,
    epoch: Option<String>,
    version: Option<String>,
    release: Option<String>,
    license: bool,
    packages: Vec<Package>,
    build_requires: Vec<Dependency>,
    build_conflicts: Vec<Dependency>,
    exclusive_arch: Vec<String>,
    exclude_arch: Vec<String>,
    sources: Vec<SourceEntry>,
    patches: Vec<SourceEntry>,
    part: Part,
    current: usize,
}

/// The macros every spec of a run starts from: rpm's core and platform
/// macros, the distribution's macro files, then the `--define`s. Built once
/// per run and cloned per spec.
pub fn base_macros(
    opts: &ParseOptions,
    macro_files: &[(std::path::PathBuf, String)],
) -> Result<MacroTable, SpecError> {
    let mut table = MacroTable::default();
    let builtin = |e: super::MacroError| SpecError::Invalid {
        file: "<built-in macros>".into(),
        message: e.to_string(),
    };
    table
        .load_macro_text(defaults::core_macros())
        .map_err(builtin)?;
    table
        .load_macro_text(&defaults::platform_macros(&opts.arch, &opts.os))
        .map_err(builtin)?;
    for (file, text) in macro_files {
        table
            .load_macro_text(text)
            .map_err(|e| SpecError::Invalid {
                file: file.clone(),
                message: e.to_string(),
            })?;
    }
    for (name, value) in &opts.defines {
        table.define(name, None, value);
    }
    Ok(table.freeze())
}

/// Parses spec `text` read from `path`, starting from `base` macros.
///
/// Like rpm, a spec whose main package sets `BuildArch` is parsed a second
/// time with `%{_target_cpu}` set to that architecture (the first one that
/// can be built for the target: `noarch` or the target itself), so
/// `%ifarch` in a noarch spec sees `noarch`. When none can, the first
/// parse is returned and `Spec::builds_on` says no.
pub fn parse(
    path: &Path,
    text: &str,
    opts: &ParseOptions,
    base: &MacroTable,
) -> Result<Spec, SpecError> {
    let first = parse_once(path, text, base, None)?;
    let Some(arches) = first.build_arch.clone() else {
        return Ok(first);
    };
    let Some(chosen) = arches
        .split_whitespace()
        .find(|a| *a == "noarch" || *a == opts.arch)
    else {
        return Ok(first);
    };
    let mut spec = parse_once(path, text, base, Some(chosen))?;
    spec.build_arch = Some(arches);
    Ok(spec)
}

fn parse_once(
    path: &Path,
    text: &str,
    base: &MacroTable,
    target_cpu: Option<&str>,
) -> Result<Spec, SpecError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Absolute, so that `%{SOURCE1}` names the same file from anywhere.
    let absolute = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
    let spec_dir = absolute.as_path();
    let mut table = base.clone();
    for dir_macro in ["_sourcedir", "_specdir"] {
        if table.get(dir_macro).is_none() {
            table.define(dir_macro, None, &spec_dir.display().to_string());
        }
    }
    if let Some(cpu) = target_cpu {
        table.define("_target_cpu", None, cpu);
    }
    let mut expander = Expander::new(&mut table);
    let mut reader = Reader::new(path, text, spec_dir);
    let mut parser = SpecParser {
        file: path.to_path_buf(),
        name: None,
        epoch: None,
        version: None,
        release: None,
        license: false,
        packages: vec![Package {
            pkg: BinaryPackage::new(""),
            has_description: false,
            has_summary: false,
        }],
        build_requires: Vec::new(),
        build_conflicts: Vec::new(),
        exclusive_arch: Vec::new(),
        exclude_arch: Vec::new(),
        sources: Vec::new(),
        patches: Vec::new(),
        part: Part::Preamble,
        current: 0,
    };
    while let Some(line) = reader.next_line(&mut expander)? {
        if let Some(keyword) = section_of(&line.text) {
            parser.start_section(keyword, &line)?;
            continue;
        }
        match parser.part {
            Part::Preamble => parser.preamble_line(&line, &mut expander)?,
            Part::SourceList | Part::PatchList => parser.list_line(&line, &mut expander)?,
            Part::Other => {}
        }
    }
    // Photon's flag for builds that may use the network (see `Spec::network_required`).
    let network_required = expander
        .expand("%{?network_required}")
        .map(|v| flag_is_set(&v))
        .unwrap_or(false);
    let warnings = std::mem::take(&mut expander.warnings);
    let mut spec = parser.finish(reader.includes, warnings)?;
    spec.network_required = network_required;
    Ok(spec)
}

fn syntax(line: &Line, message: impl Into<String>) -> SpecError {
    SpecError::Syntax {
        file: line.file.to_path_buf(),
        line: line.number,
        message: message.into(),
    }
}

/// Splits section arguments into options (`-n name`) and the package name.
struct SectionArgs {
    dash_n: Option<String>,
    name: Option<String>,
}

fn section_args(line: &Line, keyword: &str) -> Result<SectionArgs, SpecError> {
    let words: Vec<&str> = line.text[keyword.len()..].split_whitespace().collect();
    let mut args = SectionArgs {
        dash_n: None,
        name: None,
    };
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        match w {
            "--" => break,
            "-n" => {
                i += 1;
                let v = words.get(i).ok_or_else(|| {
                    syntax(line, format!("Error parsing {keyword}: -n needs a name"))
                })?;
                args.dash_n = Some((*v).to_string());
            }
            "-f" | "-p" | "-l" | "-P" => i += 1,
            w if w.starts_with('-') => {}
            w => {
                if args.name.is_some() {
                    return Err(syntax(
                        line,
                        format!("Too many names: {}", line.text.trim()),
                    ));
                }
                args.name = Some(w.to_string());
            }
        }
        i += 1;
    }
    Ok(args)
}

impl SpecParser {
    fn main_name(&self, line: &Line) -> Result<&str, SpecError> {
        self.name.as_deref().ok_or_else(|| {
            syntax(
                line,
                "Name field must be present in package: (main package)",
            )
        })
    }

    /// The package a section line names (`-n full` or `suffix`), main if none.
    fn package_for(&self, args: &SectionArgs, line: &Line) -> Result<Option<String>, SpecError> {
        Ok(match (&args.dash_n, &args.name) {
            (Some(n), _) => Some(n.clone()),
            (None, Some(suffix)) => Some(format!("{}-{suffix}", self.main_name(line)?)),
            (None, None) => None,
        })
    }

    fn find_package(&self, name: Option<&str>, line: &Line) -> Result<usize, SpecError> {
        match name {
            None => Ok(0),
            Some(n) => self
                .packages
                .iter()
                .position(|p| p.pkg.name == n)
                .ok_or_else(|| {
                    syntax(
                        line,
                        format!("Package does not exist: {}", line.text.trim()),
                    )
                }),
        }
    }

    fn start_section(&mut self, keyword: &str, line: &Line) -> Result<(), SpecError> {
        let kw = keyword.to_ascii_lowercase();
        let args = section_args(line, keyword)?;
        self.part = Part::Other;
        match kw.as_str() {
            "%package" => {
                let name = self.package_for(&args, line)?.ok_or_else(|| {
                    syntax(
                        line,
                        format!("Error parsing %package: {}", line.text.trim()),
                    )
                })?;
                if self.packages.iter().any(|p| p.pkg.name == name) {
                    return Err(syntax(
                        line,
                        format!("Package already exists: {}", line.text.trim()),
                    ));
                }
                let mut pkg = BinaryPackage::new(name);
                pkg.build_arch = self.packages[0].pkg.build_arch.clone();
                self.packages.push(Package {
                    pkg,
                    has_description: false,
                    has_summary: false,
                });
                self.current = self.packages.len() - 1;
                self.part = Part::Preamble;
            }
            "%description" => {
                let target = self.package_for(&args, line)?;
                let idx = self.find_package(target.as_deref(), line)?;
                self.packages[idx].has_description = true;
            }
            "%files" => {
                let target = self.package_for(&args, line)?;
                let idx = self.find_package(target.as_deref(), line)?;
                self.packages[idx].pkg.has_files = true;
            }
            "%prep"
            | "%build"
            | "%install"
            | "%check"
            | "%clean"
            | "%changelog"
            | "%end"
            | "%generate_buildrequires" => {}
            "%sourcelist" => self.part = Part::SourceList,
            "%patchlist" => self.part = Part::PatchList,
            _ => {
                // Scriptlets and triggers belong to a package that must exist.
                let target = self.package_for(&args, line)?;
                let idx = self.find_package(target.as_deref(), line)?;
                let requires = &mut self.packages[idx].pkg.script_requires;
                for dep in scriptlet_requires(&kw, &line.text[keyword.len()..]) {
                    if !requires.contains(&dep) {
                        requires.push(dep);
                    }
                }
            }
        }
        Ok(())
    }

    fn list_line(&mut self, line: &Line, ex: &mut Expander<'_>) -> Result<(), SpecError> {
        let value = line.text.trim();
        if value.is_empty() || value.starts_with('#') {
            return Ok(());
        }
        let patch = self.part == Part::PatchList;
        self.add_source(patch, None, value, ex, line)
    }

    fn add_source(
        &mut self,
        patch: bool,
        number: Option<u32>,
        value: &str,
        ex: &mut Expander<'_>,
        line: &Line,
    ) -> Result<(), SpecError> {
        let list = if patch {
            &mut self.patches
        } else {
            &mut self.sources
        };
        let number = number.unwrap_or_else(|| list.iter().map(|s| s.number + 1).max().unwrap_or(0));
        let entry = SourceEntry {
            number,
            value: value.to_string(),
        };
        let file_name = entry.file_name().to_string();
        list.push(entry);
        let (kind, url) = if patch {
            ("PATCH", "PATCHURL")
        } else {
            ("SOURCE", "SOURCEURL")
        };
        let full = ex
            .expand(&format!("%{{_sourcedir}}/{file_name}"))
            .map_err(|e| syntax(line, e.to_string()))?;
        ex.table.define(&format!("{kind}{number}"), None, &full);
        ex.table.define(&format!("{url}{number}"), None, value);
        Ok(())
    }

    fn preamble_line(&mut self, line: &Line, ex: &mut Expander<'_>) -> Result<(), SpecError> {
        let text = line.text.trim_end();
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(());
        }
        let Some(TagMatch {
            keyword,
            tag,
            form,
            is_macro,
            token,
            qualifier,
            value,
        }) = find_tag(text)
        else {
            return Err(syntax(line, format!("Unknown tag: {trimmed}")));
        };
        let value = value.trim();
        if value.is_empty() {
            // rpm rejects every empty tag, but would have run the `%(...)`
            // that left this one empty and (most likely) seen a value.
            if line.shell_not_run {
                return self.tag_from_shell(tag, self.current == 0, line, trimmed);
            }
            return Err(syntax(line, format!("Empty tag: {trimmed}")));
        }
        let fail = |msg: String| syntax(line, format!("{msg}: {trimmed}"));
        let single_token = |v: &str| {
            if v.contains(char::is_whitespace) {
                Err(syntax(
                    line,
                    format!("Tag takes single token only: {trimmed}"),
                ))
            } else {
                Ok(())
            }
        };
        let main = self.current == 0;
        match tag {
            Tag::Name => {
                single_token(value)?;
                check_chars(value, ".-_+%{}").map_err(fail)?;
                if main {
                    self.name = Some(value.to_string());
                }
                self.packages[self.current].pkg.name = value.to_string();
            }
            Tag::Version | Tag::Release => {
                single_token(value)?;
                check_chars(value, "._+%{}~^").map_err(fail)?;
                if main {
                    let slot = if tag == Tag::Version {
                        &mut self.version
                    } else {
                        &mut self.release
                    };
                    *slot = Some(value.to_string());
                }
            }
            Tag::Epoch => {
                single_token(value)?;
                if !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(syntax(
                        line,
                        format!("Epoch field must be an unsigned number: {value}"),
                    ));
                }
                if main {
                    self.epoch = Some(value.trim_start_matches('0').to_string()).map(|e| {
                        if e.is_empty() {
                            "0".into()
                        } else {
                            e
                        }
                    });
                }
            }
            Tag::Summary => self.packages[self.current].has_summary = true,
            Tag::License => self.license |= main,
            Tag::Source | Tag::Patch => {
                let digits = &token[tag_len(tag)..];
                let number =
                    if digits.is_empty() {
                        None
                    } else {
                        Some(digits.parse::<u32>().map_err(|_| {
                            syntax(line, format!("Bad source/patch number: {trimmed}"))
                        })?)
                    };
                self.add_source(tag == Tag::Patch, number, value, ex, line)?;
            }
            Tag::ExclusiveArch | Tag::ExcludeArch => {
                let list = value
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|w| !w.is_empty())
                    .map(str::to_string);
                if main {
                    if tag == Tag::ExclusiveArch {
                        &mut self.exclusive_arch
                    } else {
                        &mut self.exclude_arch
                    }
                    .extend(list);
                }
            }
            Tag::BuildArch => {
                let arches: Vec<&str> = value
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|w| !w.is_empty())
                    .collect();
                if !main && arches != ["noarch"] {
                    return Err(syntax(
                        line,
                        format!("Only noarch subpackages are supported: {trimmed}"),
                    ));
                }
                self.packages[self.current].pkg.build_arch = Some(arches.join(" "));
            }
            Tag::BuildRequires => self
                .build_requires
                .extend(parse_dependencies(value, true).map_err(fail)?),
            Tag::BuildConflicts => self
                .build_conflicts
                .extend(parse_dependencies(value, true).map_err(fail)?),
            Tag::Requires | Tag::PreReq | Tag::OrderWithRequires => {
                for q in qualifier
                    .split(',')
                    .map(str::trim)
                    .filter(|q| !q.is_empty())
                {
                    if !REQUIRES_QUALIFIERS.contains(&q) {
                        return Err(syntax(
                            line,
                            format!("Bad Requires({qualifier}): qualifiers: {trimmed}"),
                        ));
                    }
                }
                let deps = parse_dependencies(value, true).map_err(fail)?;
                if tag != Tag::OrderWithRequires {
                    self.packages[self.current].pkg.requires.extend(deps);
                }
            }
            Tag::WeakDep => {
                parse_dependencies(value, true).map_err(fail)?;
            }
            Tag::Provides => {
                let deps = parse_dependencies(value, false).map_err(fail)?;
                self.packages[self.current].pkg.provides.extend(deps);
            }
            Tag::Conflicts => {
                let deps = parse_dependencies(value, true).map_err(fail)?;
                self.packages[self.current].pkg.conflicts.extend(deps);
            }
            Tag::Obsoletes => {
                let deps = parse_dependencies(value, false).map_err(fail)?;
                self.packages[self.current].pkg.obsoletes.extend(deps);
            }
            Tag::Other => {}
        }
        if is_macro && form != TagForm::Numbered {
            // rpm defines `%{version}` etc., and `%{VERSION}` for the main package.
            ex.table.define(keyword, None, value);
            if main {
                ex.table.define(&keyword.to_ascii_uppercase(), None, value);
            }
        }
        Ok(())
    }

    /// A tag whose whole value comes from a `%(...)` that is not run. rpm
    /// ignores BuildRoot and keeps informational tags (URL, Vendor, Group...)
    /// only in the header, so those parse as rpm parses them; Summary and
    /// License count as present. The value of the others decides what is
    /// built or needed and cannot be guessed: an error names the line.
    fn tag_from_shell(
        &mut self,
        tag: Tag,
        main: bool,
        line: &Line,
        trimmed: &str,
    ) -> Result<(), SpecError> {
        match tag {
            Tag::Other => {}
            Tag::Summary => self.packages[self.current].has_summary = true,
            Tag::License => self.license |= main,
            _ => {
                return Err(syntax(
                    line,
                    format!("Value comes only from %(...), which dbuild does not run: {trimmed}"),
                ))
            }
        }
        Ok(())
    }

    fn finish(
        self,
        includes: Vec<std::path::PathBuf>,
        warnings: Vec<String>,
    ) -> Result<Spec, SpecError> {
        let err = |message: String| SpecError::Invalid {
            file: self.file.clone(),
            message,
        };
        let main_label = "(main package)";
        let name = self.name.clone().ok_or_else(|| {
            err(format!(
                "Name field must be present in package: {main_label}"
            ))
        })?;
        let version = self.version.clone().ok_or_else(|| {
            err(format!(
                "Version field must be present in package: {main_label}"
            ))
        })?;
        let release = self.release.clone().ok_or_else(|| {
            err(format!(
                "Release field must be present in package: {main_label}"
            ))
        })?;
        if !self.packages[0].has_summary {
            return Err(err(format!(
                "Summary field must be present in package: {main_label}"
            )));
        }
        if !self.license {
            return Err(err(format!(
                "License field must be present in package: {main_label}"
            )));
        }
        for p in &self.packages[1..] {
            if !p.has_summary {
                return Err(err(format!(
                    "Summary field must be present in package: {}",
                    p.pkg.name
                )));
            }
        }
        for p in &self.packages {
            if !p.has_description {
                return Err(err(format!("Package has no %description: {}", p.pkg.name)));
            }
        }
        let build_arch = self.packages[0].pkg.build_arch.clone();
        Ok(Spec {
            file: self.file,
            name,
            epoch: self.epoch,
            version,
            release,
            packages: self.packages.into_iter().map(|p| p.pkg).collect(),
            build_requires: self.build_requires,
            build_conflicts: self.build_conflicts,
            build_arch,
            exclusive_arch: self.exclusive_arch,
            exclude_arch: self.exclude_arch,
            sources: self.sources,
            patches: self.patches,
            includes,
            warnings,
            network_required: false,
        })
    }
}

/// What rpm's `parseScript` adds to a package's Requires for a scriptlet or
/// trigger section with these arguments: the interpreter (`-p`, default
/// `/bin/sh`; none for `<lua>`) and the `rpmlib(...)` features it needs.
fn scriptlet_requires(keyword: &str, args: &str) -> Vec<Dependency> {
    let trigger = keyword.contains("trigger");
    // A trigger's own options stand before `--`; what follows is its condition.
    let options = if trigger {
        args.split_once("--").map_or(args, |(before, _)| before)
    } else {
        args
    };
    let words = popt_words(options);
    let mut prog = "/bin/sh".to_string();
    let mut expand = false;
    let mut i = 0;
    while i < words.len() {
        match words[i].as_str() {
            "-p" => {
                if let Some(p) = words.get(i + 1) {
                    prog.clone_from(p);
                }
                i += 1;
            }
            "-n" | "-f" | "-P" => i += 1,
            "-e" | "-q" => expand = true,
            _ => {}
        }
        i += 1;
    }
    let rpmlib = |feature: &str, version: &str| Dependency {
        name: format!("rpmlib({feature})"),
        constraint: Some(super::model::Constraint {
            op: super::model::Op::Le,
            evr: version.to_string(),
        }),
    };
    let argv = popt_words(&prog);
    let mut deps = Vec::new();
    match argv.first().map(String::as_str) {
        Some("<lua>") => deps.push(rpmlib("BuiltinLuaScripts", "4.2.2-1")),
        Some(interpreter) if !interpreter.starts_with('<') => {
            deps.push(Dependency::new(interpreter));
        }
        _ => {}
    }
    if expand {
        deps.push(rpmlib("ScriptletExpansion", "4.9.0-1"));
    }
    if !trigger && argv.len() > 1 {
        deps.push(rpmlib("ScriptletInterpreterArgs", "4.0.3-1"));
    }
    deps
}

/// Words as popt's `poptParseArgvString` splits them: white space outside
/// quotes separates, `"..."` and `'...'` group, a backslash escapes.
fn popt_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// rpm's reading of a numeric flag macro: a number other than 0.
fn flag_is_set(value: &str) -> bool {
    value.trim().parse::<i64>().map(|n| n != 0).unwrap_or(false)
}

fn tag_len(tag: Tag) -> usize {
    match tag {
        Tag::Source => "source".len(),
        _ => "patch".len(),
    }
}

/// A preamble line matched against rpm's tag table.
struct TagMatch<'a> {
    /// The tag's name in the table (lower case), also its macro name.
    keyword: &'static str,
    tag: Tag,
    form: TagForm,
    is_macro: bool,
    /// The tag as written, with its number (`Source12`).
    token: &'a str,
    /// What stood in parentheses (`pre,post`), or "".
    qualifier: &'a str,
    /// Everything after the colon.
    value: &'a str,
}

fn find_tag(line: &str) -> Option<TagMatch<'_>> {
    let (name, tag, form, is_macro) = TAGS.iter().copied().find(|(name, ..)| {
        line.get(..name.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(name))
    })?;
    let mut rest = &line[name.len()..];
    let mut token_end = name.len();
    let mut qualifier = "";
    if form == TagForm::Numbered {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        rest = &rest[digits..];
        token_end += digits;
    }
    rest = rest.trim_start();
    if matches!(form, TagForm::Lang | TagForm::Qualified) && rest.starts_with('(') {
        let close = rest.find(')')?;
        qualifier = rest[1..close].trim();
        rest = rest[close + 1..].trim_start();
    }
    let value = rest.strip_prefix(':')?;
    Some(TagMatch {
        keyword: name,
        tag,
        form,
        is_macro,
        token: &line[..token_end],
        qualifier,
        value,
    })
}

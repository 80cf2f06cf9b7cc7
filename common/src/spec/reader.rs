//! Reads a spec the way rpm's `readLine` does: joins continued lines,
//! expands macros on lines that are read, evaluates `%if`/`%elif`/`%else`/
//! `%endif` (and the arch/os forms), and follows `%include`.

use super::expr;
use super::macros::{Expander, OpenMacros};
use super::SpecError;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Bound on nested `%include`s (a file including itself must not hang).
const MAX_INCLUDE_DEPTH: usize = 16;

/// One line handed to the section parser, already expanded.
#[derive(Debug, Clone)]
pub struct Line {
    pub text: String,
    pub file: Rc<Path>,
    pub number: usize,
    /// Expanding the line met a `%(...)`, which is not run: rpm would have
    /// put the command's output where it stood.
    pub shell_not_run: bool,
}

impl OpenFile {
    fn new(path: &Path, text: String, cond_depth: usize) -> Self {
        OpenFile {
            path: Rc::from(path),
            text,
            pos: 0,
            line: 1,
            cond_depth,
        }
    }

    /// The next physical line without its newline (and `\r`), if any.
    fn next_physical(&mut self) -> Option<&str> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let end = rest.find('\n').unwrap_or(rest.len());
        self.pos += (end + 1).min(rest.len());
        self.line += 1;
        let line = &rest[..end];
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

struct OpenFile {
    path: Rc<Path>,
    text: String,
    /// Byte offset of the next unread line.
    pos: usize,
    /// Number of the next unread line (1-based).
    line: usize,
    /// Depth of the conditional stack when the file was opened.
    cond_depth: usize,
}

struct Cond {
    parent_reading: bool,
    reading: bool,
    taken: bool,
    in_else: bool,
    line: usize,
}

pub struct Reader {
    files: Vec<OpenFile>,
    pending: VecDeque<Line>,
    conds: Vec<Cond>,
    base_dir: PathBuf,
    pub includes: Vec<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Directive {
    If,
    IfArch(bool),
    IfOs(bool),
    Elif,
    ElifArch(bool),
    ElifOs(bool),
    Else,
    Endif,
    Include,
}

/// rpm's ISMACRO / ISMACROWITHARG on the start of a line.
fn directive(line: &str) -> Option<(Directive, &str)> {
    use Directive::*;
    const TABLE: [(&str, Directive); 13] = [
        ("%ifarch", IfArch(true)),
        ("%ifnarch", IfArch(false)),
        ("%ifos", IfOs(true)),
        ("%ifnos", IfOs(false)),
        ("%if", If),
        ("%elifarch", ElifArch(true)),
        ("%elifnarch", ElifArch(false)),
        ("%elifos", ElifOs(true)),
        ("%elifnos", ElifOs(false)),
        ("%elif", Elif),
        ("%else", Else),
        ("%endif", Endif),
        ("%include", Include),
    ];
    let s = line.trim_start();
    for (kw, d) in TABLE {
        if let Some(rest) = s.strip_prefix(kw) {
            let next = rest.chars().next();
            if next.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_') {
                return Some((d, rest));
            }
        }
    }
    None
}

/// rpm's line-continuation test: an open `%{`, `%(`, `%[` or a trailing `\`.
fn needs_more(buf: &str) -> bool {
    let mut open = OpenMacros::default();
    open.scan(buf.as_bytes());
    open.needs_more()
}

impl Reader {
    pub fn new(path: &Path, text: &str, base_dir: &Path) -> Self {
        Reader {
            files: vec![OpenFile::new(path, text.to_string(), 0)],
            pending: VecDeque::new(),
            conds: Vec::new(),
            base_dir: base_dir.to_path_buf(),
            includes: Vec::new(),
        }
    }

    fn reading(&self) -> bool {
        self.conds.last().is_none_or(|c| c.reading)
    }

    fn error(file: &Path, number: usize, message: impl Into<String>) -> SpecError {
        SpecError::Syntax {
            file: file.to_path_buf(),
            line: number,
            message: message.into(),
        }
    }

    /// Next raw logical line of the innermost file, or None when all are done.
    fn next_raw(&mut self) -> Result<Option<Line>, SpecError> {
        loop {
            let Some(f) = self.files.last_mut() else {
                return Ok(None);
            };
            let start = f.line;
            let Some(first) = f.next_physical() else {
                if self.conds.len() > f.cond_depth {
                    let line = self.conds.last().map_or(0, |c| c.line);
                    return Err(Self::error(&f.path, line, "Unclosed %if"));
                }
                self.files.pop();
                continue;
            };
            let mut buf = String::with_capacity(first.len() + 1);
            buf.push_str(first);
            buf.push('\n');
            while needs_more(&buf) {
                let Some(next) = f.next_physical() else {
                    return Err(Self::error(
                        &f.path,
                        start,
                        "unclosed macro or bad line continuation",
                    ));
                };
                buf.push_str(next);
                buf.push('\n');
            }
            buf.pop();
            return Ok(Some(Line {
                text: buf,
                file: f.path.clone(),
                number: start,
                shell_not_run: false,
            }));
        }
    }

    /// The next line the section parser should see.
    pub fn next_line(&mut self, expander: &mut Expander<'_>) -> Result<Option<Line>, SpecError> {
        loop {
            let line = if let Some(l) = self.pending.pop_front() {
                l
            } else {
                let Some(raw) = self.next_raw()? else {
                    return Ok(None);
                };
                let shells_before = expander.shells_not_run;
                let text = if self.reading() {
                    expander
                        .expand(&raw.text)
                        .map_err(|e| Self::error(&raw.file, raw.number, e.to_string()))?
                } else {
                    raw.text
                };
                let shell_not_run = expander.shells_not_run > shells_before;
                match text.split_once('\n') {
                    None => Line {
                        text,
                        file: raw.file,
                        number: raw.number,
                        shell_not_run,
                    },
                    Some((first, rest)) => {
                        for p in rest.split('\n') {
                            self.pending.push_back(Line {
                                text: p.to_string(),
                                file: raw.file.clone(),
                                number: raw.number,
                                shell_not_run,
                            });
                        }
                        Line {
                            text: first.to_string(),
                            file: raw.file,
                            number: raw.number,
                            shell_not_run,
                        }
                    }
                }
            };
            match directive(&line.text) {
                Some((d, rest)) => self.apply(d, rest, &line, expander)?,
                None if self.reading() => return Ok(Some(line)),
                None => {}
            }
        }
    }

    fn apply(
        &mut self,
        d: Directive,
        rest: &str,
        line: &Line,
        expander: &mut Expander<'_>,
    ) -> Result<(), SpecError> {
        use Directive::*;
        let reading = self.reading();
        match d {
            If | IfArch(_) | IfOs(_) => {
                let matched = reading && self.test(d, rest, line, expander)?;
                self.conds.push(Cond {
                    parent_reading: reading,
                    reading: matched,
                    taken: matched,
                    in_else: false,
                    line: line.number,
                });
            }
            Elif | ElifArch(_) | ElifOs(_) => {
                let Some(top) = self.conds.last() else {
                    return Err(Self::error(&line.file, line.number, "%elif with no %if"));
                };
                if top.in_else {
                    return Err(Self::error(&line.file, line.number, "%elif after %else"));
                }
                let evaluate = top.parent_reading && !top.taken;
                // The line was read in a skipped branch, so it is not expanded yet.
                let matched = evaluate && {
                    let expanded = expander
                        .expand(rest)
                        .map_err(|e| Self::error(&line.file, line.number, e.to_string()))?;
                    self.test(d, &expanded, line, expander)?
                };
                if let Some(top) = self.conds.last_mut() {
                    top.reading = matched;
                    top.taken |= matched;
                }
            }
            Else => {
                let Some(top) = self.conds.last_mut() else {
                    return Err(Self::error(&line.file, line.number, "%else with no %if"));
                };
                if top.in_else {
                    return Err(Self::error(&line.file, line.number, "%else after %else"));
                }
                top.reading = top.parent_reading && !top.taken;
                top.taken = true;
                top.in_else = true;
            }
            Endif => {
                let depth = self.files.last().map_or(0, |f| f.cond_depth);
                if self.conds.len() <= depth {
                    return Err(Self::error(&line.file, line.number, "%endif with no %if"));
                }
                self.conds.pop();
            }
            Include => {
                if reading {
                    self.include(rest.trim(), line)?;
                }
            }
        }
        Ok(())
    }

    /// Evaluates a conditional; `%ifarch`/`%ifos` compare with the current
    /// `%{_target_cpu}`/`%{_target_os}`, as rpm does (a `BuildArch` re-parse
    /// changes `_target_cpu`).
    fn test(
        &self,
        d: Directive,
        rest: &str,
        line: &Line,
        expander: &mut Expander<'_>,
    ) -> Result<bool, SpecError> {
        use Directive::*;
        let in_list = |target: &str| {
            rest.split(|c: char| c.is_whitespace() || c == ',')
                .any(|w| w == target)
        };
        let current = |expander: &mut Expander<'_>, name: &str| {
            expander
                .expand(name)
                .map_err(|e| Self::error(&line.file, line.number, e.to_string()))
        };
        Ok(match d {
            If | Elif => expr::evaluate(rest)
                .map_err(|e| {
                    Self::error(&line.file, line.number, format!("bad %if condition: {e}"))
                })?
                .truthy(),
            IfArch(want) | ElifArch(want) => in_list(&current(expander, "%{_target_cpu}")?) == want,
            IfOs(want) | ElifOs(want) => in_list(&current(expander, "%{_target_os}")?) == want,
            Else | Endif | Include => false,
        })
    }

    fn include(&mut self, name: &str, line: &Line) -> Result<(), SpecError> {
        if self.files.len() > MAX_INCLUDE_DEPTH {
            return Err(Self::error(
                &line.file,
                line.number,
                format!("%include nested too deeply: {name}"),
            ));
        }
        let path = self.base_dir.join(name);
        let text = std::fs::read(&path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| {
                Self::error(
                    &line.file,
                    line.number,
                    format!("Unable to open {}: {e}", path.display()),
                )
            })?;
        self.includes.push(path.clone());
        self.files
            .push(OpenFile::new(&path, text, self.conds.len()));
        Ok(())
    }
}

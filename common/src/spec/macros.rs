//! rpm's macro language: definitions, expansion, parametric macros and the
//! built-ins a spec parser needs. Modelled on rpm 4.18's `rpmio/macro.c` so
//! that we expand exactly what rpm expands (and leave alone what it leaves).
//!
//! Deliberate differences, all because a spec is untrusted input:
//! - `%(...)` shell expansion is never run; it expands to nothing and the
//!   spec gets a warning. (Photon uses it only for paths, never for the
//!   name, version, release or dependencies.)
//! - `%{lua:...}` runs in a sandboxed Lua without `os`, `io` or `posix`
//!   (see `lua.rs`).
//! - `%{load:...}`, `%{getenv:...}` read nothing from the host.
//! - Expansion depth and output size are bounded, so a self-referencing
//!   macro gives an error instead of a hang.

use super::expr;
use super::lua::{CallArgs, LuaState};
use std::collections::HashMap;
use std::sync::Arc;

/// rpm's `max_macro_depth`.
const MAX_DEPTH: usize = 64;
/// Upper bound on what one expansion may produce (guards `%{expand}` bombs).
const MAX_OUTPUT: usize = 1 << 20;

/// Why an expansion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacroError {
    #[error("too many levels of recursion in macro expansion (%{0})")]
    Recursion(String),
    #[error("macro expansion too large (%{0})")]
    TooLarge(String),
    #[error("unterminated {0}: {1}")]
    Unterminated(char, String),
    #[error("{0}")]
    Explicit(String),
    #[error("{0}")]
    Define(String),
    #[error("{0}")]
    Expression(String),
    #[error("lua: {0}")]
    Lua(String),
    #[error("unknown option {0} in %{1}({2})")]
    UnknownOption(char, String, String),
}

#[derive(Debug, Clone)]
pub struct MacroDef {
    pub body: String,
    /// `Some(opts)` for a parametric macro `%name(opts)`.
    pub opts: Option<String>,
    level: usize,
}

type Stacks = HashMap<String, Vec<Arc<MacroDef>>>;

/// The macro context: every name maps to a stack of definitions, like rpm's
/// (a `%define` pushes, `%undefine` pops).
///
/// A run's shared macros (rpm's, the distribution's, the `--define`s) are
/// frozen into `base` once and shared by every spec; each spec's own
/// definitions go to `own`, copying a name's stack from `base` on its first
/// change, so starting a spec costs nothing.
#[derive(Debug, Clone, Default)]
pub struct MacroTable {
    base: Arc<Stacks>,
    own: Stacks,
}

impl MacroTable {
    pub fn define(&mut self, name: &str, opts: Option<&str>, body: &str) {
        self.push(name, opts, body, 0);
    }

    fn stack_mut(&mut self, name: &str) -> &mut Vec<Arc<MacroDef>> {
        let base = &self.base;
        self.own.entry(name.to_string()).or_insert_with(|| base.get(name).cloned().unwrap_or_default())
    }

    fn push(&mut self, name: &str, opts: Option<&str>, body: &str, level: usize) {
        let def = Arc::new(MacroDef { body: body.to_string(), opts: opts.map(str::to_string), level });
        self.stack_mut(name).push(def);
    }

    pub fn undefine(&mut self, name: &str) {
        self.stack_mut(name).pop();
    }

    pub fn get(&self, name: &str) -> Option<&MacroDef> {
        let stack = match self.own.get(name) {
            Some(s) => s,
            None => self.base.get(name)?,
        };
        stack.last().map(|d| &**d)
    }

    fn get_shared(&self, name: &str) -> Option<Arc<MacroDef>> {
        let stack = match self.own.get(name) {
            Some(s) => s,
            None => self.base.get(name)?,
        };
        stack.last().cloned()
    }

    pub fn is_defined(&self, name: &str) -> bool {
        self.get(name).is_some() || builtin(name).is_some()
    }

    /// Drops the definitions made inside a parametric macro call that returned.
    fn pop_above(&mut self, level: usize) {
        for stack in self.own.values_mut() {
            stack.retain(|d| d.level <= level);
        }
    }

    /// Makes every definition so far part of the shared base (cheap clones).
    pub fn freeze(self) -> MacroTable {
        let mut merged = Arc::unwrap_or_clone(self.base);
        merged.extend(self.own);
        MacroTable { base: Arc::new(merged), own: HashMap::new() }
    }

    /// Loads rpm macro-file text (`%name(opts) body`, `\` continuations).
    pub fn load_macro_text(&mut self, text: &str) -> Result<(), MacroError> {
        let mut logical = String::new();
        for line in text.lines() {
            if logical.is_empty() && !line.trim_start().starts_with('%') {
                continue;
            }
            if let Some(stripped) = line.strip_suffix('\\') {
                logical.push_str(stripped);
                logical.push('\n');
                continue;
            }
            logical.push_str(line);
            let def = std::mem::take(&mut logical);
            let def = def.trim_start().trim_start_matches('%');
            let parsed = parse_define(def, false)?;
            if let Some(d) = parsed.def {
                self.push(&d.name, d.opts.as_deref(), &d.body, 0);
            }
        }
        Ok(())
    }
}

/// A `%define` parsed from text, not yet applied.
struct ParsedDefine {
    def: Option<NewMacro>,
    /// Bytes of the input consumed.
    consumed: usize,
    warning: Option<String>,
}

struct NewMacro {
    name: String,
    opts: Option<String>,
    body: String,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Parses `name[(opts)] body` as rpm's `doDefine` does. With `to_eol`, the
/// body ends at the first newline outside `%{...}`/`%(...)` (the unbraced
/// `%define` form); otherwise the body is the whole rest.
fn parse_define(s: &str, to_eol: bool) -> Result<ParsedDefine, MacroError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    let name_start = i;
    while i < b.len() && is_name_byte(b[i]) {
        i += 1;
    }
    let name = &s[name_start..i];
    let mut opts = None;
    if i < b.len() && b[i] == b'(' {
        let close = s[i..].find(')').map(|k| k + i).ok_or_else(|| {
            MacroError::Define(format!("Macro %{name} has unterminated opts"))
        })?;
        opts = Some(s[i + 1..close].to_string());
        i = close + 1;
    }
    let body_start = i;
    let mut j = body_start;
    while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
        j += 1;
    }
    if b.get(j) == Some(&b'{') {
        // rpm's "silent {...} grouping": the body is the braces' content,
        // verbatim, and scanning goes on after the closing brace.
        let close = match_close(b, j, b'{', b'}')
            .ok_or_else(|| MacroError::Define(format!("Macro %{name} has unterminated body")))?;
        let glued = (j == body_start).then_some(b'{');
        return finish_define(name, opts, glued, s[j + 1..close].to_string(), close + 1);
    }
    // Find the end of the body.
    let mut body = String::new();
    let (mut braces, mut parens) = (0usize, 0usize);
    let mut k = j;
    while k < b.len() {
        let c = b[k];
        if to_eol && braces == 0 && parens == 0 && (c == b'\n' || c == b'\r') {
            break;
        }
        match c {
            b'\\' if k + 1 < b.len() => {
                // rpm drops the backslash and keeps the escaped character.
                k += 1;
            }
            b'%' if k + 1 < b.len() => match b[k + 1] {
                b'{' => {
                    body.push('%');
                    k += 1;
                    braces += 1;
                }
                b'(' => {
                    body.push('%');
                    k += 1;
                    parens += 1;
                }
                b'%' => {
                    body.push('%');
                    k += 1;
                }
                _ => {}
            },
            b'{' if braces > 0 => braces += 1,
            b'}' if braces > 0 => braces -= 1,
            b'(' if parens > 0 => parens += 1,
            b')' if parens > 0 => parens -= 1,
            _ => {}
        }
        let ch_len = utf8_len(b[k]);
        body.push_str(&s[k..(k + ch_len).min(b.len())]);
        k += ch_len;
    }
    let body = body.trim_end_matches([' ', '\t', '\n', '\r']).to_string();
    let glued = if j == body_start { b.get(j).copied() } else { None };
    finish_define(name, opts, glued, body, k)
}

/// Checks a parsed definition the way rpm's `doDefine` does. `glued` is
/// the character right after the name when no whitespace separates it from
/// the body (`%define name:body`).
fn finish_define(name: &str, opts: Option<String>, glued: Option<u8>, body: String, consumed: usize) -> Result<ParsedDefine, MacroError> {
    let first = name.bytes().next();
    if name == "_" || !first.is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') {
        return Err(MacroError::Define(format!("Macro %{name} has illegal name (%define)")));
    }
    if opts.is_none() && glued.is_some_and(|c| c != b'\n') {
        // `%define name:body`: rpm warns and ignores the definition.
        return Ok(ParsedDefine {
            def: None,
            consumed,
            warning: Some(format!("Macro %{name} needs whitespace before body")),
        });
    }
    if body.is_empty() {
        return Err(MacroError::Define(format!("Macro %{name} has empty body")));
    }
    Ok(ParsedDefine { def: Some(NewMacro { name: name.to_string(), opts, body }), consumed, warning: None })
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xff => 4,
        _ => 1,
    }
}

/// Index of the bracket closing the one at `open` (rpm's `matchchar`).
fn match_close(b: &[u8], open: usize, left: u8, right: u8) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            i += 2;
            continue;
        }
        if c == right {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return Some(i);
            }
        } else if c == left {
            depth += 1;
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Define,
    Global,
    Undefine,
    Expand,
    Echo,
    Warn,
    Error,
    Verbose,
    Basename,
    Dirname,
    Suffix,
    Shescape,
    Shrink,
    Quote,
    Url2Path,
    Uncompress,
    Getenv,
    GetConfDir,
    GetNcpus,
    Expr,
    Lua,
    Load,
    Macrobody,
    Exists,
    Source,
    Patch,
    Dnl,
    Trace,
    Dump,
}

fn builtin(name: &str) -> Option<Builtin> {
    use Builtin::*;
    Some(match name {
        "define" => Define,
        "global" => Global,
        "undefine" => Undefine,
        "expand" => Expand,
        "echo" => Echo,
        "warn" => Warn,
        "error" => Error,
        "verbose" => Verbose,
        "basename" => Basename,
        "dirname" => Dirname,
        "suffix" => Suffix,
        "shescape" => Shescape,
        "shrink" => Shrink,
        "quote" => Quote,
        "url2path" | "u2p" => Url2Path,
        "uncompress" => Uncompress,
        "getenv" => Getenv,
        "getconfdir" => GetConfDir,
        "getncpus" => GetNcpus,
        "expr" => Expr,
        "lua" => Lua,
        "load" => Load,
        "macrobody" => Macrobody,
        "exists" => Exists,
        "S" => Source,
        "P" => Patch,
        "dnl" => Dnl,
        "trace" => Trace,
        "dump" => Dump,
        _ => return None,
    })
}

/// Expands macros against a [`MacroTable`], collecting warnings.
pub struct Expander<'a> {
    pub table: &'a mut MacroTable,
    pub warnings: Vec<String>,
    depth: usize,
    level: usize,
    /// Created on the first `%{lua:...}`.
    lua: Option<LuaState>,
    /// Arguments of the parametric macros being expanded (for Lua's `arg`/`opt`).
    calls: Vec<CallArgs>,
}

impl<'a> Expander<'a> {
    pub fn new(table: &'a mut MacroTable) -> Self {
        Expander { table, warnings: Vec::new(), depth: 0, level: 0, lua: None, calls: Vec::new() }
    }

    /// Expands every macro in `input`.
    pub fn expand(&mut self, input: &str) -> Result<String, MacroError> {
        let mut out = String::with_capacity(input.len());
        self.expand_into(input, &mut out)?;
        Ok(out)
    }

    /// Runs a `%define`/`%global` whose text (after the keyword) is `rest`.
    pub fn define_from(&mut self, rest: &str, global: bool) -> Result<usize, MacroError> {
        let parsed = parse_define(rest, true)?;
        if let Some(w) = parsed.warning {
            self.warnings.push(w);
        }
        if let Some(def) = parsed.def {
            let body = if global { self.expand(&def.body)? } else { def.body };
            let level = if global { 0 } else { self.level };
            self.table.push(&def.name, def.opts.as_deref(), &body, level);
        }
        Ok(parsed.consumed)
    }

    fn expand_into(&mut self, s: &str, out: &mut String) -> Result<(), MacroError> {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let Some(off) = s[i..].find('%') else {
                out.push_str(&s[i..]);
                break;
            };
            out.push_str(&s[i..i + off]);
            i += off;
            if out.len() > MAX_OUTPUT {
                return Err(MacroError::TooLarge(s.chars().take(40).collect()));
            }
            let Some(&next) = b.get(i + 1) else {
                out.push('%');
                break;
            };
            match next {
                b'%' => {
                    out.push('%');
                    i += 2;
                }
                b'{' => {
                    let Some(close) = match_close(b, i + 1, b'{', b'}') else {
                        return Err(MacroError::Unterminated('{', s[i..].chars().take(60).collect()));
                    };
                    let inner = &s[i + 2..close];
                    if !self.expand_braced(inner, out)? {
                        // Unknown macro: rpm keeps the text and goes on after the `%`.
                        out.push('%');
                        i += 1;
                        continue;
                    }
                    i = close + 1;
                }
                b'(' => {
                    let Some(close) = match_close(b, i + 1, b'(', b')') else {
                        return Err(MacroError::Unterminated('(', s[i..].chars().take(60).collect()));
                    };
                    self.warnings.push(format!("shell expansion not run: {}", &s[i..=close]));
                    i = close + 1;
                }
                b'[' => {
                    let Some(close) = match_close(b, i + 1, b'[', b']') else {
                        return Err(MacroError::Unterminated('[', s[i..].chars().take(60).collect()));
                    };
                    let value = self.eval_expression(&s[i + 2..close])?;
                    out.push_str(&value);
                    i = close + 1;
                }
                _ => i = self.expand_unbraced(s, i, out)?,
            }
        }
        Ok(())
    }

    /// `%name` without braces, starting at the `%` at `start`; returns where to go on.
    fn expand_unbraced(&mut self, s: &str, start: usize, out: &mut String) -> Result<usize, MacroError> {
        let b = s.as_bytes();
        let f = start + 1;
        let mut e = f;
        if b.get(e) == Some(&b'-') {
            e += 1;
        }
        while e < b.len() && is_name_byte(b[e]) {
            e += 1;
        }
        match b.get(e) {
            Some(b'*') => {
                e += 1;
                if b.get(e) == Some(&b'*') {
                    e += 1;
                }
            }
            Some(b'#') => e += 1,
            _ => {}
        }
        if e == f {
            out.push('%');
            return Ok(f);
        }
        let name = &s[f..e];
        // `%define`, `%global`, `%undefine` take the rest of the line.
        match builtin(name) {
            Some(Builtin::Define | Builtin::Global) => {
                let consumed = self.define_from(&s[e..], name == "global")?;
                return Ok(e + consumed);
            }
            Some(Builtin::Undefine) => {
                let eol = s[e..].find('\n').map_or(s.len(), |k| e + k);
                let target = s[e..eol].trim();
                self.table.undefine(target);
                return Ok(eol);
            }
            Some(Builtin::Dnl) => {
                return Ok(s[e..].find('\n').map_or(s.len(), |k| e + k + 1));
            }
            _ => {}
        }
        let Some(def) = self.table.get_shared(name) else {
            if name.starts_with('-') && self.level > 0 {
                return Ok(e);
            }
            if let Some(bi) = builtin(name) {
                if !builtin_needs_arg(bi) {
                    let v = self.run_builtin(bi, name, "")?;
                    out.push_str(&v);
                    return Ok(e);
                }
            }
            out.push('%');
            return Ok(f);
        };
        if def.opts.is_some() {
            // Parametric: the arguments are the rest of the line.
            let eol = s[e..].find('\n').map_or(s.len(), |k| e + k);
            let args = if b.get(e).is_some_and(|c| *c == b' ' || *c == b'\t') { &s[e..eol] } else { "" };
            let end = if args.is_empty() { e } else { eol };
            let v = self.call(name, &def, Some(args))?;
            out.push_str(&v);
            return Ok(end);
        }
        let v = self.expand_body(name, &def.body)?;
        out.push_str(&v);
        Ok(e)
    }

    /// `%{...}`; returns false when the macro is unknown (left as text).
    fn expand_braced(&mut self, inner: &str, out: &mut String) -> Result<bool, MacroError> {
        let b = inner.as_bytes();
        let (mut negate, mut check) = (false, false);
        let mut f = 0;
        while f < b.len() && (b[f] == b'!' || b[f] == b'?') {
            if b[f] == b'!' {
                negate = !negate;
            } else {
                check = true;
            }
            f += 1;
        }
        let mut fe = f;
        while fe < b.len() && !matches!(b[fe], b' ' | b':') {
            fe += 1;
        }
        let name = &inner[f..fe];
        let (colon_arg, space_arg) = match b.get(fe) {
            Some(b':') => (Some(&inner[fe + 1..]), None),
            Some(b' ') => (None, Some(&inner[fe + 1..])),
            _ => (None, None),
        };
        if name.is_empty() {
            return Ok(false);
        }
        if !check {
            if let Some(bi) = builtin(name) {
                if self.table.get(name).is_none() {
                    return self.braced_builtin(bi, name, colon_arg.or(space_arg), out);
                }
            }
        }
        let def = self.table.get_shared(name);
        let defined = def.is_some() || (check && builtin(name).is_some());
        if check {
            if defined == negate {
                return Ok(true);
            }
            if let Some(text) = colon_arg {
                let v = self.expand(text)?;
                out.push_str(&v);
                return Ok(true);
            }
            let Some(def) = def else { return Ok(true) };
            let v = self.invoke(name, &def, None)?;
            out.push_str(&v);
            return Ok(true);
        }
        let Some(def) = def else {
            // Inside a parametric macro an option that was not given is empty.
            return Ok(name.starts_with('-') && self.level > 0);
        };
        let args = match (colon_arg, space_arg) {
            (Some(a), _) if def.opts.is_some() => Some(self.expand(a)?),
            (_, Some(a)) => Some(a.to_string()),
            _ => None,
        };
        let v = self.invoke(name, &def, args.as_deref())?;
        out.push_str(&v);
        Ok(true)
    }

    fn invoke(&mut self, name: &str, def: &MacroDef, args: Option<&str>) -> Result<String, MacroError> {
        if def.opts.is_some() {
            self.call(name, def, Some(args.unwrap_or("")))
        } else {
            self.expand_body(name, &def.body)
        }
    }

    fn expand_body(&mut self, name: &str, body: &str) -> Result<String, MacroError> {
        if self.depth >= MAX_DEPTH {
            return Err(MacroError::Recursion(name.to_string()));
        }
        self.depth += 1;
        let r = self.expand(body);
        self.depth -= 1;
        r
    }

    /// Calls a parametric macro: options with getopt rules, then `%1`.., `%*`, `%#`.
    fn call(&mut self, name: &str, def: &MacroDef, args: Option<&str>) -> Result<String, MacroError> {
        let opts = def.opts.clone().unwrap_or_default();
        let raw = args.unwrap_or("");
        let expanded = self.expand_body(name, raw)?;
        let words: Vec<&str> = expanded.split_whitespace().collect();
        let caller_level = self.level;
        self.level += 1;
        let level = self.level;
        let result = (|| {
            self.table.push("0", None, name, level);
            self.table.push("**", None, &words.join(" "), level);
            let mut idx = 0;
            while idx < words.len() {
                let w = words[idx];
                if w == "--" {
                    idx += 1;
                    break;
                }
                if !w.starts_with('-') || w.len() < 2 {
                    break;
                }
                for (pos, c) in w[1..].char_indices() {
                    let Some(opos) = opts.find(c) else {
                        return Err(MacroError::UnknownOption(c, name.to_string(), opts.clone()));
                    };
                    let takes_arg = opts[opos + c.len_utf8()..].starts_with(':');
                    if takes_arg {
                        let rest = &w[1 + pos + c.len_utf8()..];
                        let value = if !rest.is_empty() {
                            rest.to_string()
                        } else {
                            idx += 1;
                            words.get(idx).map(|s| s.to_string()).unwrap_or_default()
                        };
                        self.table.push(&format!("-{c}"), None, &format!("-{c} {value}"), level);
                        self.table.push(&format!("-{c}*"), None, &value, level);
                        break;
                    }
                    self.table.push(&format!("-{c}"), None, &format!("-{c}"), level);
                }
                idx += 1;
            }
            let positional = &words[idx.min(words.len())..];
            let options = opts
                .chars()
                .filter(|c| *c != ':')
                .filter_map(|c| {
                    let def = self.table.get(&format!("-{c}"))?;
                    let value = self.table.get(&format!("-{c}*")).map_or(String::new(), |d| d.body.clone());
                    (def.level == level).then_some((c, value))
                })
                .collect();
            self.calls.push(CallArgs { positional: positional.iter().map(|w| w.to_string()).collect(), options });
            self.table.push("#", None, &positional.len().to_string(), level);
            self.table.push("*", None, &positional.join(" "), level);
            for (n, w) in positional.iter().enumerate() {
                self.table.push(&(n + 1).to_string(), None, w, level);
            }
            let r = self.expand_body(name, &def.body);
            self.calls.pop();
            r
        })();
        self.table.pop_above(caller_level);
        self.level = caller_level;
        result
    }

    fn braced_builtin(&mut self, bi: Builtin, name: &str, arg: Option<&str>, out: &mut String) -> Result<bool, MacroError> {
        match bi {
            Builtin::Define | Builtin::Global => {
                if let Some(a) = arg {
                    self.define_from(a, bi == Builtin::Global)?;
                }
            }
            Builtin::Undefine => {
                if let Some(a) = arg {
                    self.table.undefine(a.trim());
                }
            }
            _ => {
                if arg.is_none() && builtin_needs_arg(bi) {
                    return Ok(false);
                }
                let expanded = match arg {
                    // Lua code and macro names are taken as written.
                    Some(a) if !matches!(bi, Builtin::Macrobody | Builtin::Lua) => self.expand(a)?,
                    Some(a) => a.to_string(),
                    None => String::new(),
                };
                let v = self.run_builtin(bi, name, &expanded)?;
                out.push_str(&v);
            }
        }
        Ok(true)
    }

    fn run_builtin(&mut self, bi: Builtin, name: &str, arg: &str) -> Result<String, MacroError> {
        Ok(match bi {
            Builtin::Expand => self.expand_body(name, arg)?,
            Builtin::Error => return Err(MacroError::Explicit(arg.to_string())),
            Builtin::Warn => {
                self.warnings.push(arg.to_string());
                String::new()
            }
            Builtin::Echo | Builtin::Trace | Builtin::Dump | Builtin::Dnl => String::new(),
            Builtin::Verbose => {
                if arg.is_empty() {
                    "0".into()
                } else {
                    String::new()
                }
            }
            Builtin::Basename => arg.rsplit('/').next().unwrap_or(arg).to_string(),
            Builtin::Dirname => match arg.rfind('/') {
                Some(0) => "/".into(),
                Some(k) => arg[..k].to_string(),
                None => arg.to_string(),
            },
            Builtin::Suffix => arg.rfind('.').map(|k| arg[k + 1..].to_string()).unwrap_or_default(),
            Builtin::Shescape => format!("'{}'", arg.replace('\'', "'\\''")),
            Builtin::Shrink => arg.split_whitespace().collect::<Vec<_>>().join(" "),
            Builtin::Quote => format!("\u{1f}{arg}\u{1f}"),
            Builtin::Url2Path => url_to_path(arg),
            Builtin::Uncompress => format!("/usr/bin/cat {arg}"),
            Builtin::Getenv | Builtin::Load => String::new(),
            Builtin::GetConfDir => "/usr/lib/rpm".into(),
            Builtin::GetNcpus => "1".into(),
            Builtin::Expr => self.eval_expression_expanded(arg)?,
            Builtin::Lua => self.run_lua(arg)?,
            Builtin::Macrobody => match self.table.get(arg.trim()) {
                Some(d) => d.body.clone(),
                None => return Err(MacroError::Explicit(format!("no such macro: '{}'", arg.trim()))),
            },
            Builtin::Exists => "0".into(),
            Builtin::Source => self.expand(&format!("%{{SOURCE{}}}", arg.trim()))?,
            Builtin::Patch => self.expand(&format!("%{{PATCH{}}}", arg.trim()))?,
            Builtin::Define | Builtin::Global | Builtin::Undefine => String::new(),
        })
    }

    fn run_lua(&mut self, code: &str) -> Result<String, MacroError> {
        if self.depth >= MAX_DEPTH {
            return Err(MacroError::Recursion("lua".into()));
        }
        let state = match &self.lua {
            Some(s) => s.clone(),
            None => {
                let s = LuaState::new()?;
                self.lua = Some(s.clone());
                s
            }
        };
        let args = self.calls.last().cloned();
        self.depth += 1;
        let r = state.run(code, self, args.as_ref());
        self.depth -= 1;
        r
    }

    /// `%[expr]`: macros are expanded token by token, only where evaluated.
    fn eval_expression(&mut self, text: &str) -> Result<String, MacroError> {
        let mut expand = |t: &str| self.expand(t).map_err(|e| e.to_string());
        expr::evaluate_expanding(text, &mut expand)
            .map(|v| v.to_string())
            .map_err(|e| MacroError::Expression(e.to_string()))
    }

    fn eval_expression_expanded(&mut self, text: &str) -> Result<String, MacroError> {
        expr::evaluate(text).map(|v| v.to_string()).map_err(|e| MacroError::Expression(e.to_string()))
    }
}

fn builtin_needs_arg(bi: Builtin) -> bool {
    !matches!(bi, Builtin::Verbose | Builtin::GetConfDir | Builtin::GetNcpus | Builtin::Trace | Builtin::Dump)
}

/// `%{url2path:...}`: the path part of a URL.
fn url_to_path(arg: &str) -> String {
    match arg.find("://") {
        Some(k) => {
            let after = &arg[k + 3..];
            after.find('/').map(|p| after[p..].to_string()).unwrap_or_default()
        }
        None => arg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn table() -> MacroTable {
        let mut t = MacroTable::default();
        t.define("_bindir", None, "/usr/bin");
        t.load_macro_text(
            "%with() %{expand:%%{?with_%{1}:1}%%{!?with_%{1}:0}}\n%without() %{expand:%%{?with_%{1}:0}%%{!?with_%{1}:1}}\n",
        )
        .unwrap();
        t
    }

    fn ex(t: &mut MacroTable, s: &str) -> String {
        Expander::new(t).expand(s).unwrap()
    }

    #[test]
    fn conditional_forms_match_rpm() {
        let mut t = table();
        for (input, want) in [
            ("%{!?nope}", ""),
            ("%{!?nope:X}", "X"),
            ("%{?nope:X}", ""),
            ("%{nope}", "%{nope}"),
            ("%nope", "%nope"),
            ("%{?!nope:Y}", "Y"),
            ("%{!?_bindir:A}B", "B"),
            ("%{?_bindir}", "/usr/bin"),
            ("%{expand:%%{_bindir}}", "/usr/bin"),
            ("%_bindir/x", "/usr/bin/x"),
            ("%{with foo}", "0"),
            ("%[1+2]", "3"),
            ("%{foo bar}", "%{foo bar}"),
            ("a%{}b", "a%{}b"),
            ("%%a", "%a"),
            ("%{dirname:/a/b/c}", "/a/b"),
            ("%(echo hi)", ""),
            ("[%{lua: print(\"a\") print(\"b\")}]", "[ab]"),
            ("[%{lua: return \"x\"}]", "[x]"),
            ("[%{lua: rpm.define(\"zzz 5\") print(rpm.expand(\"%zzz\"))}]", "[5]"),
            ("[%{lua: print(rpm.isdefined(\"_bindir\"))}]", "[true\tfalse]"),
            ("[%{lua: print(macros._bindir)}]", "[/usr/bin]"),
            ("[%{lua: print(string.gsub(\"a-b\", \"-\", \"_\"))}]", "[a_b\t1]"),
        ] {
            assert_eq!(ex(&mut t, input), want, "{input}");
        }
    }

    #[test]
    fn parametric_macros_take_options_and_arguments() {
        let mut t = table();
        let mut e = Expander::new(&mut t);
        e.define_from(" ppp(n:) Q[%{-n*}|%1|%*|%#|%{?-n:has}]", false).unwrap();
        assert_eq!(e.expand("%{ppp -n N one two}").unwrap(), "Q[N|one|one two|2|has]");
        assert_eq!(e.expand("%ppp -n M three\nnext").unwrap(), "Q[M|three|three|1|has]\nnext");
        assert_eq!(e.expand("%{ppp}").unwrap(), "Q[|%1||0|]");
        // Locals are gone after the call.
        assert_eq!(e.expand("%{?-n:x}%1").unwrap(), "%1");
    }

    #[test]
    fn define_global_and_undefine() {
        let mut t = table();
        let mut e = Expander::new(&mut t);
        e.expand("%define aaa 1\n%global bbb %{aaa}2\n%define ccc %{aaa}3").unwrap();
        e.table.define("aaa", None, "9");
        assert_eq!(e.expand("%bbb %ccc").unwrap(), "12 93");
        e.expand("%undefine aaa").unwrap();
        assert_eq!(e.expand("%aaa").unwrap(), "1");
        assert!(e.define_from(" 1ab x", false).is_err());
        assert!(e.define_from(" _ x", false).is_err());
        e.define_from(" abc a\\\\b", false).unwrap();
        assert_eq!(e.expand("X%{abc}Y").unwrap(), "Xa\\bY");
    }

    #[test]
    fn lua_is_sandboxed_and_bounded() {
        let mut t = table();
        let mut e = Expander::new(&mut t);
        for escape in ["os.execute('true')", "io.open('/etc/passwd')", "posix.getpid()", "require('os')", "load('x=1')()"] {
            assert!(matches!(e.expand(&format!("%{{lua: {escape}}}")), Err(MacroError::Lua(_))), "{escape}");
        }
        assert!(matches!(e.expand("%{lua: while true do end}"), Err(MacroError::Lua(_))));
        assert!(matches!(e.expand("%{lua: local t = {} while true do t[#t+1] = string.rep('x', 1000) end}"), Err(MacroError::Lua(_))));
        e.define_from(" pm(a) %{lua: print(opt.a, arg[1], #arg)}", false).unwrap();
        assert_eq!(e.expand("[%pm -a 1 two]").unwrap(), "[\t1\t2");
        // Nested: Lua expanding a macro that runs Lua.
        e.define_from(" inner %{lua: print('in')}", false).unwrap();
        assert_eq!(e.expand("%{lua: print(rpm.expand('%inner') .. '-out')}").unwrap(), "in-out");
    }

    #[test]
    fn recursion_is_an_error_not_a_hang() {
        let mut t = table();
        t.define("loop", None, "%{loop}x");
        assert!(matches!(Expander::new(&mut t).expand("%loop"), Err(MacroError::Recursion(_))));
        t.define("bomb", None, "%{expand:%{bomb}%{bomb}}");
        assert!(Expander::new(&mut t).expand("%bomb").is_err());
    }

    #[test]
    fn exponential_expansion_is_bounded() {
        let mut t = table();
        t.define("lol0", None, "xxxxxxxx");
        for i in 1..=40 {
            t.define(&format!("lol{i}"), None, &format!("%{{lol{p}}}%{{lol{p}}}", p = i - 1));
        }
        let started = std::time::Instant::now();
        assert!(matches!(Expander::new(&mut t).expand("%lol40"), Err(MacroError::TooLarge(_))));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn unterminated_brace_is_an_error() {
        let mut t = table();
        assert!(matches!(Expander::new(&mut t).expand("%{foo"), Err(MacroError::Unterminated('{', _))));
    }
}

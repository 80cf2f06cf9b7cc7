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

mod builtins;
mod define;
mod file;
#[cfg(test)]
mod tests;

use builtins::{builtin, builtin_needs_arg, Builtin};
use define::{is_name_byte, parse_define};
pub use file::macro_file_definitions;
pub(crate) use file::OpenMacros;

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
        self.own
            .entry(name.to_string())
            .or_insert_with(|| base.get(name).cloned().unwrap_or_default())
    }

    fn push(&mut self, name: &str, opts: Option<&str>, body: &str, level: usize) {
        let def = Arc::new(MacroDef {
            body: body.to_string(),
            opts: opts.map(str::to_string),
            level,
        });
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
        MacroTable {
            base: Arc::new(merged),
            own: HashMap::new(),
        }
    }

    /// Loads rpm macro-file text: `%name(opts) body` definitions, read as
    /// rpm's `rdcl` reads them (see [`macro_file_definitions`]).
    pub fn load_macro_text(&mut self, text: &str) -> Result<(), MacroError> {
        for def in macro_file_definitions(text) {
            let parsed = parse_define(&def, false)?;
            if let Some(d) = parsed.def {
                self.push(&d.name, d.opts.as_deref(), &d.body, 0);
            }
        }
        Ok(())
    }
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

/// Expands macros against a [`MacroTable`], collecting warnings.
pub struct Expander<'a> {
    pub table: &'a mut MacroTable,
    pub warnings: Vec<String>,
    /// How many `%(...)` were met and not run (each left nothing behind).
    pub shells_not_run: usize,
    depth: usize,
    level: usize,
    /// Created on the first `%{lua:...}`.
    lua: Option<LuaState>,
    /// Arguments of the parametric macros being expanded (for Lua's `arg`/`opt`).
    calls: Vec<CallArgs>,
}

impl<'a> Expander<'a> {
    pub fn new(table: &'a mut MacroTable) -> Self {
        Expander {
            table,
            warnings: Vec::new(),
            shells_not_run: 0,
            depth: 0,
            level: 0,
            lua: None,
            calls: Vec::new(),
        }
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
            let body = if global {
                self.expand(&def.body)?
            } else {
                def.body
            };
            let level = if global { 0 } else { self.level };
            self.table
                .push(&def.name, def.opts.as_deref(), &body, level);
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
                        return Err(MacroError::Unterminated(
                            '{',
                            s[i..].chars().take(60).collect(),
                        ));
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
                        return Err(MacroError::Unterminated(
                            '(',
                            s[i..].chars().take(60).collect(),
                        ));
                    };
                    self.shells_not_run += 1;
                    self.warnings
                        .push(format!("shell expansion not run: {}", &s[i..=close]));
                    i = close + 1;
                }
                b'[' => {
                    let Some(close) = match_close(b, i + 1, b'[', b']') else {
                        return Err(MacroError::Unterminated(
                            '[',
                            s[i..].chars().take(60).collect(),
                        ));
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
    fn expand_unbraced(
        &mut self,
        s: &str,
        start: usize,
        out: &mut String,
    ) -> Result<usize, MacroError> {
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
            let args = if b.get(e).is_some_and(|c| *c == b' ' || *c == b'\t') {
                &s[e..eol]
            } else {
                ""
            };
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

    fn invoke(
        &mut self,
        name: &str,
        def: &MacroDef,
        args: Option<&str>,
    ) -> Result<String, MacroError> {
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
    fn call(
        &mut self,
        name: &str,
        def: &MacroDef,
        args: Option<&str>,
    ) -> Result<String, MacroError> {
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
                        self.table
                            .push(&format!("-{c}"), None, &format!("-{c} {value}"), level);
                        self.table.push(&format!("-{c}*"), None, &value, level);
                        break;
                    }
                    self.table
                        .push(&format!("-{c}"), None, &format!("-{c}"), level);
                }
                idx += 1;
            }
            let positional = &words[idx.min(words.len())..];
            let options = opts
                .chars()
                .filter(|c| *c != ':')
                .filter_map(|c| {
                    let def = self.table.get(&format!("-{c}"))?;
                    let value = self
                        .table
                        .get(&format!("-{c}*"))
                        .map_or(String::new(), |d| d.body.clone());
                    (def.level == level).then_some((c, value))
                })
                .collect();
            self.calls.push(CallArgs {
                positional: positional.iter().map(|w| w.to_string()).collect(),
                options,
            });
            self.table
                .push("#", None, &positional.len().to_string(), level);
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
        expr::evaluate(text)
            .map(|v| v.to_string())
            .map_err(|e| MacroError::Expression(e.to_string()))
    }
}

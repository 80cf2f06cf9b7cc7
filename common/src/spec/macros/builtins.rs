//! rpm's built-in macros (`%{expand:}`, `%{basename:}`, `%{lua:}`, ...).

use super::{Expander, MacroError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
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

pub(super) fn builtin(name: &str) -> Option<Builtin> {
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

impl Expander<'_> {
    pub(super) fn braced_builtin(
        &mut self,
        bi: Builtin,
        name: &str,
        arg: Option<&str>,
        out: &mut String,
    ) -> Result<bool, MacroError> {
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
                    Some(a) if !matches!(bi, Builtin::Macrobody | Builtin::Lua) => {
                        self.expand(a)?
                    }
                    Some(a) => a.to_string(),
                    None => String::new(),
                };
                let v = self.run_builtin(bi, name, &expanded)?;
                out.push_str(&v);
            }
        }
        Ok(true)
    }

    pub(super) fn run_builtin(
        &mut self,
        bi: Builtin,
        name: &str,
        arg: &str,
    ) -> Result<String, MacroError> {
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
            Builtin::Suffix => arg
                .rfind('.')
                .map(|k| arg[k + 1..].to_string())
                .unwrap_or_default(),
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
                None => {
                    return Err(MacroError::Explicit(format!(
                        "no such macro: '{}'",
                        arg.trim()
                    )))
                }
            },
            Builtin::Exists => "0".into(),
            Builtin::Source => self.expand(&format!("%{{SOURCE{}}}", arg.trim()))?,
            Builtin::Patch => self.expand(&format!("%{{PATCH{}}}", arg.trim()))?,
            Builtin::Define | Builtin::Global | Builtin::Undefine => String::new(),
        })
    }
}

pub(super) fn builtin_needs_arg(bi: Builtin) -> bool {
    !matches!(
        bi,
        Builtin::Verbose | Builtin::GetConfDir | Builtin::GetNcpus | Builtin::Trace | Builtin::Dump
    )
}

/// `%{url2path:...}`: the path part of a URL.
fn url_to_path(arg: &str) -> String {
    match arg.find("://") {
        Some(k) => {
            let after = &arg[k + 3..];
            after
                .find('/')
                .map(|p| after[p..].to_string())
                .unwrap_or_default()
        }
        None => arg.to_string(),
    }
}

//! `%define name(opts) body` as rpm's `doDefine` reads it.

use super::{match_close, utf8_len, MacroError};

/// A `%define` parsed from text, not yet applied.
pub(super) struct ParsedDefine {
    pub(super) def: Option<NewMacro>,
    /// Bytes of the input consumed.
    pub(super) consumed: usize,
    pub(super) warning: Option<String>,
}

pub(super) struct NewMacro {
    pub(super) name: String,
    pub(super) opts: Option<String>,
    pub(super) body: String,
}

pub(super) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Parses `name[(opts)] body` as rpm's `doDefine` does. With `to_eol`, the
/// body ends at the first newline outside `%{...}`/`%(...)` (the unbraced
/// `%define` form); otherwise the body is the whole rest.
pub(super) fn parse_define(s: &str, to_eol: bool) -> Result<ParsedDefine, MacroError> {
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
        let close = s[i..]
            .find(')')
            .map(|k| k + i)
            .ok_or_else(|| MacroError::Define(format!("Macro %{name} has unterminated opts")))?;
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
    let glued = if j == body_start {
        b.get(j).copied()
    } else {
        None
    };
    finish_define(name, opts, glued, body, k)
}

/// Checks a parsed definition the way rpm's `doDefine` does. `glued` is
/// the character right after the name when no whitespace separates it from
/// the body (`%define name:body`).
fn finish_define(
    name: &str,
    opts: Option<String>,
    glued: Option<u8>,
    body: String,
    consumed: usize,
) -> Result<ParsedDefine, MacroError> {
    let first = name.bytes().next();
    if name == "_" || !first.is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') {
        return Err(MacroError::Define(format!(
            "Macro %{name} has illegal name (%define)"
        )));
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
    Ok(ParsedDefine {
        def: Some(NewMacro {
            name: name.to_string(),
            opts,
            body,
        }),
        consumed,
        warning: None,
    })
}

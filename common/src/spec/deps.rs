//! Dependency lines (`BuildRequires: a >= 1, b (c or d) /bin/sh`) parsed the
//! way rpm's `parseRCPOT` does: tokens separated by whitespace or commas, an
//! optional operator and version after a name, rich dependencies in parens.

use super::model::{Constraint, Dependency, Op};

/// rpm's SKIPWHITE: whitespace and commas separate tokens.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == ','
}

/// Parses one dependency field. `allow_rich` is false for Provides/Obsoletes.
pub fn parse_dependencies(field: &str, allow_rich: bool) -> Result<Vec<Dependency>, String> {
    let mut deps = Vec::new();
    let mut rest = field;
    loop {
        rest = rest.trim_start_matches(is_separator);
        if rest.is_empty() {
            return Ok(deps);
        }
        if rest.starts_with('(') {
            if !allow_rich {
                return Err("No rich dependencies allowed for this type".into());
            }
            let end = rich_end(rest)?;
            deps.push(Dependency::new(&rest[..end]));
            rest = &rest[end..];
            continue;
        }
        let (name, after) = split_token(rest);
        let (maybe_op, after_op) = split_token(after.trim_start_matches(is_separator));
        let mut constraint = None;
        rest = after;
        if let Some(op) = Op::parse(maybe_op) {
            let (evr, after_evr) = split_token(after_op.trim_start_matches(is_separator));
            if evr.is_empty() {
                return Err(format!("Version required: {}", field.trim()));
            }
            constraint = Some(Constraint {
                op,
                evr: evr.to_string(),
            });
            rest = after_evr;
        }
        check_dependency(name, constraint.as_ref().map(|c| c.evr.as_str()))?;
        deps.push(Dependency {
            name: name.to_string(),
            constraint,
        });
    }
}

fn split_token(s: &str) -> (&str, &str) {
    let end = s.find(is_separator).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// rpm's `checkDep`.
fn check_dependency(name: &str, evr: Option<&str>) -> Result<(), String> {
    let first = name.chars().next().unwrap_or(' ');
    if first.is_ascii() && !(first.is_ascii_alphanumeric() || first == '_' || first == '/') {
        return Err(format!(
            "Dependency tokens must begin with alpha-numeric, '_' or '/': {name}"
        ));
    }
    if let Some(evr) = evr {
        if name.starts_with('/') {
            return Err(format!("Versioned file name not permitted: {name}"));
        }
        check_chars(evr, ".-_+:%{}~^")?;
        if let Some(k) = evr.find(':') {
            if !evr[..k].bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "Invalid version (epoch must be unsigned integer): {evr}"
                ));
            }
        }
    }
    Ok(())
}

/// rpm's `rpmCharCheck`: only alphanumerics and `allowed`, and no `..`.
pub fn check_chars(field: &str, allowed: &str) -> Result<(), String> {
    if let Some(bad) = field
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || allowed.contains(*c) || !c.is_ascii()))
    {
        return Err(format!(
            "Illegal char '{bad}' (0x{:x}) in: {field}",
            bad as u32
        ));
    }
    if field.contains("..") {
        return Err(format!("Illegal sequence \"..\" in: {field}"));
    }
    Ok(())
}

/// Byte length of the rich dependency at the start of `s`, checking its shape.
fn rich_end(s: &str) -> Result<usize, String> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    check_rich(&s[..=i])?;
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
    }
    Err(format!("Unterminated rich dependency: {s}"))
}

const RICH_OPS: [&str; 7] = ["and", "or", "if", "else", "with", "without", "unless"];

/// Validates the operators of a rich dependency: every group alternates
/// operands and keywords, and an operand is never empty.
fn check_rich(text: &str) -> Result<(), String> {
    let inner = &text[1..text.len() - 1];
    let mut expect_operand = true;
    let mut rest = inner.trim_start();
    let bad = || format!("Invalid rich dependency: {text}");
    while !rest.is_empty() {
        if expect_operand {
            if rest.starts_with('(') {
                let end = rich_end(rest)?;
                rest = rest[end..].trim_start();
            } else {
                let (name, after) = split_ws(rest);
                if RICH_OPS.contains(&name) {
                    return Err(bad());
                }
                let (maybe_op, after_op) = split_ws(after.trim_start());
                rest = after.trim_start();
                if let Some(_op) = Op::parse(maybe_op) {
                    let (evr, after_evr) = split_ws(after_op.trim_start());
                    if evr.is_empty() {
                        return Err(bad());
                    }
                    rest = after_evr.trim_start();
                }
            }
            expect_operand = false;
        } else {
            let (kw, after) = split_ws(rest);
            if !RICH_OPS.contains(&kw) {
                return Err(bad());
            }
            rest = after.trim_start();
            expect_operand = true;
        }
    }
    if expect_operand {
        return Err(bad());
    }
    Ok(())
}

fn split_ws(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .unwrap_or(s.len());
    let end = if end == 0 {
        s.find(char::is_whitespace).unwrap_or(s.len())
    } else {
        end
    };
    (&s[..end], &s[end..])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn strings(field: &str) -> Vec<String> {
        parse_dependencies(field, true)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn several_per_line_commas_and_operators() {
        assert_eq!(
            strings("a >= 1.0, b c=2 d = 1:2-3"),
            ["a >= 1.0", "b", "c=2", "d = 1:2-3"]
        );
        assert_eq!(
            strings("/bin/sh,python3-devel"),
            ["/bin/sh", "python3-devel"]
        );
        assert_eq!(
            strings("(coreutils or coreutils-selinux) x"),
            ["(coreutils or coreutils-selinux)", "x"]
        );
        assert_eq!(
            strings("(a >= 1 with (b or c))"),
            ["(a >= 1 with (b or c))"]
        );
    }

    #[test]
    fn bad_dependencies_are_rejected() {
        for bad in [
            "-foo",
            "a >=",
            "/bin/sh >= 1",
            "a >= 1$",
            "(a or)",
            "(a b)",
            "(a or b",
            "a = x:1",
        ] {
            assert!(parse_dependencies(bad, true).is_err(), "{bad}");
        }
        assert!(parse_dependencies("(a or b)", false).is_err());
    }
}

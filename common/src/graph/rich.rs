//! rpm rich (boolean) dependencies: `(a >= 1.0 or (b and c))`.
//!
//! The grammar follows rpm's `rpmrichParse`: a rich dependency is a
//! parenthesised expression of terms joined by one kind of operator; `and`,
//! `or` and `with` may repeat (`a or b or c`), `if`/`unless` take an optional
//! `else`, `without` is binary; mixing operators needs parentheses. A term is
//! a nested expression or a simple dependency `name [op evr]`, where the name
//! may itself contain balanced parentheses (`perl(Carp)`).

use crate::spec::{Constraint, Dependency, Op};

/// A parsed rich dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RichDep {
    Atom(Dependency),
    /// All must be installed.
    And(Vec<RichDep>),
    /// At least one must be installed.
    Or(Vec<RichDep>),
    /// `then if cond [else otherwise]`: `then` is required when `cond` is installed.
    If {
        then: Box<RichDep>,
        cond: Box<RichDep>,
        otherwise: Option<Box<RichDep>>,
    },
    /// `then unless cond [else otherwise]`: `then` is required unless `cond` is installed.
    Unless {
        then: Box<RichDep>,
        cond: Box<RichDep>,
        otherwise: Option<Box<RichDep>>,
    },
    /// One package must satisfy all of them.
    With(Vec<RichDep>),
    /// A package satisfying the first but not the second.
    Without(Box<RichDep>, Box<RichDep>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad rich dependency {text:?} at byte {pos}: {message}")]
pub struct RichError {
    pub text: String,
    pub pos: usize,
    pub message: String,
}

/// Parses a rich dependency; `text` must start with `(`.
pub fn parse_rich(text: &str) -> Result<RichDep, RichError> {
    let mut p = Parser { text, pos: 0 };
    p.skip_ws();
    if !p.rest().starts_with('(') {
        return Err(p.error("a rich dependency starts with '('"));
    }
    let dep = p.group()?;
    p.skip_ws();
    if !p.rest().is_empty() {
        return Err(p.error("unexpected text after the closing ')'"));
    }
    Ok(dep)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Keyword {
    And,
    Or,
    If,
    Unless,
    Else,
    With,
    Without,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        Some(match word {
            "and" => Keyword::And,
            "or" => Keyword::Or,
            "if" => Keyword::If,
            "unless" => Keyword::Unless,
            "else" => Keyword::Else,
            "with" => Keyword::With,
            "without" => Keyword::Without,
            _ => return None,
        })
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn error(&self, message: &str) -> RichError {
        RichError {
            text: self.text.to_string(),
            pos: self.pos,
            message: message.to_string(),
        }
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// A word up to whitespace, an unbalanced `)` or (outside parentheses)
    /// a comparison character; parentheses inside a name (`perl(Carp)`) are
    /// kept.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        let mut depth = 0usize;
        for (i, ch) in self.rest().char_indices() {
            match ch {
                c if c.is_whitespace() => {
                    self.pos = start + i;
                    return &self.text[start..self.pos];
                }
                '(' => depth += 1,
                ')' | '<' | '>' | '=' if depth == 0 => {
                    self.pos = start + i;
                    return &self.text[start..self.pos];
                }
                ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        self.pos = self.text.len();
        &self.text[start..]
    }

    fn peek_keyword(&self) -> Option<(Keyword, usize)> {
        let rest = self.rest();
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .unwrap_or(rest.len());
        Keyword::from_word(&rest[..end]).map(|k| (k, end))
    }

    /// `( expr )`
    fn group(&mut self) -> Result<RichDep, RichError> {
        self.pos += 1; // the '('
        let dep = self.expr()?;
        self.skip_ws();
        if !self.rest().starts_with(')') {
            return Err(self.error("expected ')'"));
        }
        self.pos += 1;
        Ok(dep)
    }

    fn term(&mut self) -> Result<RichDep, RichError> {
        self.skip_ws();
        if self.rest().starts_with('(') {
            return self.group();
        }
        if self.peek_keyword().is_some() {
            return Err(self.error("expected a dependency, found an operator"));
        }
        let name = self.word();
        if name.is_empty() {
            return Err(self.error("expected a dependency"));
        }
        let save = self.pos;
        self.skip_ws();
        let op_end = self
            .rest()
            .find(|c: char| !matches!(c, '<' | '>' | '='))
            .unwrap_or(self.rest().len());
        if op_end == 0 {
            self.pos = save;
            return Ok(RichDep::Atom(Dependency::new(name)));
        }
        let op = Op::parse(&self.rest()[..op_end])
            .ok_or_else(|| self.error("unknown comparison operator"))?;
        self.pos += op_end;
        self.skip_ws();
        let evr = self.word();
        if evr.is_empty() {
            return Err(self.error("expected a version after the operator"));
        }
        Ok(RichDep::Atom(Dependency {
            name: name.to_string(),
            constraint: Some(Constraint {
                op,
                evr: evr.to_string(),
            }),
        }))
    }

    fn keyword(&mut self) -> Option<Keyword> {
        self.skip_ws();
        let (k, len) = self.peek_keyword()?;
        self.pos += len;
        Some(k)
    }

    fn expr(&mut self) -> Result<RichDep, RichError> {
        let first = self.term()?;
        let save = self.pos;
        let Some(op) = self.keyword() else {
            self.pos = save;
            return Ok(first);
        };
        match op {
            Keyword::And | Keyword::Or | Keyword::With => {
                let mut items = vec![first, self.term()?];
                loop {
                    let save = self.pos;
                    match self.keyword() {
                        Some(k) if k == op => items.push(self.term()?),
                        Some(_) => {
                            return Err(self.error("cannot mix operators without parentheses"))
                        }
                        None => {
                            self.pos = save;
                            break;
                        }
                    }
                }
                Ok(match op {
                    Keyword::And => RichDep::And(items),
                    Keyword::Or => RichDep::Or(items),
                    _ => RichDep::With(items),
                })
            }
            Keyword::If | Keyword::Unless => {
                let cond = Box::new(self.term()?);
                let save = self.pos;
                let otherwise = match self.keyword() {
                    Some(Keyword::Else) => Some(Box::new(self.term()?)),
                    Some(_) => return Err(self.error("only 'else' may follow 'if'/'unless'")),
                    None => {
                        self.pos = save;
                        None
                    }
                };
                let then = Box::new(first);
                Ok(if op == Keyword::If {
                    RichDep::If {
                        then,
                        cond,
                        otherwise,
                    }
                } else {
                    RichDep::Unless {
                        then,
                        cond,
                        otherwise,
                    }
                })
            }
            Keyword::Without => {
                let second = self.term()?;
                let save = self.pos;
                if self.keyword().is_some() {
                    return Err(self.error("'without' takes exactly two operands"));
                }
                self.pos = save;
                Ok(RichDep::Without(Box::new(first), Box::new(second)))
            }
            Keyword::Else => Err(self.error("'else' without 'if' or 'unless'")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn atom(name: &str) -> RichDep {
        RichDep::Atom(Dependency::new(name))
    }

    #[test]
    fn simple_or() {
        assert_eq!(
            parse_rich("(coreutils or coreutils-selinux)").unwrap(),
            RichDep::Or(vec![atom("coreutils"), atom("coreutils-selinux")])
        );
        assert_eq!(
            parse_rich("(a or b or toybox)").unwrap(),
            RichDep::Or(vec![atom("a"), atom("b"), atom("toybox")])
        );
    }

    #[test]
    fn versioned_atoms_and_nesting() {
        let d = parse_rich("(a >= 1.0 or (b and c < 2:3-4))").unwrap();
        let RichDep::Or(items) = d else {
            panic!("not or")
        };
        assert_eq!(
            items[0],
            RichDep::Atom(Dependency {
                name: "a".into(),
                constraint: Some(Constraint {
                    op: Op::Ge,
                    evr: "1.0".into()
                })
            })
        );
        let RichDep::And(inner) = &items[1] else {
            panic!("not and")
        };
        assert_eq!(inner[0], atom("b"));
        assert_eq!(
            inner[1],
            RichDep::Atom(Dependency {
                name: "c".into(),
                constraint: Some(Constraint {
                    op: Op::Lt,
                    evr: "2:3-4".into()
                })
            })
        );
    }

    #[test]
    fn no_spaces_around_operator_and_paren_names() {
        let d = parse_rich("(perl(Carp)>=1.2 with perl(Carp) < 2)").unwrap();
        let RichDep::With(items) = d else {
            panic!("not with")
        };
        assert_eq!(
            items[0],
            RichDep::Atom(Dependency {
                name: "perl(Carp)".into(),
                constraint: Some(Constraint {
                    op: Op::Ge,
                    evr: "1.2".into()
                })
            })
        );
    }

    #[test]
    fn if_else_unless_without() {
        assert_eq!(
            parse_rich("(a if b else c)").unwrap(),
            RichDep::If {
                then: Box::new(atom("a")),
                cond: Box::new(atom("b")),
                otherwise: Some(Box::new(atom("c")))
            }
        );
        assert_eq!(
            parse_rich("(a unless (b or c))").unwrap(),
            RichDep::Unless {
                then: Box::new(atom("a")),
                cond: Box::new(RichDep::Or(vec![atom("b"), atom("c")])),
                otherwise: None
            }
        );
        assert_eq!(
            parse_rich("(a without b)").unwrap(),
            RichDep::Without(Box::new(atom("a")), Box::new(atom("b")))
        );
        assert_eq!(parse_rich("((a))").unwrap(), atom("a"));
    }

    #[test]
    fn errors() {
        for bad in [
            "a or b",
            "(a or b",
            "(a or b and c)",
            "(a if b or c)",
            "(or a)",
            "(a >= )",
            "()",
            "(a) x",
            "(a else b)",
            "(a without b without c)",
        ] {
            assert!(parse_rich(bad).is_err(), "{bad:?} should fail");
        }
        let e = parse_rich("(a or b and c)").unwrap_err();
        assert!(e.to_string().contains("(a or b and c)"));
    }
}

//! rpm's expression language, used by `%if`, `%elif` and `%[...]`
//! (rpm 4.18 `build/expression.c`): integers, `"strings"`, `v"versions"`,
//! `! - * / + - == != < <= > >= && || ?:` and parentheses. Macros are
//! expanded before evaluation. Bare words are an error, as in rpm.

use crate::evr::Evr;
use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Str(String),
    Version(String),
}

impl Value {
    pub fn truthy(&self) -> bool {
        match self {
            Value::Int(i) => *i != 0,
            Value::Str(s) | Value::Version(s) => !s.is_empty(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) | Value::Version(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("syntax error in expression: {0}")]
    Syntax(String),
    #[error("types must match in expression: {0}")]
    Types(String),
    #[error("division by zero in expression: {0}")]
    DivideByZero(String),
    #[error("{0}")]
    Macro(String),
    #[error("bare words are no longer supported, please use \"...\": {0}")]
    BareWord(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Str(String),
    Ver(String),
    /// A macro met in a `%[...]` expression, expanded when used.
    Macro(String),
    Op(&'static str),
    End,
}

/// Expands one macro token (`%{...}`, `%name`, `%[...]`) met inside an expression.
pub type ExpandFn<'b> = dyn FnMut(&str) -> Result<String, String> + 'b;

struct Parser<'a, 'b> {
    src: &'a str,
    pos: usize,
    tok: Tok,
    /// Set for `%[...]`: macros are expanded lazily, token by token, and not
    /// at all in a branch that short-circuiting skips (rpm's RPMEXPR_EXPAND).
    expand: Option<&'b mut ExpandFn<'b>>,
    /// >0 while parsing a branch whose value is not used.
    discard: usize,
}

const OPERATORS: [&str; 18] = [
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "(", ")", "+", "-", "*", "/", "?", ":", "=",
];

impl<'a, 'b> Parser<'a, 'b> {
    fn new(src: &'a str, expand: Option<&'b mut ExpandFn<'b>>) -> Result<Self, ExprError> {
        let mut p = Parser {
            src,
            pos: 0,
            tok: Tok::End,
            expand,
            discard: 0,
        };
        p.advance()?;
        Ok(p)
    }

    fn err(&self) -> ExprError {
        ExprError::Syntax(self.src.trim().to_string())
    }

    fn advance(&mut self) -> Result<(), ExprError> {
        let b = self.src.as_bytes();
        while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            self.tok = Tok::End;
            return Ok(());
        }
        let rest = &self.src[self.pos..];
        let c = b[self.pos];
        if c.is_ascii_digit() {
            let len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let n = rest[..len].parse::<i64>().map_err(|_| self.err())?;
            self.pos += len;
            self.tok = Tok::Int(n);
            return Ok(());
        }
        if c == b'"' || (c == b'v' && rest.as_bytes().get(1) == Some(&b'"')) {
            let start = if c == b'v' { 2 } else { 1 };
            let Some(end) = rest[start..].find('"') else {
                return Err(self.err());
            };
            let text = rest[start..start + end].to_string();
            self.pos += start + end + 1;
            self.tok = if c == b'v' {
                Tok::Ver(text)
            } else {
                Tok::Str(text)
            };
            return Ok(());
        }
        if c == b'%' && self.expand.is_some() {
            let len = macro_token_len(rest).ok_or_else(|| self.err())?;
            self.pos += len;
            self.tok = Tok::Macro(rest[..len].to_string());
            return Ok(());
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            return Err(ExprError::BareWord(rest[..len].to_string()));
        }
        for op in OPERATORS {
            if rest.starts_with(op) {
                if op == "=" {
                    break;
                }
                self.pos += op.len();
                self.tok = Tok::Op(op);
                return Ok(());
            }
        }
        Err(self.err())
    }

    fn expand_text(&mut self, raw: &str) -> Result<String, ExprError> {
        match (&mut self.expand, self.discard) {
            (Some(f), 0) if raw.contains('%') => f(raw).map_err(ExprError::Macro),
            _ => Ok(raw.to_string()),
        }
    }

    /// Parses (and discards) a sub-expression whose value is not needed.
    fn skip<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ExprError>,
        skip: bool,
    ) -> Result<T, ExprError> {
        if skip {
            self.discard += 1;
        }
        let r = f(self);
        if skip {
            self.discard -= 1;
        }
        r
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.tok, Tok::Op(o) if o == op)
    }

    fn ternary(&mut self) -> Result<Value, ExprError> {
        let cond = self.logical_or()?;
        if !self.is_op("?") {
            return Ok(cond);
        }
        self.advance()?;
        let take = cond.truthy();
        let yes = self.skip(Self::ternary, !take)?;
        if !self.is_op(":") {
            return Err(self.err());
        }
        self.advance()?;
        let no = self.skip(Self::ternary, take)?;
        Ok(if cond.truthy() { yes } else { no })
    }

    fn logical_or(&mut self) -> Result<Value, ExprError> {
        let mut left = self.logical_and()?;
        while self.is_op("||") {
            self.advance()?;
            let decided = left.truthy();
            let right = self.skip(Self::logical_and, decided)?;
            left = logical(left, right, true, self.src)?;
        }
        Ok(left)
    }

    fn logical_and(&mut self) -> Result<Value, ExprError> {
        let mut left = self.relational()?;
        while self.is_op("&&") {
            self.advance()?;
            let decided = !left.truthy();
            let right = self.skip(Self::relational, decided)?;
            left = logical(left, right, false, self.src)?;
        }
        Ok(left)
    }

    fn relational(&mut self) -> Result<Value, ExprError> {
        let mut left = self.additive()?;
        loop {
            let op = match self.tok {
                Tok::Op(o @ ("==" | "!=" | "<" | "<=" | ">" | ">=")) => o,
                _ => return Ok(left),
            };
            self.advance()?;
            let right = self.additive()?;
            let ord = compare(&left, &right, self.src)?;
            let result = match op {
                "==" => ord == Ordering::Equal,
                "!=" => ord != Ordering::Equal,
                "<" => ord == Ordering::Less,
                "<=" => ord != Ordering::Greater,
                ">" => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            };
            left = Value::Int(i64::from(result));
        }
    }

    fn additive(&mut self) -> Result<Value, ExprError> {
        let mut left = self.multiplicative()?;
        loop {
            let plus = if self.is_op("+") {
                true
            } else if self.is_op("-") {
                false
            } else {
                return Ok(left);
            };
            self.advance()?;
            let right = self.multiplicative()?;
            left = match (left, right) {
                (Value::Int(a), Value::Int(b)) => Value::Int(if plus {
                    a.wrapping_add(b)
                } else {
                    a.wrapping_sub(b)
                }),
                (Value::Str(a), Value::Str(b)) if plus => Value::Str(a + &b),
                _ => return Err(ExprError::Types(self.src.trim().to_string())),
            };
        }
    }

    fn multiplicative(&mut self) -> Result<Value, ExprError> {
        let mut left = self.unary()?;
        loop {
            let mul = if self.is_op("*") {
                true
            } else if self.is_op("/") {
                false
            } else {
                return Ok(left);
            };
            self.advance()?;
            let right = self.unary()?;
            left = match (left, right) {
                (Value::Int(a), Value::Int(b)) if mul => Value::Int(a.wrapping_mul(b)),
                (Value::Int(_), Value::Int(0)) if self.discard == 0 => {
                    return Err(ExprError::DivideByZero(self.src.trim().to_string()))
                }
                (Value::Int(a), Value::Int(b)) => Value::Int(a.checked_div(b).unwrap_or(0)),
                _ => return Err(ExprError::Types(self.src.trim().to_string())),
            };
        }
    }

    fn unary(&mut self) -> Result<Value, ExprError> {
        if self.is_op("!") {
            self.advance()?;
            let v = self.unary()?;
            return Ok(Value::Int(i64::from(!v.truthy())));
        }
        if self.is_op("-") {
            self.advance()?;
            return match self.unary()? {
                Value::Int(i) => Ok(Value::Int(i.wrapping_neg())),
                _ => Err(ExprError::Types(self.src.trim().to_string())),
            };
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Value, ExprError> {
        let v = match std::mem::replace(&mut self.tok, Tok::End) {
            Tok::Int(i) => Value::Int(i),
            // Strings and macros are expanded only here, where the value is
            // used, so a branch that is skipped expands nothing.
            Tok::Str(s) => Value::Str(self.expand_text(&s)?),
            Tok::Ver(s) => Value::Version(self.expand_text(&s)?),
            Tok::Macro(m) => {
                let text = self.expand_text(&m)?;
                match text.trim().parse::<i64>() {
                    Ok(n) => Value::Int(n),
                    Err(_) if self.discard > 0 => Value::Int(0),
                    Err(_) => Value::Str(text),
                }
            }
            Tok::Op("(") => {
                self.advance()?;
                let v = self.ternary()?;
                if !self.is_op(")") {
                    return Err(self.err());
                }
                v
            }
            _ => return Err(self.err()),
        };
        self.advance()?;
        Ok(v)
    }
}

fn logical(left: Value, right: Value, or: bool, src: &str) -> Result<Value, ExprError> {
    match (&left, &right) {
        (Value::Int(_), Value::Int(_)) => {
            let r = if or {
                left.truthy() || right.truthy()
            } else {
                left.truthy() && right.truthy()
            };
            Ok(Value::Int(i64::from(r)))
        }
        (Value::Int(_), _) | (_, Value::Int(_)) => Err(ExprError::Types(src.trim().to_string())),
        _ => Ok(if or == left.truthy() { left } else { right }),
    }
}

fn compare(left: &Value, right: &Value, src: &str) -> Result<Ordering, ExprError> {
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => Ok(a.cmp(b)),
        (Value::Str(a), Value::Str(b)) => Ok(a.cmp(b)),
        (Value::Version(a), Value::Version(b)) => Ok(Evr::parse(a).cmp_rpm(&Evr::parse(b))),
        _ => Err(ExprError::Types(src.trim().to_string())),
    }
}

/// Length of the macro token at the start of `s` (`%{..}`, `%(..)`, `%[..]`, `%name`).
fn macro_token_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let (open, close) = match b.get(1)? {
        b'{' => (b'{', b'}'),
        b'(' => (b'(', b')'),
        b'[' => (b'[', b']'),
        _ => {
            let mut i = 1;
            if matches!(b.get(i), Some(b'?' | b'!')) {
                i += 1;
            }
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            return (i > start).then_some(i);
        }
    };
    let mut depth = 0usize;
    for (i, &c) in b.iter().enumerate().skip(1) {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Evaluates an already macro-expanded expression (`%if`).
pub fn evaluate(text: &str) -> Result<Value, ExprError> {
    run(Parser::new(text, None)?)
}

/// Evaluates a `%[...]` expression, expanding macros token by token.
pub fn evaluate_expanding<'b>(
    text: &str,
    expand: &'b mut ExpandFn<'b>,
) -> Result<Value, ExprError> {
    run(Parser::new(text, Some(expand))?)
}

fn run(mut p: Parser<'_, '_>) -> Result<Value, ExprError> {
    let v = p.ternary()?;
    if p.tok != Tok::End {
        return Err(p.err());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn truth(s: &str) -> bool {
        evaluate(s).unwrap().truthy()
    }

    #[test]
    fn rpm_expressions() {
        assert!(truth("1"));
        assert!(!truth("0"));
        assert!(!truth("1 && 0"));
        assert!(truth("0 || 1"));
        assert!(truth("\"a\" == \"a\""));
        assert!(truth("\"x86_64\" != \"aarch64\" || 0"));
        assert!(truth("0 < 8 && 1"));
        assert!(truth("!(1 == 2)"));
        assert!(truth("v\"1.2.3\" < v\"1.10\""));
        assert!(truth("2 * 3 + 1 == 7"));
        assert!(truth("1 ? 1 : 0"));
        assert!(!truth("\"\""));
        assert_eq!(evaluate("1+2").unwrap(), Value::Int(3));
        assert_eq!(evaluate("\"a\" < \"b\"").unwrap(), Value::Int(1));
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for bad in [
            "",
            "1 +",
            "(1",
            "foo == 1",
            "\"a\" == 1",
            "1 / 0",
            "\"open",
            "1 2",
        ] {
            assert!(evaluate(bad).is_err(), "{bad}");
        }
    }
}

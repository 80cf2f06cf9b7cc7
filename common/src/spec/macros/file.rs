//! Reading rpm macro files (`--macros-file`, rpm's own) the way rpm's
//! `rdcl` does, and the bracket scan it shares with the spec reader.

/// The definitions of a macro file, without their leading `%`. Like rpm's
/// `rdcl`, a line goes on to the next while it ends with `\` or while a
/// `%{`, `%(` or `%[` opened on it is unclosed (an empty line always ends
/// it); the backslashes and newlines stay in the text for `%define`'s own
/// body rules. Lines not starting with `%` (after blanks) are comments.
pub fn macro_file_definitions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut open = OpenMacros::default();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        open.scan(line.as_bytes());
        logical.push_str(line);
        if line.is_empty() || (!line.ends_with('\\') && !open.any()) {
            let def = std::mem::take(&mut logical);
            open = OpenMacros::default();
            if let Some(rest) = def.trim_start_matches([' ', '\t']).strip_prefix('%') {
                out.push(rest.to_string());
            }
        } else {
            logical.push('\n');
        }
    }
    if let Some(rest) = logical.trim_start_matches([' ', '\t']).strip_prefix('%') {
        out.push(rest.to_string());
    }
    out
}

/// What is still open in text rpm reads line by line (its `rdcl` and
/// `copyNextLineFromOFI`): `%{`, `%(` and `%[` nesting, with `\\` escaping
/// the next character, and whether the text ends in an escaped newline.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OpenMacros {
    braces: usize,
    parens: usize,
    brackets: usize,
    escaped_newline: bool,
}

impl OpenMacros {
    pub(crate) fn scan(&mut self, b: &[u8]) {
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' => match b.get(i + 1) {
                    Some(b'\n') => {
                        i += 1;
                        self.escaped_newline = true;
                    }
                    Some(_) => i += 1,
                    None => {}
                },
                b'\n' => self.escaped_newline = false,
                b'%' => match b.get(i + 1) {
                    Some(b'{') => (i, self.braces) = (i + 1, self.braces + 1),
                    Some(b'(') => (i, self.parens) = (i + 1, self.parens + 1),
                    Some(b'[') => (i, self.brackets) = (i + 1, self.brackets + 1),
                    Some(b'%') => i += 1,
                    _ => {}
                },
                b'{' if self.braces > 0 => self.braces += 1,
                b'}' if self.braces > 0 => self.braces -= 1,
                b'(' if self.parens > 0 => self.parens += 1,
                b')' if self.parens > 0 => self.parens -= 1,
                b'[' if self.brackets > 0 => self.brackets += 1,
                b']' if self.brackets > 0 => self.brackets -= 1,
                _ => {}
            }
            i += 1;
        }
    }

    /// A `%{`, `%(` or `%[` is still open.
    pub(crate) fn any(&self) -> bool {
        self.braces > 0 || self.parens > 0 || self.brackets > 0
    }

    /// Open, or the text ends in `\\` + newline: rpm reads on.
    pub(crate) fn needs_more(&self) -> bool {
        self.any() || self.escaped_newline
    }
}

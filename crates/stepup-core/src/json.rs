//! A minimal JSON object writer for the problem body: the core needs to
//! write JSON, never to read it, so it carries no JSON library.

use std::fmt::Write as _;

pub(crate) struct JsonObject {
    out: String,
    first: bool,
}

impl JsonObject {
    pub(crate) fn new() -> JsonObject {
        JsonObject {
            out: String::from("{"),
            first: true,
        }
    }

    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_string(&mut self.out, name);
        self.out.push(':');
    }

    pub(crate) fn string(&mut self, name: &str, value: &str) -> &mut Self {
        self.key(name);
        write_string(&mut self.out, value);
        self
    }

    pub(crate) fn number(&mut self, name: &str, value: u64) -> &mut Self {
        self.key(name);
        let _ = write!(self.out, "{value}");
        self
    }

    pub(crate) fn strings<'a>(
        &mut self,
        name: &str,
        values: impl IntoIterator<Item = &'a str>,
    ) -> &mut Self {
        self.key(name);
        self.out.push('[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write_string(&mut self.out, v);
        }
        self.out.push(']');
        self
    }

    /// A member whose value is `json`, already valid JSON (written by
    /// this crate).
    pub(crate) fn raw(&mut self, name: &str, json: &str) -> &mut Self {
        self.key(name);
        self.out.push_str(json);
        self
    }

    pub(crate) fn finish(&mut self) -> String {
        self.out.push('}');
        std::mem::take(&mut self.out)
    }
}

/// Writes a JSON string literal. Besides what JSON requires, `<`, `>`, `&`
/// and U+2028/U+2029 are escaped so the text is also safe inside HTML and
/// JavaScript.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20
                || matches!(c, '<' | '>' | '&' | '\u{7f}' | '\u{2028}' | '\u{2029}') =>
            {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_dangerous() {
        let mut s = String::new();
        write_string(&mut s, "a\"b\\c\n\u{1}</script>&\u{2028}é");
        assert_eq!(s, r#""a\"b\\c\n\u0001\u003c/script\u003e\u0026\u2028é""#);
    }

    #[test]
    fn objects() {
        let json = JsonObject::new()
            .string("a", "x")
            .number("n", 5)
            .strings("l", ["p", "q"])
            .finish();
        assert_eq!(json, r#"{"a":"x","n":5,"l":["p","q"]}"#);
    }
}

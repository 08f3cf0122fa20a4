//! A JSON5 reader into `serde_json::Value`, for model answers: `//` and `/* */`
//! comments, single-quoted strings (and JSON5's escapes, line continuations),
//! unquoted identifier keys, trailing commas, hexadecimal numbers, a leading
//! `+` or decimal point, a trailing decimal point, `Infinity` and `NaN` (null
//! in a `Value`, as `serde_json` has no such number). Nothing outside the
//! JSON5 grammar is accepted. Replaces the `json5` crate and its parser
//! generator (issue 11: ~13 KB of the gzipped module for the same language).

use serde_json::{Map, Value};

/// Nesting deeper than this is refused (as `serde_json` does), so a hostile
/// answer cannot exhaust the stack.
const MAX_DEPTH: usize = 128;

/// The value of a whole JSON5 document, or why it is not one.
pub fn from_str(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text,
        i: 0,
        depth: 0,
    };
    let value = p.value()?;
    p.skip_blank()?;
    match p.peek() {
        None => Ok(value),
        Some(_) => Err(p.error("trailing characters")),
    }
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += c.len_utf8();
        }
        hit
    }

    /// `what` at the current position, as line and column (both from 1).
    fn error(&self, what: &str) -> String {
        let before = &self.s[..self.i];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{what} at line {line} column {column}")
    }

    /// Whitespace (JSON5's: any Unicode space) and comments.
    fn skip_blank(&mut self) -> Result<(), String> {
        loop {
            let rest = &self.s[self.i..];
            if rest.starts_with("//") {
                self.i += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(comment) = rest.strip_prefix("/*") {
                let end = comment
                    .find("*/")
                    .ok_or_else(|| self.error("unclosed comment"))?;
                self.i += end + 4;
            } else if self
                .peek()
                .is_some_and(|c| c.is_whitespace() || c == '\u{feff}')
            {
                self.bump();
            } else {
                return Ok(());
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_blank()?;
        match self.peek() {
            Some('{') => self.nested(Self::object),
            Some('[') => self.nested(Self::array),
            Some(q @ ('"' | '\'')) => {
                self.bump();
                self.string(q).map(Value::String)
            }
            Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'I' | 'N') => {
                self.number()
            }
            Some(_) => {
                let word = self.identifier();
                match word {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" => Ok(Value::Null),
                    _ => {
                        self.i -= word.len();
                        Err(self.error("expected a value"))
                    }
                }
            }
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<Value, String>) -> Result<Value, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.bump();
        let value = f(self);
        self.depth -= 1;
        value
    }

    /// After `{`: members, an optional trailing comma, `}`.
    fn object(&mut self) -> Result<Value, String> {
        let mut map = Map::new();
        loop {
            self.skip_blank()?;
            if self.eat('}') {
                return Ok(Value::Object(map));
            }
            let key = match self.peek() {
                Some(q @ ('"' | '\'')) => {
                    self.bump();
                    self.string(q)?
                }
                _ => match self.identifier() {
                    "" => return Err(self.error("expected a key or `}`")),
                    word => word.to_string(),
                },
            };
            self.skip_blank()?;
            if !self.eat(':') {
                return Err(self.error("expected `:`"));
            }
            let value = self.value()?;
            map.insert(key, value);
            self.skip_blank()?;
            if !self.eat(',') {
                self.skip_blank()?;
                return match self.eat('}') {
                    true => Ok(Value::Object(map)),
                    false => Err(self.error("expected `,` or `}`")),
                };
            }
        }
    }

    /// After `[`: elements, an optional trailing comma, `]`.
    fn array(&mut self) -> Result<Value, String> {
        let mut items = Vec::new();
        loop {
            self.skip_blank()?;
            if self.eat(']') {
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.skip_blank()?;
            if !self.eat(',') {
                return match self.eat(']') {
                    true => Ok(Value::Array(items)),
                    false => Err(self.error("expected `,` or `]`")),
                };
            }
        }
    }

    /// An ECMAScript identifier name (letters, digits, `$`, `_`), or "".
    fn identifier(&mut self) -> &str {
        let start = self.i;
        while let Some(c) = self.peek() {
            let ok =
                c == '$' || c == '_' || c.is_alphabetic() || c == '\u{200c}' || c == '\u{200d}';
            if !(ok || (self.i > start && c.is_alphanumeric())) {
                break;
            }
            self.bump();
        }
        &self.s[start..self.i]
    }

    /// After the opening quote `q`: the string's text, escapes decoded.
    fn string(&mut self, q: char) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let c = self.bump().ok_or_else(|| self.error("unclosed string"))?;
            match c {
                _ if c == q => return Ok(out),
                '\n' | '\r' => {
                    self.i -= 1;
                    return Err(self.error("line break inside a string"));
                }
                '\\' => self.escape(&mut out)?,
                c => out.push(c),
            }
        }
    }

    /// After a backslash inside a string.
    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        let c = self.bump().ok_or_else(|| self.error("unclosed string"))?;
        let decoded = match c {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            // A line continuation: `\` + a line break stands for nothing.
            '\r' => {
                self.eat('\n');
                return Ok(());
            }
            '\n' | '\u{2028}' | '\u{2029}' => return Ok(()),
            't' => '\t',
            'v' => '\u{b}',
            '0' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => '\0',
            'x' => self.hex_char(2)?,
            'u' => {
                let unit = self.hex(4)?;
                match unit {
                    0xd800..=0xdbff if self.s[self.i..].starts_with("\\u") => {
                        self.i += 2;
                        let low = self.hex(4)?;
                        // The range first: the sum overflowed for a low unit
                        // below 0xdc00 (found by `props`).
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(self.error("invalid surrogate pair"));
                        }
                        let code = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                        char::from_u32(code).unwrap_or('\u{fffd}')
                    }
                    _ => char::from_u32(unit).ok_or_else(|| self.error("lone surrogate"))?,
                }
            }
            '0'..='9' => return Err(self.error("invalid escape")),
            c => c,
        };
        out.push(decoded);
        Ok(())
    }

    fn hex(&mut self, digits: usize) -> Result<u32, String> {
        let text = self.s.get(self.i..self.i + digits).unwrap_or("");
        match u32::from_str_radix(text, 16) {
            Ok(n) if text.bytes().all(|b| b.is_ascii_hexdigit()) => {
                self.i += digits;
                Ok(n)
            }
            _ => Err(self.error("invalid escape")),
        }
    }

    fn hex_char(&mut self, digits: usize) -> Result<char, String> {
        let n = self.hex(digits)?;
        char::from_u32(n).ok_or_else(|| self.error("invalid escape"))
    }

    /// JSON5 numbers, returned as `serde_json` would read the same number
    /// written as JSON (integers stay integers).
    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        let negative = self.eat('-');
        if !negative {
            self.eat('+');
        }
        let rest = &self.s[self.i..];
        if rest.starts_with("Infinity") || rest.starts_with("NaN") {
            self.i += if rest.starts_with('N') { 3 } else { 8 };
            return Ok(Value::Null);
        }
        if rest.starts_with("0x") || rest.starts_with("0X") {
            self.i += 2;
            let digits = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.i += 1;
            }
            let n = u64::from_str_radix(&self.s[digits..self.i], 16)
                .map_err(|_| self.error("invalid number"))?;
            return Ok(match negative {
                true => i64::try_from(n).map_or(Value::from(-(n as f64)), |n| Value::from(-n)),
                false => Value::from(n),
            });
        }
        let digits = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        {
            self.i += 1;
        }
        // `.5` and `5.` are JSON5, not JSON: write them as `0.5` and `5.0`.
        let mut json = String::from(if negative { "-" } else { "" });
        let lexeme = &self.s[digits..self.i];
        if lexeme.starts_with('.') {
            json.push('0');
        }
        match lexeme.split_once('.') {
            Some((int, frac)) if frac.is_empty() || frac.starts_with(['e', 'E']) => {
                json.extend([int, ".0", frac]);
            }
            _ => json.push_str(lexeme),
        }
        // `.` alone or before an exponent is no number (`.5`, `5.` and `5.e1` are).
        let mantissa = lexeme.split(['e', 'E']).next().unwrap_or("");
        match serde_json::from_str::<serde_json::Number>(&json) {
            Ok(n) if mantissa.bytes().any(|b| b.is_ascii_digit()) => Ok(Value::Number(n)),
            _ => {
                self.i = start;
                Err(self.error("invalid number"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_reads_as_serde_json_reads_it() {
        let text = r#"{"a": [1, -2, 3.5, 1e3, 18446744073709551615, "x\"\u00e9\ud83d\ude00"], "b": {"c": null, "d": true, "e": false}}"#;
        assert_eq!(
            from_str(text),
            Ok(serde_json::from_str::<Value>(text).unwrap())
        );
    }

    #[test]
    fn the_json5_extensions() {
        let text = "// c\n{unquoted: 'single \\' \"q\"', $k_1: 0x1F, b: +.5, c: 5., h: 5.e1, d: -Infinity, e: NaN, \
                    f: 'a\\\nb', g: '\\x41\\v\\0', arr: [1, 2, /* x */], }";
        assert_eq!(
            from_str(text),
            Ok(
                json!({"unquoted": "single ' \"q\"", "$k_1": 31, "b": 0.5, "c": 5.0, "h": 50.0, "d": null,
                "e": null, "f": "ab", "g": "A\u{b}\0", "arr": [1, 2]})
            )
        );
    }

    #[test]
    fn outside_the_grammar_is_refused_with_a_position() {
        assert_eq!(
            from_str("{\"a\": tru}"),
            Err("expected a value at line 1 column 7".into())
        );
        assert_eq!(
            from_str("{\n  \"a\": 1 \"b\": 2}"),
            Err("expected `,` or `}` at line 2 column 10".into())
        );
        for text in [
            "{a: True}",
            "[1, ...]",
            "{'a': 'x\ny'}",
            "{a: 1,,}",
            "[,]",
            "{a b: 1}",
            "{1a: 1}",
            "{\"a\": 1} x",
            "{\"a\": \"\\1\"}",
            "{a: 01.}",
            "{a: -}",
            // Read as 0.0 before a mantissa had to hold a digit.
            "[.]",
            "{a: -.}",
            "{a: .e5}",
            "{a: 1 /* open",
            "",
        ] {
            assert!(from_str(text).is_err(), "{text}");
        }
        // A high surrogate followed by anything but a low one (proptest found
        // `"\ud83d\ud83d` overflowing an addition before the range check).
        for text in [
            r#""\ud83d\ud83d""#,
            r#""\ud800\u0041""#,
            r#""\udbff\u0000""#,
        ] {
            assert_eq!(
                from_str(text),
                Err("invalid surrogate pair at line 1 column 14".into()),
                "{text}"
            );
        }
        assert_eq!(from_str(r#""\ud83d\ude00""#), Ok(Value::from("\u{1f600}")));
        assert!(from_str(&"[".repeat(200))
            .unwrap_err()
            .contains("nested too deeply"));
    }
}

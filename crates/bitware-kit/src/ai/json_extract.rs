//! Getting a JSON object out of a model's text, the way a careful reader would.
//!
//! Recovered: code fences, XML-style tags and prose around the object (also
//! prose holding other braces: the largest object that parses wins), a byte
//! order mark, the JSON5 family — `//` and `/* */` comments, single-quoted
//! strings, unquoted keys, trailing commas (`super::json5`, a strict
//! grammar) — raw line breaks inside strings, and a document delivered as a
//! JSON *string*. Anything else — unbalanced braces, a cut-off string, `...`
//! standing for elided items, YAML, Markdown — is reported, never guessed at:
//! a silently "closed" outline would hide a truncated answer.

use super::json5;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Extracted {
    Json(Value),
    /// The text holds no complete JSON object; the reason is for the model.
    Invalid(String),
}

/// Objects tried per answer: bounds the work on text full of stray braces.
const MAX_CANDIDATES: usize = 64;

pub fn extract_json(text: &str) -> Extracted {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Extracted::Invalid("the answer is empty".into());
    }
    if let Some(v) = parse_document(trimmed) {
        return Extracted::Json(v);
    }
    let scan = scan_objects(trimmed);
    let mut candidates: Vec<(usize, Value)> = scan
        .spans
        .iter()
        .filter_map(|&(start, end)| parse_document(&trimmed[start..=end]).map(|v| (end - start, v)))
        .chain(string_literals(trimmed))
        .collect();
    // The outline is the largest object in the answer; smaller ones are examples
    // or reasoning the model wrote around it.
    candidates.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
    if let Some((_, v)) = candidates.into_iter().next() {
        return Extracted::Json(v);
    }
    // Escaped quotes unbalance the scan: try the outermost braces unescaped.
    if let (Some(first), Some(last)) = (trimmed.find('{'), trimmed.rfind('}')) {
        if let Some(v) = trimmed.get(first..=last).and_then(parse_escaped) {
            return Extracted::Json(v);
        }
    }
    if scan.unclosed {
        return Extracted::Invalid(
            "the JSON object is not closed (the answer looks cut off)".into(),
        );
    }
    if let Some(&(start, end)) = scan.spans.iter().max_by_key(|(s, e)| e - s) {
        let error = match json5::from_str(&trimmed[start..=end]) {
            Err(e) => e,
            Ok(_) => "not an object".into(),
        };
        return Extracted::Invalid(format!("the JSON is not valid: {error}"));
    }
    Extracted::Invalid("the answer contains no JSON object".into())
}

/// A whole JSON (or JSON5) document that is an object or an array, or a JSON
/// string whose content is one (a document delivered as a string).
fn parse_document(s: &str) -> Option<Value> {
    match parse_lenient(s)? {
        Value::String(inner) => {
            parse_lenient(inner.trim_start_matches('\u{feff}').trim()).filter(is_container)
        }
        v => Some(v).filter(is_container),
    }
}

fn is_container(v: &Value) -> bool {
    v.is_object() || v.is_array()
}

/// Strict JSON, then JSON5, then JSON5 with raw control characters inside
/// strings escaped (models put real line breaks in long descriptions).
fn parse_lenient(s: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        return Some(v);
    }
    if let Ok(v) = json5::from_str(s) {
        return Some(v);
    }
    let escaped = escape_control_chars_in_strings(s)?;
    json5::from_str(&escaped).ok()
}

/// `{\"title\": …}`: an object whose quotes are escaped, as when a JSON string
/// holding the document was cut out of its quotes.
fn parse_escaped(span: &str) -> Option<Value> {
    if !span.contains("\\\"") {
        return None;
    }
    let inner: String = serde_json::from_str(&format!("\"{span}\"")).ok()?;
    parse_lenient(&inner).filter(Value::is_object)
}

/// JSON string literals in prose whose content is a JSON object:
/// `Here it is: "{\"title\": …}"`. Returned with the literal's length.
/// At most `SCAN_WORK` bytes are read per byte of the text (a literal that
/// fails is counted as read to the end), as in `scan_objects`.
fn string_literals(text: &str) -> Vec<(usize, Value)> {
    let mut found = Vec::new();
    let mut work = 0;
    for (i, _) in text.match_indices("\"{").take(MAX_CANDIDATES) {
        if work > SCAN_WORK * text.len() {
            break;
        }
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<String>();
        match stream.next() {
            Some(Ok(inner)) => {
                let len = stream.byte_offset();
                work += 2 * len;
                if let Some(v) = parse_lenient(inner.trim()).filter(Value::is_object) {
                    found.push((len, v));
                }
            }
            // A literal that runs to the end of the text: so does every later
            // one (its quotes are all escaped), none is a document.
            Some(Err(e)) if e.is_eof() => break,
            _ => work += text.len() - i,
        }
    }
    found
}

struct Scan {
    /// Byte ranges (inclusive) of balanced top-level `{…}` spans.
    spans: Vec<(usize, usize)>,
    /// A `{` whose object never closes (or was not scanned: see `SCAN_WORK`).
    unclosed: bool,
}

/// Bytes the scans of one answer may read, per byte of the answer. A scan
/// from a `{` that never closes reads to the end of the text; starts that an
/// earlier scan read as code are answered from that scan (`Known`), so only
/// a `{` inside what every earlier scan took for a string or a comment needs
/// a scan of its own. This bounds how many such scans run: the work stays
/// linear in the answer's length (without it, 16 KB of `{` took 1.1 s in a
/// debug build and 1 MB would have taken over an hour: found by `props`).
const SCAN_WORK: usize = 8;

/// What earlier scans of the same text found, so that no scan repeats them.
struct Known {
    /// Per byte of the text: where the object opening at a `{` that a scan
    /// read as code ends (`NEVER`: it does not close; `UNKNOWN`: not read
    /// as code yet) — what a scan from there would find.
    ends: Vec<u32>,
    /// No line break at or after this offset (a `//` comment here runs to the end).
    no_line_break_from: Option<usize>,
    /// No `*/` at or after this offset (a `/*` comment here never ends).
    no_comment_end_from: Option<usize>,
    /// Bytes read by all scans so far.
    work: usize,
}

const UNKNOWN: u32 = u32::MAX;
const NEVER: u32 = u32::MAX - 1;

impl Known {
    /// `None`: not scanned yet; `Some(None)`: scanned, never closes;
    /// `Some(Some(end))`: closes at `end`.
    #[allow(clippy::option_option)] // the three cases are exactly these, and local to the scan
    fn get(&self, at: usize) -> Option<Option<usize>> {
        match self.ends[at] {
            UNKNOWN => None,
            NEVER => Some(None),
            end => Some(Some(end as usize)),
        }
    }

    fn set(&mut self, at: usize, end: Option<usize>) {
        self.ends[at] = end.map_or(NEVER, |e| e as u32);
    }
}

/// Find balanced `{…}` spans, skipping strings (both quote styles) and comments.
fn scan_objects(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut unclosed = false;
    // Offsets are kept as u32: an answer of 4 GiB is not read for objects.
    if u32::try_from(bytes.len()).map_or(true, |n| n >= NEVER) {
        return Scan {
            spans,
            unclosed: true,
        };
    }
    let mut known = Known {
        ends: vec![UNKNOWN; bytes.len()],
        no_line_break_from: None,
        no_comment_end_from: None,
        work: 0,
    };
    let mut from = 0;
    while spans.len() < MAX_CANDIDATES {
        let Some(offset) = text[from..].find('{') else {
            break;
        };
        let start = from + offset;
        let end = match known.get(start) {
            Some(end) => end,
            // Out of work: the rest is read only where earlier scans knew it.
            None if known.work > SCAN_WORK * bytes.len() => None,
            None => matching_brace(bytes, start, &mut known),
        };
        match end {
            Some(end) => {
                spans.push((start, end));
                from = end + 1;
            }
            None => {
                unclosed = true;
                from = start + 1;
            }
        }
    }
    Scan { spans, unclosed }
}

/// Byte offset of the `}` closing the object that starts at `s[start]`.
/// Every `{` read as code on the way is recorded in `known` with where its
/// own object ends.
fn matching_brace(s: &[u8], start: usize, known: &mut Known) -> Option<usize> {
    // The brackets open at this point: `Some(position)` for a `{`.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut i = start;
    let end = loop {
        let Some(&c) = s.get(i) else {
            break None;
        };
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' | b'\'' => quote = Some(c),
            // A comment that runs to the end of the text ends the scan.
            b'/' if s.get(i + 1) == Some(&b'/') => match line_break(s, i + 2, known) {
                Some(at) => i = at,
                None => break None,
            },
            b'/' if s.get(i + 1) == Some(&b'*') => match comment_end(s, i + 2, known) {
                Some(at) => i = at,
                None => break None,
            },
            b'{' => open.push(Some(i)),
            b'[' => open.push(None),
            b'}' | b']' => {
                // A `{` or `[` closed by either: what the scan from there saw.
                let closed = (c == b'}').then_some(i);
                if let Some(Some(at)) = open.pop() {
                    known.set(at, closed);
                }
                if open.is_empty() {
                    break closed;
                }
            }
            _ => {}
        }
        i += 1;
    };
    for at in open.into_iter().flatten() {
        known.set(at, None);
    }
    known.work += i.min(s.len()) - start + 1;
    end
}

/// The offset of the first line break at or after `from`.
fn line_break(s: &[u8], from: usize, known: &mut Known) -> Option<usize> {
    if known.no_line_break_from.is_some_and(|none| from >= none) {
        return None;
    }
    let found = s[from..].iter().position(|&b| b == b'\n');
    if found.is_none() {
        known.work += s.len() - from;
        known.no_line_break_from = Some(from);
    }
    found.map(|n| from + n)
}

/// The offset of the `/` of the first `*/` at or after `from`.
fn comment_end(s: &[u8], from: usize, known: &mut Known) -> Option<usize> {
    if known.no_comment_end_from.is_some_and(|none| from >= none) {
        return None;
    }
    let found = s[from..].windows(2).position(|w| w == b"*/");
    if found.is_none() {
        known.work += s.len() - from;
        known.no_comment_end_from = Some(from);
    }
    found.map(|n| from + n + 1)
}

/// Escape raw control characters inside string literals; `None` when there
/// are none (nothing to retry).
fn escape_control_chars_in_strings(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len() + 16);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut changed = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                } else if (c as u32) < 0x20 {
                    changed = true;
                    match c {
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        other => out.push_str(&format!("\\u{:04x}", other as u32)),
                    }
                    continue;
                }
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
        out.push(c);
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(text: &str) -> Value {
        match extract_json(text) {
            Extracted::Json(v) => v,
            Extracted::Invalid(why) => panic!("not recovered ({why}): {text}"),
        }
    }

    fn refused(text: &str) -> String {
        match extract_json(text) {
            Extracted::Invalid(why) => why,
            Extracted::Json(v) => panic!("should be refused, got {v}: {text}"),
        }
    }

    #[test]
    fn plain_fenced_and_prose_wrapped_json() {
        assert_eq!(ok(r#" {"a": 1} "#), json!({"a": 1}));
        assert_eq!(ok("```json\n{\"a\": [1, 2]}\n```"), json!({"a": [1, 2]}));
        let prose = "Here is your outline:\n{\"title\": \"x {y}\", \"b\": \"}\"}\nHope it helps!";
        assert_eq!(ok(prose), json!({"title": "x {y}", "b": "}"}));
    }

    #[test]
    fn xml_tags_bom_and_crlf() {
        assert_eq!(ok("<outline>\n{\"a\": 1}\n</outline>"), json!({"a": 1}));
        assert_eq!(
            ok("\u{feff}{\r\n  \"a\": \"b\"\r\n}\r\n"),
            json!({"a": "b"})
        );
    }

    #[test]
    fn trailing_commas_are_repaired_but_not_inside_strings() {
        let text = r#"{"a": [1, 2,], "s": "x,]", }"#;
        assert_eq!(ok(text), json!({"a": [1, 2], "s": "x,]"}));
    }

    #[test]
    fn line_and_block_comments_are_ignored() {
        let text =
            "{\n  // the title\n  \"a\": 1, // one\n  /* a list */ \"b\": [1, /* two */ 2]\n}";
        assert_eq!(ok(text), json!({"a": 1, "b": [1, 2]}));
        // A comment holding a brace or an apostrophe does not unbalance the scan.
        let prose = "Sure:\n{\n  // don't forget } this\n  \"a\": 1\n}\nDone.";
        assert_eq!(ok(prose), json!({"a": 1}));
        // Braces and quotes inside comments are not code, on one line or many.
        let text = "Sure: { /* a } ' \" { */ \"a\": 1, // b } ' \"\n \"c\": 2 } ok";
        assert_eq!(ok(text), json!({"a": 1, "c": 2}));
        let text = "Sure: {/* x */\"a\": 1} ok";
        assert_eq!(ok(text), json!({"a": 1}));
        // `//` inside a string is text, not a comment.
        assert_eq!(
            ok(r#"{"url": "https://example.com"}"#),
            json!({"url": "https://example.com"})
        );
    }

    #[test]
    fn single_quoted_strings_and_unquoted_keys() {
        assert_eq!(
            ok(r#"{'title': 'Don\'t panic', 'tags': ['a', "b"]}"#),
            json!({"title": "Don't panic", "tags": ["a", "b"]})
        );
        assert_eq!(
            ok("{title: \"x\", total_questions: 3, modules: []}"),
            json!({"title": "x", "total_questions": 3, "modules": []})
        );
        assert_eq!(
            ok("Here's the outline: {title: 'It\\'s {braced}'}"),
            json!({"title": "It's {braced}"})
        );
    }

    #[test]
    fn a_document_delivered_as_a_json_string() {
        let inner = r#"{"title": "x", "n": [1]}"#;
        let as_string = serde_json::to_string(inner).unwrap();
        assert_eq!(ok(&as_string), json!({"title": "x", "n": [1]}));
        assert_eq!(
            ok(&format!("Here is the JSON: {as_string} — enjoy.")),
            json!({"title": "x", "n": [1]})
        );
        assert_eq!(
            ok(&format!("```json\n{as_string}\n```")),
            json!({"title": "x", "n": [1]})
        );
        // A string that holds no JSON is not an answer.
        refused(r#""I cannot produce that outline.""#);
    }

    #[test]
    fn an_object_cut_out_of_its_string_quotes_is_unescaped() {
        assert_eq!(
            ok(r#"Here: {\"title\": \"x\", \"n\": [1]} (escaped)"#),
            json!({"title": "x", "n": [1]})
        );
    }

    #[test]
    fn only_objects_and_arrays_are_documents() {
        for text in ["42", "true", "null", r#""42""#, r#""just words""#] {
            refused(text);
        }
        assert_eq!(ok("[1, 2]"), json!([1, 2]));
        assert_eq!(ok(r#""[1, 2]""#), json!([1, 2]));
    }

    #[test]
    fn the_largest_invalid_object_is_the_one_reported() {
        let big = r#"{"title": "x", "modules": tru}"#;
        let why = refused(&format!("{big}\nand {{x}}"));
        assert_eq!(
            why,
            "the JSON is not valid: expected a value at line 1 column 27"
        );
    }

    #[test]
    fn raw_line_breaks_inside_strings_are_escaped() {
        assert_eq!(
            ok("{\"a\": \"line one\nline two\", \"b\": 'tab\there'}"),
            json!({"a": "line one\nline two", "b": "tab\there"})
        );
    }

    #[test]
    fn the_largest_object_wins_over_braces_in_reasoning() {
        let text = "<thinking>The shape is {title, modules}; e.g. {\"x\": 1}.</thinking>\n{\"title\": \"t\", \"modules\": [{\"title\": \"m\"}]}";
        assert_eq!(ok(text), json!({"title": "t", "modules": [{"title": "m"}]}));
        // Whatever comes first: a short note after the outline does not win.
        let text = "{\"title\": \"t\", \"modules\": [{\"title\": \"m\"}]}\nNote: {\"x\": 1}";
        assert_eq!(ok(text), json!({"title": "t", "modules": [{"title": "m"}]}));
    }

    #[test]
    fn truncated_and_missing_json_are_reported() {
        let cut = refused(r#"{"title": "x", "modules": [{"title": "a"#);
        assert!(cut.contains("cut off"), "{cut}");
        assert!(refused("I cannot help with that.").contains("no JSON"));
        assert!(refused(r#"{"a": tru}"#).contains("not valid"));
        assert!(refused("").contains("empty"));
    }

    #[test]
    fn what_a_careful_reader_would_not_guess_is_refused() {
        // Elided items, YAML, Markdown, Python literals, a missing comma.
        refused(r#"{"title": "x", "modules": [{"title": "a"}, ...]}"#);
        refused("title: x\nmodules:\n  - title: a\n");
        refused("# Course\n## Module 1\n- Lesson 1\n");
        refused(r#"{"title": "x", "done": True}"#);
        refused(r#"{"a": 1 "b": 2}"#);
    }

    /// The scan as it was before `Known` (one full scan per `{`, quadratic on
    /// text full of unclosed braces): the reference `scan_objects` must agree with.
    fn scan_objects_one_by_one(text: &str) -> Scan {
        fn matching_brace(s: &[u8]) -> Option<usize> {
            let (mut depth, mut quote, mut escaped, mut i) = (0usize, None, false, 0);
            while i < s.len() {
                let c = s[i];
                if let Some(q) = quote {
                    match c {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        _ if c == q => quote = None,
                        _ => {}
                    }
                    i += 1;
                    continue;
                }
                match c {
                    b'"' | b'\'' => quote = Some(c),
                    b'/' if s.get(i + 1) == Some(&b'/') => {
                        i += s[i..].iter().position(|&b| b == b'\n')?;
                    }
                    b'/' if s.get(i + 1) == Some(&b'*') => {
                        i += 2 + s[i + 2..].windows(2).position(|w| w == b"*/")? + 1;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return (c == b'}').then_some(i);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        let (mut spans, mut unclosed, mut from) = (Vec::new(), false, 0);
        while spans.len() < MAX_CANDIDATES {
            let Some(offset) = text[from..].find('{') else {
                break;
            };
            let start = from + offset;
            match matching_brace(&text.as_bytes()[start..]) {
                Some(end) => {
                    spans.push((start, start + end));
                    from = start + end + 1;
                }
                None => {
                    unclosed = true;
                    from = start + 1;
                }
            }
        }
        Scan { spans, unclosed }
    }

    const PIECES: &[&str] = &[
        "{", "}", "[", "]", "\"", "'", "\\", "//", "/*", "*/", "\n", " ", "a", ":", ",",
    ];

    proptest::proptest! {
        #![proptest_config(crate::ai::props::config())]

        /// What earlier scans knew gives the spans one scan per `{` gives.
        #[test]
        fn scanning_once_finds_what_scanning_from_every_brace_finds(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..80)
        ) {
            let text = pieces.concat();
            let (fast, slow) = (scan_objects(&text), scan_objects_one_by_one(&text));
            proptest::prop_assert_eq!(fast.spans, slow.spans);
            proptest::prop_assert_eq!(fast.unclosed, slow.unclosed);
        }
    }

    #[test]
    fn text_full_of_unclosed_braces_is_read_once() {
        // Each `{` opens an object that never closes: the scan from the first
        // one knows where every later one ends (found by `props`: one scan per
        // brace took 1.1 s for 16 KB in a debug build).
        let text = "{".repeat(1 << 16) + "{\"a\": 1}";
        assert_eq!(extract_json(&text), Extracted::Json(json!({"a": 1})));
        let text = "{/*".repeat(1 << 16);
        assert!(refused(&text).contains("cut off"));
        // A brace inside what an earlier scan read as a string is scanned again.
        assert_eq!(ok("{ 'x {\"a\": 1}"), json!({"a": 1}));
    }

    #[test]
    fn escaping_leaves_text_outside_strings_alone() {
        assert_eq!(escape_control_chars_in_strings("{\n\"a\": 1\n}"), None);
        assert_eq!(
            escape_control_chars_in_strings("{'a': 'x\r\ty', \"b\": \"\\\"\n\"}").as_deref(),
            Some("{'a': 'x\\r\\ty', \"b\": \"\\\"\\n\"}")
        );
        assert_eq!(
            escape_control_chars_in_strings("{\"a\": \"x\ny\u{1}\"}").as_deref(),
            Some("{\"a\": \"x\\ny\\u0001\"}")
        );
    }
}

//! An incremental scanner of a model's streamed answer (issue 24): fed the
//! text as it arrives, it finds one array property (the first property with
//! one of its names, at any depth, whose value is an array: an outline's
//! level-1 array, or a skeleton's level-1 titles and its `summaries`) and
//! hands back each element of it as soon as the element's closing brace has
//! arrived, as strict JSON text, and tells when the array has closed (a
//! skeleton's titles are all known). Linear: every character is looked at once.
//!
//! It reads strict JSON only (double-quoted strings, backslash escapes):
//! what a model streams under a JSON schema. Prose or a fence before the
//! document is skipped; anything it cannot follow yields nothing more, and
//! the whole answer, read when it ends, stays the authority.

/// One open container: an object (with whether its next string is a key,
/// and the last key read) or an array.
#[derive(Debug, Clone)]
enum Open {
    Object {
        expect_key: bool,
        key: Option<String>,
    },
    Array,
}

#[derive(Debug, Clone)]
pub struct LevelOneScanner {
    /// Property names that hold the level-1 array (lower case).
    keys: Vec<String>,
    stack: Vec<Open>,
    in_string: bool,
    escaped: bool,
    /// The string being read (kept only while it may be a key).
    string: String,
    /// Depth of the level-1 array once found (its elements sit just inside).
    array_depth: Option<usize>,
    /// The element being read, from its opening brace.
    element: Option<String>,
    /// Elements handed back so far.
    found: usize,
    /// The level-1 array has closed: nothing more to find.
    done: bool,
}

impl LevelOneScanner {
    /// A scanner for the array held by any of `keys` (compared ignoring case).
    pub fn new(keys: &[&str]) -> LevelOneScanner {
        LevelOneScanner {
            keys: keys.iter().map(|k| k.to_lowercase()).collect(),
            stack: Vec::new(),
            in_string: false,
            escaped: false,
            string: String::new(),
            array_depth: None,
            element: None,
            found: 0,
            done: false,
        }
    }

    /// Level-1 elements handed back so far.
    pub fn found(&self) -> usize {
        self.found
    }

    /// Whether the array was found and has closed: no element follows.
    pub fn closed(&self) -> bool {
        self.done && self.array_depth.is_some()
    }

    /// Read `text` (the next piece of the answer); the level-1 elements it
    /// closed, each as (0-based index, its JSON text).
    pub fn feed(&mut self, text: &str) -> Vec<(usize, String)> {
        let mut closed = Vec::new();
        for c in text.chars() {
            if self.done {
                break;
            }
            if let Some(e) = self.element.as_mut() {
                e.push(c);
            }
            if self.in_string {
                self.string_char(c);
                continue;
            }
            match c {
                '"' => {
                    self.in_string = true;
                    self.string.clear();
                }
                '{' => self.open(Open::Object {
                    expect_key: true,
                    key: None,
                }),
                '[' => self.open(Open::Array),
                '}' | ']' => self.close(&mut closed),
                ',' => {
                    if let Some(Open::Object { expect_key, key }) = self.stack.last_mut() {
                        *expect_key = true;
                        *key = None;
                    }
                }
                _ => {}
            }
        }
        closed
    }

    fn string_char(&mut self, c: char) {
        if self.escaped {
            self.escaped = false;
            self.string.push(c);
        } else if c == '\\' {
            self.escaped = true;
        } else if c == '"' {
            self.in_string = false;
            if let Some(Open::Object { expect_key, key }) = self.stack.last_mut() {
                if *expect_key {
                    *expect_key = false;
                    *key = Some(std::mem::take(&mut self.string));
                }
            }
        } else if self.string.len() < 64 {
            // Keys are short; a long value is not kept.
            self.string.push(c);
        }
    }

    fn open(&mut self, open: Open) {
        let is_array = matches!(open, Open::Array);
        let parent_key = match self.stack.last() {
            Some(Open::Object { key: Some(k), .. }) => Some(k.to_lowercase()),
            _ => None,
        };
        self.stack.push(open);
        let depth = self.stack.len();
        match self.array_depth {
            None if is_array && parent_key.is_some_and(|k| self.keys.contains(&k)) => {
                self.array_depth = Some(depth);
            }
            Some(d) if depth == d + 1 && !is_array && self.element.is_none() => {
                self.element = Some("{".to_string());
            }
            _ => {}
        }
    }

    fn close(&mut self, closed: &mut Vec<(usize, String)>) {
        let depth = self.stack.len();
        self.stack.pop();
        match self.array_depth {
            Some(d) if depth == d + 1 => {
                if let Some(e) = self.element.take() {
                    closed.push((self.found, e));
                    self.found += 1;
                }
            }
            Some(d) if depth == d => self.done = true,
            _ => {}
        }
        if depth == 0 {
            // A stray closer: nothing sensible follows.
            self.done = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn outline() -> Value {
        json!({
            "title": "Rust {ownership} [basics]",
            "description": "a \"quoted\" brace } and bracket ] in text, a \\ backslash",
            "modules": [
                {"title": "One", "lessons": [{"title": "1.1", "activities": [{"title": "a"}]}], "note": "}]"},
                {"title": "Two \"2\"", "lessons": []},
                {"title": "Three", "modules": [{"title": "not level 1"}]}
            ],
            "learningOutcomes": ["x"]
        })
    }

    fn all(scanner: &mut LevelOneScanner, text: &str, chunk: usize) -> Vec<(usize, String)> {
        let chars: Vec<char> = text.chars().collect();
        chars
            .chunks(chunk.max(1))
            .flat_map(|c| scanner.feed(&c.iter().collect::<String>()))
            .collect()
    }

    #[test]
    fn each_level_1_element_is_handed_back_whole_once_it_closes() {
        let v = outline();
        let text = serde_json::to_string_pretty(&v).unwrap();
        let mut s = LevelOneScanner::new(&["modules", "module"]);
        let mut seen = Vec::new();
        // Byte by byte: an element comes out at its closing brace, not before.
        for (i, c) in text.char_indices() {
            for (k, e) in s.feed(&c.to_string()) {
                assert_eq!(c, '}');
                seen.push((k, e, i));
            }
        }
        assert_eq!(seen.len(), 3);
        for (k, e, _) in &seen {
            let parsed: Value = serde_json::from_str(e).unwrap();
            assert_eq!(parsed, v["modules"][*k]);
        }
        // Each as its brace arrived, the last before the answer ended.
        assert!(seen[0].2 < seen[1].2 && seen[1].2 < seen[2].2);
        assert!(seen[2].2 < text.rfind('}').unwrap());
        assert_eq!(s.found(), 3);
        assert!(s.closed());
    }

    #[test]
    fn the_array_is_closed_only_once_its_bracket_arrived() {
        let mut s = LevelOneScanner::new(&["modules"]);
        assert_eq!(
            s.feed(r#"{"modules": [{"title": "A"}, {"title": "B"}"#)
                .len(),
            2
        );
        assert!(!s.closed(), "a third element may follow");
        s.feed("]");
        assert!(s.closed());
        // A stray closer before any array ends the scan, but closes no array.
        let mut s = LevelOneScanner::new(&["modules"]);
        s.feed("}");
        assert!(!s.closed());
    }

    #[test]
    fn prose_a_fence_and_a_wrapper_around_the_document_are_skipped() {
        let inner = outline();
        let text = format!(
            "Here it is:\n```json\n{}\n```\nDone {{}}",
            json!({"course": inner})
        );
        let mut s = LevelOneScanner::new(&["Modules"]);
        let got = all(&mut s, &text, 7);
        assert_eq!(got.len(), 3);
        assert_eq!(
            serde_json::from_str::<Value>(&got[1].1).unwrap(),
            inner["modules"][1]
        );
    }

    #[test]
    fn nothing_is_handed_back_before_the_level_1_array_or_for_another_key() {
        let mut s = LevelOneScanner::new(&["chapters"]);
        assert!(all(&mut s, &outline().to_string(), 3).is_empty());
        let mut s = LevelOneScanner::new(&["modules"]);
        // Cut inside the second element: only the first is out.
        let text = outline().to_string();
        let cut = text.find("Two").unwrap();
        assert_eq!(all(&mut s, &text[..cut], 5).len(), 1);
        // A title value named like the key is not the key.
        let mut s = LevelOneScanner::new(&["modules"]);
        assert!(s.feed(r#"{"title": "modules", "x": ["#).is_empty());
        assert!(s.feed(r#"{"a": 1}]}"#).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any outline, any chunking: exactly its level-1 elements, in order, as JSON that reads back.
        #[test]
        fn any_chunking_gives_the_same_elements(
            titles in proptest::collection::vec("[a-z{}\\[\\]\"\\\\ ,:]{0,12}", 0..6),
            chunk in 1usize..40,
        ) {
            let modules: Vec<Value> = titles
                .iter()
                .map(|t| json!({"title": t, "lessons": [{"title": t}]}))
                .collect();
            let v = json!({"title": titles.join("}"), "modules": modules});
            let text = v.to_string();
            let mut s = LevelOneScanner::new(&["modules"]);
            let got = all(&mut s, &text, chunk);
            prop_assert_eq!(got.len(), modules.len());
            for (k, e) in got {
                prop_assert_eq!(serde_json::from_str::<Value>(&e).unwrap(), modules[k].clone());
            }
        }

        /// Any text at all: no panic, and nothing but objects handed back.
        #[test]
        fn any_text_is_scanned_without_a_panic(text in "[{}\\[\\]\"\\\\a-z:, ]{0,200}") {
            let mut s = LevelOneScanner::new(&["a"]);
            for (_, e) in all(&mut s, &text, 3) {
                let object = e.starts_with('{') && e.ends_with('}');
                prop_assert!(object, "{}", e);
            }
        }
    }
}

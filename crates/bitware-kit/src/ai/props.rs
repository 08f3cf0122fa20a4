//! Properties of the two parsers model text reaches, `json_extract` and the
//! JSON5 reader, over generated input (proptest, native, bounded case counts
//! so the unit layer stays fast). Examples live beside each parser; these say
//! what must hold for *any* text: an answer or an error, never a panic; JSON
//! reads as `serde_json` reads it; a document in prose is found as written.
//! A case proptest finds is kept as a plain unit test in the parser's module.

use super::json5;
use super::json_extract::{extract_json, Extracted};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// 256 cases a property (a deeper run: `PROPTEST_CASES=20000 cargo test props`).
pub(super) fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        // A failure is turned into a regression test by hand, next to its parser.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Pieces of JSON, JSON5 and prose that make parsers change state: brackets,
/// both quotes, escapes (surrogates among them), comments, numbers, words.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    "\\",
    "\\\"",
    "//",
    "/*",
    "*/",
    "\n",
    "\r",
    "\t",
    " ",
    ":",
    ",",
    "a",
    "key",
    "1",
    "-",
    "+",
    ".",
    "e",
    "0x",
    "0x1F",
    "Infinity",
    "NaN",
    "true",
    "null",
    "\\u",
    "\\ud83d",
    "\\ude00",
    "\\ud800",
    "\\u0041",
    "\\x4",
    "\\0",
    "é",
    "\u{2028}",
    "\u{feff}",
    "```json",
    "...",
    "{\"a\": 1}",
    "'b'",
    "[1, 2,]",
];

/// Text assembled from `PIECES`: far more likely than uniform text to reach
/// a parser's corners (an escape at the end, a comment inside a string).
fn jsonish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|p| p.concat())
}

/// Any JSON value, a few levels deep.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[ -~]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::vec(("[a-zA-Z_]{1,8}", value()), 0..6)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

/// Prose around a document: any text without brackets or braces (which
/// would make it hold another, possibly larger, object or wrap the document).
fn prose() -> impl Strategy<Value = String> {
    "[^{}\\[\\]]{0,80}"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_is_an_answer_or_a_reason(text in any::<String>()) {
        let _ = json5::from_str(&text);
        if let Extracted::Invalid(why) = extract_json(&text) {
            prop_assert!(!why.is_empty());
        }
    }

    #[test]
    fn jsonish_text_is_an_answer_or_a_reason(text in jsonish()) {
        let _ = json5::from_str(&text);
        if let Extracted::Invalid(why) = extract_json(&text) {
            prop_assert!(!why.is_empty());
        }
    }

    #[test]
    fn what_json5_accepts_is_a_value_serde_json_can_write(text in jsonish()) {
        if let Ok(v) = json5::from_str(&text) {
            let written = serde_json::to_string(&v).unwrap();
            prop_assert_eq!(serde_json::from_str::<Value>(&written).unwrap(), v);
        }
    }

    #[test]
    fn json_reads_as_serde_json_reads_it(v in value(), pretty in any::<bool>()) {
        let text = match pretty {
            true => serde_json::to_string_pretty(&v).unwrap(),
            false => serde_json::to_string(&v).unwrap(),
        };
        // Compared with serde_json's reading of the same text (float digits).
        let expected = serde_json::from_str::<Value>(&text).unwrap();
        prop_assert_eq!(json5::from_str(&text), Ok(expected.clone()));
        if expected.is_object() || expected.is_array() {
            prop_assert_eq!(extract_json(&text), Extracted::Json(expected));
        }
    }

    #[test]
    fn a_document_in_prose_is_that_document(
        before in prose(),
        doc in object(),
        after in prose(),
        pretty in any::<bool>(),
        fenced in any::<bool>(),
    ) {
        let written = match pretty {
            true => serde_json::to_string_pretty(&doc).unwrap(),
            false => serde_json::to_string(&doc).unwrap(),
        };
        let written = match fenced {
            true => format!("```json\n{written}\n```"),
            false => written,
        };
        let expected = serde_json::from_str::<Value>(&serde_json::to_string(&doc).unwrap()).unwrap();
        let text = format!("{before}{written}{after}");
        prop_assert_eq!(extract_json(&text), Extracted::Json(expected));
    }
}

/// 1 MB inputs of the kinds that make a scanner backtrack: nested brackets,
/// quotes, comments, all unclosed or mixed. Each must finish, and quickly;
/// the time is printed (`cargo test --release -p bitware-kit --lib
/// one_megabyte -- --nocapture`), never asserted: the scan is linear
/// (see `json_extract`'s `scan_objects`), which a quadratic one would make
/// this test hang on, not merely slow down.
#[test]
fn one_megabyte_of_brackets_quotes_and_comments() {
    const MB: usize = 1 << 20;
    let fill = |piece: &str| piece.repeat(MB / piece.len());
    let cases = [
        ("unclosed braces", fill("{")),
        ("unclosed brackets", fill("[")),
        ("braces and quotes", fill("{'")),
        ("braces in strings", fill("{\"{'")),
        ("unclosed comments", fill("{/*")),
        ("line comments", fill("{//")),
        ("escapes", fill("{\"\\")),
        ("escaped quotes", fill("'{\\'")),
        ("string literals", fill("\"{\\")),
        ("closed objects", fill("{\"a\":[1,{'b':2}]}")),
        ("deep then shallow", fill("[[[[{{{{") + &fill("}}}}]]]]")),
        ("prose", fill("it's {not} \"json\" /* */ ")),
    ];
    for (name, text) in &cases {
        let start = std::time::Instant::now();
        let answer = extract_json(text);
        let extract = start.elapsed();
        let start = std::time::Instant::now();
        let read = json5::from_str(text);
        let json5 = start.elapsed();
        eprintln!(
            "{name:>18}: {} bytes, extract_json {extract:?} ({}), json5 {json5:?} ({})",
            text.len(),
            match answer {
                Extracted::Json(_) => "json",
                Extracted::Invalid(_) => "refused",
            },
            if read.is_ok() { "ok" } else { "error" },
        );
    }
}

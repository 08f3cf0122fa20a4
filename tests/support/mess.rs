//! A corpus of messy model answers: kinds of mess a model really produces,
//! each marked recoverable (a careful reader gets the outline back exactly)
//! or not (the answer must be refused). Used natively (`tests/recovery.rs`:
//! extraction + normalisation) and end to end through the mock provider
//! (`tests/corpus.rs`).

#![allow(dead_code)]

use content_granulator::services::offline;
use content_granulator::types::rules::{Constraints, StructureRules};
use content_granulator::types::structure::{Granularity, StructureType};
use serde_json::{json, Map, Value};

pub const GRANULARITY: u8 = 3;

pub struct Case {
    pub kind: &'static str,
    pub recoverable: bool,
    /// The model's whole answer.
    pub text: String,
    /// The model stopped at its token limit.
    pub truncated: bool,
    /// The canonical outline a careful reader recovers (recoverable kinds).
    pub expected: Value,
}

type Mess = fn(StructureType, &Value) -> (String, Value);

/// (kind, recoverable, mess)
pub const KINDS: [(&str, bool, Mess); 30] = [
    ("fenced", true, fenced),
    ("prose_around", true, prose_around),
    ("xml_tags", true, xml_tags),
    ("bom_crlf", true, bom_crlf),
    ("trailing_commas", true, trailing_commas),
    ("line_comments", true, line_comments),
    ("block_comments", true, block_comments),
    ("single_quotes", true, single_quotes),
    ("unquoted_keys", true, unquoted_keys),
    ("json_in_string", true, json_in_string),
    ("json_in_string_in_prose", true, json_in_string_in_prose),
    ("snake_case_keys", true, snake_case_keys),
    ("nested_wrappers", true, nested_wrappers),
    (
        "root_fields_outside_wrapper",
        true,
        root_fields_outside_wrapper,
    ),
    ("numbers_as_strings", true, numbers_as_strings),
    (
        "single_item_lists_as_values",
        true,
        single_item_lists_as_values,
    ),
    ("lists_wrapped_in_objects", true, lists_wrapped_in_objects),
    ("reasoning_with_braces", true, reasoning_with_braces),
    ("raw_newlines_in_strings", true, raw_newlines_in_strings),
    ("json5_everything_fenced", true, json5_everything_fenced),
    ("document_in_array", true, document_in_array),
    ("truncated_stop", false, truncated),
    ("truncated_at_limit", false, truncated),
    ("no_json", false, no_json),
    ("markdown_outline", false, markdown_outline),
    ("yaml", false, yaml),
    ("wrong_shape", false, wrong_shape),
    ("empty_top_level", false, empty_top_level),
    ("nameless_items", false, nameless_items),
    ("elided_items", false, elided_items),
];

/// The outline a well-behaved model would send for `topic` (canonical).
pub fn clean_outline(t: StructureType, topic: &str) -> Value {
    let g = Granularity::new(GRANULARITY as i64).expect("granularity");
    offline::generate(
        t,
        g,
        &StructureRules::contract(t),
        &Constraints::default(),
        topic,
    )
    .to_value()
}

pub fn cases(t: StructureType, topic: &str) -> Vec<Case> {
    let clean = clean_outline(t, topic);
    KINDS
        .iter()
        .map(|(kind, recoverable, mess)| {
            let (text, expected) = mess(t, &clean);
            Case {
                kind,
                recoverable: *recoverable,
                text,
                truncated: *kind == "truncated_at_limit",
                expected,
            }
        })
        .collect()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("json")
}

fn compact(v: &Value) -> String {
    v.to_string()
}

fn same(text: String, v: &Value) -> (String, Value) {
    (text, v.clone())
}

// ---- recoverable --------------------------------------------------------------

fn fenced(_: StructureType, v: &Value) -> (String, Value) {
    same(
        format!(
            "Here is the outline you asked for:\n\n```json\n{}\n```\n\nLet me know if you want changes.",
            pretty(v)
        ),
        v,
    )
}

fn prose_around(_: StructureType, v: &Value) -> (String, Value) {
    same(
        format!(
            "Sure! Below is the structure.\n{}\nI hope this helps; every item follows the rules.",
            compact(v)
        ),
        v,
    )
}

fn xml_tags(_: StructureType, v: &Value) -> (String, Value) {
    same(format!("<outline>\n{}\n</outline>", pretty(v)), v)
}

fn bom_crlf(_: StructureType, v: &Value) -> (String, Value) {
    same(
        format!("\u{feff}{}\r\n", pretty(v).replace('\n', "\r\n")),
        v,
    )
}

/// A comma after the last member of every object and array.
fn with_trailing_commas(pretty: &str) -> String {
    let lines: Vec<&str> = pretty.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
        let closes_next = next.starts_with('}') || next.starts_with(']');
        let opens = line.ends_with('{') || line.ends_with('[');
        if closes_next && !opens {
            out.push(format!("{line},"));
        } else {
            out.push(line.to_string());
        }
    }
    out.join("\n")
}

fn trailing_commas(_: StructureType, v: &Value) -> (String, Value) {
    same(with_trailing_commas(&pretty(v)), v)
}

fn line_comments(_: StructureType, v: &Value) -> (String, Value) {
    let mut out = vec!["// Outline generated as requested".to_string()];
    for line in pretty(v).lines() {
        if line.trim_start().starts_with('{') {
            out.push(format!("{}// next item", &line[..line.len() - 1]));
        }
        if line.ends_with("\",") {
            out.push(format!("{line} // a field"));
        } else {
            out.push(line.to_string());
        }
    }
    same(out.join("\n"), v)
}

fn block_comments(_: StructureType, v: &Value) -> (String, Value) {
    let text = pretty(v)
        .lines()
        .map(|l| {
            if l.trim_start().starts_with('{') {
                l.replacen('{', "/* item */ {", 1)
            } else if l.ends_with('[') {
                format!("{l} /* the list, in order */")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    same(format!("/* outline v1 */\n{text}"), v)
}

/// JSON5 text: single-quoted strings and/or unquoted keys, optional comments
/// and trailing commas.
fn json5_text(v: &Value, single: bool, bare_keys: bool, extras: bool) -> String {
    fn quote(s: &str, single: bool) -> String {
        if !single {
            return serde_json::to_string(s).expect("json");
        }
        let mut out = String::from("'");
        for c in s.chars() {
            match c {
                '\'' => out.push_str("\\'"),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    }
    fn write(v: &Value, single: bool, bare: bool, extras: bool, indent: usize, out: &mut String) {
        let pad = "  ".repeat(indent + 1);
        let end_pad = "  ".repeat(indent);
        let comma_last = if extras { "," } else { "" };
        match v {
            Value::Object(o) => {
                out.push_str("{\n");
                if extras {
                    out.push_str(&format!("{pad}// fields\n"));
                }
                for (i, (k, val)) in o.iter().enumerate() {
                    let key = if bare { k.clone() } else { quote(k, single) };
                    out.push_str(&format!("{pad}{key}: "));
                    write(val, single, bare, extras, indent + 1, out);
                    out.push_str(if i + 1 < o.len() { ",\n" } else { comma_last });
                    if i + 1 == o.len() {
                        out.push('\n');
                    }
                }
                out.push_str(&format!("{end_pad}}}"));
            }
            Value::Array(a) if a.is_empty() => out.push_str("[]"),
            Value::Array(a) => {
                out.push_str("[\n");
                for (i, item) in a.iter().enumerate() {
                    out.push_str(&pad);
                    write(item, single, bare, extras, indent + 1, out);
                    out.push_str(if i + 1 < a.len() { ",\n" } else { comma_last });
                    if i + 1 == a.len() {
                        out.push('\n');
                    }
                }
                out.push_str(&format!("{end_pad}]"));
            }
            Value::String(s) => out.push_str(&quote(s, single)),
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, single, bare_keys, extras, 0, &mut out);
    out
}

fn single_quotes(_: StructureType, v: &Value) -> (String, Value) {
    same(json5_text(v, true, false, false), v)
}

fn unquoted_keys(_: StructureType, v: &Value) -> (String, Value) {
    same(json5_text(v, false, true, false), v)
}

fn json5_everything_fenced(_: StructureType, v: &Value) -> (String, Value) {
    same(
        format!(
            "```json5\n// Here you go\n{}\n```",
            json5_text(v, true, true, true)
        ),
        v,
    )
}

fn json_in_string(_: StructureType, v: &Value) -> (String, Value) {
    same(serde_json::to_string(&pretty(v)).expect("json"), v)
}

fn json_in_string_in_prose(_: StructureType, v: &Value) -> (String, Value) {
    same(
        format!(
            "Here is the JSON you asked for: {} (ready to use).",
            serde_json::to_string(&compact(v)).expect("json")
        ),
        v,
    )
}

fn map_keys(v: &Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, val)| (f(k), map_keys(val, f))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| map_keys(x, f)).collect()),
        other => other.clone(),
    }
}

fn snake_case_keys(_: StructureType, v: &Value) -> (String, Value) {
    let snake = |k: &str| {
        let mut out = String::new();
        for c in k.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    };
    same(pretty(&map_keys(v, &snake)), v)
}

fn nested_wrappers(t: StructureType, v: &Value) -> (String, Value) {
    same(pretty(&json!({"response": {"data": {t.as_str(): v}}})), v)
}

fn root_fields_outside_wrapper(t: StructureType, v: &Value) -> (String, Value) {
    let key = t.spec().levels[0].key;
    let mut outer = v.as_object().expect("object").clone();
    let items = outer.remove(key).expect("items");
    outer.insert("outline".into(), json!({ key: items }));
    same(pretty(&Value::Object(outer)), v)
}

fn numbers_as_strings(_: StructureType, v: &Value) -> (String, Value) {
    fn stringify(v: &Value) -> Value {
        match v {
            Value::Number(n) => Value::String(n.to_string()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, x)| (k.clone(), stringify(x))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(stringify).collect()),
            other => other.clone(),
        }
    }
    same(pretty(&stringify(v)), v)
}

fn single_item_lists_as_values(_: StructureType, v: &Value) -> (String, Value) {
    fn unlist(v: &Value) -> Value {
        match v {
            Value::Array(a) if a.len() == 1 => unlist(&a[0]),
            Value::Array(a) => Value::Array(a.iter().map(unlist).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, x)| (k.clone(), unlist(x))).collect())
            }
            other => other.clone(),
        }
    }
    same(pretty(&unlist(v)), v)
}

fn lists_wrapped_in_objects(t: StructureType, v: &Value) -> (String, Value) {
    fn wrap(t: StructureType, depth: usize, node: &Value) -> Value {
        let spec = t.spec();
        let mut o = node.as_object().cloned().unwrap_or_default();
        if let Some(level) = spec.levels.get(depth) {
            if let Some(Value::Array(items)) = o.get(level.key).cloned() {
                let inner: Vec<Value> = items.iter().map(|i| wrap(t, depth + 1, i)).collect();
                o.insert(level.key.into(), json!({ level.element_type: inner }));
            }
        }
        Value::Object(o)
    }
    same(pretty(&wrap(t, 0, v)), v)
}

fn reasoning_with_braces(t: StructureType, v: &Value) -> (String, Value) {
    let key = t.spec().levels[0].key;
    same(
        format!(
            "<thinking>\nThe schema wants {{title, {key}}}. A first sketch was {{\"draft\": true, \"{key}\": []}}; I'll expand it.\n</thinking>\n{}",
            pretty(v)
        ),
        v,
    )
}

fn raw_newlines_in_strings(_: StructureType, v: &Value) -> (String, Value) {
    const LONG: [&str; 8] = [
        "description",
        "contentOutline",
        "summary",
        "definition",
        "objective",
        "purpose",
        "premise",
        "explanation",
    ];
    fn split(v: &Value) -> Value {
        match v {
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| match x {
                        Value::String(s) if LONG.contains(&k.as_str()) && s.contains(' ') => {
                            (k.clone(), Value::String(s.replacen(' ', "\n", 1)))
                        }
                        other => (k.clone(), split(other)),
                    })
                    .collect::<Map<_, _>>(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(split).collect()),
            other => other.clone(),
        }
    }
    let expected = split(v);
    (pretty(&expected).replace("\\n", "\n"), expected)
}

fn document_in_array(_: StructureType, v: &Value) -> (String, Value) {
    same(format!("[\n{}\n]", pretty(v)), v)
}

// ---- unrecoverable ------------------------------------------------------------

fn truncated(_: StructureType, v: &Value) -> (String, Value) {
    let text = pretty(v);
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (text[..cut].to_string(), Value::Null)
}

fn no_json(_: StructureType, _: &Value) -> (String, Value) {
    (
        "I'm sorry, but I can't produce that outline right now.".into(),
        Value::Null,
    )
}

fn titles(t: StructureType, depth: usize, node: &Value, out: &mut Vec<(usize, String)>) {
    let spec = t.spec();
    let Some(level) = spec.levels.get(depth) else {
        return;
    };
    for item in node[level.key].as_array().into_iter().flatten() {
        out.push((
            depth,
            item[level.title_field].as_str().unwrap_or("").to_string(),
        ));
        titles(t, depth + 1, item, out);
    }
}

fn markdown_outline(t: StructureType, v: &Value) -> (String, Value) {
    let mut items = Vec::new();
    titles(t, 0, v, &mut items);
    let mut out = format!("# {}\n\n", v["title"].as_str().unwrap_or(""));
    for (depth, title) in items {
        match depth {
            0 => out.push_str(&format!("## {title}\n")),
            d => out.push_str(&format!("{}- {title}\n", "  ".repeat(d - 1))),
        }
    }
    (out, Value::Null)
}

fn yaml(t: StructureType, v: &Value) -> (String, Value) {
    let level = &t.spec().levels[0];
    let mut out = format!(
        "title: {}\n{}:\n",
        v["title"].as_str().unwrap_or(""),
        level.key
    );
    for item in v[level.key].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  - {}: {}\n",
            level.title_field,
            item[level.title_field].as_str().unwrap_or("")
        ));
    }
    (out, Value::Null)
}

fn wrong_shape(_: StructureType, v: &Value) -> (String, Value) {
    (
        pretty(
            &json!({"answer": format!("An outline on {}", v["title"].as_str().unwrap_or("")), "note": "see above"}),
        ),
        Value::Null,
    )
}

fn empty_top_level(t: StructureType, v: &Value) -> (String, Value) {
    let mut e = v.clone();
    e[t.spec().levels[0].key] = json!([]);
    (pretty(&e), Value::Null)
}

fn nameless_items(t: StructureType, v: &Value) -> (String, Value) {
    fn strip(t: StructureType, depth: usize, node: &mut Value) {
        let spec = t.spec();
        let Some(level) = spec.levels.get(depth) else {
            return;
        };
        for item in node[level.key].as_array_mut().into_iter().flatten() {
            if let Some(o) = item.as_object_mut() {
                o.remove(level.title_field);
            }
            strip(t, depth + 1, item);
        }
    }
    let mut e = v.clone();
    strip(t, 0, &mut e);
    (pretty(&e), Value::Null)
}

fn elided_items(t: StructureType, v: &Value) -> (String, Value) {
    let key = t.spec().levels[0].key;
    let mut e = v.clone();
    if let Some(items) = e[key].as_array_mut() {
        items.truncate(1);
        items.push(json!("__ELIDED__"));
    }
    (
        pretty(&e).replace("\"__ELIDED__\"", "... // and so on"),
        Value::Null,
    )
}

//! Normalisation of a model's JSON into the canonical shape of its type.
//!
//! Schema-aligned, in the spirit of BAML's parser: the type's spec says what
//! each place should hold, and what a model sent is coerced towards it.
//! Models rename fields (`name` for `title`, `snake_case` keys), wrap the
//! outline in one or more extra objects (`{"result": {"course": …}}`, root
//! fields left outside the wrapper), send the document inside a one-element
//! array, numbers as strings (`"12"`, `"30 minutes"`) and text as numbers, a
//! single object or string where a list is expected, a list wrapped in an
//! object (`{"module": […]}`) or items keyed by their titles. What can be
//! mapped without guessing is mapped; what cannot (no top-level items, an
//! item with no name) is an error whose text is fed back to the model.

use crate::services::ai_provider::json_extract::{extract_json, Extracted};
use crate::types::outline::{FieldValue, Node, Outline, Relationship};
use crate::types::structure::{FieldKind, FieldSpec, LevelSpec, StructureType, TypeSpec};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// How deep wrapper objects are searched for the outline.
const MAX_WRAPPER_DEPTH: usize = 3;
/// Keys that wrap a list of items rather than name an item (`{"items": […]}`).
const LIST_WRAPPERS: [&str; 6] = ["items", "item", "list", "entries", "elements", "values"];

/// Normalise `raw` into the canonical outline of `structure_type`.
/// Returns the problems that make the output unusable, worded for a model.
/// Canonical JSON normalises to itself (`Outline`'s JSON).
pub fn normalize(structure_type: StructureType, raw: &Value) -> Result<Outline, Vec<String>> {
    let spec = structure_type.spec();
    // Structured output (a tool's input, a Workers AI object) may itself be the
    // document as a JSON string.
    let decoded = match raw {
        Value::String(text) => match extract_json(text) {
            Extracted::Json(v) => Some(v),
            Extracted::Invalid(_) => None,
        },
        _ => None,
    };
    let raw = decoded.as_ref().unwrap_or(raw);
    let root = unwrap_root(spec, raw)
        .ok_or_else(|| vec!["the answer must be a JSON object".to_string()])?;
    let root = root.as_ref();
    let mut errors = Vec::new();
    let mut out = Outline::new(structure_type);
    out.root = spec
        .root_fields
        .iter()
        .map(|field| coerce(field, lookup(root, field.name, field.aliases)))
        .collect();
    let first = &spec.levels[0];
    match lookup(root, first.key, first.aliases).and_then(|v| as_items(v, first)) {
        Some(items) if !items.is_empty() => {
            out.items = normalize_level(spec, 0, &items, first.key, &mut errors);
        }
        _ => errors.push(format!("`{}` must be a non-empty array", first.key)),
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.truncate(10);
        Err(errors)
    }
}

/// The object holding the outline: the root itself, the only object of a
/// one-element array, or the first object up to `MAX_WRAPPER_DEPTH` wrappers
/// down that holds the first level (`{"result": {"course": {...}}}`). Root
/// fields left outside a wrapper (`{"title": …, "outline": {"modules": …}}`)
/// are kept where the inner object lacks them.
fn unwrap_root<'a>(spec: &TypeSpec, raw: &'a Value) -> Option<Cow<'a, Map<String, Value>>> {
    let object = match raw {
        Value::Object(object) => object,
        Value::Array(items) if items.len() == 1 => items[0].as_object()?,
        _ => return None,
    };
    let first = &spec.levels[0];
    let holds_items = |o: &Map<String, Value>| lookup(o, first.key, first.aliases).is_some();
    if holds_items(object) {
        return Some(Cow::Borrowed(object));
    }
    let Some(path) = wrapper_path(object, &holds_items, MAX_WRAPPER_DEPTH) else {
        return Some(Cow::Borrowed(object));
    };
    let mut ancestors = Vec::new();
    let mut inner = object;
    for key in path {
        ancestors.push((inner, key));
        inner = inner.get(key)?.as_object()?;
    }
    let mut merged = inner.clone();
    for (ancestor, wrapper_key) in ancestors.into_iter().rev() {
        for (k, v) in ancestor {
            if k != wrapper_key && !merged.contains_key(k) {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    Some(Cow::Owned(merged))
}

/// Keys leading from `object` to the nearest object that `found` accepts.
fn wrapper_path<'a>(
    object: &'a Map<String, Value>,
    found: &dyn Fn(&Map<String, Value>) -> bool,
    depth: usize,
) -> Option<Vec<&'a str>> {
    if depth == 0 {
        return None;
    }
    let children = object
        .iter()
        .filter_map(|(k, v)| v.as_object().map(|o| (k.as_str(), o)));
    for (key, child) in children.clone() {
        if found(child) {
            return Some(vec![key]);
        }
    }
    for (key, child) in children {
        if let Some(mut rest) = wrapper_path(child, found, depth - 1) {
            rest.insert(0, key);
            return Some(rest);
        }
    }
    None
}

/// The items of a level from whatever the model put there: a list, a single
/// item, a list wrapped in an object, or one bare title. `None` when nothing there can be items.
fn as_items<'a>(value: &'a Value, level: &LevelSpec) -> Option<Cow<'a, [Value]>> {
    match value {
        Value::Array(items) => Some(Cow::Borrowed(items.as_slice())),
        Value::String(s) if !s.trim().is_empty() => Some(Cow::Owned(vec![value.clone()])),
        Value::Object(object) => {
            if let [(key, inner)] = object.iter().collect::<Vec<_>>().as_slice() {
                let k = fold(key);
                let wrapper = k == fold(level.element_type)
                    || k == fold(level.key)
                    || level.aliases.iter().any(|a| fold(a) == k)
                    || LIST_WRAPPERS.contains(&k.as_str());
                // Even when the key is also the title field: a quiz's `{"question": […]}`.
                if wrapper && inner.is_array() {
                    return as_items(inner, level);
                }
            }
            // Otherwise one item (without a recognisable title it is reported by
            // the caller). Items keyed by their titles (`{"Basics": {…}, …}`) are
            // not taken apart: the parsed object no longer knows their order.
            Some(Cow::Owned(vec![value.clone()]))
        }
        _ => None,
    }
}

fn normalize_level(
    spec: &TypeSpec,
    depth: usize,
    items: &[Value],
    path: &str,
    errors: &mut Vec<String>,
) -> Vec<Node> {
    let level = &spec.levels[depth];
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            normalize_element(spec, depth, level, item, &format!("{path}[{i}]"), errors)
        })
        .collect()
}

fn normalize_element(
    spec: &TypeSpec,
    depth: usize,
    level: &LevelSpec,
    item: &Value,
    path: &str,
    errors: &mut Vec<String>,
) -> Node {
    let owned: Map<String, Value>;
    let object = match item {
        Value::Object(object) => object,
        // A bare string is an item named by that string.
        Value::String(s) => {
            owned = Map::from_iter([(level.title_field.to_string(), Value::String(s.clone()))]);
            &owned
        }
        _ => {
            errors.push(format!("{path} must be an object"));
            owned = Map::new();
            &owned
        }
    };
    let fields = level
        .fields
        .iter()
        .map(|field| coerce(field, lookup(object, field.name, field.aliases)))
        .collect();
    let mut out = Node::with_fields(spec.structure_type, depth, fields);
    if out.title().trim().is_empty() {
        errors.push(format!("{path} has no `{}`", level.title_field));
    }
    if let Some(child) = spec.levels.get(depth + 1) {
        let children =
            match lookup(object, child.key, child.aliases).and_then(|v| as_items(v, child)) {
                Some(items) => normalize_level(
                    spec,
                    depth + 1,
                    &items,
                    &format!("{path}.{}", child.key),
                    errors,
                ),
                None => Vec::new(),
            };
        // An empty child list is left out of the canonical JSON (`Outline`'s
        // serialisation): depth is a rule-check matter, not a shape error.
        out.children = children;
    }
    out
}

/// Find a field by its name or an alias, forgiving case and `_`/`-`.
fn lookup<'a>(object: &'a Map<String, Value>, name: &str, aliases: &[&str]) -> Option<&'a Value> {
    if let Some(v) = object.get(name) {
        return Some(v);
    }
    let wanted: Vec<String> = std::iter::once(name)
        .chain(aliases.iter().copied())
        .map(fold)
        .collect();
    object
        .iter()
        .find(|(k, v)| !v.is_null() && wanted.contains(&fold(k)))
        .map(|(_, v)| v)
}

fn fold(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-' && *c != ' ')
        .flat_map(char::to_lowercase)
        .collect()
}

fn coerce(field: &FieldSpec, value: Option<&Value>) -> FieldValue {
    match field.kind {
        FieldKind::Text => FieldValue::Text(as_text(value).unwrap_or_default()),
        FieldKind::Integer => FieldValue::Integer(as_integer(value).unwrap_or(0)),
        FieldKind::TextList | FieldKind::OptionalList => FieldValue::List(as_text_list(value)),
        FieldKind::Relationships => FieldValue::Relationships(as_relationships(value)),
    }
}

fn as_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        // Empty parts are dropped: `["", ""]` joined as "; " normalised again
        // to ";" (found by `props`: normalize was not idempotent on it).
        Value::Array(items) => {
            let parts = items
                .iter()
                .filter_map(|v| as_text(Some(v)))
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>();
            Some(parts.join("; "))
        }
        Value::Object(o) => ["title", "name", "text", "description"]
            .iter()
            .find_map(|k| o.get(*k))
            .and_then(|v| as_text(Some(v))),
        Value::Null => None,
    }
}

/// `45`, `"45"`, `"45.0"`, `"45 minutes"`, `["45"]` → 45. Negative or
/// non-numeric → None.
fn as_integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.round() as i64))
            .filter(|n| *n >= 0),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(f) = s.parse::<f64>() {
                return (f.is_finite() && f >= 0.0).then(|| f.round() as i64);
            }
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        }
        Value::Array(items) if items.len() == 1 => as_integer(items.first()),
        _ => None,
    }
}

fn as_text_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| as_text(Some(v)))
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_string()],
        // A single object where a list is expected: the one item it names.
        Some(v @ Value::Object(_)) => as_text(Some(v))
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect(),
        Some(Value::Number(_) | Value::Bool(_)) => as_text(value).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn as_relationships(value: Option<&Value>) -> Vec<Relationship> {
    let items = match value {
        Some(Value::Array(items)) => items.as_slice(),
        // One edge where a list of edges is expected.
        Some(one @ Value::Object(_)) => std::slice::from_ref(one),
        _ => return Vec::new(),
    };
    items
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|o| {
            let from = as_text(lookup(o, "from", &["source"]))?;
            let to = as_text(lookup(o, "to", &["target"]))?;
            let kind = as_text(lookup(o, "type", &["relation", "kind"]))
                .unwrap_or_else(|| "related_to".into());
            Some(Relationship { from, to, kind })
        })
        .collect()
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_aliases_and_unwraps_a_wrapper_object() {
        let raw = json!({"course": {"name": "Rust", "summary": "Learn it", "units": [
            {"name": "Basics", "lectures": [{"title": "Ownership", "outline": "moves"}]}
        ]}});
        let out = normalize(StructureType::Course, &raw).unwrap().to_value();
        assert_eq!(out["title"], "Rust");
        assert_eq!(out["description"], "Learn it");
        assert_eq!(out["modules"][0]["title"], "Basics");
        assert_eq!(out["modules"][0]["lessons"][0]["contentOutline"], "moves");
        assert_eq!(out["prerequisites"], json!([]));
    }

    #[test]
    fn coerces_numbers_and_lists() {
        let raw = json!({"title": "Q", "totalQuestions": "12", "timeLimit": "30 minutes", "categories": [
            {"name": "A", "weight": 50.4, "questions": [{"question": "Why?", "options": "yes", "points": "2"}]}
        ]});
        let out = normalize(StructureType::Quiz, &raw).unwrap().to_value();
        assert_eq!(out["totalQuestions"], 12);
        assert_eq!(out["timeLimit"], 30);
        assert_eq!(out["categories"][0]["weight"], 50);
        assert_eq!(
            out["categories"][0]["questions"][0]["options"],
            json!(["yes"])
        );
        assert_eq!(out["categories"][0]["questions"][0]["points"], 2);
    }

    #[test]
    fn missing_top_level_items_is_an_error_for_the_model() {
        let err = normalize(StructureType::Workflow, &json!({"title": "x"})).unwrap_err();
        assert_eq!(err, vec!["`phases` must be a non-empty array"]);
        for empty in [json!([]), json!(""), json!(null), json!(3)] {
            let err = normalize(
                StructureType::Workflow,
                &json!({"title": "x", "phases": empty}),
            )
            .unwrap_err();
            assert_eq!(err, vec!["`phases` must be a non-empty array"], "{empty}");
        }
        assert!(normalize(StructureType::Workflow, &json!([1, 2])).is_err());
    }

    #[test]
    fn an_item_without_a_name_is_reported_with_its_path() {
        let raw = json!({"title": "x", "phases": [{"name": "P1", "steps": [{"description": "no name"}]}]});
        let err = normalize(StructureType::Workflow, &raw).unwrap_err();
        assert_eq!(err, vec!["phases[0].steps[0] has no `name`"]);
    }

    #[test]
    fn bare_strings_become_named_items() {
        let raw = json!({"title": "m", "concepts": ["Graphs", "Trees", "Heaps"]});
        let out = normalize(StructureType::KnowledgeMap, &raw)
            .unwrap()
            .to_value();
        assert_eq!(out["concepts"][1]["name"], "Trees");
        assert_eq!(out["concepts"][1]["definition"], "");
    }

    #[test]
    fn relationships_keep_only_complete_edges() {
        let raw = json!({"title": "m", "relationships": [{"from": "a", "to": "b"}, {"from": "a"}], "concepts": ["a"]});
        let out = normalize(StructureType::KnowledgeMap, &raw)
            .unwrap()
            .to_value();
        assert_eq!(
            out["relationships"],
            json!([{"from": "a", "to": "b", "type": "related_to"}])
        );
    }
    #[test]
    fn nested_wrappers_are_unwrapped_and_outer_root_fields_kept() {
        let raw = json!({"response": {"data": {"course": {"title": "Rust", "modules": ["A", "B", "C"]}}}});
        let out = normalize(StructureType::Course, &raw).unwrap().to_value();
        assert_eq!(out["title"], "Rust");
        assert_eq!(out["modules"][2]["title"], "C");
        let split = json!({"title": "Outer", "duration": "2 weeks", "outline": {"modules": ["A"]}});
        let out = normalize(StructureType::Course, &split).unwrap().to_value();
        assert_eq!(out["title"], "Outer");
        assert_eq!(out["duration"], "2 weeks");
        assert_eq!(out["modules"][0]["title"], "A");
        // Wrappers are searched three deep, no deeper.
        let deep = json!({"a": {"b": {"c": {"d": {"modules": ["A"]}}}}});
        assert!(normalize(StructureType::Course, &deep).is_err());
        let three =
            json!({"a": {"b": {"c": {"title": "T", "modules": ["A"]}}}, "duration": "1 day"});
        let out = normalize(StructureType::Course, &three).unwrap().to_value();
        assert_eq!(
            (out["title"].as_str(), out["duration"].as_str()),
            (Some("T"), Some("1 day"))
        );
        // The inner object's own fields win over the wrapper's.
        let both = json!({"title": "Outer", "result": {"title": "Inner", "modules": ["A"]}});
        assert_eq!(
            normalize(StructureType::Course, &both).unwrap().to_value()["title"],
            "Inner"
        );
    }

    #[test]
    fn structured_output_holding_the_document_as_a_string_is_decoded() {
        let raw = json!("{\"title\": \"Q\", \"categories\": [{\"name\": \"A\"}]}");
        assert_eq!(
            normalize(StructureType::Quiz, &raw).unwrap().to_value()["categories"][0]["name"],
            "A"
        );
        assert!(normalize(StructureType::Quiz, &json!("no outline here")).is_err());
    }

    #[test]
    fn a_document_in_a_one_element_array_is_the_document() {
        let raw = json!([{"title": "Q", "categories": [{"name": "A"}]}]);
        let out = normalize(StructureType::Quiz, &raw).unwrap().to_value();
        assert_eq!(out["categories"][0]["name"], "A");
        let quiz = json!({"title": "Q", "categories": [{"name": "A"}]});
        assert!(normalize(StructureType::Quiz, &json!([quiz.clone(), quiz])).is_err());
    }

    #[test]
    fn a_single_object_where_a_list_is_expected_is_a_list_of_one() {
        let raw = json!({"title": "W", "phases": {"name": "Plan", "steps": {"name": "Draft", "tasks": {"name": "Write", "description": "d"}, "inputs": "brief", "dependsOn": {"name": "Kickoff"}}}});
        let out = normalize(StructureType::Workflow, &raw).unwrap().to_value();
        assert_eq!(out["phases"][0]["name"], "Plan");
        assert_eq!(out["phases"][0]["steps"][0]["tasks"][0]["name"], "Write");
        assert_eq!(out["phases"][0]["steps"][0]["inputs"], json!(["brief"]));
        assert_eq!(
            out["phases"][0]["steps"][0]["dependsOn"],
            json!(["Kickoff"])
        );
        let one_edge = json!({"title": "m", "relationships": {"from": "a", "to": "b", "type": "uses"}, "concepts": ["a", "b"]});
        assert_eq!(
            normalize(StructureType::KnowledgeMap, &one_edge)
                .unwrap()
                .to_value()["relationships"],
            json!([{"from": "a", "to": "b", "type": "uses"}])
        );
    }

    #[test]
    fn lists_wrapped_in_objects_are_lists() {
        let raw = json!({"title": "N", "acts": {"act": [
            {"title": "Setup", "chapters": {"items": [{"title": "One"}, {"title": "Two"}]}},
            {"title": "Turn", "chapters": {"chapter": [{"title": "Three"}]}}
        ]}});
        let out = normalize(StructureType::Novel, &raw).unwrap().to_value();
        assert_eq!(out["acts"][1]["title"], "Turn");
        assert_eq!(out["acts"][0]["chapters"][1]["title"], "Two");
        assert_eq!(out["acts"][1]["chapters"][0]["title"], "Three");
        // A wrapper named by an alias of the level; a single title for a level.
        let raw = json!({"title": "c", "modules": [{"title": "M", "lessons": {"lectures": [{"title": "L"}]}}], "description": "d"});
        let out = normalize(StructureType::Course, &raw).unwrap().to_value();
        assert_eq!(out["modules"][0]["lessons"][0]["title"], "L");
        let raw = json!({"title": "w", "phases": "Plan"});
        assert_eq!(
            normalize(StructureType::Workflow, &raw).unwrap().to_value()["phases"][0]["name"],
            "Plan"
        );
        // An item holding only its child list is not mistaken for a wrapper.
        let raw = json!({"title": "c", "modules": {"lessons": [{"title": "L"}]}});
        let err = normalize(StructureType::Course, &raw).unwrap_err();
        assert_eq!(err, vec!["modules[0] has no `title`"]);
    }

    #[test]
    fn numbers_as_strings_and_text_as_numbers() {
        let raw = json!({"title": 2024, "total_questions": "12.0", "time_limit": ["30"], "categories": [
            {"name": 7, "weight": "0.4", "questions": [{"question": "Why?", "points": " 3 "}]}
        ]});
        let out = normalize(StructureType::Quiz, &raw).unwrap().to_value();
        assert_eq!(out["title"], "2024");
        assert_eq!(out["totalQuestions"], 12);
        assert_eq!(out["timeLimit"], 30);
        assert_eq!(out["categories"][0]["name"], "7");
        assert_eq!(out["categories"][0]["weight"], 0);
        assert_eq!(out["categories"][0]["questions"][0]["points"], 3);
        assert_eq!(as_integer(Some(&json!(["3", "4"]))), None);
        assert_eq!(as_integer(Some(&json!("-4"))), None);
        assert_eq!(as_integer(Some(&json!("about 5 min"))), None);
        assert_eq!(as_integer(Some(&json!("5 min"))), Some(5));
    }

    #[test]
    fn keys_match_across_case_hyphens_spaces_and_underscores() {
        for key in [
            "learningOutcomes",
            "LEARNING_OUTCOMES",
            "learning-outcomes",
            "Learning Outcomes",
        ] {
            let raw = json!({"title": "c", key: ["x"], "modules": ["A"]});
            let out = normalize(StructureType::Course, &raw).unwrap().to_value();
            assert_eq!(out["learningOutcomes"], json!(["x"]), "{key}");
        }
    }

    #[test]
    fn text_lists_from_scalars_and_blanks() {
        let list = |v: Value| as_text_list(Some(&v));
        assert_eq!(list(json!(5)), vec!["5"]);
        assert_eq!(list(json!(true)), vec!["true"]);
        assert_eq!(list(json!("  ")), Vec::<String>::new());
        assert_eq!(list(json!(" a ")), vec!["a"]);
        assert_eq!(list(json!({"name": "Cargo"})), vec!["Cargo"]);
        assert_eq!(list(json!({"x": 1})), Vec::<String>::new());
        assert_eq!(list(json!(["a", "", 2])), vec!["a", "2"]);
    }

    #[test]
    fn text_from_a_list_drops_empty_parts_and_normalises_to_itself() {
        // Found by `props`: `["", ""]` became "; ", which normalised again to ";".
        let text = |v: Value| as_text(Some(&v));
        assert_eq!(text(json!(["", ""])).as_deref(), Some(""));
        assert_eq!(
            text(json!([" a ", "", ["b", " "]])).as_deref(),
            Some("a; b")
        );
        let raw = json!({"title": ["", ""], "acts": [{"title": "One"}]});
        let once = normalize(StructureType::Novel, &raw).unwrap();
        assert_eq!(once.title(), "");
        assert_eq!(normalize(StructureType::Novel, &once.to_value()), Ok(once));
    }
}

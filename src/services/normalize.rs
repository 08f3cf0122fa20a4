//! Normalisation of a model's JSON into the canonical shape of its type.
//!
//! Models rename fields (`name` for `title`), wrap the outline in an extra
//! object, send numbers as strings or lists as single strings. What can be
//! mapped without guessing is mapped; what cannot (no top-level items, an item
//! with no name) is an error whose text is fed back to the model.

use crate::types::structure::{FieldKind, FieldSpec, LevelSpec, StructureType, TypeSpec};
use serde_json::{Map, Value};

/// Normalise `raw` into the canonical JSON of `structure_type`.
/// Returns the problems that make the output unusable, worded for a model.
pub fn normalize(structure_type: StructureType, raw: &Value) -> Result<Value, Vec<String>> {
    let spec = structure_type.spec();
    let root = unwrap_root(spec, raw)
        .ok_or_else(|| vec!["the answer must be a JSON object".to_string()])?;
    let mut errors = Vec::new();
    let mut out = Map::new();
    for field in spec.root_fields {
        out.insert(
            field.name.to_string(),
            coerce(field, lookup(root, field.name, field.aliases)),
        );
    }
    let first = &spec.levels[0];
    match lookup(root, first.key, first.aliases) {
        Some(Value::Array(items)) if !items.is_empty() => {
            out.insert(
                first.key.to_string(),
                Value::Array(normalize_level(spec, 0, items, first.key, &mut errors)),
            );
        }
        _ => errors.push(format!("`{}` must be a non-empty array", first.key)),
    }
    if errors.is_empty() {
        Ok(Value::Object(out))
    } else {
        errors.truncate(10);
        Err(errors)
    }
}

/// Accept `{"course": {...}}`, `{"structure": {...}}` or the outline itself.
fn unwrap_root<'a>(spec: &TypeSpec, raw: &'a Value) -> Option<&'a Map<String, Value>> {
    let object = raw.as_object()?;
    let first = &spec.levels[0];
    if lookup(object, first.key, first.aliases).is_some() {
        return Some(object);
    }
    let wrappers = [
        spec.structure_type.as_str(),
        "structure",
        "outline",
        "result",
        "data",
    ];
    for key in wrappers {
        if let Some(Value::Object(inner)) = lookup(object, key, &[]) {
            return Some(inner);
        }
    }
    Some(object)
}

fn normalize_level(
    spec: &TypeSpec,
    depth: usize,
    items: &[Value],
    path: &str,
    errors: &mut Vec<String>,
) -> Vec<Value> {
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
) -> Value {
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
    let mut out = Map::new();
    for field in level.fields {
        out.insert(
            field.name.to_string(),
            coerce(field, lookup(object, field.name, field.aliases)),
        );
    }
    let title_missing = out
        .get(level.title_field)
        .and_then(Value::as_str)
        .is_none_or(|t| t.trim().is_empty());
    if title_missing {
        errors.push(format!("{path} has no `{}`", level.title_field));
    }
    if let Some(child) = spec.levels.get(depth + 1) {
        let children = match lookup(object, child.key, child.aliases) {
            Some(Value::Array(items)) => normalize_level(
                spec,
                depth + 1,
                items,
                &format!("{path}.{}", child.key),
                errors,
            ),
            _ => Vec::new(),
        };
        // An empty child list is kept out of the canonical JSON: depth is a
        // rule-check matter, not a shape error.
        if !children.is_empty() {
            out.insert(child.key.to_string(), Value::Array(children));
        }
    }
    Value::Object(out)
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

fn coerce(field: &FieldSpec, value: Option<&Value>) -> Value {
    match field.kind {
        FieldKind::Text => Value::String(as_text(value).unwrap_or_default()),
        FieldKind::Integer => Value::from(as_integer(value).unwrap_or(0)),
        FieldKind::TextList | FieldKind::OptionalList => {
            Value::Array(as_text_list(value).into_iter().map(Value::String).collect())
        }
        FieldKind::Relationships => Value::Array(as_relationships(value)),
    }
}

fn as_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => {
            let parts = items
                .iter()
                .filter_map(|v| as_text(Some(v)))
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

/// `45`, `"45"`, `"45 minutes"` → 45. Negative or non-numeric → None.
fn as_integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.round() as i64))
            .filter(|n| *n >= 0),
        Value::String(s) => {
            let digits: String = s.trim().chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        }
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
        _ => Vec::new(),
    }
}

fn as_relationships(value: Option<&Value>) -> Vec<Value> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|o| {
            let from = as_text(lookup(o, "from", &["source"]))?;
            let to = as_text(lookup(o, "to", &["target"]))?;
            let kind = as_text(lookup(o, "type", &["relation", "kind"]))
                .unwrap_or_else(|| "related_to".into());
            Some(serde_json::json!({"from": from, "to": to, "type": kind}))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_aliases_and_unwraps_a_wrapper_object() {
        let raw = json!({"course": {"name": "Rust", "summary": "Learn it", "units": [
            {"name": "Basics", "lectures": [{"title": "Ownership", "outline": "moves"}]}
        ]}});
        let out = normalize(StructureType::Course, &raw).unwrap();
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
        let out = normalize(StructureType::Quiz, &raw).unwrap();
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
        let out = normalize(StructureType::KnowledgeMap, &raw).unwrap();
        assert_eq!(out["concepts"][1]["name"], "Trees");
        assert_eq!(out["concepts"][1]["definition"], "");
    }

    #[test]
    fn relationships_keep_only_complete_edges() {
        let raw = json!({"title": "m", "relationships": [{"from": "a", "to": "b"}, {"from": "a"}], "concepts": ["a"]});
        let out = normalize(StructureType::KnowledgeMap, &raw).unwrap();
        assert_eq!(
            out["relationships"],
            json!([{"from": "a", "to": "b", "type": "related_to"}])
        );
    }
}

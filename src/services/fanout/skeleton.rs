//! The skeleton call (the outline's title and its level-1 titles with
//! summaries) and the root call (every other root field), from the
//! skeleton.

use super::{SUMMARIES, SUMMARY, TITLE};
use crate::helpers::prompts::{clean_user_text, json_schema};
use crate::services::normalize::normalize;
use crate::types::api::{MAX_AUDIENCE_CHARS, MAX_TOPIC_CHARS};
use crate::types::rules::StructureRules;
use crate::types::structure::StructureType;
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// The skeleton's strict schema: exactly `counts[0]` level-1 titles first,
/// then `summaries`, one per title in the same order (a one-line summary,
/// and, when their branches are written in parts, exactly `counts[1]` child
/// titles each), then the outline's title. Titles first: once they are all
/// in, every branch prompt's skeleton is known, and each branch starts as
/// soon as its own summary arrives (issue 24, ADR 0013). The properties are
/// also in that order alphabetically, the order a provider's serialised
/// schema has (level keys sort before `summaries`, `summaries` before `title`).
pub fn skeleton_schema(st: StructureType, counts: &[u32], parts: usize) -> Value {
    let spec = st.spec();
    let level = &spec.levels[0];
    let n = counts.first().copied().unwrap_or(level.min);
    let mut details = json!({
        "type": "object",
        "properties": {SUMMARY: {"type": "string"}},
        "required": [SUMMARY],
        "additionalProperties": false
    });
    if parts > 1 {
        let child = &spec.levels[1];
        details["properties"][child.key] = json!({
            "type": "array", "minItems": counts[1], "maxItems": counts[1],
            "items": {
                "type": "object",
                "properties": {child.title_field: {"type": "string"}},
                "required": [child.title_field],
                "additionalProperties": false
            }
        });
        details["required"] = json!([SUMMARY, child.key]);
    }
    json!({
        "type": "object",
        "properties": {
            TITLE: {"type": "string"},
            level.key: {
                "type": "array", "minItems": n, "maxItems": n,
                "items": {
                    "type": "object",
                    "properties": {level.title_field: {"type": "string"}},
                    "required": [level.title_field],
                    "additionalProperties": false
                }
            },
            SUMMARIES: {"type": "array", "minItems": n, "maxItems": n, "items": details}
        },
        "required": [level.key, SUMMARIES, TITLE],
        "additionalProperties": false
    })
}

/// The root call's strict schema: every root field but the title.
pub fn root_schema(st: StructureType, rules: &StructureRules) -> Value {
    let mut schema = json_schema(st, 0, rules);
    if let Some(props) = schema["properties"].as_object_mut() {
        props.remove(TITLE);
    }
    let required: Vec<Value> = schema["properties"]
        .as_object()
        .map(|p| p.keys().map(|k| json!(k)).collect())
        .unwrap_or_default();
    schema["required"] = Value::Array(required);
    schema
}

/// The job's own prompt, told to write the skeleton only, titles first.
pub fn skeleton_prompt(
    st: StructureType,
    job_prompt: &str,
    counts: &[u32],
    parts: usize,
) -> String {
    let spec = st.spec();
    let level = &spec.levels[0];
    let below: Vec<&str> = spec.levels[1..counts.len()].iter().map(|l| l.key).collect();
    let children = match parts > 1 {
        true => format!(
            " and the {} of its exactly {} {} (titles only, distinct across the whole outline)",
            spec.levels[1].title_field, counts[1], spec.levels[1].key
        ),
        false => String::new(),
    };
    format!(
        "{job_prompt}\n\nThis call writes the skeleton only, in this order: first exactly {n} {key}, each only its \
         {title}; then `{SUMMARIES}`: for each of the {key}, in the same order, a one-line {SUMMARY} (at most 20 words) \
         of what it covers{children}; then the {kind}'s {TITLE}. The other fields, and their {below}, are written by \
         other calls that start from this skeleton while it is still being written: make the {key} distinct, cover the \
         topic between them without overlap, and order them as a reader should meet them.\nPart: skeleton.",
        kind = st.as_str().replace('_', " "),
        n = counts.first().copied().unwrap_or(0),
        key = level.key,
        title = level.title_field,
        below = below.join(" and "),
    )
}

/// A skeleton as a branch prompt uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Skeleton {
    /// The root fields (normalised), without the level-1 list.
    pub root: Map<String, Value>,
    /// Level-1 titles and summaries, in order.
    pub nodes: Vec<(String, String)>,
    /// Each node's level-2 titles, when its branch is written in parts.
    pub children: Vec<Vec<String>>,
}

/// The chain's check of a skeleton answer: root fields normalised, exactly
/// `counts[0]` nodes, each with a title distinct from the others.
pub fn check_skeleton(
    st: StructureType,
    counts: &[u32],
    parts: usize,
    raw: &Value,
) -> Result<Value, Vec<String>> {
    let spec = st.spec();
    let level = &spec.levels[0];
    let want = counts.first().copied().unwrap_or(0) as usize;
    let mut problems = Vec::new();
    let raw = &match with_summaries(st, raw) {
        Ok(merged) => merged,
        Err(found) => {
            problems.push(format!(
                "`{SUMMARIES}` must have exactly {want} items, one per item of `{}`, it has {found}",
                level.key
            ));
            raw.clone()
        }
    };
    let normalized = normalize(st, raw)?;
    let summaries: Vec<String> = raw
        .get(level.key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|i| i[SUMMARY].as_str().unwrap_or("").trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let titles: Vec<String> = normalized
        .items
        .iter()
        .map(|i| i.title().trim().to_string())
        .collect();
    if titles.len() != want {
        problems.push(format!(
            "`{}` must have exactly {want} items, it has {}",
            level.key,
            titles.len()
        ));
    }
    let split = parts > 1;
    let child = spec.levels.get(1);
    let children: Vec<Vec<String>> = match (split, child) {
        (true, Some(_)) => normalized
            .items
            .iter()
            .map(|i| {
                i.children
                    .iter()
                    .map(|c| c.title().trim().to_string())
                    .collect()
            })
            .collect(),
        _ => Vec::new(),
    };
    if let Some(child) = child.filter(|_| split) {
        for (t, c) in titles.iter().zip(&children) {
            if c.len() != counts[1] as usize {
                problems.push(format!(
                    "`{t}` must list exactly {} {}, it lists {}",
                    counts[1],
                    child.key,
                    c.len()
                ));
            }
        }
    }
    let mut seen = HashSet::new();
    for t in titles.iter().chain(children.iter().flatten()) {
        if t.is_empty() {
            problems.push(format!(
                "every item of `{}` needs a `{}`",
                level.key, level.title_field
            ));
        } else if !seen.insert(t.to_lowercase()) {
            problems.push(format!(
                "`{}` titles must be distinct: `{t}` appears twice",
                level.key
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut out = normalized.root_value();
    let nodes: Vec<Value> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut node = json!({level.title_field: t, SUMMARY: summaries.get(i).cloned().unwrap_or_default()});
            if let (Some(child), Some(c)) = (child, children.get(i)) {
                let c: Vec<Value> = c.iter().map(|t| json!({child.title_field: t})).collect();
                node[child.key] = Value::Array(c);
            }
            node
        })
        .collect();
    out[level.key] = Value::Array(nodes);
    Ok(out)
}

/// A skeleton as its schema asks for it (the level-1 titles, then
/// `summaries` in the same order) read as one list of nodes, each with its
/// summary and child titles, as the checks and [`skeleton_of`] read it (an
/// answer with the summaries inside its nodes is read as it is). `Err` with
/// how many summaries there are when they are not one per node.
pub(super) fn with_summaries(st: StructureType, raw: &Value) -> Result<Value, usize> {
    let level = &st.spec().levels[0];
    let mut out = raw.clone();
    // The document itself, or the one object it wraps (`{"course": {…}}`).
    let holder = match out.as_object_mut() {
        Some(o) if o.contains_key(SUMMARIES) => Some(o),
        Some(o) if o.len() == 1 => o.values_mut().next().and_then(Value::as_object_mut),
        _ => None,
    };
    let Some(holder) = holder.filter(|o| o.contains_key(SUMMARIES)) else {
        return Ok(out);
    };
    let details = holder.remove(SUMMARIES).unwrap_or(Value::Null);
    let details = details.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let Some(items) = holder.get_mut(level.key).and_then(Value::as_array_mut) else {
        return Ok(out);
    };
    if details.len() != items.len() {
        return Err(details.len());
    }
    for (item, detail) in items.iter_mut().zip(details) {
        if let (Some(item), Some(detail)) = (item.as_object_mut(), detail.as_object()) {
            for (k, v) in detail {
                item.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    Ok(out)
}

/// What the root call is told: the job's shared context (as a branch is;
/// the job's whole prompt is about the levels below, which this call does
/// not write, and would cost its tokens again), then its task.
pub fn root_prompt(
    st: StructureType,
    topic: &str,
    audience: &str,
    skeleton: &Skeleton,
    calls: usize,
) -> String {
    let level = &st.spec().levels[0];
    let fields: Vec<&str> = st
        .spec()
        .root_fields
        .iter()
        .map(|f| f.name)
        .filter(|n| *n != TITLE)
        .collect();
    format!(
        "{shared}The {kind}'s {TITLE}: \"{title}\". Write only the {kind}'s {fields}, true to this skeleton (the other \
         calls write its {key}).\nPart: root.",
        shared = shared_context(st, topic, audience, skeleton, calls),
        title = skeleton.root.get(TITLE).and_then(Value::as_str).unwrap_or(""),
        kind = st.as_str().replace('_', " "),
        fields = fields.join(", "),
        key = level.key,
    )
}

/// What every branch, part and root call of one fanned-out job is told
/// first, byte for byte the same: the kind, the topic and audience (user
/// text, cleaned and wrapped as data), how many calls write it, and the
/// skeleton's level-1 titles. What is specific to a call (its position, its
/// node's summary and shape, a repair's problems) comes after it, so
/// providers can serve this prefix from their prompt cache. Not the
/// outline's own title: the skeleton writes it last, and branches start
/// before it ends (ADR 0013).
pub fn shared_context(
    st: StructureType,
    topic: &str,
    audience: &str,
    skeleton: &Skeleton,
    calls: usize,
) -> String {
    format!(
        "A {kind} outline on <topic>{topic}</topic> for <audience>{audience}</audience> is written by {calls} calls \
         at once from this fixed skeleton of its {key}:\n{list}\n\n",
        kind = st.as_str().replace('_', " "),
        topic = clean_user_text(topic, MAX_TOPIC_CHARS),
        audience = clean_user_text(audience, MAX_AUDIENCE_CHARS),
        key = st.spec().levels[0].key,
        list = numbered(skeleton),
    )
}

/// The skeleton as context: every level-1 title, numbered. Titles only:
/// a call is told its own node's summary (and level-2 titles, when it
/// writes a part) beside its task, and every call re-sends this list, so
/// the others' would cost each call their tokens again.
pub(super) fn numbered(skeleton: &Skeleton) -> String {
    skeleton
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (t, _))| format!("{}. {t}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A node's level-2 titles from the skeleton, numbered under it (a part's
/// own node: the skeleton already made them distinct across the outline).
pub(super) fn own_children(skeleton: &Skeleton, node: usize) -> String {
    skeleton
        .children
        .get(node)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(j, c)| format!("   {}.{} {c}", node + 1, j + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The chain's check of a root answer: the root fields, normalised (a
/// missing one is empty, as in a single outline).
pub fn check_root(st: StructureType, raw: &Value) -> Result<Value, Vec<String>> {
    let level = &st.spec().levels[0];
    let Some(object) = raw.as_object() else {
        return Err(vec![
            "the answer must be one JSON object of the root fields".into(),
        ]);
    };
    let mut probe = object.clone();
    probe.insert(level.key.into(), json!([{level.title_field: "probe"}]));
    let mut root = normalize(st, &Value::Object(probe))?.root_value();
    if let Some(o) = root.as_object_mut() {
        o.remove(TITLE);
    }
    Ok(root)
}

/// Read a checked skeleton back.
pub fn skeleton_of(st: StructureType, checked: &Value) -> Skeleton {
    let spec = st.spec();
    let level = &spec.levels[0];
    let mut root = checked.as_object().cloned().unwrap_or_default();
    let items = root
        .remove(level.key)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let nodes = items
        .iter()
        .map(|n| {
            (
                n[level.title_field].as_str().unwrap_or("").to_string(),
                n[SUMMARY].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let children: Vec<Vec<String>> = match spec.levels.get(1) {
        Some(child) if items.iter().any(|n| n.get(child.key).is_some()) => items
            .iter()
            .map(|n| {
                n[child.key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| c[child.title_field].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .collect(),
        _ => Vec::new(),
    };
    Skeleton {
        root,
        nodes,
        children,
    }
}

//! Parallel hierarchical generation (issue 13), the pure part: whether an
//! outline fans out, the skeleton call (the outline's title and its level-1
//! titles with one-line summaries), one branch call per level-1 node (its
//! whole subtree, with the skeleton as context), one root call for the other
//! root fields (description, outcomes…), the budget share of every call, and
//! the merge back into one canonical outline. The calls themselves run in
//! `granulator::fanout` through the provider chain.
//!
//! The skeleton is on every fanned-out outline's critical path, so it holds
//! only what the branches need; the root call runs beside the branches,
//! queued last: with more than `MAX_IN_FLIGHT` branches it fills a slot of
//! the second wave and costs no time.
//!
//! An outline's wall-clock time is its output divided by the model's token
//! rate; once its top level is fixed its branches can be written at once
//! (Skeleton-of-Thought, Ning et al. 2023), so a fanned-out outline takes
//! about one skeleton plus the slowest wave of branches.

use crate::helpers::prompts::{self, clean_user_text, json_schema};
use crate::services::ai_provider::{affordable_output_tokens, worst_case_input_tokens, Budget};
use crate::services::normalize::normalize;
use crate::types::api::{Strategy, MAX_AUDIENCE_CHARS, MAX_TOPIC_CHARS};
use crate::types::pricing::Price;
use crate::types::rules::StructureRules;
use crate::types::structure::{StructureType, TypeSpec};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// Model calls in flight at once: the Workers limit on simultaneous
/// outgoing connections per invocation.
pub const MAX_IN_FLIGHT: usize = 6;
/// `auto` fans out an outline expected to need at least this many output
/// tokens: about a minute at 100 tokens/s, where a third of the time is
/// worth the extra prompt tokens of one call per branch. Every type's default
/// at granularity 1-2 (at most ~1,700 tokens) and 3 (at most ~5,700, the
/// three-act novel) stays one call.
pub const AUTO_MIN_OUTPUT_TOKENS: u32 = 6_000;
/// The root fields of an outline, in tokens (as `TypeSpec::expected_output_tokens`).
const ROOT_TOKENS: u32 = 120;
/// The outline's title in the skeleton.
const TITLE_TOKENS: u32 = 20;
/// The root field the skeleton writes; the root call writes the others.
pub const TITLE: &str = "title";
/// A level-1 node in the skeleton: its title and a one-line summary.
const SKELETON_NODE_TOKENS: u32 = 30;
/// The extra field each skeleton node carries.
pub const SUMMARY: &str = "summary";

/// Whether a job's outline is written as a skeleton plus branches: never
/// when there is nothing below level 1 or fewer than two level-1 nodes (no
/// parallelism to gain), nor for the offline provider (it answers at once);
/// `auto` only from [`AUTO_MIN_OUTPUT_TOKENS`].
pub fn fans_out(
    strategy: Option<Strategy>,
    counts: &[u32],
    expected_output_tokens: u32,
    offline: bool,
) -> bool {
    if counts.len() < 2 || counts[0] < 2 || offline {
        return false;
    }
    match strategy.unwrap_or(Strategy::Auto) {
        Strategy::Single => false,
        Strategy::Fanout => true,
        Strategy::Auto => expected_output_tokens >= AUTO_MIN_OUTPUT_TOKENS,
    }
}

/// Output tokens of the skeleton call.
pub fn skeleton_expected_tokens(counts: &[u32]) -> u32 {
    TITLE_TOKENS + counts.first().copied().unwrap_or(0) * SKELETON_NODE_TOKENS
}

/// Output tokens of the root call.
pub fn root_expected_tokens() -> u32 {
    ROOT_TOKENS
}

/// Output tokens of one branch: its level-1 node and everything below it.
pub fn branch_expected_tokens(spec: &TypeSpec, counts: &[u32]) -> u32 {
    let mut total = spec.levels[0].output_tokens;
    let mut per_level = 1;
    for (d, n) in counts.iter().enumerate().skip(1) {
        per_level *= n;
        total += per_level * spec.levels[d].output_tokens;
    }
    total
}

/// `max_tokens` of a call expected to write `expected` tokens (the single
/// call's rule: twice the expectation plus headroom).
pub fn max_tokens_for(expected: u32) -> u32 {
    (expected * 2 + 500).clamp(1024, 16_000)
}

/// The skeleton's strict schema: the outline's title, and exactly
/// `counts[0]` level-1 nodes of a title and a summary.
pub fn skeleton_schema(st: StructureType, counts: &[u32]) -> Value {
    let level = &st.spec().levels[0];
    let n = counts.first().copied().unwrap_or(level.min);
    json!({
        "type": "object",
        "properties": {
            TITLE: {"type": "string"},
            level.key: {
                "type": "array", "minItems": n, "maxItems": n,
                "items": {
                    "type": "object",
                    "properties": {level.title_field: {"type": "string"}, SUMMARY: {"type": "string"}},
                    "required": [level.title_field, SUMMARY],
                    "additionalProperties": false
                }
            }
        },
        "required": [TITLE, level.key],
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

/// The job's own prompt, told to write the skeleton only.
pub fn skeleton_prompt(st: StructureType, job_prompt: &str, counts: &[u32]) -> String {
    let spec = st.spec();
    let level = &spec.levels[0];
    let below: Vec<&str> = spec.levels[1..counts.len()].iter().map(|l| l.key).collect();
    format!(
        "{job_prompt}\n\nThis call writes the skeleton only: the {kind}'s {TITLE}, and exactly {n} {key}, \
         each with its {title} and a one-line {SUMMARY} (at most 20 words) of what it covers. The other fields, and their \
         {below}, are written afterwards, one {element} at a time, from this skeleton: make the {key} distinct, cover the \
         topic between them without overlap, and order them as a reader should meet them.\nPart: skeleton.",
        kind = st.as_str().replace('_', " "),
        n = counts.first().copied().unwrap_or(0),
        key = level.key,
        title = level.title_field,
        below = below.join(" and "),
        element = level.element_type,
    )
}

/// A skeleton as a branch prompt uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Skeleton {
    /// The root fields (normalised), without the level-1 list.
    pub root: Map<String, Value>,
    /// Level-1 titles and summaries, in order.
    pub nodes: Vec<(String, String)>,
}

/// The chain's check of a skeleton answer: root fields normalised, exactly
/// `counts[0]` nodes, each with a title distinct from the others.
pub fn check_skeleton(
    st: StructureType,
    counts: &[u32],
    raw: &Value,
) -> Result<Value, Vec<String>> {
    let spec = st.spec();
    let level = &spec.levels[0];
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
    let titles: Vec<String> = normalized[level.key]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    i[level.title_field]
                        .as_str()
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    let want = counts.first().copied().unwrap_or(0) as usize;
    let mut problems = Vec::new();
    if titles.len() != want {
        problems.push(format!(
            "`{}` must have exactly {want} items, it has {}",
            level.key,
            titles.len()
        ));
    }
    let mut seen = HashSet::new();
    for t in &titles {
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
    let mut out = normalized;
    let nodes: Vec<Value> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| json!({level.title_field: t, SUMMARY: summaries.get(i).cloned().unwrap_or_default()}))
        .collect();
    out[level.key] = Value::Array(nodes);
    Ok(out)
}

/// What the root call is told: the job's prompt and the skeleton.
pub fn root_prompt(st: StructureType, job_prompt: &str, skeleton: &Skeleton) -> String {
    let level = &st.spec().levels[0];
    let fields: Vec<&str> = st
        .spec()
        .root_fields
        .iter()
        .map(|f| f.name)
        .filter(|n| *n != TITLE)
        .collect();
    format!(
        "{job_prompt}\n\nThe outline's skeleton is fixed: {title}\n{list}\n\nThis call writes the {kind}'s other fields only \
         ({fields}), true to the whole skeleton; its {key} are written by other calls.\nPart: root.",
        title = skeleton.root.get(TITLE).and_then(Value::as_str).unwrap_or(""),
        list = numbered(skeleton),
        kind = st.as_str().replace('_', " "),
        fields = fields.join(", "),
        key = level.key,
    )
}

fn numbered(skeleton: &Skeleton) -> String {
    skeleton
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (t, s))| format!("{}. {t}: {s}", i + 1))
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
    let mut root = normalize(st, &Value::Object(probe))?;
    if let Some(o) = root.as_object_mut() {
        o.remove(level.key);
        o.remove(TITLE);
    }
    Ok(root)
}

/// Read a checked skeleton back.
pub fn skeleton_of(st: StructureType, checked: &Value) -> Skeleton {
    let level = &st.spec().levels[0];
    let mut root = checked.as_object().cloned().unwrap_or_default();
    let nodes = root
        .remove(level.key)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|n| {
            (
                n[level.title_field].as_str().unwrap_or("").to_string(),
                n[SUMMARY].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    Skeleton { root, nodes }
}

/// A branch's strict schema: one level-1 node with its subtree.
pub fn branch_schema(st: StructureType, counts: &[u32], rules: &StructureRules) -> Value {
    let key = st.spec().levels[0].key;
    json_schema(st, counts.len(), rules)["properties"][key]["items"].clone()
}

/// Label of a call in `resource_consumption.branch`: `skeleton`, `branch 3/8`.
pub fn branch_label(index: usize, of: usize) -> String {
    format!("branch {}/{of}", index + 1)
}

/// What a branch call is told: the topic, the whole skeleton, which node it
/// writes and the shape below it. The `Branch:` and `Branch shape:` lines are
/// read by the test suite's mock as the prompt's `Target shape:` line is.
#[allow(clippy::too_many_arguments)]
pub fn branch_prompt(
    st: StructureType,
    topic: &str,
    audience: &str,
    skeleton: &Skeleton,
    index: usize,
    counts: &[u32],
    rules: &StructureRules,
    constraints: &str,
) -> String {
    let spec = st.spec();
    let level = &spec.levels[0];
    let n = skeleton.nodes.len();
    let (title, summary) = skeleton.nodes.get(index).cloned().unwrap_or_default();
    let root_title = skeleton
        .root
        .get(TITLE)
        .and_then(Value::as_str)
        .unwrap_or("");
    let shape: Vec<String> = (1..counts.len())
        .map(|d| format!("{}={}", spec.levels[d].key, counts[d]))
        .collect();
    let allowed: Vec<String> = (1..counts.len())
        .map(|d| {
            let (min, max) = rules.range(d);
            format!(
                "{min}-{max} {} per {}",
                spec.levels[d].key,
                spec.levels[d - 1].element_type
            )
        })
        .collect();
    let below: Vec<&str> = spec.levels[1..counts.len()].iter().map(|l| l.key).collect();
    format!(
        "Write one part of a {kind} outline on <topic>{topic}</topic> for <audience>{audience}</audience>. \
         Its skeleton is fixed; {n} calls like this one each write one of its {key} in full, at the same time.\n\
         Skeleton: {root_title}\n{list}\n\n\
         Write {element} {i} of {n}, \"{title}\" ({summary}), in full: every field of a {element} with exactly this {title_field}, \
         and its {below}. Cover only what belongs to this {element}: the other {key} cover their own parts. Every title \
         must be specific to this {element} and distinct from the titles above and from those the other {key} will use. \
         Answer with the {element} object itself.\n\
         Branch: {i} of {n}: {title}\nBranch shape: {shape}.\nAllowed: {allowed}.\nConstraints: {constraints}.",
        kind = st.as_str().replace('_', " "),
        topic = clean_user_text(topic, MAX_TOPIC_CHARS),
        audience = clean_user_text(audience, MAX_AUDIENCE_CHARS),
        key = level.key,
        list = numbered(skeleton),
        element = level.element_type,
        i = index + 1,
        title_field = level.title_field,
        below = below.join(" and "),
        shape = shape.join(", "),
        allowed = allowed.join("; "),
    )
}

/// The chain's check of a branch answer: normalised as a level-1 node of
/// the type, its title the skeleton's, and every group below it within the
/// level rules (an outline outside them goes back to this branch's model).
pub fn check_branch(
    st: StructureType,
    counts: &[u32],
    rules: &StructureRules,
    title: &str,
    raw: &Value,
) -> Result<Value, Vec<String>> {
    let spec = st.spec();
    let level = &spec.levels[0];
    // The node itself, or the node inside a one-key wrapper (`{"module": {…}}`).
    let node = match raw.as_object() {
        Some(o) if o.len() == 1 && !o.contains_key(level.title_field) => {
            o.values().next().cloned().unwrap_or(Value::Null)
        }
        _ => raw.clone(),
    };
    let node = match node {
        Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => other,
    };
    if !node.is_object() {
        return Err(vec![format!(
            "the answer must be one {} object",
            level.element_type
        )]);
    }
    let normalized = normalize(st, &json!({ level.key: [node] }))?;
    let mut node = normalized[level.key][0].clone();
    node[level.title_field] = json!(title);
    let mut problems = Vec::new();
    check_groups(spec, rules, counts, &node, 1, &mut problems);
    if problems.is_empty() {
        Ok(node)
    } else {
        problems.truncate(6);
        Err(problems)
    }
}

fn check_groups(
    spec: &TypeSpec,
    rules: &StructureRules,
    counts: &[u32],
    parent: &Value,
    depth: usize,
    problems: &mut Vec<String>,
) {
    if depth >= counts.len() {
        return;
    }
    let level = &spec.levels[depth];
    let items = parent[level.key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let (min, max) = rules.range(depth);
    let n = items.len() as u32;
    if !(min..=max).contains(&n) {
        let name = parent[spec.levels[depth - 1].title_field]
            .as_str()
            .unwrap_or("");
        problems.push(format!(
            "`{name}` has {n} {}; it needs {} ({min}-{max} allowed)",
            level.key, counts[depth]
        ));
    }
    for item in items {
        check_groups(spec, rules, counts, item, depth + 1, problems);
    }
}

/// One outline from the skeleton's title, the root call's fields and the
/// branches in skeleton order, root fields in the type's order; a quiz's
/// `totalQuestions` counts the merged questions.
pub fn merge(
    st: StructureType,
    skeleton: &Skeleton,
    root_fields: &Value,
    branches: Vec<Value>,
) -> Value {
    let spec = st.spec();
    let mut root = Map::new();
    for field in spec.root_fields {
        let value = match field.name {
            TITLE => skeleton.root.get(TITLE),
            name => root_fields.get(name).or(skeleton.root.get(name)),
        };
        root.insert(
            field.name.to_string(),
            value.cloned().unwrap_or(Value::Null),
        );
    }
    root.insert(spec.levels[0].key.to_string(), Value::Array(branches));
    let mut outline = Value::Object(root);
    if st == StructureType::Quiz && outline.get("totalQuestions").is_some() {
        let questions: usize = outline["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["questions"].as_array().map_or(0, Vec::len))
            .sum();
        outline["totalQuestions"] = json!(questions);
    }
    outline
}

/// Branches written at once cannot see each other's titles: a title that an
/// earlier branch already used at the same level gets its branch's name
/// (then a number). Returns how many were renamed.
pub fn dedupe_titles(st: StructureType, outline: &mut Value) -> usize {
    let spec = st.spec();
    let first = &spec.levels[0];
    let mut renamed = 0;
    let Some(nodes) = outline.get_mut(first.key).and_then(Value::as_array_mut) else {
        return 0;
    };
    let mut seen: Vec<HashSet<String>> = vec![HashSet::new(); spec.levels.len()];
    for node in nodes.iter_mut() {
        let branch = node[first.title_field].as_str().unwrap_or("").to_string();
        dedupe_below(spec, node, 1, &branch, &mut seen, &mut renamed);
    }
    renamed
}

fn dedupe_below(
    spec: &TypeSpec,
    parent: &mut Value,
    depth: usize,
    branch: &str,
    seen: &mut [HashSet<String>],
    renamed: &mut usize,
) {
    let Some(level) = spec.levels.get(depth) else {
        return;
    };
    let Some(items) = parent.get_mut(level.key).and_then(Value::as_array_mut) else {
        return;
    };
    for item in items.iter_mut() {
        if let Some(title) = item[level.title_field].as_str().map(str::to_string) {
            let mut candidate = title.clone();
            let mut k = 1;
            while !title.is_empty() && seen[depth].contains(&candidate.trim().to_lowercase()) {
                k += 1;
                candidate = if k == 2 {
                    format!("{title} ({branch})")
                } else {
                    format!("{title} ({branch}, {k})")
                };
            }
            if candidate != title {
                item[level.title_field] = json!(candidate);
                *renamed += 1;
            }
            seen[depth].insert(candidate.trim().to_lowercase());
        }
        dedupe_below(spec, item, depth + 1, branch, seen, renamed);
    }
}

/// One call of the fan-out as the budget sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallCost {
    pub input_bytes: usize,
    pub max_tokens: u32,
    pub expected_tokens: u32,
}

/// Split what is left of the job's budget between calls in flight together,
/// in proportion to each one's worst case (prompt plus `max_tokens` at the
/// first provider's price): every call then clamps its `max_tokens`, retries
/// included, to its share, so all of them together never pass the budget.
pub fn budget_shares(
    left: Option<f64>,
    price: Option<Price>,
    calls: &[CallCost],
) -> Vec<Option<f64>> {
    let Some(left) = left else {
        return vec![None; calls.len()];
    };
    let worst = |c: &CallCost| {
        let input = worst_case_input_tokens(c.input_bytes) as f64;
        let output = c.max_tokens as f64;
        match price {
            Some(p) if p.input + p.output > 0.0 => input * p.input + output * p.output,
            _ => input + output,
        }
    };
    let total: f64 = calls.iter().map(worst).sum();
    calls
        .iter()
        .map(|c| {
            Some(if total > 0.0 {
                // Floor to a micro-dollar so rounding never adds up past the budget.
                (left * worst(c) / total * 1e6).floor() / 1e6
            } else {
                left / calls.len().max(1) as f64
            })
        })
        .collect()
}

/// Whether every call can make its expected output within its share (the
/// first provider's price); if not, the job is made in one call instead.
pub fn shares_fit(
    price: Option<Price>,
    model: &str,
    shares: &[Option<f64>],
    calls: &[CallCost],
) -> bool {
    shares.iter().zip(calls).all(|(share, c)| {
        affordable_output_tokens(
            price,
            model,
            &Budget {
                limit_usd: *share,
                spent_usd: 0.0,
            },
            worst_case_input_tokens(c.input_bytes),
            c.max_tokens,
            c.expected_tokens,
        )
        .is_ok()
    })
}

/// Bytes of a branch prompt before its skeleton is known: the skeleton's
/// expected size stands in for it.
pub fn branch_input_bytes(st: StructureType, counts: &[u32], rules: &StructureRules) -> usize {
    let system = prompts::system_prompt(st).len();
    let schema = branch_schema(st, counts, rules).to_string().len();
    system + schema + 1_200 + skeleton_expected_tokens(counts) as usize * 4
}

#[cfg(test)]
mod tests;

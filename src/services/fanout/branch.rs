//! Branch calls: one level-1 node with its subtree, its schema, prompt and
//! check.

use super::{allowed_ranges, shared_context, Skeleton};
use crate::helpers::prompts::json_schema;
use crate::services::normalize::normalize;
use crate::types::outline::{Node, Outline};
use crate::types::rules::StructureRules;
use crate::types::structure::StructureType;
use serde_json::{json, Value};

/// A branch's strict schema: one level-1 node with its subtree.
pub fn branch_schema(st: StructureType, counts: &[u32], rules: &StructureRules) -> Value {
    let key = st.spec().levels[0].key;
    json_schema(st, counts.len(), rules)["properties"][key]["items"].clone()
}

/// Label of a call in `resource_consumption.branch`: `skeleton`, `branch 3/8`.
pub fn branch_label(index: usize, of: usize) -> String {
    format!("branch {}/{of}", index + 1)
}

/// What a branch call is told: the job's [`shared_context`] (the topic and
/// the whole skeleton, the same for every call of the job), then which
/// node it writes and the shape below it. The `Branch:` and `Branch shape:`
/// lines are read by the test suite's mock as the prompt's `Target shape:`
/// line is.
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
    let shape: Vec<String> = (1..counts.len())
        .map(|d| format!("{}={}", spec.levels[d].key, counts[d]))
        .collect();
    let allowed = allowed_ranges(spec, rules, counts, 1);
    let below: Vec<&str> = spec.levels[1..counts.len()].iter().map(|l| l.key).collect();
    format!(
        "{shared}Write {element} {i}, \"{title}\" ({summary}), in full: its fields, this exact {title_field}, its {below}. Only \
         its own scope; every title specific and distinct from all others. Answer with the {element} object.\n\
         Branch: {i} of {n}: {title}\nBranch shape: {shape}.\nAllowed: {allowed}.\nConstraints: {constraints}.",
        shared = shared_context(st, topic, audience, skeleton, n),
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
) -> Result<Node, Vec<String>> {
    let level = &st.spec().levels[0];
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
    let mut node = first_node(normalize(st, &json!({ level.key: [node] }))?);
    node.set_title(title.to_string());
    let mut problems = Vec::new();
    check_groups(rules, counts, &node, &mut problems);
    if problems.is_empty() {
        Ok(node)
    } else {
        problems.truncate(6);
        Err(problems)
    }
}

/// A level-1 node read from a single call's stream as soon as it closed
/// (issue 24): normalised as a node of the type, every group below it
/// within the level rules, with its own title (there is no skeleton).
pub fn check_streamed_node(
    st: StructureType,
    counts: &[u32],
    rules: &StructureRules,
    raw: &Value,
) -> Result<Node, Vec<String>> {
    let level = &st.spec().levels[0];
    if !raw.is_object() {
        return Err(vec![format!("not one {} object", level.element_type)]);
    }
    let node = first_node(normalize(st, &json!({ level.key: [raw] }))?);
    let mut problems = Vec::new();
    check_groups(rules, counts, &node, &mut problems);
    match problems.is_empty() {
        true => Ok(node),
        false => Err(problems),
    }
}

/// The one level-1 node of a normalised `{key: [node]}` (normalisation
/// refuses an outline without one).
pub(super) fn first_node(outline: Outline) -> Node {
    let st = outline.structure_type;
    outline
        .items
        .into_iter()
        .next()
        .unwrap_or_else(|| Node::new(st, 0))
}

/// Every group below `parent`, down to the depth the job asks for, within
/// its level rule.
pub(super) fn check_groups(
    rules: &StructureRules,
    counts: &[u32],
    parent: &Node,
    problems: &mut Vec<String>,
) {
    let depth = parent.depth() + 1;
    let Some(level) = parent.child_level().filter(|_| depth < counts.len()) else {
        return;
    };
    let (min, max) = rules.range(depth);
    let n = parent.children.len() as u32;
    if !(min..=max).contains(&n) {
        problems.push(format!(
            "`{}` has {n} {}; it needs {} ({min}-{max} allowed)",
            parent.title(),
            level.key,
            counts[depth]
        ));
    }
    for item in &parent.children {
        check_groups(rules, counts, item, problems);
    }
}

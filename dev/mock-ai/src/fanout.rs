//! The three kinds of request a fanned-out outline makes (issue 13), answered
//! as a model would: a skeleton request (its prompt ends `Part: skeleton.`)
//! gets the outline's title and the level-1 nodes as titles with a summary;
//! a root request (`Part: root.`) the other root fields; a branch request (`Branch: 3 of 8: <title>` and `Branch shape: lessons=4,
//! activities=3.`) gets that level-1 node with a subtree of that shape, its
//! child titles numbered from the branch's position so branches never repeat
//! each other.

use content_granulator::services::offline::{generate_branch, generate_with_counts};
use content_granulator::types::structure::{FieldKind, StructureType, TypeSpec};
use serde_json::{json, Value};

/// `(index from 0, of, title)` of a branch request.
pub fn branch_of(prompt: &str) -> Option<(u32, u32, String)> {
    let line = prompt
        .lines()
        .find_map(|l| l.trim().strip_prefix("Branch: "))?;
    let (position, title) = line.split_once(": ")?;
    let (i, n) = position.split_once(" of ")?;
    let i: u32 = i.trim().parse().ok()?;
    Some((
        i.checked_sub(1)?,
        n.trim().parse().ok()?,
        title.trim().to_string(),
    ))
}

/// Counts below level 1 from the `Branch shape:` line.
pub fn branch_shape(prompt: &str) -> Option<Vec<u32>> {
    let line = prompt
        .lines()
        .find_map(|l| l.trim().strip_prefix("Branch shape: "))?;
    line.trim_end_matches('.')
        .split(", ")
        .map(|pair| pair.split_once('=')?.1.parse().ok())
        .collect()
}

/// `(from, to, of)` of a branch written in parts (`Branch part: 2 of 2:
/// chapters 5-7 of 7.`), children counted from 0, `to` excluded.
pub fn branch_part(prompt: &str) -> Option<(u32, u32, u32)> {
    let line = prompt
        .lines()
        .find_map(|l| l.trim().strip_prefix("Branch part: "))?;
    let (_, range) = line.split_once(": ")?;
    let range = range.trim_end_matches('.');
    let (span, of) = range.rsplit_once(" of ")?;
    let (a, b) = span.rsplit_once(' ')?.1.split_once('-')?;
    let a: u32 = a.parse().ok()?;
    Some((a.checked_sub(1)?, b.parse().ok()?, of.trim().parse().ok()?))
}

/// The type whose level-2 list is a part's whole schema (`{"chapters": […]}`).
pub fn children_type(schema: &Value) -> Option<StructureType> {
    let props = schema["properties"].as_object()?;
    StructureType::ALL.into_iter().find(|t| {
        let levels = t.spec().levels;
        props.len() == 1 && levels.len() > 1 && props.contains_key(levels[1].key)
    })
}

pub fn is_skeleton(prompt: &str) -> bool {
    prompt.contains("Part: skeleton.")
}

pub fn is_root(prompt: &str) -> bool {
    prompt.contains("Part: root.")
}

/// The type whose root fields but the title a root schema lists.
pub fn root_type(schema: &Value) -> Option<StructureType> {
    let props = schema["properties"].as_object()?;
    StructureType::ALL.into_iter().find(|t| {
        let fields: Vec<&str> = t
            .spec()
            .root_fields
            .iter()
            .map(|f| f.name)
            .filter(|n| *n != "title")
            .collect();
        fields.len() == props.len() && fields.iter().all(|f| props.contains_key(*f))
    })
}

/// Every root field but the title.
pub fn root(t: StructureType, topic: &str) -> Value {
    let mut v = generate_with_counts(t, &[1], topic).to_value();
    if let Some(o) = v.as_object_mut() {
        o.remove("title");
        o.remove(t.spec().levels[0].key);
    }
    v
}

/// The type a branch schema describes: a level-1 node holding level 2.
pub fn branch_type(schema: &Value) -> Option<StructureType> {
    let props = &schema["properties"];
    StructureType::ALL.into_iter().find(|t| {
        let spec = t.spec();
        spec.levels.len() > 1
            && props.get(spec.levels[1].key).is_some()
            && spec.levels[0]
                .fields
                .iter()
                .all(|f| props.get(f.name).is_some())
    })
}

/// The title and `n` level-1 titles with summaries (and each one's level-2
/// titles when the schema asks for them: `children` of them), as the
/// skeleton's schema orders them: every level-1 title first, then
/// `summaries` in the same order, then the title (serialised, the keys sort
/// so too), so branches can start while it streams.
pub fn skeleton(t: StructureType, n: u32, children: Option<u32>, topic: &str) -> Value {
    let level = &t.spec().levels[0];
    let counts: Vec<u32> = std::iter::once(n).chain(children).collect();
    let v = generate_with_counts(t, &counts, topic).to_value();
    let items = v[level.key].as_array().cloned().unwrap_or_default();
    let titles: Vec<Value> = items
        .iter()
        .map(|node| json!({level.title_field: node[level.title_field]}))
        .collect();
    let summaries: Vec<Value> = items
        .iter()
        .map(|node| {
            let title = node[level.title_field].as_str().unwrap_or("");
            let mut out = json!({"summary": format!("What {title} covers, in one line")});
            if let Some(child) = t.spec().levels.get(1).filter(|_| children.is_some()) {
                let titles: Vec<Value> = node[child.key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| json!({child.title_field: c[child.title_field]}))
                    .collect();
                out[child.key] = Value::Array(titles);
            }
            out
        })
        .collect();
    json!({"title": v["title"], level.key: titles, "summaries": summaries})
}

/// How many level-2 titles a skeleton schema asks of each node (its branches
/// are written in parts), if any.
pub fn skeleton_children(schema: &Value) -> Option<u32> {
    schema["properties"]["summaries"]["items"]["properties"]
        .as_object()
        .and_then(|p| p.values().find_map(|v| v["maxItems"].as_u64()))
        .map(|c| c as u32)
}

/// Branch `index` of `of`: its node under `title`, with `shape` below it.
/// For a part (`from`, `to`, `of` children), just those children.
pub fn branch(
    t: StructureType,
    index: u32,
    of: u32,
    title: &str,
    shape: &[u32],
    part: Option<(u32, u32, u32)>,
    topic: &str,
) -> Value {
    let mut counts = vec![of.max(index + 1)];
    counts.extend_from_slice(shape);
    if let (Some((_, _, children)), Some(first)) = (part, counts.get_mut(1)) {
        *first = children;
    }
    let mut node = generate_branch(t, index, &counts, topic).to_value();
    node[t.spec().levels[0].title_field] = json!(title);
    if let (Some((from, to, _)), Some(child)) = (part, t.spec().levels.get(1)) {
        if let Some(items) = node[child.key].as_array() {
            let end = (to as usize).min(items.len());
            let slice = items[(from as usize).min(end)..end].to_vec();
            node[child.key] = Value::Array(slice);
        }
    }
    node
}

/// Lengthen an answer to what a model writes: each element as many tokens
/// (4 characters each) as the catalog's `output_tokens` for its level, the
/// root fields as the 120 the estimates assume (the offline generator's text
/// is about half that): a whole outline, a branch's node and its subtree, or
/// a root call's fields.
pub fn pad_to_estimate(t: StructureType, v: &mut Value, part: Part) {
    let spec = t.spec();
    match part {
        Part::Outline | Part::Root => {
            let field = spec
                .root_fields
                .iter()
                .find(|f| f.name != "title" && matches!(f.kind, FieldKind::Text))
                .map(|f| f.name);
            if let Some(field) = field {
                let own = if part == Part::Root {
                    v.to_string().len() + 40
                } else {
                    own_chars(v, spec)
                };
                pad_field(v, field, 120 * 4, own);
            }
            if part == Part::Outline {
                if let Some(items) = v.get_mut(spec.levels[0].key).and_then(Value::as_array_mut) {
                    items.iter_mut().for_each(|n| pad_node(spec, n, 0));
                }
            }
        }
        Part::Branch => pad_node(spec, v, 0),
        Part::Children => {
            if let Some(items) = spec
                .levels
                .get(1)
                .and_then(|l| v.get_mut(l.key))
                .and_then(Value::as_array_mut)
            {
                items.iter_mut().for_each(|n| pad_node(spec, n, 1));
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Part {
    Outline,
    Branch,
    /// A part's children only.
    Children,
    Root,
}

fn own_chars(v: &Value, spec: &TypeSpec) -> usize {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !spec.levels.iter().any(|l| l.key == k.as_str()))
                .map(|(k, v)| k.len() + v.to_string().len() + 4)
                .sum()
        })
        .unwrap_or(0)
}

fn pad_field(v: &mut Value, field: &str, want: usize, own: usize) {
    if let Some(Value::String(s)) = v.get_mut(field) {
        let mut filler = String::new();
        while own + filler.len() < want {
            filler.push_str(" with worked examples");
        }
        s.push_str(&filler);
    }
}

fn pad_node(spec: &TypeSpec, node: &mut Value, depth: usize) {
    let Some(level) = spec.levels.get(depth) else {
        return;
    };
    let own = own_chars(node, spec);
    pad_field(
        node,
        level.outline_field,
        level.output_tokens as usize * 4,
        own,
    );
    if let Some(child) = spec.levels.get(depth + 1) {
        if let Some(items) = node.get_mut(child.key).and_then(Value::as_array_mut) {
            items.iter_mut().for_each(|n| pad_node(spec, n, depth + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use content_granulator::services::fanout;
    use content_granulator::types::rules::StructureRules;

    #[test]
    fn branch_requests_are_read_back_from_the_prompts_the_worker_writes() {
        let st = StructureType::Course;
        let rules = StructureRules::contract(st);
        let sk = fanout::skeleton_of(
            st,
            &fanout::check_skeleton(st, &[6, 4, 2], 1, &skeleton(st, 6, None, "Rust")).unwrap(),
        );
        let prompt = fanout::branch_prompt(st, "Rust", "devs", &sk, 2, &[6, 4, 2], &rules, "none");
        let (i, n, title) = branch_of(&prompt).unwrap();
        assert_eq!((i, n, title.as_str()), (2, 6, sk.nodes[2].0.as_str()));
        assert_eq!(branch_shape(&prompt), Some(vec![4, 2]));
        assert_eq!(
            branch_type(&fanout::branch_schema(st, &[3, 4, 2], &rules)),
            Some(st)
        );
        assert!(is_skeleton(&fanout::skeleton_prompt(
            st,
            "p",
            &[6, 4, 2],
            1
        )));
        assert!(is_root(&fanout::root_prompt(st, "Rust", "devs", &sk, 3)));
        assert!(fanout::check_root(st, &root(st, "Rust")).is_ok());
        let node = branch(st, i, n, &title, &[4, 2], None, "Rust");
        let checked = fanout::check_branch(st, &[6, 4, 2], &rules, &title, &node).unwrap();
        assert_eq!(checked.to_value()["lessons"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn parts_of_a_branch_are_read_back_and_answered_with_their_slice() {
        let st = StructureType::Novel;
        let rules = StructureRules::contract(st);
        let counts = [3, 7, 4];
        let raw = skeleton(st, 3, Some(7), "Saga");
        let sk = fanout::skeleton_of(st, &fanout::check_skeleton(st, &counts, 2, &raw).unwrap());
        let pieces = fanout::pieces(&counts, 2);
        for piece in &pieces {
            let prompt =
                fanout::piece_prompt(st, "Saga", "readers", &sk, piece, &counts, &rules, "none");
            let part = branch_part(&prompt).unwrap();
            assert_eq!(part, (piece.from, piece.to, 7));
            let (i, n, title) = branch_of(&prompt).unwrap();
            let shape = branch_shape(&prompt).unwrap();
            let schema = fanout::piece_schema(st, &counts, &rules, piece);
            let node = branch(st, i, n, &title, &shape, Some(part), "Saga");
            let answer = match piece.part {
                0 => {
                    assert_eq!(branch_type(&schema), Some(st));
                    node
                }
                _ => {
                    assert_eq!(children_type(&schema), Some(st));
                    json!({"chapters": node["chapters"]})
                }
            };
            assert!(
                fanout::check_piece(st, &counts, &rules, &sk, piece, &answer).is_ok(),
                "{piece:?}"
            );
        }
    }

    #[test]
    fn every_type_with_two_levels_has_a_recognisable_branch_schema() {
        for st in StructureType::ALL {
            let rules = StructureRules::contract(st);
            assert_eq!(
                branch_type(&fanout::branch_schema(st, &[3, 2, 2], &rules)),
                Some(st),
                "{st:?}"
            );
            assert_eq!(
                root_type(&fanout::root_schema(st, &rules)),
                Some(st),
                "{st:?}"
            );
        }
    }
}

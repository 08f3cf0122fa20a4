//! Branches written in parts (issue 24, item 4: hierarchical fan-out where
//! it pays). A level-1 node whose subtree is large is written by several
//! calls at once: its level-2 children are split into parts of about equal
//! size, the first part writing the node's own fields with its children, the
//! others only their children. The skeleton then lists every level-2 title,
//! so parts know their siblings and keep apart. Whether a node is split, and
//! in how many parts, is decided from the expected tokens (`parts_per_node`).

use super::{
    allowed_ranges, branch_expected_tokens, branch_label, branch_prompt, branch_schema,
    check_branch, check_groups, first_node, own_children, shared_context, skeleton_expected_tokens,
    Skeleton,
};
use crate::services::normalize::normalize;
use crate::types::outline::Node;
use crate::types::rules::StructureRules;
use crate::types::structure::StructureType;
use serde_json::{json, Value};

/// A call's fixed time, in output tokens: a hosted model's first token
/// (~0.5 s) at its ~100 tokens/s.
const CALL_OVERHEAD_TOKENS: u32 = 50;
/// The least a part that is not its node's first writes. Each call sends the
/// job's shared context again (~550 prompt tokens, the price of ~140 output
/// tokens at a quarter of the output price): below this, a part's prompt is
/// more than half of what its writing costs.
pub const MIN_PART_TOKENS: u32 = 250;
/// Every call a split adds must take at least this many tokens off the
/// fan-out's critical path: a call's prompt costs about what ~140 output tokens do, so a part
/// that saves less time than that is not worth its price.
pub const TOKENS_SAVED_PER_CALL: u32 = 100;

/// The fan-out's critical path in output tokens, its level-1 nodes written
/// in `parts` parts: the skeleton (the last node's summary, and child titles
/// when split, come at its end), a call's first token, then the largest
/// part (the first: the node's own fields and its share of the children).
pub fn critical_path_tokens(st: StructureType, counts: &[u32], parts: usize) -> u32 {
    let spec = st.spec();
    let own = spec.levels[0].output_tokens;
    let children = counts.get(1).copied().unwrap_or(0).max(1);
    let below = branch_expected_tokens(spec, counts).saturating_sub(own);
    let first = below * children.div_ceil(parts.max(1) as u32) / children;
    skeleton_expected_tokens(counts, parts) + CALL_OVERHEAD_TOKENS + own + first
}

/// Parts each level-1 node is written in: 1 (one call per node) unless
/// splitting pays — the skeleton grows by every child title, each part is
/// shorter — taking [`TOKENS_SAVED_PER_CALL`] off the critical path for
/// every call added over the next fewer parts, with every part writing at
/// least [`MIN_PART_TOKENS`], at most one part per level-2 child, and every
/// piece streaming at once with the skeleton within `max_calls` (the root
/// call starts once the skeleton has ended).
pub fn parts_per_node(st: StructureType, counts: &[u32], max_calls: usize) -> usize {
    let (nodes, children) = match counts {
        [n, c, ..] if *n > 0 => (*n as usize, *c),
        _ => return 1,
    };
    let spec = st.spec();
    let below = branch_expected_tokens(spec, counts).saturating_sub(spec.levels[0].output_tokens);
    let room = max_calls.saturating_sub(1) / nodes;
    let path = |k: usize| critical_path_tokens(st, counts, k);
    let mut best = 1;
    for k in 2..=(children as usize).min(room) {
        if below * (children / k as u32) / children < MIN_PART_TOKENS {
            break;
        }
        let added = (nodes * (k - best)) as u32;
        if path(k) + added * TOKENS_SAVED_PER_CALL <= path(best) {
            best = k;
        }
    }
    best
}

/// The parts a fan-out is written in, given what its budget pays (`priced`:
/// `Some` when every call's worst case fits its share): the split, else one
/// call per node (fewer calls in all, a shorter skeleton), else none — the
/// outline is then made in one call.
pub fn within_budget<T>(
    split: usize,
    mut priced: impl FnMut(usize) -> Option<T>,
) -> Option<(usize, T)> {
    let tries: &[usize] = if split > 1 { &[split, 1] } else { &[1] };
    tries
        .iter()
        .find_map(|&parts| priced(parts).map(|t| (parts, t)))
}

/// One call's share of the branches: level-1 node `node` (of `nodes`) and
/// its level-2 children `from..to` (of `of`), part `part` of `parts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub node: usize,
    pub nodes: usize,
    pub from: u32,
    pub to: u32,
    pub of: u32,
    pub part: usize,
    pub parts: usize,
}

impl Piece {
    pub fn size(&self) -> u32 {
        self.to - self.from
    }
    /// `branch 2/3`, or `branch 2/3 part 1/2` for a node written in parts.
    pub fn label(&self) -> String {
        match self.parts {
            1 => branch_label(self.node, self.nodes),
            k => format!(
                "{} part {}/{k}",
                branch_label(self.node, self.nodes),
                self.part + 1
            ),
        }
    }
}

/// Every call of the branches, node by node, each in `parts` parts (1: the
/// whole node; never more parts than it has children), in order.
pub fn pieces(counts: &[u32], parts: usize) -> Vec<Piece> {
    let nodes = counts.first().copied().unwrap_or(0) as usize;
    let of = counts.get(1).copied().unwrap_or(0);
    let parts = parts.clamp(1, (of as usize).max(1));
    let mut out = Vec::new();
    for node in 0..nodes {
        for part in 0..parts {
            // Balanced: the first parts take one more child when it does not divide.
            let at = |p: usize| (of as usize * p).div_ceil(parts) as u32;
            out.push(Piece {
                node,
                nodes,
                from: at(part),
                to: at(part + 1),
                of,
                part,
                parts,
            });
        }
    }
    out
}

/// Output tokens of a piece, given its whole branch's.
pub fn piece_expected_tokens(st: StructureType, piece: &Piece, branch: u32) -> u32 {
    if piece.parts == 1 {
        return branch;
    }
    let own = st.spec().levels[0].output_tokens;
    let below = branch.saturating_sub(own) * piece.size() / piece.of.max(1);
    if piece.part == 0 {
        own + below
    } else {
        below
    }
}

/// A piece's strict schema: the node with exactly its children (first
/// part), or an object of just its children.
pub fn piece_schema(
    st: StructureType,
    counts: &[u32],
    rules: &StructureRules,
    piece: &Piece,
) -> Value {
    let mut node = branch_schema(st, counts, rules);
    if piece.parts == 1 {
        return node;
    }
    let child = &st.spec().levels[1];
    let children = &mut node["properties"][child.key];
    children["minItems"] = json!(piece.size());
    children["maxItems"] = json!(piece.size());
    if piece.part == 0 {
        return node;
    }
    json!({
        "type": "object",
        "properties": {child.key: node["properties"][child.key].clone()},
        "required": [child.key],
        "additionalProperties": false
    })
}

/// What a piece's call is told (a whole node's is [`branch_prompt`]): the
/// job's [`shared_context`], then its node's level-2 titles and its task.
/// The `Branch part:` line tells the test suite's mock which children it
/// writes.
#[allow(clippy::too_many_arguments)]
pub fn piece_prompt(
    st: StructureType,
    topic: &str,
    audience: &str,
    skeleton: &Skeleton,
    piece: &Piece,
    counts: &[u32],
    rules: &StructureRules,
    constraints: &str,
) -> String {
    if piece.parts == 1 {
        return branch_prompt(
            st,
            topic,
            audience,
            skeleton,
            piece.node,
            counts,
            rules,
            constraints,
        );
    }
    let spec = st.spec();
    let (level, child) = (&spec.levels[0], &spec.levels[1]);
    let (title, summary) = skeleton.nodes.get(piece.node).cloned().unwrap_or_default();
    let titles: Vec<String> = skeleton
        .children
        .get(piece.node)
        .map(|c| {
            c[piece.from as usize..piece.to as usize]
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect()
        })
        .unwrap_or_default();
    let mut shape = vec![format!("{}={}", child.key, piece.size())];
    shape.extend((2..counts.len()).map(|d| format!("{}={}", spec.levels[d].key, counts[d])));
    let allowed = allowed_ranges(spec, rules, counts, 2);
    let below: Vec<&str> = spec.levels[2..counts.len()].iter().map(|l| l.key).collect();
    let with_below = match below.is_empty() {
        true => String::new(),
        false => format!(", each with its {}", below.join(" and ")),
    };
    let (i, n, a, b, of) = (
        piece.node + 1,
        piece.nodes,
        piece.from + 1,
        piece.to,
        piece.of,
    );
    let titles = titles.join(", ");
    let task = match piece.part {
        0 => format!(
            "Write {element} {i}, \"{title}\" ({summary}): its fields, this exact {tf}, and only its {key} {a}-{b} of \
             {of}, these titles in order: {titles}{with_below}. Answer with the {element} object.",
            element = level.element_type,
            tf = level.title_field,
            key = child.key,
        ),
        _ => format!(
            "Write only {key} {a}-{b} of {of} of {element} {i}, \"{title}\" ({summary}), these titles in order: \
             {titles}{with_below}. Answer with an object holding just `{key}`.",
            element = level.element_type,
            key = child.key,
        ),
    };
    format!(
        "{shared}{element} {i}'s {key}:\n{children}\n\n\
         {task} Every title specific and distinct from all others.\n\
         Branch: {i} of {n}: {title}\nBranch part: {p} of {k}: {key} {a}-{b} of {of}.\nBranch shape: {shape}.\n\
         Allowed: {allowed}.\nConstraints: {constraints}.",
        shared = shared_context(st, topic, audience, skeleton, piece.nodes * piece.parts),
        element = capitalised(level.element_type),
        children = own_children(skeleton, piece.node),
        p = piece.part + 1,
        k = piece.parts,
        key = child.key,
        shape = shape.join(", "),
        allowed = if allowed.is_empty() { "as the schema says".to_string() } else { allowed.join("; ") },
    )
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A piece's checked answer: a whole node (a branch, or a node's first part
/// with its own fields), or the children a node's later part wrote.
#[derive(Debug, Clone, PartialEq)]
pub enum PieceAnswer {
    Node(Node),
    Children(Vec<Node>),
}

/// The chain's check of a piece's answer: a whole node as [`check_branch`];
/// a part's children exactly as many as asked, titled as the skeleton says,
/// every group below them within the level rules.
pub fn check_piece(
    st: StructureType,
    counts: &[u32],
    rules: &StructureRules,
    skeleton: &Skeleton,
    piece: &Piece,
    raw: &Value,
) -> Result<PieceAnswer, Vec<String>> {
    let spec = st.spec();
    let (level, child) = (&spec.levels[0], spec.levels.get(1));
    let title = skeleton
        .nodes
        .get(piece.node)
        .map(|n| n.0.as_str())
        .unwrap_or("");
    let (Some(child), true) = (child, piece.parts > 1) else {
        return check_branch(st, counts, rules, title, raw).map(PieceAnswer::Node);
    };
    let node = match piece.part {
        0 => match raw.as_object() {
            Some(o) if o.len() == 1 && !o.contains_key(level.title_field) => {
                o.values().next().cloned()
            }
            _ => Some(raw.clone()),
        },
        // Just the children: `{"chapters": […]}`, the bare list, or one wrapper around either.
        _ => {
            let list = match raw {
                Value::Array(_) => Some(raw.clone()),
                Value::Object(o) => o
                    .get(child.key)
                    .cloned()
                    .or_else(|| (o.len() == 1).then(|| o.values().next().cloned()).flatten()),
                _ => None,
            };
            list.filter(Value::is_array)
                .map(|l| json!({level.title_field: title, child.key: l}))
        }
    };
    let Some(node) = node.filter(Value::is_object) else {
        return Err(vec![format!(
            "the answer must be one object holding `{}`",
            child.key
        )]);
    };
    let mut node = first_node(normalize(st, &json!({ level.key: [node] }))?);
    node.set_title(title.to_string());
    let names = skeleton
        .children
        .get(piece.node)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut problems = Vec::new();
    let items = std::mem::take(&mut node.children);
    if items.len() != piece.size() as usize {
        problems.push(format!(
            "`{}` must have exactly {} items, it has {}",
            child.key,
            piece.size(),
            items.len()
        ));
    }
    let items: Vec<Node> = items
        .into_iter()
        .enumerate()
        .map(|(j, mut item)| {
            if let Some(name) = names.get(piece.from as usize + j) {
                item.set_title(name.clone());
            }
            check_groups(rules, counts, &item, &mut problems);
            item
        })
        .collect();
    if !problems.is_empty() {
        problems.truncate(6);
        return Err(problems);
    }
    Ok(match piece.part {
        0 => {
            node.children = items;
            PieceAnswer::Node(node)
        }
        _ => PieceAnswer::Children(items),
    })
}

/// The level-1 nodes from the pieces' checked answers, in order: a node's
/// first part, then the children of its other parts.
pub fn assemble(answers: Vec<PieceAnswer>) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for answer in answers {
        match (answer, nodes.last_mut()) {
            (PieceAnswer::Node(node), _) => nodes.push(node),
            (PieceAnswer::Children(more), Some(node)) => node.children.extend(more),
            // A later part comes after its node's first: nothing to add it to.
            (PieceAnswer::Children(_), None) => {}
        }
    }
    nodes
}

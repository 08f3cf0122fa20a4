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
//! started last. Every call of a fan-out streams at once, up to the
//! provider chain's `max_calls_at_once` (the platform only limits the
//! connections waiting for their headers to six: `ai::gate`, ADR 0015).
//!
//! An outline's wall-clock time is its output divided by the model's token
//! rate; once its top level is fixed its branches can be written at once
//! (Skeleton-of-Thought, Ning et al. 2023), so a fanned-out outline takes
//! about one skeleton plus the slowest wave of branches.

mod branch;
mod budget;
mod pieces;
mod skeleton;
mod streamed;

pub use branch::*;
pub use budget::*;
pub use pieces::*;
pub use skeleton::*;
pub use streamed::*;

use crate::services::outline::quiz_questions;
use crate::types::api::Strategy;
use crate::types::outline::{Node, Outline};
use crate::types::rules::StructureRules;
use crate::types::structure::{StructureType, TypeSpec};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// `auto` fans out an outline expected to need at least this many output
/// tokens: 80 s at 50 tokens/s, where one call would come close to
/// outlasting the Resource Manager's 92 s of tries (ADR 0015). Every type at
/// granularity 1-2 (at most ~1,700 tokens) and every type but the novel at
/// 3 stays one call.
pub const AUTO_MIN_OUTPUT_TOKENS: u32 = 4_000;
/// The root fields of an outline, in tokens (as `TypeSpec::expected_output_tokens`).
const ROOT_TOKENS: u32 = 120;
/// The outline's title in the skeleton.
const TITLE_TOKENS: u32 = 20;
/// The root field the skeleton writes; the root call writes the others.
pub const TITLE: &str = "title";
/// A level-1 node in the skeleton: its title and a one-line summary.
const SKELETON_NODE_TOKENS: u32 = 30;
/// A level-2 title in the skeleton.
const CHILD_TITLE_TOKENS: u32 = 12;
/// The extra field each skeleton node carries.
pub const SUMMARY: &str = "summary";
/// The skeleton's list of its nodes' summaries, written after their titles.
pub const SUMMARIES: &str = "summaries";

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

/// Output tokens of the skeleton call (with its child titles when the
/// branches are written in parts).
pub fn skeleton_expected_tokens(counts: &[u32], parts: usize) -> u32 {
    let n = counts.first().copied().unwrap_or(0);
    let children = match parts > 1 {
        true => n * counts[1] * CHILD_TITLE_TOKENS,
        false => 0,
    };
    TITLE_TOKENS + n * SKELETON_NODE_TOKENS + children
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
/// The level rules a branch or part must keep, from depth `from` down:
/// `2-4 lessons per module`, … (the mock and the model read the same line).
fn allowed_ranges(
    spec: &TypeSpec,
    rules: &StructureRules,
    counts: &[u32],
    from: usize,
) -> Vec<String> {
    (from..counts.len())
        .map(|d| {
            let (min, max) = rules.range(d);
            format!(
                "{min}-{max} {} per {}",
                spec.levels[d].key,
                spec.levels[d - 1].element_type
            )
        })
        .collect()
}

pub fn max_tokens_for(expected: u32) -> u32 {
    (expected * 2 + 500).clamp(1024, 16_000)
}

/// One outline from the skeleton's title, the root call's fields and the
/// branches in skeleton order (a missing root field is empty, as in a single
/// outline); a quiz's `totalQuestions` counts the merged questions.
pub fn merge(
    st: StructureType,
    skeleton: &Skeleton,
    root_fields: &Value,
    branches: Vec<Node>,
) -> Outline {
    let spec = st.spec();
    let mut root = Map::new();
    for field in spec.root_fields {
        let value = match field.name {
            TITLE => skeleton.root.get(TITLE),
            name => root_fields.get(name).or(skeleton.root.get(name)),
        };
        if let Some(v) = value {
            root.insert(field.name.to_string(), v.clone());
        }
    }
    let mut outline = Outline::from_root_value(st, &Value::Object(root), branches);
    if st == StructureType::Quiz {
        let questions = quiz_questions(&outline) as i64;
        outline.set_integer("totalQuestions", questions);
    }
    outline
}

/// Branches written at once cannot see each other's titles: a title that a
/// branch already final used at the same level gets its branch's name (then
/// a number). Titles are claimed as branches become final, so a branch is
/// never renamed after it was shown (issue 24): the merge changes nothing.
#[derive(Debug, Clone)]
pub struct TitlesSeen {
    /// Lower-cased titles per depth (level 2 is depth 1).
    seen: Vec<HashSet<String>>,
}

impl TitlesSeen {
    pub fn new(levels: usize) -> TitlesSeen {
        TitlesSeen {
            seen: vec![HashSet::new(); levels],
        }
    }

    /// Rename in `node`'s subtree the titles an earlier claimed branch used
    /// at the same level, and claim its titles. Returns how many were renamed.
    pub fn claim(&mut self, node: &mut Node) -> usize {
        let mut renamed = 0;
        let branch = node.title().to_string();
        dedupe_below(&mut node.children, 1, &branch, &mut self.seen, &mut renamed);
        renamed
    }
}

/// [`TitlesSeen`] over a whole outline, its branches claimed in order.
/// Returns how many titles were renamed.
pub fn dedupe_titles(outline: &mut Outline) -> usize {
    let mut seen = TitlesSeen::new(outline.spec().levels.len());
    outline.items.iter_mut().map(|node| seen.claim(node)).sum()
}

fn dedupe_below(
    items: &mut [Node],
    depth: usize,
    branch: &str,
    seen: &mut [HashSet<String>],
    renamed: &mut usize,
) {
    if depth >= seen.len() {
        return;
    }
    for item in items.iter_mut() {
        let title = item.title().to_string();
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
        seen[depth].insert(candidate.trim().to_lowercase());
        if candidate != title {
            item.set_title(candidate);
            *renamed += 1;
        }
        dedupe_below(&mut item.children, depth + 1, branch, seen, renamed);
    }
}

#[cfg(test)]
mod tests;

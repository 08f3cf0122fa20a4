//! What a job writes and in which model calls: the outline walked in its
//! canonical shape into elements (each with a target length and a priority),
//! grouped into batches (one call each) that fit an output-token ceiling.

use crate::types::request::GenerateJob;
use crate::types::structure::{LevelSpec, StructureType};
use bitware_kit::error::{AppError, AppResult, Kind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Output tokens a written word costs (English prose, with markup).
pub const TOKENS_PER_WORD: f64 = 1.35;
/// Output tokens an element costs beyond its words: its `{"path", "content"}` wrapper.
pub const TOKENS_PER_ELEMENT: u32 = 40;
/// The path of the root element (the overview of the whole outline).
pub const ROOT_PATH: &str = "root";

/// Required elements count towards coverage; optional ones
/// (`contentSpecs.optionalSections`) may be skipped (`includeOptional: false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Required,
    Optional,
}

/// One piece of content to write: the root or a node of the outline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Element {
    /// `root`, or the node's JSON path in the outline (`modules.0.lessons.2`).
    pub path: String,
    /// 0 for the root, 1..=3 for the levels.
    pub level: u8,
    /// `module`, `lesson`, `question`, ...; the structure type for the root.
    pub element_type: String,
    pub title: String,
    /// Its `wordCountEstimates.bySection` key.
    pub section: String,
    pub priority: Priority,
    pub target_words: u32,
    /// The position of its level-1 node; `None` for the root.
    pub branch: Option<usize>,
}

impl Element {
    /// What a model is expected to write for it, in output tokens.
    pub fn expected_tokens(&self) -> u32 {
        ((f64::from(self.target_words) * TOKENS_PER_WORD).ceil() as u32)
            .saturating_add(TOKENS_PER_ELEMENT)
    }
}

/// One model call: consecutive elements of one branch (or the root).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    pub index: usize,
    /// The level-1 position its elements belong to; `None` for the root's.
    pub branch: Option<usize>,
    pub paths: Vec<String>,
    pub expected_tokens: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// In outline order: the root, then each branch depth-first.
    pub elements: Vec<Element>,
    pub batches: Vec<Batch>,
    pub expected_output_tokens: u32,
}

impl Plan {
    pub fn element(&self, path: &str) -> Option<&Element> {
        self.elements.iter().find(|e| e.path == path)
    }
}

/// A node of the outline as walked, before targets and priorities.
struct Node<'a> {
    path: String,
    level: u8,
    value: &'a Value,
    branch: Option<usize>,
    spec: Option<&'static LevelSpec>,
}

fn invalid(path: &str, message: String) -> AppError {
    AppError::new(Kind::Unprocessable, "invalid_structure", message)
        .with_details(json!({"path": path}))
}

/// The outline's nodes, depth-first, after checking its canonical shape:
/// the type's level-1 key a non-empty list, every node an object, every
/// children key (when present) a list.
fn walk(t: StructureType, structure: &Value) -> AppResult<Vec<Node<'_>>> {
    let spec = t.spec();
    if !structure.is_object() {
        return Err(invalid(
            ROOT_PATH,
            format!("the {t} structure must be an object"),
        ));
    }
    let first = &spec.levels[0];
    match structure.get(first.key) {
        Some(Value::Array(items)) if !items.is_empty() => {}
        _ => {
            return Err(invalid(
                first.key,
                format!(
                    "the {t} structure has no `{}`: a non-empty list is required",
                    first.key
                ),
            ))
        }
    }
    let mut nodes = vec![Node {
        path: ROOT_PATH.into(),
        level: 0,
        value: structure,
        branch: None,
        spec: None,
    }];
    fn descend<'a>(
        levels: &'static [LevelSpec],
        depth: usize,
        parent: &'a Value,
        prefix: &str,
        branch: Option<usize>,
        out: &mut Vec<Node<'a>>,
    ) -> AppResult<()> {
        let Some(level) = levels.get(depth) else {
            return Ok(());
        };
        let children = match parent.get(level.key) {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::Array(items)) => items,
            Some(_) => {
                let path = format!("{prefix}{}", level.key);
                return Err(invalid(&path, format!("`{path}` must be a list")));
            }
        };
        for (i, child) in children.iter().enumerate() {
            let path = format!("{prefix}{}.{i}", level.key);
            if !child.is_object() {
                return Err(invalid(
                    &path,
                    format!("`{path}` must be an object (a {})", level.element_type),
                ));
            }
            out.push(Node {
                path: path.clone(),
                level: depth as u8 + 1,
                value: child,
                branch: Some(branch.unwrap_or(i)),
                spec: Some(level),
            });
            descend(
                levels,
                depth + 1,
                child,
                &format!("{path}."),
                Some(branch.unwrap_or(i)),
                out,
            )?;
        }
        Ok(())
    }
    descend(spec.levels, 0, structure, "", None, &mut nodes)?;
    Ok(nodes)
}

/// The text that names a node: its level's title field, else a common one.
fn title_of(node: &Value, field: &str) -> String {
    [field, "title", "name", "question", "description"]
        .iter()
        .find_map(|f| node.get(*f).and_then(Value::as_str))
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn sections(job: &GenerateJob, key: &str) -> BTreeSet<String> {
    job.content_metadata["contentSpecs"][key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The job's elements and batches. Targets: `bySection[section]` shared
/// evenly by that section's elements (a section the estimates lack, or give
/// no words, takes the level's default per element). Optional elements are
/// left out when `include_optional` is false. `max_batch_tokens` is the
/// expected output of one call at most (one element over it goes alone).
pub fn plan(job: &GenerateJob, structure: &Value, max_batch_tokens: u32) -> AppResult<Plan> {
    let t = job.structure_type;
    let spec = t.spec();
    let nodes = walk(t, structure)?;
    let section_of = |n: &Node<'_>| n.spec.map_or(spec.root_section, |l| l.section);
    let mut per_section: BTreeMap<&str, u32> = BTreeMap::new();
    for n in &nodes {
        *per_section.entry(section_of(n)).or_default() += 1;
    }
    let by_section = &job.word_count_estimates["bySection"];
    let required = sections(job, "requiredSections");
    let optional = sections(job, "optionalSections");
    let elements: Vec<Element> = nodes
        .iter()
        .map(|n| {
            let section = section_of(n);
            let default = n.spec.map_or(spec.root_default_words, |l| l.default_words);
            let target_words = match by_section[section].as_u64() {
                Some(words) if words > 0 => {
                    let share = per_section.get(section).copied().unwrap_or(1);
                    (words as f64 / f64::from(share)).round() as u32
                }
                _ => default,
            };
            let priority = if optional.contains(section) && !required.contains(section) {
                Priority::Optional
            } else {
                Priority::Required
            };
            Element {
                path: n.path.clone(),
                level: n.level,
                element_type: n.spec.map_or(t.as_str(), |l| l.element_type).to_string(),
                title: title_of(n.value, n.spec.map_or("title", |l| l.title_field)),
                section: section.to_string(),
                priority,
                target_words,
                branch: n.branch,
            }
        })
        .filter(|e| job.include_optional || e.priority == Priority::Required)
        .collect();
    let batches = batches(&elements, max_batch_tokens);
    let expected_output_tokens = batches
        .iter()
        .map(|b| b.expected_tokens)
        .fold(0, u32::saturating_add);
    Ok(Plan {
        elements,
        batches,
        expected_output_tokens,
    })
}

/// One batch for the root, then one per branch, split into consecutive
/// parts where a branch's expected output exceeds `max_tokens`: each part
/// holds whole level-2 subtrees where they fit (the level-1 node goes in the
/// first), a subtree too large alone is split between its elements.
fn batches(elements: &[Element], max_tokens: u32) -> Vec<Batch> {
    // Units: the root; per branch its level-1 node, then each level-2 subtree.
    let mut groups: Vec<(Option<usize>, Vec<Vec<&Element>>)> = Vec::new();
    for e in elements {
        match groups.last_mut() {
            Some((branch, units)) if *branch == e.branch => match units.last_mut() {
                // A level-3 element joins its level-2 parent's subtree.
                Some(unit) if e.level > 2 => unit.push(e),
                _ => units.push(vec![e]),
            },
            _ => groups.push((e.branch, vec![vec![e]])),
        }
    }
    let mut out = Vec::new();
    for (branch, units) in groups {
        for part in pack(&units, max_tokens) {
            out.push(Batch {
                index: out.len(),
                branch,
                paths: part.iter().map(|e| e.path.clone()).collect(),
                expected_tokens: tokens_of(&part),
            });
        }
    }
    out
}

fn tokens_of(elements: &[&Element]) -> u32 {
    elements
        .iter()
        .map(|e| e.expected_tokens())
        .fold(0, u32::saturating_add)
}

/// Consecutive parts of at most `max_tokens` each (an element larger than
/// that goes alone), keeping each unit whole when it fits in a part.
fn pack<'a>(units: &[Vec<&'a Element>], max_tokens: u32) -> Vec<Vec<&'a Element>> {
    let mut parts: Vec<Vec<&Element>> = Vec::new();
    let mut current: Vec<&Element> = Vec::new();
    for unit in units {
        let (have, need) = (tokens_of(&current), tokens_of(unit));
        if have.saturating_add(need) <= max_tokens {
            current.extend(unit.iter().copied());
            continue;
        }
        if need <= max_tokens {
            parts.push(std::mem::take(&mut current));
            current.extend(unit.iter().copied());
            continue;
        }
        for e in unit {
            if !current.is_empty()
                && tokens_of(&current).saturating_add(e.expected_tokens()) > max_tokens
            {
                parts.push(std::mem::take(&mut current));
            }
            current.push(e);
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

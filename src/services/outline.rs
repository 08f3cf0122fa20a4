//! What the granulator derives from a canonical outline: element rows for
//! `structure_elements` (and the way back), word-count estimates (seed §8.2)
//! and the content metadata the Content Generator plans with (seed §8.3).

use crate::types::outline::{FieldValue, Node, Outline};
use crate::types::pricing::{Pricing, TokenUsage};
use crate::types::structure::{Priority, StructureType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const WORKER_NAME: &str = "bitware-content-granulator";
pub const NEXT_WORKERS: [&str; 2] = ["bitware-content-generator", "bitware-quality-validator"];
pub const OUTPUT_VERSION: &str = "2.0";
/// Tokens a model spends per word of English prose.
const TOKENS_PER_WORD: f64 = 1.35;
/// Reference model for pricing the next worker's generation when ours is unpriced.
const REFERENCE_MODEL: &str = "gpt-4o-mini";

/// One row of `structure_elements`. Parents come before their children;
/// `path` ("2.1.3") is unique per job and lets SQL resolve `parent_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElementRow {
    pub path: String,
    pub parent_path: Option<String>,
    pub depth: u8,
    pub element_type: String,
    pub sequence_order: u32,
    pub title: String,
    pub content_outline: String,
    pub target_word_count: u32,
    pub content_type: String,
    pub generation_priority: u8,
    pub content_tone: String,
    pub key_points: Vec<String>,
    /// The element's canonical fields (without its children).
    pub metadata: Value,
}

/// The questions a quiz outline really has, over all its categories (its
/// `totalQuestions` must say the same).
pub fn quiz_questions(outline: &Outline) -> usize {
    outline.items.iter().map(|c| c.children.len()).sum()
}

pub fn priority_rank(p: Priority) -> u8 {
    match p {
        Priority::High => 1,
        Priority::Medium => 2,
        Priority::Low => 3,
    }
}

/// One row per element, parents before their children (rows are inserted
/// level by level).
pub fn flatten(structure: &Outline) -> Vec<ElementRow> {
    let mut rows = Vec::new();
    flatten_level(structure, &structure.items, None, &mut rows);
    rows.sort_by_key(|r| r.depth);
    rows
}

fn flatten_level(
    outline: &Outline,
    children: &[Node],
    parent_path: Option<&str>,
    rows: &mut Vec<ElementRow>,
) {
    let spec = outline.spec();
    for (i, child) in children.iter().enumerate() {
        let level = child.level();
        let path = match parent_path {
            Some(p) => format!("{p}.{}", i + 1),
            None => (i + 1).to_string(),
        };
        let key_points = child
            .fields
            .iter()
            .filter_map(FieldValue::as_list)
            .flatten()
            .cloned()
            .collect();
        rows.push(ElementRow {
            path: path.clone(),
            parent_path: parent_path.map(str::to_string),
            depth: child.depth() as u8,
            element_type: level.element_type.to_string(),
            sequence_order: i as u32 + 1,
            title: child.title().to_string(),
            content_outline: child.text(level.outline_field).to_string(),
            target_word_count: level.words,
            content_type: level.content_type.to_string(),
            generation_priority: priority_rank(level.priority),
            content_tone: spec.tone.to_string(),
            key_points,
            metadata: child.fields_value(),
        });
        flatten_level(outline, &child.children, Some(&path), rows);
    }
}

/// The hierarchy back from element rows (any order) and the root fields'
/// JSON; a row whose fields are not canonical is refused.
pub fn rebuild(
    structure_type: StructureType,
    root: &Value,
    rows: &[ElementRow],
) -> Result<Outline, String> {
    let mut by_parent: BTreeMap<Option<&str>, Vec<&ElementRow>> = BTreeMap::new();
    for row in rows {
        by_parent
            .entry(row.parent_path.as_deref())
            .or_default()
            .push(row);
    }
    for children in by_parent.values_mut() {
        children.sort_by_key(|r| r.sequence_order);
    }
    fn children_of(
        st: StructureType,
        depth: usize,
        parent: Option<&str>,
        by_parent: &BTreeMap<Option<&str>, Vec<&ElementRow>>,
    ) -> Result<Vec<Node>, String> {
        let Some(rows) = by_parent.get(&parent) else {
            return Ok(Vec::new());
        };
        rows.iter()
            .map(|row| {
                let mut node = Node::from_canonical(st, depth, &row.metadata)
                    .map_err(|e| format!("element {}: {e}", row.path))?;
                if depth + 1 < st.spec().levels.len() {
                    node.children = children_of(st, depth + 1, Some(&row.path), by_parent)?;
                }
                Ok(node)
            })
            .collect()
    }
    let items = children_of(structure_type, 0, None, &by_parent)?;
    Ok(Outline::from_root_value(structure_type, root, items))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByPriority {
    pub high: u32,
    pub medium: u32,
    pub low: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WordCountEstimates {
    pub total: u32,
    pub by_section: BTreeMap<String, u32>,
    pub by_priority: ByPriority,
}

/// Words the next worker writes: the framing overview plus, per element,
/// its level's words (see the type table in `types::structure`).
pub fn word_counts(structure_type: StructureType, rows: &[ElementRow]) -> WordCountEstimates {
    let spec = structure_type.spec();
    let mut by_section = BTreeMap::from([(spec.root_section.to_string(), spec.root_words)]);
    let mut by_priority = ByPriority {
        high: 0,
        medium: spec.root_words,
        low: 0,
    };
    for row in rows {
        let level = &spec.levels[row.depth as usize];
        *by_section.entry(level.section.to_string()).or_default() += row.target_word_count;
        match level.priority {
            Priority::High => by_priority.high += row.target_word_count,
            Priority::Medium => by_priority.medium += row.target_word_count,
            Priority::Low => by_priority.low += row.target_word_count,
        }
    }
    let total = by_section.values().sum();
    WordCountEstimates {
        total,
        by_section,
        by_priority,
    }
}

pub struct MetadataInput<'a> {
    pub structure_type: StructureType,
    pub topic: &'a str,
    pub granularity: u8,
    pub target_audience: &'a str,
    pub min_quality_score: f64,
    pub validation_required: bool,
    pub storage_tier: &'a str,
    pub model: Option<&'a str>,
}

pub fn worker_chain() -> Value {
    json!({
        "currentWorker": WORKER_NAME,
        "nextWorkers": NEXT_WORKERS,
        "outputFormat": "structured_json",
        "version": OUTPUT_VERSION,
    })
}

/// Seed §8.3, computed from the actual outline.
pub fn content_metadata(
    input: &MetadataInput<'_>,
    rows: &[ElementRow],
    words: &WordCountEstimates,
    pricing: &Pricing,
) -> Value {
    let spec = input.structure_type.spec();
    let present: Vec<_> = spec
        .levels
        .iter()
        .enumerate()
        .filter(|(d, _)| rows.iter().any(|r| r.depth as usize == *d))
        .collect();
    let dependencies: Vec<Value> = present
        .windows(2)
        .map(|pair| {
            json!({
                "elementType": pair[1].1.element_type,
                "dependsOn": pair[0].1.element_type,
                "reason": format!("each {} is written within the frame its {} sets", pair[1].1.element_type, pair[0].1.element_type),
            })
        })
        .collect();
    let leaves = present
        .last()
        .map(|(d, _)| rows.iter().filter(|r| r.depth as usize == *d).count())
        .unwrap_or(0);
    let mut content_types: Vec<&str> = present.iter().map(|(_, l)| l.content_type).collect();
    content_types.dedup();
    let sections = |p: Priority| {
        present
            .iter()
            .filter(|(_, l)| l.priority == p)
            .map(|(_, l)| l.section)
            .collect::<Vec<_>>()
    };
    let mut required = vec![spec.root_section];
    required.extend(sections(Priority::High));
    required.extend(sections(Priority::Medium));

    // Output tokens for the prose, plus a prompt per element (~250 tokens).
    let output_tokens = (words.total as f64 * TOKENS_PER_WORD).round() as u64;
    let input_tokens = 250 * (rows.len() as u64 + 1);
    // The next worker writes with a real model: offline (free) output is priced at the reference.
    let model = input
        .model
        .filter(|m| *m != "offline" && pricing.price(m).is_some())
        .unwrap_or(REFERENCE_MODEL);
    let cost = pricing.cost(
        model,
        &TokenUsage {
            input: input_tokens,
            output: output_tokens,
            ..TokenUsage::default()
        },
    );
    json!({
        "workerChain": worker_chain(),
        "standardParameters": {
            "topic": input.topic,
            "structureType": input.structure_type,
            "granularityLevel": input.granularity,
            "targetAudience": input.target_audience,
            "language": "en",
            "tone": spec.tone,
            "style": style_for(input.structure_type),
        },
        "generationStrategy": {
            "approach": "hierarchical",
            "parallelizable": true,
            "dependencies": dependencies,
            "batchSize": leaves.clamp(1, 10),
            // What the next worker may run at once: the calls streaming at
            // once the kit allows by default (the platform limits only six
            // connections waiting for headers: ADR 0015); the next worker's
            // own `AI_MAX_CALLS_AT_ONCE` caps it.
            "maxConcurrent": bitware_kit::provider::Settings::default().max_calls_at_once,
        },
        "contentSpecs": {
            "contentTypes": content_types,
            "requiredSections": required,
            "optionalSections": sections(Priority::Low),
        },
        "qualityRequirements": {
            "minQualityScore": input.min_quality_score,
            "readabilityTarget": 0.7,
            "coherenceTarget": 0.8,
            "completenessTarget": 0.9,
            "validationRequired": input.validation_required,
        },
        "resourceEstimates": {
            "estimatedTokens": input_tokens + output_tokens,
            "estimatedTimeMs": (output_tokens as f64 / 50.0 * 1000.0).round() as u64,
            "estimatedCostUsd": cost,
            "pricedWithModel": model,
            "storageRequired": match input.storage_tier { "inline" => "small", "kv" => "medium", _ => "large" },
        },
    })
}

fn style_for(t: StructureType) -> &'static str {
    match t {
        StructureType::Course => "structured lessons with examples and practice",
        StructureType::Quiz => "concise questions with unambiguous answers",
        StructureType::Novel => "scene-driven narrative prose",
        StructureType::Workflow => "numbered, actionable procedures",
        StructureType::KnowledgeMap => "definitions linked by explicit relationships",
        StructureType::LearningPath => "progressive milestones with practice",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::offline::generate_with_counts;

    #[test]
    fn flatten_puts_parents_first_with_resolvable_paths() {
        let v = generate_with_counts(StructureType::Course, &[2, 2, 1], "T");
        let rows = flatten(&v);
        assert_eq!(rows.len(), 2 + 4 + 4);
        assert!(rows.windows(2).all(|w| w[0].depth <= w[1].depth));
        let lesson = rows.iter().find(|r| r.path == "2.1").unwrap();
        assert_eq!(lesson.parent_path.as_deref(), Some("2"));
        assert_eq!(lesson.element_type, "lesson");
        assert_eq!(lesson.generation_priority, 1);
        assert!(lesson.metadata.get("activities").is_none());
        assert!(!lesson.key_points.is_empty());
    }

    #[test]
    fn rebuild_restores_the_exact_hierarchy() {
        for t in StructureType::ALL {
            let v = generate_with_counts(t, &[3, 2, 2], "Topic");
            let mut rows = flatten(&v);
            rows.reverse();
            assert_eq!(rebuild(t, &v.root_value(), &rows).unwrap(), v, "{t}");
        }
    }

    #[test]
    fn rebuild_refuses_rows_whose_fields_are_not_canonical() {
        let v = generate_with_counts(StructureType::Course, &[3, 2, 1], "T");
        let mut rows = flatten(&v);
        rows[4].metadata["objectives"] = json!("not a list");
        let err = rebuild(StructureType::Course, &v.root_value(), &rows).unwrap_err();
        assert!(
            err.starts_with(&format!("element {}: ", rows[4].path)),
            "{err}"
        );
        // Root fields that were never stored are empty, as in a fresh outline.
        let rows = flatten(&v);
        let bare = rebuild(StructureType::Course, &json!({}), &rows).unwrap();
        assert_eq!(bare.items, v.items);
        assert_eq!(bare.title(), "");
    }

    #[test]
    fn word_counts_sum_by_section_and_priority() {
        let v = generate_with_counts(StructureType::Course, &[3, 2, 1], "T");
        let w = word_counts(StructureType::Course, &flatten(&v));
        assert_eq!(w.by_section["moduleIntroductions"], 900);
        assert_eq!(w.by_section["lessonContent"], 6 * 1200);
        assert_eq!(w.by_section["exercises"], 6 * 250);
        assert_eq!(w.total, 400 + 900 + 7200 + 1500);
        assert_eq!(
            w.by_priority.high + w.by_priority.medium + w.by_priority.low,
            w.total
        );
    }

    #[test]
    fn metadata_describes_the_levels_actually_present() {
        let v = generate_with_counts(StructureType::Quiz, &[2, 3], "T");
        let rows = flatten(&v);
        let words = word_counts(StructureType::Quiz, &rows);
        let input = MetadataInput {
            structure_type: StructureType::Quiz,
            topic: "T",
            granularity: 2,
            target_audience: "students",
            min_quality_score: 0.7,
            validation_required: false,
            storage_tier: "inline",
            model: None,
        };
        let m = content_metadata(&input, &rows, &words, &Pricing::default());
        assert_eq!(m["workerChain"]["currentWorker"], WORKER_NAME);
        assert_eq!(
            m["generationStrategy"]["dependencies"][0]["elementType"],
            "question"
        );
        assert_eq!(m["generationStrategy"]["batchSize"], 6);
        assert_eq!(
            m["contentSpecs"]["optionalSections"],
            json!(["categoryIntroductions"])
        );
        assert!(m["resourceEstimates"]["estimatedCostUsd"].as_f64().unwrap() > 0.0);
        let offline = content_metadata(
            &MetadataInput {
                model: Some("offline"),
                ..input
            },
            &rows,
            &words,
            &Pricing::default(),
        );
        assert_eq!(
            offline["resourceEstimates"]["pricedWithModel"],
            REFERENCE_MODEL
        );
    }
}

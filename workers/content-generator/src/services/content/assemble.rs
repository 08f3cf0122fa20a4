//! The job's result from its checked answers: the outline with what was
//! written on each element, the counts, and a deterministic quality check
//! (coverage of the required elements, lengths within tolerance of their
//! targets).

use super::count_words;
use super::plan::{Element, Plan, Priority, ROOT_PATH};
use crate::types::request::GenerateJob;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Problems listed in the quality report at most (the count says how many).
pub const MAX_PROBLEMS: usize = 20;
/// Coverage weighs more than length: a missing element is worse than a short one.
pub const COVERAGE_WEIGHT: f64 = 0.6;
pub const LENGTH_WEIGHT: f64 = 0.4;

#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The outline in its canonical shape; each written element carries
    /// `generated: {text, words, targetWords, section}`, the root `overview`.
    pub content: Value,
    /// Elements and words planned and written, by section and by priority.
    pub summary: Value,
    /// `{score, coverage, lengthWithinTolerance, passed, problems, ...}`.
    pub quality: Value,
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// A node of the content tree by its plan path.
fn node_mut<'a>(content: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    if path == ROOT_PATH {
        return Some(content);
    }
    content.pointer_mut(&format!("/{}", path.replace('.', "/")))
}

#[derive(Default)]
struct Tally {
    elements: u32,
    written: u32,
    target: u64,
    words: u64,
}

impl Tally {
    fn add(&mut self, e: &Element, words: Option<u32>) {
        self.elements += 1;
        self.target += u64::from(e.target_words);
        if let Some(w) = words {
            self.written += 1;
            self.words += u64::from(w);
        }
    }

    fn to_json(&self) -> Value {
        json!({"target": self.target, "written": self.words, "elements": self.elements, "elementsWritten": self.written})
    }
}

/// `answers`: (batch index, answer checked by `check_batch`). Paths an
/// answer holds outside its batch are ignored.
pub fn assemble(
    job: &GenerateJob,
    structure: &Value,
    plan: &Plan,
    answers: &[(usize, Value)],
) -> Generated {
    let mut texts: BTreeMap<&str, &str> = BTreeMap::new();
    for (index, answer) in answers {
        let Some(batch) = plan.batches.get(*index) else {
            continue;
        };
        for item in answer["elements"].as_array().into_iter().flatten() {
            if let (Some(path), Some(text)) = (item["path"].as_str(), item["content"].as_str()) {
                if batch.paths.iter().any(|p| p == path) {
                    texts.insert(path, text);
                }
            }
        }
    }
    let tolerance = job.word_tolerance;
    let mut content = structure.clone();
    let mut all = Tally::default();
    let mut by_section: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut by_priority: BTreeMap<&str, Tally> = BTreeMap::new();
    let (mut required, mut required_written, mut within) = (0u32, 0u32, 0u32);
    let mut problems = Vec::new();
    for e in &plan.elements {
        let text = texts.get(e.path.as_str()).copied();
        let words = text.map(count_words);
        all.add(e, words);
        by_section.entry(&e.section).or_default().add(e, words);
        let priority = match e.priority {
            Priority::Required => "required",
            Priority::Optional => "optional",
        };
        by_priority.entry(priority).or_default().add(e, words);
        if e.priority == Priority::Required {
            required += 1;
        }
        let (Some(text), Some(words)) = (text, words) else {
            if e.priority == Priority::Required {
                problems.push(format!("{}: not written", e.path));
            }
            continue;
        };
        if e.priority == Priority::Required {
            required_written += 1;
        }
        let target = f64::from(e.target_words);
        if (f64::from(words) - target).abs() <= tolerance * target {
            within += 1;
        } else {
            problems.push(format!(
                "{}: {words} words, target {}",
                e.path, e.target_words
            ));
        }
        let generated = json!({"text": text, "words": words, "targetWords": e.target_words, "section": e.section});
        let key = if e.path == ROOT_PATH {
            "overview"
        } else {
            "generated"
        };
        if let Some(Value::Object(node)) = node_mut(&mut content, &e.path) {
            node.insert(key.into(), generated);
        }
    }
    let coverage = if required == 0 {
        1.0
    } else {
        f64::from(required_written) / f64::from(required)
    };
    let length = if all.written == 0 {
        0.0
    } else {
        f64::from(within) / f64::from(all.written)
    };
    let score = round4(COVERAGE_WEIGHT * coverage + LENGTH_WEIGHT * length);
    let min_score = job.min_quality_score();
    let section_json: Map<String, Value> = by_section
        .iter()
        .map(|(s, t)| ((*s).to_string(), t.to_json()))
        .collect();
    let priority_json: Map<String, Value> = by_priority
        .iter()
        .map(|(p, t)| ((*p).to_string(), t.to_json()))
        .collect();
    Generated {
        content,
        summary: json!({
            "elements": all.elements,
            "elementsWritten": all.written,
            "wordsWritten": all.words,
            "wordsTargeted": all.target,
            "bySection": section_json,
            "byPriority": priority_json,
        }),
        quality: json!({
            "score": score,
            "coverage": round4(coverage),
            "lengthWithinTolerance": round4(length),
            "wordTolerance": tolerance,
            "minQualityScore": min_score,
            "passed": score >= min_score,
            "problemCount": problems.len(),
            "problems": problems.into_iter().take(MAX_PROBLEMS).collect::<Vec<_>>(),
        }),
    }
}

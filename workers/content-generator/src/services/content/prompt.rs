//! One batch's model call: the writer's role, the part every call of the
//! job shares (so providers cache it), then one line per element to write
//! with what to write and its outline fields, and the strict schema of the
//! answer.

use super::plan::{Batch, Element, Plan, ROOT_PATH};
use crate::types::request::GenerateJob;
use crate::types::structure::{LevelSpec, StructureType};
use bitware_kit::ai::{CompletionRequest, Purpose};
use serde_json::{json, Value};

/// The call purpose of every batch (attempts are recorded under it).
pub const GENERATE: Purpose = Purpose::named("generate");
/// A batch may write this many output tokens at most (whatever it expects).
pub const MAX_BATCH_OUTPUT_TOKENS: u32 = 16_000;
/// The schema's name for providers that take one.
pub const SCHEMA_NAME: &str = "content_batch";
/// An outline field longer than this is cut in the prompt (it is context, not content).
const MAX_FIELD_CHARS: usize = 1_000;

/// The answer's schema: each of the batch's paths with non-empty content.
pub fn schema(batch: &Batch) -> Value {
    json!({
        "type": "object",
        "properties": {
            "elements": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "enum": batch.paths},
                        "content": {"type": "string", "minLength": 1}
                    },
                    "required": ["path", "content"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["elements"],
        "additionalProperties": false
    })
}

fn system_prompt(job: &GenerateJob) -> String {
    let p = &job.parameters;
    format!(
        "You are {writer}. Write in language `{language}` for {audience}. Tone: {tone}. Style: {style}.\n\
         Write every element you are asked for, each close to its target number of words, \
         as plain prose (Markdown lists and headings allowed inside it).\n\
         Answer with JSON only: {{\"elements\": [{{\"path\": \"<the element's path exactly as given>\", \"content\": \"<what you wrote>\"}}]}}, \
         one entry per element, no other text.",
        writer = job.structure_type.spec().writer,
        language = p.language,
        audience = p.audience,
        tone = p.tone,
        style = p.style,
    )
}

/// Text on one line: a value never starts a prompt line of its own.
fn one_line(s: &str) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(MAX_FIELD_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// An outline field as prompt text: lists joined, objects as compact JSON.
fn field_text(v: &Value) -> Option<String> {
    let text = match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    let text = one_line(&text);
    (!text.is_empty()).then_some(text)
}

/// What every call of the job sends first: topic, type and the outline's
/// level-1 titles.
fn shared_part(job: &GenerateJob, plan: &Plan, structure_title: &str) -> String {
    let t = job.structure_type;
    let first = &t.spec().levels[0];
    let mut s = format!(
        "Topic: {}\nStructure type: {t}\nTitle: {}\nThe outline's {}, in order:\n",
        one_line(&job.topic),
        one_line(structure_title),
        first.key
    );
    for e in plan.elements.iter().filter(|e| e.level == 1) {
        s.push_str(&format!("  {}: {}\n", e.path, e.title));
    }
    s.push('\n');
    s
}

fn level_of(t: StructureType, e: &Element) -> Option<&'static LevelSpec> {
    (e.level > 0)
        .then(|| t.spec().levels.get(usize::from(e.level) - 1))
        .flatten()
}

/// Its line (`- <path> | <target> words | <element type>: <title>`, the
/// format the mock AI parses), what to write, and its outline fields.
fn element_part(t: StructureType, e: &Element, node: &Value) -> String {
    let (writes, fields) = match level_of(t, e) {
        Some(l) => (l.writes, l.outline_fields),
        None => (t.spec().root_writes, t.spec().root_fields),
    };
    let mut s = format!(
        "- {} | {} words | {}: {}\n  Write: {writes}.\n",
        e.path, e.target_words, e.element_type, e.title
    );
    for f in fields.iter().filter(|f| **f != "title") {
        if let Some(text) = node.get(*f).and_then(field_text) {
            s.push_str(&format!("  {f}: {text}\n"));
        }
    }
    s
}

/// A node by its plan path (`root` or `modules.0.lessons.2`).
pub fn node_at<'a>(structure: &'a Value, path: &str) -> Option<&'a Value> {
    if path == ROOT_PATH {
        return Some(structure);
    }
    structure.pointer(&format!("/{}", path.replace('.', "/")))
}

/// The model call of one batch of the plan.
pub fn request_for(
    job: &GenerateJob,
    structure: &Value,
    plan: &Plan,
    batch: &Batch,
) -> CompletionRequest {
    let t = job.structure_type;
    let shared = shared_part(job, plan, structure["title"].as_str().unwrap_or(&job.topic));
    let mut user = shared.clone();
    if let Some(head) = batch.branch.and_then(|b| {
        plan.elements
            .iter()
            .find(|e| e.level == 1 && e.branch == Some(b))
    }) {
        user.push_str(&format!(
            "These elements belong to {} {}: {}\n",
            head.element_type, head.path, head.title
        ));
    }
    user.push_str(&format!(
        "Write these elements ({}); answer with each path exactly once:\n",
        batch.paths.len()
    ));
    for path in &batch.paths {
        if let Some(e) = plan.element(path) {
            let node = node_at(structure, path).unwrap_or(&Value::Null);
            user.push_str(&element_part(t, e, node));
        }
    }
    let max_tokens =
        ((f64::from(batch.expected_tokens) * 1.5).ceil() as u32).min(MAX_BATCH_OUTPUT_TOKENS);
    CompletionRequest {
        purpose: GENERATE,
        system: system_prompt(job),
        shared_prefix: shared.len(),
        user,
        schema_name: SCHEMA_NAME.into(),
        schema: schema(batch),
        max_tokens,
        temperature: if t == StructureType::Novel { 0.8 } else { 0.5 },
        expected_output_tokens: batch.expected_tokens,
        offline_answer: None,
        progress: None,
        cache_key: Some(format!("content-generator-{}", job.granulator_job_id)),
    }
}

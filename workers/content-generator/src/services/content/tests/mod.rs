//! The domain run over real granulator outputs (tests/fixtures, captured
//! from the granulator under `wrangler dev` with the mock AI).

use super::*;

use crate::types::request::{ExecuteRequest, GenerateJob};
use crate::types::structure::StructureType;
use serde_json::{json, Value};

const FIXTURES: [(&str, &str); 11] = [
    (
        "course-g2",
        include_str!("../../../../tests/fixtures/course-g2.json"),
    ),
    (
        "course-g3",
        include_str!("../../../../tests/fixtures/course-g3.json"),
    ),
    (
        "quiz-g2",
        include_str!("../../../../tests/fixtures/quiz-g2.json"),
    ),
    (
        "novel-g2",
        include_str!("../../../../tests/fixtures/novel-g2.json"),
    ),
    (
        "novel-g3",
        include_str!("../../../../tests/fixtures/novel-g3.json"),
    ),
    (
        "workflow-g2",
        include_str!("../../../../tests/fixtures/workflow-g2.json"),
    ),
    (
        "workflow-g3",
        include_str!("../../../../tests/fixtures/workflow-g3.json"),
    ),
    (
        "knowledge_map-g2",
        include_str!("../../../../tests/fixtures/knowledge_map-g2.json"),
    ),
    (
        "knowledge_map-g3",
        include_str!("../../../../tests/fixtures/knowledge_map-g3.json"),
    ),
    (
        "learning_path-g2",
        include_str!("../../../../tests/fixtures/learning_path-g2.json"),
    ),
    (
        "learning_path-g3",
        include_str!("../../../../tests/fixtures/learning_path-g3.json"),
    ),
];

/// A batch ceiling no fixture's branch reaches.
const ROOMY: u32 = 1_000_000;

fn input(name: &str) -> Value {
    let (_, text) = FIXTURES.iter().find(|(n, _)| *n == name).unwrap();
    serde_json::from_str(text).unwrap()
}

fn job_with(input: Value, params: Value) -> (GenerateJob, Value) {
    let job =
        ExecuteRequest::parse(&json!({"action": "generate", "input": input, "params": params}))
            .unwrap()
            .job;
    let structure = job.structure.clone().unwrap();
    (job, structure)
}

fn job(name: &str) -> (GenerateJob, Value) {
    job_with(input(name), json!({}))
}

/// What a model would answer for a batch: each element at `share` of its target.
fn answer(plan: &Plan, batch: &Batch, share: f64) -> Value {
    let elements: Vec<Value> = batch
        .paths
        .iter()
        .map(|p| {
            let words = (f64::from(plan.element(p).unwrap().target_words) * share).round() as usize;
            json!({"path": p, "content": vec!["word"; words.max(1)].join(" ")})
        })
        .collect();
    json!({"elements": elements})
}

fn answers(plan: &Plan, share: f64) -> Vec<(usize, Value)> {
    plan.batches
        .iter()
        .map(|b| (b.index, check_batch(b, &answer(plan, b, share)).unwrap()))
        .collect()
}

fn plan_of(job: &GenerateJob, structure: &Value) -> Plan {
    plan(job, structure, ROOMY).unwrap()
}

mod answers;
mod plan;
mod prompt;

//! The corpus of messy answers (`support/mess.rs`) end to end: every kind ×
//! every structure type × both wire formats (OpenAI, Anthropic), each served
//! by the mock as the only answer the model ever gives. Recoverable answers
//! must complete with exactly the outline the model meant (goal ≥ 98 %);
//! unrecoverable ones must fail the job with nothing stored (goal 100 %);
//! no job may be left `processing`. Prints the rates per type and wire.

#[path = "support/mess.rs"]
mod mess;
mod support;

use content_granulator::types::structure::StructureType;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use support::*;

const WIRES: [&str; 2] = ["openai", "anthropic"];
/// More than any job can ask for: every call gets the same answer.
const REPEATS: usize = 6;

struct Outcome {
    structure_type: StructureType,
    wire: &'static str,
    kind: &'static str,
    recoverable: bool,
    ok: bool,
    job_status: String,
    detail: String,
}

/// 360 paid requests in a minute: an enterprise client of its own (the
/// standard tier's 300 a minute is shared by the other tests' client).
fn corpus_client() -> Who {
    Who::ApiKey("dev-enterprise-key".into())
}

async fn run_case(structure_type: StructureType, wire: &'static str, case: mess::Case) -> Outcome {
    let key = unique(&format!(
        "corpus-{}-{wire}-{}",
        structure_type.as_str(),
        case.kind
    ));
    let steps: Vec<Value> = (0..REPEATS)
        .map(|_| json!({"kind": "raw", "text": case.text, "truncated": case.truncated}))
        .collect();
    script(&key, json!(steps)).await;
    // One call: the corpus is a whole outline's answer (a novel at this
    // granularity would fan out under `auto`, its skeleton given the mess).
    let body = json!({"action": "granulate",
        "input": {"topic": key, "structureType": structure_type.as_str(), "granularityLevel": mess::GRANULARITY},
        "config": {"aiProvider": wire, "strategy": "single"}});
    let r = execute(&corpus_client(), body, None).await;
    let job_id = r.body["output"]["jobId"]
        .as_i64()
        .or(r.body["details"]["jobId"].as_i64());
    let job = match job_id {
        Some(id) => get(&format!("/api/jobs/{id}"), &corpus_client()).await.body,
        None => Value::Null,
    };
    let job_status = job["job"]["status"].as_str().unwrap_or("none").to_string();
    let (ok, detail) = if case.recoverable {
        let structure = match (&r.body["output"]["structure"], job_id) {
            (s, _) if s.is_object() => s.clone(),
            (_, Some(id)) => get(&format!("/api/jobs/{id}/structure"), &corpus_client())
                .await
                .body["structure"]
                .clone(),
            _ => Value::Null,
        };
        let ok = r.status == 200
            && r.body["success"] == true
            && job_status == "completed"
            && structure == case.expected;
        (ok, format!("HTTP {} {}", r.status, r.body["error"]))
    } else {
        let stored = match job_id {
            Some(id) => {
                get(&format!("/api/jobs/{id}/structure"), &corpus_client())
                    .await
                    .status
            }
            None => 0,
        };
        let ok = r.status == 502
            && r.body["code"] == "provider_error"
            && job_status == "failed"
            && stored != 200;
        (
            ok,
            format!("HTTP {} job {job_status} structure {stored}", r.status),
        )
    };
    Outcome {
        structure_type,
        wire,
        kind: case.kind,
        recoverable: case.recoverable,
        ok,
        job_status,
        detail,
    }
}

#[derive(Default)]
struct Tally {
    recoverable: u32,
    recovered: u32,
    unrecoverable: u32,
    refused: u32,
}

fn pct(n: u32, of: u32) -> f64 {
    if of == 0 {
        100.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

#[tokio::test]
async fn messy_answers_are_recovered_or_refused_on_both_wire_formats() {
    let mut jobs = Vec::new();
    for t in StructureType::ALL {
        for wire in WIRES {
            for case in mess::cases(t, "corpus topic") {
                jobs.push((t, wire, case));
            }
        }
    }
    let outcomes: Vec<Outcome> = stream::iter(jobs)
        .map(|(t, wire, case)| run_case(t, wire, case))
        .buffer_unordered(6)
        .collect()
        .await;

    let mut tallies: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut failures = Vec::new();
    for o in &outcomes {
        let cell = tallies
            .entry((o.structure_type.as_str(), o.wire))
            .or_default();
        for t in [&mut *cell, &mut total] {
            if o.recoverable {
                t.recoverable += 1;
                t.recovered += u32::from(o.ok);
            } else {
                t.unrecoverable += 1;
                t.refused += u32::from(o.ok);
            }
        }
        if !o.ok {
            failures.push(format!(
                "{}/{}/{} ({}): {}",
                o.structure_type,
                o.wire,
                o.kind,
                if o.recoverable {
                    "not recovered"
                } else {
                    "not refused"
                },
                o.detail
            ));
        }
    }
    println!(
        "\ncorpus: {} kinds of mess x {} types x {} wire formats = {} answers",
        mess::KINDS.len(),
        StructureType::ALL.len(),
        WIRES.len(),
        outcomes.len()
    );
    println!(
        "{:<14} {:<9} {:>10} {:>9} {:>12} {:>9}",
        "type", "wire", "recovered", "rate", "refused", "rate"
    );
    for ((t, wire), c) in &tallies {
        println!(
            "{t:<14} {wire:<9} {:>10} {:>8.1}% {:>12} {:>8.1}%",
            format!("{}/{}", c.recovered, c.recoverable),
            pct(c.recovered, c.recoverable),
            format!("{}/{}", c.refused, c.unrecoverable),
            pct(c.refused, c.unrecoverable)
        );
    }
    println!(
        "{:<14} {:<9} {:>10} {:>8.1}% {:>12} {:>8.1}%",
        "all",
        "both",
        format!("{}/{}", total.recovered, total.recoverable),
        pct(total.recovered, total.recoverable),
        format!("{}/{}", total.refused, total.unrecoverable),
        pct(total.refused, total.unrecoverable)
    );
    for f in &failures {
        println!("  {f}");
    }
    let processing: Vec<String> = outcomes
        .iter()
        .filter(|o| o.job_status == "processing" || o.job_status == "none")
        .map(|o| format!("{}/{}/{}", o.structure_type, o.wire, o.kind))
        .collect();
    assert!(
        processing.is_empty(),
        "jobs left processing or never created: {processing:?}"
    );
    assert!(
        pct(total.recovered, total.recoverable) >= 98.0,
        "recovery below 98 %"
    );
    assert_eq!(
        total.refused, total.unrecoverable,
        "an unrecoverable answer was not refused"
    );
}

//! The Resource Manager envelope (contracts §2): a granulation's
//! (`Granulated`, typed: serde writes the documented JSON) and the one of
//! the other actions of `/api/execute` (`Envelope`): `validate` and
//! `estimate` answer with the same top-level fields as `granulate`
//! (`success`, `model`, `output`, `usage.tokens`, `duration`, `cost`,
//! `metadata.workerChain`), so the Resource Manager reads every action the
//! same way.

use crate::helpers::economy::Efficiency;
use crate::services::outline::{self, WordCountEstimates};
use crate::services::storage::Tier;
use crate::services::validation::{QualityReport, Verdict};
use crate::types::pricing::TokenUsage;
use crate::types::structure::StructureType;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A finished granulation as `POST /api/execute` answers it and the job
/// stores it (`result_json`, replayed unchanged).
#[derive(Debug, Serialize)]
pub struct Granulated<'a> {
    pub success: bool,
    /// The Resource Manager prices `usage.tokens` under it.
    pub model: &'a str,
    pub output: Output<'a>,
    pub usage: Usage,
    pub duration: u64,
    /// `None`: unknown (an unpriced model), never 0.
    pub cost: Option<f64>,
    pub metadata: Metadata<'a>,
}

/// `output`: the outline (or where it is stored) and what the Content
/// Generator plans with.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output<'a> {
    pub granulator_job_id: i64,
    pub job_id: i64,
    pub topic: &'a str,
    pub structure_type: StructureType,
    pub template_name: &'a str,
    pub granularity_level: u8,
    pub target_audience: &'a str,
    pub summary: Summary<'a>,
    pub word_count_estimates: &'a WordCountEstimates,
    pub content_metadata: &'a Value,
    pub quality_score: f64,
    pub quality_report: QualityOf<'a>,
    pub ready_for_content_generation: bool,
    pub ready_for_next: bool,
    pub next_worker_recommendation: &'static str,
    pub processing_time_ms: u64,
    pub tokens_used: TokensUsed,
    pub cost_usd: Option<f64>,
    pub provider: &'a str,
    pub model: &'a str,
    pub deliverable_specs: &'a Value,
    pub placeholder: bool,
    /// The outline itself when it is stored inline ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structure: Option<&'a Value>,
    /// ... or where it is (KV, R2) and the URL that returns it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structure_reference: Option<StructureReference<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_result: Option<&'a Verdict>,
}

/// `output.summary`: counts, with each level's count also under its own key
/// (`"modules": 5`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary<'a> {
    pub total_elements: usize,
    pub elements_by_level: &'a BTreeMap<String, u32>,
    pub depth: usize,
    pub word_count_estimates: &'a WordCountEstimates,
    pub content_metadata: &'a Value,
    #[serde(flatten)]
    pub per_level: &'a BTreeMap<String, u32>,
}

#[derive(Debug, Serialize)]
pub struct QualityOf<'a> {
    pub components: &'a BTreeMap<&'static str, f64>,
    pub violations: &'a [crate::services::validation::Violation],
}

impl<'a> QualityOf<'a> {
    pub fn of(report: &'a QualityReport) -> QualityOf<'a> {
        QualityOf {
            components: &report.components,
            violations: &report.violations,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TokensUsed {
    pub input: u64,
    pub output: u64,
    pub total: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructureReference<'a> {
    #[serde(rename = "type")]
    pub tier: Tier,
    pub location: &'a str,
    pub size_bytes: usize,
    pub url: String,
}

/// `usage.tokens`, as the Resource Manager reads it.
#[derive(Debug, Serialize)]
pub struct Usage {
    pub tokens: Tokens,
}

#[derive(Debug, Serialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
}

impl Usage {
    pub fn of(usage: &TokenUsage) -> Usage {
        Usage {
            tokens: Tokens {
                input: usage.input,
                output: usage.output,
                cached: usage.cached,
            },
        }
    }
}

/// `metadata`: the worker chain, the job and how it was made.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata<'a> {
    pub worker_chain: Value,
    pub job_id: i64,
    pub execution_id: &'a str,
    pub run: u32,
    pub attempts: usize,
    /// `single` or `fanout`.
    pub strategy: &'static str,
    pub branches: Option<u32>,
    pub storage_tier: Tier,
    pub efficiency: Efficiency,
    pub warnings: Vec<Value>,
}

pub struct Envelope<'a> {
    pub action: &'static str,
    pub output: Value,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub duration_ms: u64,
    /// `None`: unknown (an unpriced model), never 0.
    pub cost: Option<f64>,
    pub model: Option<&'a str>,
}

impl Envelope<'_> {
    pub fn into_json(self) -> Value {
        json!({
            "success": true,
            "model": self.model,
            "output": self.output,
            "usage": Usage { tokens: Tokens { input: self.input_tokens, output: self.output_tokens, cached: 0 } },
            "duration": self.duration_ms,
            "cost": self.cost,
            "metadata": {"workerChain": outline::worker_chain(), "action": self.action},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::services::offline;
    use crate::services::validation::assess;
    use crate::types::rules::{Constraints, StructureRules};
    use crate::types::structure::Granularity;

    /// A granulation's envelope of a real (offline) outline, inline or stored.
    fn granulated(stored: Option<&str>, verdict: Option<&Verdict>, check: impl Fn(Value)) {
        let st = StructureType::Course;
        let outline = offline::generate_with_counts(st, &[2, 2, 1], "Rust");
        let report = assess(
            Granularity::DEFAULT,
            &StructureRules::contract(st),
            &Constraints::default(),
            &outline,
        );
        let rows = outline::flatten(&outline);
        let canonical = outline.to_value();
        let words = outline::word_counts(st, &rows);
        let (metadata, specs) = (json!({"m": 1}), json!({"s": 1}));
        let usage = TokenUsage {
            input: 10,
            output: 20,
            cached: 3,
            ..Default::default()
        };
        let envelope = Granulated {
            success: true,
            model: "gpt-4o-mini",
            output: Output {
                granulator_job_id: 7,
                job_id: 7,
                topic: "Rust",
                structure_type: st,
                template_name: "course_default",
                granularity_level: 3,
                target_audience: "devs",
                summary: Summary {
                    total_elements: rows.len(),
                    elements_by_level: &report.elements_by_level,
                    depth: report.depth,
                    word_count_estimates: &words,
                    content_metadata: &metadata,
                    per_level: &report.elements_by_level,
                },
                word_count_estimates: &words,
                content_metadata: &metadata,
                quality_score: report.score,
                quality_report: QualityOf::of(&report),
                ready_for_content_generation: true,
                ready_for_next: true,
                next_worker_recommendation: outline::NEXT_WORKERS[0],
                processing_time_ms: 5,
                tokens_used: TokensUsed {
                    input: 10,
                    output: 20,
                    total: 30,
                },
                cost_usd: None,
                provider: "openai",
                model: "gpt-4o-mini",
                deliverable_specs: &specs,
                placeholder: false,
                structure: stored.is_none().then_some(&canonical),
                structure_reference: stored.map(|location| StructureReference {
                    tier: Tier::Kv,
                    location,
                    size_bytes: 99,
                    url: "/api/jobs/7/structure".into(),
                }),
                validation_result: verdict,
            },
            usage: Usage::of(&usage),
            duration: 5,
            cost: None,
            metadata: Metadata {
                worker_chain: outline::worker_chain(),
                job_id: 7,
                execution_id: "exec-1",
                run: 1,
                attempts: 1,
                strategy: "single",
                branches: None,
                storage_tier: Tier::Inline,
                efficiency: crate::helpers::economy::efficiency(&usage, 5, None),
                warnings: vec![],
            },
        };
        check(serde_json::to_value(&envelope).unwrap());
    }

    #[test]
    fn a_granulation_envelope_is_the_documented_json() {
        granulated(None, None, |e| {
            assert_eq!(e["success"], true);
            assert_eq!(
                e["usage"]["tokens"],
                json!({"input": 10, "output": 20, "cached": 3})
            );
            // Unknown cost is null, never left out or 0.
            assert!(e["cost"].is_null() && e["output"]["costUsd"].is_null());
            assert!(e.get("cost").is_some() && e["output"].get("costUsd").is_some());
            let out = &e["output"];
            assert_eq!(
                out["structure"]["modules"].as_array().map(Vec::len),
                Some(2)
            );
            assert!(
                out.get("structureReference").is_none() && out.get("validationResult").is_none()
            );
            // Each level's count also under its own key.
            assert_eq!(out["summary"]["modules"], 2);
            assert_eq!(out["summary"]["lessons"], 4);
            assert_eq!(out["summary"]["elementsByLevel"]["modules"], 2);
            assert_eq!(
                out["tokensUsed"],
                json!({"input": 10, "output": 20, "total": 30})
            );
            assert_eq!(out["qualityReport"].as_object().map(|o| o.len()), Some(2));
            assert_eq!(e["metadata"]["storageTier"], "inline");
            assert!(e["metadata"]["branches"].is_null());
            assert_eq!(
                e["metadata"]["workerChain"]["currentWorker"],
                outline::WORKER_NAME
            );
        });
        let verdict = Verdict {
            level: 2,
            accuracy_percentage: 80.0,
            threshold: 75.0,
            passed: true,
            criteria: vec![],
            issues: vec![],
            ai_feedback: None,
            reason: None,
        };
        granulated(Some("structures/7.json"), Some(&verdict), |e| {
            let out = &e["output"];
            assert!(out.get("structure").is_none());
            assert_eq!(
                out["structureReference"],
                json!({"type": "kv", "location": "structures/7.json", "sizeBytes": 99, "url": "/api/jobs/7/structure"})
            );
            assert_eq!(out["validationResult"]["accuracyPercentage"], 80.0);
            assert!(out["validationResult"]["aiFeedback"].is_null());
            assert!(out["validationResult"].get("reason").is_none());
        });
    }

    #[test]
    fn an_estimate_envelope_has_every_field_the_resource_manager_reads() {
        let e = Envelope {
            action: "estimate",
            output: json!({"estimate": {}}),
            input_tokens: 0,
            output_tokens: 0,
            duration_ms: 3,
            cost: Some(0.0),
            model: Some("gpt-4o-mini"),
        }
        .into_json();
        for field in [
            "success", "model", "output", "usage", "duration", "cost", "metadata",
        ] {
            assert!(e.get(field).is_some(), "{field}");
        }
        assert_eq!(e["usage"]["tokens"]["input"], 0);
        assert_eq!(e["metadata"]["action"], "estimate");
        assert!(e["metadata"]["workerChain"].is_object());
    }
}

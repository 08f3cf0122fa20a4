//! The granulator's shared schemas: `components.schemas` (Error, Envelope,
//! Job, JobStatus, Template…), the security schemes, and the request bodies
//! of `/api/execute` with the limits the edge enforces.

use super::builder::*;
use crate::types::api::Action;
use crate::types::provider::ProviderKind;
use crate::types::structure::StructureType;
use serde_json::{json, Value};

// ---- shared shapes --------------------------------------------------------

pub fn tokens() -> Value {
    object(&[
        ("input", integer()),
        ("output", integer()),
        ("cached?", integer()),
    ])
}

pub fn structure_types() -> Vec<&'static str> {
    StructureType::ALL.iter().map(|t| t.as_str()).collect()
}

pub fn providers() -> Vec<&'static str> {
    ProviderKind::ALL.iter().map(|p| p.as_str()).collect()
}

pub fn components() -> Value {
    json!({
        "schemas": {
            "Error": error_schema(),
            "Tokens": tokens(),
            "Envelope": envelope(),
            "Job": job(),
            "JobStatus": job_status(),
            "Accepted": object(&[
                ("success", boolean()),
                ("status", one_of_strings(&["accepted"])),
                ("jobId", integer()),
                ("statusUrl", string()),
                ("eventsUrl", string()),
                ("resultUrl", string()),
            ]),
            "Template": object(&[
                ("id", integer()),
                ("templateName", string()),
                ("structureType", one_of_strings(&structure_types())),
                ("description", string()),
                ("aiPromptTemplate", string()),
                ("validationRules", object_any()),
                ("structureRules", object_any()),
                ("aiProviderConfig?", object_any()),
            ]),
            "ValidationResult": object(&[
                ("level", integer()),
                ("accuracyPercentage", number()),
                ("threshold", number()),
                ("passed", boolean()),
                ("criteria?", any()),
                ("issues?", any()),
                ("aiFeedback?", nullable(any())),
            ]),
            "Estimate": object(&[
                ("estimate", object(&[
                    ("structureType", one_of_strings(&structure_types())),
                    ("templateName", string()),
                    ("granularityLevel", integer()),
                    ("expectedElements", integer()),
                    ("tokens", object(&[("input", integer()), ("output", integer()), ("total", integer())])),
                    ("provider", one_of_strings(&providers())),
                    ("model", string()),
                    ("costUsd", nullable(number())),
                    ("timeMs", integer()),
                    ("pricingDate", string()),
                ])),
                ("alternatives", array(object(&[
                    ("provider", one_of_strings(&providers())),
                    ("model", string()),
                    ("costUsd", nullable(number())),
                    ("timeMs", integer()),
                ]))),
            ]),
        },
        "securitySchemes": security_schemes(),
    })
}

/// The Resource Manager envelope of every `/api/execute` action.
pub fn envelope() -> Value {
    object(&[
        ("success", boolean()),
        ("model", nullable(string())),
        ("output", object_any()),
        ("usage", object(&[("tokens", reference("Tokens"))])),
        ("duration", integer()),
        ("cost", nullable(number())),
        ("metadata", object(&[("workerChain", object_any())])),
    ])
}

pub fn job() -> Value {
    object(&[
        ("id", integer()),
        ("clientId", string()),
        ("executionId", string()),
        ("topic", string()),
        ("structureType", string()),
        ("granularityLevel", integer()),
        (
            "status",
            one_of_strings(&["processing", "completed", "failed"]),
        ),
        ("stage", string()),
        ("runs", integer()),
        ("provider", nullable(string())),
        ("model", nullable(string())),
        ("tokensUsed", reference("Tokens")),
        ("costUsd", nullable(number())),
        ("qualityScore", nullable(number())),
        ("createdAt", string()),
        ("updatedAt", string()),
    ])
}

pub fn job_status() -> Value {
    let counts = object(&[("received", integer()), ("expected", integer())]);
    object(&[
        ("jobId", integer()),
        (
            "status",
            one_of_strings(&["processing", "completed", "failed"]),
        ),
        ("stage", string()),
        (
            "percent",
            json!({"type": "integer", "minimum": 0, "maximum": 100}),
        ),
        (
            "progress",
            json!({"type": "integer", "minimum": 0, "maximum": 100}),
        ),
        ("elements", counts.clone()),
        ("tokens", counts),
        (
            "branches",
            nullable(object(&[("done", integer()), ("total", integer())])),
        ),
        ("elapsedMs", nullable(integer())),
        ("estimatedRemainingMs", nullable(integer())),
        ("runMode", string()),
        ("abandoned", boolean()),
        ("failureCode", nullable(string())),
        ("failureReason", nullable(string())),
        ("updatedAt", string()),
        ("statusUrl", string()),
        ("eventsUrl", string()),
        ("resultUrl", string()),
    ])
}

pub fn consumption_row(extra: &[(&str, Value)]) -> Value {
    let mut fields = vec![
        ("attempts", integer()),
        ("tokensInput", nullable(integer())),
        ("tokensOutput", nullable(integer())),
        ("costUsd", nullable(number())),
    ];
    fields.extend(extra.iter().cloned());
    object(&fields)
}

pub fn efficiency() -> Value {
    object(&[
        ("tokensPerSecond", number()),
        ("outputTokensPerSecond", number()),
        ("costPerToken", nullable(number())),
        (
            "rating",
            one_of_strings(&["free", "low", "medium", "high", "instant"]),
        ),
    ])
}

pub fn template_performance() -> Value {
    object(&[
        ("templateName", string()),
        ("structureType", string()),
        ("jobs", integer()),
        ("completed", integer()),
        ("failed", integer()),
        ("successRate", nullable(number())),
        ("averageQualityScore", nullable(number())),
        ("averageCostUsd", nullable(number())),
    ])
}

pub fn job_stats() -> Value {
    object(&[
        ("scope", string()),
        ("days", integer()),
        (
            "jobs",
            object(&[
                ("total", integer()),
                (
                    "byStatus",
                    object(&[
                        ("completed", integer()),
                        ("failed", integer()),
                        ("processing", integer()),
                    ]),
                ),
            ]),
        ),
        ("successRate", nullable(number())),
        ("averageQualityScore", nullable(number())),
        (
            "processingTimeMs",
            object(&[
                ("p50", nullable(number())),
                ("p90", nullable(number())),
                ("p99", nullable(number())),
            ]),
        ),
        (
            "tokens",
            object(&[("input", integer()), ("output", integer())]),
        ),
        ("costUsd", nullable(number())),
        ("jobsWithUnknownCost", integer()),
    ])
}

pub fn provider_row() -> Value {
    consumption_row(&[
        ("provider", string()),
        ("successes", nullable(integer())),
        ("successRate", nullable(number())),
        ("averageLatencyMs", nullable(number())),
    ])
}

const TEXT: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$";
/// The same, with at least one character that is not white space.
const NON_BLANK: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$";

pub fn text(max: usize) -> Value {
    json!({"type": "string", "maxLength": max, "pattern": TEXT})
}

/// `input` / `params` of a granulation (contracts §2: either may carry them).
fn granulate_params(required: bool) -> Value {
    let topic = json!({"type": "string", "minLength": 1, "maxLength": crate::types::api::MAX_TOPIC_CHARS, "pattern": NON_BLANK});
    let structure_type = one_of_strings(&structure_types());
    let mut fields = vec![
        (if required { "topic" } else { "topic?" }, topic),
        (
            if required {
                "structureType"
            } else {
                "structureType?"
            },
            structure_type,
        ),
        ("templateName?", text(64)),
        (
            "granularityLevel?",
            json!({"type": "integer", "minimum": 1, "maximum": 5}),
        ),
        (
            "targetAudience?",
            text(crate::types::api::MAX_AUDIENCE_CHARS),
        ),
        (
            "constraints?",
            object(&[
                (
                    "maxElements?",
                    json!({"type": "integer", "minimum": 1, "maximum": crate::types::api::MAX_ELEMENTS_LIMIT}),
                ),
                (
                    "counts?",
                    json!({"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}),
                ),
            ]),
        ),
        (
            "executionId?",
            json!({"type": "string", "minLength": 1, "maxLength": crate::types::api::MAX_EXECUTION_ID_LEN, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}),
        ),
    ];
    fields.push(("options?", object_any()));
    object(&fields)
}

fn exec_config() -> Value {
    object(&[
        ("aiProvider?", one_of_strings(&providers())),
        (
            "aiModel?",
            json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": NON_BLANK}),
        ),
        (
            "temperature?",
            json!({"type": "number", "minimum": 0, "maximum": 2}),
        ),
        (
            "maxTokens?",
            json!({"type": "integer", "minimum": 256, "maximum": 64000}),
        ),
        ("validation?", boolean()),
        ("async?", boolean()),
        (
            "validationLevel?",
            json!({"type": "integer", "minimum": 1, "maximum": 3}),
        ),
        (
            "validationThreshold?",
            json!({"type": "number", "minimum": 0, "maximum": 100}),
        ),
        (
            "maxCostUsd?",
            json!({"type": "number", "exclusiveMinimum": 0}),
        ),
        ("strategy?", one_of_strings(&["single", "fanout", "auto"])),
    ])
}

/// One shape per action; `config.aiModel` needs `config.aiProvider`, and a
/// model without a price is refused (422) while a budget applies.
pub fn execute_body() -> Value {
    let timeout = json!({"type": "integer", "minimum": crate::types::api::MIN_TIMEOUT_MS, "maximum": crate::types::api::MAX_TIMEOUT_MS});
    let granulate = object(&[
        ("action", one_of_strings(&["granulate", "process"])),
        ("input", granulate_params(true)),
        ("params?", granulate_params(false)),
        ("config?", exec_config()),
        ("timeout?", timeout.clone()),
    ]);
    let validate = object(&[
        ("action", one_of_strings(&["validate"])),
        (
            "input",
            object(&[
                ("jobId", json!({"type": "integer", "minimum": 1})),
                (
                    "validationLevel?",
                    json!({"type": "integer", "minimum": 1, "maximum": 3}),
                ),
                (
                    "threshold?",
                    json!({"type": "number", "minimum": 0, "maximum": 100}),
                ),
            ]),
        ),
        ("config?", exec_config()),
    ]);
    let estimate = object(&[
        ("action", one_of_strings(&["estimate"])),
        (
            "input",
            object(&[
                ("structureType", one_of_strings(&structure_types())),
                (
                    "granularityLevel?",
                    json!({"type": "integer", "minimum": 1, "maximum": 5}),
                ),
                ("topic?", text(crate::types::api::MAX_TOPIC_CHARS)),
            ]),
        ),
        ("config?", exec_config()),
    ]);
    json!({"anyOf": [granulate, validate, estimate], "description": format!("action: one of {}", Action::NAMES.join(", "))})
}

/// `GET /api/admin/alerts` (issue 27; `services::alerts::Report`).
pub fn alerts_report() -> Value {
    let state = || one_of_strings(&["ok", "warning", "firing"]);
    let signal = object(&[
        ("name", string()),
        ("subject?", string()),
        ("state", state()),
        ("value", nullable(number())),
        ("unit", string()),
        ("samples", integer()),
        (
            "threshold",
            object(&[("warning", number()), ("firing", number())]),
        ),
    ]);
    object(&[
        ("windowSeconds", integer()),
        ("since", string()),
        ("generatedAt", string()),
        ("state", state()),
        ("firing", array(string())),
        ("warning", array(string())),
        ("signals", array(signal)),
    ])
}

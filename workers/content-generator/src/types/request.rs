//! `POST /api/execute` (seed §2.2, contracts.md §2–§3): the Resource
//! Manager's request to write the content of a granulator's outline, checked
//! at the edge so that services see only valid input.
//!
//! `input` is the granulator's `output`; `params` and `config` are the
//! stage's parameters. A generation parameter may arrive in any of them:
//! `params` wins over `config`, which wins over the input's
//! `contentMetadata.standardParameters` ("read both, params wins").

use crate::types::structure::StructureType;
use bitware_kit::error::{AppError, AppResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// How long a synchronous request waits for its job (ms): then a 504 with
/// the job's links, and the job goes on.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
pub const TIMEOUT_MS: (u64, u64) = (1_000, 300_000);
pub const MAX_TOPIC_CHARS: usize = 500;
/// Audience, tone, style, language: short phrases that go into every prompt.
pub const MAX_PARAMETER_CHARS: usize = 200;
/// A written element passes the length check within ±35 % of its target.
pub const DEFAULT_WORD_TOLERANCE: f64 = 0.35;
pub const WORD_TOLERANCE: (f64, f64) = (0.05, 1.0);
/// Words one section may plan (a long novel's scenes are ~300,000): what
/// the token arithmetic downstream is sized for.
pub const MAX_SECTION_WORDS: u64 = 2_000_000;
pub const DEFAULT_AUDIENCE: &str = "general audience";
pub const DEFAULT_LANGUAGE: &str = "en";
/// Model calls streaming at once: the granulator's plan (5 when it says
/// none), at most 64; this worker's own `AI_MAX_CALLS_AT_ONCE` caps it (the
/// platform only limits six connections waiting for headers: the root's
/// ADR 0015).
pub const DEFAULT_MAX_CONCURRENT: usize = 5;
pub const MAX_CONCURRENT: usize = 64;

/// The actions this worker performs. `process` (the Resource Manager's
/// default action) is an alias of `generate`.
pub const ACTIONS: [&str; 2] = ["generate", "process"];

/// The input fields the contract requires (contracts.md §3), in its order.
pub const REQUIRED_INPUT: [&str; 6] = [
    "granulatorJobId",
    "topic",
    "structureType",
    "structure or structureReference",
    "wordCountEstimates",
    "contentMetadata",
];

/// What the prompts are written for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    pub audience: String,
    pub tone: String,
    pub style: String,
    pub language: String,
}

/// What the job does: everything that shapes its result. Stored as the
/// job's parameters and read back by a queued run; `canonical` binds the
/// idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateJob {
    pub granulator_job_id: i64,
    pub topic: String,
    pub structure_type: StructureType,
    /// The outline inline; when both are present it wins over the reference.
    pub structure: Option<Value>,
    /// `{type: "kv"|"r2", location, ...}`: the outline kept by the granulator.
    pub structure_reference: Option<Value>,
    /// The outline the granulator answered for `structure_reference` when
    /// none came inline (fetched at submit, stored with the job for its
    /// run; not part of what the idempotency key binds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched_structure: Option<Value>,
    pub word_count_estimates: Value,
    pub content_metadata: Value,
    pub parameters: Parameters,
    /// Whether optional sections (`contentSpecs.optionalSections`) are written.
    pub include_optional: bool,
    /// A written element passes the length check within ± this fraction of its target.
    pub word_tolerance: f64,
    /// A budget the request sets for itself (it can only lower the ceiling).
    pub max_cost_usd: Option<f64>,
}

/// How the caller waits: not part of what the job is.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteRequest {
    pub job: GenerateJob,
    pub timeout_ms: u64,
    pub asynchronous: bool,
}

fn bad(field: &str, message: impl Into<String>) -> AppError {
    AppError::invalid_field(field, message)
}

/// Absent and `null` are the same: not given.
fn given<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// An optional object at `v[key]`: `field` names it in the error.
fn object_at<'a>(
    v: &'a Value,
    key: &str,
    field: &str,
) -> AppResult<Option<&'a Map<String, Value>>> {
    match given(v, key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(bad(field, "must be an object")),
    }
}

impl ExecuteRequest {
    /// `{"action": "generate"|"process", "input": {granulator output},
    /// "params"?, "config"?, "timeout"?, "async"?, "maxCostUsd"?}`; every
    /// fault is a 400 naming its field, and an input that lacks contract
    /// fields is one 400 naming all of them.
    pub fn parse(body: &Value) -> AppResult<ExecuteRequest> {
        if !body.is_object() {
            return Err(AppError::bad_request(
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        // A missing action is refused, not defaulted: a paid generation runs
        // only when asked for by name (the RM sends `process` explicitly).
        match given(body, "action") {
            None => return Err(bad("action", "is required")),
            Some(Value::String(a)) if ACTIONS.contains(&a.as_str()) => {}
            Some(other) => {
                let shown = other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_string);
                return Err(bad(
                    "action",
                    format!("unknown action `{shown}`; one of {}", ACTIONS.join(", ")),
                ));
            }
        }
        let input = match given(body, "input") {
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(bad("input", "must be an object (the granulator's output)")),
            None => return Err(bad("input", "is required (the granulator's output)")),
        };
        let params = object_at(body, "params", "params")?;
        let config = object_at(body, "config", "config")?;
        let job = parse_job(input, params, config, body)?;
        let timeout_ms = match given(body, "timeout") {
            None => DEFAULT_TIMEOUT_MS,
            Some(v) => match v.as_u64() {
                Some(ms) if (TIMEOUT_MS.0..=TIMEOUT_MS.1).contains(&ms) => ms,
                _ => {
                    return Err(bad(
                        "timeout",
                        format!(
                            "must be milliseconds from {} to {}",
                            TIMEOUT_MS.0, TIMEOUT_MS.1
                        ),
                    ))
                }
            },
        };
        let asynchronous = match given(body, "async") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("async", "must be true or false")),
        };
        Ok(ExecuteRequest {
            job,
            timeout_ms,
            asynchronous,
        })
    }
}

/// The contract's fields that are absent (or null), in the contract's order.
pub fn missing_input_fields(input: &Value) -> Vec<&'static str> {
    REQUIRED_INPUT
        .into_iter()
        .filter(|name| match *name {
            "structure or structureReference" => {
                given(input, "structure").is_none() && given(input, "structureReference").is_none()
            }
            key => given(input, key).is_none(),
        })
        .collect()
}

fn parse_job(
    input: &Value,
    params: Option<&Map<String, Value>>,
    config: Option<&Map<String, Value>>,
    body: &Value,
) -> AppResult<GenerateJob> {
    let missing = missing_input_fields(input);
    if !missing.is_empty() {
        return Err(AppError::bad_request(
            "invalid_input",
            format!(
                "input is not a granulator output: it lacks {}",
                missing.join(", ")
            ),
        )
        .with_details(json!({"missing": missing})));
    }
    let granulator_job_id = match input["granulatorJobId"].as_i64() {
        Some(id) if id > 0 => id,
        _ => {
            return Err(bad(
                "input.granulatorJobId",
                "must be a positive whole number",
            ))
        }
    };
    let topic = match input["topic"].as_str().map(str::trim) {
        Some(t) if !t.is_empty() && t.chars().count() <= MAX_TOPIC_CHARS => t.to_string(),
        _ => {
            return Err(bad(
                "input.topic",
                format!("must be non-empty text of at most {MAX_TOPIC_CHARS} characters"),
            ))
        }
    };
    let structure_type = match input["structureType"]
        .as_str()
        .and_then(StructureType::parse)
    {
        Some(t) => t,
        None => {
            return Err(bad(
                "input.structureType",
                format!("must be one of {}", StructureType::names().join(", ")),
            ))
        }
    };
    let structure = match given(input, "structure") {
        None => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(bad("input.structure", "must be an object (the outline)")),
    };
    let structure_reference = match given(input, "structureReference") {
        None => None,
        Some(r) => Some(check_reference(r)?),
    };
    let word_count_estimates = check_word_counts(&input["wordCountEstimates"])?;
    let content_metadata = check_metadata(&input["contentMetadata"])?;
    let parameters = parameters(structure_type, input, &content_metadata, params, config)?;
    let include_optional = match setting(params, config, "includeOptional") {
        None => true,
        Some((_, Value::Bool(b))) => *b,
        Some((field, _)) => return Err(bad(&field, "must be true or false")),
    };
    let word_tolerance = match setting(params, config, "wordTolerance") {
        None => DEFAULT_WORD_TOLERANCE,
        Some((field, v)) => match v.as_f64() {
            Some(x) if (WORD_TOLERANCE.0..=WORD_TOLERANCE.1).contains(&x) => x,
            _ => {
                return Err(bad(
                    &field,
                    format!(
                        "must be a fraction from {} to {} (a written element's allowed distance from its target words)",
                        WORD_TOLERANCE.0, WORD_TOLERANCE.1
                    ),
                ))
            }
        },
    };
    let max_cost_usd = match given(body, "maxCostUsd") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Some(x),
            _ => return Err(bad("maxCostUsd", "must be a positive number (USD)")),
        },
    };
    Ok(GenerateJob {
        granulator_job_id,
        topic,
        structure_type,
        structure,
        structure_reference,
        fetched_structure: None,
        word_count_estimates,
        content_metadata,
        parameters,
        include_optional,
        word_tolerance,
        max_cost_usd,
    })
}

/// `params.<key>`, else `config.<key>`, with the field's name for errors.
fn setting<'a>(
    params: Option<&'a Map<String, Value>>,
    config: Option<&'a Map<String, Value>>,
    key: &str,
) -> Option<(String, &'a Value)> {
    let from = |m: Option<&'a Map<String, Value>>, name: &str| {
        m.and_then(|m| m.get(key))
            .filter(|v| !v.is_null())
            .map(|v| (format!("{name}.{key}"), v))
    };
    from(params, "params").or_else(|| from(config, "config"))
}

fn check_reference(r: &Value) -> AppResult<Value> {
    if !r.is_object() {
        return Err(bad(
            "input.structureReference",
            "must be an object {type, location}",
        ));
    }
    match r["type"].as_str() {
        Some("kv" | "r2") => {}
        _ => return Err(bad("input.structureReference.type", "must be kv or r2")),
    }
    match r["location"].as_str() {
        Some(l) if !l.trim().is_empty() => {}
        _ => {
            return Err(bad(
                "input.structureReference.location",
                "must be non-empty text (the granulator's storage key)",
            ))
        }
    }
    Ok(r.clone())
}

fn check_word_counts(w: &Value) -> AppResult<Value> {
    if !w.is_object() {
        return Err(bad("input.wordCountEstimates", "must be an object"));
    }
    if let Some(by_section) = object_at(w, "bySection", "input.wordCountEstimates.bySection")? {
        for (section, words) in by_section {
            if words.as_u64().is_none_or(|w| w > MAX_SECTION_WORDS) {
                return Err(bad(
                    &format!("input.wordCountEstimates.bySection.{section}"),
                    format!("must be a whole number of words, at most {MAX_SECTION_WORDS}"),
                ));
            }
        }
    }
    Ok(w.clone())
}

fn check_metadata(m: &Value) -> AppResult<Value> {
    if !m.is_object() {
        return Err(bad("input.contentMetadata", "must be an object"));
    }
    let field = |rest: &str| format!("input.contentMetadata.{rest}");
    object_at(m, "standardParameters", &field("standardParameters"))?;
    if let Some(specs) = object_at(m, "contentSpecs", &field("contentSpecs"))? {
        for key in ["requiredSections", "optionalSections"] {
            match specs.get(key).filter(|v| !v.is_null()) {
                None => {}
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
                Some(_) => {
                    return Err(bad(
                        &field(&format!("contentSpecs.{key}")),
                        "must be a list of section names",
                    ))
                }
            }
        }
    }
    if let Some(q) = object_at(m, "qualityRequirements", &field("qualityRequirements"))? {
        match q.get("minQualityScore").filter(|v| !v.is_null()) {
            None => {}
            Some(v) if v.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)) => {}
            Some(_) => {
                return Err(bad(
                    &field("qualityRequirements.minQualityScore"),
                    "must be a number from 0 to 1",
                ))
            }
        }
    }
    Ok(m.clone())
}

/// Audience, tone, style, language: `params`, else `config`, else the
/// input's `standardParameters` (audience also its top-level
/// `targetAudience`), else the type's defaults.
fn parameters(
    t: StructureType,
    input: &Value,
    metadata: &Value,
    params: Option<&Map<String, Value>>,
    config: Option<&Map<String, Value>>,
) -> AppResult<Parameters> {
    let standard = &metadata["standardParameters"];
    let pick = |key: &str, default: &str| -> AppResult<String> {
        let from_input = given(standard, key)
            .map(|v| (format!("input.contentMetadata.standardParameters.{key}"), v))
            .or_else(|| {
                (key == "targetAudience")
                    .then(|| given(input, key).map(|v| (format!("input.{key}"), v)))
                    .flatten()
            });
        match setting(params, config, key).or(from_input) {
            None => Ok(default.to_string()),
            Some((field, v)) => match v.as_str().map(str::trim) {
                Some(s) if !s.is_empty() && s.chars().count() <= MAX_PARAMETER_CHARS => {
                    Ok(s.to_string())
                }
                _ => Err(bad(
                    &field,
                    format!("must be non-empty text of at most {MAX_PARAMETER_CHARS} characters"),
                )),
            },
        }
    };
    let spec = t.spec();
    Ok(Parameters {
        audience: pick("targetAudience", DEFAULT_AUDIENCE)?,
        tone: pick("tone", spec.tone)?,
        style: pick("style", spec.style)?,
        language: pick("language", DEFAULT_LANGUAGE)?,
    })
}

impl GenerateJob {
    /// What the idempotency key is bound to: everything that shapes the
    /// result (not how the caller waits). An outline sent by reference is
    /// bound by its reference, not by what the granulator answered for it
    /// (`fetched_structure`): a retry is the same request whatever the fetch.
    pub fn canonical(&self) -> Value {
        json!({
            "granulatorJobId": self.granulator_job_id,
            "topic": self.topic,
            "structureType": self.structure_type,
            "structure": self.structure,
            "structureReference": self.structure_reference,
            "wordCountEstimates": self.word_count_estimates,
            "contentMetadata": self.content_metadata,
            "parameters": self.parameters,
            "includeOptional": self.include_optional,
            "wordTolerance": self.word_tolerance,
            "maxCostUsd": self.max_cost_usd,
        })
    }

    /// `contentMetadata.qualityRequirements.minQualityScore`, 0.7 without it.
    pub fn min_quality_score(&self) -> f64 {
        self.content_metadata["qualityRequirements"]["minQualityScore"]
            .as_f64()
            .unwrap_or(0.7)
    }

    /// `contentMetadata.generationStrategy.maxConcurrent`, kept within
    /// 1..=[`MAX_CONCURRENT`].
    pub fn max_concurrent(&self) -> usize {
        self.content_metadata["generationStrategy"]["maxConcurrent"]
            .as_u64()
            .map_or(DEFAULT_MAX_CONCURRENT, |n| {
                n.clamp(1, MAX_CONCURRENT as u64) as usize
            })
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;

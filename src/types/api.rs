//! Parsing of `POST /api/execute` bodies (seed §2.2, contracts §2).
//!
//! The Resource Manager passes the previous stage's output or the client's
//! data as `input` and the stage's parameters as `params`; a field may arrive
//! in either and `params` wins. Unknown fields are ignored (the RM forwards
//! whole outputs); a known field of the wrong type or out of range is a 400
//! that names it, e.g. `params.granularityLevel`.

use crate::error::{AppError, AppResult};
use crate::helpers::prompts::{MAX_AUDIENCE_CHARS, MAX_TOPIC_CHARS};
use crate::services::ai_provider::ProviderKind;
use crate::services::validation::Constraints;
use crate::types::structure::{Granularity, StructureType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// The shortest `timeout` (how long the caller waits). Before issue 12 it was
/// also the job's deadline, and at 1 s every job failed 504 before its first
/// call (found by Schemathesis); a job now runs to JOB_TIMEOUT_MS whatever
/// the caller waits, so 1 s is a valid wait.
pub const MIN_TIMEOUT_MS: u64 = 1_000;
pub const MAX_TIMEOUT_MS: u64 = 300_000;
pub const MAX_ELEMENTS_LIMIT: u32 = 1_000;
pub const MAX_EXECUTION_ID_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Granulate,
    Validate,
    Estimate,
}

impl Action {
    pub const NAMES: [&'static str; 4] = ["granulate", "process", "validate", "estimate"];

    pub fn parse(name: &str) -> Option<Action> {
        match name {
            // `process` is the Resource Manager's default action.
            "granulate" | "process" => Some(Action::Granulate),
            "validate" => Some(Action::Validate),
            "estimate" => Some(Action::Estimate),
            _ => None,
        }
    }
}

/// What a granulation needs, after merging `input` and `params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GranulateParams {
    pub topic: String,
    pub structure_type: Option<StructureType>,
    pub template_name: Option<String>,
    pub granularity_level: Granularity,
    pub target_audience: Option<String>,
    pub max_elements: Option<u32>,
    #[serde(default)]
    pub counts: BTreeMap<String, u32>,
    #[serde(default)]
    pub options: Value,
}

impl GranulateParams {
    pub fn constraints(&self) -> Constraints {
        Constraints {
            max_elements: self.max_elements,
            counts: self.counts.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecConfig {
    pub ai_provider: Option<ProviderKind>,
    pub ai_model: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Run validation after granulating (default: when a level is given).
    pub validation: Option<bool>,
    pub validation_level: Option<u8>,
    pub validation_threshold: Option<f64>,
    pub max_cost_usd: Option<f64>,
}

/// Everything a granulation job is run with; stored for `POST /jobs/{id}/retry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRequest {
    pub params: GranulateParams,
    pub config: ExecConfig,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExecuteRequest {
    Granulate {
        request: JobRequest,
        execution_id: Option<String>,
        /// `config.async: true`: answer 202 and run in the queue.
        asynchronous: bool,
    },
    Validate {
        job_id: i64,
        level: Option<u8>,
        threshold: Option<f64>,
    },
    Estimate {
        params: GranulateParams,
        config: ExecConfig,
    },
}

/// Control characters refused in free text: C0 and C1 controls and DEL,
/// except tab, line feed and carriage return (prompts fold those to spaces).
/// NUL is refused for the whole body earlier (`helpers::http::read_json`).
pub fn forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Reads a field from `params`, else `input`, naming its source in errors.
struct Fields<'a> {
    input: Option<&'a Map<String, Value>>,
    params: Option<&'a Map<String, Value>>,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<(String, &'a Value)> {
        let pick = |src: Option<&'a Map<String, Value>>, label: &str| {
            src.and_then(|m| m.get(name))
                .filter(|v| !v.is_null())
                .map(|v| (format!("{label}.{name}"), v))
        };
        pick(self.params, "params").or_else(|| pick(self.input, "input"))
    }

    fn string(&self, name: &str, max_chars: usize) -> AppResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some((field, Value::String(s))) => {
                let s = s.trim();
                if let Some(c) = s.chars().find(|c| forbidden_control(*c)) {
                    Err(AppError::invalid_field(
                        &field,
                        format!(
                            "must not contain control characters (found U+{:04X}); tab, line feed and carriage return are allowed",
                            c as u32
                        ),
                    ))
                } else if s.chars().count() > max_chars {
                    Err(AppError::invalid_field(
                        &field,
                        format!("must be at most {max_chars} characters"),
                    ))
                } else if s.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some(s.to_string()))
                }
            }
            Some((field, _)) => Err(AppError::invalid_field(&field, "must be a string")),
        }
    }

    fn integer(&self, name: &str, min: i64, max: i64) -> AppResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some((field, v)) => integer_in(&field, v, min, max).map(Some),
        }
    }
}

fn integer_in(field: &str, v: &Value, min: i64, max: i64) -> AppResult<i64> {
    let n = v
        .as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64));
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(AppError::invalid_field(
            field,
            format!("must be an integer from {min} to {max}"),
        )),
    }
}

fn number_in(field: &str, v: Option<&Value>, min: f64, max: f64) -> AppResult<Option<f64>> {
    match v.filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n >= min && n <= max => Ok(Some(n)),
            _ => Err(AppError::invalid_field(
                field,
                format!("must be a number from {min} to {max}"),
            )),
        },
    }
}

fn object<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> AppResult<Option<&'a Map<String, Value>>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(AppError::invalid_field(name, "must be an object")),
    }
}

pub fn parse_execute(body: &Value, request_id_header: Option<&str>) -> AppResult<ExecuteRequest> {
    let body = body
        .as_object()
        .ok_or_else(|| AppError::bad_request("invalid_body", "the body must be a JSON object"))?;
    // No default: a body without an action must not start a paid generation.
    let action_name = match body.get("action") {
        None | Some(Value::Null) => {
            return Err(AppError::bad_request(
                "missing_action",
                format!(
                    "action is required; valid actions: {}",
                    Action::NAMES.join(", ")
                ),
            )
            .with_details(serde_json::json!({"field": "action", "validActions": Action::NAMES})))
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(AppError::invalid_field("action", "must be a string")),
    };
    let action = Action::parse(action_name).ok_or_else(|| {
        AppError::bad_request(
            "unknown_action",
            format!(
                "unknown action `{action_name}`; valid actions: {}",
                Action::NAMES.join(", ")
            ),
        )
        .with_details(serde_json::json!({"field": "action", "validActions": Action::NAMES}))
    })?;
    let fields = Fields {
        input: object(body, "input")?,
        params: object(body, "params")?,
    };
    let config = parse_config(object(body, "config")?)?;
    let timeout_ms = match body.get("timeout").filter(|v| !v.is_null()) {
        None => DEFAULT_TIMEOUT_MS,
        Some(v) => integer_in("timeout", v, MIN_TIMEOUT_MS as i64, MAX_TIMEOUT_MS as i64)? as u64,
    };
    match action {
        Action::Validate => {
            let job_id = fields.integer("jobId", 1, i64::MAX)?.ok_or_else(|| {
                AppError::invalid_field("input.jobId", "is required for validate")
            })?;
            Ok(ExecuteRequest::Validate {
                job_id,
                level: config.validation_level,
                threshold: config.validation_threshold,
            })
        }
        Action::Estimate => Ok(ExecuteRequest::Estimate {
            params: parse_params(&fields, false)?,
            config,
        }),
        Action::Granulate => {
            let params = parse_params(&fields, true)?;
            let from_input = fields.string("executionId", MAX_EXECUTION_ID_LEN)?;
            let execution_id = match request_id_header.map(str::trim).filter(|s| !s.is_empty()) {
                Some(h) if h.len() > MAX_EXECUTION_ID_LEN => {
                    return Err(AppError::invalid_field(
                        "X-Request-ID",
                        format!("must be at most {MAX_EXECUTION_ID_LEN} characters"),
                    ))
                }
                Some(h) => Some(h.to_string()),
                None => from_input,
            };
            if execution_id
                .as_deref()
                .is_some_and(|id| id.chars().any(char::is_control))
            {
                return Err(AppError::invalid_field(
                    "executionId",
                    "must not contain control characters",
                ));
            }
            // How the caller waits, not what it asks for: kept out of `config`
            // (and so out of the idempotency hash).
            let asynchronous = match body.get("config").and_then(|c| c.get("async")) {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(AppError::invalid_field("config.async", "must be a boolean"))
                }
            };
            Ok(ExecuteRequest::Granulate {
                request: JobRequest {
                    params,
                    config,
                    timeout_ms,
                },
                execution_id,
                asynchronous,
            })
        }
    }
}

pub fn parse_params_object(value: &Value, topic_required: bool) -> AppResult<GranulateParams> {
    let map = value
        .as_object()
        .ok_or_else(|| AppError::bad_request("invalid_body", "the body must be a JSON object"))?;
    parse_params(
        &Fields {
            input: Some(map),
            params: None,
        },
        topic_required,
    )
}

fn parse_params(fields: &Fields, topic_required: bool) -> AppResult<GranulateParams> {
    let topic = fields.string("topic", MAX_TOPIC_CHARS)?;
    let topic = match (topic, topic_required) {
        (Some(t), _) => t,
        (None, true) => return Err(AppError::invalid_field("input.topic", "is required")),
        (None, false) => "a representative topic".to_string(),
    };
    let structure_type = match fields.get("structureType") {
        None => None,
        Some((field, Value::String(s))) => Some(StructureType::parse(s).ok_or_else(|| {
            AppError::invalid_field(
                &field,
                format!("`{s}` is not one of {}", StructureType::names().join(", ")),
            )
        })?),
        Some((field, _)) => return Err(AppError::invalid_field(&field, "must be a string")),
    };
    let template_name = fields.string("templateName", 64)?;
    if structure_type.is_none() && template_name.is_none() {
        return Err(AppError::invalid_field(
            "input.structureType",
            format!(
                "is required (or templateName); one of {}",
                StructureType::names().join(", ")
            ),
        ));
    }
    let granularity_level = match fields.integer("granularityLevel", 1, 5)? {
        Some(n) => Granularity::new(n).unwrap_or(Granularity::DEFAULT),
        None => Granularity::DEFAULT,
    };
    let (max_elements, counts) = match fields.get("constraints") {
        None => (None, BTreeMap::new()),
        Some((field, Value::Object(c))) => parse_constraints(&field, c)?,
        Some((field, _)) => return Err(AppError::invalid_field(&field, "must be an object")),
    };
    let options = match fields.get("options") {
        None => Value::Object(Map::new()),
        Some((_, v @ Value::Object(_))) => v.clone(),
        Some((field, _)) => return Err(AppError::invalid_field(&field, "must be an object")),
    };
    Ok(GranulateParams {
        topic,
        structure_type,
        template_name,
        granularity_level,
        target_audience: fields.string("targetAudience", MAX_AUDIENCE_CHARS)?,
        max_elements,
        counts,
        options,
    })
}

fn parse_constraints(
    field: &str,
    c: &Map<String, Value>,
) -> AppResult<(Option<u32>, BTreeMap<String, u32>)> {
    let max_elements = match c.get("maxElements").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(integer_in(
            &format!("{field}.maxElements"),
            v,
            1,
            MAX_ELEMENTS_LIMIT as i64,
        )? as u32),
    };
    let mut counts = BTreeMap::new();
    match c.get("counts").filter(|v| !v.is_null()) {
        None => {}
        Some(Value::Object(m)) => {
            for (level, v) in m {
                counts.insert(
                    level.clone(),
                    integer_in(&format!("{field}.counts.{level}"), v, 1, 50)? as u32,
                );
            }
        }
        Some(_) => {
            return Err(AppError::invalid_field(
                &format!("{field}.counts"),
                "must be an object of level: count",
            ))
        }
    }
    Ok((max_elements, counts))
}

/// Check `counts` against the resolved type (known levels, inside the rules).
pub fn check_counts(
    params: &GranulateParams,
    structure_type: StructureType,
    rules: &crate::services::validation::StructureRules,
) -> AppResult<()> {
    let spec = structure_type.spec();
    for (level, n) in &params.counts {
        let Some((depth, _)) = spec.level(level) else {
            let keys: Vec<&str> = spec.levels.iter().map(|l| l.key).collect();
            return Err(AppError::invalid_field(
                &format!("constraints.counts.{level}"),
                format!(
                    "is not a level of {structure_type}; levels: {}",
                    keys.join(", ")
                ),
            ));
        };
        let (min, max) = rules.range(depth);
        if !(min..=max).contains(n) {
            return Err(AppError::invalid_field(
                &format!("constraints.counts.{level}"),
                format!("must be within the level rule {min}-{max}"),
            ));
        }
    }
    Ok(())
}

pub fn parse_config(config: Option<&Map<String, Value>>) -> AppResult<ExecConfig> {
    let Some(c) = config else {
        return Ok(ExecConfig::default());
    };
    let get = |name: &str| c.get(name).filter(|v| !v.is_null());
    let string = |name: &str| -> AppResult<Option<String>> {
        match get(name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 100 => {
                Ok(Some(s.trim().to_string()))
            }
            Some(_) => Err(AppError::invalid_field(
                &format!("config.{name}"),
                "must be a non-empty string of at most 100 characters",
            )),
        }
    };
    let ai_provider = match string("aiProvider")? {
        None => None,
        Some(name) => Some(ProviderKind::parse(&name).ok_or_else(|| {
            let names: Vec<&str> = ProviderKind::ALL.iter().map(|p| p.as_str()).collect();
            AppError::invalid_field(
                "config.aiProvider",
                format!("`{name}` is not one of {}", names.join(", ")),
            )
        })?),
    };
    let ai_model = string("aiModel")?;
    if ai_model.is_some() && ai_provider.is_none() {
        return Err(AppError::invalid_field(
            "config.aiModel",
            "needs config.aiProvider: a model belongs to one provider",
        ));
    }
    let validation = match get("validation") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(AppError::invalid_field(
                "config.validation",
                "must be true or false",
            ))
        }
    };
    Ok(ExecConfig {
        ai_provider,
        ai_model,
        temperature: number_in("config.temperature", get("temperature"), 0.0, 2.0)?,
        max_tokens: match get("maxTokens") {
            None => None,
            Some(v) => Some(integer_in("config.maxTokens", v, 256, 64_000)? as u32),
        },
        validation,
        validation_level: match get("validationLevel") {
            None => None,
            Some(v) => Some(integer_in("config.validationLevel", v, 1, 3)? as u8),
        },
        validation_threshold: number_in(
            "config.validationThreshold",
            get("validationThreshold"),
            0.0,
            100.0,
        )?,
        max_cost_usd: match number_in("config.maxCostUsd", get("maxCostUsd"), 0.0, 100.0)? {
            Some(c) if c <= 0.0 => {
                return Err(AppError::invalid_field(
                    "config.maxCostUsd",
                    "must be above 0",
                ))
            }
            other => other,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Bodies of these tests are about other fields: they name the action.
    fn act(mut body: Value) -> Value {
        if let Some(map) = body.as_object_mut() {
            map.entry("action").or_insert(json!("granulate"));
        }
        body
    }

    fn granulate(body: Value) -> AppResult<JobRequest> {
        match parse_execute(&act(body), None)? {
            ExecuteRequest::Granulate { request, .. } => Ok(request),
            other => panic!("{other:?}"),
        }
    }

    fn field_of(e: AppError) -> String {
        e.details
            .map(|d| d["field"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    #[test]
    fn params_win_over_input_and_defaults_apply() {
        let r = granulate(json!({"action": "process", "input": {"topic": " Rust ", "structureType": "quiz", "granularityLevel": 2},
            "params": {"structureType": "course"}})).unwrap();
        assert_eq!(r.params.topic, "Rust");
        assert_eq!(r.params.structure_type, Some(StructureType::Course));
        assert_eq!(r.params.granularity_level.get(), 2);
        assert_eq!(r.timeout_ms, DEFAULT_TIMEOUT_MS);
        let r =
            granulate(json!({"input": {"topic": "x", "templateName": "three_act_novel"}})).unwrap();
        assert_eq!(r.params.granularity_level, Granularity::DEFAULT);
    }

    #[test]
    fn a_missing_or_null_action_is_a_400_listing_the_valid_ones() {
        for body in [
            json!({"input": {"topic": "x", "structureType": "quiz"}}),
            json!({"action": null, "input": {"topic": "x", "structureType": "quiz"}}),
        ] {
            let e = parse_execute(&body, None).unwrap_err();
            assert_eq!((e.status(), e.code), (400, "missing_action"), "{body}");
            assert_eq!(e.details.unwrap()["validActions"], json!(Action::NAMES));
        }
    }

    #[test]
    fn control_characters_in_text_and_ids_are_400s_naming_the_field() {
        for (body, field) in [
            (
                json!({"input": {"topic": "Rust\u{1b}[2J", "structureType": "quiz"}}),
                "input.topic",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "quiz", "targetAudience": "a\u{7f}"}}),
                "input.targetAudience",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "quiz", "executionId": "id\tx"}}),
                "executionId",
            ),
        ] {
            let e = parse_execute(&act(body.clone()), None).unwrap_err();
            assert_eq!(e.status(), 400, "{body}");
            assert_eq!(field_of(e), field, "{body}");
        }
        let ok =
            granulate(json!({"input": {"topic": "Rust\townership\r\n", "structureType": "quiz"}}));
        assert!(ok.is_ok(), "tab, CR and LF are allowed in free text");
        assert!(forbidden_control('\u{0}') && forbidden_control('\u{85}'));
        assert!(!forbidden_control('\n') && !forbidden_control('é'));
    }

    #[test]
    fn unknown_actions_list_the_valid_ones() {
        let e = parse_execute(&json!({"action": "delete_everything"}), None).unwrap_err();
        assert_eq!(e.code, "unknown_action");
        assert!(e.message.contains("granulate, process, validate, estimate"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (json!({"input": {"structureType": "course"}}), "input.topic"),
            (
                json!({"input": {"topic": 5, "structureType": "course"}}),
                "input.topic",
            ),
            (
                json!({"input": {"topic": "x".repeat(501), "structureType": "course"}}),
                "input.topic",
            ),
            (json!({"input": {"topic": "x"}}), "input.structureType"),
            (
                json!({"input": {"topic": "x", "structureType": "poem"}}),
                "input.structureType",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course"}, "params": {"granularityLevel": 6}}),
                "params.granularityLevel",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course", "granularityLevel": "3"}}),
                "input.granularityLevel",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course", "constraints": {"maxElements": 0}}}),
                "input.constraints.maxElements",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course", "constraints": {"counts": {"modules": "many"}}}}),
                "input.constraints.counts.modules",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course"}, "config": {"aiProvider": "skynet"}}),
                "config.aiProvider",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course"}, "config": {"aiModel": "gpt-4o"}}),
                "config.aiModel",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course"}, "config": {"temperature": 3}}),
                "config.temperature",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course"}, "config": {"maxTokens": 10}}),
                "config.maxTokens",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course"}, "config": {"validationLevel": 4}}),
                "config.validationLevel",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course"}, "config": {"validationThreshold": -1}}),
                "config.validationThreshold",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course"}, "config": {"maxCostUsd": 0}}),
                "config.maxCostUsd",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course"}, "config": {"validation": "yes"}}),
                "config.validation",
            ),
            (
                json!({"input": {"topic": "x", "structureType": "course"}, "timeout": 10}),
                "timeout",
            ),
            (json!({"input": "topic"}), "input"),
            (json!({"action": 7}), "action"),
        ];
        for (body, field) in cases {
            let body = act(body);
            let e = parse_execute(&body, None).unwrap_err();
            assert_eq!(e.status(), 400, "{body}");
            assert_eq!(field_of(e), field, "{body}");
        }
    }

    #[test]
    fn request_id_header_is_the_idempotency_key() {
        let body = act(
            json!({"input": {"topic": "x", "structureType": "course", "executionId": "from-input"}}),
        );
        let ExecuteRequest::Granulate { execution_id, .. } =
            parse_execute(&body, Some("rm-123")).unwrap()
        else {
            panic!()
        };
        assert_eq!(execution_id.as_deref(), Some("rm-123"));
        let ExecuteRequest::Granulate { execution_id, .. } = parse_execute(&body, None).unwrap()
        else {
            panic!()
        };
        assert_eq!(execution_id.as_deref(), Some("from-input"));
        assert_eq!(
            parse_execute(&body, Some(&"x".repeat(200)))
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn validate_needs_a_job_id_and_estimate_needs_no_topic() {
        assert_eq!(
            field_of(parse_execute(&json!({"action": "validate", "input": {}}), None).unwrap_err()),
            "input.jobId"
        );
        let ok = parse_execute(
            &json!({"action": "validate", "input": {"jobId": 4}, "config": {"validationLevel": 2}}),
            None,
        )
        .unwrap();
        assert_eq!(
            ok,
            ExecuteRequest::Validate {
                job_id: 4,
                level: Some(2),
                threshold: None
            }
        );
        assert!(matches!(
            parse_execute(
                &json!({"action": "estimate", "params": {"structureType": "quiz"}}),
                None
            )
            .unwrap(),
            ExecuteRequest::Estimate { .. }
        ));
    }

    #[test]
    fn counts_are_checked_against_the_resolved_type() {
        let r = granulate(json!({"input": {"topic": "x", "structureType": "course", "constraints": {"counts": {"questions": 3}}}})).unwrap();
        let rules = crate::services::validation::StructureRules::contract(StructureType::Course);
        assert!(check_counts(&r.params, StructureType::Course, &rules)
            .unwrap_err()
            .message
            .contains("not a level of course"));
        let r = granulate(json!({"input": {"topic": "x", "structureType": "course", "constraints": {"counts": {"modules": 20}}}})).unwrap();
        assert!(check_counts(&r.params, StructureType::Course, &rules).is_err());
    }
}

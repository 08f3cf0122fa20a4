//! Parsing of `POST /api/execute` bodies (seed §2.2, contracts §2).
//!
//! The Resource Manager passes the previous stage's output or the client's
//! data as `input` and the stage's parameters as `params`; a field may arrive
//! in either and `params` wins. Unknown fields are ignored (the RM forwards
//! whole outputs); a known field of the wrong type or out of range is a 400
//! that names it, e.g. `params.granularityLevel`.

use crate::types::api::{
    valid_request_id, Action, ExecConfig, ExecuteRequest, GranulateParams, JobRequest, Strategy,
    DEFAULT_TIMEOUT_MS, MAX_AUDIENCE_CHARS, MAX_CONFIG_NAME_CHARS, MAX_COST_USD,
    MAX_ELEMENTS_LIMIT, MAX_EXECUTION_ID_LEN, MAX_TEMPLATE_NAME_CHARS, MAX_TIMEOUT_MS,
    MAX_TOPIC_CHARS, MIN_TIMEOUT_MS,
};
use crate::types::provider::ProviderKind;
use crate::types::rules::StructureRules;
use crate::types::structure::{Granularity, StructureType};
use bitware_kit::error::{AppError, AppResult};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Control characters refused in free text: C0 and C1 controls and DEL,
/// except tab, line feed and carriage return (prompts fold those to spaces).
/// NUL is refused for the whole body earlier (`helpers::http::read_json`).
pub fn forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Reads a field from `params`, else `input`, naming its source in errors.
/// A field sent in both is checked in both (a wrong value is a 400 wherever
/// it is, as the document says); `params` wins. Null counts as not sent,
/// and so does blank text, so a blank `params.topic` leaves `input.topic`.
struct Fields<'a> {
    input: Option<&'a Map<String, Value>>,
    params: Option<&'a Map<String, Value>>,
}

impl<'a> Fields<'a> {
    /// The field's non-null values, `params` first, each with its name.
    fn all(&self, name: &str) -> Vec<(String, &'a Value)> {
        [("params", self.params), ("input", self.input)]
            .into_iter()
            .filter_map(|(label, src)| {
                src.and_then(|m| m.get(name))
                    .filter(|v| !v.is_null())
                    .map(|v| (format!("{label}.{name}"), v))
            })
            .collect()
    }

    /// The first of the field's values, each checked by `check` (`None`:
    /// counts as not sent).
    fn first<T>(
        &self,
        name: &str,
        check: impl Fn(&str, &'a Value) -> AppResult<Option<T>>,
    ) -> AppResult<Option<T>> {
        let mut first = None;
        for (field, v) in self.all(name) {
            let checked = check(&field, v)?;
            if first.is_none() {
                first = checked;
            }
        }
        Ok(first)
    }

    fn string(&self, name: &str, max_chars: usize) -> AppResult<Option<String>> {
        self.first(name, |field, v| match v {
            Value::String(s) => {
                let s = s.trim();
                if let Some(c) = s.chars().find(|c| forbidden_control(*c)) {
                    Err(AppError::invalid_field(
                        field,
                        format!(
                            "must not contain control characters (found U+{:04X}); tab, line feed and carriage return are allowed",
                            c as u32
                        ),
                    ))
                } else if s.chars().count() > max_chars {
                    Err(AppError::invalid_field(
                        field,
                        format!("must be at most {max_chars} characters"),
                    ))
                } else if s.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some(s.to_string()))
                }
            }
            _ => Err(AppError::invalid_field(field, "must be a string")),
        })
    }

    fn integer(&self, name: &str, min: i64, max: i64) -> AppResult<Option<i64>> {
        self.first(name, |field, v| integer_in(field, v, min, max).map(Some))
    }
}

/// An integer from `min` to `max`; `2.0` is the integer 2 (JSON Schema's
/// `integer` counts it as one, so the document allows it).
pub(crate) fn integer_in(field: &str, v: &Value, min: i64, max: i64) -> AppResult<i64> {
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
    // Sent, the header must be a valid key whatever the action (an empty
    // one is refused, not read as absent): the document's pattern.
    let request_id = match request_id_header.map(str::trim) {
        None => None,
        Some(h) if valid_request_id(h) => Some(h.to_string()),
        Some(_) => {
            return Err(AppError::invalid_field(
                "X-Request-ID",
                format!(
                    "must be 1 to {MAX_EXECUTION_ID_LEN} printable ASCII characters without spaces"
                ),
            ))
        }
    };
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
            let execution_id = request_id.or(from_input);
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

fn parse_params(fields: &Fields<'_>, topic_required: bool) -> AppResult<GranulateParams> {
    let topic = fields.string("topic", MAX_TOPIC_CHARS)?;
    let topic = match (topic, topic_required) {
        (Some(t), _) => t,
        (None, true) => return Err(AppError::invalid_field("input.topic", "is required")),
        (None, false) => "a representative topic".to_string(),
    };
    let structure_type = fields.first("structureType", |field, v| match v {
        Value::String(s) => StructureType::parse(s).map(Some).ok_or_else(|| {
            AppError::invalid_field(
                field,
                format!("`{s}` is not one of {}", StructureType::names().join(", ")),
            )
        }),
        _ => Err(AppError::invalid_field(field, "must be a string")),
    })?;
    let template_name = fields.string("templateName", MAX_TEMPLATE_NAME_CHARS)?;
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
    let (max_elements, counts) = fields
        .first("constraints", |field, v| match v {
            Value::Object(c) => parse_constraints(field, c).map(Some),
            _ => Err(AppError::invalid_field(field, "must be an object")),
        })?
        .unwrap_or_default();
    let options = fields
        .first("options", |field, v| match v {
            Value::Object(_) => Ok(Some(v.clone())),
            _ => Err(AppError::invalid_field(field, "must be an object")),
        })?
        .unwrap_or_else(|| Value::Object(Map::new()));
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
    rules: &StructureRules,
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
            Some(Value::String(s))
                if !s.trim().is_empty()
                    && s.chars().count() <= MAX_CONFIG_NAME_CHARS
                    && !s.chars().any(forbidden_control) =>
            {
                Ok(Some(s.trim().to_string()))
            }
            Some(_) => Err(AppError::invalid_field(
                &format!("config.{name}"),
                format!("must be a non-blank string of at most {MAX_CONFIG_NAME_CHARS} characters without control characters"),
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
    let strategy = match string("strategy")? {
        None => None,
        Some(name) => Some(Strategy::parse(&name).ok_or_else(|| {
            AppError::invalid_field(
                "config.strategy",
                format!("`{name}` is not one of single, fanout, auto"),
            )
        })?),
    };
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
        max_cost_usd: match number_in("config.maxCostUsd", get("maxCostUsd"), 0.0, MAX_COST_USD)? {
            Some(c) if c <= 0.0 => {
                return Err(AppError::invalid_field(
                    "config.maxCostUsd",
                    "must be above 0",
                ))
            }
            other => other,
        },
        strategy,
    })
}
#[cfg(test)]
mod tests;

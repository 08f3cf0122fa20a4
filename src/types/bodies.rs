//! The bodies of `POST /api/validate` and `POST /api/economy/estimate`,
//! parsed once here like `api::parse_execute` parses `POST /api/execute`.

use crate::types::api::{ExecConfig, GranulateParams};
use crate::types::provider::ProviderKind;
use crate::types::request::{integer_in, parse_config, parse_params_object};
use bitware_kit::error::{AppError, AppResult};
use serde_json::{json, Map, Value};

/// Validate a completed job again, at a level and threshold or the template's.
#[derive(Debug, Clone, PartialEq)]
pub struct Revalidation {
    pub job_id: i64,
    pub level: Option<u8>,
    pub threshold: Option<f64>,
}

/// `POST /api/validate`: `{"jobId", "validationLevel"?, "threshold"?}`.
pub fn parse_validate(body: &Value) -> AppResult<Revalidation> {
    let job_id = match body.get("jobId").filter(|v| !v.is_null()) {
        Some(v) => integer_in("jobId", v, 1, i64::MAX)?,
        None => {
            return Err(AppError::invalid_field(
                "jobId",
                "must be a positive integer",
            ))
        }
    };
    let level = match body.get("validationLevel").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(integer_in("validationLevel", v, 1, 3)? as u8),
    };
    let threshold = match body.get("threshold").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|t| (0.0..=100.0).contains(t))
                .ok_or_else(|| {
                    AppError::invalid_field("threshold", "must be a number from 0 to 100")
                })?,
        ),
    };
    Ok(Revalidation {
        job_id,
        level,
        threshold,
    })
}

/// `POST /api/economy/estimate`: a granulation's parameters (topic optional)
/// with `aiProvider`, `aiModel` and `validationLevel` beside them. A model
/// alone names its provider (`provider_of`), so any priced model can be
/// estimated whether or not its provider is configured.
pub fn parse_estimate(
    body: &Value,
    provider_of: impl Fn(&str) -> ProviderKind,
) -> AppResult<(GranulateParams, ExecConfig)> {
    let provider = body
        .get("aiProvider")
        .filter(|v| !v.is_null())
        .cloned()
        .or_else(|| {
            body.get("aiModel")
                .and_then(Value::as_str)
                .map(|m| json!(provider_of(m.trim())))
        });
    let mut config = Map::new();
    for (name, value) in [
        ("aiProvider", provider),
        ("aiModel", body.get("aiModel").cloned()),
        ("validationLevel", body.get("validationLevel").cloned()),
    ] {
        if let Some(v) = value {
            config.insert(name.to_string(), v);
        }
    }
    // The config is checked first, as `parse_execute` checks it.
    let config = parse_config(Some(&config))?;
    Ok((parse_params_object(body, false)?, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: AppError) -> String {
        e.details
            .as_ref()
            .and_then(|d| d["field"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| e.message.clone())
    }

    #[test]
    fn a_validate_body_needs_a_positive_job_id_and_checks_level_and_threshold() {
        assert_eq!(
            parse_validate(&json!({"jobId": 7, "validationLevel": 2, "threshold": 60})).unwrap(),
            Revalidation {
                job_id: 7,
                level: Some(2),
                threshold: Some(60.0)
            }
        );
        assert_eq!(
            parse_validate(&json!({"jobId": 7, "validationLevel": null})).unwrap(),
            Revalidation {
                job_id: 7,
                level: None,
                threshold: None
            }
        );
        for (body, name) in [
            (json!({}), "jobId"),
            (json!({"jobId": 0}), "jobId"),
            (json!({"jobId": "7"}), "jobId"),
            (json!({"jobId": 7, "validationLevel": 7}), "validationLevel"),
            (json!({"jobId": 7, "threshold": 101}), "threshold"),
        ] {
            let e = parse_validate(&body).unwrap_err();
            assert_eq!(e.code, "invalid_field", "{body}");
            assert!(field(e).contains(name), "{body}");
        }
    }

    #[test]
    fn an_estimate_names_the_provider_of_its_model_and_needs_no_topic() {
        let (params, config) = parse_estimate(
            &json!({"structureType": "course", "granularityLevel": 3, "aiModel": " claude-3-5-haiku-latest "}),
            |_| ProviderKind::Anthropic,
        )
        .unwrap();
        assert_eq!(params.granularity_level.get(), 3);
        assert_eq!(config.ai_provider, Some(ProviderKind::Anthropic));
        assert_eq!(config.ai_model.as_deref(), Some("claude-3-5-haiku-latest"));
        let (_, config) =
            parse_estimate(&json!({"structureType": "quiz"}), |_| ProviderKind::Openai).unwrap();
        assert_eq!(config.ai_provider, None);
        let e = parse_estimate(&json!({}), |_| ProviderKind::Openai).unwrap_err();
        assert!(field(e).contains("structureType"));
    }

    #[test]
    fn estimate_fields_are_checked_like_execute_config() {
        let e =
            parse_estimate(&json!({"aiProvider": "nobody"}), |_| ProviderKind::Openai).unwrap_err();
        assert_eq!(e.code, "invalid_field");
        assert!(field(e).contains("aiProvider"));
        let e =
            parse_estimate(&json!({"validationLevel": 9}), |_| ProviderKind::Openai).unwrap_err();
        assert!(field(e).contains("validationLevel"));
        let e = parse_estimate(
            &json!({"structureType": "quiz", "granularityLevel": 9}),
            |_| ProviderKind::Openai,
        )
        .unwrap_err();
        assert!(field(e).contains("granularityLevel"));
    }
}

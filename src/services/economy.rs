//! Cost estimates without a model call (seed §9.2, `POST /api/economy/estimate`).
//!
//! The model: input tokens are the rendered prompt, the system prompt and the
//! JSON schema at 4 characters a token; output tokens are the outline the
//! granularity asks for, priced per element of each level (the type table's
//! `output_tokens`) plus 120 for the root; time is 0.8 s plus output tokens
//! at the provider's typical speed. A level 2-3 validation adds a review call.

use crate::error::{AppError, AppResult};
use crate::helpers::economy::{Pricing, TokenUsage};
use crate::helpers::prompts;
use crate::services::ai_provider::ProviderKind;
use crate::services::database::Database;
use crate::types::api::{ExecConfig, GranulateParams};
use crate::types::env::App;
use crate::types::template::Template;
use serde_json::{json, Value};

pub fn tokens_per_second(provider: ProviderKind) -> f64 {
    match provider {
        ProviderKind::Openai => 90.0,
        ProviderKind::Anthropic => 80.0,
        ProviderKind::WorkersAi => 40.0,
        ProviderKind::Offline => f64::INFINITY,
    }
}

/// The provider a priced model belongs to. Names that are not OpenAI's,
/// Anthropic's or Workers AI's are served by an OpenAI-compatible endpoint
/// (Ollama, vLLM, llama.cpp), except the offline provider's own.
pub fn provider_of(model: &str) -> ProviderKind {
    if model.starts_with("claude") {
        ProviderKind::Anthropic
    } else if model.starts_with("@cf/") {
        ProviderKind::WorkersAi
    } else if model == ProviderKind::Offline.default_model() {
        ProviderKind::Offline
    } else {
        ProviderKind::Openai
    }
}

/// Tokens of one granulation (and its review, when asked).
pub fn job_tokens(
    template: &Template,
    params: &GranulateParams,
    validation_level: Option<u8>,
) -> AppResult<TokenUsage> {
    let st = template.structure_type;
    let job = prompts::job_prompt(template, params).map_err(AppError::internal)?;
    let (prompt, counts) = (job.prompt, job.counts);
    let schema = prompts::json_schema(st, counts.len(), &template.structure_rules).to_string();
    let input = (prompt.len() + prompts::system_prompt(st).len() + schema.len()).div_ceil(4) as u64;
    let output = st.spec().expected_output_tokens(&counts) as u64;
    let mut usage = TokenUsage {
        input,
        output,
        cached: 0,
    };
    if validation_level.is_some_and(|l| l >= 2) {
        usage.input += output + 300;
        usage.output += 400;
    }
    Ok(usage)
}

fn priced(pricing: &Pricing, model: &str, usage: &TokenUsage) -> Value {
    let provider = provider_of(model);
    let time = 800.0 + usage.output as f64 / tokens_per_second(provider) * 1000.0;
    json!({"provider": provider, "model": model, "costUsd": pricing.cost(model, usage), "timeMs": time.round() as u64})
}

pub fn estimate(
    app: &App,
    template: &Template,
    params: &GranulateParams,
    config: &ExecConfig,
) -> AppResult<Value> {
    let level = config
        .validation_level
        .filter(|_| config.validation != Some(false));
    let usage = job_tokens(template, params, level)?;
    // A model named by the request is priced as asked, configured or not
    // (an estimate makes no call); otherwise the job's own chain decides.
    let primary_model = match (&config.ai_model, config.ai_provider) {
        (Some(model), _) => model.clone(),
        (None, Some(kind)) => app.config.providers.default_model(kind),
        (None, None) => app
            .config
            .providers
            .chain(Some(&template.ai_provider_config), None, None)?
            .first()
            .map(|p| p.model.clone())
            .ok_or_else(|| {
                AppError::unavailable("no_provider_configured", "no AI provider is configured")
            })?,
    };
    let chosen = priced(&app.config.pricing, &primary_model, &usage);
    let chosen_cost = chosen["costUsd"].as_f64();
    let mut alternatives: Vec<Value> = app
        .config
        .pricing
        .models
        .keys()
        .filter(|m| *m != &primary_model && m.as_str() != "offline")
        .map(|m| {
            let mut alt = priced(&app.config.pricing, m, &usage);
            alt["configured"] = json!(app.config.providers.configured(provider_of(m)));
            alt
        })
        .filter(|alt| match (alt["costUsd"].as_f64(), chosen_cost) {
            (Some(c), Some(base)) => c < base,
            (Some(_), None) => true,
            _ => false,
        })
        .collect();
    alternatives.sort_by(|a, b| {
        a["costUsd"]
            .as_f64()
            .partial_cmp(&b["costUsd"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let spec = template.structure_type.spec();
    Ok(json!({
        "estimate": {
            "structureType": template.structure_type,
            "templateName": template.template_name,
            "granularityLevel": params.granularity_level.get(),
            "expectedElements": spec.expected_elements(params.granularity_level),
            "validationLevel": level,
            "tokens": {"input": usage.input, "output": usage.output, "total": usage.total()},
            "provider": chosen["provider"],
            "model": chosen["model"],
            "costUsd": chosen["costUsd"],
            "timeMs": chosen["timeMs"],
            "pricingDate": app.config.pricing.date,
        },
        "alternatives": alternatives,
        "method": "input: rendered prompt + system prompt + schema at 4 chars/token; output: expected elements x tokens per element of each level + 120; time: 0.8 s + output at the provider's typical tokens/s",
    }))
}

/// The estimate of a request (`POST /api/economy/estimate`): its template
/// resolved, nothing generated, nothing spent.
pub async fn quote(app: &App, params: &GranulateParams, config: &ExecConfig) -> AppResult<Value> {
    quote_with(app, &Database::new(app)?, params, config).await
}

/// `quote` on the request's own D1 handle (the execute `estimate` action).
pub async fn quote_with(
    app: &App,
    db: &Database,
    params: &GranulateParams,
    config: &ExecConfig,
) -> AppResult<Value> {
    let template = crate::services::templates::resolve(
        app,
        db,
        params.template_name.as_deref(),
        params.structure_type,
    )
    .await?;
    estimate(app, &template, params, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_map_to_their_provider() {
        assert_eq!(provider_of("gpt-4o-mini"), ProviderKind::Openai);
        assert_eq!(provider_of("claude-haiku-4-5"), ProviderKind::Anthropic);
        assert_eq!(
            provider_of("@cf/meta/llama-3.1-8b-instruct"),
            ProviderKind::WorkersAi
        );
        assert_eq!(provider_of("local-llama"), ProviderKind::Openai);
        assert_eq!(provider_of("offline"), ProviderKind::Offline);
    }
}

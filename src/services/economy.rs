//! Cost estimates without a model call (seed §9.2, `POST /api/economy/estimate`).
//!
//! The model: input tokens are the rendered prompt, the system prompt and the
//! JSON schema at 4 characters a token; output tokens are the outline the
//! granularity asks for, priced per element of each level (the type table's
//! `output_tokens`) plus 120 for the root; time is 0.8 s plus output tokens
//! at the provider's typical speed. A level 2-3 validation adds a review call.

use crate::helpers::prompts;
use crate::services::database::Database;
use crate::types::api::{ExecConfig, GranulateParams};
use crate::types::env::{App, Config};
use crate::types::pricing::{Pricing, TokenUsage};
use crate::types::provider::ProviderKind;
use crate::types::structure::StructureType;
use crate::types::template::Template;
use bitware_kit::error::{AppError, AppResult};
use serde::Serialize;

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
        ..TokenUsage::default()
    };
    if validation_level.is_some_and(|l| l >= 2) {
        usage.input += output + 300;
        usage.output += 400;
    }
    Ok(usage)
}

/// What one model would cost and take for the job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Priced {
    pub provider: ProviderKind,
    pub model: String,
    /// `None`: the model has no price.
    pub cost_usd: Option<f64>,
    pub time_ms: u64,
    /// Alternatives only: whether the deployment has that provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured: Option<bool>,
}

fn priced(pricing: &Pricing, model: &str, usage: &TokenUsage) -> Priced {
    let provider = provider_of(model);
    let time = 800.0 + usage.output as f64 / tokens_per_second(provider) * 1000.0;
    Priced {
        provider,
        model: model.to_string(),
        cost_usd: pricing.cost(model, usage),
        time_ms: time.round() as u64,
        configured: None,
    }
}

/// An estimate (`POST /api/economy/estimate`, the execute `estimate` action).
#[derive(Debug, Serialize)]
pub struct Quote {
    pub estimate: Estimate,
    /// Cheaper models than the chosen one, cheapest first.
    pub alternatives: Vec<Priced>,
    pub method: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    pub structure_type: StructureType,
    pub template_name: String,
    pub granularity_level: u8,
    pub expected_elements: u32,
    pub validation_level: Option<u8>,
    pub tokens: Tokens,
    #[serde(flatten)]
    pub chosen: Priced,
    pub pricing_date: String,
}

#[derive(Debug, Serialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub total: u64,
}

const METHOD: &str = "input: rendered prompt + system prompt + schema at 4 chars/token; output: expected elements x tokens per element of each level + 120; time: 0.8 s + output at the provider's typical tokens/s";

pub fn estimate(
    config: &Config,
    template: &Template,
    params: &GranulateParams,
    exec: &ExecConfig,
) -> AppResult<Quote> {
    let level = exec
        .validation_level
        .filter(|_| exec.validation != Some(false));
    let usage = job_tokens(template, params, level)?;
    // A model named by the request is priced as asked, configured or not
    // (an estimate makes no call); otherwise the job's own chain decides.
    let primary_model = match (&exec.ai_model, exec.ai_provider) {
        (Some(model), _) => model.clone(),
        (None, Some(kind)) => config.providers.default_model(kind),
        (None, None) => config
            .providers
            .chain(Some(&template.ai_provider_config), None, None)?
            .first()
            .map(|p| p.model.clone())
            .ok_or_else(|| {
                AppError::unavailable("no_provider_configured", "no AI provider is configured")
            })?,
    };
    let chosen = priced(&config.pricing, &primary_model, &usage);
    let mut alternatives: Vec<Priced> = config
        .pricing
        .models
        .keys()
        .filter(|m| *m != &primary_model && m.as_str() != "offline")
        .map(|m| Priced {
            configured: Some(config.providers.configured(provider_of(m))),
            ..priced(&config.pricing, m, &usage)
        })
        .filter(|alt| match (alt.cost_usd, chosen.cost_usd) {
            (Some(c), Some(base)) => c < base,
            (Some(_), None) => true,
            _ => false,
        })
        .collect();
    alternatives.sort_by(|a, b| {
        a.cost_usd
            .partial_cmp(&b.cost_usd)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let spec = template.structure_type.spec();
    Ok(Quote {
        estimate: Estimate {
            structure_type: template.structure_type,
            template_name: template.template_name.clone(),
            granularity_level: params.granularity_level.get(),
            expected_elements: spec.expected_elements(params.granularity_level),
            validation_level: level,
            tokens: Tokens {
                input: usage.input,
                output: usage.output,
                total: usage.total(),
            },
            chosen,
            pricing_date: config.pricing.date.clone(),
        },
        alternatives,
        method: METHOD,
    })
}

/// The estimate of a request (`POST /api/economy/estimate`): its template
/// resolved, nothing generated, nothing spent.
pub async fn quote(app: &App, params: &GranulateParams, config: &ExecConfig) -> AppResult<Quote> {
    quote_with(app, &Database::new(app)?, params, config).await
}

/// `quote` on the request's own D1 handle (the execute `estimate` action).
pub async fn quote_with(
    app: &App,
    db: &Database,
    params: &GranulateParams,
    config: &ExecConfig,
) -> AppResult<Quote> {
    let template = crate::services::templates::resolve(
        app,
        db,
        params.template_name.as_deref(),
        params.structure_type,
    )
    .await?;
    estimate(&app.config, &template, params, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    /// `estimate` reads only the configuration: it runs natively.
    #[test]
    fn an_estimate_prices_the_requested_model_and_lists_only_cheaper_ones() {
        use crate::types::env::JobSettings;
        use crate::types::limits::Limits;
        use crate::types::provider::Settings;
        use crate::types::provider_setup::ProviderSetup;
        use crate::types::request::parse_params_object;
        use crate::types::rules::StructureRules;
        use crate::types::structure::StructureType;
        use crate::types::template::{
            default_template_schema, AiProviderConfig, CostOptimization, ValidationRules,
        };
        let config = Config {
            environment: "development".into(),
            version: "test".into(),
            shared_secret: None,
            providers: ProviderSetup::default(),
            settings: Settings::default(),
            pricing: Pricing::default(),
            alerts: crate::services::alerts::AlertConfig::default(),
            pricing_error: None,
            kam_timeout_ms: 3_000,
            kam_cache_seconds: 60,
            limits: Limits::default(),
            limits_errors: Vec::new(),
            jobs: JobSettings {
                job_timeout_ms: 600_000,
                tokens_per_second: 50,
                wait_until_grace_ms: 20_000,
                event_streams_per_tenant: 10,
                events_max_ms: 300_000,
                stall_ms: 90_000,
            },
        };
        let template = Template {
            id: 1,
            template_name: "course_basic".into(),
            structure_type: StructureType::Course,
            description: String::new(),
            template_schema: default_template_schema(StructureType::Course),
            ai_prompt_template: "Course on {topic} for {audience}. {level_targets}".into(),
            placeholders: vec!["topic".into()],
            validation_rules: ValidationRules::default(),
            structure_rules: StructureRules::contract(StructureType::Course),
            complexity_level: 3,
            target_audience: "general audience".into(),
            ai_provider_config: AiProviderConfig::default(),
            cost_optimization: CostOptimization::default(),
            usage_count: 0,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let params = parse_params_object(
            &json!({"topic": "Rust", "structureType": "course", "granularityLevel": 3}),
            true,
        )
        .unwrap();
        let exec = ExecConfig {
            ai_model: Some("gpt-4o".into()),
            ..ExecConfig::default()
        };
        let out =
            serde_json::to_value(estimate(&config, &template, &params, &exec).unwrap()).unwrap();
        let chosen = &out["estimate"];
        assert_eq!(chosen["model"], "gpt-4o");
        assert_eq!(chosen["provider"], "openai");
        assert_eq!(chosen["pricingDate"], config.pricing.date.as_str());
        let cost = chosen["costUsd"].as_f64().unwrap();
        let alternatives = out["alternatives"].as_array().unwrap();
        assert!(!alternatives.is_empty());
        assert!(alternatives
            .iter()
            .all(|a| a["costUsd"].as_f64().unwrap() < cost && a["configured"] == false));
        // No model named: the job's own chain decides; outside production,
        // with no provider configured, that is the offline provider (free).
        let offline = serde_json::to_value(
            estimate(&config, &template, &params, &ExecConfig::default()).unwrap(),
        )
        .unwrap();
        assert_eq!(offline["estimate"]["model"], "offline");
        assert_eq!(offline["estimate"]["costUsd"], 0.0);
        // In production nothing is configured, so nothing can be priced.
        let mut production = config.clone();
        production.providers.production = true;
        let err = estimate(&production, &template, &params, &ExecConfig::default()).unwrap_err();
        assert_eq!(err.code, "no_provider_configured");
    }
}

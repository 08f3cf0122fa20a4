//! Everything fixed before a job's first model call: template, counts,
//! prompt, schema, token limits, provider chain, budget and deadline.

use super::ports::{OutlineStore, Ports, StructureStore, TemplateSource};
use crate::helpers::prompts::{self, JobPrompt};
use crate::services::ai_provider::{
    Attempt, Budget, Chain, ChainError, Completion, CompletionRequest, Runtime, Stop,
};
use crate::services::validation::{self, QualityReport};
use crate::types::api::{GranulateParams, JobRequest, Strategy};
use crate::types::env::Config;
use crate::types::outline::Outline;
use crate::types::provider::{ProviderConfig, ProviderKind};
use crate::types::purpose;
use crate::types::request::check_counts;
use crate::types::rules::Constraints;
use crate::types::structure::StructureType;
use crate::types::template::Template;
use bitware_kit::error::{AppError, AppResult, Kind};
use serde_json::{json, Value};

/// Everything fixed before the first model call.
pub(super) struct Plan {
    pub template: Template,
    pub structure_type: StructureType,
    pub params: GranulateParams,
    pub constraints: Constraints,
    pub counts: Vec<u32>,
    pub audience: String,
    pub prompt: String,
    pub schema: Value,
    pub max_tokens: u32,
    pub temperature: f64,
    pub expected_output_tokens: u32,
    pub chain: Vec<ProviderConfig>,
    pub budget: Budget,
    pub validation: Option<(u8, f64)>,
    pub deadline_ms: u64,
    /// `config.strategy` (`None`: auto).
    pub strategy: Option<Strategy>,
}

/// A chain's failure as the error a caller reads: the kit's.
pub use crate::services::ai_provider::chain_error;

/// The AI review of an outline (validation levels 2-3).
pub(super) fn review_request(
    structure_type: StructureType,
    topic: &str,
    audience: &str,
    level: u8,
    structure: &Outline,
    report: &QualityReport,
    chain: &[ProviderConfig],
) -> CompletionRequest {
    CompletionRequest {
        purpose: purpose::VALIDATE,
        system: validation::review_system_prompt(),
        user: validation::review_prompt(structure_type, topic, audience, level, structure),
        schema_name: validation::REVIEW_SCHEMA_NAME.into(),
        schema: validation::review_schema(level),
        max_tokens: 2_000,
        temperature: 0.0,
        expected_output_tokens: 400,
        progress: None,
        offline_answer: uses_offline(chain).then(|| validation::offline_review(level, report)),
        // One review a job: its prompt is the outline itself, shared with no other call.
        shared_prefix: 0,
        cache_key: None,
    }
}

/// The offline provider's answer is built only when the chain can use it:
/// generating a whole outline on every request would be wasted work.
pub(super) fn uses_offline(chain: &[ProviderConfig]) -> bool {
    chain.iter().any(|p| p.kind == ProviderKind::Offline)
}

/// One provider-chain call with this worker's runtime, settings and prices.
pub(super) async fn complete<R: Runtime, J: OutlineStore, S: StructureStore, T: TemplateSource>(
    ports: &Ports<'_, R, J, S, T>,
    providers: &[ProviderConfig],
    request: &CompletionRequest,
    validate: &dyn Fn(&Value) -> Result<Value, Vec<String>>,
    budget: &mut Budget,
    deadline_ms: u64,
    attempts: &mut Vec<Attempt>,
) -> Result<Completion, ChainError> {
    let call = Call {
        request,
        budget,
        deadline_ms,
        attempts,
        stop: ports,
    };
    complete_with(ports, providers, call, validate).await
}

/// One call of the chain as [`complete_with`] makes it: its request, the
/// budget it spends from, its deadline, where its attempts go, and what
/// stops it (the job's cancel, or a fanned-out branch's own drop).
pub(super) struct Call<'c> {
    pub request: &'c CompletionRequest,
    pub budget: &'c mut Budget,
    pub deadline_ms: u64,
    pub attempts: &'c mut Vec<Attempt>,
    pub stop: &'c dyn Stop,
}

/// [`complete`] with a `Stop` of the caller's.
pub(super) async fn complete_with<
    R: Runtime,
    J: OutlineStore,
    S: StructureStore,
    T: TemplateSource,
>(
    ports: &Ports<'_, R, J, S, T>,
    providers: &[ProviderConfig],
    call: Call<'_>,
    validate: &dyn Fn(&Value) -> Result<Value, Vec<String>>,
) -> Result<Completion, ChainError> {
    let Call {
        request,
        budget,
        deadline_ms,
        attempts,
        stop,
    } = call;
    if let Some(note) = ports.overbilled.borrow().as_ref() {
        return Err(ChainError::ProvidersFailed(format!(
            "provider_overbilled: {note}; no further call is made for this job"
        )));
    }
    let chain = Chain {
        runtime: ports.runtime,
        providers,
        settings: ports.config.settings,
        pricing: &ports.config.pricing,
        stop: Some(stop),
    };
    let outcome = chain
        .complete(request, validate, budget, deadline_ms, attempts)
        .await;
    if let Some(note) = attempts.iter().find_map(Attempt::overbilling) {
        ports.overbilled.borrow_mut().get_or_insert(note);
    }
    outcome
}

/// `complete` with a typed reading of the answer: the kit's chain hands
/// back JSON, so the value `parse` made of the accepted answer (the chain
/// stops at the first one it accepts) is kept beside it instead of being
/// written out as JSON and read again. The completion's own `value` is null.
pub(super) async fn complete_typed<
    O,
    R: Runtime,
    J: OutlineStore,
    S: StructureStore,
    T: TemplateSource,
>(
    ports: &Ports<'_, R, J, S, T>,
    providers: &[ProviderConfig],
    request: &CompletionRequest,
    parse: &dyn Fn(&Value) -> Result<O, Vec<String>>,
    budget: &mut Budget,
    deadline_ms: u64,
    attempts: &mut Vec<Attempt>,
) -> Result<(O, Completion), ChainError> {
    let call = Call {
        request,
        budget,
        deadline_ms,
        attempts,
        stop: ports,
    };
    complete_typed_with(ports, providers, call, parse).await
}

/// [`complete_typed`] with a `Stop` of the caller's.
pub(super) async fn complete_typed_with<
    O,
    R: Runtime,
    J: OutlineStore,
    S: StructureStore,
    T: TemplateSource,
>(
    ports: &Ports<'_, R, J, S, T>,
    providers: &[ProviderConfig],
    call: Call<'_>,
    parse: &dyn Fn(&Value) -> Result<O, Vec<String>>,
) -> Result<(O, Completion), ChainError> {
    let accepted = std::cell::RefCell::new(None);
    let validate = |v: &Value| {
        let typed = parse(v)?;
        *accepted.borrow_mut() = Some(typed);
        Ok(Value::Null)
    };
    let done = complete_with(ports, providers, call, &validate).await?;
    match accepted.into_inner() {
        Some(typed) => Ok((typed, done)),
        None => Err(ChainError::ProvidersFailed(
            "an accepted answer was not kept".into(),
        )),
    }
}

pub(super) fn plan(
    config: &Config,
    template: Template,
    request: &JobRequest,
    start: u64,
) -> AppResult<Plan> {
    let params = request.params.clone();
    let asked = &request.config;
    let structure_type = template.structure_type;
    check_counts(&params, structure_type, &template.structure_rules)?;
    validation::check_max_elements_feasible(
        structure_type,
        params.granularity_level,
        &template.structure_rules,
        &params.constraints(),
    )
    .map_err(|m| {
        AppError::new(Kind::BadRequest, "constraints_conflict", m)
            .with_details(json!({"field": "constraints.maxElements"}))
    })?;
    let chain = config.providers.chain(
        Some(&template.ai_provider_config),
        asked.ai_provider,
        asked.ai_model.as_deref(),
    )?;
    let JobPrompt {
        prompt,
        counts,
        audience,
        constraints,
    } = prompts::job_prompt(&template, &params).map_err(AppError::internal)?;
    let expected = structure_type.spec().expected_output_tokens(&counts);
    let max_tokens = asked
        .max_tokens
        .or(template.ai_provider_config.max_tokens)
        .unwrap_or((expected * 2 + 500).clamp(1024, 16_000));
    let validation = match (asked.validation, asked.validation_level) {
        (Some(false), _) => None,
        (Some(true), level) | (None, level @ Some(_)) => Some((
            level.unwrap_or(template.validation_rules.validation_level),
            asked
                .validation_threshold
                .unwrap_or(template.validation_rules.validation_threshold),
        )),
        (None, None) => None,
    };
    Ok(Plan {
        schema: prompts::json_schema(structure_type, counts.len(), &template.structure_rules),
        temperature: asked
            .temperature
            .or(template.ai_provider_config.temperature)
            .unwrap_or(0.4),
        budget: Budget {
            limit_usd: Some(config.limits.job_budget(
                template.cost_optimization.max_cost_per_job,
                asked.max_cost_usd,
            )),
            spent_usd: 0.0,
        },
        // The job's own deadline: its request may stop waiting long before.
        deadline_ms: start + config.jobs.job_timeout_ms.max(request.timeout_ms),
        template,
        structure_type,
        params,
        constraints,
        counts,
        audience,
        prompt,
        max_tokens,
        expected_output_tokens: expected,
        chain,
        validation,
        strategy: asked.strategy,
    })
}

/// Elements an outline of these per-level counts has (each level multiplies).
pub(super) fn expected_elements(counts: &[u32]) -> u32 {
    let mut total = 0u32;
    let mut level = 1u32;
    for c in counts {
        level = level.saturating_mul(*c);
        total = total.saturating_add(level);
    }
    total
}

//! Fixtures of the pipeline tests: a course template, a configured chain,
//! the in-memory world and outlines good and bad.

use super::memory::{MemoryJobs, MemoryStructures, MemoryTemplates, Model};
use super::ports::Ports;
use super::{job, submit, Submitted};
use crate::services::offline;
use crate::services::spend::Payer;
use crate::services::validation::{self, assess};
use crate::types::api::{ExecuteRequest, JobRequest};
use crate::types::env::{Config, JobSettings};
use crate::types::limits::{Limits, Tier};
use crate::types::outline::Outline;
use crate::types::pricing::Pricing;
use crate::types::provider::{Secret, Settings};
use crate::types::provider_setup::ProviderSetup;
use crate::types::request::parse_execute;
use crate::types::rules::StructureRules;
use crate::types::structure::{Granularity, StructureType};
use crate::types::template::{AiProviderConfig, CostOptimization, Template, ValidationRules};
use bitware_kit::error::{AppError, AppResult};
use serde_json::{json, Value};

pub(super) const TOPIC: &str = "Rust ownership";

pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(future)
}

pub(super) fn config() -> Config {
    Config {
        environment: "development".into(),
        version: "test".into(),
        shared_secret: None,
        providers: ProviderSetup {
            production: false,
            openai_key: Secret::new("sk-test-key".into()),
            openai_base_url: Some("http://model.test/v1".into()),
            openai_model: Some("gpt-4o-mini".into()),
            anthropic_key: None,
            anthropic_base_url: None,
            anthropic_model: None,
            workers_ai_bound: false,
            workers_ai_model: None,
            order: Some("openai".into()),
        },
        settings: Settings::default(),
        pricing: Pricing::default(),
        alerts: crate::services::alerts::AlertConfig::default(),
        pricing_error: None,
        kam_timeout_ms: 3_000,
        kam_cache_seconds: 60,
        limits: Limits::from_vars(None, None, None).0,
        limits_errors: vec![],
        jobs: JobSettings {
            job_timeout_ms: 600_000,
            tokens_per_second: 50,
            wait_until_grace_ms: 20_000,
            event_streams_per_tenant: 10,
            events_max_ms: 300_000,
            stall_ms: 90_000,
        },
    }
}

pub(super) fn template(name: &str) -> Template {
    Template {
        id: 7,
        template_name: name.into(),
        structure_type: StructureType::Course,
        description: "a course".into(),
        template_schema: json!({}),
        ai_prompt_template: "Course on {topic} for {audience}. {level_targets}".into(),
        placeholders: vec![],
        validation_rules: ValidationRules::default(),
        structure_rules: StructureRules::contract(StructureType::Course),
        complexity_level: 3,
        target_audience: "developers".into(),
        ai_provider_config: AiProviderConfig::default(),
        cost_optimization: CostOptimization::default(),
        usage_count: 0,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

/// The twins and a model that gives `answers` in order.
pub(super) struct World {
    pub(super) config: Config,
    pub(super) model: Model,
    pub(super) jobs: MemoryJobs,
    pub(super) structures: MemoryStructures,
    pub(super) templates: MemoryTemplates,
}

impl World {
    pub(super) fn new(answers: Vec<Result<Value, u16>>) -> World {
        let templates = MemoryTemplates::default();
        templates.templates.borrow_mut().push(template("my_course"));
        World {
            config: config(),
            model: Model::answering(answers),
            jobs: MemoryJobs::default(),
            structures: MemoryStructures::default(),
            templates,
        }
    }

    pub(super) fn ports(&self) -> Ports<'_, Model, MemoryJobs, MemoryStructures, MemoryTemplates> {
        Ports {
            config: &self.config,
            runtime: &self.model,
            jobs: &self.jobs,
            structures: self.structures.clone(),
            templates: self.templates.clone(),
            overbilled: std::cell::RefCell::default(),
            cancel: super::ports::RunCancel::default(),
        }
    }

    pub(super) fn submit(&self, request: &JobRequest, id: &str) -> AppResult<Submitted> {
        self.submit_as(request, id, &payer())
    }

    pub(super) fn submit_as(
        &self,
        request: &JobRequest,
        id: &str,
        payer: &Payer,
    ) -> AppResult<Submitted> {
        let ports = self.ports();
        let (submitted, _, prepared) = block_on(submit::submit(
            &ports,
            payer,
            request,
            Some(id.into()),
            false,
        ))?;
        if let (Submitted::Claimed { job_id, run }, Some(prepared)) = (&submitted, prepared) {
            let start = self.model.clock.get();
            let _ = block_on(job::run_prepared(&ports, *job_id, *run, prepared, start));
        }
        Ok(submitted)
    }

    /// Claim without running (the run is lost, or waits in the queue).
    pub(super) fn claim_only(&self, request: &JobRequest, id: &str) -> AppResult<Submitted> {
        let ports = self.ports();
        block_on(submit::submit(
            &ports,
            &payer(),
            request,
            Some(id.into()),
            true,
        ))
        .map(|s| s.0)
    }

    pub(super) fn run_queued(&self, job_id: i64, run: u32) -> AppResult<Value> {
        let ports = self.ports();
        let start = self.model.clock.get();
        match block_on(submit::prepare(&ports, job_id, run, start))? {
            Ok(prepared) => block_on(job::run_prepared(&ports, job_id, run, prepared, start)),
            Err(e) => Err(e),
        }
    }

    pub(super) fn result(&self, job_id: i64) -> Value {
        serde_json::from_str(self.jobs.job(job_id).result_json.as_deref().unwrap()).unwrap()
    }
}

pub(super) fn payer() -> Payer {
    Payer {
        tenant: "client-a".into(),
        tier: Tier::Standard,
    }
}

pub(super) fn request(config: Value) -> JobRequest {
    let body = json!({"action": "granulate", "input": {"topic": TOPIC, "templateName": "my_course", "granularityLevel": 3}, "config": config});
    match parse_execute(&body, None).unwrap() {
        ExecuteRequest::Granulate { request, .. } => request,
        other => panic!("not a granulation: {other:?}"),
    }
}

pub(super) fn valid() -> Value {
    let t = template("my_course");
    let g = Granularity::new(3).unwrap();
    offline::generate(
        StructureType::Course,
        g,
        &t.structure_rules,
        &request(json!({})).params.constraints(),
        TOPIC,
    )
    .to_value()
}

pub(super) fn modules(outline: &mut Value) -> &mut Vec<Value> {
    outline["modules"].as_array_mut().unwrap()
}

/// Every module named alike: duplicate titles, so the rules find violations.
pub(super) fn with_duplicates(n: usize) -> Value {
    let mut o = valid();
    for m in modules(&mut o).iter_mut().take(n) {
        m["title"] = json!("Same module");
    }
    o
}

pub(super) fn score(outline: &Value) -> f64 {
    let t = template("my_course");
    let r = request(json!({}));
    assess(
        r.params.granularity_level,
        &t.structure_rules,
        &r.params.constraints(),
        &Outline::from_canonical(StructureType::Course, outline).unwrap(),
    )
    .score
}

pub(super) fn review(scores: f64) -> Value {
    let report = assess(
        Granularity::new(3).unwrap(),
        &template("my_course").structure_rules,
        &request(json!({})).params.constraints(),
        &Outline::from_canonical(StructureType::Course, &valid()).unwrap(),
    );
    let mut r = validation::offline_review(2, &report);
    for c in r["criteria"].as_array_mut().unwrap() {
        c["score"] = json!(scores);
    }
    r["issues"] = json!(["the modules do not build on each other"]);
    r
}

pub(super) fn job_id(s: &Submitted) -> i64 {
    match s {
        Submitted::Claimed { job_id, .. } | Submitted::Running { job_id } => *job_id,
        Submitted::Replay(v) => v["output"]["jobId"].as_i64().unwrap(),
    }
}

pub(super) fn code(e: AppError) -> (u16, &'static str) {
    (e.status(), e.code)
}

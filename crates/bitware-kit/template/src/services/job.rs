//! The example action as a long job on the kit's lifecycle
//! (`bitware_kit::jobs::work`): the kit submits it (reserve the budget
//! against the payer's daily cap, then claim under the idempotency key:
//! replay, join, 422 on a reused key), places it (inline or the queue),
//! runs it (the provider chain streaming beside the kit's watcher, which
//! writes progress and the heartbeat and sees a cancel), ends it (completed
//! with the Resource Manager envelope, failed with its reason, or cancelled
//! with what it spent) and answers its caller (202, the result, or 504 with
//! links). What is this worker's own is the `Work` below and
//! `services::example`.

use crate::services::database::Database;
use crate::services::example;
use crate::types::env::{App, DB, JOB_QUEUE, SERVICE_NAME};
use crate::types::execute::JobRequest;
use bitware_kit::error::AppResult;
use bitware_kit::jobs::work::{Made, Plan, RunCtx, Setup, Work};
use bitware_kit::jobs::{Completion, D1Jobs, JobSchema};
use serde_json::{json, Value};

/// The example action's job: a model summarises the input text.
#[derive(Clone)]
pub struct Summarise(pub App);

impl Work for Summarise {
    type Job = JobRequest;

    fn setup(&self) -> Setup<'_> {
        let config = &self.0.config;
        Setup {
            env: &self.0.env,
            service: SERVICE_NAME,
            db: DB,
            queue: JOB_QUEUE,
            schema: JobSchema::KIT,
            providers: &config.providers,
            settings: config.settings,
            pricing: &config.pricing,
            limits: &config.limits,
            jobs: &config.jobs,
        }
    }

    fn plan(&self, job: &JobRequest) -> AppResult<Plan> {
        Ok(Plan {
            expected_tokens: job.max_tokens,
            expected_elements: 1,
            max_cost_usd: job.max_cost_usd,
        })
    }

    fn canonical(&self, job: &JobRequest) -> Value {
        job.canonical()
    }

    async fn run(&self, job: &JobRequest, run: &RunCtx<'_>) -> AppResult<Made> {
        run.stage("summarising").await?;
        let done = run
            .call(example::completion_request(job), &example::check_answer)
            .await?;
        Ok(Made {
            output: example::output(job, &done.value),
            provider: done.provider.as_str().into(),
            model: done.model,
            metadata: json!({}),
        })
    }

    /// The run's result with its execution row, in one atomic step.
    async fn complete(
        &self,
        _: &D1Jobs<'_>,
        c: &Completion<'_>,
        job: &JobRequest,
        _: &Value,
    ) -> AppResult<bool> {
        Database::new(&self.0)?
            .complete(c, job.text.chars().count())
            .await
    }
}

//! A generation as a long job on the kit's lifecycle
//! (`bitware_kit::jobs::work`): the kit submits it (reserve the budget
//! against the payer's daily cap, then claim under the idempotency key:
//! replay, join, 422 on a reused key), places it (inline or the queue),
//! runs it beside its watcher (progress, heartbeat, cancel), ends it and
//! answers its caller. What is this worker's own is the `Work` below: the
//! plan of an outline's elements, one call per batch of them (the root, then
//! each level-1 node with its subtree) at once under one budget split, the
//! assembly of the content tree, its quality, where it is kept, and the
//! generation's row.

use crate::services::content::{self, Generated};
use crate::services::database::{Database, GenerationRow};
use crate::types::env::{App, DB, JOB_QUEUE, RESULTS, SERVICE_NAME};
use crate::types::request::GenerateJob;
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::work::{Made, Plan, RunCtx, Setup, Work};
use bitware_kit::jobs::{Completion, D1Jobs, JobSchema};
use bitware_kit::storage::{self, Tier, ANSWER_INLINE_LIMIT};
use serde_json::{json, Value};

/// The worker before this one in the chain, and the one after it.
pub const PREVIOUS_WORKER: &str = "bitware-content-granulator";
pub const NEXT_WORKER: &str = "bitware-content-packager";
/// The output's format version (`contentMetadata.workerChain.version`).
pub const OUTPUT_VERSION: &str = "1.0";
/// Output tokens one call may be planned to write; a larger batch is split.
pub const MAX_BATCH_TOKENS: u32 = 6_000;
/// Below this a batch is not split for balance: every call re-sends the
/// shared prompt, and a short call's latency is mostly its first token.
pub const MIN_BATCH_TOKENS: u32 = 2_000;

/// A generation: content for every element of a granulator outline.
#[derive(Clone)]
pub struct Generate(pub App);

impl Generate {
    /// The outline a job writes: inline, or fetched by its reference when
    /// the request was submitted (`handlers::execute`).
    fn structure(job: &GenerateJob) -> AppResult<&Value> {
        job.structure
            .as_ref()
            .or(job.fetched_structure.as_ref())
            .ok_or_else(|| {
                AppError::internal("the job has no outline (its reference was not resolved)")
            })
    }

    /// The job's plan, its batches balanced over the calls that run at
    /// once (`batch_ceiling`).
    ///
    /// Batches hold whole elements, so packing under the even ceiling can
    /// make more of them than the waves hold (measured: 16 batches of
    /// 2,800–3,360 tokens under a 3,817 ceiling, a third wave of six); the
    /// ceiling is raised a tenth at a time until they fit the waves again.
    fn content_plan(job: &GenerateJob) -> AppResult<content::Plan> {
        let structure = Self::structure(job)?;
        let first = content::plan(job, structure, MAX_BATCH_TOKENS)?;
        let concurrency = job.max_concurrent();
        let mut ceiling = batch_ceiling(first.expected_output_tokens, concurrency);
        if ceiling == MAX_BATCH_TOKENS {
            return Ok(first);
        }
        let fits = waves(first.expected_output_tokens, concurrency) as usize * concurrency.max(1);
        loop {
            let plan = content::plan(job, structure, ceiling)?;
            if plan.batches.len() <= fits || ceiling >= MAX_BATCH_TOKENS {
                return Ok(plan);
            }
            ceiling = (ceiling + ceiling / 10).min(MAX_BATCH_TOKENS);
        }
    }
}

impl Work for Generate {
    type Job = GenerateJob;

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

    fn plan(&self, job: &GenerateJob) -> AppResult<Plan> {
        let plan = Self::content_plan(job)?;
        Ok(Plan {
            expected_tokens: plan.expected_output_tokens,
            expected_elements: plan.elements.len() as u32,
            max_cost_usd: job.max_cost_usd,
        })
    }

    fn canonical(&self, job: &GenerateJob) -> Value {
        job.canonical()
    }

    async fn run(&self, job: &GenerateJob, run: &RunCtx<'_>) -> AppResult<Made> {
        let structure = Self::structure(job)?;
        let plan = Self::content_plan(job)?;
        run.stage("writing").await?;
        let requests = plan
            .batches
            .iter()
            .map(|batch| content::request_for(job, structure, &plan, batch))
            .collect();
        // Every answer is needed: content with holes is not handed on, so
        // the first call that fails for good stops the others (nothing more
        // is spent on answers that would be thrown away).
        let answers = run
            .all_calls(
                requests,
                &|i, answer| content::check_batch(&plan.batches[i], answer),
                job.max_concurrent(),
            )
            .await?;
        let mut written = Vec::with_capacity(answers.len());
        let mut model = None;
        for (i, done) in answers.into_iter().enumerate() {
            model.get_or_insert((done.provider, done.model));
            written.push((i, done.value));
        }
        let (provider, model) =
            model.ok_or_else(|| AppError::internal("an outline with no element to write"))?;
        run.stage("assembling").await?;
        let generated = content::assemble(job, structure, &plan, &written);
        let output = self.output(job, run.job_id, generated).await?;
        Ok(Made {
            output,
            provider: provider.as_str().into(),
            model,
            metadata: json!({"workerChain": worker_chain()}),
        })
    }

    /// The run's result with its generation row, in one atomic step.
    async fn complete(
        &self,
        _: &D1Jobs<'_>,
        c: &Completion<'_>,
        job: &GenerateJob,
    ) -> AppResult<bool> {
        let output = serde_json::from_str::<Value>(c.result_json)
            .map(|v| v["output"].clone())
            .unwrap_or(Value::Null);
        let summary = &output["summary"];
        let row = GenerationRow {
            tenant: c.client_id,
            job_id: c.job_id,
            granulator_job_id: job.granulator_job_id,
            structure_type: job.structure_type.as_str(),
            elements: summary["elements"].as_i64().unwrap_or(0),
            words: summary["words"].as_i64().unwrap_or(0),
            target_words: summary["targetWords"].as_i64().unwrap_or(0),
            quality_score: output["qualityScore"].as_f64().unwrap_or(0.0),
            storage_tier: output["storageTier"].as_str().unwrap_or("inline"),
        };
        Database::new(&self.0)?.complete(c, &row).await
    }
}

impl Generate {
    /// The output for the next worker: the content inline while the answer
    /// stays under the kit's inline limit, and kept in KV or R2 (with its
    /// reference) once it outgrows the inline tier.
    async fn output(&self, job: &GenerateJob, job_id: i64, g: Generated) -> AppResult<Value> {
        let text = g.content.to_string();
        let tier = Tier::for_size(text.len());
        let location = storage::store(&self.0.env, &RESULTS, tier, job_id, &text).await?;
        let quality_score = g.quality["score"].as_f64().unwrap_or(0.0);
        let passed = g.quality["passed"].as_bool().unwrap_or(false);
        let mut output = json!({
            "generatorJobId": job_id,
            "jobId": job_id,
            "granulatorJobId": job.granulator_job_id,
            "topic": job.topic,
            "structureType": job.structure_type,
            "summary": g.summary,
            "qualityScore": quality_score,
            "qualityReport": g.quality,
            "readyForNext": passed,
            "nextWorkerRecommendation": NEXT_WORKER,
            "contentMetadata": {
                "workerChain": worker_chain(),
                "standardParameters": job.parameters,
                "sourceStructure": {"granulatorJobId": job.granulator_job_id, "structureType": job.structure_type},
            },
            "storageTier": tier.as_str(),
        });
        if let Some(location) = location {
            output["contentReference"] = json!({
                "type": tier.as_str(),
                "location": location,
                "url": format!("/api/jobs/{job_id}/content"),
                "sizeBytes": text.len(),
            });
        }
        if text.len() <= ANSWER_INLINE_LIMIT {
            output["content"] = g.content;
        }
        Ok(output)
    }
}

/// The output tokens one call is planned to write: the job's expected
/// output spread evenly over whole waves of `concurrency` calls, within
/// [`MIN_BATCH_TOKENS`, `MAX_BATCH_TOKENS`]. The calls of a wave then end
/// together, and the job's wall clock approaches its output streamed
/// `concurrency` ways at once, instead of its largest batch's after the
/// others ended (measured on a granularity-3 course at 100 tokens/s:
/// 11 batches up to 6,200 tokens took 128.6 s; see the note of issue 26).
pub fn batch_ceiling(expected_tokens: u32, concurrency: usize) -> u32 {
    let calls = waves(expected_tokens, concurrency).saturating_mul(concurrency.max(1) as u32);
    expected_tokens
        .div_ceil(calls)
        .clamp(MIN_BATCH_TOKENS, MAX_BATCH_TOKENS)
}

/// Waves of `concurrency` full calls ([`MAX_BATCH_TOKENS`]) the job's
/// expected output needs, at least one.
pub fn waves(expected_tokens: u32, concurrency: usize) -> u32 {
    let slots = (concurrency.max(1) as u32).saturating_mul(MAX_BATCH_TOKENS);
    expected_tokens.div_ceil(slots).max(1)
}

/// `contentMetadata.workerChain` of this worker's output.
pub fn worker_chain() -> Value {
    json!({
        "previousWorker": PREVIOUS_WORKER,
        "currentWorker": SERVICE_NAME,
        "nextWorkers": [NEXT_WORKER],
        "outputFormat": "structured_json",
        "version": OUTPUT_VERSION,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_balanced_over_whole_waves_of_the_calls_at_once() {
        // 45,800 tokens over 6 calls at once: two waves of 3,817 each.
        assert_eq!(batch_ceiling(45_800, 6), 3_817);
        // Under one wave of full calls: spread over the six.
        assert_eq!(batch_ceiling(30_000, 6), 5_000);
        // Exactly full waves keep the ceiling.
        assert_eq!(batch_ceiling(36_000, 6), MAX_BATCH_TOKENS);
        assert_eq!(batch_ceiling(72_000, 6), MAX_BATCH_TOKENS);
        // Small jobs are not cut into small calls; one slot is one wave.
        assert_eq!(batch_ceiling(3_000, 6), MIN_BATCH_TOKENS);
        assert_eq!(batch_ceiling(0, 6), MIN_BATCH_TOKENS);
        assert_eq!(batch_ceiling(13_000, 1), 4_334);
        assert_eq!(batch_ceiling(13_000, 0), 4_334);
        assert_eq!(
            (
                waves(45_800, 6),
                waves(36_000, 6),
                waves(36_001, 6),
                waves(0, 6)
            ),
            (2, 1, 2, 1)
        );
    }

    #[test]
    fn a_granularity_3_course_is_planned_into_two_full_waves_of_six_calls() {
        let mut input: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/course-g3.json")).unwrap();
        input["contentMetadata"]["generationStrategy"]["maxConcurrent"] = json!(6);
        let request = crate::types::request::ExecuteRequest::parse(
            &json!({"action": "generate", "input": input}),
        )
        .unwrap();
        let plan = Generate::content_plan(&request.job).unwrap();
        let expected = plan.expected_output_tokens;
        assert_eq!(waves(expected, 6), 2, "{expected} tokens");
        // Packed under the even ceiling alone it made 16 batches (three waves).
        assert!(plan.batches.len() <= 12, "{} batches", plan.batches.len());
        let largest = plan
            .batches
            .iter()
            .map(|b| b.expected_tokens)
            .max()
            .unwrap();
        assert!(largest <= MAX_BATCH_TOKENS, "{largest}");
        // Every element is still in exactly one batch.
        let mut paths: Vec<&String> = plan.batches.iter().flat_map(|b| &b.paths).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), plan.elements.len());
    }

    #[test]
    fn the_chain_names_the_granulator_before_and_the_packager_after() {
        let chain = worker_chain();
        assert_eq!(chain["previousWorker"], PREVIOUS_WORKER);
        assert_eq!(chain["currentWorker"], SERVICE_NAME);
        assert_eq!(chain["nextWorkers"], json!([NEXT_WORKER]));
    }
}

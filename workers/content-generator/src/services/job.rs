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
    /// Calls at once: what the granulator planned, within this worker's
    /// `AI_MAX_CALLS_AT_ONCE` (its provider's limits per key).
    fn slots(&self, job: &GenerateJob) -> usize {
        job.max_concurrent()
            .min(self.0.config.settings.max_calls_at_once)
            .max(1)
    }

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

    /// The job's plan whose calls end soonest: of the ceilings from
    /// [`MIN_BATCH_TOKENS`] to [`MAX_BATCH_TOKENS`] (a tenth apart), the one
    /// whose batches, run in order on the calls at once, stream the fewest
    /// tokens on the busiest call (`makespan`), the fewer calls on a tie.
    /// Batches hold whole elements, so an even split is not always there
    /// (measured on a g3 course: 6,000 → 11 batches, two of ~6,100 tokens in
    /// a row on one call; an even 3,817 → 16 batches, a third wave).
    fn content_plan(job: &GenerateJob, slots: usize) -> AppResult<content::Plan> {
        let structure = Self::structure(job)?;
        let mut best: Option<(u64, content::Plan)> = None;
        for ceiling in ceilings() {
            let plan = content::plan(job, structure, ceiling)?;
            let tokens: Vec<u32> = plan.batches.iter().map(|b| b.expected_tokens).collect();
            let span = makespan(&tokens, slots);
            let better = match &best {
                None => true,
                Some((s, p)) => span < *s || span == *s && plan.batches.len() < p.batches.len(),
            };
            if better {
                best = Some((span, plan));
            }
        }
        match best {
            Some((_, plan)) => Ok(plan),
            None => content::plan(job, structure, MAX_BATCH_TOKENS),
        }
    }
}

/// The batch ceilings a plan is tried at: from [`MIN_BATCH_TOKENS`] up by a
/// tenth, and [`MAX_BATCH_TOKENS`].
pub fn ceilings() -> Vec<u32> {
    let mut all = Vec::new();
    let mut c = MIN_BATCH_TOKENS;
    while c < MAX_BATCH_TOKENS {
        all.push(c);
        c += c / 10;
    }
    all.push(MAX_BATCH_TOKENS);
    all
}

/// The tokens the busiest call streams when `batches` (their expected
/// tokens) run in order on `slots` calls at once, each starting as a call
/// ends: at a constant token rate, the job's wall clock.
pub fn makespan(batches: &[u32], slots: usize) -> u64 {
    let mut ends = vec![0u64; slots.max(1)];
    for &tokens in batches {
        if let Some(free) = ends.iter_mut().min() {
            *free += u64::from(tokens);
        }
    }
    ends.into_iter().max().unwrap_or(0)
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
        let plan = Self::content_plan(job, self.slots(job))?;
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
        let slots = self.slots(job);
        let plan = Self::content_plan(job, slots)?;
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
                slots,
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
        output: &Value,
    ) -> AppResult<bool> {
        let summary = &output["summary"];
        let row = GenerationRow {
            tenant: c.client_id,
            job_id: c.job_id,
            granulator_job_id: job.granulator_job_id,
            structure_type: job.structure_type.as_str(),
            elements: summary["elementsWritten"].as_i64().unwrap_or(0),
            words: summary["wordsWritten"].as_i64().unwrap_or(0),
            target_words: summary["wordsTargeted"].as_i64().unwrap_or(0),
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
    fn the_makespan_is_the_busiest_call_when_batches_start_as_calls_end() {
        assert_eq!(makespan(&[], 6), 0);
        assert_eq!(makespan(&[5, 5, 5], 6), 5);
        // Two slots: 4 | 3 then 2 on the one free first → max(4, 5).
        assert_eq!(makespan(&[4, 3, 2], 2), 5);
        assert_eq!(makespan(&[4, 3, 2], 0), 9);
        // Eleven batches of ~6,100 and ~2,900 (the measured 6,000 plan)
        // against sixteen of ~2,900 on six calls.
        assert_eq!(makespan(&[6_100; 5], 6), 6_100);
        assert_eq!(
            makespan(&[6_100, 6_100, 6_100, 6_100, 6_100, 6_100, 6_100], 6),
            12_200
        );
        let all = ceilings();
        assert_eq!(
            (all[0], *all.last().unwrap()),
            (MIN_BATCH_TOKENS, MAX_BATCH_TOKENS)
        );
        assert!(all.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_granularity_3_course_is_planned_for_the_calls_that_end_soonest() {
        let input: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/course-g3.json")).unwrap();
        let request = crate::types::request::ExecuteRequest::parse(
            &json!({"action": "generate", "input": input}),
        )
        .unwrap();
        // Six calls at once: the plan of its measurement.
        let plan = Generate::content_plan(&request.job, 6).unwrap();
        let span = |p: &content::Plan| {
            makespan(
                &p.batches
                    .iter()
                    .map(|b| b.expected_tokens)
                    .collect::<Vec<_>>(),
                6,
            )
        };
        let structure = request.job.structure.as_ref().unwrap();
        // No single ceiling does better, the plain 6,000 one among them.
        for ceiling in ceilings() {
            let other = content::plan(&request.job, structure, ceiling).unwrap();
            assert!(span(&plan) <= span(&other), "{ceiling}");
        }
        let plain = content::plan(&request.job, structure, MAX_BATCH_TOKENS).unwrap();
        assert!(
            span(&plan) < span(&plain),
            "{} vs {}",
            span(&plan),
            span(&plain)
        );
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

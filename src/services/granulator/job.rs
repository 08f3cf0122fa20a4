//! One run of a claimed job: the first outline, one repair of its rule
//! violations, the optional review (a failed one re-granulates once with the
//! findings and the better verdict stands), then `finish` or `fail`. Progress
//! of the streaming call reaches the job row at most once a second.

use super::plan::{chain_error, complete, complete_typed, review_request, uses_offline, Plan};
use super::ports::{OutlineStore, Ports, StructureStore, TemplateSource};
use super::Prepared;
use crate::helpers::prompts;
use crate::services::ai_provider::{
    feedback_prompt, Attempt, ChainError, CompletionRequest, Purpose, Runtime, RuntimeClock,
};
use crate::services::database::run_superseded;
use crate::services::fanout;
use crate::services::normalize::normalize;
use crate::services::offline;
use crate::services::partial::StreamedNodes;
use crate::services::progress::Progress;
use crate::services::validation::{self, assess, trim_to_max_elements, QualityReport, Verdict};
use crate::types::job::{PartialBranch, Stage};
use crate::types::outline::Outline;
use crate::types::purpose;
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::run::{beside, Watch};
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;

/// Run a claimed job to its end; the job ends `completed` or `failed`, or,
/// when it was cancelled meanwhile, settles as `cancelled`.
pub(super) async fn run_prepared<
    R: Runtime,
    J: OutlineStore,
    S: StructureStore,
    T: TemplateSource,
>(
    ports: &Ports<'_, R, J, S, T>,
    job_id: i64,
    run: u32,
    prepared: Prepared,
    start: u64,
) -> AppResult<Value> {
    let Prepared {
        plan,
        client_id,
        execution_id,
    } = prepared;
    let progress = Rc::new(Progress::default());
    let streamed = Rc::new(RefCell::new(StreamedNodes::new(
        plan.structure_type,
        &plan.counts,
        &plan.template.structure_rules,
    )));
    let mut attempts = Vec::new();
    ports.cancel.job.set(Some(job_id));
    let mut runner = Job {
        ports,
        plan,
        job_id,
        run,
        client_id: &client_id,
        execution_id: &execution_id,
        start,
        progress: progress.clone(),
        streamed: streamed.clone(),
        branches: None,
    };
    let outcome = {
        let work = runner.run(&mut attempts);
        // The kit's watcher writes progress (at most once a second, only
        // when it moved), the heartbeat, and sets the flags the streaming
        // call reads per chunk when the job is cancelled or taken over;
        // each poll first shows a single call's level-1 nodes closed since
        // the last one (issue 24).
        let clock = RuntimeClock(ports.runtime);
        let writer = Watch {
            clock: &clock,
            jobs: ports.jobs,
            cancel: &ports.cancel,
            progress: &progress,
            job_id,
            run,
            start_ms: start,
        }
        .watch(async || {
            let closed = streamed.borrow_mut().read(&progress);
            show(ports, job_id, run, &closed).await;
        });
        beside(work, writer).await
    };
    match outcome {
        Ok(envelope) => Ok(envelope),
        // A cancelled job's run stops with an error (the chain's, or its
        // completion undone by the schema's guard): it settles as cancelled.
        Err(_) if ports.cancelled_now().await => Err(runner.settle_cancelled(&attempts).await),
        // Taken over or swept while it ran: the job is another run's now.
        Err(_) if ports.cancel.superseded.get() => Err(run_superseded(job_id, run)),
        Err(error) => Err(runner.fail(error, &attempts).await),
    }
}

/// Record branches that passed their checks, for the structure route and
/// the events stream. Best effort: they are in the outline either way.
async fn show<R: Runtime, J: OutlineStore, S: StructureStore, T: TemplateSource>(
    ports: &Ports<'_, R, J, S, T>,
    job_id: i64,
    run: u32,
    branches: &[PartialBranch],
) {
    for branch in branches {
        let _ = ports.jobs.record_branch(job_id, run, branch).await;
    }
}

pub(super) struct Job<'a, R, J, S, T> {
    pub ports: &'a Ports<'a, R, J, S, T>,
    pub plan: Plan,
    pub job_id: i64,
    pub run: u32,
    pub client_id: &'a str,
    pub execution_id: &'a str,
    pub start: u64,
    pub progress: Rc<Progress>,
    /// A single call's level-1 nodes read from its stream (the progress
    /// writer reads them while it streams, the run once more at its end).
    pub streamed: Rc<RefCell<StreamedNodes>>,
    /// Branches of the first outline when it was fanned out.
    pub branches: Option<u32>,
}

/// An outline and how it scored.
pub(super) struct Draft {
    pub structure: Outline,
    pub report: QualityReport,
    pub provider: String,
    pub model: String,
}

impl<R: Runtime, J: OutlineStore, S: StructureStore, T: TemplateSource> Job<'_, R, J, S, T> {
    /// The job's key on a provider's prompt cache (OpenAI `prompt_cache_key`):
    /// its id, stable across its calls and runs, and no secret.
    pub(super) fn cache_key(&self) -> String {
        format!("granulator-job-{}", self.job_id)
    }

    /// A first outline's, a re-granulation's or a repair's request: each
    /// starts with the job's prompt (what they share) and ends with what is
    /// its own (a review's findings, the previous outline and its problems).
    fn outline_request(&self, purpose: Purpose, user: String) -> CompletionRequest {
        let p = &self.plan;
        CompletionRequest {
            purpose,
            system: prompts::system_prompt(p.structure_type),
            shared_prefix: if user.starts_with(&p.prompt) {
                p.prompt.len()
            } else {
                0
            },
            cache_key: Some(self.cache_key()),
            user,
            schema_name: prompts::schema_name(p.structure_type),
            schema: p.schema.clone(),
            max_tokens: p.max_tokens,
            temperature: p.temperature,
            expected_output_tokens: p.expected_output_tokens,
            progress: Some(self.progress.clone()),
            offline_answer: uses_offline(&p.chain).then(|| {
                offline::generate(
                    p.structure_type,
                    p.params.granularity_level,
                    &p.template.structure_rules,
                    &p.constraints,
                    &p.params.topic,
                )
                .to_value()
            }),
        }
    }

    async fn draft(
        &mut self,
        purpose: Purpose,
        user: String,
        attempts: &mut Vec<Attempt>,
    ) -> Result<Draft, ChainError> {
        let st = self.plan.structure_type;
        let request = self.outline_request(purpose, user);
        let (structure, done) = complete_typed(
            self.ports,
            &self.plan.chain,
            &request,
            &|v| normalize(st, v),
            &mut self.plan.budget,
            self.plan.deadline_ms,
            attempts,
        )
        .await?;
        let report = self.assess(&structure);
        Ok(Draft {
            structure,
            report,
            provider: done.provider.as_str().to_string(),
            model: done.model,
        })
    }

    /// The first outline in one call, each level-1 node shown as soon as
    /// it closes in the stream and passes its checks (issue 24); what the
    /// progress writer has not read yet is read when the call ends.
    async fn streamed_draft(&mut self, attempts: &mut Vec<Attempt>) -> Result<Draft, ChainError> {
        self.progress.keep_text(true);
        let draft = self
            .draft(purpose::GRANULATE, self.plan.prompt.clone(), attempts)
            .await;
        if draft.is_ok() {
            let rest = self.streamed.borrow_mut().read(&self.progress);
            show(self.ports, self.job_id, self.run, &rest).await;
        }
        self.progress.keep_text(false);
        draft
    }

    pub(super) fn assess(&self, structure: &Outline) -> QualityReport {
        let p = &self.plan;
        assess(
            p.params.granularity_level,
            &p.template.structure_rules,
            &p.constraints,
            structure,
        )
    }

    pub async fn run(&mut self, attempts: &mut Vec<Attempt>) -> AppResult<Value> {
        let p = &self.plan;
        let fans_out = fanout::fans_out(
            p.strategy,
            &p.counts,
            p.expected_output_tokens,
            uses_offline(&p.chain),
        );
        let fanned = match fans_out {
            true => self.fanned_out(attempts).await.map_err(chain_error)?,
            false => None,
        };
        let first = match fanned {
            Some(draft) => draft,
            None => self.streamed_draft(attempts).await.map_err(chain_error)?,
        };
        let mut best = self.refine(first, attempts).await?;
        self.not_cancelled()?;

        let mut verdict = None;
        if let Some((level, threshold)) = self.plan.validation {
            let v = self.validate(&best, level, threshold, attempts).await?;
            // An unavailable review is no finding to act on: no second outline.
            if !v.passed && v.reason.is_none() {
                // One more outline with the reviewer's findings, then the better verdict stands.
                let feedback = feedback_prompt(
                    &v.issues
                        .iter()
                        .take(12)
                        .cloned()
                        .chain(v.ai_feedback.clone())
                        .collect::<Vec<_>>(),
                );
                let user = format!("{}\n\n{feedback}", self.plan.prompt);
                match self.draft(purpose::GRANULATE, user, attempts).await {
                    Ok(second) => {
                        let second_verdict =
                            self.validate(&second, level, threshold, attempts).await?;
                        if second_verdict.reason.is_none()
                            && second_verdict.accuracy_percentage >= v.accuracy_percentage
                        {
                            best = second;
                            verdict = Some(second_verdict);
                        } else {
                            verdict = Some(v);
                        }
                    }
                    Err(_) => verdict = Some(v),
                }
            } else {
                verdict = Some(v);
            }
        }
        self.not_cancelled()?;
        self.finish(best, verdict, attempts).await
    }

    /// Between stages: a cancel the run has seen stops it here (a repair or
    /// a review that the cancel cut short is not an outline to go on with).
    fn not_cancelled(&self) -> AppResult<()> {
        match self.ports.cancel.seen.get() {
            true => Err(AppError::conflict("job_cancelled", "the job was cancelled")),
            false => Ok(()),
        }
    }

    /// Rule and constraint violations go back to the model once; the better
    /// outline is kept, and `maxElements` is then enforced by trimming.
    async fn refine(&mut self, draft: Draft, attempts: &mut Vec<Attempt>) -> AppResult<Draft> {
        let mut best = draft;
        if !best.report.violations.is_empty() && self.ports.now_ms() + 2_000 < self.plan.deadline_ms
        {
            self.set_stage(Stage::Refining).await?;
            let user = format!(
                "{}\n\nYour previous outline:\n{}\n\n{}",
                self.plan.prompt,
                best.structure,
                feedback_prompt(&best.report.feedback())
            );
            if let Ok(repaired) = self.draft(purpose::REPAIR, user, attempts).await {
                if repaired.report.score >= best.report.score {
                    best = repaired;
                }
            }
        }
        let p = &self.plan;
        let (g, rules) = (p.params.granularity_level, &p.template.structure_rules);
        if trim_to_max_elements(g, rules, &p.constraints, &mut best.structure) > 0 {
            best.report = self.assess(&best.structure);
        }
        Ok(best)
    }

    async fn validate(
        &mut self,
        draft: &Draft,
        level: u8,
        threshold: f64,
        attempts: &mut Vec<Attempt>,
    ) -> AppResult<Verdict> {
        if level < 2 {
            return Ok(validation::verdict(level, threshold, &draft.report, None));
        }
        self.set_stage(Stage::Validating).await?;
        let request = review_request(
            self.plan.structure_type,
            &self.plan.params.topic,
            &self.plan.audience,
            level,
            &draft.structure,
            &draft.report,
            &self.plan.chain,
        );
        let outcome = complete(
            self.ports,
            &self.plan.chain,
            &request,
            &|v| validation::parse_review(level, v),
            &mut self.plan.budget,
            self.plan.deadline_ms,
            attempts,
        )
        .await;
        let review = match outcome {
            Ok(review) => review,
            Err(ChainError::Cancelled(m)) => return Err(chain_error(ChainError::Cancelled(m))),
            // The outline is produced and paid for: keep it, marked unreviewed.
            Err(e) => {
                let error = chain_error(e).message;
                return Ok(validation::review_unavailable(
                    level,
                    threshold,
                    &draft.report,
                    &error,
                ));
            }
        };
        Ok(validation::verdict(
            level,
            threshold,
            &draft.report,
            Some(&review.value),
        ))
    }

    async fn set_stage(&self, stage: Stage) -> AppResult<()> {
        let now = self.ports.now_ms();
        self.ports
            .jobs
            .set_stage(self.job_id, self.run, stage.as_str(), now)
            .await
    }
}

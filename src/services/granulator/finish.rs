//! The end of a run: a finished job's envelope and its one atomic write, or
//! a failure recorded with the usage it incurred.

use super::job::{Draft, Job};
use super::ports::{OutlineStore, StructureStore, TemplateSource};
use crate::helpers::economy::efficiency;
use crate::services::ai_provider::{totals, Attempt, Runtime};
use crate::services::database::{run_superseded, Completion, Failure, NewValidation};
use crate::services::envelope::{
    Granulated, Metadata, Output, QualityOf, StructureReference, Summary, TokensUsed, Usage,
};
use crate::services::outline::{self, ElementRow, MetadataInput, WordCountEstimates};
use crate::services::storage::{self, Tier};
use crate::services::timing::day_of;
use crate::services::validation::{self, Verdict};
use crate::types::job::Stage;
use crate::types::pricing::TokenUsage;
use crate::types::provider::ProviderKind;
use crate::types::purpose;
use bitware_kit::error::{AppError, AppResult};
use bitware_kit::jobs::end::RunEnd;
use serde_json::{json, Value};

/// What finishing a draft works out before the answer is written.
struct Finished {
    rows: Vec<ElementRow>,
    words: WordCountEstimates,
    /// The outline's canonical JSON, and as text.
    structure: Value,
    structure_json: String,
    tier: Tier,
    /// Where the outline went when it is not inline (KV key, R2 object).
    location: Option<String>,
    metadata: Value,
    deliverable_specs: Value,
    usage: TokenUsage,
    cost: Option<f64>,
    now: u64,
    elapsed: u64,
    /// The offline provider's outlines are numbered skeletons.
    placeholder: bool,
    ready: bool,
}

impl<R: Runtime, J: OutlineStore, S: StructureStore, T: TemplateSource> Job<'_, R, J, S, T> {
    /// Store the outline in its tier, answer with the envelope, and write
    /// the job's end (elements, usage, validation, result) in one batch.
    pub async fn finish(
        &mut self,
        draft: Draft,
        verdict: Option<Verdict>,
        attempts: &[Attempt],
    ) -> AppResult<Value> {
        let f = self.work_out(&draft, verdict.as_ref(), attempts).await?;
        let envelope = serde_json::to_value(self.envelope(&draft, verdict.as_ref(), attempts, &f))
            .map_err(|e| AppError::internal(format!("the answer could not be written: {e}")))?;
        // The stored answer keeps a KV/R2-tier outline by reference only (a
        // D1 row holds no large outline, and an export's INSERTs stay under
        // D1's 100 KB statement limit); a replay puts it back inline
        // (`with_structure`).
        let result_json = if envelope["output"].get("structureReference").is_some() {
            let mut stored = envelope.clone();
            if let Some(output) = stored["output"].as_object_mut() {
                output.remove("structure");
            }
            stored.to_string()
        } else {
            envelope.to_string()
        };
        let validation_row = verdict.as_ref().map(|v| {
            let (vu, vc) = totals(
                &attempts
                    .iter()
                    .filter(|a| a.purpose == purpose::VALIDATE)
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            NewValidation::of(v, &vu, vc)
        });
        let p = &self.plan;
        let stored = self
            .ports
            .jobs
            .store_outline(&Completion {
                job_id: self.job_id,
                run: self.run,
                client_id: self.client_id,
                template_id: p.template.id,
                provider: &draft.provider,
                model: &draft.model,
                usage: f.usage,
                cost_usd: f.cost,
                quality_score: draft.report.score,
                validation: validation_row.as_ref(),
                elements: &f.rows,
                estimated_total_words: f.words.total,
                content_metadata: &f.metadata,
                deliverable_specs: &f.deliverable_specs,
                structure_root: &draft.structure.root_value(),
                storage_type: f.tier.as_str(),
                storage_location: f.location.as_deref(),
                structure_bytes: f.structure_json.len(),
                result_json: &result_json,
                processing_time_ms: f.elapsed,
                attempts,
                date: &day_of(f.now),
            })
            .await?;
        if !stored {
            // Taken over or ended while it ran: what it made is not stored.
            return Err(run_superseded(self.job_id, self.run));
        }
        Ok(envelope)
    }

    /// Rows, word counts, the outline stored in its tier, metadata, usage
    /// and readiness.
    async fn work_out(
        &self,
        draft: &Draft,
        verdict: Option<&Verdict>,
        attempts: &[Attempt],
    ) -> AppResult<Finished> {
        let p = &self.plan;
        let st = p.structure_type;
        let rows = outline::flatten(&draft.structure);
        let words = outline::word_counts(st, &rows);
        // The canonical JSON, made once: stored as text, inline in the envelope.
        // The canonical JSON, made once: stored as text, inline in the envelope.
        let structure = draft.structure.to_value();
        let structure_json = structure.to_string();
        let tier = Tier::for_size(structure_json.len());
        if tier != Tier::Inline {
            let now = self.ports.now_ms();
            self.ports
                .jobs
                .set_stage(self.job_id, self.run, Stage::Storing.as_str(), now)
                .await?;
        }
        let location = self
            .ports
            .structures
            .store(tier, self.job_id, &structure_json)
            .await?;
        let min_quality = p.template.validation_rules.min_quality_score;
        let metadata = outline::content_metadata(
            &MetadataInput {
                structure_type: st,
                topic: &p.params.topic,
                granularity: p.params.granularity_level.get(),
                target_audience: &p.audience,
                min_quality_score: min_quality,
                validation_required: verdict.is_some(),
                storage_tier: tier.as_str(),
                model: Some(&draft.model),
            },
            &rows,
            &words,
            &self.ports.config.pricing,
        );
        let deliverable_specs = json!({
            "format": "structured_json",
            "structureType": st,
            "sections": st.spec().levels.iter().take(p.counts.len()).map(|l| l.key).collect::<Vec<_>>(),
            "estimatedTotalWords": words.total,
            "storage": tier,
        });
        let (usage, cost) = totals(attempts);
        let now = self.ports.now_ms();
        let placeholder = draft.provider == ProviderKind::Offline.as_str();
        let ready = validation::ready_for_content_generation(
            draft.report.score,
            min_quality,
            verdict,
            placeholder,
            self.ports.config.environment == "production",
        );
        Ok(Finished {
            rows,
            words,
            structure,
            structure_json,
            tier,
            location,
            metadata,
            deliverable_specs,
            usage,
            cost,
            now,
            elapsed: now.saturating_sub(self.start),
            placeholder,
            ready,
        })
    }

    /// The answer, typed (`services::envelope::Granulated`).
    fn envelope<'s>(
        &'s self,
        draft: &'s Draft,
        verdict: Option<&'s Verdict>,
        attempts: &[Attempt],
        f: &'s Finished,
    ) -> Granulated<'s> {
        let p = &self.plan;
        let mut warnings = Vec::new();
        if let Some(reason) = verdict.and_then(|v| v.reason) {
            warnings
                .push(json!({"code": reason, "message": verdict.and_then(|v| v.issues.first())}));
        }
        for a in attempts.iter().filter(|a| a.overbilled_past.is_some()) {
            warnings.push(json!({
                "code": "provider_overbilled",
                "message": format!("{}; the budget could not bound it, and no further call was made", a.overbilling().unwrap_or_default()),
                "provider": a.provider,
                "model": a.model,
                "maxTokens": a.overbilled_past,
                "billedOutputTokens": a.usage.output,
                "costUsd": a.cost_usd,
            }));
        }
        if f.placeholder {
            warnings.push(json!({"code": "placeholder", "message": "the offline provider's outline is a numbered skeleton with template text, not content to write from"}));
        }
        let structure_reference = f.location.as_deref().map(|location| StructureReference {
            tier: f.tier,
            location,
            size_bytes: f.structure_json.len(),
            url: format!("/api/jobs/{}/structure", self.job_id),
        });
        Granulated {
            success: true,
            model: &draft.model,
            output: Output {
                granulator_job_id: self.job_id,
                job_id: self.job_id,
                topic: &p.params.topic,
                structure_type: p.structure_type,
                template_name: &p.template.template_name,
                granularity_level: p.params.granularity_level.get(),
                target_audience: &p.audience,
                summary: Summary {
                    total_elements: f.rows.len(),
                    elements_by_level: &draft.report.elements_by_level,
                    depth: draft.report.depth,
                    word_count_estimates: &f.words,
                    content_metadata: &f.metadata,
                    per_level: &draft.report.elements_by_level,
                },
                word_count_estimates: &f.words,
                content_metadata: &f.metadata,
                quality_score: draft.report.score,
                quality_report: QualityOf::of(&draft.report),
                ready_for_content_generation: f.ready,
                ready_for_next: f.ready,
                next_worker_recommendation: outline::NEXT_WORKERS[0],
                processing_time_ms: f.elapsed,
                tokens_used: TokensUsed {
                    input: f.usage.input,
                    output: f.usage.output,
                    total: f.usage.total(),
                },
                cost_usd: f.cost,
                provider: &draft.provider,
                model: &draft.model,
                deliverable_specs: &f.deliverable_specs,
                placeholder: f.placeholder,
                // Inline whenever it fits the answer, beside its reference.
                structure: (f.location.is_none()
                    || f.structure_json.len() <= storage::ANSWER_INLINE_LIMIT)
                    .then_some(&f.structure),
                structure_reference,
                validation_result: verdict,
            },
            usage: Usage::of(&f.usage),
            duration: f.elapsed,
            cost: f.cost,
            metadata: Metadata {
                worker_chain: outline::worker_chain(),
                job_id: self.job_id,
                execution_id: self.execution_id,
                run: self.run,
                attempts: attempts.len(),
                strategy: if self.branches.is_some() {
                    "fanout"
                } else {
                    "single"
                },
                branches: self.branches,
                storage_tier: f.tier,
                efficiency: efficiency(&f.usage, f.elapsed, f.cost),
                warnings,
            },
        }
    }

    /// The run at its end (the kit's `RunEnd`).
    fn ending<'e>(&'e self, attempts: &'e [Attempt]) -> RunEnd<'e> {
        RunEnd {
            job_id: self.job_id,
            run: self.run,
            client_id: self.client_id,
            start_ms: self.start,
            now_ms: self.ports.now_ms(),
            attempts,
        }
    }

    /// The run of a cancelled job stops: its attempts, usage and spend are
    /// recorded once (the reservation settled to what was spent), and its
    /// answer is the cancel's 409 with that usage (the kit's).
    pub async fn settle_cancelled(&self, attempts: &[Attempt]) -> AppError {
        self.ending(attempts).cancelled(self.ports.jobs).await
    }

    /// Leave the job `failed` with the reason and the usage it incurred
    /// (the kit's ending, with the template's analytics beside it).
    pub async fn fail(&self, error: AppError, attempts: &[Attempt]) -> AppError {
        if error.code == "run_superseded" {
            return error;
        }
        let ending = self.ending(attempts);
        let day = day_of(ending.now_ms);
        let failure = Failure::of(ending.failure(&error, &day), self.plan.template.id);
        let recorded = self.ports.jobs.record_failure(&failure).await;
        ending.failed(error, recorded)
    }
}

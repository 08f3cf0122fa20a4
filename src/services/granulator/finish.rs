//! The end of a run: a finished job's envelope and its one atomic write, or
//! a failure recorded with the usage it incurred.

use super::job::{Draft, Job};
use super::ports::{JobStore, StructureStore, TemplateSource};
use crate::helpers::economy::efficiency;
use crate::services::ai_provider::{totals, Attempt, Runtime};
use crate::services::database::{Completion, Failure, NewValidation};
use crate::services::outline::{self, MetadataInput};
use crate::services::storage::Tier;
use crate::services::timing::day_of;
use crate::services::validation::{self, Verdict};
use crate::types::job::Stage;
use crate::types::pricing::TokenUsage;
use crate::types::provider::ProviderKind;
use crate::types::purpose;
use bitware_kit::error::{AppError, AppResult};
use serde_json::{json, Value};

impl<R: Runtime, J: JobStore, S: StructureStore, T: TemplateSource> Job<'_, R, J, S, T> {
    pub async fn finish(
        &mut self,
        draft: Draft,
        verdict: Option<Verdict>,
        attempts: &[Attempt],
    ) -> AppResult<Value> {
        let p = &self.plan;
        let st = p.structure_type;
        let rows = outline::flatten(&draft.structure);
        let words = outline::word_counts(st, &rows);
        // The canonical JSON, made once: stored as text, inline in the envelope.
        let structure_value = draft.structure.to_value();
        let structure_json = structure_value.to_string();
        let tier = Tier::for_size(structure_json.len());
        if tier != Tier::Inline {
            let now = self.ports.now_ms();
            self.ports
                .jobs
                .set_stage(self.job_id, Stage::Storing, now)
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
        let (usage, cost) = totals(attempts);
        let now = self.ports.now_ms();
        let elapsed = now.saturating_sub(self.start);
        // The offline provider's outlines are numbered skeletons (`placeholder`).
        let placeholder = draft.provider == ProviderKind::Offline.as_str();
        let ready = validation::ready_for_content_generation(
            draft.report.score,
            min_quality,
            verdict.as_ref(),
            placeholder,
            self.ports.config.environment == "production",
        );
        let deliverable_specs = json!({
            "format": "structured_json",
            "structureType": st,
            "sections": st.spec().levels.iter().take(p.counts.len()).map(|l| l.key).collect::<Vec<_>>(),
            "estimatedTotalWords": words.total,
            "storage": tier,
        });
        let structure_field = match &location {
            None => ("structure", structure_value),
            Some(loc) => (
                "structureReference",
                json!({"type": tier, "location": loc, "sizeBytes": structure_json.len(),
                    "url": format!("/api/jobs/{}/structure", self.job_id)}),
            ),
        };
        let mut summary = json!({
            "totalElements": rows.len(),
            "elementsByLevel": draft.report.elements_by_level,
            "depth": draft.report.depth,
            "wordCountEstimates": words,
            "contentMetadata": metadata,
        });
        for (level, count) in &draft.report.elements_by_level {
            summary[level] = json!(count);
        }
        let mut output = json!({
            "granulatorJobId": self.job_id,
            "jobId": self.job_id,
            "topic": p.params.topic,
            "structureType": st,
            "templateName": p.template.template_name,
            "granularityLevel": p.params.granularity_level.get(),
            "targetAudience": p.audience,
            "summary": summary,
            "wordCountEstimates": words,
            "contentMetadata": metadata,
            "qualityScore": draft.report.score,
            "qualityReport": {"components": draft.report.components, "violations": draft.report.violations},
            "readyForContentGeneration": ready,
            "readyForNext": ready,
            "nextWorkerRecommendation": outline::NEXT_WORKERS[0],
            "processingTimeMs": elapsed,
            "tokensUsed": {"input": usage.input, "output": usage.output, "total": usage.total()},
            "costUsd": cost,
            "provider": draft.provider,
            "model": draft.model,
            "deliverableSpecs": deliverable_specs,
            "placeholder": placeholder,
        });
        output[structure_field.0] = structure_field.1;
        let mut warnings = Vec::new();
        if let Some(v) = &verdict {
            output["validationResult"] = json!({
                "level": v.level, "accuracyPercentage": v.accuracy_percentage, "threshold": v.threshold, "passed": v.passed,
                "criteria": v.criteria, "issues": v.issues, "aiFeedback": v.ai_feedback,
            });
            if let Some(reason) = v.reason {
                output["validationResult"]["reason"] = json!(reason);
                warnings.push(json!({"code": reason, "message": v.issues.first()}));
            }
        }
        if placeholder {
            warnings.push(json!({"code": "placeholder", "message": "the offline provider's outline is a numbered skeleton with template text, not content to write from"}));
        }
        // Top-level `model`: the Resource Manager prices `usage.tokens` under it.
        let envelope = json!({
            "success": true,
            "model": draft.model,
            "output": output,
            "usage": {"tokens": {"input": usage.input, "output": usage.output, "cached": usage.cached}},
            "duration": elapsed,
            "cost": cost,
            "metadata": {
                "workerChain": outline::worker_chain(),
                "jobId": self.job_id,
                "executionId": self.execution_id,
                "run": self.run,
                "attempts": attempts.len(),
                "strategy": if self.branches.is_some() { "fanout" } else { "single" },
                "branches": self.branches,
                "storageTier": tier,
                "efficiency": efficiency(&usage, elapsed, cost),
                "warnings": warnings,
            },
        });
        let result_json = envelope.to_string();
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
        self.ports
            .jobs
            .complete_job(&Completion {
                job_id: self.job_id,
                client_id: self.client_id,
                template_id: p.template.id,
                provider: &draft.provider,
                model: &draft.model,
                usage,
                cost_usd: cost,
                quality_score: draft.report.score,
                validation: validation_row.as_ref(),
                elements: &rows,
                estimated_total_words: words.total,
                content_metadata: &metadata,
                deliverable_specs: &deliverable_specs,
                structure_root: &draft.structure.root_value(),
                storage_type: tier.as_str(),
                storage_location: location.as_deref(),
                structure_bytes: structure_json.len(),
                result_json: &result_json,
                processing_time_ms: elapsed,
                attempts,
                date: &day_of(now),
            })
            .await?;
        Ok(envelope)
    }

    /// Leave the job `failed` with the reason and the usage it incurred.
    pub async fn fail(&self, error: AppError, attempts: &[Attempt]) -> AppError {
        let (usage, cost): (TokenUsage, Option<f64>) = totals(attempts);
        let last = attempts.last();
        let now = self.ports.now_ms();
        let failure = Failure {
            job_id: self.job_id,
            client_id: self.client_id,
            template_id: self.plan.template.id,
            code: error.code,
            reason: &error.message,
            provider: last.map(|a| a.provider.as_str()),
            model: last.map(|a| a.model.as_str()),
            usage,
            cost_usd: cost,
            processing_time_ms: now.saturating_sub(self.start),
            attempts,
            date: &day_of(now),
        };
        if let Err(e) = self.ports.jobs.fail_job(&failure).await {
            bitware_kit::error::worker_log(&format!(
                "job {} could not be marked failed: {e}",
                self.job_id
            ));
        }
        let summary: Vec<Value> = attempts
            .iter()
            .map(|a| json!({"provider": a.provider, "model": a.model, "purpose": a.purpose, "status": a.status, "httpStatus": a.http_status, "error": a.error}))
            .collect();
        let mut details = error.details.clone().unwrap_or_else(|| json!({}));
        details["jobId"] = json!(self.job_id);
        details["attempts"] = json!(summary);
        details["usage"] =
            json!({"tokens": {"input": usage.input, "output": usage.output}, "cost": cost});
        error.with_details(details)
    }
}

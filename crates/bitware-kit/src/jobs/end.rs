//! How a run that made no result ends, the same for every worker: the run
//! of a cancelled job books what it spent, once, and answers the cancel's
//! 409; a failed run is recorded `failed` with the reason and the usage its
//! attempts incurred, and answers its error with that usage. A run that no
//! longer owns its job writes nothing and answers `run_superseded`.

use super::store::{run_superseded, CancelledRun, Failure, JobStore};
use super::wait::cancelled_error;
use crate::ai::{totals, Attempt};
use crate::error::{worker_log, AppError, AppResult};
use crate::timing::day_of;
use serde_json::{json, Value};

/// A run at its end: which, since when, and the attempts it made.
pub struct RunEnd<'a> {
    pub job_id: i64,
    pub run: u32,
    pub client_id: &'a str,
    pub start_ms: u64,
    pub now_ms: u64,
    pub attempts: &'a [Attempt],
}

impl RunEnd<'_> {
    /// The run of a cancelled job: its attempts, usage and spend recorded
    /// once (the reservation settled to what was spent); the cancel's 409
    /// with that usage.
    pub async fn cancelled(&self, jobs: &impl JobStore) -> AppError {
        let (usage, cost) = totals(self.attempts);
        let last = self.attempts.last();
        let day = day_of(self.now_ms);
        let run = CancelledRun {
            job_id: self.job_id,
            run: self.run,
            client_id: self.client_id,
            provider: last.map(|a| a.provider.as_str()),
            model: last.map(|a| a.model.as_str()),
            usage,
            cost_usd: cost,
            processing_time_ms: self.now_ms.saturating_sub(self.start_ms),
            attempts: self.attempts,
            date: &day,
        };
        if let Err(e) = jobs.settle_cancelled(&run).await {
            worker_log(&format!(
                "job {}: the cancelled run could not be settled: {e}",
                self.job_id
            ));
        }
        let by = match jobs.job_state(self.job_id).await {
            Ok(Some(state)) => state.cancelled_by,
            _ => None,
        };
        let error = cancelled_error(self.job_id, by.as_deref(), None);
        let mut details = error.details.clone().unwrap_or_else(|| json!({}));
        details["usage"] = self.usage();
        details["attempts"] = json!(self.attempts.len());
        error.with_details(details)
    }

    /// What the store records of the run failing with `error`, on `day`.
    pub fn failure<'e>(&'e self, error: &'e AppError, day: &'e str) -> Failure<'e> {
        let (usage, cost) = totals(self.attempts);
        let last = self.attempts.last();
        Failure {
            job_id: self.job_id,
            run: self.run,
            client_id: self.client_id,
            code: error.code,
            reason: &error.message,
            provider: last.map(|a| a.provider.as_str()),
            model: last.map(|a| a.model.as_str()),
            usage,
            cost_usd: cost,
            processing_time_ms: self.now_ms.saturating_sub(self.start_ms),
            attempts: self.attempts,
            date: day,
        }
    }

    /// The run failed with `error` and the store was asked to record it
    /// (`recorded`: its answer): the caller's error, with the job, its
    /// attempts and their usage; `run_superseded` when the job was no
    /// longer the run's (nothing was written).
    pub fn failed(&self, error: AppError, recorded: AppResult<bool>) -> AppError {
        match recorded {
            Ok(true) => {}
            Ok(false) => return run_superseded(self.job_id, self.run),
            Err(e) => worker_log(&format!(
                "job {} could not be marked failed: {e}",
                self.job_id
            )),
        }
        let summary: Vec<Value> = self
            .attempts
            .iter()
            .map(|a| json!({"provider": a.provider, "model": a.model, "purpose": a.purpose, "status": a.status, "httpStatus": a.http_status, "error": a.error}))
            .collect();
        let mut details = error.details.clone().unwrap_or_else(|| json!({}));
        details["jobId"] = json!(self.job_id);
        details["attempts"] = json!(summary);
        details["usage"] = self.usage();
        error.with_details(details)
    }

    /// Fail the run with `error` through the kit's store (a worker with its
    /// own writes on failure builds `failure` and calls `failed` itself).
    pub async fn fail(&self, jobs: &impl JobStore, error: AppError) -> AppError {
        if error.code == "run_superseded" {
            return error;
        }
        let day = day_of(self.now_ms);
        let recorded = jobs.fail_job(&self.failure(&error, &day)).await;
        self.failed(error, recorded)
    }

    fn usage(&self) -> Value {
        let (usage, cost) = totals(self.attempts);
        json!({"tokens": {"input": usage.input, "output": usage.output}, "cost": cost})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::fixtures::{block_on, claimed};
    use crate::jobs::memory_jobs::MemoryJobs;
    use crate::jobs::store::{JobStatus, Moment, RunMode};

    fn end(job_id: i64, run: u32) -> RunEnd<'static> {
        RunEnd {
            job_id,
            run,
            client_id: "c",
            start_ms: 1_000,
            now_ms: 4_000,
            attempts: &[],
        }
    }

    #[test]
    fn a_failed_run_is_recorded_with_its_reason_and_answers_with_the_job() {
        let jobs = MemoryJobs::default();
        let (id, run) = claimed(&jobs, RunMode::Inline);
        let error = block_on(end(id, run).fail(&jobs, AppError::internal("boom")));
        assert_eq!(error.details.as_ref().unwrap()["jobId"], id);
        let job = jobs.job(id);
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.failure_reason.as_deref(), Some("boom"));
    }

    #[test]
    fn a_run_that_lost_its_job_writes_nothing_and_says_so() {
        let jobs = MemoryJobs::default();
        let (id, _) = claimed(&jobs, RunMode::Inline);
        let error = block_on(end(id, 9).fail(&jobs, AppError::internal("late")));
        assert_eq!(error.code, "run_superseded");
        assert_eq!(jobs.job(id).status, JobStatus::Processing);
    }

    #[test]
    fn a_cancelled_run_settles_once_and_answers_409_naming_who() {
        let jobs = MemoryJobs::default();
        let (id, run) = claimed(&jobs, RunMode::Inline);
        let at = Moment {
            ms: 2_000,
            stall_ms: 90_000,
            today: "2026-01-01",
        };
        block_on(jobs.cancel_job(id, "admin:a", at)).unwrap();
        let error = block_on(end(id, run).cancelled(&jobs));
        assert_eq!(error.code, "job_cancelled");
        assert_eq!(error.details.as_ref().unwrap()["cancelledBy"], "admin:a");
        assert!(jobs.job(id).ended);
    }
}

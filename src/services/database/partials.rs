//! `partial_branches`: the final branches of a running job (issue 24), one
//! row per run and position, so any isolate can show them before the job
//! ends. Readers ask for the job's current run only, and only while it runs
//! (or, for an events stream that watched it run, just as it ended), so an
//! older run's rows never show; the cron sweep deletes a job's rows a while
//! after it ended, so a stream polling it has time to send its last ones.

use super::{i, t, u, Database};
use crate::types::job::PartialBranch;
use bitware_kit::error::AppResult;
use serde::Deserialize;

/// How long a job's branches outlive it: longer than an events stream's
/// slowest poll, so a stream sends a branch written just before the end.
pub const KEEP_ENDED_MINUTES: u32 = 10;

/// One stored branch, with the id that orders rows as they were written.
#[derive(Debug, Clone, Deserialize)]
struct BranchRow {
    id: i64,
    position: u32,
    total: u32,
    title: String,
    node: String,
}

impl Database {
    /// Record a branch of run `run` (a branch written again for its position
    /// replaces it and gets a new id: the events stream sends it again).
    pub async fn record_branch(&self, job_id: i64, run: u32, b: &PartialBranch) -> AppResult<()> {
        let stmt = self.stmt(
            "INSERT OR REPLACE INTO partial_branches (job_id, run, position, total, title, node) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                i(job_id),
                u(u64::from(run)),
                u(u64::from(b.position)),
                u(u64::from(b.total)),
                t(&b.title),
                t(&b.node.to_string()),
            ],
        )?;
        self.run("recording a finished branch", stmt)
            .await
            .map(|_| ())
    }

    /// The branches of run `run` written after row `after` (0: all), in the
    /// order they were written, each with its row id.
    pub async fn branches_since(
        &self,
        job_id: i64,
        run: u32,
        after: i64,
    ) -> AppResult<Vec<(i64, PartialBranch)>> {
        let stmt = self.stmt(
            "SELECT id, position, total, title, node FROM partial_branches \
             WHERE job_id = ?1 AND run = ?2 AND id > ?3 ORDER BY id",
            &[i(job_id), u(u64::from(run)), i(after)],
        )?;
        let rows: Vec<BranchRow> = self.all("reading finished branches", stmt).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let node = serde_json::from_str(&r.node).unwrap_or_default();
                let branch = PartialBranch {
                    position: r.position,
                    total: r.total,
                    title: r.title,
                    node,
                };
                (r.id, branch)
            })
            .collect())
    }

    /// Rows of jobs that ended more than `KEEP_ENDED_MINUTES` ago, and of
    /// runs older than their job's current one (the cron sweep).
    pub async fn clear_ended_branches(&self) -> AppResult<usize> {
        let stmt = self.stmt(
            &format!(
                "DELETE FROM partial_branches WHERE job_id IN (SELECT id FROM granulation_jobs \
                 WHERE status != 'processing' AND updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{KEEP_ENDED_MINUTES} minutes')) \
                 OR run < (SELECT run_count FROM granulation_jobs WHERE id = partial_branches.job_id)"
            ),
            &[],
        )?;
        self.run("clearing the branches of ended jobs", stmt).await
    }
}

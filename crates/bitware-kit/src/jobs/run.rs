//! A run of a claimed job while its work goes on: the watcher beside it
//! writes the run's progress (at most once a second, only when it moved),
//! its heartbeat (at least every [`HEARTBEAT_MS`], so a live run is never
//! taken for a stopped one), and learns of a cancel or a takeover — from a
//! progress write that changed nothing, or a look at the job's row — into
//! [`RunCancel`], which the provider chain reads through `ai::Stop`.

use super::store::{JobStatus, JobStore};
use crate::ai::progress::Progress;
use crate::ai::{Confirm, Stop};
use crate::timing::Clock;
use std::cell::Cell;
use std::convert::Infallible;

/// At most one progress write a second while a model call streams.
pub const PROGRESS_WRITE_MS: u64 = 1_000;
/// How often the watcher wakes.
pub const PROGRESS_POLL_MS: u64 = 250;
/// The longest a running job goes without writing its heartbeat; the stall
/// period (a worker's `JOB_STALL_MS`) must stay well above it.
pub const HEARTBEAT_MS: u64 = 5_000;
/// How often a run looks at its job's row when it wrote no progress: a
/// cancel is seen at most this long (plus a poll and a round trip) after it
/// is recorded. While a call streams, the progress write itself tells (it
/// changes nothing once the job is cancelled).
pub const CANCEL_CHECK_MS: u64 = 1_000;

/// The cancel of the job a run is for. `job` is set when the run starts
/// (work outside a job has none, and checks nothing); `seen` once the run
/// saw the job cancelled, by its watcher or before a model call;
/// `superseded` once a progress write found the job no longer the run's
/// (taken over, or ended by the sweep): the run stops as for a cancel, and
/// nothing it made is stored.
#[derive(Debug, Default)]
pub struct RunCancel {
    pub job: Cell<Option<i64>>,
    pub seen: Cell<bool>,
    pub superseded: Cell<bool>,
}

impl RunCancel {
    /// Whether the run should stop: its job cancelled or no longer its own.
    pub fn requested(&self) -> bool {
        self.seen.get() || self.superseded.get()
    }

    /// Whether the run's job has been cancelled: the flag once seen, else
    /// its row (one read; an unreadable row is no cancel).
    pub async fn cancelled_now(&self, jobs: &impl JobStore) -> bool {
        if self.seen.get() {
            return true;
        }
        let Some(job_id) = self.job.get() else {
            return false;
        };
        if let Ok(Some(state)) = jobs.job_state(job_id).await {
            if state.status == JobStatus::Cancelled {
                self.seen.set(true);
            }
        }
        self.seen.get()
    }
}

/// The provider chain's `Stop` for a run: asked before every attempt (a
/// read of the job's row) and on every streamed chunk (the flags).
pub struct RunStop<'a, J> {
    pub cancel: &'a RunCancel,
    pub jobs: &'a J,
}

impl<J: JobStore> Stop for RunStop<'_, J> {
    fn requested(&self) -> bool {
        self.cancel.requested()
    }
    fn confirm(&self) -> Confirm<'_> {
        Box::pin(async {
            self.cancel.superseded.get() || self.cancel.cancelled_now(self.jobs).await
        })
    }
}

/// Run `run` of job `job_id`, started at `start_ms`, as its watcher sees it.
pub struct Watch<'a, C, J> {
    pub clock: &'a C,
    pub jobs: &'a J,
    pub cancel: &'a RunCancel,
    /// What the run's model calls have streamed.
    pub progress: &'a Progress,
    pub job_id: i64,
    pub run: u32,
    pub start_ms: u64,
}

impl<C: Clock, J: JobStore> Watch<'_, C, J> {
    /// Watch until the future is dropped (run it beside the work and drop
    /// it when the work ends). Each wake calls `tick` first (a worker's own
    /// per-poll step, e.g. showing partial results), then writes progress
    /// or the heartbeat, or looks for a cancel, as the module says.
    pub async fn watch(self, tick: impl AsyncFnMut()) -> Infallible {
        watch(self, tick).await
    }
}

/// Run `work` beside `watcher` (a [`Watch::watch`]) until the work ends,
/// polling the work first; the watcher is dropped with it.
pub async fn beside<T>(
    work: impl std::future::Future<Output = T>,
    watcher: impl std::future::Future<Output = Infallible>,
) -> T {
    let mut work = std::pin::pin!(work);
    let mut watcher = std::pin::pin!(watcher);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(done) = work.as_mut().poll(cx) {
            return std::task::Poll::Ready(done);
        }
        match watcher.as_mut().poll(cx) {
            std::task::Poll::Ready(never) => match never {},
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    })
    .await
}

async fn watch<C: Clock, J: JobStore>(
    w: Watch<'_, C, J>,
    mut tick: impl AsyncFnMut(),
) -> Infallible {
    let Watch {
        clock,
        jobs,
        cancel,
        progress,
        job_id,
        run,
        start_ms,
    } = w;
    let mut seen = progress.version();
    let (mut written_at, mut looked_at) = (0u64, start_ms);
    loop {
        clock.sleep(PROGRESS_POLL_MS).await;
        tick().await;
        let now = clock.now_ms();
        let since = now.saturating_sub(written_at);
        if (progress.version() != seen && since >= PROGRESS_WRITE_MS) || since >= HEARTBEAT_MS {
            seen = progress.version();
            (written_at, looked_at) = (now, now);
            let wrote = jobs
                .write_progress(job_id, run, &progress.snapshot(), now)
                .await;
            // Nothing written: the job is no longer this run's. A cancel, or
            // a takeover (or the sweep): either way the run stops before its
            // next call and drops its stream.
            if matches!(wrote, Ok(false)) && !cancel.cancelled_now(jobs).await {
                cancel.superseded.set(true);
            }
        } else if now.saturating_sub(looked_at) >= CANCEL_CHECK_MS {
            looked_at = now;
            cancel.cancelled_now(jobs).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::fixtures::{block_on, claimed};
    use crate::jobs::memory_jobs::MemoryJobs;
    use crate::jobs::store::{Moment, RunMode};
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A virtual clock whose sleep moves time and yields once, as a timer does.
    #[derive(Default)]
    struct Virtual(Cell<u64>);

    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    impl Clock for Virtual {
        fn now_ms(&self) -> u64 {
            self.0.get()
        }
        async fn sleep(&self, ms: u64) {
            self.0.set(self.0.get() + ms);
            YieldOnce(false).await;
        }
    }

    /// Run `work` beside the watcher until it ends.
    fn watched<F: Future<Output = ()>>(
        clock: &Virtual,
        jobs: &MemoryJobs,
        cancel: &RunCancel,
        progress: &Progress,
        (job_id, run): (i64, u32),
        work: F,
    ) {
        let watcher = Watch {
            clock,
            jobs,
            cancel,
            progress,
            job_id,
            run,
            start_ms: 0,
        }
        .watch(async || {});
        block_on(super::beside(work, watcher));
    }

    #[test]
    fn a_silent_run_still_writes_its_heartbeat_every_five_seconds() {
        let (clock, jobs, cancel, progress) = (
            Virtual::default(),
            MemoryJobs::default(),
            RunCancel::default(),
            Progress::default(),
        );
        let run = claimed(&jobs, RunMode::Inline);
        watched(&clock, &jobs, &cancel, &progress, run, async {
            clock.sleep(20_000).await;
            for _ in 0..80 {
                clock.sleep(0).await;
            }
        });
        let job = jobs.job(run.0);
        assert!(job.progress_writes >= 3, "{}", job.progress_writes);
        assert!(!cancel.requested());
    }

    #[test]
    fn a_cancel_is_seen_within_a_poll_of_the_next_look() {
        let (clock, jobs, cancel, progress) = (
            Virtual::default(),
            MemoryJobs::default(),
            RunCancel::default(),
            Progress::default(),
        );
        let run = claimed(&jobs, RunMode::Inline);
        cancel.job.set(Some(run.0));
        let at = Moment {
            ms: 0,
            stall_ms: 90_000,
            today: "2026-01-01",
        };
        block_on(jobs.cancel_job(run.0, "admin:a", at)).unwrap();
        watched(&clock, &jobs, &cancel, &progress, run, async {
            for _ in 0..8 {
                clock.sleep(PROGRESS_POLL_MS).await;
            }
        });
        assert!(cancel.seen.get() && cancel.requested());
        assert!(!cancel.superseded.get());
    }

    #[test]
    fn a_run_whose_job_became_another_runs_is_superseded() {
        let (clock, jobs, cancel, progress) = (
            Virtual::default(),
            MemoryJobs::default(),
            RunCancel::default(),
            Progress::default(),
        );
        let (job_id, _) = claimed(&jobs, RunMode::Inline);
        cancel.job.set(Some(job_id));
        // The watcher of run 7 of a job whose run is 1: its writes change nothing.
        watched(&clock, &jobs, &cancel, &progress, (job_id, 7), async {
            for _ in 0..30 {
                clock.sleep(PROGRESS_POLL_MS).await;
            }
        });
        assert!(cancel.superseded.get() && cancel.requested());
        assert!(!cancel.seen.get());
    }
}

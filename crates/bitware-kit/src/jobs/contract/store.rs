//! The job store's cases, with the spend its endings settle. Each case is
//! one client; times are small numbers of ms and deadlines far away, so
//! only the sweep's own case has a job past its deadline.

use super::{expect, failed, figures, held, reservation, same, Check, Outcome, DAY};
use crate::ai::progress::ProgressWrite;
use crate::jobs::spend::{Reservation, SpendLedger};
use crate::jobs::store::{
    CancelledRun, Claim, Completion, Failure, JobStatus, JobStore, Moment, NewJob, PlannedCall,
    RunMode,
};
use crate::pricing::TokenUsage;

const FAR: u64 = 10_000_000_000_000;
const STALL: u64 = 10_000;

fn at(ms: u64) -> Moment<'static> {
    Moment {
        ms,
        stall_ms: STALL,
        today: DAY,
    }
}

/// A request under key `key` of `client` (hash `hash`), run as `mode`.
fn job<'a>(client: &'a str, key: &'a str, hash: &'a str, mode: RunMode) -> NewJob<'a> {
    NewJob {
        client_id: client,
        execution_id: key,
        request_params: "{\"topic\":\"contract\"}",
        deadline_at: FAR,
        request_hash: hash,
        run_mode: mode,
        expected_tokens: 1_000,
        expected_elements: 10,
        // $10 per 1M output tokens: 1,000 streamed tokens are $0.01.
        planned: Some(PlannedCall {
            provider: "openai",
            model: "gpt-4o-mini",
            output_price: Some(10.0),
        }),
        columns: &[],
    }
}

/// Reserve `amount` for `client` today and claim `job` with it.
async fn reserve_and_claim(
    s: &impl JobStore,
    l: &impl SpendLedger,
    job: &NewJob<'_>,
    amount: f64,
    now: u64,
) -> Result<(Claim, Reservation), String> {
    let r = reservation(
        format!("{}-{}", job.client_id, job.execution_id),
        job.client_id,
        DAY,
        amount,
    );
    held(l, &r, 100.0, FAR).await?;
    let claim = s
        .claim_job(job, at(now), &r)
        .await
        .map_err(|e| failed("claim", e))?;
    Ok((claim, r))
}

fn run_of(claim: &Claim) -> Result<(i64, u32, f64), String> {
    match claim {
        Claim::Run {
            job_id,
            run,
            spent_usd,
        } => Ok((*job_id, *run, *spent_usd)),
        other => Err(failed("expected a run", other)),
    }
}

fn completion<'a>(
    job_id: i64,
    run: u32,
    client: &'a str,
    cost: f64,
    result: &'a str,
) -> Completion<'a> {
    Completion {
        job_id,
        run,
        client_id: client,
        provider: "openai",
        model: "gpt-4o-mini",
        usage: TokenUsage {
            input: 100,
            output: 200,
            ..TokenUsage::default()
        },
        cost_usd: Some(cost),
        result_json: result,
        processing_time_ms: 5,
        attempts: &[],
        date: DAY,
        columns: &[],
    }
}

fn failure(job_id: i64, run: u32, client: &str, cost: f64) -> Failure<'_> {
    Failure {
        job_id,
        run,
        client_id: client,
        code: "provider_error",
        reason: "every provider failed (contract)",
        provider: Some("openai"),
        model: Some("gpt-4o-mini"),
        usage: TokenUsage::default(),
        cost_usd: Some(cost),
        processing_time_ms: 5,
        attempts: &[],
        date: DAY,
    }
}

async fn status(s: &impl JobStore, job_id: i64) -> Result<JobStatus, String> {
    s.job_state(job_id)
        .await
        .map_err(|e| failed("state", e))?
        .map(|st| st.status)
        .ok_or_else(|| format!("job {job_id} is gone"))
}

async fn day(l: &impl SpendLedger, client: &str) -> Result<crate::jobs::DaySpend, String> {
    l.day_spend(client, DAY).await.map_err(|e| failed("day", e))
}

/// Every case of the job store's contract, on `store` with its `ledger`
/// (the same database); `run` names this run's clients.
pub async fn job_store(
    store: &impl JobStore,
    ledger: &impl SpendLedger,
    run: &str,
) -> Vec<Outcome> {
    cases!(store, ledger, run;
        a_new_key_claims_run_one_and_stores_the_request,
        the_same_request_joins_a_running_job,
        another_request_under_a_used_key_is_a_mismatch,
        a_completed_job_replays_its_result_and_settles_its_spend,
        a_failed_job_runs_again_under_the_next_run_charged_what_it_spent,
        a_run_that_no_longer_owns_its_job_writes_nothing,
        a_stalled_run_is_taken_over_and_what_it_streamed_booked,
        a_run_with_a_fresh_heartbeat_is_joined_not_taken_over,
        a_queued_job_is_started_by_one_delivery,
        a_stalled_queued_run_is_taken_over_under_the_next_run,
        a_cancelled_job_stays_cancelled_and_its_key_answers_the_cancel,
        a_cancelled_run_settles_what_it_spent_once,
        a_job_cancelled_before_it_started_releases_its_reservation,
        a_run_that_never_reached_a_model_releases_its_reservation,
        the_sweep_fails_a_run_past_its_deadline_and_books_what_it_streamed,
    )
}

async fn a_new_key_claims_run_one_and_stores_the_request(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let new = job(client, "k1", "h1", RunMode::Inline);
    let (claim, _) = reserve_and_claim(s, l, &new, 0.5, 1_000).await?;
    let (job_id, run, spent) = run_of(&claim)?;
    expect(run == 1 && same(spent, 0.0), || {
        format!("run {run}, spent {spent}")
    })?;
    expect(status(s, job_id).await? == JobStatus::Processing, || {
        "not processing".into()
    })?;
    let stored = s
        .stored_job(job_id)
        .await
        .map_err(|e| failed("stored", e))?
        .ok_or("no stored job")?;
    expect(
        stored.client_id == client
            && stored.execution_id == "k1"
            && stored.request_params == new.request_params
            && stored.deadline_at == new.deadline_at,
        || format!("stored {stored:?}"),
    )
}

async fn the_same_request_joins_a_running_job(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let new = job(client, "k1", "h1", RunMode::Inline);
    let (first, _) = reserve_and_claim(s, l, &new, 0.5, 1_000).await?;
    let (job_id, _, _) = run_of(&first)?;
    let again = s
        .existing_claim(&new, 2_000, STALL)
        .await
        .map_err(|e| failed("existing", e))?;
    expect(again == Some(Claim::InProgress { job_id }), || {
        failed("existing", &again)
    })?;
    let other = reservation(format!("{client}-2"), client, DAY, 0.5);
    let second = s
        .claim_job(&new, at(2_000), &other)
        .await
        .map_err(|e| failed("claim", e))?;
    expect(second == Claim::InProgress { job_id }, || {
        failed("second claim", &second)
    })
}

async fn another_request_under_a_used_key_is_a_mismatch(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let (first, _) =
        reserve_and_claim(s, l, &job(client, "k1", "h1", RunMode::Inline), 0.5, 1_000).await?;
    let (job_id, _, _) = run_of(&first)?;
    let other = job(client, "k1", "h2", RunMode::Inline);
    let claim = s
        .claim_job(
            &other,
            at(2_000),
            &reservation(format!("{client}-2"), client, DAY, 0.1),
        )
        .await
        .map_err(|e| failed("claim", e))?;
    expect(claim == Claim::Mismatch { job_id }, || {
        failed("claim", &claim)
    })
}

async fn a_completed_job_replays_its_result_and_settles_its_spend(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let new = job(client, "k1", "h1", RunMode::Inline);
    let (claim, _) = reserve_and_claim(s, l, &new, 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    let result = "{\"status\":\"completed\",\"n\":1}";
    let stored = s
        .complete_job(&completion(job_id, run, client, 0.2, result))
        .await
        .map_err(|e| failed("complete", e))?;
    expect(stored, || "the owning run's completion was refused".into())?;
    figures(day(l, client).await?, 0.0, 0.2, "after completing")?;
    let replay = s
        .claim_job(
            &new,
            at(2_000),
            &reservation(format!("{client}-2"), client, DAY, 0.1),
        )
        .await
        .map_err(|e| failed("claim", e))?;
    let want = serde_json::json!({"status": "completed", "n": 1});
    expect(
        replay
            == Claim::Replay {
                job_id,
                result: want.clone(),
            },
        || failed("replay", &replay),
    )?;
    let by_key = s
        .completed_result(client, "k1")
        .await
        .map_err(|e| failed("completed_result", e))?;
    expect(by_key == Some(want), || failed("completed_result", &by_key))?;
    let state = s
        .job_state(job_id)
        .await
        .map_err(|e| failed("state", e))?
        .ok_or("gone")?;
    expect(state.result_json.as_deref() == Some(result), || {
        failed("state", &state)
    })
}

async fn a_failed_job_runs_again_under_the_next_run_charged_what_it_spent(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let new = job(client, "k1", "h1", RunMode::Inline);
    let (claim, _) = reserve_and_claim(s, l, &new, 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    let failed_now = s
        .fail_job(&failure(job_id, run, client, 0.1))
        .await
        .map_err(|e| failed("fail", e))?;
    expect(failed_now, || "the owning run's failure was refused".into())?;
    let state = s
        .job_state(job_id)
        .await
        .map_err(|e| failed("state", e))?
        .ok_or("gone")?;
    expect(
        state.status == JobStatus::Failed
            && state.failure_code.as_deref() == Some("provider_error"),
        || failed("state", &state),
    )?;
    figures(day(l, client).await?, 0.0, 0.1, "after failing")?;
    let r2 = reservation(format!("{client}-2"), client, DAY, 0.5);
    held(l, &r2, 100.0, FAR).await?;
    let again = s
        .claim_job(&new, at(2_000), &r2)
        .await
        .map_err(|e| failed("claim", e))?;
    let (again_id, again_run, spent) = run_of(&again)?;
    expect(
        again_id == job_id && again_run == 2 && same(spent, 0.1),
        || failed("re-run", &again),
    )
}

async fn a_run_that_no_longer_owns_its_job_writes_nothing(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let new = job(client, "k1", "h1", RunMode::Inline);
    let (claim, _) = reserve_and_claim(s, l, &new, 0.5, 1_000).await?;
    let (job_id, _, _) = run_of(&claim)?;
    s.fail_job(&failure(job_id, 1, client, 0.0))
        .await
        .map_err(|e| failed("fail", e))?;
    let (again, _) = reserve_and_claim(s, l, &new, 0.5, 2_000).await?;
    let (_, run2, _) = run_of(&again)?;
    let p = ProgressWrite {
        tokens: 5,
        ..ProgressWrite::default()
    };
    let old_progress = s
        .write_progress(job_id, 1, &p, 3_000)
        .await
        .map_err(|e| failed("progress", e))?;
    expect(!old_progress, || {
        "run 1 wrote progress on run 2's job".into()
    })?;
    let old_end = s
        .complete_job(&completion(job_id, 1, client, 0.3, "{}"))
        .await
        .map_err(|e| failed("complete", e))?;
    expect(!old_end, || "run 1 completed run 2's job".into())?;
    expect(status(s, job_id).await? == JobStatus::Processing, || {
        "run 1 ended the job".into()
    })?;
    figures(
        day(l, client).await?,
        0.5,
        0.0,
        "after run 1's refused completion",
    )?;
    let new_end = s
        .complete_job(&completion(job_id, run2, client, 0.3, "{}"))
        .await
        .map_err(|e| failed("complete", e))?;
    expect(new_end && run2 == 2, || {
        format!("run {run2} could not complete")
    })
}

async fn a_stalled_run_is_taken_over_and_what_it_streamed_booked(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let new = job(client, "k1", "h1", RunMode::Inline);
    let (claim, _) = reserve_and_claim(s, l, &new, 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    let p = ProgressWrite {
        tokens: 1_000,
        ..ProgressWrite::default()
    };
    s.write_progress(job_id, run, &p, 2_000)
        .await
        .map_err(|e| failed("progress", e))?;
    // Silent past the stall period: the next request with the key takes over.
    let later = 2_000 + STALL + 1;
    let r2 = reservation(format!("{client}-2"), client, DAY, 0.5);
    held(l, &r2, 100.0, FAR).await?;
    let taken = s
        .claim_job(&new, at(later), &r2)
        .await
        .map_err(|e| failed("claim", e))?;
    let (taken_id, taken_run, spent) = run_of(&taken)?;
    expect(
        taken_id == job_id && taken_run == 2 && same(spent, 0.01),
        || failed("takeover", &taken),
    )?;
    // 1,000 tokens at $10 per 1M booked; the dead run's 0.5 released, the new 0.5 held.
    figures(day(l, client).await?, 0.5, 0.01, "after the takeover")
}

async fn a_run_with_a_fresh_heartbeat_is_joined_not_taken_over(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let new = job(client, "k1", "h1", RunMode::Inline);
    let (claim, _) = reserve_and_claim(s, l, &new, 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    s.write_progress(job_id, run, &ProgressWrite::default(), 5_000)
        .await
        .map_err(|e| failed("progress", e))?;
    let joined = s
        .existing_claim(&new, 5_000 + STALL - 1, STALL)
        .await
        .map_err(|e| failed("existing", e))?;
    expect(joined == Some(Claim::InProgress { job_id }), || {
        failed("join", &joined)
    })
}

async fn a_queued_job_is_started_by_one_delivery(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let new = job(client, "k1", "h1", RunMode::Queue);
    let (claim, _) = reserve_and_claim(s, l, &new, 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    // A queued job not yet started is the queue's: never stalled.
    let joined = s
        .existing_claim(&new, 1_000 + 10 * STALL, STALL)
        .await
        .map_err(|e| failed("existing", e))?;
    expect(joined == Some(Claim::InProgress { job_id }), || {
        failed("join", &joined)
    })?;
    let first = s
        .start_queued(job_id, run, at(2_000))
        .await
        .map_err(|e| failed("start", e))?;
    expect(first == Some(1), || failed("first delivery", first))?;
    let second = s
        .start_queued(job_id, run, at(2_500))
        .await
        .map_err(|e| failed("start", e))?;
    expect(second.is_none(), || {
        failed("a second delivery started it too", second)
    })
}

async fn a_stalled_queued_run_is_taken_over_under_the_next_run(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let new = job(client, "k1", "h1", RunMode::Queue);
    let (claim, _) = reserve_and_claim(s, l, &new, 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    s.start_queued(job_id, run, at(2_000))
        .await
        .map_err(|e| failed("start", e))?;
    let p = ProgressWrite {
        tokens: 1_000,
        ..ProgressWrite::default()
    };
    s.write_progress(job_id, run, &p, 3_000)
        .await
        .map_err(|e| failed("progress", e))?;
    let redelivered = s
        .start_queued(job_id, run, at(3_000 + STALL + 1))
        .await
        .map_err(|e| failed("start", e))?;
    expect(redelivered == Some(2), || {
        failed("the redelivery", redelivered)
    })?;
    let stale = s
        .write_progress(job_id, run, &p, 20_000)
        .await
        .map_err(|e| failed("progress", e))?;
    expect(!stale, || "the stalled run still owns the job".into())?;
    // What it streamed is booked on the payer's day; the reservation stays
    // for the run that goes on.
    figures(
        day(l, client).await?,
        0.5,
        0.01,
        "after the queue's takeover",
    )
}

async fn a_cancelled_job_stays_cancelled_and_its_key_answers_the_cancel(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let new = job(client, "k1", "h1", RunMode::Inline);
    let (claim, _) = reserve_and_claim(s, l, &new, 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    let by = format!("client:{client}");
    let cancelled = s
        .cancel_job(job_id, &by, at(2_000))
        .await
        .map_err(|e| failed("cancel", e))?;
    expect(cancelled, || "a running job was not cancelled".into())?;
    let twice = s
        .cancel_job(job_id, &by, at(2_100))
        .await
        .map_err(|e| failed("cancel", e))?;
    expect(!twice, || "a cancelled job was cancelled again".into())?;
    let end = s
        .complete_job(&completion(job_id, run, client, 0.1, "{}"))
        .await
        .map_err(|e| failed("complete", e))?;
    expect(!end, || "a cancelled job was completed".into())?;
    let state = s
        .job_state(job_id)
        .await
        .map_err(|e| failed("state", e))?
        .ok_or("gone")?;
    expect(
        state.status == JobStatus::Cancelled && state.cancelled_by.as_deref() == Some(by.as_str()),
        || failed("state", &state),
    )?;
    let again = s
        .claim_job(
            &new,
            at(3_000),
            &reservation(format!("{client}-2"), client, DAY, 0.1),
        )
        .await
        .map_err(|e| failed("claim", e))?;
    match again {
        Claim::Cancelled {
            job_id: id,
            cancelled_by,
            cancelled_at,
        } => expect(
            id == job_id
                && cancelled_by.as_deref() == Some(by.as_str())
                // When, as D1 writes it: RFC 3339 in UTC.
                && cancelled_at
                    .as_deref()
                    .is_some_and(|at| at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T'),
            || format!("answered job {id} cancelled by {cancelled_by:?} at {cancelled_at:?}"),
        ),
        other => Err(failed("the same key after a cancel", other)),
    }
}

async fn a_cancelled_run_settles_what_it_spent_once(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let (claim, _) =
        reserve_and_claim(s, l, &job(client, "k1", "h1", RunMode::Inline), 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    s.cancel_job(job_id, "admin:contract", at(2_000))
        .await
        .map_err(|e| failed("cancel", e))?;
    figures(
        day(l, client).await?,
        0.5,
        0.0,
        "cancelled, its run still to settle",
    )?;
    let stopped = CancelledRun {
        job_id,
        run,
        client_id: client,
        provider: Some("openai"),
        model: Some("gpt-4o-mini"),
        usage: TokenUsage::default(),
        cost_usd: Some(0.05),
        processing_time_ms: 5,
        attempts: &[],
        date: DAY,
    };
    s.settle_cancelled(&stopped)
        .await
        .map_err(|e| failed("settle", e))?;
    figures(day(l, client).await?, 0.0, 0.05, "settled")?;
    s.settle_cancelled(&stopped)
        .await
        .map_err(|e| failed("settle again", e))?;
    figures(day(l, client).await?, 0.0, 0.05, "settled twice")
}

async fn a_job_cancelled_before_it_started_releases_its_reservation(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let (claim, _) =
        reserve_and_claim(s, l, &job(client, "k1", "h1", RunMode::Queue), 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    s.cancel_job(job_id, "admin:contract", at(2_000))
        .await
        .map_err(|e| failed("cancel", e))?;
    figures(day(l, client).await?, 0.0, 0.0, "cancelled while queued")?;
    let started = s
        .start_queued(job_id, run, at(3_000))
        .await
        .map_err(|e| failed("start", e))?;
    expect(started.is_none(), || {
        "a cancelled queued job started".into()
    })
}

async fn a_run_that_never_reached_a_model_releases_its_reservation(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let (claim, _) =
        reserve_and_claim(s, l, &job(client, "k1", "h1", RunMode::Queue), 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    let ended = s
        .fail_run(job_id, run, "queue_failed", "never delivered (contract)")
        .await
        .map_err(|e| failed("fail_run", e))?;
    expect(ended, || "the run was not ended".into())?;
    figures(day(l, client).await?, 0.0, 0.0, "after fail_run")?;
    let again = s
        .fail_run(job_id, run, "queue_failed", "twice")
        .await
        .map_err(|e| failed("fail_run", e))?;
    expect(!again, || "a failed run was failed again".into())
}

async fn the_sweep_fails_a_run_past_its_deadline_and_books_what_it_streamed(
    s: &impl JobStore,
    l: &impl SpendLedger,
    client: &str,
) -> Check {
    let mut late = job(client, "k1", "h1", RunMode::Inline);
    late.deadline_at = 5_000;
    let (claim, _) = reserve_and_claim(s, l, &late, 0.5, 1_000).await?;
    let (job_id, run, _) = run_of(&claim)?;
    let p = ProgressWrite {
        tokens: 1_000,
        ..ProgressWrite::default()
    };
    s.write_progress(job_id, run, &p, 2_000)
        .await
        .map_err(|e| failed("progress", e))?;
    let swept = s
        .fail_abandoned_jobs(6_000, DAY, 1_000)
        .await
        .map_err(|e| failed("sweep", e))?;
    expect(swept >= 1, || format!("the sweep ended {swept}"))?;
    let state = s
        .job_state(job_id)
        .await
        .map_err(|e| failed("state", e))?
        .ok_or("gone")?;
    expect(
        state.status == JobStatus::Failed && state.failure_code.as_deref() == Some("abandoned"),
        || failed("state", &state),
    )?;
    // Booked on the payer's day; its reservation stays for the reservation sweep.
    figures(day(l, client).await?, 0.5, 0.01, "after the sweep")
}

//! The pipeline's own rules, run natively on the in-memory twins: what is
//! claimed, replayed, joined or refused; one repair of rule violations and
//! the better draft kept; one re-granulation after a failed review and the
//! better verdict kept; failures and abandoned runs recorded; runs that
//! stopped taken over and booked; budgets and the
//! daily cap accounted across attempts and runs.

use super::fixtures::*;
use super::{job, submit, wait, Submitted, Waited};
use crate::services::database::CancelledRun;
use crate::services::spend::Payer;
use crate::types::job::{JobStatus, ProgressWrite, Stage};
use crate::types::limits::Tier;
use crate::types::pricing::TokenUsage;
use bitware_kit::jobs::JobStore;
use serde_json::json;

#[test]
fn a_valid_outline_completes_in_one_call_and_settles_its_reservation() {
    let w = World::new(vec![Ok(valid())]);
    let s = w.submit(&request(json!({})), "r1").unwrap();
    let job = w.jobs.job(job_id(&s));
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.attempts.len(), 1);
    assert_eq!(w.model.calls.borrow().len(), 1);
    assert!(elements(&job) > 0);
    let out = w.result(job.id);
    assert_eq!(out["output"]["structure"], valid());
    assert_eq!(out["metadata"]["attempts"], 1);
    // The reservation became exactly what the call cost.
    let (reserved, spent) = w.jobs.day("client-a");
    assert_eq!(reserved, 0.0);
    assert!(
        spent > 0.0 && (spent - job.cost_usd).abs() < 1e-12,
        "{spent} vs {}",
        job.cost_usd
    );
    assert!(w.jobs.ledger.reservations.borrow().is_empty());
}

#[test]
fn rule_violations_go_back_to_the_model_once_and_a_better_repair_is_kept() {
    let w = World::new(vec![Ok(with_duplicates(3)), Ok(valid())]);
    let s = w.submit(&request(json!({})), "r1").unwrap();
    let job = w.jobs.job(job_id(&s));
    assert_eq!(w.model.calls.borrow().len(), 2);
    assert!(
        w.model.prompt(1).contains("Your previous outline"),
        "{}",
        w.model.prompt(1)
    );
    assert!(job.stages.iter().any(|s| s == Stage::Refining.as_str()));
    assert_eq!(w.result(job.id)["output"]["structure"], valid());
    assert_eq!(job.attempts.len(), 2);
}

#[test]
fn a_worse_repair_is_discarded_and_the_first_draft_kept() {
    let (first, worse) = (with_duplicates(2), with_duplicates(4));
    assert!(score(&first) > score(&worse));
    let w = World::new(vec![Ok(first.clone()), Ok(worse)]);
    let s = w.submit(&request(json!({})), "r1").unwrap();
    let out = w.result(job_id(&s));
    assert_eq!(out["output"]["structure"], first);
    assert_eq!(out["output"]["qualityScore"], json!(score(&first)));
}

#[test]
fn violations_are_repaired_once_only() {
    let w = World::new(vec![
        Ok(with_duplicates(3)),
        Ok(with_duplicates(3)),
        Ok(valid()),
    ]);
    let s = w.submit(&request(json!({})), "r1").unwrap();
    assert_eq!(w.model.calls.borrow().len(), 2);
    let job = w.jobs.job(job_id(&s));
    assert_eq!(job.status, JobStatus::Completed);
    assert!(!w.result(job.id)["output"]["qualityReport"]["violations"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_failed_review_regranulates_once_with_its_findings_and_the_better_verdict_stands() {
    let cfg = json!({"validation": true, "validationLevel": 2, "validationThreshold": 90});
    let w = World::new(vec![
        Ok(valid()),
        Ok(review(20.0)),
        Ok(valid()),
        Ok(review(95.0)),
    ]);
    let s = w.submit(&request(cfg), "r1").unwrap();
    assert_eq!(w.model.calls.borrow().len(), 4);
    assert!(w
        .model
        .prompt(2)
        .contains("the modules do not build on each other"));
    let v = &w.result(job_id(&s))["output"]["validationResult"];
    assert_eq!(v["passed"], true, "{v}");
}

#[test]
fn a_worse_second_verdict_keeps_the_first() {
    let cfg = json!({"validation": true, "validationLevel": 2, "validationThreshold": 90});
    let w = World::new(vec![
        Ok(valid()),
        Ok(review(60.0)),
        Ok(valid()),
        Ok(review(10.0)),
    ]);
    let s = w.submit(&request(cfg), "r1").unwrap();
    assert_eq!(w.model.calls.borrow().len(), 4);
    let v = &w.result(job_id(&s))["output"]["validationResult"];
    assert_eq!(v["passed"], false);
    // (structural 100 + reviewer 60) / 2: the first review's verdict.
    assert_eq!(v["accuracyPercentage"], json!(80.0), "{v}");
}

#[test]
fn a_review_that_cannot_be_had_keeps_the_outline_unreviewed_without_regranulating() {
    let cfg = json!({"validation": true, "validationLevel": 2});
    let w = World::new(vec![Ok(valid()), Err(401)]);
    let s = w.submit(&request(cfg), "r1").unwrap();
    assert_eq!(w.model.calls.borrow().len(), 2);
    let out = w.result(job_id(&s));
    assert_eq!(
        out["output"]["validationResult"]["reason"],
        "review_unavailable"
    );
    assert_eq!(out["output"]["readyForContentGeneration"], false);
}

#[test]
fn a_provider_failure_ends_the_job_failed_with_its_attempts_and_releases_the_reservation() {
    let w = World::new(vec![Err(500)]);
    let s = w.submit(&request(json!({})), "r1").unwrap();
    let job = w.jobs.job(job_id(&s));
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.failure_code.as_deref(), Some("provider_error"));
    // A server error is retried up to the settings' attempts, each recorded.
    assert_eq!(job.attempts.len(), w.config.settings.max_attempts as usize);
    assert!(job.attempts.iter().all(|a| a.http_status == Some(500)));
    assert_eq!(
        job.stages.last().map(String::as_str),
        Some(Stage::Failed.as_str())
    );
    assert_eq!(w.jobs.day("client-a"), (0.0, 0.0));
}

#[test]
fn a_repeated_request_replays_without_a_model_call() {
    let w = World::new(vec![Ok(valid())]);
    let first = w.submit(&request(json!({})), "r1").unwrap();
    let again = w.submit(&request(json!({})), "r1").unwrap();
    let Submitted::Replay(replayed) = again else {
        panic!("not a replay")
    };
    assert_eq!(replayed, w.result(job_id(&first)));
    assert_eq!(w.model.calls.borrow().len(), 1);
    assert_eq!(w.jobs.day("client-a").0, 0.0, "a replay reserves nothing");
}

#[test]
fn a_completed_job_replays_after_its_template_is_gone_but_a_new_request_is_refused() {
    let w = World::new(vec![Ok(valid())]);
    w.submit(&request(json!({})), "r1").unwrap();
    w.templates.templates.borrow_mut().clear();
    assert!(matches!(
        w.submit(&request(json!({})), "r1"),
        Ok(Submitted::Replay(_))
    ));
    let refused = w.submit(&request(json!({})), "r2").err().unwrap();
    assert_eq!(code(refused), (400, "invalid_field"));
    assert_eq!(w.jobs.jobs.borrow().len(), 1);
}

#[test]
fn a_different_request_under_a_used_id_is_refused() {
    let w = World::new(vec![Ok(valid())]);
    w.submit(&request(json!({})), "r1").unwrap();
    let refused = w
        .submit(&request(json!({"temperature": 0.9})), "r1")
        .err()
        .unwrap();
    assert_eq!(code(refused), (422, "idempotency_key_reused"));
    assert_eq!(
        w.jobs.day("client-a").0,
        0.0,
        "the refused request's reservation is given back"
    );
}

#[test]
fn a_running_job_is_joined_not_run_twice() {
    let w = World::new(vec![]);
    let first = w.claim_only(&request(json!({})), "r1").unwrap();
    let second = w.claim_only(&request(json!({})), "r1").unwrap();
    assert!(matches!(second, Submitted::Running { job_id } if job_id == job_id_of(&first)));
    // Only the running job's reservation is held.
    assert_eq!(w.jobs.ledger.reservations.borrow().len(), 1);
}

fn job_id_of(s: &Submitted) -> i64 {
    job_id(s)
}

#[test]
fn a_failed_job_runs_again_charged_with_what_its_first_run_spent() {
    // The first run pays for an unusable answer, then the provider fails.
    let w = World::new(vec![Ok(json!({"not": "an outline"})), Err(500)]);
    let first = w.submit(&request(json!({})), "r1").unwrap();
    let id = job_id(&first);
    let spent = w.jobs.job(id).cost_usd;
    assert!(spent > 0.0);
    w.model.answers.borrow_mut().push_back(Ok(valid()));
    let again = w.submit(&request(json!({})), "r1").unwrap();
    assert!(matches!(again, Submitted::Claimed { run: 2, .. }));
    let job = w.jobs.job(id);
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.run_count, 2);
    // The job's cost is both runs'; the day's spend too.
    let out = w.result(id);
    assert!((job.cost_usd - spent - out["cost"].as_f64().unwrap()).abs() < 1e-12);
    assert!((w.jobs.day("client-a").1 - job.cost_usd).abs() < 1e-12);
}

#[test]
fn an_abandoned_run_is_claimed_again_after_its_deadline() {
    let w = World::new(vec![Ok(valid())]);
    let first = w.claim_only(&request(json!({})), "r1").unwrap();
    assert!(matches!(
        w.claim_only(&request(json!({})), "r1"),
        Ok(Submitted::Running { .. })
    ));
    let deadline = w.jobs.job(job_id(&first)).deadline_at;
    w.model.clock.set(deadline + 1);
    let again = w.submit(&request(json!({})), "r1").unwrap();
    assert!(matches!(again, Submitted::Claimed { run: 2, .. }));
    assert_eq!(w.jobs.job(job_id(&first)).status, JobStatus::Completed);
}

/// Job 1's queued run was started by the queue, streamed `tokens` at
/// `at_ms`, then went silent. (It must have started: D1 never counts a run
/// the queue has not started as stopped, and the kit's twin keeps that rule.)
fn streamed_then_silent(w: &World, job_id: i64, tokens: u64, at_ms: u64) {
    let progress = ProgressWrite {
        tokens,
        ..ProgressWrite::default()
    };
    let now = bitware_kit::jobs::Moment {
        ms: at_ms,
        stall_ms: w.config.jobs.stall_ms,
        today: "2026-01-01",
    };
    assert_eq!(
        block_on(w.jobs.start_queued(job_id, 1, now)).unwrap(),
        Some(1)
    );
    block_on(w.jobs.write_progress(job_id, 1, &progress, at_ms)).unwrap();
}

#[test]
fn a_started_run_silent_for_the_stall_period_is_taken_over_and_what_it_streamed_booked() {
    let w = World::new(vec![Ok(valid())]);
    let first = w.claim_only(&request(json!({})), "r1").unwrap();
    let id = job_id(&first);
    let t0 = w.model.clock.get();
    streamed_then_silent(&w, id, 1_000, t0);
    let stall = w.config.jobs.stall_ms;
    // Silent, but not yet for the stall period: the same key joins it.
    w.model.clock.set(t0 + stall);
    assert!(matches!(
        w.claim_only(&request(json!({})), "r1"),
        Ok(Submitted::Running { .. })
    ));
    // Past it: the same key takes it over, long before its deadline.
    w.model.clock.set(t0 + stall + 1);
    assert!(t0 + stall + 1 < w.jobs.job(id).deadline_at);
    let again = w.submit(&request(json!({})), "r1").unwrap();
    assert!(matches!(again, Submitted::Claimed { run: 2, .. }));
    let job = w.jobs.job(id);
    assert_eq!(job.status, JobStatus::Completed);
    // The dead run is booked at its planned output price, then the new run.
    let price = job
        .planned_output_price
        .expect("the planned model is priced");
    assert!(price > 0.0);
    assert_eq!(job.estimated_tokens, 1_000);
    let run_cost = w.result(id)["cost"].as_f64().unwrap();
    assert!((job.cost_usd - run_cost - 1_000.0 * price / 1e6).abs() < 1e-12);
    assert!((w.jobs.day("client-a").1 - job.cost_usd).abs() < 1e-12);
    assert!(w.jobs.ledger.reservations.borrow().is_empty());
}

#[test]
fn a_queued_run_not_yet_started_is_never_taken_for_a_stopped_one() {
    let w = World::new(vec![]);
    let first = w.claim_only(&request(json!({})), "r1").unwrap();
    w.model
        .clock
        .set(w.model.clock.get() + w.config.jobs.stall_ms * 3);
    assert!(matches!(
        w.claim_only(&request(json!({})), "r1"),
        Ok(Submitted::Running { .. })
    ));
    assert_eq!(w.jobs.job(job_id(&first)).run_count, 1);
}

#[test]
fn a_run_taken_over_stores_nothing_and_the_run_that_took_it_completes_it() {
    let w = World::new(vec![Ok(valid()), Ok(valid())]);
    let first = w.claim_only(&request(json!({})), "r1").unwrap();
    let id = job_id(&first);
    let t0 = w.model.clock.get();
    streamed_then_silent(&w, id, 10, t0);
    w.model.clock.set(t0 + w.config.jobs.stall_ms + 1);
    let taken = w.claim_only(&request(json!({})), "r1").unwrap();
    assert!(matches!(taken, Submitted::Claimed { run: 2, .. }));
    // The old run was not dead after all: whatever it finishes is refused.
    let late = w.run_queued(id, 1).unwrap_err();
    assert_eq!(late.code, "run_superseded");
    let job = w.jobs.job(id);
    assert_eq!((job.status, job.run_count), (JobStatus::Processing, 2));
    assert!(job.attempts.is_empty(), "nothing of the old run is stored");
    w.run_queued(id, 2).unwrap();
    let job = w.jobs.job(id);
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.attempts.len(), 1);
}

#[test]
fn a_cancelled_job_is_settled_once_and_never_by_a_run_taken_over_before_the_cancel() {
    let w = World::new(vec![]);
    let first = w.claim_only(&request(json!({})), "r1").unwrap();
    let id = job_id(&first);
    let t0 = w.model.clock.get();
    streamed_then_silent(&w, id, 100, t0);
    w.model.clock.set(t0 + w.config.jobs.stall_ms + 1);
    let taken = w.claim_only(&request(json!({})), "r1").unwrap();
    assert!(matches!(taken, Submitted::Claimed { run: 2, .. }));
    w.jobs.jobs.borrow_mut()[(id - 1) as usize].status = JobStatus::Cancelled;
    let before = w.jobs.job(id).cost_usd;
    let settle = |run: u32| {
        block_on(w.jobs.settle_cancelled(&CancelledRun {
            job_id: id,
            run,
            client_id: "client-a",
            provider: Some("openai"),
            model: Some("gpt-4o-mini"),
            usage: TokenUsage::default(),
            cost_usd: Some(0.25),
            processing_time_ms: 10,
            attempts: &[],
            date: "2026-12-06",
        }))
        .unwrap();
    };
    // The run taken over before the cancel settles nothing.
    settle(1);
    assert!((w.jobs.job(id).cost_usd - before).abs() < 1e-12);
    // The run the job had settles it, once.
    settle(2);
    settle(2);
    assert!((w.jobs.job(id).cost_usd - before - 0.25).abs() < 1e-12);
}

#[test]
fn the_daily_cap_refuses_a_job_it_cannot_cover_and_writes_nothing() {
    let w = World::new(vec![]);
    let basic = Payer {
        tenant: "client-b".into(),
        tier: Tier::Basic,
    };
    let cap = w.config.limits.daily_cap(Tier::Basic);
    // Each job reserves its whole budget ($1): the cap holds `cap` of them.
    for i in 0..cap as usize {
        assert!(matches!(
            block_on(submit::submit(
                &w.ports(),
                &basic,
                &request(json!({})),
                Some(format!("q{i}")),
                true
            )),
            Ok((Submitted::Claimed { .. }, _, _))
        ));
    }
    let refused = block_on(submit::submit(
        &w.ports(),
        &basic,
        &request(json!({})),
        Some("over".into()),
        true,
    ))
    .err()
    .unwrap();
    assert_eq!(code(refused.clone()), (429, "spend_cap_exceeded"));
    assert_eq!(refused.details.unwrap()["capUsd"], json!(cap));
    assert_eq!(w.jobs.jobs.borrow().len(), cap as usize);
    // A retry of a running job still joins it at the full cap.
    let joined = block_on(submit::submit(
        &w.ports(),
        &basic,
        &request(json!({})),
        Some("q0".into()),
        true,
    ));
    assert!(matches!(joined, Ok((Submitted::Running { .. }, _, _))));
}

#[test]
fn a_request_can_lower_the_budget_and_a_call_it_cannot_afford_is_not_made() {
    let w = World::new(vec![Ok(valid())]);
    let refused = w
        .submit(&request(json!({"maxCostUsd": 0.000001})), "r1")
        .unwrap();
    let job = w.jobs.job(job_id(&refused));
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.failure_code.as_deref(), Some("budget_exceeded"));
    assert!(w.model.calls.borrow().is_empty());
    assert_eq!(w.jobs.day("client-a"), (0.0, 0.0));
}

#[test]
fn every_attempt_is_priced_and_the_job_costs_their_sum() {
    let w = World::new(vec![Ok(json!({"not": "an outline"})), Ok(valid())]);
    let s = w.submit(&request(json!({})), "r1").unwrap();
    let job = w.jobs.job(job_id(&s));
    assert_eq!(job.attempts.len(), 2);
    let sum: f64 = job.attempts.iter().filter_map(|a| a.cost_usd).sum();
    assert!(sum > 0.0 && (sum - job.cost_usd).abs() < 1e-12);
    assert_eq!(w.result(job.id)["cost"], json!(job.cost_usd));
}

#[test]
fn a_queued_job_is_planned_again_from_its_stored_request() {
    let w = World::new(vec![Ok(valid())]);
    let s = w.claim_only(&request(json!({})), "r1").unwrap();
    let Submitted::Claimed { job_id, run } = s else {
        panic!("not claimed")
    };
    let envelope = w.run_queued(job_id, run).unwrap();
    assert_eq!(envelope["output"]["topic"], TOPIC);
    assert_eq!(w.jobs.job(job_id).status, JobStatus::Completed);
}

#[test]
fn a_queued_job_whose_template_is_gone_fails_its_run_and_frees_its_reservation() {
    let w = World::new(vec![]);
    let Submitted::Claimed { job_id, run } = w.claim_only(&request(json!({})), "r1").unwrap()
    else {
        panic!("not claimed")
    };
    w.templates.templates.borrow_mut().clear();
    assert_eq!(code(w.run_queued(job_id, run).err().unwrap()).0, 400);
    let job = w.jobs.job(job_id);
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.failure_code.as_deref(), Some("invalid_field"));
    assert!(w.jobs.ledger.reservations.borrow().is_empty());
    assert_eq!(w.jobs.day("client-a"), (0.0, 0.0));
}

#[test]
fn waiters_see_completion_failure_or_a_job_still_running_at_their_deadline() {
    let w = World::new(vec![Ok(valid()), Err(500)]);
    let done = job_id(&w.submit(&request(json!({})), "ok").unwrap());
    let failed = job_id(&w.submit(&request(json!({})), "bad").unwrap());
    let running = job_id(&w.claim_only(&request(json!({})), "slow").unwrap());
    let until = w.model.clock.get() + 5_000;
    let wait = |id| block_on(wait::wait_for(&w.model, &w.jobs, id, until)).unwrap();
    assert!(matches!(wait(done), Waited::Completed(v) if v == w.result(done)));
    assert!(
        matches!(wait(failed), Waited::Failed(e) if e.code == "provider_error" && e.status() == 502)
    );
    assert!(matches!(wait(running), Waited::Running));
    assert!(
        w.model.clock.get() >= until,
        "the waiter slept until its deadline"
    );
}

#[test]
fn a_database_outage_at_the_end_of_a_run_is_an_error_not_a_completed_job() {
    let w = World::new(vec![Ok(valid())]);
    let ports = w.ports();
    let (s, _, prepared) = block_on(submit::submit(
        &ports,
        &payer(),
        &request(json!({})),
        Some("r1".into()),
        false,
    ))
    .unwrap();
    let Submitted::Claimed { job_id, run } = s else {
        panic!("not claimed")
    };
    w.jobs.broken.set(true);
    let start = w.model.clock.get();
    let e = block_on(job::run_prepared(
        &ports,
        job_id,
        run,
        prepared.unwrap(),
        start,
    ))
    .err()
    .unwrap();
    assert_eq!(e.status(), 503);
    assert_ne!(w.jobs.job(job_id).status, JobStatus::Completed);
}

#[test]
fn a_queued_job_cancelled_before_its_run_makes_no_model_call_and_gives_its_reservation_back() {
    let w = World::new(vec![Ok(valid())]);
    let s = w.claim_only(&request(json!({})), "r1").unwrap();
    let id = job_id(&s);
    // The cancel route's guarded update, as the twin holds it.
    w.jobs.jobs.borrow_mut()[(id - 1) as usize].status = JobStatus::Cancelled;
    let error = w.run_queued(id, 1).unwrap_err();
    assert_eq!(error.code, "job_cancelled");
    assert!(w.model.calls.borrow().is_empty(), "a model call started");
    let job = w.jobs.job(id);
    assert_eq!(job.status, JobStatus::Cancelled);
    assert!(job.attempts.is_empty());
    assert_eq!(job.cost_usd, 0.0);
    assert!(w.jobs.ledger.reservations.borrow().is_empty());
    assert_eq!(w.jobs.day("client-a"), (0.0, 0.0));
    // Its key answers the cancel: it never runs again under it.
    let again = w.submit(&request(json!({})), "r1").err().unwrap();
    assert_eq!(again.code, "job_cancelled");
    assert_eq!(again.details.unwrap()["jobId"], id);
    assert!(w.model.calls.borrow().is_empty());
}

#[test]
fn a_completion_that_loses_the_race_to_a_cancel_settles_the_job_cancelled_once() {
    let w = World::new(vec![Ok(valid())]);
    w.jobs.cancel_at_completion.set(true);
    let s = w.submit(&request(json!({})), "r1").unwrap();
    let job = w.jobs.job(job_id(&s));
    assert_eq!(job.status, JobStatus::Cancelled);
    assert!(
        job.result_json.is_none() && elements(&job) == 0,
        "no completion landed"
    );
    // The call was made and paid: recorded once, billed once.
    assert_eq!(w.model.calls.borrow().len(), 1);
    assert_eq!(job.attempts.len(), 1);
    assert!(job.cost_usd > 0.0);
    let (reserved, spent) = w.jobs.day("client-a");
    assert_eq!(reserved, 0.0);
    assert!(
        (spent - job.cost_usd).abs() < 1e-12,
        "{spent} vs {}",
        job.cost_usd
    );
    assert!(w.jobs.ledger.reservations.borrow().is_empty());
}

/// The elements a completed outline stored (the job row's `total_elements`).
fn elements(job: &bitware_kit::jobs::memory_jobs::JobRecord) -> u64 {
    job.column("total_elements")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

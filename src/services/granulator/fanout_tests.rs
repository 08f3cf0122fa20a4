//! The fan-out as the pipeline runs it, natively on the in-memory twins: a
//! skeleton call and one call per branch merged into the outline a single
//! call would give, every attempt labelled with its branch, a failed branch
//! retried alone while the others are kept, and a budget that cannot pay the
//! fan-out's worst case making the outline in one call.

use super::fixtures::*;
use super::ports::{Ports, RunCancel};
use super::{job, submit, Submitted};
use crate::services::ai_provider::wire::HttpCall;
use crate::services::ai_provider::{Attempt, HttpReply, Runtime, Transport};
use crate::types::job::JobStatus;
use bitware_kit::jobs::memory_jobs::JobRecord;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::Poll;

/// The skeleton a model would write for `valid()`: its title and modules.
fn skeleton() -> Value {
    let mut s = valid();
    let nodes: Vec<Value> = modules(&mut s)
        .iter()
        .map(|m| json!({"title": m["title"], "summary": "what it covers"}))
        .collect();
    json!({"title": s["title"], "modules": nodes})
}

/// The root call's answer for `valid()`: every root field but the title.
fn root() -> Value {
    let mut r = valid();
    let o = r.as_object_mut().unwrap();
    o.remove("modules");
    o.remove("title");
    r
}

fn branch(i: usize) -> Value {
    valid()["modules"][i].clone()
}

fn fanout() -> Value {
    json!({"strategy": "fanout"})
}

#[test]
fn a_fanned_out_outline_is_a_skeleton_then_one_call_per_branch_merged_in_order() {
    let n = valid()["modules"].as_array().unwrap().len();
    let mut answers = vec![Ok(skeleton())];
    answers.extend((0..n).map(|i| Ok(branch(i))));
    answers.push(Ok(root()));
    let w = World::new(answers);
    let s = w.submit(&request(fanout()), "r1").unwrap();
    let job = w.jobs.job(job_id(&s));
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.failure_reason);
    assert_eq!(w.model.calls.borrow().len(), 2 + n);
    assert!(w.model.prompt(1 + n).ends_with("Part: root."));
    assert!(w.model.prompt(0).ends_with("Part: skeleton."));
    // Each branch call carries the whole skeleton and names its own node.
    let titles: Vec<String> = (0..n)
        .map(|i| branch(i)["title"].as_str().unwrap().to_string())
        .collect();
    for i in 0..n {
        let p = w.model.prompt(1 + i);
        assert!(titles.iter().all(|t| p.contains(t.as_str())));
        assert!(
            p.contains(&format!("Branch: {} of {n}: {}", i + 1, titles[i])),
            "{p}"
        );
    }
    let out = w.result(job.id);
    assert_eq!(out["output"]["structure"], valid());
    assert_eq!(out["metadata"]["strategy"], "fanout");
    // Each branch was shown once as it became final, as the outline has it.
    let shown = w.jobs.branch_log.borrow().clone();
    assert_eq!(shown.len(), n);
    for (i, (id, run, b)) in shown.iter().enumerate() {
        assert_eq!(
            (*id, *run, b.position, b.total),
            (job.id, 1, i as u32 + 1, n as u32)
        );
        assert_eq!(b.title, titles[i]);
        assert_eq!(b.node, valid()["modules"][i]);
    }
    assert_eq!(out["metadata"]["branches"], n);
    let labels: Vec<&str> = job
        .attempts
        .iter()
        .map(|a| a.branch.as_deref().unwrap())
        .collect();
    let mut want = vec!["skeleton".to_string()];
    want.extend((0..n).map(|i| format!("branch {}/{n}", i + 1)));
    want.push("root".into());
    assert_eq!(labels, want);
    // Every call is an attempt with its own usage and cost.
    assert!(job
        .attempts
        .iter()
        .all(|a| a.usage.output == 500 && a.cost_usd.unwrap() > 0.0));
}

#[test]
fn a_failed_branch_is_retried_alone_and_the_other_branches_are_kept() {
    let n = valid()["modules"].as_array().unwrap().len();
    // Branch 2's first call gets a 500; the retry follows it at once on the
    // virtual clock, before branch 3 is asked.
    let mut answers = vec![Ok(skeleton()), Ok(branch(0)), Err(500), Ok(branch(1))];
    answers.extend((2..n).map(|i| Ok(branch(i))));
    answers.push(Ok(root()));
    let w = World::new(answers);
    let s = w.submit(&request(fanout()), "r1").unwrap();
    let job = w.jobs.job(job_id(&s));
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.failure_reason);
    assert_eq!(
        w.model.calls.borrow().len(),
        3 + n,
        "one extra call: branch 2's retry"
    );
    let of = |label: &str| {
        job.attempts
            .iter()
            .filter(|a| a.branch.as_deref() == Some(label))
            .count()
    };
    assert_eq!(of(&format!("branch 2/{n}")), 2);
    for i in [1, 3, 4] {
        assert_eq!(of(&format!("branch {i}/{n}")), 1, "branch {i} ran once");
    }
    assert_eq!(w.result(job.id)["output"]["structure"], valid());
    // The failed call showed nothing; its retry showed branch 2 once.
    let positions: Vec<u32> = w
        .jobs
        .branch_log
        .borrow()
        .iter()
        .map(|r| r.2.position)
        .collect();
    assert_eq!(positions, (1..=n as u32).collect::<Vec<_>>());
}

#[test]
fn a_branch_no_provider_can_write_fails_the_job_by_name_with_every_attempt_recorded() {
    let n = valid()["modules"].as_array().unwrap().len();
    // Branch 1's answers are not JSON, twice (asked again once), then the chain has no other provider.
    let mut answers = vec![
        Ok(skeleton()),
        Ok(json!("not an outline")),
        Ok(json!("still not")),
    ];
    answers.extend((1..n).map(|i| Ok(branch(i))));
    answers.push(Ok(root()));
    let w = World::new(answers);
    let s = w.submit(&request(fanout()), "r1").unwrap();
    let job = w.jobs.job(job_id(&s));
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.failure_reason
            .as_deref()
            .unwrap_or("")
            .contains(&format!("branch 1/{n}")),
        "{:?}",
        job.failure_reason
    );
    // The other branches still ran and were paid for, so they are recorded.
    assert_eq!(job.attempts.len(), 1 + 2 + (n - 1) + 1);
    assert!(job.cost_usd > 0.0);
    // The others were shown as they became final; the failed one never.
    let positions: Vec<u32> = w
        .jobs
        .branch_log
        .borrow()
        .iter()
        .map(|r| r.2.position)
        .collect();
    assert_eq!(positions, (2..=n as u32).collect::<Vec<_>>());
}

#[test]
fn titles_repeated_across_branches_are_renamed_before_a_branch_is_shown_never_at_the_merge() {
    let n = valid()["modules"].as_array().unwrap().len();
    // Every branch names its first lesson alike, as branches written apart may.
    let alike = |i: usize| {
        let mut b = branch(i);
        b["lessons"][0]["title"] = json!("Getting started");
        b
    };
    let mut answers = vec![Ok(skeleton())];
    answers.extend((0..n).map(|i| Ok(alike(i))));
    answers.push(Ok(root()));
    let w = World::new(answers);
    let s = w.submit(&request(fanout()), "r1").unwrap();
    let job = w.jobs.job(job_id(&s));
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.failure_reason);
    let out = w.result(job.id);
    let modules = out["output"]["structure"]["modules"].as_array().unwrap();
    let shown = w.jobs.branch_log.borrow().clone();
    assert_eq!(shown.len(), n);
    for (_, _, b) in &shown {
        assert_eq!(b.node, modules[b.position as usize - 1], "shown as merged");
    }
    let firsts: Vec<&str> = modules
        .iter()
        .map(|m| m["lessons"][0]["title"].as_str().unwrap())
        .collect();
    assert_eq!(firsts[0], "Getting started");
    assert_eq!(
        firsts[1],
        format!(
            "Getting started ({})",
            modules[1]["title"].as_str().unwrap()
        )
    );
}

#[test]
fn a_budget_too_small_for_the_fan_outs_worst_case_makes_the_outline_in_one_call() {
    let w = World::new(vec![Ok(valid())]);
    let s = w
        .submit(
            &request(json!({"strategy": "fanout", "maxCostUsd": 0.0019})),
            "r1",
        )
        .unwrap();
    let job = w.jobs.job(job_id(&s));
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.failure_reason);
    assert_eq!(w.model.calls.borrow().len(), 1);
    assert!(job.attempts[0].branch.is_none());
    assert_eq!(w.result(job.id)["metadata"]["strategy"], "single");
    assert!(job.cost_usd <= 0.0019);
}

#[test]
fn a_granularity_3_course_under_auto_is_one_call_as_before() {
    let w = World::new(vec![Ok(valid())]);
    let s = w.submit(&request(json!({})), "r1").unwrap();
    assert_eq!(w.model.calls.borrow().len(), 1);
    let out = w.result(job_id(&s));
    assert_eq!(out["metadata"]["strategy"], "single");
    assert_eq!(out["metadata"]["branches"], Value::Null);
}

// The skeleton pipelined into its branches (issue 24, item 2): a model that
// streams every answer in pieces on the virtual clock, so calls overlap.

/// A model on the OpenAI wire that streams each answer in pieces of `chunk`
/// characters, yielding to the other calls (and moving the virtual clock
/// 50 ms) between pieces. Skeleton calls take the next scripted skeleton
/// text; a branch call gets its node of `valid()`, the root call its fields.
/// It logs when each call starts and ends.
struct Paced {
    clock: Cell<u64>,
    skeletons: RefCell<VecDeque<String>>,
    chunk: usize,
    log: RefCell<Vec<String>>,
}

impl Paced {
    fn new(skeletons: Vec<String>) -> Paced {
        Paced {
            clock: Cell::new(1_000_000),
            skeletons: RefCell::new(skeletons.into()),
            chunk: 10,
            log: RefCell::default(),
        }
    }

    fn position(&self, entry: &str) -> usize {
        let log = self.log.borrow();
        log.iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("no `{entry}` in {log:?}"))
    }

    /// The most calls streaming at once.
    fn most_in_flight(&self) -> usize {
        let (mut now, mut most) = (0usize, 0usize);
        for e in self.log.borrow().iter() {
            match e.starts_with("start") {
                true => now += 1,
                false => now -= 1,
            }
            most = most.max(now);
        }
        most
    }
}

/// Pending once (after asking to be polled again): the other calls run.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| match yielded {
        true => Poll::Ready(()),
        false => {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

impl Runtime for Paced {
    async fn http(&self, _: &HttpCall, _: u64) -> Result<HttpReply, Transport> {
        Err(Transport::Failed("streams only".into()))
    }
    async fn http_stream(
        &self,
        call: &HttpCall,
        _: u64,
        _: u64,
        _: u64,
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<HttpReply, Transport> {
        let user = call.body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        let asked = user
            .lines()
            .find_map(|l| l.strip_prefix("Branch: "))
            .and_then(|l| l.split(' ').next())
            .and_then(|i| i.parse::<usize>().ok());
        // A skeleton asked again carries its problems after its `Part:` line.
        let (name, text) = if user.contains("Part: skeleton.") {
            let next = self.skeletons.borrow_mut().pop_front();
            ("skeleton".to_string(), next.unwrap_or_default())
        } else if let Some(i) = asked {
            (format!("branch {i}"), branch(i - 1).to_string())
        } else {
            ("root".to_string(), root().to_string())
        };
        self.log.borrow_mut().push(format!("start {name}"));
        let chars: Vec<char> = text.chars().collect();
        let mut kept = true;
        for piece in chars.chunks(self.chunk) {
            yield_now().await;
            self.clock.set(self.clock.get() + 50);
            let delta: String = piece.iter().collect();
            let event = json!({"choices": [{"delta": {"content": delta}}]});
            kept = sink(format!("data: {event}\n\n").as_bytes());
            if !kept {
                break;
            }
        }
        if kept {
            let usage =
                json!({"choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 500}});
            sink(format!("data: {usage}\n\ndata: [DONE]\n\n").as_bytes());
        }
        let end = if kept { "end" } else { "dropped" };
        self.log.borrow_mut().push(format!("{end} {name}"));
        Ok(HttpReply {
            status: 200,
            retry_after: None,
            body: String::new(),
        })
    }
    async fn workers_ai(&self, _: &str, _: &Value, _: u64) -> Result<Value, Transport> {
        Err(Transport::Failed("not scripted".into()))
    }
    /// A pause lets the other calls run (the job's progress writer loops on it).
    async fn sleep(&self, ms: u64) {
        yield_now().await;
        self.clock.set(self.clock.get() + ms);
    }
    fn now_ms(&self) -> u64 {
        self.clock.get()
    }
    fn random(&self) -> f64 {
        0.5
    }
}

/// `valid()`'s skeleton as the schema asks for it, in its order: every
/// module title, then `summaries` (the first `summaries` of them), then the
/// outline's title.
fn titles_first(summaries: usize) -> String {
    let mut s = valid();
    let titles: Vec<Value> = modules(&mut s)
        .iter()
        .map(|m| json!({"title": m["title"]}))
        .collect();
    let details: Vec<Value> = (0..summaries)
        .map(|i| json!({"summary": format!("what module {} covers", i + 1)}))
        .collect();
    format!(
        r#"{{"modules": {}, "summaries": {}, "title": {}}}"#,
        Value::Array(titles),
        Value::Array(details),
        s["title"]
    )
}

/// Submit and run a fan-out of `valid()` on `runtime`.
fn run_on(w: &World, runtime: &Paced) -> JobRecord {
    let ports = Ports {
        config: &w.config,
        runtime,
        jobs: &w.jobs,
        structures: w.structures.clone(),
        templates: w.templates.clone(),
        overbilled: RefCell::default(),
        cancel: RunCancel::default(),
    };
    let submitted = block_on(submit::submit(
        &ports,
        &payer(),
        &request(fanout()),
        Some("r1".into()),
        false,
    ));
    let Ok((Submitted::Claimed { job_id, run }, _, Some(prepared))) = submitted else {
        panic!("not claimed");
    };
    let _ = block_on(job::run_prepared(
        &ports,
        job_id,
        run,
        prepared,
        runtime.clock.get(),
    ));
    w.jobs.job(job_id)
}

fn labels(job: &JobRecord) -> Vec<String> {
    job.attempts
        .iter()
        .map(|a| a.branch.clone().unwrap_or_default())
        .collect()
}

#[test]
fn branch_calls_start_as_the_skeleton_streams_their_node_not_when_it_ends() {
    let n = valid()["modules"].as_array().unwrap().len();
    let model = Paced::new(vec![titles_first(n)]);
    let w = World::new(vec![]);
    let job = run_on(&w, &model);
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.failure_reason);
    assert_eq!(w.result(job.id)["output"]["structure"], valid());
    // The branches began while the skeleton still streamed, each once its
    // summary was in (the last one's is followed only by the outline's
    // title: it may start as the skeleton ends); the root call, which names
    // the outline's title, after it.
    let skeleton_end = model.position("end skeleton");
    let early = (1..=n)
        .filter(|i| model.position(&format!("start branch {i}")) < skeleton_end)
        .count();
    assert!(early >= n - 1, "{:?}", model.log.borrow());
    assert!(model.position("start branch 1") < model.position("start branch 2"));
    assert!(model.position("start root") > skeleton_end);
    // Nothing holds a branch back for a slot: the platform's six count only
    // the connections waiting for headers (`ai::gate`), not streams.
    assert!(model.most_in_flight() >= n, "{:?}", model.log.borrow());
    // The ledger and partial results as before: one attempt per call,
    // each branch shown once, as the outline has it.
    let mut want = vec!["skeleton".to_string()];
    want.extend((1..=n).map(|i| format!("branch {i}/{n}")));
    want.push("root".into());
    assert_eq!(labels(&job), want);
    let shown = w.jobs.branch_log.borrow().clone();
    assert_eq!(shown.len(), n);
    for (_, _, b) in &shown {
        assert_eq!(b.node, valid()["modules"][b.position as usize - 1]);
    }
}

#[test]
fn no_more_calls_stream_at_once_than_the_chain_settings_allow_and_the_rest_start_as_they_end() {
    let n = valid()["modules"].as_array().unwrap().len();
    let model = Paced::new(vec![titles_first(n)]);
    let mut w = World::new(vec![]);
    w.config.settings.max_calls_at_once = 3;
    let job = run_on(&w, &model);
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.failure_reason);
    assert_eq!(w.result(job.id)["output"]["structure"], valid());
    assert_eq!(model.most_in_flight(), 3, "{:?}", model.log.borrow());
    assert_eq!(labels(&job).len(), n + 2);
}

#[test]
fn branches_started_from_a_skeleton_that_fails_its_checks_are_dropped_booked_and_started_again() {
    let n = valid()["modules"].as_array().unwrap().len();
    // The first skeleton's titles pass, then it has one summary too few: its
    // checks fail once it ends, after branches 1-4 started; the chain asks
    // again, as it does today.
    let model = Paced::new(vec![titles_first(n - 1), titles_first(n)]);
    let w = World::new(vec![]);
    let job = run_on(&w, &model);
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.failure_reason);
    assert_eq!(w.result(job.id)["output"]["structure"], valid());
    let first_end = model.position("end skeleton");
    assert!(model.position("start branch 1") < first_end);
    // Still streaming when the skeleton failed: stopped at its next chunk.
    assert!(model.position("dropped branch 1") > first_end);
    let skeletons = job
        .attempts
        .iter()
        .filter(|a| a.branch.as_deref() == Some("skeleton"))
        .count();
    assert_eq!(skeletons, 2, "asked again once");
    // Each branch of the first skeleton is booked, marked dropped, then
    // written again from the second; the others and the root once.
    let dropped: Vec<&Attempt> = job
        .attempts
        .iter()
        .filter(|a| {
            a.error
                .as_deref()
                .is_some_and(|e| e.starts_with("dropped:"))
        })
        .collect();
    assert_eq!(dropped.len(), n - 1, "{:?}", labels(&job));
    for i in 1..n {
        let label = format!("branch {i}/{n}");
        let runs: Vec<&Attempt> = job
            .attempts
            .iter()
            .filter(|a| a.branch.as_deref() == Some(label.as_str()))
            .collect();
        assert_eq!(runs.len(), 2, "{label}");
        assert!(runs[0].error.as_deref().unwrap().starts_with("dropped:"));
        assert!(runs[1].error.is_none());
    }
    assert_eq!(job.attempts.len(), 2 + (n - 1) + n + 1);
    // What the dropped calls spent is in the job's cost.
    let booked: f64 = job.attempts.iter().filter_map(|a| a.cost_usd).sum();
    assert!(
        (job.cost_usd - booked).abs() < 1e-9,
        "{} {booked}",
        job.cost_usd
    );
    assert!(dropped.iter().all(|a| a.cost_usd.unwrap_or(0.0) > 0.0));
    // Nothing of the dropped branches was shown: each position once.
    let positions: Vec<u32> = w
        .jobs
        .branch_log
        .borrow()
        .iter()
        .map(|r| r.2.position)
        .collect();
    assert_eq!(positions.len(), n);
}

#[test]
fn a_skeleton_that_fails_its_checks_twice_fails_the_job_as_before_with_its_dropped_branches_booked()
{
    let n = valid()["modules"].as_array().unwrap().len();
    let model = Paced::new(vec![titles_first(n - 1), titles_first(n - 1)]);
    let w = World::new(vec![]);
    let job = run_on(&w, &model);
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.failure_reason
            .as_deref()
            .is_some_and(|r| r.contains("summaries")),
        "{:?}",
        job.failure_reason
    );
    assert!(model.position("start branch 1") < model.position("end skeleton"));
    let dropped = job
        .attempts
        .iter()
        .filter(|a| {
            a.error
                .as_deref()
                .is_some_and(|e| e.starts_with("dropped:"))
        })
        .count();
    assert_eq!(dropped, 2 * (n - 1), "{:?}", labels(&job));
    assert!(w.jobs.branch_log.borrow().is_empty(), "nothing shown");
    assert!(!model.log.borrow().iter().any(|e| e == "start root"));
}

//! The fan-out as the pipeline runs it, natively on the in-memory twins: a
//! skeleton call and one call per branch merged into the outline a single
//! call would give, every attempt labelled with its branch, a failed branch
//! retried alone while the others are kept, and a budget that cannot pay the
//! fan-out's worst case making the outline in one call.

use super::fixtures::*;
use crate::types::job::JobStatus;
use serde_json::{json, Value};

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

//! Tenant and money safety against `wrangler dev` (issue 10): one tenant per
//! principal, budgets as hard ceilings, per-tier rate limits and daily spend
//! caps, provider text kept out of responses, input that could break the
//! database refused at the edge. Run through `./test.sh`.

mod support;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use support::*;

// ---- one tenant per principal --------------------------------------------------

async fn job_id_of(reply: &Reply) -> i64 {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["output"]["jobId"].as_i64().expect("a job id")
}

fn job_ids(list: &Reply) -> Vec<i64> {
    list.body["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["id"].as_i64().or(j["jobId"].as_i64()))
        .collect()
}

#[tokio::test]
async fn a_session_without_a_client_id_is_a_tenant_of_its_own() {
    // KAM answers `dev-orphan-session` with a user whose id is `dev-client` and
    // no client id: that user must neither lose its jobs nor read dev-client's.
    let orphan_job = job_id_of(
        &execute(
            &Who::OrphanSession,
            granulate(&unique("orphan"), "quiz", 1),
            None,
        )
        .await,
    )
    .await;
    let client_job =
        job_id_of(&execute(&Who::Client, granulate(&unique("client"), "quiz", 1), None).await)
            .await;
    let paths = |id: i64| {
        [
            format!("/api/jobs/{id}"),
            format!("/api/jobs/{id}/status"),
            format!("/api/jobs/{id}/structure"),
        ]
    };
    for path in paths(orphan_job) {
        assert_eq!(get(&path, &Who::OrphanSession).await.status, 200, "{path}");
        for other in [Who::Client, Who::UserSession, Who::OtherClient] {
            assert_error(&get(&path, &other).await, 404, "not_found");
        }
        assert_eq!(get(&path, &Who::AdminSession).await.status, 200, "{path}");
    }
    for path in paths(client_job) {
        assert_error(&get(&path, &Who::OrphanSession).await, 404, "not_found");
        assert_eq!(get(&path, &Who::Client).await.status, 200, "{path}");
    }
    let own = get("/api/jobs?limit=100", &Who::OrphanSession).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(job_ids(&own).contains(&orphan_job), "{}", own.body);
    assert!(own.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["clientId"] == "user:dev-client"));
    let client = get("/api/jobs?limit=100", &Who::Client).await;
    assert!(!job_ids(&client).contains(&orphan_job));
    let stats = get("/api/stats", &Who::OrphanSession).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let text = stats.body.to_string();
    assert!(!text.contains("\"dev-client\""), "{text}");
    // Re-validation and history are scoped the same way.
    let other_validate = post(
        "/api/validate",
        &Who::OrphanSession,
        json!({"jobId": client_job, "validationLevel": 1}),
    )
    .await;
    assert_error(&other_validate, 404, "not_found");
    let own_validate = post(
        "/api/validate",
        &Who::OrphanSession,
        json!({"jobId": orphan_job, "validationLevel": 1}),
    )
    .await;
    assert_eq!(own_validate.status, 200, "{}", own_validate.body);
    let history = get(
        &format!("/api/validation/history?job_id={client_job}"),
        &Who::OrphanSession,
    )
    .await;
    assert_eq!(history.status, 200, "{}", history.body);
    assert!(!history
        .body
        .to_string()
        .contains(&format!("\"jobId\":{client_job}")));
}

// ---- budgets are ceilings --------------------------------------------------------

/// An admin-created quiz template whose jobs may cost at most `max_cost_usd`.
async fn template_with_budget(prefix: &str, max_cost_usd: f64) -> String {
    let name = format!("{prefix}_{}", unique("t").replace('-', "_"));
    let mut template = quiz_template(&name);
    template["costOptimization"] = json!({"maxCostPerJob": max_cost_usd});
    let created = post(
        "/api/admin/templates",
        &Who::AdminSession,
        json!({"action": "create", "template": template}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    name
}

#[tokio::test]
async fn a_request_can_lower_a_template_budget_but_never_raise_it() {
    let name = template_with_budget("tiny_budget", 0.00001).await;
    let key = unique("raise");
    let r = execute(
        &Who::Client,
        json!({"input": {"topic": key, "templateName": name}, "config": {"maxCostUsd": 5}}),
        None,
    )
    .await;
    assert_error(&r, 422, "budget_exceeded");
    assert!(mock_calls(&key).await.is_empty(), "no paid call was made");
}

/// The largest actual/budget ratio of the runs below, printed for the record.
fn report_ratio(case: &str, cost: f64, budget: f64) {
    let ratio = cost / budget;
    eprintln!("budget ratio [{case}]: spent ${cost:.6} of ${budget} = {ratio:.4}");
    assert!(
        ratio <= 1.0,
        "{case}: spent ${cost} over a budget of ${budget}"
    );
}

/// A quiz on gpt-4o ($10 / 1M output tokens) whose caller asks for 64,000
/// output tokens under a budget of `budget`.
async fn quiz_on_gpt4o_asking_64k_tokens(key: &str, budget: f64) -> Reply {
    execute(
        &Who::Client,
        json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 1},
               "config": {"aiProvider": "openai", "aiModel": "gpt-4o", "maxTokens": 64000, "maxCostUsd": budget}}),
        None,
    )
    .await
}

#[tokio::test]
async fn a_model_that_writes_to_the_limit_cannot_spend_past_the_budget() {
    // gpt-4o at $10 / 1M output tokens; the caller asks for 64,000 tokens.
    let key = unique("billmax");
    script(&key, json!([{"kind": "valid", "billMax": true}])).await;
    let budget = 0.05;
    let r = quiz_on_gpt4o_asking_64k_tokens(&key, budget).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let calls = mock_calls(&key).await;
    let sent = calls[0]["maxTokens"].as_u64().unwrap();
    assert!(sent < 5_000, "max_tokens was clamped from 64,000 to {sent}");
    assert!(calls[0]["usage"]["output"].as_u64().unwrap() == sent);
    report_ratio("single call", r.body["cost"].as_f64().unwrap(), budget);

    // Rule violations go back to the model: both calls bill every token allowed.
    let key = unique("billmax-repair");
    script(
        &key,
        json!([{"kind": "valid", "counts": [1], "billMax": true}, {"kind": "valid", "billMax": true}]),
    )
    .await;
    let budget = 0.03;
    let r = quiz_on_gpt4o_asking_64k_tokens(&key, budget).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let job = get(
        &format!("/api/jobs/{}", r.body["output"]["jobId"]),
        &Who::Client,
    )
    .await;
    let spent: f64 = job.body["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["costUsd"].as_f64())
        .sum();
    assert!(
        job.body["attempts"].as_array().unwrap().len() >= 2,
        "{}",
        job.body
    );
    report_ratio("outline + repair", spent, budget);
}

#[tokio::test]
async fn unpriced_models_are_refused_and_declared_ones_run() {
    let key = unique("unpriced");
    let r = execute(
        &Who::Client,
        json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 1},
               "config": {"aiProvider": "openai", "aiModel": "mystery-model-x"}}),
        None,
    )
    .await;
    assert_error(&r, 422, "budget_exceeded");
    assert!(
        r.body["error"].as_str().unwrap().contains("PRICING"),
        "{}",
        r.body
    );
    assert!(mock_calls(&key).await.is_empty());
    // The stack declares `local-llama` at 0: a self-hosted model runs, free.
    let key = unique("declared");
    let r = execute(
        &Who::Client,
        json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 1},
               "config": {"aiProvider": "openai", "aiModel": "local-llama", "maxCostUsd": 0.01}}),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["cost"], json!(0.0));
    assert_eq!(mock_calls(&key).await.len(), 1);
}

#[tokio::test]
async fn re_validation_is_charged_against_the_job_budget() {
    let key = unique("reval");
    let budget = 0.002;
    let r = execute(
        &Who::Client,
        json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 1},
               "config": {"maxCostUsd": budget}}),
        None,
    )
    .await;
    let id = job_id_of(&r).await;
    let mut refused = None;
    for round in 0..10 {
        let v = post(
            "/api/validate",
            &Who::Client,
            json!({"jobId": id, "validationLevel": 2}),
        )
        .await;
        if v.status != 200 {
            refused = Some((round, v));
            break;
        }
    }
    let (round, refusal) = refused.expect("reviews stop once the job's budget is spent");
    assert!(round >= 1, "at least one review fitted the budget");
    assert_error(&refusal, 422, "budget_exceeded");
    let job = get(&format!("/api/jobs/{id}"), &Who::Client).await;
    let spent = job.body["job"]["costUsd"].as_f64().unwrap();
    report_ratio("generation + reviews", spent, budget);
}

#[tokio::test]
async fn concurrent_re_validations_of_one_job_never_overrun_its_budget() {
    // Every review bills every token it is allowed (a dear answer) and starts
    // late, so all 20 are in flight at once. Each must reserve against what
    // is left of the job's budget before its first call.
    let key = unique("reval-race");
    let mut steps = vec![json!({"kind": "valid"})];
    steps.extend(vec![
        json!({"kind": "valid", "billMax": true, "ttftMs": 400});
        20
    ]);
    script(&key, json!(steps)).await;
    let budget = 0.004;
    let r = execute(
        &Who::Client,
        json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 1},
               "config": {"maxCostUsd": budget}}),
        None,
    )
    .await;
    let id = job_id_of(&r).await;
    let replies = join_all((0..20).map(|_| {
        post(
            "/api/validate",
            &Who::Client,
            json!({"jobId": id, "validationLevel": 2}),
        )
    }))
    .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert!(ok >= 1, "at least one review fits: {}", replies[0].body);
    for refused in replies.iter().filter(|r| r.status != 200) {
        assert_error(refused, 422, "budget_exceeded");
        assert_eq!(refused.body["details"]["jobId"], json!(id));
        assert_eq!(refused.body["details"]["budgetUsd"], json!(budget));
    }
    let job = get(&format!("/api/jobs/{id}"), &Who::Client).await;
    let spent = job.body["job"]["costUsd"].as_f64().unwrap();
    eprintln!(
        "20 concurrent re-validations: {ok} ran, {} refused",
        20 - ok
    );
    report_ratio("20 concurrent re-validations", spent, budget);
    // Every review's reservation was settled: the next one sees what is left.
    let after = post(
        "/api/validate",
        &Who::Client,
        json!({"jobId": id, "validationLevel": 2}),
    )
    .await;
    if after.status != 200 {
        assert_error(&after, 422, "budget_exceeded");
        assert_eq!(
            after.body["details"]["reservedUsd"],
            json!(0.0),
            "no reservation outlives its review: {}",
            after.body
        );
    }
}

#[tokio::test]
async fn a_re_run_of_a_failed_job_is_charged_against_the_same_budget() {
    // Run 1: gpt-4o answers garbage that bills $0.0125 (1,000 in + 1,000 out),
    // then garbage again; the job fails having spent most of its $0.02.
    let key = unique("rerun-budget");
    let heavy = json!({"input": 1000, "output": 1000, "cached": 0});
    script(
        &key,
        json!([{"kind": "invalid", "usage": heavy}, {"kind": "invalid"}, {"kind": "valid"}, {"kind": "valid"}]),
    )
    .await;
    let budget = 0.02;
    let body = json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 1},
        "config": {"aiProvider": "openai", "aiModel": "gpt-4o", "maxCostUsd": budget}});
    let request_id = unique("rerun-id");
    let first = execute(&Who::Client, body.clone(), Some(&request_id)).await;
    assert!(matches!(first.status, 422 | 502), "{}", first.body);
    let calls_before = mock_calls(&key).await.len();
    assert!(
        calls_before >= 1,
        "the first run paid for at least one call"
    );
    // Run 2 under the same id: what run 1 spent still counts. A fresh budget
    // would allow the same call run 1 made; what is left of this one does not.
    let second = execute(&Who::Client, body, Some(&request_id)).await;
    assert_error(&second, 422, "budget_exceeded");
    assert_eq!(
        mock_calls(&key).await.len(),
        calls_before,
        "no call on the re-run"
    );
    let id = second.body["details"]["jobId"].as_i64().unwrap();
    let job = get(&format!("/api/jobs/{id}"), &Who::Client).await;
    assert_eq!(job.body["job"]["runs"], 2, "{}", job.body);
    report_ratio(
        "two runs of one job",
        job.body["job"]["costUsd"].as_f64().unwrap(),
        budget,
    );
}

#[tokio::test]
async fn a_provider_billing_past_max_tokens_is_a_fault_that_stops_the_job_s_calls() {
    // A self-hosted server that ignores max_tokens: 200 000 output tokens.
    let key = unique("overbill");
    let over = json!({"input": 100, "output": 200_000, "cached": 0});
    script(&key, json!([{"kind": "valid", "usage": over}])).await;
    let r = execute(
        &Who::Client,
        json!({"input": {"topic": key, "structureType": "quiz", "granularityLevel": 1},
               "config": {"maxCostUsd": 0.02}}),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "the answer was usable: {}", r.body);
    let warning = r.body["metadata"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "provider_overbilled")
        .cloned()
        .unwrap_or_else(|| panic!("a provider_overbilled warning: {}", r.body));
    assert_eq!(warning["billedOutputTokens"], 200_000);
    let max_tokens = warning["maxTokens"].as_u64().unwrap();
    assert!(max_tokens < 200_000);
    assert_eq!(mock_calls(&key).await[0]["maxTokens"], max_tokens);
    // What it billed is recorded, not what it should have.
    let id = r.body["output"]["jobId"].as_i64().unwrap();
    let job = get(&format!("/api/jobs/{id}"), &Who::Client).await;
    assert_eq!(job.body["attempts"][0]["tokens"]["output"], 200_000);
    // Unusable and overbilled: no re-ask and no other provider.
    let key = unique("overbill-bad");
    script(
        &key,
        json!([{"kind": "invalid", "usage": over}, {"kind": "valid"}]),
    )
    .await;
    let r = execute(&Who::Client, granulate(&key, "quiz", 1), None).await;
    assert_error(&r, 502, "provider_error");
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("provider_overbilled"),
        "{}",
        r.body
    );
    assert_eq!(mock_calls(&key).await.len(), 1, "no further call");
}

// ---- rate limits and daily spend caps ---------------------------------------------------

async fn hammer(who: &Who, n: usize) -> Vec<Reply> {
    let mut replies = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let batch = chunk.iter().map(|_| {
            post(
                "/api/validate",
                who,
                json!({"jobId": 999_999_999, "validationLevel": 1}),
            )
        });
        replies.extend(join_all(batch).await);
    }
    replies
}

#[tokio::test]
async fn paid_routes_are_rate_limited_per_tenant_by_tier() {
    // A basic-tier client of its own (the KAM stand-in makes one per key):
    // 60 paid requests a minute. The limiter counts in fixed windows, so a burst may straddle two
    // of them: 2 x 60 + 1 requests put more than 60 in one window whatever
    // the alignment.
    let limited = Who::ApiKey(unique("dev-basic-key-rl"));
    let replies = hammer(&limited, 121).await;
    let over: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(
        !over.is_empty(),
        "121 requests in a burst pass a limit of 60 in some window"
    );
    // Every request is either let through (the job does not exist: 404) or
    // limited, and the limit is 60 a window: one window's 60 at least, two
    // windows' 120 at most.
    let passed = replies.iter().filter(|r| r.status == 404).count();
    assert_eq!(passed + over.len(), 121, "statuses other than 404/429");
    assert!(
        (60..=120).contains(&passed),
        "{passed} of 121 passed a limit of 60 a window"
    );
    for r in &over {
        assert_error(r, 429, "rate_limited");
        assert_eq!(r.header("Retry-After"), Some("60"));
        assert_eq!(r.body["details"]["tier"], "basic");
        assert_eq!(r.body["details"]["limit"], 60);
    }
    // Another tenant is not affected, and free routes are not limited.
    let other = post(
        "/api/validate",
        &Who::OtherClient,
        json!({"jobId": 999_999_999}),
    )
    .await;
    assert_error(&other, 404, "not_found");
    assert_eq!(get("/api/templates", &limited).await.status, 200);

    // A worker acting for a client counts against that client, at the
    // default tier (standard: 300 a minute), since workers carry no KAM tier.
    let acting = Who::WorkerFor(unique("rl-acting"));
    let replies = hammer(&acting, 601).await;
    let over = replies.iter().filter(|r| r.status == 429).count();
    let passed = replies.iter().filter(|r| r.status == 404).count();
    assert_eq!(passed + over, 601, "statuses other than 404/429");
    assert!(
        (300..=600).contains(&passed),
        "{passed} of 601 passed the standard tier's 300 a window"
    );
    let first_429 = replies.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(first_429.body["details"]["tier"], "standard");
}

#[tokio::test]
async fn thirty_two_concurrent_jobs_never_spend_past_the_daily_cap() {
    // A basic client of its own (fresh each run): a $5 daily cap. Its template allows $1 a job,
    // so exactly five jobs fit while all 32 are in flight.
    let name = template_with_budget("capped", 1.0).await;
    let key = unique("cap");
    // Every call takes 1.4 s (the stack's attempt timeout is 1.5 s), so all
    // 32 reservations are made before the first job settles.
    script(&key, json!(vec![json!({"kind": "delay", "ms": 1400}); 40])).await;
    let capped = Who::ApiKey(unique("dev-basic-key-cap"));
    let first = {
        let (capped, key, name) = (capped.clone(), key.clone(), name.clone());
        tokio::spawn(async move {
            join_all((0..32).map(|i| {
                let body =
                    json!({"action": "granulate", "input": {"topic": key, "templateName": name}});
                let (capped, id) = (capped.clone(), format!("{key}-{i}"));
                async move { execute(&capped, body, Some(&id)).await }
            }))
            .await
        })
    };
    // While the accepted jobs run and the cap is full, a retry of one of them
    // joins it (joining spends nothing) instead of getting a 429.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let running = get("/api/jobs?status=processing&limit=100", &capped).await;
    let running_ids: Vec<String> = running.body["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["executionId"].as_str().map(str::to_string))
        .collect();
    assert!(!running_ids.is_empty(), "{}", running.body);
    let joins = join_all(running_ids.iter().map(|id| {
        let body = json!({"action": "granulate", "input": {"topic": key, "templateName": name}});
        let capped = capped.clone();
        async move { execute(&capped, body, Some(id)).await }
    }))
    .await;
    for r in &joins {
        assert_eq!(
            r.status, 200,
            "a running job is joined at a full cap: {}",
            r.body
        );
        assert_eq!(r.header("Idempotent-Replay"), Some("true"));
    }
    let replies = first.await.unwrap();
    let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    eprintln!(
        "spend cap: 32 concurrent → {} accepted, {} refused (429)",
        ok.len(),
        refused.len()
    );
    assert_eq!(
        ok.len(),
        5,
        "the cap allows five $1 jobs; first reply: {}",
        replies[0].body
    );
    assert_eq!(refused.len(), 27);
    for r in &refused {
        assert_error(r, 429, "spend_cap_exceeded");
        assert_eq!(r.body["details"]["capUsd"], json!(5.0));
        assert_eq!(r.body["details"]["tier"], "basic");
        assert!(r.body["details"]["resetsAt"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00Z"));
        assert!(r
            .header("Retry-After")
            .and_then(|s| s.parse::<u64>().ok())
            .is_some());
    }
    let spent: f64 = ok.iter().map(|r| r.body["cost"].as_f64().unwrap()).sum();
    assert!(spent <= 5.0);
    // Settled to their real cost, the five free the rest of the cap again.
    let again = execute(
        &capped,
        json!({"input": {"topic": key, "templateName": name}}),
        Some(&format!("{key}-after")),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    // A refused request left nothing behind: its id is free to run now.
    let refused_id = replies
        .iter()
        .position(|r| r.status == 429)
        .map(|i| format!("{key}-{i}"))
        .unwrap();
    let retried = execute(
        &capped,
        json!({"input": {"topic": key, "templateName": name}}),
        Some(&refused_id),
    )
    .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert!(retried.header("Idempotent-Replay").is_none());
}

#[tokio::test]
async fn a_worker_acting_for_a_client_is_held_to_that_client_s_rate_limit_once_its_tier_is_known() {
    // A basic client (60 paid requests a minute) calls once with its own
    // key: KAM names its tier, and the worker acting for it is held to it.
    let suffix = unique("rl-known");
    let own = Who::ApiKey(format!("dev-basic-key-{suffix}"));
    assert_eq!(get("/api/templates", &own).await.status, 200);
    let acting = Who::WorkerFor(format!("basic-{suffix}"));
    let replies = hammer(&acting, 121).await;
    let over: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(
        !over.is_empty(),
        "121 requests through a worker pass the basic tier's 60 in some window"
    );
    for r in &over {
        assert_error(r, 429, "rate_limited");
        assert_eq!(r.body["details"]["tier"], "basic");
        assert_eq!(r.body["details"]["limit"], 60);
    }
    // One allowance: the client's own key is over it too.
    let own_replies = hammer(&own, 10).await;
    assert!(
        own_replies.iter().any(|r| r.status == 429),
        "the worker's requests counted against the client's own allowance"
    );
}

#[tokio::test]
async fn a_worker_acting_for_a_client_shares_its_daily_cap_at_its_tier() {
    // Five $1 jobs on the client's own key fill the basic tier's $5 cap
    // while they run; the same client through a worker is at its cap too.
    let name = template_with_budget("launder", 1.0).await;
    let key = unique("launder");
    script(&key, json!(vec![json!({"kind": "delay", "ms": 1400}); 6])).await;
    let suffix = unique("cap-known");
    let own = Who::ApiKey(format!("dev-basic-key-{suffix}"));
    let body = json!({"action": "granulate", "input": {"topic": key, "templateName": name}});
    let own_jobs = {
        let (own, body, key) = (own.clone(), body.clone(), key.clone());
        tokio::spawn(async move {
            join_all((0..5).map(|i| {
                let (own, body, id) = (own.clone(), body.clone(), format!("{key}-own-{i}"));
                async move { execute(&own, body, Some(&id)).await }
            }))
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let through = execute(
        &Who::WorkerFor(format!("basic-{suffix}")),
        body,
        Some(&format!("{key}-worker")),
    )
    .await;
    assert_error(&through, 429, "spend_cap_exceeded");
    assert_eq!(through.body["details"]["tier"], "basic");
    assert_eq!(through.body["details"]["capUsd"], json!(5.0));
    for r in own_jobs.await.unwrap() {
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[tokio::test]
async fn workers_acting_for_nobody_pay_from_one_shared_allowance_whatever_id_they_send() {
    let worker_id = unique("fresh-worker");
    let key = unique("shared-allowance");
    let auth = format!("Bearer {SECRET}");
    let r = send(
        Method::POST,
        "/api/execute",
        &Who::Nobody,
        Some(&granulate(&key, "quiz", 1)),
        &[("Authorization", &auth), ("X-Worker-ID", &worker_id)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cost = r.body["cost"].as_f64().unwrap();
    assert!(cost > 0.0);
    // The spend is booked to the shared worker credential, never to a tenant
    // the caller named itself into.
    let db = std::env::var("D1_FILE").expect("D1_FILE is set by ./test.sh");
    let query = |tenant: &str| {
        let out = std::process::Command::new("sqlite3")
            .args(["-readonly", "-cmd", ".timeout 10000", &db])
            .arg(format!(
                "SELECT count(*) || ' ' || coalesce(sum(spent_usd), 0) FROM tenant_daily_spend WHERE tenant = '{tenant}';"
            ))
            .output()
            .expect("sqlite3 runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        query(&format!("worker:{worker_id}")),
        "0 0",
        "no allowance of its own"
    );
    let shared = query("worker:*");
    let spent: f64 = shared.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        spent >= cost,
        "the shared allowance holds its spend: {shared}"
    );
}

// ---- nothing leaks -----------------------------------------------------------

#[tokio::test]
async fn provider_error_text_never_reaches_a_response_or_a_stored_attempt() {
    let key = unique("leak");
    let leak = "Incorrect API key provided: sk-proj-LEAKED0123456789abcdef. Find your key at https://example.test";
    let body = json!({"error": {"message": leak, "type": "invalid_request_error"}}).to_string();
    script(
        &key,
        json!([{"kind": "status", "code": 401, "body": body}, {"kind": "status", "code": 401, "body": body}]),
    )
    .await;
    let r = execute(&Who::Client, granulate(&key, "quiz", 1), None).await;
    assert_error(&r, 502, "provider_error");
    assert!(!r.body.to_string().contains("LEAKED"), "{}", r.body);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("refused the API key"));
    let id = r.body["details"]["jobId"].as_i64().unwrap();
    let job = get(&format!("/api/jobs/{id}"), &Who::Client).await;
    assert!(!job.body.to_string().contains("LEAKED"), "{}", job.body);
    assert!(!job.body.to_string().contains("sk-proj"), "{}", job.body);
}

#[tokio::test]
async fn a_provider_s_refusal_text_never_reaches_a_response_or_a_stored_attempt() {
    // A 200 whose `refusal` carries a key and an internal URL, from both
    // providers: the job fails, in our words only.
    let key = unique("refusal-leak");
    let words = "I refuse. Debug: key sk-proj-REFUSAL0123456789abcdef at https://internal.refusal.test/admin";
    script(
        &key,
        json!([{"kind": "refuse", "text": words}, {"kind": "refuse", "text": words}]),
    )
    .await;
    let r = execute(&Who::Client, granulate(&key, "quiz", 1), None).await;
    assert_error(&r, 502, "provider_error");
    let id = r.body["details"]["jobId"].as_i64().unwrap();
    let job = get(&format!("/api/jobs/{id}"), &Who::Client).await;
    assert_eq!(job.status, 200, "{}", job.body);
    for text in [r.body.to_string(), job.body.to_string()] {
        for leaked in [
            "REFUSAL0123",
            "sk-proj",
            "internal.refusal.test",
            "I refuse",
        ] {
            assert!(!text.contains(leaked), "{leaked} in {text}");
        }
    }
    let attempts = r.body["details"]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{}", r.body);
    for a in attempts {
        assert_eq!(a["status"], "refused");
        let error = a["error"].as_str().unwrap();
        assert!(error.contains("refused to answer this request"), "{error}");
    }
    assert!(
        r.body["error"].as_str().unwrap().contains("refused"),
        "{}",
        r.body
    );
}

// ---- input at the edge ----------------------------------------------------------

#[tokio::test]
async fn nul_and_control_characters_are_400s_that_write_nothing() {
    let key = unique("nul");
    for (body, field) in [
        (
            json!({"action": "granulate", "input": {"topic": format!("\u{0}{key}"), "structureType": "quiz"}}),
            "body.input.topic",
        ),
        (
            json!({"action": "granulate", "input": {"topic": key, "structureType": "quiz", "executionId": "\u{0}rm-1"}}),
            "body.input.executionId",
        ),
    ] {
        let r = post("/api/execute", &Who::Client, body).await;
        assert_error(&r, 400, "invalid_text");
        assert_eq!(r.body["details"]["field"], field);
        assert!(r.header("Retry-After").is_none(), "not an outage");
    }
    let r = post(
        "/api/execute",
        &Who::Client,
        json!({"action": "granulate", "input": {"topic": format!("{key}\u{1b}[2J"), "structureType": "quiz"}}),
    )
    .await;
    assert_error(&r, 400, "invalid_field");
    assert_eq!(r.body["details"]["field"], "input.topic");
    let mut template = quiz_template("nul_template");
    template["description"] = json!("bad\u{0}description");
    let r = post(
        "/api/admin/templates",
        &Who::AdminSession,
        json!({"action": "create", "template": template}),
    )
    .await;
    assert_error(&r, 400, "invalid_text");
    // Nothing reached the model, and no job holds this key.
    assert!(mock_calls(&key).await.is_empty());
    let listed = get("/api/jobs?limit=100", &Who::Client).await;
    assert!(!listed.body.to_string().contains(&key));
}

#[tokio::test]
async fn a_body_without_an_action_is_a_400_naming_the_valid_ones() {
    let key = unique("no-action");
    for body in [
        json!({"input": {"topic": key, "structureType": "quiz"}}),
        json!({"action": null, "input": {"topic": key, "structureType": "quiz"}}),
    ] {
        let r = send(Method::POST, "/api/execute", &Who::Client, Some(&body), &[]).await;
        assert_error(&r, 400, "missing_action");
        assert_eq!(
            r.body["details"]["validActions"],
            json!(["granulate", "process", "validate", "estimate"])
        );
    }
    assert!(mock_calls(&key).await.is_empty(), "no paid call was made");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = send(
            Method::GET,
            "/api/templates",
            &Who::Nobody,
            None,
            &[
                ("Authorization", &format!("{scheme} {SECRET}")),
                ("X-Worker-ID", "e2e-tests"),
            ],
        )
        .await;
        assert_eq!(r.status, 200, "{scheme}: {}", r.body);
    }
    let wrong: Value = send(
        Method::GET,
        "/api/templates",
        &Who::Nobody,
        None,
        &[
            ("Authorization", &format!("bearer wrong-{SECRET}")),
            ("X-Worker-ID", "e2e-tests"),
        ],
    )
    .await
    .body;
    assert_eq!(wrong["code"], "unauthorized");
}

// ---- sessions ended at KAM --------------------------------------------------------

#[tokio::test]
async fn a_session_ended_at_kam_stops_working_within_the_cache_window() {
    // The stack trusts KAM's positive answers for 2 s (KAM_CACHE_SECONDS);
    // this session ends at KAM 3 s from now.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_000;
    let who = Who::Session(format!("dev-expiring-session-{until}"));
    let live = get("/api/jobs", &who).await;
    assert_eq!(live.status, 200, "{}", live.body);
    // Past its end at KAM and past the window: refused, not served from cache.
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    let ended = get("/api/jobs", &who).await;
    assert_error(&ended, 401, "unauthorized");
}

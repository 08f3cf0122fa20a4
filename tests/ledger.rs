//! The ledger: on a fresh worker (its own layer in `./test.sh`), a known set
//! of jobs is run by each credential tier through the mock provider (known
//! tokens, known prices, a failed validation-free job, retries, a fallback,
//! an outright failure), then every statistics, economy and analytics endpoint
//! is checked figure by figure for each tier's scope.

mod support;

use serde_json::{json, Value};
use support::*;

/// gpt-4o-mini at 1 000 in / 500 out.
const MINI: f64 = 0.00045;
/// gpt-4o-mini at 2 000 in / 1 000 out.
const MINI_BIG: f64 = 0.0009;
/// claude-haiku-4-5 at 1 000 in / 500 out.
const HAIKU: f64 = 0.0035;

fn close(v: &Value, want: f64) {
    assert!(approx(v, want), "{v} != {want}");
}

async fn run(
    who: &Who,
    marker: &str,
    structure_type: &str,
    steps: Value,
    config: Value,
    status: u16,
) {
    let topic = unique(marker);
    if steps.as_array().is_some_and(|s| !s.is_empty()) {
        script(&topic, steps).await;
    }
    let r = execute(who, json!({"input": {"topic": topic, "structureType": structure_type, "granularityLevel": 1}, "config": config}), None).await;
    assert_eq!(r.status, status, "{marker}: {}", r.body);
}

fn row<'a>(rows: &'a Value, key: &str, value: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no row {key}={value} in {rows}"))
}

#[tokio::test]
async fn every_figure_matches_the_jobs_that_ran() {
    let rm = Who::WorkerFor("rm-client".into());
    // dev-client: two completed (one validated), one failed outright.
    run(&Who::Client, "j1", "quiz", json!([]), json!({}), 200).await;
    run(
        &Who::Client,
        "j2",
        "course",
        json!([]),
        json!({"validationLevel": 2}),
        200,
    )
    .await;
    run(
        &Who::Client,
        "j3",
        "workflow",
        json!([{"kind": "status", "code": 400}, {"kind": "status", "code": 400}]),
        json!({}),
        502,
    )
    .await;
    // other-client: a 500, then a larger answer.
    run(&Who::OtherClient, "j4", "quiz", json!([{"kind": "status", "code": 500}, {"kind": "valid", "usage": {"input": 2000, "output": 1000}}]), json!({}), 200).await;
    // The Resource Manager for rm-client: three 500s, then Anthropic answers.
    let fallback = json!([{"kind": "status", "code": 500}, {"kind": "status", "code": 500}, {"kind": "status", "code": 500}]);
    run(&rm, "j5", "novel", fallback, json!({}), 200).await;
    // An admin user with no client of their own.
    run(
        &Who::AdminSession,
        "j6",
        "learning_path",
        json!([]),
        json!({}),
        200,
    )
    .await;

    // ---- GET /api/stats, per scope ----
    let client = get("/api/stats", &Who::Client).await.body;
    assert_eq!(client["scope"], "dev-client");
    assert_eq!(
        client["jobs"],
        json!({"total": 3, "byStatus": {"completed": 2, "failed": 1, "processing": 0, "cancelled": 0}})
    );
    assert_eq!(client["successRate"], 0.6667);
    assert_eq!(client["averageQualityScore"], 1);
    assert_eq!(client["tokens"], json!({"input": 3000, "output": 1500}));
    close(&client["costUsd"], 3.0 * MINI);
    assert_eq!(
        get("/api/stats", &Who::UserSession).await.body["jobs"],
        client["jobs"],
        "a session of dev-client sees dev-client"
    );
    let other = get("/api/stats", &Who::OtherClient).await.body;
    assert_eq!(
        other["jobs"],
        json!({"total": 1, "byStatus": {"completed": 1, "failed": 0, "processing": 0, "cancelled": 0}})
    );
    assert_eq!(other["tokens"], json!({"input": 2000, "output": 1000}));
    close(&other["costUsd"], MINI_BIG);
    let rm_stats = get("/api/stats", &rm).await.body;
    assert_eq!(rm_stats["jobs"]["total"], 1);
    close(&rm_stats["costUsd"], HAIKU);
    let total_cost = 3.0 * MINI + MINI_BIG + HAIKU + MINI;
    for who in [Who::Worker, Who::AdminSession] {
        let all = get("/api/stats", &who).await.body;
        assert_eq!(all["scope"], "all");
        assert_eq!(
            all["jobs"],
            json!({"total": 6, "byStatus": {"completed": 5, "failed": 1, "processing": 0, "cancelled": 0}})
        );
        assert_eq!(all["successRate"], 0.8333);
        assert_eq!(all["tokens"], json!({"input": 7000, "output": 3500}));
        close(&all["costUsd"], total_cost);
        assert!(all["processingTimeMs"]["p50"].as_u64().is_some());
    }

    // ---- GET /api/economy/stats, per scope ----
    let e = get("/api/economy/stats", &Who::Client).await.body;
    assert_eq!(e["totals"]["attempts"], 5);
    assert_eq!(e["totals"]["jobs"], 3);
    assert_eq!(
        e["totals"]["tokens"],
        json!({"input": 3000, "output": 1500, "cached": 0, "total": 4500})
    );
    close(&e["totals"]["costUsd"], 3.0 * MINI);
    close(&e["costPerJob"], MINI);
    assert_eq!(row(&e["byProvider"], "provider", "openai")["attempts"], 4);
    assert_eq!(
        row(&e["byProvider"], "provider", "anthropic")["attempts"],
        1
    );
    assert_eq!(e["daily"].as_array().unwrap().len(), 1);
    assert_eq!(e["daily"][0]["attempts"], 5);
    let e = get("/api/economy/stats", &Who::OtherClient).await.body;
    assert_eq!(e["totals"]["attempts"], 2);
    assert_eq!(
        row(&e["byProvider"], "provider", "openai")["successRate"],
        0.5
    );
    close(&e["totals"]["costUsd"], MINI_BIG);
    for who in [Who::Worker, Who::AdminSession] {
        let e = get("/api/economy/stats", &who).await.body;
        assert_eq!(e["totals"]["attempts"], 12);
        assert_eq!(e["totals"]["jobs"], 6);
        assert_eq!(e["totals"]["tokens"]["total"], 10_500);
        close(&e["totals"]["costUsd"], total_cost);
        close(&e["costPerJob"], total_cost / 6.0);
        let openai = row(&e["byProvider"], "provider", "openai");
        assert_eq!(
            (
                openai["attempts"].clone(),
                openai["successes"].clone(),
                openai["successRate"].clone()
            ),
            (json!(10), json!(5), json!(0.5))
        );
        let anthropic = row(&e["byProvider"], "provider", "anthropic");
        assert_eq!(
            (
                anthropic["attempts"].clone(),
                anthropic["successes"].clone()
            ),
            (json!(2), json!(1))
        );
        close(
            &row(&e["byModel"], "model", "claude-haiku-4-5")["costUsd"],
            HAIKU,
        );
        close(&e["efficiency"]["costPerToken"], total_cost / 10_500.0);
    }

    // ---- GET /api/admin/stats (admin and worker only) ----
    for who in [Who::Worker, Who::AdminSession] {
        let s = get("/api/admin/stats", &who).await.body;
        assert_eq!(s["jobs"]["jobs"]["total"], 6);
        let quiz = row(&s["templates"], "templateName", "quiz_assessment_standard");
        assert_eq!(
            (
                quiz["jobs"].clone(),
                quiz["completed"].clone(),
                quiz["failed"].clone()
            ),
            (json!(2), json!(2), json!(0))
        );
        close(&quiz["averageCostUsd"], (MINI + MINI_BIG) / 2.0);
        let workflow = row(&s["templates"], "templateName", "business_process_standard");
        assert_eq!(
            (
                workflow["jobs"].clone(),
                workflow["failed"].clone(),
                workflow["successRate"].clone()
            ),
            (json!(1), json!(1), json!(0))
        );
        let clients: Vec<(String, u64)> = s["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["clientId"].as_str().unwrap().to_string(),
                    c["jobs"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            clients,
            vec![
                ("dev-client".into(), 3),
                ("other-client".into(), 1),
                ("rm-client".into(), 1),
                ("user:u-admin".into(), 1)
            ]
        );
    }
    for who in [Who::Client, Who::OtherClient, Who::UserSession] {
        assert_error(&get("/api/admin/stats", &who).await, 403, "forbidden");
        assert_error(&get("/api/admin/analytics", &who).await, 403, "forbidden");
    }

    // ---- GET /api/admin/analytics ----
    let a = get("/api/admin/analytics", &Who::AdminSession).await.body;
    assert_eq!(
        a["templates"].as_array().unwrap().len(),
        5,
        "{}",
        a["templates"]
    );
    let course = row(&a["templates"], "templateName", "educational_course_basic");
    assert_eq!(
        (
            course["jobs"].clone(),
            course["validationFailureRate"].clone(),
            course["averageQualityScore"].clone()
        ),
        (json!(1), json!(0), json!(1))
    );
    close(&course["averageCostUsd"], 2.0 * MINI);
    assert_eq!(a["daily"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            a["daily"][0]["jobs"].clone(),
            a["daily"][0]["completed"].clone(),
            a["daily"][0]["failed"].clone()
        ),
        (json!(6), json!(5), json!(1))
    );
    close(&a["daily"][0]["costUsd"], total_cost);
    let types: Vec<(String, u64)> = a["structureTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["structureType"].as_str().unwrap().to_string(),
                t["jobs"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types,
        vec![
            ("course".into(), 1),
            ("learning_path".into(), 1),
            ("novel".into(), 1),
            ("quiz".into(), 2),
            ("workflow".into(), 1)
        ]
    );
    let openai = row(&a["providers"], "provider", "openai");
    assert_eq!(
        (openai["attempts"].clone(), openai["successRate"].clone()),
        (json!(10), json!(0.5))
    );
    close(
        &openai["costPer1kTokens"],
        (3.0 * MINI + MINI_BIG + MINI) * 1000.0 / 9000.0,
    );
    assert_eq!(
        a["recommendations"],
        json!(["provider openai: only 50% of 10 attempts succeed; consider moving it later in AI_PROVIDER_ORDER"]),
        "the one rule these numbers trip"
    );

    // ---- validation history, per scope ----
    assert_eq!(
        get("/api/validation/history", &Who::Client).await.body["count"],
        1
    );
    assert_eq!(
        get("/api/validation/history", &Who::OtherClient).await.body["count"],
        0
    );
    assert_eq!(
        get("/api/validation/history", &Who::Worker).await.body["count"],
        1
    );

    // Last, and alone: writing the D1 file from outside would make a
    // concurrent worker write fail with SQLITE_BUSY in local workerd.
    the_scheduled_sweep_ends_jobs_abandoned_past_their_deadline().await;
}

/// A run whose worker vanished mid-job leaves a 'processing' row; simulate
/// one in the local D1 file, then fire the cron trigger.
async fn the_scheduled_sweep_ends_jobs_abandoned_past_their_deadline() {
    let client = unique("abandoned");
    let db = std::env::var("D1_FILE").expect("D1_FILE is set by ./test.sh");
    let sql = format!(
        "INSERT INTO granulation_jobs (client_id, execution_id, topic, structure_type, granularity_level, target_audience, template_name, request_params, deadline_at, cost_usd) \
         VALUES ('{client}', 'gone-1', 'Abandoned', 'quiz', 1, 'anyone', 'quiz_assessment_standard', '{{}}', 1, 0);"
    );
    let status = std::process::Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 10000")
        .arg(&db)
        .arg(&sql)
        .status()
        .expect("sqlite3 runs");
    assert!(status.success());
    let who = Who::WorkerFor(client);
    let id = get("/api/jobs", &who).await.body["jobs"][0]["id"]
        .as_i64()
        .expect("the job");
    let before = get(&format!("/api/jobs/{id}/status"), &who).await;
    assert_eq!(
        (
            before.body["status"].clone(),
            before.body["abandoned"].clone()
        ),
        (json!("processing"), json!(true))
    );
    let fired = http()
        .get(format!("{}/__scheduled?cron=*/5+*+*+*+*", base()))
        .send()
        .await
        .unwrap();
    assert!(fired.status().is_success());
    let after = get(&format!("/api/jobs/{id}/status"), &who).await;
    assert_eq!(after.body["status"], "failed", "{}", after.body);
    assert_eq!(after.body["failureCode"], "abandoned");
}

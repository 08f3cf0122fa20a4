//! Templates end to end: listing, filters and exact names; admin create,
//! update and soft delete with cache invalidation; bad input, duplicates and
//! non-admins refused.
//! Run through `./test.sh` (against the stack it starts); each test uses its
//! own topic marker (and, where it counts rows, its own client), so tests run
//! in parallel.

mod support;

use serde_json::json;
use support::*;

// ---- templates ---------------------------------------------------------------

#[tokio::test]
async fn templates_list_filter_and_exact_names() {
    let all = get("/api/templates", &Who::Client).await;
    assert!(all.body["count"].as_u64().unwrap() >= 6);
    let quiz = get("/api/templates?structure_type=quiz", &Who::Client).await;
    assert!(quiz.body["templates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["structureType"] == "quiz"));
    assert_error(
        &get("/api/templates?structure_type=poem", &Who::Client).await,
        400,
        "invalid_field",
    );
    let one = get("/api/templates/three_act_novel", &Who::Client).await;
    assert_eq!(
        one.body["template"]["structureRules"]["levels"][0],
        json!({"level": "acts", "min": 3, "max": 3})
    );
    assert_error(
        &get("/api/templates/three_act", &Who::Client).await,
        404,
        "not_found",
    );
    assert_error(
        &get("/api/templates/THREE_ACT_NOVEL", &Who::Client).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn admins_create_update_and_soft_delete_templates_with_cache_invalidation() {
    let name = unique("tpl").replace('-', "_");
    let name = format!("t{name}");
    let created = post(
        "/api/admin/templates",
        &Who::AdminSession,
        json!({"action": "create", "template": quiz_template(&name)}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        get(&format!("/api/templates/{name}"), &Who::Client)
            .await
            .body["template"]["description"],
        "e2e"
    );
    // A job resolves the template through the KV cache...
    let first = unique("tpl-use");
    let job = execute(
        &Who::Client,
        json!({"input": {"topic": first, "templateName": name}}),
        None,
    )
    .await;
    assert_eq!(job.status, 200, "{}", job.body);
    assert!(mock_calls(&first).await[0]["user"]
        .as_str()
        .unwrap()
        .starts_with("Quiz on"));
    let job_id = job.body["output"]["jobId"].as_i64().unwrap();
    // ...an admin change invalidates it: the very next job uses the new prompt.
    let updated = post(
        "/api/admin/templates",
        &Who::Worker,
        json!({"action": "update", "template": {"templateName": name, "description": "changed",
        "complexityLevel": 5, "aiPromptTemplate": "Revised quiz about {topic}. {level_targets}"}}),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let second = unique("tpl-use");
    assert_eq!(
        execute(
            &Who::Client,
            json!({"input": {"topic": second, "templateName": name}}),
            None
        )
        .await
        .status,
        200
    );
    assert!(mock_calls(&second).await[0]["user"]
        .as_str()
        .unwrap()
        .starts_with("Revised quiz about"));
    let read = get(&format!("/api/templates/{name}"), &Who::Client).await;
    assert_eq!(read.body["template"]["description"], "changed");
    assert_eq!(read.body["template"]["complexityLevel"], 5);
    // usage_count = usage_count + 1 per job, in the job's own batch.
    assert_eq!(read.body["template"]["usageCount"], 2);
    // Soft delete: gone from reads and new jobs; the old job keeps its link.
    let deleted = post(
        "/api/admin/templates",
        &Who::AdminSession,
        json!({"action": "delete", "template": {"templateName": name}}),
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_error(
        &get(&format!("/api/templates/{name}"), &Who::Client).await,
        404,
        "not_found",
    );
    let listed = get("/api/templates?structure_type=quiz", &Who::Client).await;
    assert!(listed.body["templates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["templateName"] != name.as_str()));
    assert_eq!(
        get(&format!("/api/jobs/{job_id}"), &Who::Client).await.body["job"]["templateName"],
        name.as_str()
    );
    let again = execute(
        &Who::Client,
        json!({"input": {"topic": "x", "templateName": name}}),
        None,
    )
    .await;
    // A deleted template is a missing resource: 404 naming the field.
    assert_error(&again, 404, "not_found");
    assert_eq!(again.body["details"]["field"], "input.templateName");
}

#[tokio::test]
async fn template_admin_rejects_bad_input_duplicates_and_non_admins() {
    let name = format!("t{}", unique("dup").replace('-', "_"));
    assert_eq!(create_quiz_template(&name).await.status, 201);
    assert_error(
        &post(
            "/api/admin/templates",
            &Who::AdminSession,
            json!({"action": "create", "template": quiz_template(&name)}),
        )
        .await,
        409,
        "template_exists",
    );
    let cases = [
        (
            "aiPromptTemplate",
            json!("Quiz on {topic} for {reader}"),
            "template.aiPromptTemplate",
        ),
        ("structureType", json!("poem"), "template.structureType"),
        (
            "structureRules",
            json!({"levels": [{"level": "categories", "min": 1, "max": 20}, {"level": "questions", "min": 3, "max": 10}]}),
            "template.structureRules",
        ),
    ];
    for (field, value, named) in cases {
        let mut bad = quiz_template("tbad_template");
        bad[field] = value;
        let r = post(
            "/api/admin/templates",
            &Who::AdminSession,
            json!({"action": "create", "template": bad}),
        )
        .await;
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        assert_eq!(r.body["details"]["field"], named);
    }
    assert_eq!(
        post(
            "/api/admin/templates",
            &Who::AdminSession,
            json!({"action": "rename", "template": quiz_template("tx_y")})
        )
        .await
        .status,
        400
    );
    assert_error(
        &post(
            "/api/admin/templates",
            &Who::Client,
            json!({"action": "create", "template": quiz_template("tnope")}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &post(
            "/api/admin/templates",
            &Who::UserSession,
            json!({"action": "create", "template": quiz_template("tnope")}),
        )
        .await,
        403,
        "forbidden",
    );
}

//! `parse_execute` and `check_counts`, field by field.

use super::*;
use serde_json::json;

/// Bodies of these tests are about other fields: they name the action.
fn act(mut body: Value) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.entry("action").or_insert(json!("granulate"));
    }
    body
}

fn granulate(body: Value) -> AppResult<JobRequest> {
    match parse_execute(&act(body), None)? {
        ExecuteRequest::Granulate { request, .. } => Ok(request),
        other => panic!("{other:?}"),
    }
}

fn field_of(e: AppError) -> String {
    e.details
        .map(|d| d["field"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn params_win_over_input_and_defaults_apply() {
    let r = granulate(json!({"action": "process", "input": {"topic": " Rust ", "structureType": "quiz", "granularityLevel": 2},
        "params": {"structureType": "course"}})).unwrap();
    assert_eq!(r.params.topic, "Rust");
    assert_eq!(r.params.structure_type, Some(StructureType::Course));
    assert_eq!(r.params.granularity_level.get(), 2);
    assert_eq!(r.timeout_ms, DEFAULT_TIMEOUT_MS);
    let r = granulate(json!({"input": {"topic": "x", "templateName": "three_act_novel"}})).unwrap();
    assert_eq!(r.params.granularity_level, Granularity::DEFAULT);
}

#[test]
fn a_missing_or_null_action_is_a_400_listing_the_valid_ones() {
    for body in [
        json!({"input": {"topic": "x", "structureType": "quiz"}}),
        json!({"action": null, "input": {"topic": "x", "structureType": "quiz"}}),
    ] {
        let e = parse_execute(&body, None).unwrap_err();
        assert_eq!((e.status(), e.code), (400, "missing_action"), "{body}");
        assert_eq!(e.details.unwrap()["validActions"], json!(Action::NAMES));
    }
}

#[test]
fn control_characters_in_text_and_ids_are_400s_naming_the_field() {
    for (body, field) in [
        (
            json!({"input": {"topic": "Rust\u{1b}[2J", "structureType": "quiz"}}),
            "input.topic",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "quiz", "targetAudience": "a\u{7f}"}}),
            "input.targetAudience",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "quiz", "executionId": "id\tx"}}),
            "executionId",
        ),
    ] {
        let e = parse_execute(&act(body.clone()), None).unwrap_err();
        assert_eq!(e.status(), 400, "{body}");
        assert_eq!(field_of(e), field, "{body}");
    }
    let ok = granulate(json!({"input": {"topic": "Rust\townership\r\n", "structureType": "quiz"}}));
    assert!(ok.is_ok(), "tab, CR and LF are allowed in free text");
    assert!(forbidden_control('\u{0}') && forbidden_control('\u{85}'));
    assert!(!forbidden_control('\n') && !forbidden_control('é'));
}

#[test]
fn unknown_actions_list_the_valid_ones() {
    let e = parse_execute(&json!({"action": "delete_everything"}), None).unwrap_err();
    assert_eq!(e.code, "unknown_action");
    assert!(e.message.contains("granulate, process, validate, estimate"));
}

#[test]
fn every_bad_field_is_named() {
    let cases = [
        (json!({"input": {"structureType": "course"}}), "input.topic"),
        (
            json!({"input": {"topic": 5, "structureType": "course"}}),
            "input.topic",
        ),
        (
            json!({"input": {"topic": "x".repeat(501), "structureType": "course"}}),
            "input.topic",
        ),
        (json!({"input": {"topic": "x"}}), "input.structureType"),
        (
            json!({"input": {"topic": "x", "structureType": "poem"}}),
            "input.structureType",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "params": {"granularityLevel": 6}}),
            "params.granularityLevel",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course", "granularityLevel": "3"}}),
            "input.granularityLevel",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course", "constraints": {"maxElements": 0}}}),
            "input.constraints.maxElements",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course", "constraints": {"counts": {"modules": "many"}}}}),
            "input.constraints.counts.modules",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"aiProvider": "skynet"}}),
            "config.aiProvider",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"aiModel": "gpt-4o"}}),
            "config.aiModel",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"temperature": 3}}),
            "config.temperature",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"maxTokens": 10}}),
            "config.maxTokens",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"validationLevel": 4}}),
            "config.validationLevel",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"validationThreshold": -1}}),
            "config.validationThreshold",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"maxCostUsd": 0}}),
            "config.maxCostUsd",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"validation": "yes"}}),
            "config.validation",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "config": {"strategy": "parallel"}}),
            "config.strategy",
        ),
        (
            json!({"input": {"topic": "x", "structureType": "course"}, "timeout": 10}),
            "timeout",
        ),
        (json!({"input": "topic"}), "input"),
        (json!({"action": 7}), "action"),
    ];
    for (body, field) in cases {
        let body = act(body);
        let e = parse_execute(&body, None).unwrap_err();
        assert_eq!(e.status(), 400, "{body}");
        assert_eq!(field_of(e), field, "{body}");
    }
}

#[test]
fn request_id_header_is_the_idempotency_key() {
    let body = act(
        json!({"input": {"topic": "x", "structureType": "course", "executionId": "from-input"}}),
    );
    let ExecuteRequest::Granulate { execution_id, .. } =
        parse_execute(&body, Some("rm-123")).unwrap()
    else {
        panic!()
    };
    assert_eq!(execution_id.as_deref(), Some("rm-123"));
    let ExecuteRequest::Granulate { execution_id, .. } = parse_execute(&body, None).unwrap() else {
        panic!()
    };
    assert_eq!(execution_id.as_deref(), Some("from-input"));
    assert_eq!(
        parse_execute(&body, Some(&"x".repeat(200)))
            .unwrap_err()
            .status(),
        400
    );
    // Sent empty, with a space or non-ASCII, the header is refused for
    // every action (the document's pattern), not read as absent.
    let estimate = json!({"action": "estimate", "input": {"structureType": "quiz"}});
    for header in ["", "a b", "caf\u{e9}", &"x".repeat(129)] {
        for body in [&body, &estimate] {
            let e = parse_execute(body, Some(header)).unwrap_err();
            assert_eq!(field_of(e), "X-Request-ID", "{header:?} {body}");
        }
    }
    assert!(parse_execute(&estimate, Some(&"~".repeat(128))).is_ok());
}

#[test]
fn validate_needs_a_job_id_and_estimate_needs_no_topic() {
    assert_eq!(
        field_of(parse_execute(&json!({"action": "validate", "input": {}}), None).unwrap_err()),
        "input.jobId"
    );
    let ok = parse_execute(
        &json!({"action": "validate", "input": {"jobId": 4}, "config": {"validationLevel": 2}}),
        None,
    )
    .unwrap();
    assert_eq!(
        ok,
        ExecuteRequest::Validate {
            job_id: 4,
            level: Some(2),
            threshold: None
        }
    );
    assert!(matches!(
        parse_execute(
            &json!({"action": "estimate", "params": {"structureType": "quiz"}}),
            None
        )
        .unwrap(),
        ExecuteRequest::Estimate { .. }
    ));
}

#[test]
fn counts_are_checked_against_the_resolved_type() {
    let r = granulate(json!({"input": {"topic": "x", "structureType": "course", "constraints": {"counts": {"questions": 3}}}})).unwrap();
    let rules = StructureRules::contract(StructureType::Course);
    assert!(check_counts(&r.params, StructureType::Course, &rules)
        .unwrap_err()
        .message
        .contains("not a level of course"));
    let r = granulate(json!({"input": {"topic": "x", "structureType": "course", "constraints": {"counts": {"modules": 20}}}})).unwrap();
    assert!(check_counts(&r.params, StructureType::Course, &rules).is_err());
}

#[test]
fn strategy_is_parsed_and_left_out_of_the_stored_request_when_unset() {
    use crate::types::api::Strategy;
    let r = granulate(json!({"input": {"topic": "x", "structureType": "course"}, "config": {"strategy": "fanout"}})).unwrap();
    assert_eq!(r.config.strategy, Some(Strategy::Fanout));
    // Unset, it is not serialised: a request hash from before fan-out is unchanged.
    let r = granulate(json!({"input": {"topic": "x", "structureType": "course"}})).unwrap();
    assert!(serde_json::to_value(&r.config)
        .unwrap()
        .get("strategy")
        .is_none());
}

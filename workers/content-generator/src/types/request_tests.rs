use super::*;

fn course() -> Value {
    serde_json::from_str(include_str!("../../tests/fixtures/course-g2.json")).unwrap()
}

fn body(input: Value) -> Value {
    json!({"action": "generate", "input": input})
}

fn field_of(body: &Value) -> Value {
    let e = ExecuteRequest::parse(body).unwrap_err();
    assert_eq!(e.status(), 400, "{e:?}");
    e.details.unwrap()["field"].clone()
}

#[test]
fn a_real_granulator_output_parses_with_its_standard_parameters() {
    let r = ExecuteRequest::parse(&body(course())).unwrap();
    let j = &r.job;
    assert_eq!(j.structure_type, StructureType::Course);
    assert_eq!(j.topic, "Introduction to Rust ownership");
    assert!(j.granulator_job_id > 0);
    assert!(j.structure.is_some() && j.structure_reference.is_none());
    assert_eq!(j.parameters.audience, "adult learners");
    assert_eq!(j.parameters.tone, "instructional, encouraging");
    assert_eq!(j.parameters.language, "en");
    assert_eq!(
        (j.include_optional, j.word_tolerance),
        (true, DEFAULT_WORD_TOLERANCE)
    );
    assert_eq!(
        (r.timeout_ms, r.asynchronous, j.max_cost_usd),
        (DEFAULT_TIMEOUT_MS, false, None)
    );
    assert_eq!(j.min_quality_score(), 0.7);
}

#[test]
fn process_is_an_alias_of_generate_and_a_missing_action_is_refused() {
    let mut b = body(course());
    b["action"] = json!("process");
    let a = ExecuteRequest::parse(&b).unwrap();
    assert_eq!(a.job, ExecuteRequest::parse(&body(course())).unwrap().job);
    b.as_object_mut().unwrap().remove("action");
    let e = ExecuteRequest::parse(&b).unwrap_err();
    assert_eq!(
        (e.status(), e.details.unwrap()["field"].clone()),
        (400, json!("action"))
    );
    b["action"] = json!("granulate");
    let e = ExecuteRequest::parse(&b).unwrap_err();
    assert!(e.message.contains("generate, process"), "{}", e.message);
    b["action"] = json!(7);
    assert_eq!(field_of(&b), "action");
}

#[test]
fn an_input_lacking_contract_fields_is_one_400_naming_every_one() {
    let e = ExecuteRequest::parse(&body(json!({"topic": "T"}))).unwrap_err();
    assert_eq!((e.status(), e.code), (400, "invalid_input"));
    let missing = e.details.unwrap()["missing"].clone();
    assert_eq!(
        missing,
        json!([
            "granulatorJobId",
            "structureType",
            "structure or structureReference",
            "wordCountEstimates",
            "contentMetadata"
        ])
    );
    for name in missing.as_array().unwrap() {
        assert!(e.message.contains(name.as_str().unwrap()), "{}", e.message);
    }
    // A null is not given.
    let mut input = course();
    input["wordCountEstimates"] = Value::Null;
    let e = ExecuteRequest::parse(&body(input)).unwrap_err();
    assert_eq!(e.details.unwrap()["missing"], json!(["wordCountEstimates"]));
}

#[test]
fn a_structure_reference_stands_in_for_the_inline_structure() {
    let mut input = course();
    input.as_object_mut().unwrap().remove("structure");
    input["structureReference"] =
        json!({"type": "kv", "location": "structure:1", "url": "/api/jobs/1/structure"});
    let j = ExecuteRequest::parse(&body(input.clone())).unwrap().job;
    assert_eq!(
        (
            j.structure.is_none(),
            j.structure_reference.unwrap()["type"].clone()
        ),
        (true, json!("kv"))
    );
    input["structureReference"]["type"] = json!("d1");
    assert_eq!(
        field_of(&body(input.clone())),
        "input.structureReference.type"
    );
    input["structureReference"] = json!({"type": "r2", "location": " "});
    assert_eq!(
        field_of(&body(input.clone())),
        "input.structureReference.location"
    );
    input["structureReference"] = json!("structure:1");
    assert_eq!(field_of(&body(input)), "input.structureReference");
}

#[test]
fn wrong_types_are_400s_naming_the_field() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("granulatorJobId", json!("7"), "input.granulatorJobId"),
        ("granulatorJobId", json!(0), "input.granulatorJobId"),
        ("topic", json!(""), "input.topic"),
        (
            "topic",
            json!("x".repeat(MAX_TOPIC_CHARS + 1)),
            "input.topic",
        ),
        ("structureType", json!("essay"), "input.structureType"),
        ("structure", json!([1]), "input.structure"),
        ("wordCountEstimates", json!(5), "input.wordCountEstimates"),
        ("contentMetadata", json!("m"), "input.contentMetadata"),
    ];
    for (key, value, field) in cases {
        let mut input = course();
        input[key] = value;
        assert_eq!(field_of(&body(input)), field, "{key}");
    }
    let mut input = course();
    for words in [json!("many"), json!(MAX_SECTION_WORDS + 1)] {
        input["wordCountEstimates"]["bySection"]["lessonContent"] = words;
        assert_eq!(
            field_of(&body(input.clone())),
            "input.wordCountEstimates.bySection.lessonContent"
        );
    }
    let mut input = course();
    input["contentMetadata"]["contentSpecs"]["optionalSections"] = json!("all");
    assert_eq!(
        field_of(&body(input)),
        "input.contentMetadata.contentSpecs.optionalSections"
    );
    let mut input = course();
    input["contentMetadata"]["qualityRequirements"]["minQualityScore"] = json!(2);
    assert_eq!(
        field_of(&body(input)),
        "input.contentMetadata.qualityRequirements.minQualityScore"
    );
    let mut input = course();
    input["contentMetadata"]["standardParameters"]["tone"] = json!(3);
    assert_eq!(
        field_of(&body(input)),
        "input.contentMetadata.standardParameters.tone"
    );
    assert_eq!(
        field_of(&json!({"action": "generate", "input": [1]})),
        "input"
    );
    assert_eq!(field_of(&json!({"action": "generate"})), "input");
    let mut b = body(course());
    b["params"] = json!("p");
    assert_eq!(field_of(&b), "params");
    assert_eq!(
        ExecuteRequest::parse(&json!("x")).unwrap_err().code,
        "invalid_body"
    );
}

#[test]
fn params_win_over_config_which_wins_over_the_input() {
    let mut b = body(course());
    b["config"] = json!({"tone": "config tone", "style": "config style", "language": "de"});
    b["params"] = json!({"tone": "params tone", "targetAudience": "nurses"});
    let p = ExecuteRequest::parse(&b).unwrap().job.parameters;
    assert_eq!(
        p,
        Parameters {
            audience: "nurses".into(),
            tone: "params tone".into(),
            style: "config style".into(),
            language: "de".into()
        }
    );
    b["params"]["language"] = json!("");
    assert_eq!(field_of(&b), "params.language");
    // Without any source the type's defaults apply.
    let mut input = course();
    input["contentMetadata"]
        .as_object_mut()
        .unwrap()
        .remove("standardParameters");
    input.as_object_mut().unwrap().remove("targetAudience");
    let p = ExecuteRequest::parse(&body(input)).unwrap().job.parameters;
    assert_eq!(
        (p.audience.as_str(), p.language.as_str()),
        (DEFAULT_AUDIENCE, DEFAULT_LANGUAGE)
    );
    assert_eq!(p.style, StructureType::Course.spec().style);
}

#[test]
fn include_optional_and_word_tolerance_are_read_and_bounded() {
    let mut b = body(course());
    b["params"] = json!({"includeOptional": false, "wordTolerance": 0.2});
    let j = ExecuteRequest::parse(&b).unwrap().job;
    assert_eq!((j.include_optional, j.word_tolerance), (false, 0.2));
    b["params"] = json!({"wordTolerance": 0.01});
    assert_eq!(field_of(&b), "params.wordTolerance");
    b["params"] = json!({});
    b["config"] = json!({"wordTolerance": 1.5});
    assert_eq!(field_of(&b), "config.wordTolerance");
    b["config"] = json!({"includeOptional": "no"});
    assert_eq!(field_of(&b), "config.includeOptional");
}

#[test]
fn timeout_async_and_budget_are_checked_like_the_template() {
    let mut b = body(course());
    b["timeout"] = json!(5);
    assert_eq!(field_of(&b), "timeout");
    b["timeout"] = json!(2000);
    b["async"] = json!("yes");
    assert_eq!(field_of(&b), "async");
    b["async"] = json!(true);
    b["maxCostUsd"] = json!(-1);
    assert_eq!(field_of(&b), "maxCostUsd");
    b["maxCostUsd"] = json!(0.5);
    let r = ExecuteRequest::parse(&b).unwrap();
    assert_eq!(
        (r.timeout_ms, r.asynchronous, r.job.max_cost_usd),
        (2000, true, Some(0.5))
    );
}

#[test]
fn how_the_caller_waits_is_not_part_of_the_job_but_its_parameters_are() {
    let plain = ExecuteRequest::parse(&body(course())).unwrap().job;
    let mut b = body(course());
    b["timeout"] = json!(2000);
    b["async"] = json!(true);
    assert_eq!(
        ExecuteRequest::parse(&b).unwrap().job.canonical(),
        plain.canonical()
    );
    b["params"] = json!({"tone": "playful"});
    assert_ne!(
        ExecuteRequest::parse(&b).unwrap().job.canonical(),
        plain.canonical()
    );
}

#[test]
fn a_job_survives_being_stored_and_read_back() {
    let job = ExecuteRequest::parse(&body(course())).unwrap().job;
    let stored = serde_json::to_string(&job).unwrap();
    assert!(
        stored.contains("\"granulatorJobId\"") && stored.contains("\"structureType\":\"course\"")
    );
    let back: GenerateJob = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, job);
}

#[test]
fn the_granulators_concurrency_is_kept_within_bounds() {
    let mut input = course();
    let of = |input: &Value| {
        ExecuteRequest::parse(&body(input.clone()))
            .unwrap()
            .job
            .max_concurrent()
    };
    assert_eq!(of(&input), 5);
    input["contentMetadata"]["generationStrategy"]["maxConcurrent"] = json!(400);
    assert_eq!(of(&input), MAX_CONCURRENT);
    input["contentMetadata"]["generationStrategy"]["maxConcurrent"] = json!(0);
    assert_eq!(of(&input), 1);
    input["contentMetadata"]["generationStrategy"] = json!(null);
    assert_eq!(of(&input), DEFAULT_MAX_CONCURRENT);
}

#[test]
fn the_audience_alone_falls_back_to_the_inputs_top_level_target_audience() {
    let mut input = course();
    let standard = input["contentMetadata"]["standardParameters"]
        .as_object_mut()
        .unwrap();
    standard.remove("targetAudience");
    standard.remove("tone");
    input["targetAudience"] = json!("retirees");
    input["tone"] = json!("not read from here");
    let p = ExecuteRequest::parse(&body(input)).unwrap().job.parameters;
    assert_eq!(p.audience, "retirees");
    assert_eq!(p.tone, StructureType::Course.spec().tone);
}

#[test]
fn a_zero_budget_and_non_text_section_lists_are_refused() {
    let mut b = body(course());
    b["maxCostUsd"] = json!(0);
    assert_eq!(field_of(&b), "maxCostUsd");
    let mut input = course();
    input["contentMetadata"]["contentSpecs"]["requiredSections"] = json!(["lessonContent", 3]);
    assert_eq!(
        field_of(&body(input)),
        "input.contentMetadata.contentSpecs.requiredSections"
    );
}

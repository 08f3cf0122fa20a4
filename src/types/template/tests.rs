use super::*;

fn minimal() -> Value {
    json!({"templateName": "my_course", "structureType": "course", "aiPromptTemplate": "Course on {topic} for {audience}. {level_targets}"})
}

#[test]
fn a_minimal_template_gets_contract_rules_and_schema() {
    let t = TemplateInput::parse(&minimal(), None).unwrap();
    assert_eq!(
        t.structure_rules,
        StructureRules::contract(StructureType::Course)
    );
    assert_eq!(
        t.template_schema["levels"],
        json!(["modules", "lessons", "activities"])
    );
    assert_eq!(t.validation_rules, ValidationRules::default());
}

#[test]
fn validation_rules_left_out_take_the_one_default() {
    let none: ValidationRules = serde_json::from_str("{}").unwrap();
    assert_eq!(none, ValidationRules::default());
    let some: ValidationRules = serde_json::from_str(r#"{"validationLevel": 2}"#).unwrap();
    assert_eq!(
        some,
        ValidationRules {
            validation_level: 2,
            ..ValidationRules::default()
        }
    );
    assert_eq!(
        (some.min_quality_score, some.validation_threshold),
        (0.7, 75.0)
    );
}

#[test]
fn each_bad_field_is_named() {
    let cases = [
        ("templateName", json!("Bad Name"), "template.templateName"),
        ("structureType", json!("poem"), "template.structureType"),
        (
            "aiPromptTemplate",
            json!("About {topic} for {reader}"),
            "template.aiPromptTemplate",
        ),
        (
            "templateSchema",
            json!({"levels": ["units"]}),
            "template.templateSchema",
        ),
        (
            "structureRules",
            json!({"levels": [{"level": "modules", "min": 1, "max": 99}]}),
            "template.structureRules",
        ),
        (
            "validationRules",
            json!({"validationThreshold": 150}),
            "template.validationRules.validationThreshold",
        ),
        (
            "aiProviderConfig",
            json!({"preferredProvider": "skynet"}),
            "template.aiProviderConfig",
        ),
        (
            "costOptimization",
            json!({"maxCostPerJob": -1}),
            "template.costOptimization.maxCostPerJob",
        ),
        ("complexityLevel", json!(9), "template.complexityLevel"),
        (
            "validationRules",
            json!({"minQualityScore": 1.5}),
            "template.validationRules.minQualityScore",
        ),
        (
            "validationRules",
            json!({"validationLevel": 4}),
            "template.validationRules.validationLevel",
        ),
        (
            "aiProviderConfig",
            json!({"temperature": 2.5}),
            "template.aiProviderConfig.temperature",
        ),
        (
            "aiProviderConfig",
            json!({"maxTokens": 100}),
            "template.aiProviderConfig.maxTokens",
        ),
    ];
    for (field, value, named) in cases {
        let mut input = minimal();
        input[field] = value;
        let err = TemplateInput::parse(&input, None).unwrap_err();
        assert_eq!(err.status(), 400, "{field}");
        assert_eq!(
            err.details.as_ref().unwrap()["field"],
            named,
            "{field}: {}",
            err.message
        );
    }
}

#[test]
fn a_field_of_the_wrong_type_is_named_and_null_is_left_out() {
    let cases = [
        ("templateName", json!(5), "must be a string"),
        ("structureType", json!(["course"]), "must be a string"),
        (
            "description",
            json!("x".repeat(501)),
            "must be at most 500 characters",
        ),
        ("targetAudience", json!({"who": "devs"}), "must be a string"),
        ("complexityLevel", json!(3.5), "must be an integer 1-5"),
        ("complexityLevel", json!(300), "must be an integer 1-5"),
        ("validationRules", json!("strict"), "is not valid"),
    ];
    for (field, value, says) in cases {
        let mut input = minimal();
        input[field] = value;
        let err = TemplateInput::parse(&input, None).unwrap_err();
        assert_eq!(
            err.details.as_ref().unwrap()["field"],
            format!("template.{field}")
        );
        assert!(err.message.contains(says), "{field}: {}", err.message);
    }
    let mut input = minimal();
    input["description"] = json!("  padded  ");
    input["complexityLevel"] = Value::Null;
    input["validationRules"] = Value::Null;
    let t = TemplateInput::parse(&input, None).unwrap();
    assert_eq!((t.description.as_str(), t.complexity_level), ("padded", 3));
    // A level in range is taken as sent.
    input["complexityLevel"] = json!(5);
    assert_eq!(
        TemplateInput::parse(&input, None).unwrap().complexity_level,
        5
    );
    assert_eq!(t.validation_rules, ValidationRules::default());
    let err = TemplateInput::parse(&json!(["not", "an", "object"]), None).unwrap_err();
    assert_eq!(err.details.as_ref().unwrap()["field"], "template");
}

#[test]
fn updates_keep_what_they_do_not_change() {
    let created = TemplateInput::parse(&minimal(), None).unwrap();
    let base = Template {
        id: 1,
        template_name: created.template_name.clone(),
        structure_type: created.structure_type,
        description: "old".into(),
        template_schema: created.template_schema.clone(),
        ai_prompt_template: created.ai_prompt_template.clone(),
        placeholders: vec![],
        validation_rules: created.validation_rules.clone(),
        structure_rules: created.structure_rules.clone(),
        complexity_level: 4,
        target_audience: "devs".into(),
        ai_provider_config: AiProviderConfig::default(),
        cost_optimization: CostOptimization::default(),
        usage_count: 0,
        created_at: String::new(),
        updated_at: String::new(),
    };
    let updated = TemplateInput::parse(&json!({"description": "new"}), Some(&base)).unwrap();
    assert_eq!(updated.description, "new");
    assert_eq!(updated.complexity_level, 4);
    assert_eq!(updated.target_audience, "devs");
    // Changing the type resets rules and schema to the new type's contract.
    let retyped = TemplateInput::parse(&json!({"structureType": "quiz"}), Some(&base)).unwrap();
    assert_eq!(
        retyped.structure_rules,
        StructureRules::contract(StructureType::Quiz)
    );
}

//! `request_for` over the fixtures: prompt lines, the shared prefix, the schema.

use super::*;

#[test]
fn every_element_of_every_type_gets_a_prompt_line_and_a_target() {
    let mut types = std::collections::BTreeSet::new();
    for (name, _) in FIXTURES {
        let (job, structure) = job(name);
        types.insert(job.structure_type.as_str());
        let plan = plan(&job, &structure, 6_000).unwrap();
        let total = input(name)["summary"]["totalElements"].as_u64().unwrap();
        assert_eq!(
            plan.elements.len() as u64,
            total + 1,
            "{name}: the root and every node"
        );
        assert_eq!(plan.elements[0].path, ROOT_PATH);
        assert_eq!(
            plan.elements[0].section,
            job.structure_type.spec().root_section
        );
        let mut lined = 0;
        for batch in &plan.batches {
            let request = request_for(&job, &structure, &plan, batch);
            for path in &batch.paths {
                let e = plan.element(path).unwrap();
                assert!(e.target_words > 0, "{name} {path}");
                assert!(!e.title.is_empty(), "{name} {path}");
                let line = format!(
                    "\n- {} | {} words | {}: {}\n",
                    e.path, e.target_words, e.element_type, e.title
                );
                assert!(
                    request.user.contains(&line),
                    "{name}: no line {line:?} in\n{}",
                    request.user
                );
                lined += 1;
            }
        }
        assert_eq!(
            lined,
            plan.elements.len(),
            "{name}: each element in exactly one batch"
        );
        // The deepest level present is written too (every level of the outline).
        let depth = plan.elements.iter().map(|e| e.level).max().unwrap();
        assert_eq!(
            u64::from(depth),
            input(name)["summary"]["depth"].as_u64().unwrap(),
            "{name}"
        );
    }
    assert_eq!(types.len(), StructureType::ALL.len());
}

#[test]
fn every_call_of_a_job_shares_its_prompt_prefix() {
    let (job, structure) = job("workflow-g3");
    let plan = plan(&job, &structure, ROOMY).unwrap();
    let requests: Vec<_> = plan
        .batches
        .iter()
        .map(|b| request_for(&job, &structure, &plan, b))
        .collect();
    let prefix = &requests[0].user[..requests[0].shared_prefix];
    assert!(
        prefix.contains(&job.topic) && prefix.contains("phases.3:"),
        "{prefix}"
    );
    for r in &requests {
        assert!(r.shared_prefix > 0 && r.shared_prefix < r.user.len());
        assert_eq!(&r.user[..r.shared_prefix], prefix);
        assert_eq!(r.system, requests[0].system);
        assert_eq!(r.purpose.as_str(), "generate");
    }
    let system = &requests[0].system;
    assert!(system.contains("technical writer") && system.contains(&job.parameters.audience));
    assert!(system.contains(&job.parameters.tone) && system.contains(&job.parameters.style));
}

#[test]
fn a_batchs_schema_is_strict_and_names_only_its_paths() {
    let (job, structure) = job("course-g3");
    let plan = plan(&job, &structure, ROOMY).unwrap();
    let b = &plan.batches[1];
    let r = request_for(&job, &structure, &plan, b);
    assert_eq!(r.schema_name, "content_batch");
    assert_eq!(r.schema["additionalProperties"], false);
    let item = &r.schema["properties"]["elements"]["items"];
    assert_eq!(item["additionalProperties"], false);
    assert_eq!(item["required"], json!(["path", "content"]));
    assert_eq!(item["properties"]["path"]["enum"], json!(b.paths));
    assert_eq!(item["properties"]["content"]["minLength"], 1);
    assert_eq!(r.expected_output_tokens, b.expected_tokens);
    assert_eq!(
        r.max_tokens,
        ((f64::from(b.expected_tokens) * 1.5).ceil() as u32).min(MAX_BATCH_OUTPUT_TOKENS)
    );
    let (job, structure) = self::job("novel-g3");
    let big = plan_of(&job, &structure);
    let b = big
        .batches
        .iter()
        .max_by_key(|b| b.expected_tokens)
        .unwrap();
    assert!(b.expected_tokens * 3 / 2 > MAX_BATCH_OUTPUT_TOKENS);
    assert_eq!(
        request_for(&job, &structure, &big, b).max_tokens,
        MAX_BATCH_OUTPUT_TOKENS
    );
}

#[test]
fn each_element_type_is_told_what_to_write_with_its_outline_fields() {
    let (job, structure) = job("course-g3");
    let p = plan_of(&job, &structure);
    let user = request_for(&job, &structure, &p, &p.batches[1]).user;
    assert!(user.contains("Write: the module's introduction"));
    assert!(
        user.contains("Write: the lesson's content")
            && user.contains("  contentOutline: ContentOutline for Lesson 1.1")
    );
    assert!(
        user.contains("Write: the activity's instructions") && user.contains("  type: practice")
    );
    let (job, structure) = self::job("quiz-g2");
    let p = plan_of(&job, &structure);
    let user = request_for(&job, &structure, &p, &p.batches[1]).user;
    assert!(user.contains("never rewrite them"));
    assert!(
        user.contains("  options: Option A; Option B; Option C; Option D")
            && user.contains("  answer: Option A")
    );
    let (job, structure) = self::job("novel-g3");
    let p = plan_of(&job, &structure);
    let user = request_for(&job, &structure, &p, &p.batches[1]).user;
    assert!(
        user.contains("Write: the act's summary") && user.contains("Write: the chapter's bridge")
    );
    assert!(user.contains("Write: the scene's draft") && user.contains("  conflict: "));
    let root = request_for(&job, &structure, &p, &p.batches[0]).user;
    assert!(root.contains("Write: the story bible") && root.contains("  premise: "));
}

#[test]
fn a_later_part_of_a_branch_is_told_which_level_one_node_it_belongs_to() {
    let (job, structure) = job("course-g3");
    let p = plan(&job, &structure, 3_500).unwrap();
    let later = p
        .batches
        .iter()
        .find(|b| b.branch == Some(1) && !b.paths.contains(&"modules.1".to_string()))
        .unwrap();
    let user = request_for(&job, &structure, &p, later).user;
    let module = p.element("modules.1").unwrap();
    let context = format!(
        "These elements belong to module modules.1: {}\n",
        module.title
    );
    assert!(user.contains(&context), "{user}");
    assert!(!user.contains("belong to module modules.0"));
    let root = request_for(&job, &structure, &p, &p.batches[0]).user;
    assert!(!root.contains("These elements belong to"), "{root}");
}

#[test]
fn a_novel_is_written_warmer_than_the_other_types() {
    for (name, temperature) in [("novel-g2", 0.8), ("course-g2", 0.5), ("quiz-g2", 0.5)] {
        let (job, structure) = job(name);
        let p = plan_of(&job, &structure);
        assert_eq!(
            request_for(&job, &structure, &p, &p.batches[0]).temperature,
            temperature,
            "{name}"
        );
    }
}

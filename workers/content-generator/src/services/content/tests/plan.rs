//! `plan` over the fixtures: elements, targets, priorities, batches.

use super::*;

#[test]
fn targets_sum_to_the_estimates_of_the_written_sections() {
    for (name, _) in FIXTURES {
        let (job, structure) = job(name);
        let plan = plan(&job, &structure, ROOMY).unwrap();
        let by_section = job.word_count_estimates["bySection"].as_object().unwrap();
        let mut sum = 0u64;
        for (section, words) in by_section {
            let of: Vec<_> = plan
                .elements
                .iter()
                .filter(|e| &e.section == section)
                .collect();
            assert!(!of.is_empty(), "{name}: no element of {section}");
            let targets: u64 = of.iter().map(|e| u64::from(e.target_words)).sum();
            // Rounding per element moves the sum by half a word each at most.
            let slack = of.len() as u64;
            assert!(
                targets.abs_diff(words.as_u64().unwrap()) <= slack,
                "{name} {section}: {targets} vs {words}"
            );
            sum += targets;
        }
        let total = job.word_count_estimates["total"].as_u64().unwrap();
        assert!(
            sum.abs_diff(total) <= plan.elements.len() as u64,
            "{name}: {sum} vs {total}"
        );
    }
}

#[test]
fn a_section_the_estimates_lack_or_give_no_words_takes_the_levels_default() {
    for words in [None, Some(json!(0))] {
        let mut i = input("course-g2");
        let by_section = i["wordCountEstimates"]["bySection"]
            .as_object_mut()
            .unwrap();
        match words {
            None => by_section.remove("lessonContent"),
            Some(w) => by_section.insert("lessonContent".into(), w),
        };
        let (job, structure) = job_with(i, json!({}));
        let plan = plan(&job, &structure, ROOMY).unwrap();
        let lesson = plan
            .elements
            .iter()
            .find(|e| e.element_type == "lesson")
            .unwrap();
        assert_eq!(
            lesson.target_words,
            StructureType::Course.spec().levels[1].default_words
        );
    }
}

#[test]
fn one_batch_for_the_root_then_one_per_level_one_node() {
    let (job, structure) = job("course-g3");
    let plan = plan(&job, &structure, ROOMY).unwrap();
    let modules = structure["modules"].as_array().unwrap().len();
    assert_eq!(plan.batches.len(), 1 + modules);
    assert_eq!(
        (plan.batches[0].branch, plan.batches[0].paths.clone()),
        (None, vec![ROOT_PATH.to_string()])
    );
    for (i, b) in plan.batches.iter().enumerate().skip(1) {
        assert_eq!((b.index, b.branch), (i, Some(i - 1)));
        assert_eq!(b.paths[0], format!("modules.{}", i - 1));
        assert!(b
            .paths
            .iter()
            .all(|p| p.starts_with(&format!("modules.{}", i - 1))));
    }
    let expected: u32 = plan.elements.iter().map(Element::expected_tokens).sum();
    assert_eq!(plan.expected_output_tokens, expected);
    let lesson = plan.element("modules.0.lessons.0").unwrap();
    assert_eq!(
        lesson.expected_tokens(),
        (f64::from(lesson.target_words) * TOKENS_PER_WORD).ceil() as u32 + TOKENS_PER_ELEMENT
    );
}

#[test]
fn a_batch_over_the_limit_splits_into_consecutive_parts_of_whole_subtrees() {
    let (job, structure) = job("course-g3");
    let whole = plan(&job, &structure, ROOMY).unwrap();
    // A lesson with its activities is ~2,400 tokens, a module ~450: at 3,500
    // a part holds one lesson's subtree, at 5,000 the module and one, or two.
    for limit in [3_500, 5_000] {
        let split = plan(&job, &structure, limit).unwrap();
        assert!(split.batches.len() > whole.batches.len());
        assert_eq!(split.expected_output_tokens, whole.expected_output_tokens);
        for b in &split.batches {
            assert!(b.expected_tokens <= limit && !b.paths.is_empty(), "{b:?}");
        }
        for original in whole.batches.iter().skip(1) {
            let parts: Vec<_> = split
                .batches
                .iter()
                .filter(|b| b.branch == original.branch)
                .collect();
            assert!(parts.len() > 1, "{original:?}");
            // Consecutive: the parts, in order, are the branch's elements in order.
            let joined: Vec<String> = parts.iter().flat_map(|b| b.paths.clone()).collect();
            assert_eq!(joined, original.paths);
            assert!(parts.windows(2).all(|w| w[1].index == w[0].index + 1));
            // The level-1 node opens the first part; every later part starts a lesson's subtree.
            assert_eq!(parts[0].paths[0], original.paths[0]);
            for part in &parts[1..] {
                assert_eq!(
                    split.element(&part.paths[0]).unwrap().level,
                    2,
                    "{limit}: {part:?}"
                );
            }
        }
    }
}

#[test]
fn a_subtree_too_large_for_any_part_is_split_between_its_elements_up_to_the_limit() {
    let (job, structure) = job("course-g3");
    let whole = plan(&job, &structure, ROOMY).unwrap();
    let tokens = |p: &str| whole.element(p).unwrap().expected_tokens();
    // Exactly the module and its first lesson: the lesson's activities go on.
    let limit = tokens("modules.0") + tokens("modules.0.lessons.0");
    let split = plan(&job, &structure, limit).unwrap();
    let first = split.batches.iter().find(|b| b.branch == Some(0)).unwrap();
    assert_eq!(first.paths, ["modules.0", "modules.0.lessons.0"]);
    assert_eq!(first.expected_tokens, limit);
    let next = &split.batches[first.index + 1];
    assert_eq!(next.paths[0], "modules.0.lessons.0.activities.0");
    // Below every element's size, each goes alone and no part is empty.
    let alone = plan(&job, &structure, 10).unwrap();
    assert_eq!(alone.batches.len(), alone.elements.len());
    assert!(alone.batches.iter().all(|b| b.paths.len() == 1));
}

#[test]
fn a_section_listed_as_both_or_neither_is_required() {
    let mut i = input("quiz-g2");
    i["contentMetadata"]["contentSpecs"] = json!({
        "requiredSections": ["categoryIntroductions"],
        "optionalSections": ["categoryIntroductions", "assessments"]
    });
    let (job, structure) = job_with(i.clone(), json!({}));
    let p = plan(&job, &structure, ROOMY).unwrap();
    let priority = |p: &Plan, section: &str| {
        p.elements
            .iter()
            .find(|e| e.section == section)
            .unwrap()
            .priority
    };
    assert_eq!(priority(&p, "categoryIntroductions"), Priority::Required);
    assert_eq!(priority(&p, "assessments"), Priority::Optional);
    assert_eq!(priority(&p, "quizInstructions"), Priority::Required);
    i["contentMetadata"]["contentSpecs"] = json!({"optionalSections": ["assessments"]});
    let (job, structure) = job_with(i, json!({}));
    let p = plan(&job, &structure, ROOMY).unwrap();
    assert_eq!(priority(&p, "categoryIntroductions"), Priority::Required);
}

#[test]
fn an_element_is_named_by_its_levels_title_field() {
    let (job, structure) = job("course-g3");
    let p = plan(&job, &structure, ROOMY).unwrap();
    let title = |path: &str| p.element(path).unwrap().title.clone();
    assert_eq!(title(ROOT_PATH), structure["title"].as_str().unwrap());
    assert_eq!(
        title("modules.1"),
        structure["modules"][1]["title"].as_str().unwrap()
    );
    assert_eq!(
        title("modules.1.lessons.0.activities.1"),
        structure["modules"][1]["lessons"][0]["activities"][1]["description"]
            .as_str()
            .unwrap()
    );
    let (job, structure) = self::job("quiz-g2");
    let p = plan(&job, &structure, ROOMY).unwrap();
    assert_eq!(
        p.element("categories.0.questions.2").unwrap().title,
        structure["categories"][0]["questions"][2]["question"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        p.element("categories.1").unwrap().title,
        structure["categories"][1]["name"].as_str().unwrap()
    );
}
#[test]
fn an_element_larger_than_the_limit_goes_alone() {
    let (job, structure) = job("novel-g3");
    let plan = plan(&job, &structure, 500).unwrap();
    let scene = plan
        .elements
        .iter()
        .find(|e| e.element_type == "scene")
        .unwrap();
    assert!(scene.expected_tokens() > 500);
    let b = plan
        .batches
        .iter()
        .find(|b| b.paths.contains(&scene.path))
        .unwrap();
    assert_eq!(b.paths, vec![scene.path.clone()]);
}

#[test]
fn include_optional_false_drops_optional_sections() {
    for (name, optional) in [
        ("quiz-g2", "categoryIntroductions"),
        ("novel-g2", "actSummaries"),
        ("knowledge_map-g3", "details"),
    ] {
        let (job, structure) = job(name);
        let with = plan(&job, &structure, ROOMY).unwrap();
        let of = |p: &Plan| p.elements.iter().filter(|e| e.section == optional).count();
        assert!(of(&with) > 0, "{name}");
        assert!(with
            .elements
            .iter()
            .all(|e| (e.section == optional) == (e.priority == Priority::Optional)));
        let (job, structure) = job_with(input(name), json!({"includeOptional": false}));
        let without = plan(&job, &structure, ROOMY).unwrap();
        assert_eq!(of(&without), 0, "{name}");
        assert_eq!(
            without.elements.len(),
            with.elements.len() - of(&with),
            "{name}"
        );
        assert!(without.batches.iter().all(|b| !b.paths.is_empty()));
        // What remains is still written and scores in full.
        let done = assemble(&job, &structure, &without, &answers(&without, 1.0));
        assert_eq!(done.quality["score"], 1.0, "{name}");
    }
}

#[test]
fn a_structure_without_its_level_one_list_is_a_422_naming_it() {
    let (job, _) = job("course-g2");
    for (structure, path) in [
        (json!({"title": "T"}), "modules"),
        (json!({"modules": []}), "modules"),
        (json!({"modules": {"a": 1}}), "modules"),
        (json!([1]), "root"),
        (
            json!({"modules": [{"title": "M", "lessons": "none"}]}),
            "modules.0.lessons",
        ),
        (json!({"modules": [{"title": "M"}, 3]}), "modules.1"),
    ] {
        let e = plan(&job, &structure, ROOMY).unwrap_err();
        assert_eq!(
            (e.status(), e.code),
            (422, "invalid_structure"),
            "{structure}"
        );
        assert_eq!(e.details.unwrap()["path"], path, "{structure}");
    }
    // A quiz outline handed in as a course has no modules.
    let (_, quiz) = self::job("quiz-g2");
    assert!(e_message(&job, &quiz).contains("`modules`"));
}

fn e_message(job: &GenerateJob, structure: &Value) -> String {
    plan(job, structure, ROOMY).unwrap_err().message
}

#[test]
fn the_largest_targets_allowed_keep_the_token_arithmetic_exact() {
    let mut i = input("novel-g3");
    for words in i["wordCountEstimates"]["bySection"]
        .as_object_mut()
        .unwrap()
        .values_mut()
    {
        *words = json!(crate::types::request::MAX_SECTION_WORDS);
    }
    let (job, structure) = job_with(i, json!({}));
    let plan = plan(&job, &structure, 10_000).unwrap();
    let sum: u64 = plan
        .elements
        .iter()
        .map(|e| u64::from(e.expected_tokens()))
        .sum();
    assert_eq!(u64::from(plan.expected_output_tokens), sum);
    assert_eq!(plan.element(ROOT_PATH).unwrap().target_words, 2_000_000);
}

//! `check_batch`, `assemble` and `count_words`: answers in, content and quality out.

use super::*;

#[test]
fn check_batch_refuses_a_missing_an_extra_or_a_duplicate_path() {
    let (job, structure) = job("quiz-g2");
    let plan = plan_of(&job, &structure);
    let b = &plan.batches[1];
    let good = answer(&plan, b, 1.0);
    let checked = check_batch(b, &good).unwrap();
    assert_eq!(checked["elements"].as_array().unwrap().len(), b.paths.len());

    let mut missing = good.clone();
    missing["elements"].as_array_mut().unwrap().pop();
    let problems = check_batch(b, &missing).unwrap_err();
    assert_eq!(
        problems,
        vec![format!(
            "{}: missing; write its content",
            b.paths.last().unwrap()
        )]
    );

    let mut extra = good.clone();
    extra["elements"]
        .as_array_mut()
        .unwrap()
        .push(json!({"path": "categories.9", "content": "x"}));
    assert!(check_batch(b, &extra).unwrap_err()[0]
        .starts_with("categories.9: not an element of this batch"));

    let mut twice = good.clone();
    let first = twice["elements"][0].clone();
    twice["elements"].as_array_mut().unwrap().push(first);
    assert_eq!(
        check_batch(b, &twice).unwrap_err(),
        vec![format!(
            "{}: answered 2 times; answer each path exactly once",
            b.paths[0]
        )]
    );

    let mut blank = good.clone();
    blank["elements"][1]["content"] = json!("  \n ");
    assert_eq!(
        check_batch(b, &blank).unwrap_err(),
        vec![format!("{}: the content is empty", b.paths[1])]
    );

    let mut typed = good;
    typed["elements"][0]["content"] = json!(5);
    typed["elements"][1]["path"] = json!(null);
    let problems = check_batch(b, &typed).unwrap_err();
    assert!(
        problems.contains(&"elements[1]: `path` must be a string".to_string()),
        "{problems:?}"
    );
    assert!(
        problems.contains(&format!("{}: `content` must be a string", b.paths[0])),
        "{problems:?}"
    );
    assert!(check_batch(b, &json!({"summary": "s"})).is_err());
}

#[test]
fn check_batch_trims_and_orders_the_answer_as_the_batch() {
    let (job, structure) = job("course-g2");
    let plan = plan_of(&job, &structure);
    let b = &plan.batches[1];
    let mut items: Vec<Value> = b
        .paths
        .iter()
        .map(|p| json!({"path": p, "content": format!("  text of {p}\n")}))
        .collect();
    items.reverse();
    let checked = check_batch(b, &json!({"elements": items})).unwrap();
    let paths: Vec<_> = checked["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, b.paths);
    assert_eq!(
        checked["elements"][0]["content"],
        format!("text of {}", b.paths[0])
    );
}

#[test]
fn a_quizs_questions_options_and_answers_survive_assembly() {
    let (job, structure) = job("quiz-g2");
    let plan = plan_of(&job, &structure);
    let done = assemble(&job, &structure, &plan, &answers(&plan, 1.0));
    let categories = structure["categories"].as_array().unwrap();
    for (c, category) in categories.iter().enumerate() {
        for (q, question) in category["questions"].as_array().unwrap().iter().enumerate() {
            let out = &done.content["categories"][c]["questions"][q];
            for key in [
                "question",
                "options",
                "answer",
                "explanation",
                "points",
                "type",
            ] {
                assert_eq!(
                    out[key], question[key],
                    "categories.{c}.questions.{q}.{key}"
                );
            }
            assert_eq!(out["generated"]["section"], "assessments");
            assert!(out["generated"]["text"]
                .as_str()
                .unwrap()
                .starts_with("word"));
        }
    }
    assert_eq!(done.content["overview"]["section"], "quizInstructions");
    assert_eq!(done.content["title"], structure["title"]);
}

#[test]
fn every_written_element_carries_its_text_words_and_target() {
    for (name, _) in FIXTURES {
        let (job, structure) = job(name);
        let plan = plan_of(&job, &structure);
        let done = assemble(&job, &structure, &plan, &answers(&plan, 1.0));
        for e in &plan.elements {
            let node = node_at(&done.content, &e.path).unwrap();
            let g = if e.path == ROOT_PATH {
                &node["overview"]
            } else {
                &node["generated"]
            };
            assert_eq!(g["targetWords"], e.target_words, "{name} {}", e.path);
            assert_eq!(
                g["words"].as_u64(),
                Some(u64::from(e.target_words)),
                "{name} {}",
                e.path
            );
            assert_eq!(g["section"], e.section.as_str());
        }
        let s = &done.summary;
        assert_eq!(
            (s["elements"].as_u64(), s["elementsWritten"].as_u64()),
            (
                Some(plan.elements.len() as u64),
                Some(plan.elements.len() as u64)
            )
        );
        assert_eq!(s["wordsWritten"], s["wordsTargeted"], "{name}");
        let q = &done.quality;
        assert_eq!(
            (
                q["score"].as_f64(),
                q["passed"].as_bool(),
                q["problemCount"].as_u64()
            ),
            (Some(1.0), Some(true), Some(0)),
            "{name}"
        );
    }
}

#[test]
fn quality_falls_when_content_is_short_or_missing() {
    let (job, structure) = job("course-g3");
    let plan = plan_of(&job, &structure);
    let short = assemble(&job, &structure, &plan, &answers(&plan, 0.1));
    let q = &short.quality;
    assert_eq!(
        (q["coverage"].as_f64(), q["lengthWithinTolerance"].as_f64()),
        (Some(1.0), Some(0.0))
    );
    assert_eq!(
        (q["score"].as_f64(), q["passed"].as_bool()),
        (Some(COVERAGE_WEIGHT), Some(false))
    );
    assert_eq!(q["problemCount"].as_u64(), Some(plan.elements.len() as u64));
    assert_eq!(q["problems"].as_array().unwrap().len(), MAX_PROBLEMS);
    let lesson = plan.element("modules.0.lessons.0").unwrap();
    let written = (f64::from(lesson.target_words) * 0.1).round();
    assert!(
        q["problems"].as_array().unwrap().contains(&json!(format!(
            "modules.0.lessons.0: {written} words, target {}",
            lesson.target_words
        ))),
        "{q}"
    );

    // Within tolerance (±35 %) passes; a branch never answered lowers coverage.
    let mut partial = answers(&plan, 0.7);
    let lost = partial.remove(1);
    let done = assemble(&job, &structure, &plan, &partial);
    let q = &done.quality;
    assert_eq!(q["lengthWithinTolerance"].as_f64(), Some(1.0));
    let lost_count = plan.batches[lost.0].paths.len() as f64;
    let coverage = (plan.elements.len() as f64 - lost_count) / plan.elements.len() as f64;
    assert!((q["coverage"].as_f64().unwrap() - coverage).abs() < 1e-4);
    let score = COVERAGE_WEIGHT * coverage + LENGTH_WEIGHT;
    assert!((q["score"].as_f64().unwrap() - score).abs() < 1e-4, "{q}");
    assert!(q["problems"][0]
        .as_str()
        .unwrap()
        .ends_with(": not written"));
    assert!(node_at(&done.content, &plan.batches[lost.0].paths[0])
        .unwrap()
        .get("generated")
        .is_none());
    // A tighter tolerance refuses the same text.
    let (strict, _) = job_with(input("course-g3"), json!({"wordTolerance": 0.2}));
    let done = assemble(&strict, &structure, &plan, &answers(&plan, 0.7));
    assert_eq!(done.quality["lengthWithinTolerance"].as_f64(), Some(0.0));
}

#[test]
fn the_pass_mark_is_the_inputs_min_quality_score() {
    let mut i = input("course-g2");
    i["contentMetadata"]["qualityRequirements"]["minQualityScore"] = json!(0.5);
    let (job, structure) = job_with(i, json!({}));
    let plan = plan_of(&job, &structure);
    let done = assemble(&job, &structure, &plan, &answers(&plan, 0.1));
    assert_eq!(
        (
            done.quality["score"].as_f64(),
            done.quality["passed"].as_bool()
        ),
        (Some(0.6), Some(true))
    );
}

#[test]
fn an_answer_for_paths_outside_its_batch_is_ignored() {
    let (job, structure) = job("course-g2");
    let plan = plan_of(&job, &structure);
    // Batch 0 (the root) answering for a module writes nothing on it.
    let stray = json!({"elements": [{"path": "modules.0", "content": "stray"}, {"path": "root", "content": "overview"}]});
    let done = assemble(&job, &structure, &plan, &[(0, stray), (99, json!({}))]);
    assert!(done.content["modules"][0].get("generated").is_none());
    assert_eq!(done.content["overview"]["text"], "overview");
    assert_eq!(done.summary["elementsWritten"], 1);
}

#[test]
fn count_words_counts_runs_with_a_letter_or_digit() {
    assert_eq!(count_words("One two  three\nfour\tfive"), 5);
    assert_eq!(count_words("## Heading\n- item one\n- item 2 — done."), 6);
    assert_eq!(count_words("  "), 0);
    assert_eq!(count_words("naïve café"), 2);
}

#[test]
fn the_summary_counts_targets_and_words_by_section_and_priority() {
    let (job, structure) = job("quiz-g2");
    let plan = plan_of(&job, &structure);
    // Every question written in full, every category introduction at half.
    let mut answers = answers(&plan, 1.0);
    for (_, answer) in &mut answers {
        for item in answer["elements"].as_array_mut().unwrap() {
            let e = plan.element(item["path"].as_str().unwrap()).unwrap();
            if e.element_type == "category" {
                let half = (e.target_words / 2) as usize;
                item["content"] = json!(vec!["w"; half].join(" "));
            }
        }
    }
    let done = assemble(&job, &structure, &plan, &answers);
    let count = |section: &str| {
        plan.elements
            .iter()
            .filter(|e| e.section == section)
            .count() as u64
    };
    let target = |section: &str| -> u64 {
        plan.elements
            .iter()
            .filter(|e| e.section == section)
            .map(|e| u64::from(e.target_words))
            .sum()
    };
    let intro = &done.summary["bySection"]["categoryIntroductions"];
    assert_eq!(
        intro["elements"].as_u64(),
        Some(count("categoryIntroductions"))
    );
    assert_eq!(
        intro["elementsWritten"].as_u64(),
        Some(count("categoryIntroductions"))
    );
    assert_eq!(
        intro["target"].as_u64(),
        Some(target("categoryIntroductions"))
    );
    assert_eq!(
        intro["written"].as_u64(),
        Some(target("categoryIntroductions") / 2)
    );
    let questions = &done.summary["bySection"]["assessments"];
    assert_eq!(questions["written"].as_u64(), Some(target("assessments")));
    // Category introductions are the quiz's optional section.
    let optional = &done.summary["byPriority"]["optional"];
    assert_eq!(
        (optional["target"].clone(), optional["written"].clone()),
        (intro["target"].clone(), intro["written"].clone())
    );
    let required = &done.summary["byPriority"]["required"];
    assert_eq!(
        required["target"].as_u64(),
        Some(target("assessments") + target("quizInstructions"))
    );
    assert_eq!(
        done.summary["wordsWritten"].as_u64(),
        Some(required["written"].as_u64().unwrap() + optional["written"].as_u64().unwrap())
    );
}

//! The domain run over real granulator outputs (tests/fixtures, captured
//! from the granulator under `wrangler dev` with the mock AI).

use super::*;
use crate::types::request::{ExecuteRequest, GenerateJob};
use crate::types::structure::StructureType;
use serde_json::{json, Value};

const FIXTURES: [(&str, &str); 11] = [
    (
        "course-g2",
        include_str!("../../../tests/fixtures/course-g2.json"),
    ),
    (
        "course-g3",
        include_str!("../../../tests/fixtures/course-g3.json"),
    ),
    (
        "quiz-g2",
        include_str!("../../../tests/fixtures/quiz-g2.json"),
    ),
    (
        "novel-g2",
        include_str!("../../../tests/fixtures/novel-g2.json"),
    ),
    (
        "novel-g3",
        include_str!("../../../tests/fixtures/novel-g3.json"),
    ),
    (
        "workflow-g2",
        include_str!("../../../tests/fixtures/workflow-g2.json"),
    ),
    (
        "workflow-g3",
        include_str!("../../../tests/fixtures/workflow-g3.json"),
    ),
    (
        "knowledge_map-g2",
        include_str!("../../../tests/fixtures/knowledge_map-g2.json"),
    ),
    (
        "knowledge_map-g3",
        include_str!("../../../tests/fixtures/knowledge_map-g3.json"),
    ),
    (
        "learning_path-g2",
        include_str!("../../../tests/fixtures/learning_path-g2.json"),
    ),
    (
        "learning_path-g3",
        include_str!("../../../tests/fixtures/learning_path-g3.json"),
    ),
];

/// A batch ceiling no fixture's branch reaches.
const ROOMY: u32 = 1_000_000;

fn input(name: &str) -> Value {
    let (_, text) = FIXTURES.iter().find(|(n, _)| *n == name).unwrap();
    serde_json::from_str(text).unwrap()
}

fn job_with(input: Value, params: Value) -> (GenerateJob, Value) {
    let job =
        ExecuteRequest::parse(&json!({"action": "generate", "input": input, "params": params}))
            .unwrap()
            .job;
    let structure = job.structure.clone().unwrap();
    (job, structure)
}

fn job(name: &str) -> (GenerateJob, Value) {
    job_with(input(name), json!({}))
}

/// What a model would answer for a batch: each element at `share` of its target.
fn answer(plan: &Plan, batch: &Batch, share: f64) -> Value {
    let elements: Vec<Value> = batch
        .paths
        .iter()
        .map(|p| {
            let words = (f64::from(plan.element(p).unwrap().target_words) * share).round() as usize;
            json!({"path": p, "content": vec!["word"; words.max(1)].join(" ")})
        })
        .collect();
    json!({"elements": elements})
}

fn answers(plan: &Plan, share: f64) -> Vec<(usize, Value)> {
    plan.batches
        .iter()
        .map(|b| (b.index, check_batch(b, &answer(plan, b, share)).unwrap()))
        .collect()
}

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
fn a_section_the_estimates_lack_takes_the_levels_default() {
    let mut i = input("course-g2");
    i["wordCountEstimates"]["bySection"]
        .as_object_mut()
        .unwrap()
        .remove("lessonContent");
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
    // A lesson with its activities is ~2,400 tokens: two of them do not fit.
    let limit = 3_500;
    let split = plan(&job, &structure, limit).unwrap();
    assert!(split.batches.len() > whole.batches.len());
    assert_eq!(split.expected_output_tokens, whole.expected_output_tokens);
    for b in &split.batches {
        assert!(b.expected_tokens <= limit || b.paths.len() == 1, "{b:?}");
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
            assert_eq!(split.element(&part.paths[0]).unwrap().level, 2, "{part:?}");
        }
    }
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

fn plan_of(job: &GenerateJob, structure: &Value) -> Plan {
    plan(job, structure, ROOMY).unwrap()
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

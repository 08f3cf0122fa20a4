//! The fan-out's rules, natively: when an outline fans out, what the
//! skeleton and each branch are asked for and accept, the merge, titles
//! across branches, and the budget split.

use super::*;
use crate::services::offline::generate_with_counts;
use crate::services::validation::assess;
use crate::types::outline::Node;
use crate::types::rules::StructureRules;
use crate::types::rules::{level_counts, Constraints};
use crate::types::structure::Granularity;
use serde_json::json;

mod pieces;

fn counts(st: StructureType, g: u8) -> Vec<u32> {
    level_counts(
        st,
        Granularity::new(g as i64).unwrap(),
        &StructureRules::contract(st),
        &Constraints::default(),
    )
}

/// Branches as the checks hand them to the merge.
fn typed(st: StructureType, branches: &[Value]) -> Vec<Node> {
    branches
        .iter()
        .map(|b| Node::from_canonical(st, 0, b).unwrap())
        .collect()
}

fn expected(st: StructureType, g: u8) -> u32 {
    st.spec().expected_output_tokens(&counts(st, g))
}

/// A complete outline split as a fan-out would write it.
fn parts(st: StructureType, c: &[u32], topic: &str) -> (Skeleton, Vec<Value>) {
    let whole = generate_with_counts(st, c, topic).to_value();
    let level = &st.spec().levels[0];
    let branches = whole[level.key].as_array().unwrap().clone();
    let mut root = whole.as_object().unwrap().clone();
    root.remove(level.key);
    let nodes = branches
        .iter()
        .map(|b| {
            (
                b[level.title_field].as_str().unwrap().to_string(),
                "one line".to_string(),
            )
        })
        .collect();
    (
        Skeleton {
            root,
            nodes,
            children: vec![],
        },
        branches,
    )
}

#[test]
fn auto_keeps_every_type_at_granularity_1_and_2_in_one_call_and_fans_out_a_granularity_5_course() {
    for st in StructureType::ALL {
        for g in [1, 2] {
            assert!(
                !fans_out(None, &counts(st, g), expected(st, g), false),
                "{st:?} g{g} ({} tokens) must stay one call under auto",
                expected(st, g)
            );
        }
    }
    // The three-act novel at granularity 3 (~5,700 tokens: two minutes at
    // 50 tokens/s, past the Resource Manager's 92 s of tries) fans out; every
    // other type's granularity 3 stays one call.
    assert!(fans_out(
        None,
        &[3, 5, 3],
        StructureType::Novel
            .spec()
            .expected_output_tokens(&[3, 5, 3]),
        false
    ));
    for st in [
        StructureType::Course,
        StructureType::Quiz,
        StructureType::Workflow,
        StructureType::KnowledgeMap,
        StructureType::LearningPath,
    ] {
        assert!(
            !fans_out(None, &counts(st, 3), expected(st, 3), false),
            "{st:?} g3"
        );
    }
    let c5 = counts(StructureType::Course, 5);
    assert_eq!(c5, vec![8, 4, 3]);
    assert!(fans_out(
        Some(Strategy::Auto),
        &c5,
        expected(StructureType::Course, 5),
        false
    ));
    assert!(fans_out(
        None,
        &counts(StructureType::Novel, 5),
        expected(StructureType::Novel, 5),
        false
    ));
}

/// Under `auto`, which (type, granularity) fan out: a type fans out from one
/// granularity up (the expected tokens grow with it), and the table is this
/// one; a change to a type's counts, its token estimates or the threshold
/// that moves a cell shows here, with the estimates that moved it.
#[test]
fn auto_fans_out_from_one_granularity_up_as_this_table_says() {
    let table: Vec<(StructureType, Vec<u8>)> = vec![
        (StructureType::Course, vec![5]),
        (StructureType::Quiz, vec![5]),
        (StructureType::Novel, vec![3, 4, 5]),
        (StructureType::Workflow, vec![4, 5]),
        (StructureType::KnowledgeMap, vec![5]),
        (StructureType::LearningPath, vec![5]),
    ];
    let mut seen = Vec::new();
    for st in StructureType::ALL {
        let tokens: Vec<u32> = (1..=5).map(|g| expected(st, g)).collect();
        assert!(
            tokens.windows(2).all(|w| w[0] <= w[1]),
            "{st:?}: expected output tokens fall as granularity rises: {tokens:?}"
        );
        let fanned: Vec<u8> = (1..=5)
            .filter(|&g| fans_out(None, &counts(st, g), expected(st, g), false))
            .collect();
        assert!(
            fanned.windows(2).all(|w| w[1] == w[0] + 1) && fanned.last().is_none_or(|&g| g == 5),
            "{st:?} fans out at {fanned:?}: not from one granularity up ({tokens:?} tokens)"
        );
        seen.push((st, fanned, tokens));
    }
    let got: Vec<(StructureType, Vec<u8>)> =
        seen.iter().map(|(st, f, _)| (*st, f.clone())).collect();
    assert_eq!(
        got, table,
        "expected output tokens per granularity 1..=5: {seen:?}"
    );
}

#[test]
fn explicit_strategies_win_except_where_nothing_can_run_in_parallel() {
    let c3 = counts(StructureType::Course, 3);
    let e3 = expected(StructureType::Course, 3);
    assert!(fans_out(Some(Strategy::Fanout), &c3, e3, false));
    let c5 = counts(StructureType::Course, 5);
    assert!(!fans_out(Some(Strategy::Single), &c5, 99_999, false));
    // Granularity 1: one level, nothing below the skeleton.
    assert!(!fans_out(Some(Strategy::Fanout), &[5], 99_999, false));
    assert!(!fans_out(Some(Strategy::Fanout), &[1, 5, 3], 99_999, false));
    // The offline provider answers at once.
    assert!(!fans_out(Some(Strategy::Fanout), &c5, 99_999, true));
}

#[test]
fn the_skeleton_asks_for_the_title_and_exactly_the_level_1_titles_with_summaries() {
    let st = StructureType::Course;
    let schema = skeleton_schema(st, &[8, 4, 3], 1);
    let modules = &schema["properties"]["modules"];
    assert_eq!(
        (modules["minItems"].as_u64(), modules["maxItems"].as_u64()),
        (Some(8), Some(8))
    );
    assert_eq!(modules["items"]["required"], json!(["title"]));
    // Every title first, then a summary for each: a branch starts once its own is in.
    let summaries = &schema["properties"]["summaries"];
    assert_eq!(summaries["maxItems"], 8);
    assert_eq!(summaries["items"]["required"], json!(["summary"]));
    assert_eq!(schema["required"], json!(["modules", "summaries", "title"]));
    let prompt = skeleton_prompt(st, "JOB PROMPT", &[8, 4, 3], 1);
    assert!(prompt.starts_with("JOB PROMPT"));
    assert!(prompt.contains("exactly 8 modules") && prompt.contains("lessons and activities"));
    assert!(prompt.ends_with("Part: skeleton."));
}

#[test]
fn the_root_call_writes_every_other_root_field_true_to_the_skeleton() {
    let st = StructureType::Course;
    let schema = root_schema(st, &StructureRules::contract(st));
    assert!(schema["properties"].get("title").is_none());
    assert_eq!(
        schema["required"],
        json!([
            "description",
            "duration",
            "learningOutcomes",
            "prerequisites"
        ])
    );
    let (skeleton, _) = parts(st, &[3, 2, 1], "Rust");
    let prompt = root_prompt(st, "Rust <b>", "devs", &skeleton, 3);
    assert!(prompt.contains(&skeleton.nodes[2].0) && prompt.ends_with("Part: root."));
    assert!(prompt.contains("<topic>Rust b</topic>") && !prompt.contains("JOB PROMPT"));
    let root = check_root(
        st,
        &json!({"description": "d", "duration": 8, "learning_outcomes": "x"}),
    )
    .unwrap();
    assert_eq!(
        root,
        json!({"description": "d", "duration": "8", "prerequisites": [], "learningOutcomes": ["x"]})
    );
    assert!(check_root(st, &json!(["no"])).is_err());
}

#[test]
fn a_skeleton_with_the_wrong_count_or_repeated_titles_goes_back_to_the_model() {
    let st = StructureType::Course;
    let ok = json!({"title": "Rust", "description": "d", "duration": "8 weeks", "prerequisites": [], "learningOutcomes": ["x"],
        "modules": [{"title": "A", "summary": "a"}, {"title": "B", "summary": "b"}, {"title": "C", "summary": "c"}]});
    // One lesson each: nothing to write in parts, so no lesson titles in the skeleton.
    let checked = check_skeleton(st, &[3, 1], 1, &ok).unwrap();
    let skeleton = skeleton_of(st, &checked);
    assert_eq!(skeleton.nodes[1], ("B".to_string(), "b".to_string()));
    assert_eq!(skeleton.root["title"], "Rust");
    assert!(!skeleton.root.contains_key("modules"));
    let short = check_skeleton(st, &[4, 1], 1, &ok).unwrap_err();
    assert!(short[0].contains("exactly 4"), "{short:?}");
    let mut twice = ok.clone();
    twice["modules"][2]["title"] = json!("a");
    assert!(check_skeleton(st, &[3, 1], 1, &twice).unwrap_err()[0].contains("distinct"));
}

#[test]
fn a_branch_is_one_level_1_node_with_its_subtree_under_the_skeleton_title() {
    let st = StructureType::Course;
    let rules = StructureRules::contract(st);
    let schema = branch_schema(st, &[8, 4, 3], &rules);
    assert!(schema["properties"]["lessons"]["items"]["properties"]["activities"].is_object());
    let (skeleton, branches) = parts(st, &[3, 4, 3], "Rust");
    // A model that renames its node gets the skeleton's title back.
    let mut answer = branches[1].clone();
    answer["title"] = json!("Something else");
    let node = check_branch(st, &[3, 4, 3], &rules, &skeleton.nodes[1].0, &answer)
        .unwrap()
        .to_value();
    assert_eq!(node["title"], json!(skeleton.nodes[1].0));
    assert_eq!(node["lessons"].as_array().unwrap().len(), 4);
    // Wrapped in the element's name, it is still found.
    assert!(check_branch(st, &[3, 4, 3], &rules, "T", &json!({"module": branches[0]})).is_ok());
    // Outside the level rules (a lesson has at most 4 activities): back to this branch's model.
    let mut crowded = branches[2].clone();
    let extra = crowded["lessons"][0]["activities"][0].clone();
    for _ in 0..3 {
        crowded["lessons"][0]["activities"]
            .as_array_mut()
            .unwrap()
            .push(extra.clone());
    }
    let problems = check_branch(st, &[3, 4, 3], &rules, "T", &crowded).unwrap_err();
    assert!(problems[0].contains("6 activities"), "{problems:?}");
    assert!(check_branch(st, &[3, 4, 3], &rules, "T", &json!("prose")).is_err());
}

#[test]
fn the_prompt_of_a_branch_carries_the_whole_skeleton_and_its_own_shape() {
    let st = StructureType::Course;
    let (skeleton, _) = parts(st, &[3, 4, 3], "Rust");
    let p = branch_prompt(
        st,
        "Rust <b>",
        "devs",
        &skeleton,
        1,
        &[3, 4, 3],
        &StructureRules::contract(st),
        "none",
    );
    for (title, _) in &skeleton.nodes {
        assert!(p.contains(title.as_str()), "the skeleton is context: {p}");
    }
    assert!(p.contains("<topic>Rust b</topic>"));
    assert!(p.contains(&format!("Branch: 2 of 3: {}", skeleton.nodes[1].0)));
    assert!(p.contains("Branch shape: lessons=4, activities=3."));
    assert!(p.contains("Allowed: 2-5 lessons per module; 1-4 activities per lesson."));
    assert_eq!(branch_label(1, 3), "branch 2/3");
}

#[test]
fn the_merge_is_the_outline_a_single_call_would_give() {
    for st in StructureType::ALL {
        let c = counts(st, 5);
        if c.len() < 2 {
            continue;
        }
        let whole = generate_with_counts(st, &c, "Merge topic");
        let (skeleton, branches) = parts(st, &c, "Merge topic");
        let root = Value::Object(skeleton.root.clone());
        let mut merged = merge(st, &skeleton, &root, typed(st, &branches));
        assert_eq!(dedupe_titles(&mut merged), 0);
        assert_eq!(merged, whole, "{st:?}");
        let g = Granularity::new(5).unwrap();
        let rules = StructureRules::contract(st);
        let report = assess(g, &rules, &Constraints::default(), &merged);
        assert!(
            report.violations.is_empty(),
            "{st:?}: {:?}",
            report.violations
        );
    }
}

#[test]
fn a_quiz_merge_counts_its_questions() {
    let st = StructureType::Quiz;
    let (mut skeleton, branches) = parts(st, &[3, 4], "Quiz");
    skeleton.root.insert("totalQuestions".into(), json!(99));
    assert_eq!(
        merge(st, &skeleton, &json!({}), typed(st, &branches)).to_value()["totalQuestions"],
        12
    );
}

#[test]
fn titles_repeated_across_branches_are_made_distinct_and_counts_kept() {
    let st = StructureType::Course;
    let (skeleton, mut branches) = parts(st, &[3, 2, 1], "Rust");
    // Every branch names its lessons alike, as branches written apart may.
    for b in &mut branches {
        for (i, lesson) in b["lessons"].as_array_mut().unwrap().iter_mut().enumerate() {
            lesson["title"] = json!(format!("Getting started {i}"));
        }
    }
    let mut merged = merge(st, &skeleton, &json!({}), typed(st, &branches));
    assert_eq!(dedupe_titles(&mut merged), 4);
    let merged = merged.to_value();
    let titles: Vec<&str> = merged["modules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["lessons"].as_array().unwrap())
        .map(|l| l["title"].as_str().unwrap())
        .collect();
    let distinct: HashSet<&str> = titles.iter().copied().collect();
    assert_eq!((titles.len(), distinct.len()), (6, 6));
    assert_eq!(
        titles[2],
        format!("Getting started 0 ({})", skeleton.nodes[1].0)
    );
    assert_eq!(merged["modules"][2]["lessons"].as_array().unwrap().len(), 2);
}

/// A three-act novel's skeleton with its chapter titles, and its whole outline.
fn novel() -> (Vec<u32>, Skeleton, Value) {
    let st = StructureType::Novel;
    let counts = vec![3, 7, 4];
    let whole = generate_with_counts(st, &counts, "Novel").to_value();
    let raw = json!({"title": whole["title"], "acts": whole["acts"].as_array().unwrap().iter().map(|a| json!({
        "title": a["title"], "summary": "s",
        "chapters": a["chapters"].as_array().unwrap().iter().map(|c| json!({"title": c["title"]})).collect::<Vec<_>>()
    })).collect::<Vec<_>>()});
    let skeleton = skeleton_of(st, &check_skeleton(st, &counts, 2, &raw).unwrap());
    (counts, skeleton, whole)
}

/// Every call of one job that the provider can serve from its prompt
/// cache starts with the same bytes: the shared context, exactly as long as
/// [`shared_context`] says, holding nothing of any one call.
#[test]
fn the_calls_of_one_job_share_a_byte_identical_prefix_with_nothing_call_specific_in_it() {
    let rules = |st| StructureRules::contract(st);
    // Branches of a course: one call per module.
    let st = StructureType::Course;
    let c = [8, 4, 3];
    let (mut skeleton, _) = parts(st, &c, "Rust");
    skeleton.nodes = (1..=8)
        .map(|i| {
            (
                format!("Module {i}"),
                format!("summary only module {i} has"),
            )
        })
        .collect();
    let shared = shared_context(st, "Rust <b>ownership</b>", "devs", &skeleton, 8);
    let mut prompts: Vec<String> = (0..8)
        .map(|i| {
            branch_prompt(
                st,
                "Rust <b>ownership</b>",
                "devs",
                &skeleton,
                i,
                &c,
                &rules(st),
                "none",
            )
        })
        .collect();
    prompts.push(root_prompt(
        st,
        "Rust <b>ownership</b>",
        "devs",
        &skeleton,
        8,
    ));
    let expected_len = shared.len();
    for p in &prompts {
        assert_eq!(&p[..expected_len], shared.as_str(), "{p}");
    }
    // The prefix is the longest the calls share: the next byte differs.
    let next: HashSet<&str> = prompts
        .iter()
        .map(|p| &p[expected_len..expected_len + 12])
        .collect();
    assert!(next.len() > 1, "{next:?}");
    // The user's topic is still wrapped and cleaned in it, and no call's own
    // position, summary or shape comes before it ends.
    assert!(
        shared.contains("<topic>Rust bownership/b</topic>"),
        "{shared}"
    );
    for own in [
        "Branch:",
        "Branch shape:",
        "summary only",
        "Part: root",
        "Allowed:",
    ] {
        assert!(!shared.contains(own), "{own} in {shared}");
    }
    // Parts of a three-act novel: the same, their own chapters after it.
    let st = StructureType::Novel;
    let (counts, skeleton, _) = novel();
    let p = pieces(&counts, 2);
    let shared = shared_context(st, "Novel", "readers", &skeleton, p.len());
    for piece in &p {
        let prompt = piece_prompt(
            st,
            "Novel",
            "readers",
            &skeleton,
            piece,
            &counts,
            &rules(st),
            "none",
        );
        assert!(prompt.starts_with(&shared), "{prompt}");
        assert!(!shared.contains(&skeleton.children[piece.node][0]));
        assert!(prompt[shared.len()..].contains(&skeleton.children[piece.node][0]));
    }
    assert!(root_prompt(st, "Novel", "readers", &skeleton, p.len()).starts_with(&shared));
}

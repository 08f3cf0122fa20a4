//! The parts a level-1 node is written in (`fanout::pieces`): the rule
//! that decides them, their prompts, schemas, checks and assembly.

use super::*;

#[test]
fn a_three_act_novel_s_acts_are_written_in_parts_with_their_chapter_titles_in_the_skeleton() {
    let p = pieces(&[3, 7, 4], 2);
    assert_eq!(p.len(), 6);
    let ranges: Vec<(usize, u32, u32)> = p.iter().map(|p| (p.node, p.from, p.to)).collect();
    assert_eq!(
        ranges,
        [
            (0, 0, 4),
            (0, 4, 7),
            (1, 0, 4),
            (1, 4, 7),
            (2, 0, 4),
            (2, 4, 7)
        ]
    );
    assert_eq!(p[3].label(), "branch 2/3 part 2/2");
    assert_eq!(pieces(&[5, 3, 2], 1)[4].label(), "branch 5/5");
    // The skeleton then lists every chapter title, distinct across the outline.
    let st = StructureType::Novel;
    let schema = skeleton_schema(st, &[3, 7, 4], 2);
    let chapters = &schema["properties"]["summaries"]["items"]["properties"]["chapters"];
    assert_eq!(
        (chapters["minItems"].as_u64(), chapters["maxItems"].as_u64()),
        (Some(7), Some(7))
    );
    assert!(skeleton_prompt(st, "p", &[3, 7, 4], 2).contains("exactly 7 chapters"));
}

#[test]
fn parts_of_a_node_are_checked_titled_from_the_skeleton_and_assembled_into_the_outline() {
    let st = StructureType::Novel;
    let rules = StructureRules::contract(st);
    let (counts, skeleton, whole) = novel();
    assert_eq!(skeleton.children[1].len(), 7);
    let p = pieces(&counts, 2);
    // Each part answers with its slice: the first with the act's fields, the others just chapters.
    let answers: Vec<Value> = p
        .iter()
        .map(|piece| {
            let act = &whole["acts"][piece.node];
            let mut chapters: Vec<Value> = act["chapters"].as_array().unwrap()
                [piece.from as usize..piece.to as usize]
                .to_vec();
            chapters[0]["title"] = json!("A model's own title");
            match piece.part {
                0 => {
                    let mut node = act.clone();
                    node["chapters"] = Value::Array(chapters);
                    node
                }
                _ => json!({"chapters": chapters}),
            }
        })
        .collect();
    let checked: Vec<PieceAnswer> = p
        .iter()
        .zip(&answers)
        .map(|(piece, a)| check_piece(st, &counts, &rules, &skeleton, piece, a).unwrap())
        .collect();
    let acts = assemble(checked);
    let root = Value::Object(skeleton.root.clone());
    let mut merged = merge(st, &skeleton, &root, acts);
    assert_eq!(dedupe_titles(&mut merged), 0);
    let merged = merged.to_value();
    let mut want = whole.clone();
    let o = want.as_object_mut().unwrap();
    for (k, v) in &skeleton.root {
        o.insert(k.clone(), v.clone());
    }
    assert_eq!(merged, want, "the skeleton's chapter titles win");
    // A part with the wrong number of chapters goes back to its model alone.
    let mut short = answers[1].clone();
    short["chapters"].as_array_mut().unwrap().pop();
    let problems = check_piece(st, &counts, &rules, &skeleton, &p[1], &short).unwrap_err();
    assert!(problems[0].contains("exactly 3"), "{problems:?}");
    // A part's prompt names its place and its chapters; its schema asks for just them.
    let prompt = piece_prompt(
        st, "Novel", "readers", &skeleton, &p[1], &counts, &rules, "none",
    );
    assert!(
        prompt.contains("Branch part: 2 of 2: chapters 5-7 of 7."),
        "{prompt}"
    );
    assert!(
        prompt.contains("Branch shape: chapters=3, scenes=4."),
        "{prompt}"
    );
    assert!(prompt.contains(&skeleton.children[0][6]));
    // Every act's title is context; other acts' chapters are not re-sent.
    assert!(skeleton
        .nodes
        .iter()
        .all(|(t, _)| prompt.contains(t.as_str())));
    assert!(
        !prompt.contains(&format!("2.1 {}", skeleton.children[1][0])),
        "{prompt}"
    );
    let schema = piece_schema(st, &counts, &rules, &p[1]);
    assert_eq!(schema["required"], json!(["chapters"]));
    assert_eq!(schema["properties"]["chapters"]["maxItems"], 3);
    assert_eq!(
        piece_schema(st, &counts, &rules, &p[0])["properties"]["chapters"]["maxItems"],
        4
    );
}

#[test]
fn nodes_are_written_in_parts_only_where_it_shortens_the_critical_path_enough_to_pay() {
    // A granularity-5 novel's acts (~3,200 tokens each) in 4 parts: the
    // critical path from ~3,400 tokens to ~1,500.
    let novel = counts(StructureType::Novel, 5);
    assert_eq!(novel, [4, 7, 4]);
    assert_eq!(parts_per_node(StructureType::Novel, &novel, 24), 4);
    assert_eq!(critical_path_tokens(StructureType::Novel, &novel, 1), 3_400);
    assert_eq!(critical_path_tokens(StructureType::Novel, &novel, 4), 1_486);
    // The template's three acts: up to 7 parts would fit beside the skeleton; 4 pay.
    assert_eq!(parts_per_node(StructureType::Novel, &[3, 7, 4], 24), 4);
    // A course's modules (~800 tokens): its 32 lesson titles would make the
    // skeleton longer than splitting makes a module shorter.
    let course = counts(StructureType::Course, 5);
    assert_eq!(parts_per_node(StructureType::Course, &course, 24), 1);
    assert!(
        critical_path_tokens(StructureType::Course, &course, 2)
            > critical_path_tokens(StructureType::Course, &course, 1)
    );
    // Within the calls that may stream at once, the skeleton's counted (the
    // root call starts once it has ended).
    assert_eq!(parts_per_node(StructureType::Novel, &novel, 9), 2);
    assert_eq!(parts_per_node(StructureType::Novel, &novel, 8), 1);
    // Nothing to split: one child, no node, or no level below.
    assert_eq!(parts_per_node(StructureType::Novel, &[4, 1, 4], 24), 1);
    assert_eq!(parts_per_node(StructureType::Novel, &[0, 7, 4], 24), 1);
    // Every part writes at least MIN_PART_TOKENS: two one-scene chapters
    // would each be under it, though a split would shorten the path.
    assert_eq!(parts_per_node(StructureType::Novel, &[1, 2, 1], 24), 1);
    assert!(
        critical_path_tokens(StructureType::Novel, &[1, 2, 1], 2) + TOKENS_SAVED_PER_CALL
            <= critical_path_tokens(StructureType::Novel, &[1, 2, 1], 1)
    );
    // Each call added is charged TOKENS_SAVED_PER_CALL, per node and per
    // part: one act of four two-scene chapters goes in four parts.
    assert_eq!(parts_per_node(StructureType::Novel, &[1, 4, 2], 24), 4);
    assert_eq!(parts_per_node(StructureType::Course, &[8], 24), 1);
    assert_eq!(parts_per_node(StructureType::Course, &[], 24), 1);
    // Every type at every granularity: a split always pays, each part big enough.
    for st in StructureType::ALL {
        for g in 1..=5u8 {
            let c = counts(st, g);
            let k = parts_per_node(st, &c, 24);
            if k == 1 {
                continue;
            }
            let spec = st.spec();
            let below = branch_expected_tokens(spec, &c) - spec.levels[0].output_tokens;
            assert!(
                below * (c[1] / k as u32) / c[1] >= MIN_PART_TOKENS,
                "{st:?} g{g}"
            );
            let (one, split) = (
                critical_path_tokens(st, &c, 1),
                critical_path_tokens(st, &c, k),
            );
            assert!(f64::from(split) <= f64::from(one) * 0.85, "{st:?} g{g}");
            assert!(c[0] as usize * k < 24, "{st:?} g{g}");
        }
    }
}

#[test]
fn pieces_never_split_a_node_in_more_parts_than_it_has_children() {
    let p = pieces(&[2, 3, 2], 5);
    assert_eq!(p.len(), 6);
    assert!(p.iter().all(|piece| piece.size() == 1 && piece.parts == 3));
    assert_eq!(pieces(&[2], 3).len(), 2);
}

#[test]
fn a_budget_that_cannot_pay_the_parts_tries_one_call_per_node_and_nothing_else() {
    let mut asked = Vec::new();
    let fits_whole = within_budget(4, |parts| {
        asked.push(parts);
        (parts == 1).then_some("whole nodes")
    });
    assert_eq!(fits_whole, Some((1, "whole nodes")));
    assert_eq!(asked, [4, 1]);
    let mut asked = Vec::new();
    assert_eq!(
        within_budget(4, |parts| {
            asked.push(parts);
            Some(parts)
        }),
        Some((4, 4))
    );
    assert_eq!(asked, [4], "the split is kept when it fits");
    let mut asked = Vec::new();
    assert_eq!(
        within_budget(1, |parts| {
            asked.push(parts);
            None::<()>
        }),
        None
    );
    assert_eq!(asked, [1], "no split: one try");
}

//! The offline provider's outline builder: deterministic, no network, no key.
//!
//! It builds a well-formed outline of the requested type at the requested
//! granularity, inside the level rules and the caller's constraints, from the
//! topic alone. `./dev.sh` uses it when no provider key is configured; the
//! test suite's mock AI server uses it to answer with realistic outlines.
//!
//! Its outlines are placeholders (numbered skeletons with template text): the
//! pipeline marks them `placeholder: true` and never ready for content
//! generation in production. They are internally consistent all the same: a
//! quiz's `totalQuestions` counts its questions, its answers vary and are
//! among the options, a workflow step depends on the step before it by name.

use crate::services::outline::quiz_questions;
use crate::services::validation::trim_to_max_elements;
use crate::types::outline::{FieldValue, Node, Outline, Relationship};
use crate::types::rules::{level_counts, Constraints, StructureRules};
use crate::types::structure::{FieldKind, FieldSpec, Granularity, LevelSpec, StructureType};

const FACETS: [&str; 12] = [
    "Foundations",
    "Core Concepts",
    "Essential Techniques",
    "Tools and Workflow",
    "Common Pitfalls",
    "Worked Examples",
    "Advanced Patterns",
    "Best Practices",
    "Integration",
    "Case Studies",
    "Review and Assessment",
    "Next Steps",
];

pub fn generate(
    structure_type: StructureType,
    granularity: Granularity,
    rules: &StructureRules,
    constraints: &Constraints,
    topic: &str,
) -> Outline {
    let counts = level_counts(structure_type, granularity, rules, constraints);
    let mut outline = generate_with_counts(structure_type, &counts, topic);
    if trim_to_max_elements(granularity, rules, constraints, &mut outline) > 0 {
        reconcile_totals(&mut outline);
    }
    outline
}

/// Root figures that summarise the items: a quiz's `totalQuestions` (and its
/// `timeLimit`, two minutes a question) follow the questions it really has.
fn reconcile_totals(outline: &mut Outline) {
    if outline.structure_type != StructureType::Quiz {
        return;
    }
    let questions = quiz_questions(outline) as i64;
    outline.set_integer("totalQuestions", questions);
    outline.set_integer("timeLimit", questions * 2);
}

/// Build an outline with exactly `counts[d]` children per parent at depth `d`.
pub fn generate_with_counts(structure_type: StructureType, counts: &[u32], topic: &str) -> Outline {
    let spec = structure_type.spec();
    let mut outline = Outline::new(structure_type);
    outline.root = spec
        .root_fields
        .iter()
        .map(|field| root_value(structure_type, field, topic, counts))
        .collect();
    if let Some(first) = counts.first() {
        outline.items = (0..*first)
            .map(|i| element(structure_type, 0, &[i], counts, topic))
            .collect();
    }
    reconcile_totals(&mut outline);
    outline
}

/// Level-1 node `index` of an outline of `counts`, with its subtree (the
/// test suite's mock answers a fanned-out outline's branch calls with it).
pub fn generate_branch(
    structure_type: StructureType,
    index: u32,
    counts: &[u32],
    topic: &str,
) -> Node {
    element(structure_type, 0, &[index], counts, topic)
}

fn root_value(
    structure_type: StructureType,
    field: &FieldSpec,
    topic: &str,
    counts: &[u32],
) -> FieldValue {
    let kind = structure_type.as_str().replace('_', " ");
    match (field.name, field.kind) {
        ("title", _) => text(format!("{topic}: a {kind}")),
        // Set from the questions themselves (`reconcile_totals`).
        ("totalQuestions" | "timeLimit", _) => FieldValue::Integer(0),
        ("duration", _) => text(format!("{} weeks", counts.first().copied().unwrap_or(1))),
        ("genre", _) => text("literary fiction"),
        ("domain", _) => text(topic),
        ("scope", _) => text(format!(
            "Everything needed to carry out {topic} from start to finish"
        )),
        ("characters", _) => list(["The protagonist", "The mentor", "The antagonist"]),
        ("relationships", _) => {
            let n = counts.first().copied().unwrap_or(0);
            FieldValue::Relationships(
                (1..n)
                    .map(|i| Relationship {
                        from: facet_title(topic, i - 1),
                        to: facet_title(topic, i),
                        kind: "leads_to".into(),
                    })
                    .collect(),
            )
        }
        (_, FieldKind::TextList | FieldKind::OptionalList) => list([
            format!("{} of {topic}", field.name),
            format!("Applying {topic} in practice"),
        ]),
        (_, FieldKind::Integer) => FieldValue::Integer(1),
        (_, FieldKind::Relationships) => FieldValue::Relationships(Vec::new()),
        (_, FieldKind::Text) => text(format!("The {} of this {kind} on {topic}", field.name)),
    }
}

fn text(s: impl Into<String>) -> FieldValue {
    FieldValue::Text(s.into())
}

fn list<S: Into<String>>(items: impl IntoIterator<Item = S>) -> FieldValue {
    FieldValue::List(items.into_iter().map(Into::into).collect())
}

fn facet_title(topic: &str, i: u32) -> String {
    let facet = FACETS[i as usize % FACETS.len()];
    let round = i as usize / FACETS.len();
    if round == 0 {
        format!("{facet} of {topic}")
    } else {
        format!("{facet} of {topic} ({})", round + 1)
    }
}

fn element(
    structure_type: StructureType,
    depth: usize,
    index: &[u32],
    counts: &[u32],
    topic: &str,
) -> Node {
    let spec = structure_type.spec();
    let level = &spec.levels[depth];
    let position = position_of(index);
    let name = element_name(structure_type, depth, index, topic);
    // The sibling before this one, by name (a workflow step's dependency).
    let previous = match index.split_last() {
        Some((last, parents)) if *last > 0 => {
            let mut before = parents.to_vec();
            before.push(last - 1);
            Some(element_name(structure_type, depth, &before, topic))
        }
        _ => None,
    };
    let fields = level
        .fields
        .iter()
        .map(|field| element_value(level, field, &name, &position, index, previous.as_deref()))
        .collect();
    let mut out = Node::with_fields(structure_type, depth, fields);
    if let (Some(_), Some(n)) = (spec.levels.get(depth + 1), counts.get(depth + 1)) {
        out.children = (0..*n)
            .map(|i| {
                let mut child_index = index.to_vec();
                child_index.push(i);
                element(structure_type, depth + 1, &child_index, counts, topic)
            })
            .collect();
    }
    out
}

fn position_of(index: &[u32]) -> String {
    index
        .iter()
        .map(|i| (i + 1).to_string())
        .collect::<Vec<_>>()
        .join(".")
}

fn element_name(structure_type: StructureType, depth: usize, index: &[u32], topic: &str) -> String {
    let level = &structure_type.spec().levels[depth];
    if depth == 0 {
        return facet_title(topic, index[0]);
    }
    format!(
        "{} {}: {}",
        capitalise(level.element_type),
        position_of(index),
        FACETS[*index.last().unwrap_or(&0) as usize % FACETS.len()]
    )
}

const OPTIONS: [&str; 4] = ["Option A", "Option B", "Option C", "Option D"];

fn element_value(
    level: &LevelSpec,
    field: &FieldSpec,
    name: &str,
    position: &str,
    index: &[u32],
    previous: Option<&str>,
) -> FieldValue {
    if field.name == level.title_field {
        return text(name);
    }
    let last = *index.last().unwrap_or(&0);
    match (field.name, field.kind) {
        ("type", _) if level.element_type == "question" => text("multiple_choice"),
        ("type", _) => text(["practice", "discussion", "project", "reading"][last as usize % 4]),
        ("options", _) => list(OPTIONS),
        // Varies from question to question, always one of the options.
        ("answer", _) => text(OPTIONS[index.iter().sum::<u32>() as usize % OPTIONS.len()]),
        ("difficulty", _) => text(["easy", "medium", "hard"][last as usize % 3]),
        ("proficiencyLevel", _) => {
            text(["beginner", "intermediate", "advanced"][last as usize % 3])
        }
        ("weight", _) => FieldValue::Integer(1),
        ("points", _) => FieldValue::Integer(1 + (last % 3) as i64),
        ("duration", _) => text(format!("{} hours", 2 + last % 3)),
        ("pov", _) => text("third person limited"),
        ("responsible", _) => text("Process owner"),
        ("dependsOn", _) => list(previous),
        (_, FieldKind::TextList | FieldKind::OptionalList) => {
            list([format!("{} {position} ({})", field.name, name)])
        }
        (_, FieldKind::Integer) => FieldValue::Integer(1),
        (_, FieldKind::Relationships) => FieldValue::Relationships(Vec::new()),
        (_, FieldKind::Text) => text(format!("{} for {name}", capitalise(field.name))),
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::normalize::normalize;
    use serde_json::{json, Value};

    #[test]
    fn offline_outlines_are_already_canonical() {
        for t in StructureType::ALL {
            for g in 1..=5 {
                let g = Granularity::new(g).unwrap();
                let outline = generate(
                    t,
                    g,
                    &StructureRules::contract(t),
                    &Constraints::default(),
                    "Topic",
                );
                assert_eq!(normalize(t, &outline.to_value()).unwrap(), outline, "{t}");
            }
        }
    }

    #[test]
    fn canonical_json_round_trips_through_the_typed_outline() {
        for t in StructureType::ALL {
            for counts in [vec![3], vec![3, 2], vec![3, 2, 2]] {
                let outline = generate_with_counts(t, &counts, "Topic");
                let json = outline.to_value();
                // Written directly, the text is what the `Value` prints.
                assert_eq!(serde_json::to_string(&outline).unwrap(), json.to_string());
                let back = Outline::from_canonical(t, &json).unwrap();
                assert_eq!(back, outline, "{t}");
                assert_eq!(serde_json::to_string(&back).unwrap(), json.to_string());
            }
        }
    }

    #[test]
    fn is_deterministic_and_follows_counts() {
        let a = generate_with_counts(StructureType::Workflow, &[3, 2, 1], "Onboarding").to_value();
        let b = generate_with_counts(StructureType::Workflow, &[3, 2, 1], "Onboarding").to_value();
        assert_eq!(a, b);
        assert_eq!(a["phases"].as_array().unwrap().len(), 3);
        assert_eq!(
            a["phases"][2]["steps"][1]["tasks"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn honours_exact_counts_and_max_elements() {
        let c = Constraints {
            max_elements: Some(20),
            counts: [("modules".to_string(), 4)].into(),
        };
        let g = Granularity::new(3).unwrap();
        let v = generate(
            StructureType::Course,
            g,
            &StructureRules::contract(StructureType::Course),
            &c,
            "T",
        );
        assert_eq!(v.to_value()["modules"].as_array().unwrap().len(), 4);
        let report = crate::services::validation::assess(
            g,
            &StructureRules::contract(StructureType::Course),
            &c,
            &v,
        );
        // The smallest complete course with 4 modules: 2 lessons each, 1 activity each.
        assert_eq!(report.total_elements, 20);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
    }

    #[test]
    fn quiz_totals_count_the_questions_at_every_granularity() {
        for g in 1..=5 {
            let g = Granularity::new(g).unwrap();
            let rules = StructureRules::contract(StructureType::Quiz);
            for max in [None, Some(12)] {
                let c = Constraints {
                    max_elements: max,
                    ..Default::default()
                };
                let quiz = generate(StructureType::Quiz, g, &rules, &c, "T").to_value();
                let questions: Vec<&Value> = quiz["categories"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|c| c["questions"].as_array().into_iter().flatten())
                    .collect();
                assert_eq!(quiz["totalQuestions"], questions.len(), "g{}", g.get());
                assert_eq!(quiz["timeLimit"], questions.len() * 2);
            }
        }
    }

    #[test]
    fn quiz_answers_vary_and_are_among_the_options() {
        let quiz = generate_with_counts(StructureType::Quiz, &[3, 4], "T").to_value();
        let mut answers = std::collections::BTreeSet::new();
        for c in quiz["categories"].as_array().unwrap() {
            for q in c["questions"].as_array().unwrap() {
                assert!(
                    q["options"].as_array().unwrap().contains(&q["answer"]),
                    "{q}"
                );
                answers.insert(q["answer"].as_str().unwrap().to_string());
            }
        }
        assert_eq!(answers.len(), 4, "{answers:?}");
    }

    #[test]
    fn workflow_steps_depend_on_real_steps() {
        let w = generate_with_counts(StructureType::Workflow, &[3, 3, 1], "T").to_value();
        for phase in w["phases"].as_array().unwrap() {
            let steps = phase["steps"].as_array().unwrap();
            assert_eq!(steps[0]["dependsOn"], json!([]));
            for pair in steps.windows(2) {
                assert_eq!(pair[1]["dependsOn"], json!([pair[0]["name"]]));
            }
        }
    }
}

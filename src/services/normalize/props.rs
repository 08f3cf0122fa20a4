//! Properties of `normalize` over generated answers (proptest, native,
//! bounded case counts): any JSON is an outline or a list of problems, never
//! a panic; an outline it makes normalises to itself, through its canonical
//! JSON and through that JSON sent as a string, and reads back strictly
//! (`Outline::from_canonical`). The answers are built from each type's spec
//! the way models bend it: aliases, case and `_`/`-` changes, wrapper
//! objects, numbers as strings, single items where lists are expected.

use super::normalize;
use crate::types::outline::Outline;
use crate::types::structure::{FieldKind, FieldSpec, LevelSpec, StructureType, TypeSpec};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// 128 cases a property and type (a deeper run: `PROPTEST_CASES=5000`).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(128),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn structure_type() -> impl Strategy<Value = StructureType> {
    prop::sample::select(StructureType::ALL.to_vec())
}

/// Any JSON value, a few levels deep.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[ -~]{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z_]{1,10}", inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A name as models write it: the spec's name or an alias, maybe with its
/// case changed or `_` inserted (`lessons`, `Lessons`, `LESSONS`, `les_sons`).
fn spelling(name: &'static str, aliases: &'static [&'static str]) -> BoxedStrategy<String> {
    let names: Vec<&'static str> = std::iter::once(name)
        .chain(aliases.iter().copied())
        .collect();
    (prop::sample::select(names), 0..4usize)
        .prop_map(|(n, how)| match how {
            0 | 1 => n.to_string(),
            2 => n.to_uppercase(),
            _ => {
                let mut s = n.to_string();
                s.insert(s.len() / 2, '_');
                s
            }
        })
        .boxed()
}

fn text() -> BoxedStrategy<Value> {
    prop_oneof![
        "[ -~]{0,12}".prop_map(Value::String),
        "  [a-z]{1,8}  ".prop_map(Value::String),
        any::<u16>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        prop::collection::vec("[a-z]{0,6}".prop_map(Value::String), 0..3).prop_map(Value::Array),
        "[a-z]{1,6}".prop_map(|t| serde_json::json!({"name": t})),
        Just(Value::Null),
    ]
    .boxed()
}

fn integer() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::from),
        (0.0f64..1e6).prop_map(Value::from),
        (0u32..500).prop_map(|n| Value::String(n.to_string())),
        (0u32..500).prop_map(|n| Value::String(format!("{n} minutes"))),
        (0u32..500).prop_map(|n| serde_json::json!([n.to_string()])),
        "[ -~]{0,6}".prop_map(Value::String),
        Just(Value::Null),
    ]
    .boxed()
}

fn list() -> BoxedStrategy<Value> {
    prop_oneof![
        prop::collection::vec(text(), 0..4).prop_map(Value::Array),
        "[ -~]{0,12}".prop_map(Value::String),
        text(),
    ]
    .boxed()
}

fn relationships() -> BoxedStrategy<Value> {
    let edge = (
        spelling("from", &["source"]),
        text(),
        spelling("to", &["target"]),
        text(),
        prop::option::of((spelling("type", &["relation", "kind"]), text())),
    )
        .prop_map(|(fk, f, tk, t, kind)| {
            let mut o = Map::new();
            o.insert(fk, f);
            o.insert(tk, t);
            if let Some((k, v)) = kind {
                o.insert(k, v);
            }
            Value::Object(o)
        });
    prop_oneof![
        prop::collection::vec(edge.clone(), 0..4).prop_map(Value::Array),
        edge,
        text(),
    ]
    .boxed()
}

fn field_value(field: &FieldSpec) -> BoxedStrategy<Value> {
    match field.kind {
        FieldKind::Text => text(),
        FieldKind::Integer => integer(),
        FieldKind::TextList | FieldKind::OptionalList => list(),
        FieldKind::Relationships => relationships(),
    }
}

/// Some of `fields`, each under one of its spellings; the title (when
/// named) nearly always there and named, so that most answers are outlines.
fn fields(
    fields: &'static [FieldSpec],
    title: Option<&'static str>,
) -> BoxedStrategy<Vec<(String, Value)>> {
    let each: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .iter()
        .map(|f| match Some(f.name) == title {
            true => {
                let named = prop_oneof![
                    9 => "[A-Za-z][ -~]{0,10}".prop_map(Value::String),
                    1 => text(),
                ];
                prop::option::weighted(0.97, (spelling(f.name, f.aliases), named)).boxed()
            }
            false => {
                prop::option::weighted(0.8, (spelling(f.name, f.aliases), field_value(f))).boxed()
            }
        })
        .collect();
    each.prop_map(|kv| kv.into_iter().flatten().collect())
        .boxed()
}

/// The items of `spec.levels[depth]` as a model might send them.
fn items(spec: &'static TypeSpec, depth: usize) -> BoxedStrategy<Value> {
    let level: &'static LevelSpec = &spec.levels[depth];
    let child = spec
        .levels
        .get(depth + 1)
        .map(|c| (c, items(spec, depth + 1)));
    let item = (
        fields(level.fields, Some(level.title_field)),
        child.map_or(Just(None).boxed(), |(c, s)| {
            prop::option::weighted(0.7, (spelling(c.key, c.aliases), s)).boxed()
        }),
    )
        .prop_map(|(kv, children)| {
            let mut o: Map<String, Value> = kv.into_iter().collect();
            if let Some((k, v)) = children {
                o.insert(k, v);
            }
            Value::Object(o)
        });
    let wrapper = prop::sample::select(vec!["items", "list", level.element_type, level.key]);
    prop_oneof![
        6 => prop::collection::vec(item.clone(), 1..4).prop_map(Value::Array),
        1 => item.clone(),
        1 => "[a-z ]{0,8}".prop_map(Value::String),
        1 => (wrapper, prop::collection::vec(item, 1..3))
            .prop_map(|(k, v)| serde_json::json!({ k: v })),
    ]
    .boxed()
}

/// A whole answer for `t`: root fields and the first level, maybe inside a
/// wrapper object (some root fields left outside it) or a one-element array.
fn answer(t: StructureType) -> BoxedStrategy<Value> {
    let spec: &'static TypeSpec = t.spec();
    let first = &spec.levels[0];
    (
        fields(spec.root_fields, None),
        spelling(first.key, first.aliases),
        items(spec, 0),
        0..4usize,
    )
        .prop_map(move |(kv, key, items, wrap)| {
            let mut root: Map<String, Value> = kv.into_iter().collect();
            root.insert(key, items);
            let root = Value::Object(root);
            match wrap {
                0 => serde_json::json!({"result": {t.as_str(): root}}),
                1 => serde_json::json!([root]),
                _ => root,
            }
        })
        .boxed()
}

fn typed_answer() -> impl Strategy<Value = (StructureType, Value)> {
    structure_type().prop_flat_map(|t| answer(t).prop_map(move |v| (t, v)))
}

/// What normalising `outline`'s canonical JSON must give back: `outline`.
fn assert_canonical(t: StructureType, outline: &Outline) -> Result<(), TestCaseError> {
    let canonical = outline.to_value();
    let again = normalize(t, &canonical);
    prop_assert_eq!(again.as_ref(), Ok(outline), "{}", canonical);
    let from_string = normalize(t, &Value::String(canonical.to_string()));
    prop_assert_eq!(from_string.as_ref(), Ok(outline));
    let strict = Outline::from_canonical(t, &canonical);
    prop_assert_eq!(strict.as_ref(), Ok(outline));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_json_is_an_outline_or_its_problems(t in structure_type(), raw in any_value()) {
        match normalize(t, &raw) {
            Ok(outline) => assert_canonical(t, &outline)?,
            Err(problems) => prop_assert!(!problems.is_empty() && problems.len() <= 10),
        }
    }

    #[test]
    fn an_outline_normalises_to_itself((t, raw) in typed_answer()) {
        match normalize(t, &raw) {
            Ok(outline) => assert_canonical(t, &outline)?,
            Err(problems) => prop_assert!(!problems.is_empty() && problems.len() <= 10),
        }
    }
}

/// The generator must make outlines, not only problems: of 40 answers per
/// type, most normalise (a property whose cases all fail proves nothing).
#[test]
fn the_generated_answers_are_mostly_outlines() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    for t in StructureType::ALL {
        let mut runner = TestRunner::deterministic();
        let strategy = answer(t);
        let ok = (0..40)
            .filter(|_| {
                let raw = strategy.new_tree(&mut runner).unwrap().current();
                normalize(t, &raw).is_ok()
            })
            .count();
        assert!(
            ok >= 20,
            "{t}: only {ok} of 40 generated answers normalised"
        );
    }
}

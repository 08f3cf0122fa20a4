//! Structural validation and the quality score of a canonical outline.
//!
//! The score is deterministic and documented in `/help`:
//!
//! | component    | weight | value                                                        |
//! |--------------|--------|--------------------------------------------------------------|
//! | rules        | 0.35   | share of parents whose child count is inside the level rule  |
//! | completeness | 0.25   | share of required fields (text, lists) that are not empty    |
//! | depth        | 0.20   | levels present / levels the granularity asks for             |
//! | balance      | 0.10   | 1 − coefficient of variation of sibling-group sizes, per level |
//! | uniqueness   | 0.10   | 1 − share of titles repeated within a level                  |
//!
//! A perfect outline scores 1.0; every kind of defect lowers its component.

use crate::types::outline::{FieldValue, Node, Outline};
use crate::types::rules::{Constraints, StructureRules};
use crate::types::structure::{FieldKind, FieldSpec, Granularity, TypeSpec};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

pub const WEIGHTS: [(&str, f64); 5] = [
    ("rules", 0.35),
    ("completeness", 0.25),
    ("depth", 0.20),
    ("balance", 0.10),
    ("uniqueness", 0.10),
];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub path: String,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QualityReport {
    pub score: f64,
    pub components: BTreeMap<&'static str, f64>,
    pub violations: Vec<Violation>,
    pub elements_by_level: BTreeMap<String, u32>,
    pub total_elements: u32,
    pub depth: usize,
    pub expected_depth: usize,
}

impl QualityReport {
    pub fn feedback(&self) -> Vec<String> {
        self.violations
            .iter()
            .take(12)
            .map(|v| format!("{}: {}", v.path, v.message))
            .collect()
    }
}

/// Check `structure` against rules and constraints and score it.
pub fn assess(
    granularity: Granularity,
    rules: &StructureRules,
    constraints: &Constraints,
    structure: &Outline,
) -> QualityReport {
    let spec = structure.spec();
    let expected_depth = granularity.depth(spec);
    let mut walk = Walk::default();
    walk.fields(&structure.root, spec.root_fields);
    walk.level(
        spec,
        rules,
        constraints,
        0,
        &structure.items,
        "root",
        expected_depth,
    );

    let mut violations = walk.violations;
    let total: u32 = walk.per_level.iter().map(|l| l.count).sum();
    if let Some(max) = constraints.max_elements {
        if total > max {
            violations.push(Violation {
                path: "root".into(),
                code: "max_elements",
                message: format!("{total} elements exceed the maximum of {max}"),
            });
        }
    }
    let depth = walk.per_level.iter().take_while(|l| l.count > 0).count();
    if depth < expected_depth {
        violations.push(Violation {
            path: "root".into(),
            code: "too_shallow",
            message: format!(
                "granularity {} needs {} levels ({}), found {depth}",
                granularity.get(),
                expected_depth,
                spec.levels[..expected_depth]
                    .iter()
                    .map(|l| l.key)
                    .collect::<Vec<_>>()
                    .join(" > ")
            ),
        });
    }

    let ratio = |good: u32, all: u32| {
        if all == 0 {
            1.0
        } else {
            good as f64 / all as f64
        }
    };
    let balance = {
        let per: Vec<f64> = walk
            .per_level
            .iter()
            .filter(|l| l.group_sizes.len() > 1)
            .map(|l| l.balance())
            .collect();
        if per.is_empty() {
            1.0
        } else {
            per.iter().sum::<f64>() / per.len() as f64
        }
    };
    let uniqueness = ratio(total - walk.duplicates.min(total), total);
    let components = BTreeMap::from([
        ("rules", ratio(walk.groups_ok, walk.groups)),
        (
            "completeness",
            ratio(walk.fields_filled, walk.fields_required),
        ),
        (
            "depth",
            (depth.min(expected_depth) as f64 / expected_depth.max(1) as f64),
        ),
        ("balance", balance),
        ("uniqueness", uniqueness),
    ]);
    let score = WEIGHTS
        .iter()
        .map(|(name, w)| w * components[name])
        .sum::<f64>();
    QualityReport {
        score: round3(score),
        components: components
            .into_iter()
            .map(|(k, v)| (k, round3(v)))
            .collect(),
        violations,
        elements_by_level: spec
            .levels
            .iter()
            .zip(&walk.per_level)
            .map(|(spec, seen)| (spec.key.to_string(), seen.count))
            .collect(),
        total_elements: total,
        depth,
        expected_depth,
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[derive(Default)]
struct LevelSeen {
    count: u32,
    group_sizes: Vec<u32>,
    titles: HashSet<String>,
}

impl LevelSeen {
    fn balance(&self) -> f64 {
        let n = self.group_sizes.len() as f64;
        let mean = self.group_sizes.iter().sum::<u32>() as f64 / n;
        if mean == 0.0 {
            return 1.0;
        }
        let var = self
            .group_sizes
            .iter()
            .map(|s| (*s as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        (1.0 - var.sqrt() / mean).clamp(0.0, 1.0)
    }
}

#[derive(Default)]
struct Walk {
    per_level: Vec<LevelSeen>,
    groups: u32,
    groups_ok: u32,
    fields_required: u32,
    fields_filled: u32,
    duplicates: u32,
    violations: Vec<Violation>,
}

impl Walk {
    fn fields(&mut self, values: &[FieldValue], fields: &[FieldSpec]) {
        for (field, value) in fields.iter().zip(values) {
            // Integers, optional lists and relationships may legitimately be 0 / empty.
            if matches!(
                field.kind,
                FieldKind::Integer | FieldKind::Relationships | FieldKind::OptionalList
            ) {
                continue;
            }
            self.fields_required += 1;
            let filled = match value {
                FieldValue::Text(s) => !s.trim().is_empty(),
                FieldValue::List(a) => !a.is_empty(),
                _ => false,
            };
            self.fields_filled += u32::from(filled);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn level(
        &mut self,
        spec: &TypeSpec,
        rules: &StructureRules,
        constraints: &Constraints,
        depth: usize,
        children: &[Node],
        path: &str,
        expected_depth: usize,
    ) {
        let Some(level) = spec.levels.get(depth) else {
            return;
        };
        if self.per_level.len() <= depth {
            self.per_level.resize_with(depth + 1, LevelSeen::default);
        }
        let n = children.len() as u32;
        // Levels deeper than the granularity asks for are not required, but
        // when present they must still follow the rules.
        if depth < expected_depth || n > 0 {
            let (min, max) = rules.range(depth);
            self.groups += 1;
            let exact = constraints.counts.get(level.key).copied();
            let ok = match exact {
                Some(want) => n == want,
                None => (min..=max).contains(&n),
            };
            if ok {
                self.groups_ok += 1;
            } else {
                let wanted = exact.map_or(format!("{min}-{max}"), |w| format!("exactly {w}"));
                self.violations.push(Violation {
                    path: path.to_string(),
                    code: if exact.is_some() {
                        "count_constraint"
                    } else {
                        "level_rule"
                    },
                    message: format!("has {n} {}, needs {wanted}", level.key),
                });
            }
            self.per_level[depth].group_sizes.push(n);
        }
        for (i, child) in children.iter().enumerate() {
            let child_path = format!(
                "{}{}[{i}]",
                if path == "root" {
                    String::new()
                } else {
                    format!("{path}.")
                },
                level.key
            );
            self.per_level[depth].count += 1;
            let title = child.title().trim().to_lowercase();
            if !title.is_empty() && !self.per_level[depth].titles.insert(title) {
                self.duplicates += 1;
                self.violations.push(Violation {
                    path: child_path.clone(),
                    code: "duplicate_title",
                    message: format!(
                        "repeats the {} of another {}",
                        level.title_field, level.element_type
                    ),
                });
            }
            self.fields(&child.fields, level.fields);
            self.level(
                spec,
                rules,
                constraints,
                depth + 1,
                &child.children,
                &child_path,
                expected_depth,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::offline::generate;
    use crate::services::validation::fixtures::{course, score_of};
    use crate::types::structure::StructureType;

    #[test]
    fn a_perfect_outline_scores_one() {
        for t in StructureType::ALL {
            for level in 1..=5 {
                let g = Granularity::new(level).unwrap();
                let rules = StructureRules::contract(t);
                let outline = generate(t, g, &rules, &Constraints::default(), "Topic");
                let report = assess(g, &rules, &Constraints::default(), &outline);
                assert_eq!(report.score, 1.0, "{t} g{level}: {:?}", report.violations);
                assert!(report.violations.is_empty());
            }
        }
    }

    #[test]
    fn too_few_children_breaks_the_level_rule() {
        let (g, mut v) = course(3);
        v.items[0].children.truncate(1);
        let report = score_of(g, &v);
        assert!(report.score < 1.0);
        assert_eq!(report.violations[0].code, "level_rule");
        assert_eq!(report.violations[0].path, "modules[0]");
        assert!(report.components["rules"] < 1.0);
    }

    #[test]
    fn empty_required_fields_lower_completeness() {
        let (g, mut v) = course(3);
        v.items[1].set_text("description", String::new());
        *v.field_mut("learningOutcomes").unwrap() = FieldValue::List(Vec::new());
        let report = score_of(g, &v);
        assert!(report.components["completeness"] < 1.0);
        assert!(report.score < 1.0);
    }

    #[test]
    fn missing_levels_for_the_granularity_lower_depth() {
        let (_, v) = course(1);
        let g5 = Granularity::new(5).unwrap();
        let report = score_of(g5, &v);
        assert_eq!(report.depth, 1);
        assert_eq!(report.expected_depth, 3);
        assert!(report.violations.iter().any(|x| x.code == "too_shallow"));
        assert!((report.components["depth"] - 0.333).abs() < 0.001);
    }

    #[test]
    fn duplicate_titles_lower_uniqueness() {
        let (g, mut v) = course(3);
        let first = v.items[0].title().to_string();
        v.items[1].set_title(first);
        let report = score_of(g, &v);
        assert!(report.components["uniqueness"] < 1.0);
        assert!(report
            .violations
            .iter()
            .any(|x| x.code == "duplicate_title" && x.path == "modules[1]"));
    }

    #[test]
    fn uneven_groups_lower_balance_even_inside_the_rules() {
        let (g, mut v) = course(4);
        v.items[0].children.truncate(2);
        let extra = v.items[1].children[0].clone();
        for i in 0..2 {
            let mut e = extra.clone();
            e.set_title(format!("Extra {i}"));
            v.items[1].children.push(e);
        }
        let report = score_of(g, &v);
        assert_eq!(report.components["rules"], 1.0);
        assert!(report.components["balance"] < 1.0);
    }

    #[test]
    fn exact_count_constraints_are_checked() {
        let (g, v) = course(3);
        let constraints = Constraints {
            counts: BTreeMap::from([("modules".to_string(), 7)]),
            ..Default::default()
        };
        let report = assess(
            g,
            &StructureRules::contract(StructureType::Course),
            &constraints,
            &v,
        );
        assert!(report
            .violations
            .iter()
            .any(|x| x.code == "count_constraint"));
    }
}

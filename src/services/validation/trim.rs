//! `maxElements`, enforced: the smallest complete outline a granularity
//! allows (a smaller cap is a conflict the caller must resolve before any
//! model call), and trimming an outline down to the cap without breaking a
//! level rule or an exact count.

use crate::types::outline::{Node, Outline};
use crate::types::rules::{Constraints, StructureRules};
use crate::types::structure::{Granularity, StructureType};

/// The smallest complete outline at a granularity: every level it asks for,
/// each parent at its rule's minimum or the caller's exact count. Returns
/// the element count and the children per parent, level by level.
pub fn minimum_outline(
    structure_type: StructureType,
    granularity: Granularity,
    rules: &StructureRules,
    constraints: &Constraints,
) -> (u32, Vec<u32>) {
    let spec = structure_type.spec();
    let mut total = 0u32;
    let mut at_level = 1u32;
    let mut per_parent = Vec::new();
    for (d, level) in spec.levels[..granularity.depth(spec)].iter().enumerate() {
        let n = constraints
            .counts
            .get(level.key)
            .copied()
            .unwrap_or(rules.range(d).0);
        at_level = at_level.saturating_mul(n);
        total = total.saturating_add(at_level);
        per_parent.push(n);
    }
    (total, per_parent)
}

/// A `maxElements` too small for any complete outline at the granularity is a
/// conflict the caller must resolve (checked before any model call): the
/// message names both numbers and the ways out.
pub fn check_max_elements_feasible(
    structure_type: StructureType,
    granularity: Granularity,
    rules: &StructureRules,
    constraints: &Constraints,
) -> Result<(), String> {
    let Some(max) = constraints.max_elements else {
        return Ok(());
    };
    let (needed, per_parent) = minimum_outline(structure_type, granularity, rules, constraints);
    if needed <= max {
        return Ok(());
    }
    let spec = structure_type.spec();
    let shape = spec
        .levels
        .iter()
        .zip(&per_parent)
        .enumerate()
        .map(|(d, (l, n))| {
            if d == 0 {
                format!("{n} {}", l.key)
            } else {
                format!("{n} {} each", l.key)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let lower = (1..granularity.get())
        .rev()
        .filter_map(|g| Granularity::new(g as i64))
        .find(|g| minimum_outline(structure_type, *g, rules, constraints).0 <= max);
    let lower = lower.map_or(String::new(), |g| {
        format!(" or lower granularityLevel to {}", g.get())
    });
    Err(format!(
        "maxElements {max} cannot hold a complete {structure_type} at granularity {}: the smallest one has {needed} elements ({shape}); raise maxElements to at least {needed}{lower}",
        granularity.get()
    ))
}

/// Enforce `maxElements` without breaking the outline: first drop levels
/// deeper than the granularity asks for, then remove the last child of the
/// largest sibling group that is above its rule's minimum (or above the
/// caller's exact count for its level), deepest level first — a removed parent takes its
/// children with it. Stops when nothing more can go without breaking a rule
/// (`check_max_elements_feasible` keeps that from happening in a job).
/// Returns how many elements were removed.
pub fn trim_to_max_elements(
    granularity: Granularity,
    rules: &StructureRules,
    constraints: &Constraints,
    structure: &mut Outline,
) -> u32 {
    let Some(max) = constraints.max_elements else {
        return 0;
    };
    let spec = structure.spec();
    let before = structure.element_count();
    let fits = |s: &Outline| s.element_count() <= max as usize;
    let depth = granularity.depth(spec);
    for extra in (depth.max(1)..spec.levels.len()).rev() {
        if fits(structure) {
            break;
        }
        let mut parents = Vec::new();
        groups_at_depth(&mut structure.items, 0, extra - 1, &mut parents);
        for group in parents {
            for parent in group.iter_mut() {
                parent.children.clear();
            }
        }
    }
    while !fits(structure) {
        let removed = (0..depth).rev().any(|d| {
            let floor = constraints
                .counts
                .get(spec.levels[d].key)
                .copied()
                .unwrap_or(rules.range(d).0);
            remove_from_largest_group(structure, d, floor as usize)
        });
        if !removed {
            break;
        }
    }
    (before - structure.element_count()) as u32
}

/// The sibling groups at `target` (the level-1 list is the one group at 0).
fn groups_at_depth<'a>(
    group: &'a mut Vec<Node>,
    depth: usize,
    target: usize,
    out: &mut Vec<&'a mut Vec<Node>>,
) {
    if depth == target {
        out.push(group);
    } else {
        for child in group.iter_mut() {
            groups_at_depth(&mut child.children, depth + 1, target, out);
        }
    }
}

/// Pop the last child of the last largest group at `depth` that has more than
/// `min` children, so earlier parts of the outline keep their detail.
fn remove_from_largest_group(structure: &mut Outline, depth: usize, min: usize) -> bool {
    let mut groups = Vec::new();
    groups_at_depth(&mut structure.items, 0, depth, &mut groups);
    let Some(largest) = groups
        .into_iter()
        .filter(|g| g.len() > min)
        .rev()
        .max_by_key(|g| g.len())
    else {
        return false;
    };
    largest.pop().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::offline::{generate, generate_with_counts};
    use crate::services::validation::fixtures::{course, score_of};
    use crate::services::validation::score::assess;

    fn max(n: u32) -> Constraints {
        Constraints {
            max_elements: Some(n),
            ..Default::default()
        }
    }

    #[test]
    fn trimming_enforces_max_elements_from_the_deepest_level() {
        let (g, mut v) = course(3);
        let rules = StructureRules::contract(StructureType::Course);
        let before = score_of(g, &v).total_elements;
        let removed = trim_to_max_elements(g, &rules, &max(40), &mut v);
        let after = score_of(g, &v);
        assert_eq!(after.total_elements, 40);
        assert_eq!(removed, before - 40);
        assert_eq!(after.elements_by_level["modules"], 5);
        assert!(after.violations.is_empty(), "{:?}", after.violations);
    }

    #[test]
    fn trimming_never_breaks_a_level_rule_or_an_exact_count() {
        for t in StructureType::ALL {
            let rules = StructureRules::contract(t);
            for level in 1..=5 {
                let g = Granularity::new(level).unwrap();
                let full = generate(t, g, &rules, &Constraints::default(), "T");
                let (smallest, _) = minimum_outline(t, g, &rules, &Constraints::default());
                let size = assess(g, &rules, &Constraints::default(), &full).total_elements;
                for limit in smallest..=size {
                    let mut v = full.clone();
                    trim_to_max_elements(g, &rules, &max(limit), &mut v);
                    let report = assess(g, &rules, &max(limit), &v);
                    assert!(
                        report.violations.is_empty(),
                        "{t} g{level} max {limit}: {:?}",
                        report.violations
                    );
                    assert!(report.total_elements <= limit);
                }
            }
        }
        // An exact count is kept: the other levels give way.
        let rules = StructureRules::contract(StructureType::Course);
        let g = Granularity::new(3).unwrap();
        let c = Constraints {
            max_elements: Some(20),
            counts: [("modules".to_string(), 4)].into(),
        };
        for modules in [4, 6] {
            // A model that sent more modules than asked loses the extra ones too.
            let mut v = generate_with_counts(StructureType::Course, &[modules, 3, 2], "T");
            trim_to_max_elements(g, &rules, &c, &mut v);
            let report = assess(g, &rules, &c, &v);
            assert_eq!(report.elements_by_level["modules"], 4);
            assert_eq!(report.total_elements, 20);
            assert!(report.violations.is_empty(), "{:?}", report.violations);
        }
    }

    #[test]
    fn trimming_drops_levels_the_granularity_did_not_ask_for_first() {
        let rules = StructureRules::contract(StructureType::Course);
        let g = Granularity::new(1).unwrap();
        let mut v = generate_with_counts(StructureType::Course, &[4, 3, 2], "T");
        assert_eq!(trim_to_max_elements(g, &rules, &max(4), &mut v), 36);
        assert!(v.items[0].children.is_empty());
        assert!(assess(g, &rules, &max(4), &v).violations.is_empty());
    }

    #[test]
    fn a_max_elements_below_the_smallest_complete_outline_is_a_conflict() {
        let t = StructureType::Course;
        let rules = StructureRules::contract(t);
        let g5 = Granularity::new(5).unwrap();
        assert_eq!(
            minimum_outline(t, g5, &rules, &max(10)),
            (15, vec![3, 2, 1])
        );
        let err = check_max_elements_feasible(t, g5, &rules, &max(10)).unwrap_err();
        assert!(
            err.contains("maxElements 10 cannot hold a complete course at granularity 5"),
            "{err}"
        );
        assert!(
            err.contains("15 elements (3 modules, 2 lessons each, 1 activities each)"),
            "{err}"
        );
        assert!(
            err.ends_with("raise maxElements to at least 15 or lower granularityLevel to 2"),
            "{err}"
        );
        assert!(check_max_elements_feasible(t, g5, &rules, &max(15)).is_ok());
        assert!(check_max_elements_feasible(t, g5, &rules, &Constraints::default()).is_ok());
        // Exact counts raise the floor; nothing lower fits 2 elements.
        let c = Constraints {
            max_elements: Some(19),
            counts: [("modules".to_string(), 4)].into(),
        };
        let err =
            check_max_elements_feasible(t, Granularity::new(3).unwrap(), &rules, &c).unwrap_err();
        assert!(
            err.contains("at least 20 or lower granularityLevel to 2"),
            "{err}"
        );
        let err = check_max_elements_feasible(t, Granularity::new(1).unwrap(), &rules, &max(2))
            .unwrap_err();
        assert!(err.ends_with("at least 3"), "{err}");
    }
}

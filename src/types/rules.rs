//! The level rules a structure follows and the constraints a caller sets:
//! allowed children per parent (the contract's ranges, narrowed by a
//! template), the caller's `maxElements` and exact counts, and the counts a
//! job aims for. Plain data, shared by parsing, prompts, scoring and the
//! offline builder.

use crate::types::structure::{Granularity, StructureType, TypeSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Allowed children per parent, per level (a template may narrow the
/// contract's ranges, never widen them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelRule {
    pub level: String,
    pub min: u32,
    pub max: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructureRules {
    pub levels: Vec<LevelRule>,
}

impl StructureRules {
    pub fn contract(structure_type: StructureType) -> StructureRules {
        let levels = structure_type
            .spec()
            .levels
            .iter()
            .map(|l| LevelRule {
                level: l.key.to_string(),
                min: l.min,
                max: l.max,
            })
            .collect();
        StructureRules { levels }
    }

    /// Check rules supplied by a template against the contract's ranges.
    pub fn check(&self, structure_type: StructureType) -> Result<(), String> {
        let spec = structure_type.spec();
        if self.levels.len() != spec.levels.len() {
            let keys: Vec<&str> = spec.levels.iter().map(|l| l.key).collect();
            return Err(format!(
                "structure_rules.levels must list {} levels: {}",
                keys.len(),
                keys.join(", ")
            ));
        }
        for (rule, level) in self.levels.iter().zip(spec.levels) {
            if rule.level != level.key {
                return Err(format!(
                    "structure_rules level `{}` should be `{}`",
                    rule.level, level.key
                ));
            }
            if rule.min > rule.max || rule.min < level.min || rule.max > level.max {
                return Err(format!(
                    "structure_rules for `{}` must satisfy {} <= min <= max <= {}",
                    level.key, level.min, level.max
                ));
            }
        }
        Ok(())
    }

    pub fn range(&self, depth: usize) -> (u32, u32) {
        self.levels
            .get(depth)
            .map(|r| (r.min, r.max))
            .unwrap_or((0, u32::MAX))
    }

    /// The target per parent at a granularity, inside these rules.
    pub fn target(&self, spec: &TypeSpec, depth: usize, granularity: Granularity) -> u32 {
        let (min, max) = self.range(depth);
        spec.levels[depth].target(granularity).clamp(min, max)
    }
}

/// Caller constraints that are enforced, not only mentioned in the prompt.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraints {
    /// Hard cap on elements: an outline over it is trimmed after one retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_elements: Option<u32>,
    /// Exact children per parent for a level (inside its rule range).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u32>,
}

/// Children per parent for each level: the granularity's target inside the
/// rules, or the caller's exact count.
pub fn level_counts(
    structure_type: StructureType,
    granularity: Granularity,
    rules: &StructureRules,
    constraints: &Constraints,
) -> Vec<u32> {
    let spec = structure_type.spec();
    (0..granularity.depth(spec))
        .map(|d| {
            constraints
                .counts
                .get(spec.levels[d].key)
                .copied()
                .unwrap_or_else(|| rules.target(spec, d, granularity))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_rules_may_narrow_but_not_widen() {
        let mut rules = StructureRules::contract(StructureType::Quiz);
        assert!(rules.check(StructureType::Quiz).is_ok());
        rules.levels[0].min = 3;
        assert!(rules.check(StructureType::Quiz).is_ok());
        rules.levels[0].max = 20;
        assert!(rules
            .check(StructureType::Quiz)
            .unwrap_err()
            .contains("categories"));
        assert!(StructureRules::contract(StructureType::Course)
            .check(StructureType::Quiz)
            .is_err());
    }
}

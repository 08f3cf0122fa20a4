//! The six structure types and their canonical shapes (contracts.md §4).
//!
//! Each type is described once, as data: its root fields and, per level, the
//! children key, the element fields and the allowed number of children per
//! parent. Normalisation, rule checks, the JSON schema sent to models, quality
//! scoring, element rows and word-count estimates are all driven by that table
//! (`types::catalog`), so the six types share one code path.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructureType {
    Course,
    Quiz,
    Novel,
    Workflow,
    KnowledgeMap,
    LearningPath,
}

impl StructureType {
    pub const ALL: [StructureType; 6] = [
        StructureType::Course,
        StructureType::Quiz,
        StructureType::Novel,
        StructureType::Workflow,
        StructureType::KnowledgeMap,
        StructureType::LearningPath,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StructureType::Course => "course",
            StructureType::Quiz => "quiz",
            StructureType::Novel => "novel",
            StructureType::Workflow => "workflow",
            StructureType::KnowledgeMap => "knowledge_map",
            StructureType::LearningPath => "learning_path",
        }
    }

    /// Exact names only: the API never guesses what a caller meant.
    pub fn parse(name: &str) -> Option<StructureType> {
        StructureType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    pub fn names() -> Vec<&'static str> {
        StructureType::ALL.iter().map(|t| t.as_str()).collect()
    }
}

impl fmt::Display for StructureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Granularity 1–5, checked at the edge. It sets depth and width:
/// depth is 1 level at 1, 2 levels at 2, every level from 3 on; the target
/// number of children per parent climbs from the level's minimum towards the
/// middle of its range (`LevelSpec::target`). Both never decrease as the
/// level rises, so a higher level never yields a shallower or smaller outline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Granularity(u8);

impl Granularity {
    pub const DEFAULT: Granularity = Granularity(3);

    pub fn new(level: i64) -> Option<Granularity> {
        (1..=5).contains(&level).then_some(Granularity(level as u8))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// How many levels of the hierarchy this granularity asks for.
    pub fn depth(self, spec: &TypeSpec) -> usize {
        let wanted = match self.0 {
            1 => 1,
            2 => 2,
            _ => usize::MAX,
        };
        wanted.min(spec.levels.len())
    }

    pub fn describe(self) -> &'static str {
        match self.0 {
            1 => "a skeleton: top-level items only, the minimum number of them",
            2 => "an overview: two levels, lean on detail",
            3 => "a standard outline: every level, moderate breadth",
            4 => "a detailed outline: every level, broad coverage",
            _ => "an exhaustive outline: every level, the broadest coverage the rules allow",
        }
    }
}

impl TryFrom<u8> for Granularity {
    type Error = String;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Granularity::new(value as i64).ok_or_else(|| "granularity must be 1-5".to_string())
    }
}

impl From<Granularity> for u8 {
    fn from(g: Granularity) -> u8 {
        g.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Integer,
    TextList,
    /// A list that may legitimately be empty (no prerequisites, no dependencies).
    OptionalList,
    /// knowledge_map root: `[{from, to, type}]`
    Relationships,
}

#[derive(Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: FieldKind,
    /// Other names models use for the same field, accepted on input only.
    pub aliases: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    Medium,
    Low,
}

#[derive(Debug)]
pub struct LevelSpec {
    /// Children key in the canonical JSON, e.g. `modules`.
    pub key: &'static str,
    /// `structure_elements.element_type`, e.g. `module`.
    pub element_type: &'static str,
    pub aliases: &'static [&'static str],
    /// Field that names an element (its title in `structure_elements`).
    pub title_field: &'static str,
    /// Field that describes an element (its `content_outline`).
    pub outline_field: &'static str,
    pub fields: &'static [FieldSpec],
    pub min: u32,
    pub max: u32,
    /// Content the next worker writes per element of this level.
    pub words: u32,
    /// `wordCountEstimates.bySection` key.
    pub section: &'static str,
    pub priority: Priority,
    pub content_type: &'static str,
    /// Tokens a model spends describing one element (for estimates).
    pub output_tokens: u32,
}

impl LevelSpec {
    /// Target children per parent at a granularity (see `Granularity`).
    pub fn target(&self, granularity: Granularity) -> u32 {
        let steps = (granularity.get() - 1) as f64; // 0..=4
        let span = (self.max - self.min) as f64;
        self.min + (span * steps / 8.0).round() as u32
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Debug)]
pub struct TypeSpec {
    pub structure_type: StructureType,
    pub root_fields: &'static [FieldSpec],
    pub levels: &'static [LevelSpec],
    /// Words of framing content (introduction, overview) for the whole outline.
    pub root_words: u32,
    pub root_section: &'static str,
    pub tone: &'static str,
}

impl TypeSpec {
    pub fn level(&self, key: &str) -> Option<(usize, &LevelSpec)> {
        self.levels.iter().enumerate().find(|(_, l)| l.key == key)
    }

    /// Tokens a model writes for an outline of these level counts: the root
    /// (~120) plus each element at its level's `output_tokens`.
    pub fn expected_output_tokens(&self, counts: &[u32]) -> u32 {
        let mut per_level = 1;
        let mut total = 120;
        for (d, n) in counts.iter().enumerate() {
            per_level *= n;
            total += per_level * self.levels[d].output_tokens;
        }
        total
    }

    /// Expected element count at a granularity when every parent has the target.
    pub fn expected_elements(&self, granularity: Granularity) -> u32 {
        let depth = granularity.depth(self);
        let mut total = 0;
        let mut at_level = 1;
        for level in &self.levels[..depth] {
            at_level *= level.target(granularity);
            total += at_level;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_exact() {
        assert_eq!(
            StructureType::parse("knowledge_map"),
            Some(StructureType::KnowledgeMap)
        );
        assert_eq!(StructureType::parse("Course"), None);
        assert_eq!(StructureType::parse("knowledge map"), None);
    }

    #[test]
    fn granularity_rejects_out_of_range() {
        assert!(Granularity::new(0).is_none());
        assert!(Granularity::new(6).is_none());
        assert_eq!(Granularity::new(5).map(Granularity::get), Some(5));
    }
}

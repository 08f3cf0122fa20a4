//! Validation of a canonical outline: its structural quality score
//! (`score`), `maxElements` enforcement (`trim`) and the validation levels
//! with their AI review and verdict (`review`).

mod review;
mod score;
mod trim;

// The module's face: what the pipeline, the offline builder and `/help` call.
pub use review::{
    offline_review, parse_review, ready_for_content_generation, review_prompt, review_schema,
    review_system_prompt, review_unavailable, verdict, Verdict, REVIEW_SCHEMA_NAME,
};
pub use score::{assess, QualityReport, Violation, WEIGHTS};
pub use trim::{check_max_elements_feasible, minimum_outline, trim_to_max_elements};

/// Outlines the tests of all three parts score.
#[cfg(test)]
mod fixtures {
    use crate::services::offline::generate;
    use crate::services::validation::score::{assess, QualityReport};
    use crate::types::outline::Outline;
    use crate::types::rules::{Constraints, StructureRules};
    use crate::types::structure::{Granularity, StructureType};

    pub fn course(g: u8) -> (Granularity, Outline) {
        let g = Granularity::new(g as i64).unwrap();
        let rules = StructureRules::contract(StructureType::Course);
        (
            g,
            generate(
                StructureType::Course,
                g,
                &rules,
                &Constraints::default(),
                "Rust ownership",
            ),
        )
    }

    pub fn score_of(g: Granularity, v: &Outline) -> QualityReport {
        assess(
            g,
            &StructureRules::contract(StructureType::Course),
            &Constraints::default(),
            v,
        )
    }
}

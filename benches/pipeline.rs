//! Native micro-benchmark of the pure pipeline (`cargo bench --bench pipeline`):
//! normalise + rule check + quality score + element rows + word counts +
//! content metadata, for outlines of about 10, 100 and 500 elements.
//! Prints one JSON line per size: median time per outline and per element.

use content_granulator::services::normalize::normalize;
use content_granulator::services::offline::generate_with_counts;
use content_granulator::services::outline::{
    content_metadata, flatten, word_counts, MetadataInput,
};
use content_granulator::services::validation::assess;
use content_granulator::types::pricing::Pricing;
use content_granulator::types::rules::{Constraints, StructureRules};
use content_granulator::types::structure::{Granularity, StructureType};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let pricing = Pricing::default();
    let rules = StructureRules::contract(StructureType::Course);
    let g = Granularity::new(5).expect("granularity");
    for (label, counts) in [
        ("10", vec![2u32, 2, 1]),
        ("100", vec![5, 4, 4]),
        ("500", vec![12, 6, 6]),
    ] {
        // Serialised as a model would send it: parsing is part of the work.
        let raw =
            generate_with_counts(StructureType::Course, &counts, "Benchmark topic").to_string();
        let elements =
            generate_with_counts(StructureType::Course, &counts, "Benchmark topic").element_count();
        let run = || {
            let value: serde_json::Value = serde_json::from_str(&raw).expect("json");
            let canonical = normalize(StructureType::Course, &value).expect("canonical");
            let report = assess(g, &rules, &Constraints::default(), &canonical);
            let rows = flatten(&canonical);
            let words = word_counts(StructureType::Course, &rows);
            let input = MetadataInput {
                structure_type: StructureType::Course,
                topic: "Benchmark topic",
                granularity: 5,
                target_audience: "engineers",
                min_quality_score: 0.7,
                validation_required: false,
                storage_tier: "inline",
                model: Some("gpt-4o-mini"),
            };
            black_box((report, content_metadata(&input, &rows, &words, &pricing)));
        };
        for _ in 0..20 {
            run();
        }
        let iterations = (20_000 / elements).clamp(20, 2_000);
        let mut samples: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..iterations {
                    run();
                }
                t.elapsed().as_secs_f64() * 1e6 / iterations as f64
            })
            .collect();
        samples.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
        let median_us = samples[samples.len() / 2];
        println!(
            "{}",
            serde_json::json!({"outline": label, "elements": elements, "bytes": raw.len(), "medianMicros": (median_us * 10.0).round() / 10.0,
                "microsPerElement": (median_us / elements as f64 * 1000.0).round() / 1000.0})
        );
    }
}

//! The corpus of messy answers (`support/mess.rs`), natively: extraction and
//! normalisation alone, every kind × every structure type. Each recoverable
//! answer must give back exactly the outline the model meant; each
//! unrecoverable one must be refused by one of the two. The same corpus runs
//! end to end through the mock provider in `tests/corpus.rs`.

#[path = "support/mess.rs"]
mod mess;

use content_granulator::services::ai_provider::json_extract::{extract_json, Extracted};
use content_granulator::services::normalize::normalize;
use content_granulator::types::structure::StructureType;

#[test]
fn clean_outlines_are_canonical() {
    for t in StructureType::ALL {
        let clean = mess::clean_outline(t, "Clean topic");
        let typed = normalize(t, &clean).unwrap();
        assert_eq!(typed.to_value(), clean, "{t}");
        assert_eq!(serde_json::to_string(&typed).unwrap(), clean.to_string());
    }
}

#[test]
fn every_recoverable_kind_is_recovered_exactly_and_every_other_refused() {
    let mut failures = Vec::new();
    for t in StructureType::ALL {
        for case in mess::cases(t, "Rust's ownership \"model\"") {
            let outcome = match extract_json(&case.text) {
                Extracted::Json(v) => normalize(t, &v)
                    .map(|o| o.to_value())
                    .map_err(|e| e.join("; ")),
                Extracted::Invalid(why) => Err(why),
            };
            match (case.recoverable, outcome) {
                (true, Ok(v)) if v == case.expected => {}
                (true, Ok(v)) => {
                    failures.push(format!("{t}/{}: recovered something else: {v}", case.kind))
                }
                (true, Err(why)) => failures.push(format!("{t}/{}: refused: {why}", case.kind)),
                (false, Ok(_)) => failures.push(format!(
                    "{t}/{}: accepted an unrecoverable answer",
                    case.kind
                )),
                (false, Err(_)) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

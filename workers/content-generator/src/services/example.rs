//! The example action, the worker's own domain (pure): the prompt that asks a
//! model to summarise the input text, the JSON schema of its answer, the
//! check of that answer, and counts of the text. Replace it with the
//! worker's real work; the lifecycle around it (`services::job`) stays.

use crate::types::execute::JobRequest;
use bitware_kit::ai::{CompletionRequest, Purpose};
use serde_json::{json, Value};

/// The one call purpose of the example (attempts are recorded under it).
pub const SUMMARISE: Purpose = Purpose::named("summarise");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub words: usize,
    pub sentences: usize,
    pub characters: usize,
}

pub fn analyze(text: &str) -> Analysis {
    let sentences = text
        .split(['.', '!', '?'])
        .filter(|s| !s.trim().is_empty())
        .count();
    Analysis {
        words: text.split_whitespace().count(),
        sentences,
        characters: text.chars().count(),
    }
}

/// The answer's schema: one summary.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {"summary": {"type": "string", "minLength": 1}},
        "required": ["summary"],
        "additionalProperties": false
    })
}

/// The model call of a job (the kit's chain streams it and feeds `progress`).
pub fn completion_request(job: &JobRequest) -> CompletionRequest {
    CompletionRequest {
        purpose: SUMMARISE,
        system: "You summarise texts faithfully and concisely. Answer with JSON only.".into(),
        user: format!(
            "Summarise the input text in at most {} tokens.\n\nInput text:\n<text>\n{}\n</text>",
            job.max_tokens, job.text
        ),
        schema_name: "summary".into(),
        schema: schema(),
        max_tokens: job.max_tokens,
        temperature: 0.2,
        expected_output_tokens: job.max_tokens,
        offline_answer: None,
        progress: None,
        shared_prefix: 0,
        cache_key: None,
    }
}

/// A model's answer, checked: `{"summary": "<non-empty text>"}`.
pub fn check_answer(v: &Value) -> Result<Value, Vec<String>> {
    match v["summary"].as_str().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(json!({"summary": s})),
        _ => Err(vec![
            "the answer must be an object with a non-empty `summary` string".into(),
        ]),
    }
}

/// The job's output: the summary and the counts of its input.
pub fn output(job: &JobRequest, answer: &Value) -> Value {
    let a = analyze(&job.text);
    json!({
        "summary": answer["summary"],
        "words": a.words,
        "sentences": a.sentences,
        "characters": a.characters,
        "readyForNext": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::execute::Action;

    #[test]
    fn counts_words_sentences_and_characters() {
        assert_eq!(
            analyze("One two. Three!"),
            Analysis {
                words: 3,
                sentences: 2,
                characters: 15
            }
        );
        assert_eq!(analyze("ünïcode").characters, 7);
    }

    #[test]
    fn the_prompt_carries_the_text_and_only_a_summary_is_accepted() {
        let job = JobRequest {
            action: Action::Example,
            text: "One two. Three!".into(),
            max_tokens: 64,
            max_cost_usd: None,
        };
        let r = completion_request(&job);
        assert!(r.user.contains("Summarise the input text") && r.user.contains("One two. Three!"));
        assert_eq!((r.max_tokens, r.expected_output_tokens), (64, 64));
        assert_eq!(
            check_answer(&json!({"summary": " s "})),
            Ok(json!({"summary": "s"}))
        );
        assert!(check_answer(&json!({"summary": ""})).is_err());
        assert!(check_answer(&json!({"other": 1})).is_err());
        let out = output(&job, &json!({"summary": "s"}));
        assert_eq!(
            (out["summary"].as_str(), out["words"].as_u64()),
            (Some("s"), Some(3))
        );
    }
}

//! The Content Generator's batches, answered in kind.
//!
//! A batch request's schema (`content_batch`) is
//! `{"properties": {"elements": {"type": "array", "items": {"properties":
//! {"path": {"enum": [...]}, "content": {...}}}}}}`; its user prompt has one
//! line per element, `- <path> | <target> words | <element type>: <title>`.
//! The answer is `{"elements": [{"path", "content"}, ...]}` for every path of
//! the enum, in its order, each content exactly its target's words (times a
//! `valid` step's `wordsFactor`: short content for the generator's quality
//! check), made deterministically from the element's title and the topic: a
//! test can count the words of what the worker stored against what was asked.

use serde_json::{json, Value};

/// One line of a batch prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub path: String,
    pub target: usize,
    pub kind: String,
    pub title: String,
}

/// The words asked of a path the prompt has no line for (a prompt that
/// drifted from the format): still an answer, visibly generic.
const UNLISTED_TARGET: usize = 50;

/// The paths of a content batch's schema, in its order; `None` when the
/// schema is not a content batch.
pub fn batch_paths(schema: &Value) -> Option<Vec<String>> {
    let item = &schema["properties"]["elements"]["items"]["properties"];
    item.get("content")?;
    let paths = item["path"]["enum"].as_array()?;
    Some(
        paths
            .iter()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect(),
    )
}

/// `- modules.0.lessons.2 | 1200 words | lesson: Ownership`.
pub fn parse_line(line: &str) -> Option<Element> {
    let rest = line.trim().strip_prefix("- ")?;
    let mut parts = rest.splitn(3, " | ");
    let path = parts.next()?.trim();
    let target = parts
        .next()?
        .trim()
        .strip_suffix(" words")?
        .trim()
        .parse()
        .ok()?;
    let (kind, title) = parts.next()?.split_once(": ")?;
    (!path.is_empty()).then(|| Element {
        path: path.to_string(),
        target,
        kind: kind.trim().to_string(),
        title: title.trim().to_string(),
    })
}

/// Every element line of a prompt (other lines are ignored).
pub fn parse_elements(prompt: &str) -> Vec<Element> {
    prompt.lines().filter_map(parse_line).collect()
}

/// The batch's topic: `<topic>…</topic>` when the prompt tags it, else a
/// `Topic: …` line, else a neutral phrase.
pub fn topic_of(prompt: &str) -> String {
    if let Some(start) = prompt.find("<topic>") {
        let rest = &prompt[start + "<topic>".len()..];
        if let Some(end) = rest.find("</topic>") {
            return rest[..end].trim().to_string();
        }
    }
    prompt
        .lines()
        .find_map(|l| l.trim().strip_prefix("Topic: "))
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| "the subject".to_string())
}

/// Sentences the text is made of; `{t}` is the element's title, `{p}` the
/// topic, `{k}` the element's type. Varied words, so a check that looks for
/// repetition or placeholders sees prose.
const SENTENCES: [&str; 12] = [
    "This {k} on {t} explains how it fits into {p}.",
    "Readers first meet the core idea with a short example they can try themselves.",
    "Each step builds on the previous one, so nothing arrives without a reason.",
    "When {t} seems abstract, a concrete case from everyday practice makes it tangible.",
    "Common mistakes are named early, together with the habits that prevent them.",
    "A brief comparison shows where {t} differs from neighbouring ideas in {p}.",
    "Questions along the way invite the reader to predict outcomes before reading on.",
    "The {k} closes each part by restating what changed and why it matters.",
    "Practical advice follows theory, because skills grow through deliberate repetition.",
    "Learners who finish this {k} can describe {t} in their own words.",
    "Further reading points toward sources that deepen understanding of {p}.",
    "Finally, a short reflection connects {t} to goals the reader already holds.",
];

/// FNV-1a: a stable start sentence per title (no dependency, no randomness).
fn seed(text: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as usize
}

/// Exactly `n` words of prose about `title`, ending with a full stop (no
/// words when `n` is 0): counted on whitespace, or as the generator counts
/// them (whitespace-separated tokens holding a letter or digit), the same.
pub fn text(title: &str, topic: &str, kind: &str, n: usize) -> String {
    let mut words: Vec<String> = Vec::with_capacity(n + 16);
    let start = seed(title);
    let mut i = 0;
    while words.len() < n {
        // It opens on what it is about, then goes on in an order of its own.
        let index = if i == 0 {
            0
        } else {
            1 + (start + i) % (SENTENCES.len() - 1)
        };
        let sentence = SENTENCES[index]
            .replace("{t}", title)
            .replace("{p}", topic)
            .replace("{k}", kind);
        // Only tokens with a letter or digit: a title's `&` or `—` would be a
        // word on whitespace and none to a counter that wants letters.
        words.extend(
            sentence
                .split_whitespace()
                .filter(|w| w.chars().any(char::is_alphanumeric))
                .map(str::to_string),
        );
        i += 1;
    }
    words.truncate(n);
    if let Some(last) = words.last_mut() {
        if !last.ends_with(['.', '!', '?']) {
            last.push('.');
        }
    }
    words.join(" ")
}

/// The answer to a batch: every path of the schema, in order, its content
/// `target × factor` words (rounded; an unlisted path gets a generic text).
pub fn batch(paths: &[String], prompt: &str, factor: f64) -> Value {
    let elements = parse_elements(prompt);
    let topic = topic_of(prompt);
    let answers: Vec<Value> = paths
        .iter()
        .map(|path| {
            let (target, kind, title) = match elements.iter().find(|e| &e.path == path) {
                Some(e) => (e.target, e.kind.as_str(), e.title.as_str()),
                None => (UNLISTED_TARGET, "section", path.as_str()),
            };
            let n = (target as f64 * factor.max(0.0)).round() as usize;
            json!({"path": path, "content": text(title, &topic, kind, n)})
        })
        .collect();
    json!({"elements": answers})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(paths: &[&str]) -> Value {
        json!({"type": "object", "properties": {"elements": {"type": "array", "items": {"type": "object",
            "properties": {"path": {"type": "string", "enum": paths}, "content": {"type": "string"}}}}}})
    }

    #[test]
    fn batch_lines_parse_into_path_target_type_and_title() {
        assert_eq!(
            parse_line("- modules.0.lessons.2 | 1200 words | lesson: Ownership"),
            Some(Element {
                path: "modules.0.lessons.2".into(),
                target: 1200,
                kind: "lesson".into(),
                title: "Ownership".into()
            })
        );
        // A title may hold the separators' characters after the type.
        let e = parse_line("  - categories.1 | 80 words | category: Traits: a | tour").unwrap();
        assert_eq!((e.target, e.title.as_str()), (80, "Traits: a | tour"));
        for bad in [
            "modules.0 | 10 words | module: X",
            "- modules.0 | ten words | module: X",
            "- modules.0 | 10 | module: X",
            "- modules.0 | 10 words | module X",
            "-  | 10 words | module: X",
        ] {
            assert_eq!(parse_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_has_exactly_the_target_words() {
        for n in [0, 1, 7, 12, 13, 250, 1200] {
            let t = text("Borrowing and lifetimes", "Rust ownership", "lesson", n);
            assert_eq!(t.split_whitespace().count(), n, "{n}");
            if n > 0 {
                assert!(t.ends_with('.'));
            }
        }
    }

    #[test]
    fn every_word_holds_a_letter_or_digit_so_both_ways_of_counting_agree() {
        let t = text("Traits & generics — a tour", "Rust / C++", "lesson", 500);
        assert_eq!(t.split_whitespace().count(), 500);
        let counted = t
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .count();
        assert_eq!(counted, 500);
    }

    #[test]
    fn content_is_varied_prose_about_the_title_and_topic() {
        let t = text("Borrowing", "Rust ownership", "lesson", 300);
        assert!(t.starts_with("This lesson on Borrowing explains how it fits into Rust ownership."));
        let distinct: std::collections::HashSet<&str> = t.split_whitespace().collect();
        assert!(distinct.len() > 60, "{} distinct words", distinct.len());
        assert_eq!(t, text("Borrowing", "Rust ownership", "lesson", 300));
        assert_ne!(
            t[..80],
            text("Lifetimes", "Rust ownership", "lesson", 300)[..80]
        );
    }

    #[test]
    fn a_batch_answers_every_path_of_the_schema_in_order() {
        let prompt = "Write the content.\n<topic>Rust ownership</topic>\n\
            - modules.0 | 40 words | module: Basics\n\
            - modules.0.lessons.1 | 1200 words | lesson: Ownership\n";
        let paths =
            batch_paths(&schema(&["modules.0.lessons.1", "modules.0", "modules.9"])).unwrap();
        let v = batch(&paths, prompt, 1.0);
        let els = v["elements"].as_array().unwrap();
        let got: Vec<(&str, usize)> = els
            .iter()
            .map(|e| {
                (
                    e["path"].as_str().unwrap(),
                    e["content"].as_str().unwrap().split_whitespace().count(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("modules.0.lessons.1", 1200),
                ("modules.0", 40),
                ("modules.9", UNLISTED_TARGET)
            ]
        );
        assert!(els[0]["content"].as_str().unwrap().contains("Ownership"));
        let short = batch(&paths, prompt, 0.3);
        assert_eq!(
            short["elements"][0]["content"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .count(),
            360
        );
    }

    #[test]
    fn only_content_batch_schemas_are_batches() {
        assert!(batch_paths(&schema(&["a"])).is_some());
        assert!(batch_paths(&json!({"properties": {"elements": {"items": {"properties": {"path": {"enum": ["a"]}}}}}})).is_none());
        assert!(batch_paths(&json!({"properties": {"modules": {}}})).is_none());
    }

    #[test]
    fn the_topic_is_read_from_its_tag_or_line() {
        assert_eq!(topic_of("x <topic> Rust </topic> y"), "Rust");
        assert_eq!(
            topic_of("Topic: Rust ownership\n- a | 1 words | b: c"),
            "Rust ownership"
        );
        assert_eq!(topic_of("nothing"), "the subject");
    }
}

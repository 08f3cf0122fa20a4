//! The prompt-template language (seed §10.2): text with `{placeholder}`s
//! from `PLACEHOLDERS`; `{{` and `}}` stand for literal braces. Unknown
//! placeholders are refused when a template is saved, so a literal `{foo}`
//! never reaches a model (`helpers::prompts` renders the values).

pub const MAX_TEMPLATE_CHARS: usize = 16_000;

pub const PLACEHOLDERS: [(&str, &str); 7] = [
    ("topic", "the topic, cleaned and wrapped in <topic> tags"),
    (
        "audience",
        "the target audience, cleaned and wrapped in <audience> tags",
    ),
    ("granularity", "the granularity level, 1-5"),
    (
        "granularity_description",
        "what the granularity level means in words",
    ),
    ("structure_type", "the structure type, e.g. course"),
    (
        "level_targets",
        "the target and allowed number of children per level",
    ),
    (
        "constraints",
        "the caller's hard constraints (maximum elements, exact counts), or 'none'",
    ),
];

/// Placeholders a template uses, or why it is not a valid template.
pub fn check_template(template: &str) -> Result<Vec<String>, String> {
    if template.trim().is_empty() {
        return Err("the prompt template is empty".into());
    }
    if template.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(format!(
            "the prompt template is longer than {MAX_TEMPLATE_CHARS} characters"
        ));
    }
    let mut used = Vec::new();
    substitute(template, |name| {
        if PLACEHOLDERS.iter().any(|(p, _)| *p == name) {
            used.push(name.to_string());
            Ok(String::new())
        } else {
            let known: Vec<&str> = PLACEHOLDERS.iter().map(|(p, _)| *p).collect();
            Err(format!(
                "unknown placeholder {{{name}}}; known: {}",
                known.join(", ")
            ))
        }
    })?;
    if !used.iter().any(|p| p == "topic") {
        return Err("the prompt template must use {topic}".into());
    }
    Ok(used)
}

/// Replace each `{name}` with `value(name)` and `{{`/`}}` with braces.
pub fn substitute(
    template: &str,
    mut value: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let rest = &template[i + 1..];
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unclosed `{{` at character {i}"))?;
                let name = &rest[..end];
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    return Err(format!(
                        "`{{{name}}}` is not a placeholder (write `{{{{` for a literal brace)"
                    ));
                }
                out.push_str(&value(name)?);
                for _ in 0..=name.len() {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "unmatched `}}` at character {i} (write `}}}}` for a literal brace)"
                ))
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_placeholders_and_bad_braces_are_refused() {
        assert!(check_template("About {topic} for {reader}")
            .unwrap_err()
            .contains("unknown placeholder {reader}"));
        assert!(check_template("About {topic")
            .unwrap_err()
            .contains("unclosed"));
        assert!(check_template("About {topic} }")
            .unwrap_err()
            .contains("unmatched"));
        assert!(check_template("No topic here")
            .unwrap_err()
            .contains("must use {topic}"));
        assert!(check_template("{Topic}").is_err());
        assert_eq!(check_template("{topic} {{x}}").unwrap(), vec!["topic"]);
    }
}

//! Getting a JSON object out of a model's text: code fences, prose around the
//! object, and the one repair that is always safe (trailing commas).
//! Anything else — unbalanced braces, a cut-off string — is reported, never
//! guessed at: a silently "closed" outline would hide a truncated answer.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Extracted {
    Json(Value),
    /// The text holds no complete JSON object; the reason is for the model.
    Invalid(String),
}

pub fn extract_json(text: &str) -> Extracted {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        return Extracted::Json(v);
    }
    let Some(start) = trimmed.find('{') else {
        return Extracted::Invalid("the answer contains no JSON object".into());
    };
    let Some(end) = matching_brace(&trimmed[start..]) else {
        return Extracted::Invalid(
            "the JSON object is not closed (the answer looks cut off)".into(),
        );
    };
    let candidate = &trimmed[start..start + end + 1];
    match serde_json::from_str::<Value>(candidate) {
        Ok(v) => Extracted::Json(v),
        Err(first_error) => {
            match serde_json::from_str::<Value>(&strip_trailing_commas(candidate)) {
                Ok(v) => Extracted::Json(v),
                Err(_) => Extracted::Invalid(format!("the JSON is not valid: {first_error}")),
            }
        }
    }
}

/// Byte offset of the `}` closing the object that starts at `s[0]`.
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (c == '}').then_some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Remove commas that directly precede `}` or `]` (outside strings).
fn strip_trailing_commas(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            out.push(c);
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_fenced_and_prose_wrapped_json() {
        assert_eq!(
            extract_json(r#" {"a": 1} "#),
            Extracted::Json(json!({"a": 1}))
        );
        assert_eq!(
            extract_json("```json\n{\"a\": [1, 2]}\n```"),
            Extracted::Json(json!({"a": [1, 2]}))
        );
        let prose = "Here is your outline:\n{\"title\": \"x {y}\", \"b\": \"}\"}\nHope it helps!";
        assert_eq!(
            extract_json(prose),
            Extracted::Json(json!({"title": "x {y}", "b": "}"}))
        );
    }

    #[test]
    fn trailing_commas_are_repaired_but_not_inside_strings() {
        let text = r#"{"a": [1, 2,], "s": "x,]", }"#;
        assert_eq!(
            extract_json(text),
            Extracted::Json(json!({"a": [1, 2], "s": "x,]"}))
        );
    }

    #[test]
    fn truncated_and_missing_json_are_reported() {
        let cut = extract_json(r#"{"title": "x", "modules": [{"title": "a"#);
        assert!(matches!(cut, Extracted::Invalid(ref r) if r.contains("cut off")));
        assert!(
            matches!(extract_json("I cannot help with that."), Extracted::Invalid(ref r) if r.contains("no JSON"))
        );
        assert!(
            matches!(extract_json(r#"{"a": tru}"#), Extracted::Invalid(ref r) if r.contains("not valid"))
        );
    }
}

//! The example action, pure: what this worker does, replaced by its real work.

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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            analyze("ünïcode"),
            Analysis {
                words: 1,
                sentences: 1,
                characters: 7
            }
        );
    }
}

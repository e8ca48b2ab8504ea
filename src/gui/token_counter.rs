//! The prompt boxes' token counters. A count takes a tokenizer pass over the whole prompt, so
//! it is taken again only when the text, the prompt syntax or the model's tokenizer change,
//! not on every frame.

use std::sync::Arc;

use crate::hub::EmbeddingInfo;
use crate::text::prompt::{EmbeddingTokens, count_tokens_with};
use crate::text::{ClipTokenizer, PromptSyntax, TokenCount};

/// What a counter shows under its box.
#[derive(Clone, Debug, PartialEq)]
pub enum Counted {
    /// Every token is used: "82/150" (A1111 chunks) or "12/75" (plain).
    Fits(TokenCount),
    /// Plain syntax past 75 tokens: the rest is cut off.
    Cut(TokenCount),
    /// The prompt cannot be read (a weight that is not a number): the run would refuse it too.
    Invalid(String),
}

/// One box's counter with its last count.
#[derive(Debug, Default)]
pub struct TokenCounter {
    /// Text, syntax, tokenizer and embeddings (count, total vectors) of the last count.
    counted_for: Option<(String, PromptSyntax, usize, (usize, usize))>,
    counted: Option<Counted>,
    /// The prompt's `<lora:…>` tags are cut out before encoding, so they are not counted
    /// (A1111 reads them from the prompt only, not from the negative prompt).
    cuts_tags: bool,
}

impl TokenCounter {
    /// The count for `text`, taken again only when something it depends on changed. `None`
    /// while no model's tokenizer is loaded.
    /// Embeddings named in the text count as many tokens as they have vectors.
    pub fn count(
        &mut self,
        tokenizer: Option<&Arc<ClipTokenizer>>,
        text: &str,
        syntax: PromptSyntax,
        embeddings: &[EmbeddingInfo],
    ) -> Option<&Counted> {
        let tokenizer = tokenizer?;
        let which = Arc::as_ptr(tokenizer) as usize;
        let known = (embeddings.len(), embeddings.iter().filter_map(|e| e.vectors).sum());
        let fresh = self
            .counted_for
            .as_ref()
            .is_some_and(|(t, s, w, k)| t == text && *s == syntax && *w == which && *k == known);
        if !fresh {
            let tokens: Vec<EmbeddingTokens> = embeddings
                .iter()
                .enumerate()
                .filter_map(|(index, e)| {
                    Some(EmbeddingTokens {
                        ids: tokenizer.encode(&e.name),
                        vectors: e.vectors?,
                        index,
                    })
                })
                .collect();
            let counted = if self.cuts_tags {
                crate::text::extra_networks::strip(text)
                    .and_then(|s| count_tokens_with(tokenizer, &s.text, syntax, &tokens))
            } else {
                count_tokens_with(tokenizer, text, syntax, &tokens)
            };
            self.counted = Some(match counted {
                Ok(count) if count.truncated() => Counted::Cut(count),
                Ok(count) => Counted::Fits(count),
                Err(e) => Counted::Invalid(e.to_string()),
            });
            self.counted_for = Some((text.to_owned(), syntax, which, known));
        }
        self.counted.as_ref()
    }
}

/// The counters of the prompt and the negative prompt.
#[derive(Debug)]
pub struct TokenCounters {
    pub prompt: TokenCounter,
    pub negative: TokenCounter,
}

impl Default for TokenCounters {
    fn default() -> Self {
        TokenCounters {
            prompt: TokenCounter {
                cuts_tags: true,
                ..TokenCounter::default()
            },
            negative: TokenCounter::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Arc<ClipTokenizer> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sd1-tiny/tokenizer");
        Arc::new(ClipTokenizer::from_folder(&dir).unwrap())
    }

    #[test]
    fn a1111_counts_in_chunks_and_plain_counts_what_is_cut() {
        let tok = tokenizer();
        let mut counter = TokenCounter::default();
        // 82 weighted words: the brackets and weights are not tokens in A1111's syntax.
        let prompt = vec!["(fox:1.2)"; 82].join(" ");
        let Some(Counted::Fits(count)) = counter.count(Some(&tok), &prompt, PromptSyntax::A1111, &[]).cloned() else {
            panic!("{:?}", counter.counted);
        };
        assert_eq!(count.to_string(), "82/150");
        // Plain: brackets, colon and digits are tokens, and past 75 the rest is cut.
        let Some(Counted::Cut(count)) = counter.count(Some(&tok), &prompt, PromptSyntax::Plain, &[]).cloned() else {
            panic!("{:?}", counter.counted);
        };
        assert!(count.tokens > 82 * 3, "{count}");
        assert_eq!(count.limit, 75);
        assert!(counter.count(None, &prompt, PromptSyntax::Plain, &[]).is_none());
    }

    #[test]
    fn a_weight_that_is_not_a_number_is_shown_as_the_run_would_refuse_it() {
        let tok = tokenizer();
        let mut counter = TokenCounter::default();
        let counted = counter
            .count(Some(&tok), "(fox:1.2.3)", PromptSyntax::A1111, &[])
            .cloned();
        // A1111's own parser fails on it too (Python's `float("1.2.3")`).
        let Some(Counted::Invalid(msg)) = counted else {
            panic!("{counted:?}");
        };
        assert!(msg.contains("1.2.3"), "{msg}");
    }

    #[test]
    fn lora_tags_in_the_prompt_are_not_counted() {
        let tok = tokenizer();
        let mut counters = TokenCounters::default();
        let tagged = counters
            .prompt
            .count(Some(&tok), "a red fox <lora:ink:0.8>", PromptSyntax::A1111, &[])
            .cloned();
        let plain = counters
            .prompt
            .count(Some(&tok), "a red fox ", PromptSyntax::A1111, &[])
            .cloned();
        assert_eq!(tagged, plain);
        let bad = counters
            .prompt
            .count(Some(&tok), "a <lora:ink:x>", PromptSyntax::A1111, &[]);
        assert!(
            matches!(bad, Some(Counted::Invalid(m)) if m.contains("not a number")),
            "{bad:?}"
        );
        // The negative prompt is read as A1111 reads it: the tag is text there.
        let neg = counters
            .negative
            .count(Some(&tok), "a <lora:ink:x>", PromptSyntax::A1111, &[]);
        assert!(matches!(neg, Some(Counted::Fits(_))), "{neg:?}");
    }

    #[test]
    fn an_embedding_counts_as_its_vectors_and_a_rescan_recounts() {
        let tok = tokenizer();
        let mut counters = TokenCounters::default();
        let prompt = "a lighthouse in lanternstyle";
        let plain = counters
            .prompt
            .count(Some(&tok), prompt, PromptSyntax::A1111, &[])
            .cloned();
        let found = vec![EmbeddingInfo {
            path: "lanternstyle.safetensors".into(),
            name: "lanternstyle".into(),
            vectors: Some(2),
        }];
        let with = counters
            .prompt
            .count(Some(&tok), prompt, PromptSyntax::A1111, &found)
            .cloned();
        let tokens = |c: Option<Counted>| match c {
            Some(Counted::Fits(t)) => t.tokens,
            other => panic!("{other:?}"),
        };
        let name_tokens = tok.encode("lanternstyle").len();
        assert_eq!(tokens(with), tokens(plain) - name_tokens + 2);
    }

    #[test]
    fn the_count_is_taken_again_only_when_its_inputs_change() {
        let tok = tokenizer();
        let mut counter = TokenCounter::default();
        counter.count(Some(&tok), "a fox", PromptSyntax::A1111, &[]);
        let key = counter.counted_for.clone();
        counter.count(Some(&tok), "a fox", PromptSyntax::A1111, &[]);
        assert_eq!(counter.counted_for, key);
        let Some(Counted::Fits(c)) = counter
            .count(Some(&tok), "a red fox", PromptSyntax::A1111, &[])
            .cloned()
        else {
            panic!()
        };
        assert_eq!(c.tokens, 3);
    }
}

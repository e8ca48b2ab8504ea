//! Added (special) tokens: their ids, and splitting a prompt around them before BPE.
//!
//! Hugging Face cuts added tokens out of the text before anything else sees it, in two passes:
//! tokens flagged `normalized: false` are found in the prompt as typed, the others in each
//! remaining piece after normalisation. With pad `!` (SD 2.x, SDXL's second tokenizer) this is
//! why every literal `!` becomes the pad id (diffusers issue #4153).

use std::collections::HashMap;

use super::files::AddedToken;

/// A piece of text between added tokens, or an added token's id.
#[derive(Debug, PartialEq)]
pub(super) enum Piece<'a> {
    Text(&'a str),
    Token(u32),
}

pub(super) struct AddedVocab {
    /// (pattern, id) matched in the raw prompt.
    raw: Vec<(String, u32)>,
    /// (normalised pattern, id) matched in normalised text.
    normalized: Vec<(String, u32)>,
    by_id: HashMap<u32, String>,
    by_content: HashMap<String, u32>,
}

impl AddedVocab {
    /// Registers `tokens` in order, as `tokenizers`' `AddedVocabulary::add_tokens` does: a
    /// content keeps the id it first got (its vocabulary id, else the next free id after the
    /// vocabulary), while the flags of the last registration decide how it is matched.
    pub fn new(tokens: &[AddedToken], vocab: &HashMap<String, u32>, normalize: impl Fn(&str) -> String) -> AddedVocab {
        let mut by_content: HashMap<String, u32> = HashMap::new();
        let mut normalized_flag: HashMap<String, bool> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for token in tokens.iter().filter(|t| !t.content.is_empty()) {
            if !by_content.contains_key(&token.content) {
                let id = vocab
                    .get(&token.content)
                    .copied()
                    .unwrap_or_else(|| next_free_id(&by_content, vocab.len()));
                by_content.insert(token.content.clone(), id);
                order.push(token.content.clone());
            }
            normalized_flag.insert(token.content.clone(), token.is_normalized());
        }
        let mut vocab = AddedVocab {
            raw: Vec::new(),
            normalized: Vec::new(),
            by_id: HashMap::new(),
            by_content: HashMap::new(),
        };
        for content in order {
            let Some(&id) = by_content.get(&content) else {
                continue;
            };
            if normalized_flag.get(&content).copied().unwrap_or(false) {
                let pattern = normalize(&content);
                if !pattern.is_empty() {
                    vocab.normalized.push((pattern, id));
                }
            } else {
                vocab.raw.push((content.clone(), id));
            }
            vocab.by_id.insert(id, content.clone());
            vocab.by_content.insert(content, id);
        }
        vocab
    }

    pub fn id(&self, content: &str) -> Option<u32> {
        self.by_content.get(content).copied()
    }

    pub fn content(&self, id: u32) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    /// The largest id an added token has.
    pub fn max_id(&self) -> Option<u32> {
        self.by_id.keys().copied().max()
    }

    /// Splits the prompt as typed around tokens matched before normalisation.
    pub fn split_raw<'a>(&self, text: &'a str) -> Vec<Piece<'a>> {
        split_around(text, &self.raw)
    }

    /// Splits already-normalised text around tokens matched after normalisation.
    pub fn split_normalized<'a>(&self, text: &'a str) -> Vec<Piece<'a>> {
        split_around(text, &self.normalized)
    }
}

/// `tokenizers`' rule for a token the model vocabulary lacks.
fn next_free_id(assigned: &HashMap<String, u32>, vocab_size: usize) -> u32 {
    let vocab_size = u32::try_from(vocab_size).unwrap_or(u32::MAX);
    match assigned.values().copied().max() {
        Some(max) if max >= vocab_size || vocab_size == 0 => max.saturating_add(1),
        _ => vocab_size,
    }
}

/// Cuts `text` at every occurrence of a pattern, leftmost first and the longest pattern when
/// several start at one place (the aho-corasick `LeftmostLongest` search `tokenizers` uses).
fn split_around<'a>(text: &'a str, patterns: &[(String, u32)]) -> Vec<Piece<'a>> {
    let mut pieces = Vec::new();
    if patterns.is_empty() {
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        return pieces;
    }
    let mut start = 0;
    let mut resume = 0;
    for (i, _) in text.char_indices() {
        if i < resume {
            continue;
        }
        let rest = &text[i..];
        let found = patterns
            .iter()
            .filter(|(p, _)| rest.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len());
        if let Some((pattern, id)) = found {
            if start < i {
                pieces.push(Piece::Text(&text[start..i]));
            }
            pieces.push(Piece::Token(*id));
            resume = i + pattern.len();
            start = resume;
        }
    }
    if start < text.len() {
        pieces.push(Piece::Text(&text[start..]));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[(&str, u32)]) -> Vec<(String, u32)> {
        list.iter().map(|(p, id)| (p.to_string(), *id)).collect()
    }

    #[test]
    fn splits_leftmost_then_longest() {
        let pats = patterns(&[("!", 0), ("<|endoftext|>", 2), ("<|end", 9)]);
        let got = split_around("a!<|endoftext|>b!!", &pats);
        use Piece::*;
        assert_eq!(got, vec![Text("a"), Token(0), Token(2), Text("b"), Token(0), Token(0)]);
        assert_eq!(split_around("", &pats), vec![]);
        assert_eq!(split_around("é!ü", &pats), vec![Text("é"), Token(0), Text("ü")]);
    }

    #[test]
    fn content_keeps_first_id_and_last_flags() {
        let vocab: HashMap<String, u32> = [("!".to_string(), 0), ("x".to_string(), 1)].into();
        let tok = |content: &str, normalized: bool| AddedToken {
            content: content.into(),
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: Some(normalized),
            special: true,
        };
        let tokens = [tok("<A>", false), tok("!", false), tok("<B>", true), tok("<A>", true)];
        let added = AddedVocab::new(&tokens, &vocab, |s| s.to_lowercase());
        assert_eq!(added.id("<A>"), Some(2));
        assert_eq!(added.id("!"), Some(0));
        assert_eq!(added.id("<B>"), Some(3));
        assert_eq!(added.raw, patterns(&[("!", 0)]));
        assert_eq!(added.normalized, patterns(&[("<a>", 2), ("<b>", 3)]));
    }
}

//! CLIP's byte-level BPE tokenizer, matching Hugging Face's `CLIPTokenizer` id for id.
//!
//! The reference is transformers 5 (the `tokenizers`-backed CLIPTokenizer), which is what
//! diffusers calls. Its pipeline, reproduced step by step because every step shows in the ids:
//!
//! 1. added tokens are cut out of the prompt as typed (`<|endoftext|>`, and `!` where it is
//!    the pad token) — see [`added`];
//! 2. each remaining piece is normalised: NFC, every whitespace run to one space, then
//!    lower-casing one character at a time (so no final-sigma rule, and `İ` becomes `i̇`);
//! 3. added tokens flagged `normalized` are cut out of the normalised text;
//! 4. CLIP's regex splits words (whitespace is dropped), then the byte-level pre-tokenizer
//!    splits each piece again with GPT-2's regex — which only matters for a normalised
//!    `<|endoftext|>` that was not an added token: it becomes `<|`, `endoftext`, `|>`;
//! 5. each word's UTF-8 bytes go through BPE with `</w>` on the last symbol — see [`bpe`].
//!
//! The model input is `bos + content[..max_length - 2] + eos`, padded with the pad id.

mod added;
mod bpe;
mod files;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use self::added::{AddedVocab, Piece};
use self::bpe::{Bpe, WordCache, byte_to_char_table};
use crate::error::{Error, Result};

/// CLIP's word pattern, as transformers' CLIPTokenizer gives it to its `Split` pre-tokenizer.
const CLIP_PATTERN: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";
/// GPT-2's pattern, applied by the `ByteLevel` pre-tokenizer to each CLIP piece. Its
/// whitespace alternatives are left out: CLIP pieces never contain whitespace.
const BYTE_LEVEL_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+";

/// A CLIP tokenizer loaded from a model's `tokenizer/` (or `tokenizer_2/`) folder.
pub struct ClipTokenizer {
    bpe: Bpe,
    added: AddedVocab,
    text: TextRules,
    /// Vocabulary id → token, for [`ClipTokenizer::decode`].
    tokens: HashMap<u32, String>,
    char_to_byte: HashMap<char, u8>,
    bos_id: u32,
    eos_id: u32,
    pad_id: u32,
    max_length: usize,
    vocab_size: usize,
    cache: Mutex<WordCache>,
}

impl ClipTokenizer {
    /// Loads `vocab.json` + `merges.txt` (with `tokenizer_config.json` and/or
    /// `special_tokens_map.json`) or a `tokenizer.json` (preferred when present, as transformers
    /// prefers it). Every problem is an [`crate::Error::Tokenizer`] naming the file at fault.
    pub fn from_folder(dir: &Path) -> Result<ClipTokenizer> {
        let loaded = files::load(dir)?;
        let text = TextRules::new().map_err(|e| Error::tokenizer(dir, e.to_string()))?;
        let bpe = Bpe::new(&loaded.vocab, &loaded.merges, loaded.unk.as_deref(), &loaded.model_file)?;
        let added = AddedVocab::new(&loaded.added, &loaded.vocab, |s| text.normalize(s));
        let id_of = |content: &str| {
            added
                .id(content)
                .or_else(|| loaded.vocab.get(content).copied())
                .ok_or_else(|| Error::tokenizer(dir, format!("special token `{content}` has no id")))
        };
        let (bos_id, eos_id, pad_id) = (id_of(&loaded.bos)?, id_of(&loaded.eos)?, id_of(&loaded.pad)?);
        let max_vocab_id = loaded.vocab.values().copied().max().unwrap_or(0);
        let max_id = added.max_id().map_or(max_vocab_id, |m| m.max(max_vocab_id));
        Ok(ClipTokenizer {
            bpe,
            added,
            text,
            tokens: loaded.vocab.into_iter().map(|(token, id)| (id, token)).collect(),
            char_to_byte: byte_to_char_table()
                .iter()
                .zip(0..=255u8)
                .map(|(&c, b)| (c, b))
                .collect(),
            bos_id,
            eos_id,
            pad_id,
            max_length: loaded.max_length,
            vocab_size: usize::try_from(max_id).map_or(usize::MAX, |m| m.saturating_add(1)),
            cache: Mutex::new(WordCache::new()),
        })
    }

    /// The prompt's content ids: no bos/eos, not truncated.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for piece in self.added.split_raw(text) {
            match piece {
                Piece::Token(id) => ids.push(id),
                Piece::Text(raw) => self.encode_unsplit(raw, &mut ids),
            }
        }
        ids
    }

    /// Exactly the `max_length` ids the text encoder receives, as
    /// `tokenizer(prompt, padding="max_length", max_length=77, truncation=True)` gives them:
    /// bos, the first `max_length - 2` content ids, eos, then pad ids.
    pub fn encode_for_model(&self, text: &str) -> Vec<u32> {
        let content = self.encode(text);
        let mut ids = Vec::with_capacity(self.max_length);
        ids.push(self.bos_id);
        ids.extend(content.iter().take(self.max_content_tokens()));
        ids.push(self.eos_id);
        ids.resize(self.max_length, self.pad_id);
        ids
    }

    /// How many content tokens the prompt has (the UI's "n / 75"); may exceed
    /// [`Self::max_content_tokens`], in which case the rest is cut off.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.encode(text).len()
    }

    /// Content tokens the model sees: `max_length` minus bos and eos (75 for SD).
    pub fn max_content_tokens(&self) -> usize {
        self.max_length.saturating_sub(2)
    }

    /// The text encoder's sequence length (`model_max_length`, 77 for SD).
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn bos_id(&self) -> u32 {
        self.bos_id
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// `<|endoftext|>` for SD 1.x, `!` (id 0) for SD 2.x and SDXL's second tokenizer.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// One more than the largest id this tokenizer can produce; the text encoder's embedding
    /// table must be at least this large.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Text for ids, as Hugging Face's `decode` renders it (special tokens included, `</w>` as
    /// a space, trimmed). Unknown ids are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            let token = self
                .added
                .content(id)
                .or_else(|| self.tokens.get(&id).map(String::as_str));
            if let Some(token) = token {
                self.token_bytes(token, &mut bytes);
            }
        }
        let text = String::from_utf8_lossy(&bytes).replace("</w>", " ");
        text.trim_matches(is_python_space).to_owned()
    }

    /// The byte-level decoder: a token whose every character is a byte symbol becomes those
    /// bytes; any other token (an added token with other characters) is kept as written.
    fn token_bytes(&self, token: &str, out: &mut Vec<u8>) {
        let mapped: Option<Vec<u8>> = token.chars().map(|c| self.char_to_byte.get(&c).copied()).collect();
        match mapped {
            Some(bytes) => out.extend(bytes),
            None => out.extend_from_slice(token.as_bytes()),
        }
    }

    /// A piece of the prompt with no raw-matched added token in it.
    fn encode_unsplit(&self, raw: &str, ids: &mut Vec<u32>) {
        let normalized = self.text.normalize(raw);
        for piece in self.added.split_normalized(&normalized) {
            match piece {
                Piece::Token(id) => ids.push(id),
                Piece::Text(text) => self.encode_words(text, ids),
            }
        }
    }

    fn encode_words(&self, normalized: &str, ids: &mut Vec<u32>) {
        for clip_piece in self.text.clip.find_iter(normalized) {
            for word in self.text.byte_level.find_iter(clip_piece.as_str()) {
                self.encode_word(word.as_str(), ids);
            }
        }
    }

    fn encode_word(&self, word: &str, ids: &mut Vec<u32>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hit) = cache.get(word) {
            ids.extend_from_slice(hit);
            return;
        }
        let fresh = self.bpe.encode_word(word.as_bytes());
        cache.insert(word, &fresh);
        ids.extend(fresh);
    }
}

impl fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("max_length", &self.max_length)
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .field("pad_id", &self.pad_id)
            .finish_non_exhaustive()
    }
}

/// Python's `str.strip()` whitespace (Unicode White_Space plus the C0 separators 0x1C–0x1F),
/// which CLIPTokenizer's decode uses.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The normaliser and the two pre-tokenizer patterns.
struct TextRules {
    whitespace: Regex,
    clip: Regex,
    byte_level: Regex,
}

impl TextRules {
    fn new() -> Result<TextRules, regex::Error> {
        Ok(TextRules {
            whitespace: Regex::new(r"\s+")?,
            clip: Regex::new(CLIP_PATTERN)?,
            byte_level: Regex::new(BYTE_LEVEL_PATTERN)?,
        })
    }

    /// NFC, whitespace runs to one space, then per-character lower-casing — in that order, as
    /// the `tokenizers` normaliser sequence does (Python's `str.lower()` would differ on `Σ`).
    fn normalize(&self, text: &str) -> String {
        let composed: String = text.nfc().collect();
        let collapsed = self.whitespace.replace_all(&composed, " ");
        collapsed.chars().flat_map(char::to_lowercase).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_tokenizers() {
        let rules = TextRules::new().unwrap();
        assert_eq!(rules.normalize("ΟΔΟΣ"), "οδοσ");
        assert_eq!(rules.normalize("İ"), "i\u{307}");
        assert_eq!(rules.normalize("Cafe\u{301}\t\u{2028} X"), "café x");
        assert_eq!(rules.normalize("\u{212a}"), "k");
    }

    #[test]
    fn byte_level_pattern_splits_a_normalized_special_token() {
        let rules = TextRules::new().unwrap();
        let words: Vec<&str> = rules.clip.find_iter("a <|endoftext|>'s").map(|m| m.as_str()).collect();
        assert_eq!(words, ["a", "<|endoftext|>", "'s"]);
        let parts: Vec<&str> = rules.byte_level.find_iter(words[1]).map(|m| m.as_str()).collect();
        assert_eq!(parts, ["<|", "endoftext", "|>"]);
    }

    #[test]
    fn python_strip_set() {
        assert!(is_python_space('\u{1f}'));
        assert!(is_python_space('\u{85}'));
        assert!(!is_python_space('\u{200b}'));
    }
}

//! CLIP's byte-level BPE tokenizer, matching Hugging Face's `CLIPTokenizer` id for id.
//!
//! The reference is transformers 5 (the `tokenizers`-backed CLIPTokenizer), which is what
//! diffusers calls. Its pipeline, step by step because every step shows in the ids:
//!
//! 1. added tokens are cut out of the prompt as typed (`<|endoftext|>`, and `!` where it is
//!    the pad token) — see [`added`];
//! 2. each remaining piece is normalised: NFC, every whitespace run to one space, then
//!    lower-casing one character at a time (so no final-sigma rule, and `İ` becomes `i̇`);
//! 3. added tokens flagged `normalized` are cut out of the normalised text;
//! 4. CLIP's regex splits words (whitespace is dropped), then the `tokenizers` crate's
//!    `ByteLevel` pre-tokenizer splits each piece again with GPT-2's regex — which only matters
//!    for a normalised `<|endoftext|>` that was not an added token: it becomes `<|`,
//!    `endoftext`, `|>` — and spells each word's UTF-8 bytes in GPT-2's byte alphabet;
//! 5. each word goes through the `tokenizers` crate's own BPE model with CLIP's settings
//!    (`</w>` end-of-word suffix, no dropout, no unk fusing), the very code transformers runs.
//!
//! Steps 4–5 and decoding's byte mapping are the `tokenizers` crate (which candle already
//! builds); the added-token rules of transformers (which tokens exist, in which order they are
//! registered, which are matched before normalisation — [`files`], [`added`]) and the
//! normaliser stay here: they come from transformers' Python side, not from a `tokenizer.json`
//! that the `tokenizers` crate could load (SD repositories ship `vocab.json` + `merges.txt`).
//! The library BPE gives ids identical to the hand-written BPE it replaced on every committed
//! case (`tests/tokenizer.rs`, `tests/fixtures/tokenizer_cases.json`,
//! `tests/fixtures/tokenizer_variant_cases.json`).
//!
//! The model input is `bos + content[..max_length - 2] + eos`, padded with the pad id.

mod added;
mod files;

use std::fmt;
use std::path::Path;

use regex::Regex;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{Decoder, Model, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};
use unicode_normalization::UnicodeNormalization;

use self::added::{AddedVocab, Piece};
use self::files::Loaded;
use crate::error::{Error, Result};

/// CLIP's word pattern, as transformers' CLIPTokenizer gives it to its `Split` pre-tokenizer.
const CLIP_PATTERN: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";
/// CLIP's end-of-word suffix, carried by each word's last symbol.
const END_OF_WORD: &str = "</w>";

/// A CLIP tokenizer loaded from a model's `tokenizer/` (or `tokenizer_2/`) folder.
pub struct ClipTokenizer {
    /// `tokenizers`' BPE model (it caches words itself).
    bpe: BPE,
    /// GPT-2's split and byte alphabet (pre-tokenizer), and back (decoder).
    byte_level: ByteLevel,
    added: AddedVocab,
    text: TextRules,
    bos_id: u32,
    eos_id: u32,
    pad_id: u32,
    max_length: usize,
    vocab_size: usize,
}

impl ClipTokenizer {
    /// Loads `vocab.json` + `merges.txt` (with `tokenizer_config.json` and/or
    /// `special_tokens_map.json`) or a `tokenizer.json` (preferred when present, as transformers
    /// prefers it). Every problem is an [`crate::Error::Tokenizer`] naming the file at fault.
    pub fn from_folder(dir: &Path) -> Result<ClipTokenizer> {
        let loaded = files::load(dir)?;
        let text = TextRules::new().map_err(|e| Error::tokenizer(dir, e.to_string()))?;
        let bpe = build_bpe(&loaded)?;
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
            // No prefix space, GPT-2's regex on: what CLIP's `tokenizer.json` declares.
            byte_level: ByteLevel::new(false, false, true),
            added,
            text,
            bos_id,
            eos_id,
            pad_id,
            max_length: loaded.max_length,
            vocab_size: usize::try_from(max_id).map_or(usize::MAX, |m| m.saturating_add(1)),
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

    /// The id of a vocabulary token as the vocabulary spells it (`,</w>`), if it has one.
    pub fn vocab_id(&self, token: &str) -> Option<u32> {
        self.bpe.token_to_id(token)
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
        let tokens: Vec<String> = ids
            .iter()
            .filter_map(|&id| {
                self.added
                    .content(id)
                    .map(str::to_owned)
                    .or_else(|| self.bpe.id_to_token(id))
            })
            .collect();
        // The byte-level decoder: a token whose every character is a byte symbol becomes
        // those bytes; any other token (an added token with other characters) is kept as
        // written. It cannot fail.
        let text = self.byte_level.decode(tokens).unwrap_or_default();
        text.replace(END_OF_WORD, " ").trim_matches(is_python_space).to_owned()
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
            if let Err(e) = self.encode_clip_piece(clip_piece.as_str(), ids) {
                // Not reachable with the settings above (an unk token is only set when the
                // vocabulary has it); a prompt must never take the app down, so skip the piece.
                tracing::warn!(piece = clip_piece.as_str(), "tokenizer skipped a piece: {e}");
            }
        }
    }

    /// One CLIP piece: GPT-2's split and byte alphabet, then BPE on each word.
    fn encode_clip_piece(&self, piece: &str, ids: &mut Vec<u32>) -> tokenizers::Result<()> {
        let mut piece_ids = Vec::new();
        for word in byte_level_words(&self.byte_level, piece)? {
            piece_ids.extend(self.bpe.tokenize(&word)?.iter().map(|token| token.id));
        }
        ids.extend(piece_ids);
        Ok(())
    }
}

/// The byte-level pre-tokenizer's words of one CLIP piece, spelled in GPT-2's alphabet.
fn byte_level_words(byte_level: &ByteLevel, piece: &str) -> tokenizers::Result<Vec<String>> {
    let mut words = PreTokenizedString::from(piece);
    byte_level.pre_tokenize(&mut words)?;
    Ok(words
        .get_splits(OffsetReferential::Normalized, OffsetType::None)
        .into_iter()
        .map(|(word, _, _)| word.to_owned())
        .collect())
}

/// `tokenizers`' BPE model with CLIP's settings. Like transformers, a merge whose parts or
/// result are not in the vocabulary is an error, and a repeated pair keeps its last rank. The
/// unknown token is only set when the vocabulary has it (a byte the vocabulary lacks is then
/// dropped, as no real CLIP vocabulary lacks one).
fn build_bpe(loaded: &Loaded) -> Result<BPE> {
    check_merges(loaded)?;
    let vocab: Vocab = loaded.vocab.iter().map(|(token, &id)| (token.clone(), id)).collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, loaded.merges.clone())
        .end_of_word_suffix(END_OF_WORD.to_owned());
    if let Some(unk) = loaded.unk.as_ref().filter(|unk| loaded.vocab.contains_key(*unk)) {
        builder = builder.unk_token(unk.clone());
    }
    builder
        .build()
        .map_err(|e| Error::tokenizer(&loaded.model_file, format!("cannot build the BPE model: {e}")))
}

/// The builder's own check, done first: `tokenizers` 0.23 panics (a slice index out of range)
/// instead of erroring when a merge's result is longer than every vocabulary token, and its
/// error would not say which merge is at fault.
fn check_merges(loaded: &Loaded) -> Result<()> {
    for (index, (left, right)) in loaded.merges.iter().enumerate() {
        let merged = format!("{left}{right}");
        if let Some(missing) = [left, right, &merged]
            .into_iter()
            .find(|t| !loaded.vocab.contains_key(*t))
        {
            return Err(Error::tokenizer(
                &loaded.model_file,
                format!("merge {}: `{missing}` is not in the vocabulary", index + 1),
            ));
        }
    }
    Ok(())
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

/// The normaliser and CLIP's pre-tokenizer pattern.
struct TextRules {
    whitespace: Regex,
    clip: Regex,
}

impl TextRules {
    fn new() -> Result<TextRules, regex::Error> {
        Ok(TextRules {
            whitespace: Regex::new(r"\s+")?,
            clip: Regex::new(CLIP_PATTERN)?,
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
        let parts = byte_level_words(&ByteLevel::new(false, false, true), words[1]).unwrap();
        assert_eq!(parts, ["<|", "endoftext", "|>"]);
    }

    #[test]
    fn byte_level_words_use_gpt2_byte_alphabet() {
        let byte_level = ByteLevel::new(false, false, true);
        // Printable Latin-1 bytes stand for themselves; the rest shift to U+0100 and up.
        assert_eq!(byte_level_words(&byte_level, "a").unwrap(), ["a"]);
        assert_eq!(byte_level_words(&byte_level, "\u{0}").unwrap(), ["Ā"]);
        assert_eq!(byte_level_words(&byte_level, "\u{ad}").unwrap(), ["ÂŃ"]);
        assert_eq!(byte_level_words(&byte_level, "é").unwrap(), ["Ã©"]);
    }

    fn loaded(tokens: &[&str], merges: &[(&str, &str)]) -> Loaded {
        Loaded {
            model_file: "merges.txt".into(),
            vocab: tokens.iter().zip(0..).map(|(t, i)| (t.to_string(), i)).collect(),
            merges: merges.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            unk: None,
            added: Vec::new(),
            bos: String::new(),
            eos: String::new(),
            pad: String::new(),
            max_length: 77,
        }
    }

    fn word_ids(bpe: &BPE, word: &str) -> Vec<u32> {
        bpe.tokenize(word).unwrap().iter().map(|t| t.id).collect()
    }

    #[test]
    fn merges_by_rank_then_leftmost() {
        let tokens = ["a", "b", "a</w>", "b</w>", "ab", "ab</w>", "aa", "aa</w>"];
        let merges = [("a", "b"), ("a", "b</w>"), ("a", "a"), ("a", "a</w>")];
        let bpe = build_bpe(&loaded(&tokens, &merges)).unwrap();
        assert_eq!(word_ids(&bpe, "ab"), vec![5]);
        assert_eq!(word_ids(&bpe, "abab"), vec![4, 5]);
        // "aaa": (a a) at 0 and 1 share a rank; the leftmost wins, leaving a</w>.
        assert_eq!(word_ids(&bpe, "aaa"), vec![6, 2]);
        assert_eq!(word_ids(&bpe, ""), Vec::<u32>::new());
    }

    #[test]
    fn merge_with_unknown_part_is_an_error_naming_the_merge() {
        let err = build_bpe(&loaded(&["a", "b", "ab"], &[("a", "b"), ("a", "z")]))
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "merges.txt: merge 2: `z` is not in the vocabulary");
        let err = build_bpe(&loaded(&["a", "b"], &[("a", "b")])).err().unwrap();
        assert_eq!(err.to_string(), "merges.txt: merge 1: `ab` is not in the vocabulary");
    }

    #[test]
    fn python_strip_set() {
        assert!(is_python_space('\u{1f}'));
        assert!(is_python_space('\u{85}'));
        assert!(!is_python_space('\u{200b}'));
    }
}
